"""What the delegates paint reads in both schemes: colours come from the palette shown (or
a named colour of ui/theme.py), never a grey fixed for one scheme."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPalette
from PySide6.QtWidgets import QApplication, QStyle, QStyleOptionViewItem
from tests.ui.test_download_model import snap

from civdesk.ui.browser.delegate import CardDelegate, ResultCard
from civdesk.ui.downloads.delegate import DownloadDelegate
from civdesk.ui.downloads.model import DownloadListModel
from civdesk.ui.theme import (
    _BADGES,
    _TYPE_COLORS,
    BADGE_INK,
    badge_color,
    contrast_ratio,
    dark_palette,
    is_dark,
    light_palette,
    made_readable,
    type_color,
)

UI = Path(__file__).resolve().parents[2] / "src" / "civdesk" / "ui"
#: Modules that paint with colours: every one must come from the palette or theme.py.
PAINTERS = ["browser/delegate.py", "browser/page.py", "browser/versions.py",
            "downloads/delegate.py", "library/delegate.py", "card_art.py", "navigation.py"]
SCHEMES = {"dark": made_readable(dark_palette()), "light": made_readable(light_palette())}


def strongest_contrast(image: QImage, rect: QRect, ground: QColor) -> float:
    """The contrast of the pixel in ``rect`` that stands out most from ``ground`` (the
    text's own colour, where its strokes are solid)."""
    return max(contrast_ratio(image.pixelColor(x, y), ground)
               for y in range(rect.top(), rect.bottom() + 1)
               for x in range(rect.left(), rect.right() + 1))


@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_loading_preview_takes_the_schemes_colours_and_its_words_read(qtbot, scheme):
    palette = SCHEMES[scheme]
    image = QImage(200, 240, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    card = ResultCard("Neon Alley", "LORA · Pony", "↓ 1k", "", "http://img/1.jpeg", False)
    painter = QPainter(image)
    painter.setFont(QApplication.font())
    rect = QRect(0, 0, 200, 240)
    CardDelegate._paint_thumbnail(painter, rect, card, None, palette)
    painter.end()
    ground = image.pixelColor(4, 4)
    assert is_dark(palette) == (ground.lightness() < 128), ground.name()  # follows the scheme
    assert strongest_contrast(image, rect, ground) >= 4.5


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("state", ["failed", "completed"])
def test_a_download_rows_state_reads_on_its_row_in_both_schemes(qtbot, scheme, state):
    palette = SCHEMES[scheme]
    model = DownloadListModel()
    model.set_tasks([snap(1, state, error="HTTP 401", error_kind="auth",
                          bytes_done=10, bytes_total=10)])
    image = QImage(420, 70, QImage.Format.Format_ARGB32_Premultiplied)
    ground = palette.color(QPalette.ColorRole.Base)
    image.fill(ground)
    option = QStyleOptionViewItem()
    option.rect = QRect(0, 0, 420, 70)
    option.palette = palette
    option.font = QApplication.font()
    option.state = QStyle.StateFlag.State_Enabled
    painter = QPainter(image)
    DownloadDelegate().paint(painter, option, model.index(0))
    painter.end()
    line = option.font.pointSize() * 2 + 6
    state_label = QRect(420 - 100, 0, 94, line)  # the first line's right end
    assert strongest_contrast(image, state_label, ground) >= 4.5
    reason = QRect(6, 70 - line, 300, line - 6)  # the second line
    assert strongest_contrast(image, reason, ground) >= 4.5


def test_every_pill_colour_takes_white_text_readably() -> None:
    for kind in [*_TYPE_COLORS, "SomeNewType"]:
        assert contrast_ratio(type_color(kind), BADGE_INK) >= 4.5, kind
    for kind in _BADGES:
        assert contrast_ratio(badge_color(kind), BADGE_INK) >= 4.5, kind


def test_no_painting_module_fixes_a_colour_of_its_own() -> None:
    """Hex colours, named colours and inline style sheets live in theme.py and the
    stylesheet only, where the tests above and test_theme check them."""
    fixed = re.compile(r"""QColor\(\s*["'#\d]|Qt\.GlobalColor\.(?!transparent)\w+|"""
                       r"""setStyleSheet\(\s*["'][^"']+["']|#[0-9a-fA-F]{6}\b""")
    found = {name: fixed.findall((UI / name).read_text()) for name in PAINTERS}
    assert {name: hits for name, hits in found.items() if hits} == {}


@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_settings_hint_reads_in_both_schemes(qtbot, qapp, scheme):
    """The explanations under settings are disabled labels: quiet, yet at 4.5:1."""
    from PySide6.QtWidgets import QLabel

    from civdesk.ui import icons

    sheet, palette = qapp.styleSheet(), qapp.palette()
    qapp.setPalette(SCHEMES[scheme])  # as the ThemeManager sets it
    qapp.setStyleSheet(icons.stylesheet())
    try:
        label = QLabel("Each model type goes to its own sub-folder, named as your web UI")
        label.setAutoFillBackground(True)
        label.setEnabled(False)
        qtbot.addWidget(label)
        label.resize(label.sizeHint())
        image = label.grab().toImage()
        ground = SCHEMES[scheme].color(QPalette.ColorRole.Window)
        assert strongest_contrast(image, image.rect(), ground) >= 4.5
    finally:
        qapp.setStyleSheet(sheet)
        qapp.setPalette(palette)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_hovered_civitai_card_keeps_its_words_readable(qtbot, scheme):
    """A hovered card takes the Midlight role: in the dark palette Qt's default for it was
    a light grey under near-white words."""
    palette = SCHEMES[scheme]
    option = QStyleOptionViewItem()
    option.palette = palette
    option.font = QApplication.font()
    option.state = QStyle.StateFlag.State_Enabled | QStyle.StateFlag.State_MouseOver
    image = QImage(200, 320, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(palette.color(QPalette.ColorRole.Base))
    card = ResultCard("Neon Alley", "LORA · Pony", "↓ 1k", "", None, False)
    painter = QPainter(image)
    painter.setFont(option.font)
    CardDelegate(thumbnails=None)._paint_card(painter, QRect(0, 0, 200, 320), option, card,
                                              None)  # type: ignore[arg-type]
    painter.end()
    words = QRect(10, 236, 150, 40)  # under the preview: name and type
    ground = image.pixelColor(190, 300)  # the card's own ground, beside the words
    assert strongest_contrast(image, words, ground) >= 4.5
