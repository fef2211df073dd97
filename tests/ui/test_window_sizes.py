"""The window at the smallest size it is made for (900×600): every page fits, the grid keeps
two columns, the Civitai detail's controls are in reach, the status bar's parts never
overlap."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QRect
from PySide6.QtWidgets import QScrollArea, QWidget
from tests.double import SampleCatalog
from tests.ui.test_browser import search
from tests.ui.test_library_layout import fill, read

SMALL = (900, 600)


def small_window(qtbot, window) -> None:
    window.resize(*SMALL)
    window.show()
    qtbot.waitExposed(window)
    qtbot.waitUntil(lambda: (window.width(), window.height()) == SMALL, timeout=2000)


def models_page_at_900(qtbot, main_window, core, tmp_path: Path) -> list[Path]:
    """The Models page of a 900×600 window, showing a library of 8 files (their paths)."""
    paths = fill(core, tmp_path / "models", 8)
    small_window(qtbot, main_window)
    main_window.show_page("models")
    read(qtbot, main_window.library)
    return paths


def test_the_models_grid_keeps_two_columns_beside_the_details_at_900(
        qtbot, main_window, core, tmp_path: Path):
    paths = models_page_at_900(qtbot, main_window, core, tmp_path)
    page = main_window.library
    assert page.grid.columns() >= 2 and page.sidebar.isVisible()
    assert page.select_path(str(paths[0]))
    qtbot.waitUntil(lambda: page.detail_scroll.isVisible(), timeout=2000)
    # The details did not push the window wider.
    assert main_window.width() == SMALL[0] >= main_window.minimumSizeHint().width()
    qtbot.waitUntil(lambda: page.grid.columns() >= 2, timeout=2000)
    assert not page.sidebar.isVisible()  # the types gave way to the grid
    page.select_path(str(tmp_path / "not-there"))  # nothing chosen: the details fold…
    qtbot.waitUntil(lambda: page.sidebar.isVisible(), timeout=2000)  # …and the types return
    assert page.grid.columns() >= 2
    main_window.resize(1920, 1080)
    assert page.select_path(str(paths[0]))
    qtbot.waitUntil(lambda: page.grid.columns() >= 2 and page.sidebar.isVisible(), timeout=2000)
    # Back to 900 with the sidebar and the details shown: the sidebar must not hold the
    # window wide.
    assert main_window.minimumSizeHint().width() <= SMALL[0]
    main_window.resize(*SMALL)
    qtbot.waitUntil(lambda: main_window.width() == SMALL[0], timeout=2000)
    qtbot.waitUntil(lambda: page.grid.columns() >= 2, timeout=2000)


def inside(widget: QWidget, area: QWidget) -> bool:
    """Whether ``widget`` is shown within ``area``'s width (no scrolling sideways) and
    starts within its height."""
    rect = QRect(widget.mapTo(area, widget.rect().topLeft()), widget.size())
    return (widget.isVisible() and rect.left() >= 0 and rect.right() <= area.width()
            and 0 <= rect.top() < area.height())


def test_the_civitai_details_controls_are_in_reach_at_900_and_a_long_folder_is_elided(
        qtbot, main_window, core, tmp_path: Path, civitai_catalog: SampleCatalog):
    deep = tmp_path / "a-rather-long-folder-name" / "with-more-levels" / "stable-diffusion"
    (deep / "models").mkdir(parents=True)
    core.settings.library_folders = [str(deep / "models")]
    core.save_settings()
    small_window(qtbot, main_window)
    main_window.show_page("civitai")
    page = main_window.browser
    search(qtbot, page, "Paperfold")
    page.open_model(page.results.model_at(0))
    qtbot.waitUntil(lambda: page.shown_folder is not None, timeout=15_000)
    assert main_window.width() == SMALL[0]
    detail = page.detail
    scroll = detail.findChild(QScrollArea)
    assert not scroll.horizontalScrollBar().isVisible()
    viewport = scroll.viewport()
    for widget in (detail.carousel, detail.versions, detail.target_label,
                   detail.change_target_button, detail.download_version_button):
        assert inside(widget, viewport), widget.objectName()
    label = detail.target_label
    shown, whole = label.text(), label.full_text()
    assert "…" in shown and shown.startswith("Saves to /") and shown.endswith("/")
    assert label.fontMetrics().horizontalAdvance(shown) <= label.contentsRect().width()
    assert str(deep / "models") in whole and str(deep / "models") in label.toolTip()


def test_the_status_bars_parts_never_overlap_and_a_long_message_is_elided_at_900(
        qtbot, main_window):
    from civdesk.ui.downloads.summary import QueueCounts

    small_window(qtbot, main_window)
    bar = main_window.statusBar()
    main_window._show_rate_status("Civitai is rate limiting: slowed down, resuming in 30 s")
    main_window.downloads_status.show_counts(QueueCounts(
        downloading=1, name="an-extremely-long-checkpoint-name-v3-final.safetensors",
        percent=45, speed=12e6))
    qtbot.waitUntil(lambda: main_window.rate_label.isVisible(), timeout=2000)
    assert main_window.downloads_status.badge.text() == "⬇ 1"
    parts = [main_window.rate_label, main_window.count_label, main_window.downloads_status]
    rects = [QRect(w.mapTo(bar, w.rect().topLeft()), w.size()) for w in parts]
    for i, rect in enumerate(rects):
        assert bar.rect().contains(rect), parts[i].objectName()
        for other in rects[i + 1:]:
            assert not rect.intersects(other)
    for line in (main_window.rate_label, main_window.count_label,
                 main_window.downloads_status.line):
        assert line.label.fontMetrics().horizontalAdvance(line.text()) <= line.width()
    text = ("Download failed: cozyInteriors_v10.safetensors: Civitai wants you logged in for "
            "this file: set your API key in Settings, then retry")
    main_window.show_status(text)
    shown = bar.currentMessage()
    assert shown.endswith("…") and text.startswith(shown[:-1])  # elided, not cut
    assert bar.fontMetrics().horizontalAdvance(shown) <= min(r.left() for r in rects)
    assert bar.toolTip() == text == main_window.status_text()
    main_window.resize(1920, 1080)  # a wider window: more of the message, elided anew
    qtbot.waitUntil(lambda: len(bar.currentMessage()) > len(shown), timeout=2000)
    main_window.resize(*SMALL)
    main_window._show_rate_status("")  # the usual bar: a short message shows whole
    main_window.show_status("Copied path to the clipboard")
    assert bar.currentMessage() == "Copied path to the clipboard" and bar.toolTip() == ""


def test_civitai_cards_spread_over_the_width(qtbot, main_window, civitai_catalog):
    from civdesk.ui.browser.delegate import CARD_WIDTH

    main_window.resize(1280, 800)
    main_window.show()
    main_window.show_page("civitai")
    page = main_window.browser
    search(qtbot, page, "")
    view = page.view
    qtbot.waitUntil(lambda: view.visualRect(view.model().index(0, 0)).isValid(), timeout=2000)
    cell = view.gridSize().width()
    columns = view.viewport().width() // cell
    assert cell >= CARD_WIDTH and columns >= 1
    # No card-wide margin left on the right of a row: the cells share the width.
    assert view.viewport().width() - columns * cell < CARD_WIDTH // 2


def test_details_opened_in_a_large_window_do_not_hold_it_wide(
        qtbot, main_window, core, tmp_path: Path):
    paths = models_page_at_900(qtbot, main_window, core, tmp_path)
    page = main_window.library
    main_window.resize(1920, 1080)
    assert page.select_path(str(paths[0]))
    qtbot.waitUntil(lambda: page.sidebar.isVisible() and page.detail_scroll.isVisible(),
                    timeout=2000)
    # The sidebar folds away at 900 px: it does not count in the least width.
    assert main_window.minimumSizeHint().width() <= SMALL[0]


def test_the_first_start_page_gives_its_steps_the_whole_page(
        qtbot, main_window, core, tmp_path: Path):
    small_window(qtbot, main_window)
    page = main_window.library
    main_window.show_page("models")
    read(qtbot, page)
    empty = page.empty_library
    assert empty.isVisible() and not page.sidebar.isVisible()  # no filters of nothing
    assert not page.sort.isEnabled() and not page.updates_button.isEnabled()
    for line in empty.text.text().splitlines():  # every line whole at 900 px
        assert empty.text.fontMetrics().horizontalAdvance(line) <= empty.text.width()
    for button in (empty.find_button, empty.add_button, empty.scan_button):
        assert inside(button, page)
    fill(core, tmp_path / "models", 2)
    read(qtbot, page)
    qtbot.waitUntil(lambda: page.sidebar.isVisible(), timeout=2000)
    assert page.sort.isEnabled() and page.updates_button.isEnabled()


def test_the_models_details_elide_a_long_path_in_its_middle(qtbot, tmp_path: Path):
    from dataclasses import replace

    from tests.ui.library_cards import numbered_entry

    from civdesk.ui.library.detail import DetailPane
    from civdesk.ui.library.rows import LibrarySnapshot
    from civdesk.ui.thumbnails import ThumbnailLoader

    long_path = "/mnt/models/" + "a-long-folder-name/" * 6 + "alpineDream_v10.safetensors"
    entry = replace(numbered_entry(1), path=long_path, file_name="alpineDream_v10.safetensors")
    pane = DetailPane(ThumbnailLoader(tmp_path / "cache"))
    qtbot.addWidget(pane)
    pane.resize(300, 900)
    pane.show()
    pane.show_entry(entry, LibrarySnapshot((entry,)))
    label = pane._values["Path"]
    qtbot.waitUntil(lambda: "…" in label.text(), timeout=2000)
    shown = label.text()
    assert shown.startswith("/mnt/") and shown.endswith(".safetensors")
    assert label.fontMetrics().horizontalAdvance(shown) <= label.contentsRect().width()
    assert label.toolTip() == long_path
    link = pane._values["Civitai"]
    assert "modelVersionId" in link.toolTip() and "modelVersionId" not in link.text().split(
        ">", 1)[1]  # the link's words are short; its address is whole in the tooltip
