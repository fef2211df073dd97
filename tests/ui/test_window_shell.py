"""The window's shell: the sidebar (readable in both themes), the downloads' line and badge in
the status bar, the library's activity line under every page."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor, QImage, QPalette
from tests.double import CivitaiDouble, SampleCatalog

from civdesk.ui.main_window import MainWindow

WAIT_MS = 15_000
BIG = 10_000_000
RATE = 4_000_000  # bytes per second: a download that can be watched for about 2 s


# -- the sidebar ------------------------------------------------------------------------------


def _luminance(color: QColor) -> float:
    def channel(value: float) -> float:
        return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4

    return (0.2126 * channel(color.redF()) + 0.7152 * channel(color.greenF())
            + 0.0722 * channel(color.blueF()))


def contrast(a: QColor, b: QColor) -> float:
    """WCAG contrast ratio: 1 (same) to 21 (black on white); 4.5 for body text."""
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def text_against_ground(image: QImage) -> tuple[QColor, QColor]:
    """The most common colour of ``image`` (the ground) and the one farthest from it (the
    strongest stroke of the text)."""
    counts: dict[int, int] = {}
    for y in range(image.height()):
        for x in range(image.width()):
            rgb = image.pixel(x, y) & 0xFFFFFF
            counts[rgb] = counts.get(rgb, 0) + 1
    ground = QColor(max(counts, key=counts.__getitem__))
    ink = max((QColor(rgb) for rgb in counts), key=lambda c: contrast(c, ground))
    return ground, ink


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_the_current_page_is_marked_and_readable_in_both_themes(qtbot, qapp, main_window, dark):
    # The old toolbar drew the checked page white on a white button in a light theme.
    from civdesk.ui import theme

    style, palette, sheet = qapp.style().name(), qapp.palette(), qapp.styleSheet()
    try:
        theme.apply_theme(qapp, force_dark=dark)
        main_window.show()
        qtbot.waitExposed(main_window)
        main_window.show_page("downloads")
        nav = main_window.nav
        item = nav.item_of("downloads")
        rect = nav.visualItemRect(item)
        image = nav.viewport().grab(rect).toImage()
        # The label: the lower third of the entry, beneath the icon.
        label = image.copy(0, image.height() * 2 // 3, image.width(), image.height() // 3)
        ground, ink = text_against_ground(label)
        assert contrast(ink, ground) >= 4.5, (ground.name(), ink.name())
        # Marked: a ground of its own, and an accent bar in the highlight colour.
        other = nav.viewport().grab(nav.visualItemRect(nav.item_of("models"))).toImage()
        other_ground, _ = text_against_ground(other)
        assert contrast(ground, other_ground) >= 1.25, (ground.name(), other_ground.name())
        accent = nav.palette().color(QPalette.ColorRole.Highlight).rgb() & 0xFFFFFF
        assert any(image.pixel(x, image.height() // 2) & 0xFFFFFF == accent
                   for x in range(image.width() // 4))
    finally:
        qapp.setStyle(style)
        qapp.setPalette(palette)
        qapp.setStyleSheet(sheet)


def test_each_page_has_an_icon_of_its_own(main_window, qtmodeltester):
    nav = main_window.nav
    qtmodeltester.check(nav.model())
    images = []
    for name in ("civitai", "models", "downloads", "settings"):
        image = nav.item_of(name).icon().pixmap(24, 24).toImage()
        drawn = sum(1 for y in range(24) for x in range(24) if image.pixelColor(x, y).alpha())
        assert drawn > 30, name  # a glyph, not an empty square
        assert all(image != other for other in images), name
        images.append(image)


# -- the downloads in the status bar ----------------------------------------------------------


def test_the_status_line_follows_a_download_and_opens_the_downloads_page(
    qtbot, main_window: MainWindow, civitai: CivitaiDouble
):
    w = main_window
    w.show()
    w.show_page("models")
    line = w.downloads_status
    assert line.isVisible() and line.text() == "No downloads"
    assert line.badge.text() == ""  # no "⬇ 0": the badge shows only what is queued
    big = civitai.add_version(civitai.add_model("Big Checkpoint", "Checkpoint"), "v1",
                              files=[civitai.file(size=BIG)])
    civitai.throttle_downloads(RATE)
    w.downloads.enqueue(big.id)
    name = big.files[0].name
    qtbot.waitUntil(lambda: line.text().startswith(f"{name} · ") and "%" in line.text()
                    and "/s" in line.text(), timeout=WAIT_MS)
    assert line.badge.text() == "⬇ 1"
    qtbot.mouseClick(line, Qt.MouseButton.LeftButton, pos=QPoint(5, line.height() // 2))
    assert w.current_page == "downloads"
    w.show_page("models")
    qtbot.mouseClick(line.badge, Qt.MouseButton.LeftButton)
    assert w.current_page == "downloads"
    civitai.throttle_downloads(None)
    qtbot.waitUntil(lambda: line.text() == "No downloads", timeout=WAIT_MS)
    assert line.badge.text() == ""


def test_two_downloads_say_which_of_how_many(
    qtbot, main_window: MainWindow, civitai: CivitaiDouble, civitai_catalog: SampleCatalog
):
    w = main_window
    big = civitai.add_version(civitai.add_model("Big Checkpoint", "Checkpoint"), "v1",
                              files=[civitai.file(size=BIG)])
    civitai.throttle_downloads(RATE)
    w.downloads.enqueue(big.id)
    w.downloads.enqueue(civitai_catalog.vae_v1.id)
    line = w.downloads_status
    qtbot.waitUntil(lambda: line.text().startswith("1 of 2 · "), timeout=WAIT_MS)
    assert line.badge.text() == "⬇ 2"
    civitai.throttle_downloads(None)
    qtbot.waitUntil(lambda: line.text() == "No downloads", timeout=WAIT_MS)


def test_a_long_name_is_elided_and_its_figures_stay_in_sight(qtbot):
    from civdesk.ui.downloads.indicator import DownloadsIndicator
    from civdesk.ui.downloads.summary import QueueCounts

    indicator = DownloadsIndicator()
    qtbot.addWidget(indicator)
    indicator.show()
    name = "a-very-long-model-file-name-that-goes-on-and-on-v2.safetensors"
    indicator.show_counts(QueueCounts(downloading=1, name=name, percent=45, speed=12e6))
    text = indicator.text()
    assert text.startswith("a-very-long") and "…" in text
    assert text.endswith(" · 45% · 12.0 MB/s")
    metrics = indicator.line.label.fontMetrics()
    assert metrics.horizontalAdvance(text) <= indicator.line.width()


# -- the library's activity, under every page -------------------------------------------------


def test_a_running_scan_shows_with_its_cancel_button_on_every_page(
    qtbot, main_window: MainWindow, model_folder, civitai: CivitaiDouble
):
    w = main_window
    w.show()
    w.core.settings.library_folders = [str(model_folder)]
    civitai.api_latency(0.5)  # the scan's lookups wait: it runs while the pages change
    with qtbot.waitSignal(w.scans.stopped, timeout=WAIT_MS):
        assert w.start_scan()
        for name in ("civitai", "models", "downloads", "settings"):
            w.show_page(name)
            assert w.activity.isVisible() and w.activity.cancel_button.isVisible()
            assert w.activity.text().startswith("Scanning library")
        civitai.api_latency(0)
    assert w.activity.isVisible() and not w.activity.cancel_button.isVisible()
    assert w.activity.text().startswith("Scan finished")
