"""The Qt side of the artwork: icons, placeholders and the stylesheet load for real."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel

from civdesk.ui import icons


def test_app_icon_offers_every_drawn_size(qapp):
    icon = icons.app_icon()
    assert not icon.isNull()
    sizes = {(s.width(), s.height()) for s in icon.availableSizes()}
    assert {(n, n) for n in icons.APP_ICON_SIZES} <= sizes
    # The 16 px entry is the hand-simplified one, not the 1024 one scaled down.
    assert icon.pixmap(QSize(16, 16)).size() == QSize(16, 16)


@pytest.mark.parametrize("dark_panel", [True, False])
def test_tray_icon_variants_differ(qapp, dark_panel: bool):
    icon = icons.tray_icon(dark_panel=dark_panel)
    assert not icon.isNull()
    image = icon.pixmap(QSize(32, 32)).toImage()
    # Sample the most opaque pixel: white glyph on dark panels, near-black on light ones.
    opaque = max(
        (image.pixelColor(x, y) for x in range(32) for y in range(32)),
        key=lambda c: c.alpha(),
    )
    assert opaque.alpha() == 255
    assert (opaque.lightness() > 200) is dark_panel


@pytest.mark.parametrize("kind", [icons.NO_PREVIEW, icons.NSFW_HIDDEN])
def test_placeholders_are_portrait_images(qapp, kind):
    image = icons.placeholder_image(kind)
    assert not image.isNull()
    assert image.height() > image.width()


def test_stylesheet_parses_and_styles_a_badge(qtbot, qtlog):
    sheet = icons.stylesheet()
    assert "civdeskRole" in sheet
    card = QFrame()
    card.setProperty("civdeskRole", "card")
    badge = QLabel("LoRA")
    badge.setProperty("civdeskRole", "badge")
    badge.setProperty("badgeKind", "nsfw")
    layout = QHBoxLayout(card)
    layout.addWidget(badge)
    qtbot.addWidget(card)
    card.setStyleSheet(sheet)
    card.show()
    qtbot.waitExposed(card)
    # Qt reports a bad sheet only as a warning ("Could not parse stylesheet").
    assert [r.message for r in qtlog.records if "stylesheet" in r.message.lower()] == []
    assert badge.palette().color(badge.backgroundRole()).name() == "#c62f4a"
    assert badge.palette().color(badge.foregroundRole()) == Qt.GlobalColor.white
