"""The Models page's layout: the grid, the card size, the detail pane, the keyboard, the
empty library, and counts and sizes that say the same everywhere."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QApplication, QMenu, QStyle
from tests.ui.conftest import register
from tests.ui.library_cards import numbered_entry, paint_card
from tests.ui.test_download_model import snap

from civdesk.core.context import Core
from civdesk.ui.downloads.delegate import detail_text
from civdesk.ui.downloads.messages import size_text
from civdesk.ui.library.delegate import CardDelegate, detail_line
from civdesk.ui.library.detail import DetailPane
from civdesk.ui.library.model import LibraryFilterProxy, LibraryModel
from civdesk.ui.library.page import CARD_SCALE_KEY, LibraryPage, count_text
from civdesk.ui.library.rows import LibrarySnapshot
from civdesk.ui.thumbnails import ThumbnailLoader


def fill(core: Core, folder: Path, count: int) -> list[Path]:
    """``count`` files on disk, registered (unidentified), named file-00 … in order."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"file-{i:02d}.safetensors"
        path.write_bytes(b"x" * (i + 1))
        register(core.library, path, sha256=f"{i:064X}")
        paths.append(path)
    return paths


@pytest.fixture
def page(qtbot, core: Core, tmp_path: Path) -> LibraryPage:
    widget = LibraryPage(core, ThumbnailLoader.for_core(core),
                         state=QSettings(str(tmp_path / "window.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(widget)
    widget.resize(1200, 800)
    widget.show()
    return widget


def read(qtbot, page: LibraryPage) -> None:
    with qtbot.waitSignal(page.snapshot_loaded, timeout=5000):
        page.refresh()
    qtbot.waitUntil(lambda: not page.reloading, timeout=5000)


def test_one_size_reads_the_same_on_a_card_in_the_detail_pane_and_in_the_downloads(qtbot):
    entry = replace(numbered_entry(1), size=6_000_000_000)
    assert "6.0 GB" in detail_line(entry)  # the card's second line
    pane = DetailPane(ThumbnailLoader(Path("/nonexistent-cache")))
    qtbot.addWidget(pane)
    pane.show_entry(entry, LibrarySnapshot((entry,)))
    assert pane._values["Size"].text() == "6.0 GB"
    assert size_text(6_000_000_000) == "6.0 GB"
    assert detail_text(snap(1, "completed", bytes_done=6_000_000_000, bytes_total=None)) \
        == "6.0 GB"


def test_the_count_says_how_many_files_of_how_many_are_shown(qtbot, page, core, tmp_path):
    fill(core, tmp_path / "models", 3)
    read(qtbot, page)
    assert page.count_label.text() == "3 model files"
    assert not page.count_label.isVisible()  # everything shown: the status bar says it
    shown: list[str] = []
    page.count_changed.connect(shown.append)
    page.search.setText("file-01")
    page._apply_search()
    assert shown[-1] == page.count_label.text() == "1 of 3 model files shown"
    assert page.count_label.isVisible()
    assert count_text(1, 1) == "1 model file"
    assert count_text(1_200, 34_000) == "1,200 of 34,000 model files shown"


def test_the_updates_view_counts_models_and_says_how_many_files(qtbot, core, tmp_path):
    from civdesk.core.library.repository import UpdateInfo
    from civdesk.ui.library.sidebar import TypeSidebar

    one, two = numbered_entry(1), replace(numbered_entry(2), model_id=1)
    update = UpdateInfo(model_id=1, model_name="Model", model_type="LORA",
                        installed_version_ids=(10_001,), installed_version_names=("v1",),
                        latest_version_id=99, latest_version_name="v2")
    sidebar = TypeSidebar()
    qtbot.addWidget(sidebar)
    sidebar.set_counts(LibrarySnapshot((one, two), updates={1: update}))
    item = sidebar.item_for(("show", _show("UPDATES")))
    assert item.text() == "Updates  (1 model)"
    assert "(2 files on disk)" in item.toolTip()
    assert sidebar.item_for(("type", None)).text() == "All files  (2)"


def _show(name: str):  # type: ignore[no-untyped-def]
    from civdesk.ui.library.rows import Show

    return Show[name]


def test_cards_spread_over_the_width(qtbot, page, core, tmp_path):
    fill(core, tmp_path / "models", 12)
    read(qtbot, page)
    grid = page.grid
    card = page.delegate.scaled_card_size().width()
    # A width where cards packed to the left would leave most of a card's width empty.
    spare = (grid.viewport().width() - 16) % card
    page.resize(page.width() + (card * 3 // 4 - spare) % card, page.height())
    qtbot.waitUntil(lambda: (grid.viewport().width() - 16) % card >= card // 2, timeout=2000)
    qtbot.waitUntil(lambda: grid.visualRect(page.proxy.index(0, 0)).isValid(), timeout=2000)
    width = grid.viewport().width()
    cell = grid.gridSize().width()
    row = [grid.visualRect(page.proxy.index(i, 0)) for i in range(12)]
    columns = sum(1 for rect in row if rect.top() == row[0].top())
    assert cell >= card and columns == width // cell >= 2
    # The cells share the width (less a scroll bar's room): no card-wide margin is left…
    assert width - columns * cell < card // 4
    # …and each card sits in the middle of its cell.
    assert abs(row[0].left() - (cell - card) // 2) <= 1
    assert width - row[columns - 1].right() < card // 4 + (cell - card)


def test_the_card_size_slider_scales_cards_and_is_kept(qtbot, page, core, tmp_path):
    fill(core, tmp_path / "models", 3)
    read(qtbot, page)
    natural = CardDelegate.card_size()
    page.card_scale.setValue(140)
    assert page.delegate.scaled_card_size().height() == round(natural.height() * 1.4)
    assert page.grid.gridSize().height() == page.delegate.scaled_card_size().height()
    again = LibraryPage(core, page.thumbnails, state=page.state)
    qtbot.addWidget(again)
    assert again.card_scale.value() == 140
    assert int(page.state.value(CARD_SCALE_KEY)) == 140


def test_the_detail_pane_folds_away_until_a_card_is_chosen(qtbot, page, core, tmp_path):
    paths = fill(core, tmp_path / "models", 3)
    read(qtbot, page)
    assert not page.detail_scroll.isVisible()
    assert page.select_path(str(paths[1]))
    assert page.detail_scroll.isVisible() and page.detail.entry.path == str(paths[1])
    assert not page.select_path(str(tmp_path / "not-there"))
    assert not page.detail_scroll.isVisible()


def _key(qtbot, page: LibraryPage, key: Qt.Key,
         modifier: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
    qtbot.keyClick(page.grid, key, modifier)


def test_the_keyboard_moves_through_the_grid(qtbot, page, core, tmp_path):
    fill(core, tmp_path / "models", 20)
    read(qtbot, page)
    grid = page.grid
    grid.setFocus()
    grid.setCurrentIndex(page.proxy.index(0, 0))
    columns = sum(1 for r in range(20) if grid.visualRect(page.proxy.index(r, 0)).top() == 0)
    _key(qtbot, page, Qt.Key.Key_Right)
    assert grid.currentIndex().row() == 1
    _key(qtbot, page, Qt.Key.Key_Down)
    assert grid.currentIndex().row() == 1 + columns
    _key(qtbot, page, Qt.Key.Key_End)
    assert grid.currentIndex().row() == 19
    _key(qtbot, page, Qt.Key.Key_Home)
    assert grid.currentIndex().row() == 0
    _key(qtbot, page, Qt.Key.Key_PageDown)
    assert grid.currentIndex().row() > 0
    _key(qtbot, page, Qt.Key.Key_PageUp)
    assert grid.currentIndex().row() == 0


def test_enter_opens_the_details(qtbot, page, core, tmp_path):
    paths = fill(core, tmp_path / "models", 3)
    read(qtbot, page)
    page.grid.setFocus()
    page.grid.setCurrentIndex(page.proxy.index(2, 0))
    page.detail_scroll.hide()  # folded, as if closed
    _key(qtbot, page, Qt.Key.Key_Return)
    assert page.detail_scroll.isVisible() and page.detail.entry.path == str(paths[2])


@pytest.mark.parametrize(("key", "modifier"), [
    (Qt.Key.Key_Menu, Qt.KeyboardModifier.NoModifier),
    (Qt.Key.Key_F10, Qt.KeyboardModifier.ShiftModifier),
])
def test_the_menu_key_and_shift_f10_open_the_context_menu(
    qtbot, page, core, tmp_path, key, modifier
):
    fill(core, tmp_path / "models", 3)
    read(qtbot, page)
    page.grid.setFocus()
    page.grid.setCurrentIndex(page.proxy.index(1, 0))
    _key(qtbot, page, key, modifier)
    qtbot.waitUntil(lambda: isinstance(QApplication.activePopupWidget(), QMenu), timeout=2000)
    menu = QApplication.activePopupWidget()
    assert menu.objectName() == "libraryContextMenu"
    assert "Copy path" in [a.text() for a in menu.actions()]
    menu.close()


def test_hover_and_focus_change_how_a_card_looks(qtbot, tmp_path, qtmodeltester):
    entry = numbered_entry(1)
    model = LibraryModel()
    model.set_snapshot(LibrarySnapshot((entry,)))
    proxy = LibraryFilterProxy()
    proxy.setSourceModel(model)
    qtmodeltester.check(proxy)
    loader = ThumbnailLoader(tmp_path / "cache")
    try:
        delegate = CardDelegate(loader, snapshot=lambda: model.snapshot)
        index = proxy.index(0, 0)
        plain = paint_card(delegate, index)
        hovered = paint_card(delegate, index, QStyle.StateFlag.State_Enabled
                             | QStyle.StateFlag.State_MouseOver)
        assert hovered != plain
        # Focus shows only in a view that has the keyboard focus (paint_card has none).
        assert paint_card(delegate, index, QStyle.StateFlag.State_Enabled
                          | QStyle.StateFlag.State_HasFocus) == plain
    finally:
        loader.cancel_pending()


def test_the_grid_shows_the_keyboard_focus_on_the_current_card(qtbot, page, core, tmp_path):
    fill(core, tmp_path / "models", 2)
    read(qtbot, page)
    page.grid.setCurrentIndex(page.proxy.index(0, 0))
    page.window().activateWindow()
    page.grid.setFocus()
    qtbot.waitUntil(page.grid.hasFocus, timeout=2000)
    focused = page.grid.grab().toImage()
    page.search.setFocus()
    qtbot.waitUntil(lambda: not page.grid.hasFocus(), timeout=2000)
    assert page.grid.grab().toImage() != focused


# -- first start ------------------------------------------------------------------------------


def test_an_empty_library_says_what_to_do_with_the_buttons_to_do_it(qtbot, page, core):
    core.settings.library_folders = []
    read(qtbot, page)
    empty = page.empty_library
    assert page.stack.currentWidget() is empty
    assert "A1111" in empty.text.text() and "ComfyUI" in empty.text.text()
    assert not empty.scan_button.isEnabled()  # nothing to scan yet
    for button, signal in ((empty.find_button, page.find_folders_requested),
                           (empty.add_button, page.add_folder_requested)):
        with qtbot.waitSignal(signal, timeout=1000):
            qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    core.settings.library_folders = ["/models"]
    page.folders_changed()
    assert empty.scan_button.isEnabled() and "/models" in empty.folders.text()
    with qtbot.waitSignal(page.scan_requested, timeout=1000):
        qtbot.mouseClick(empty.scan_button, Qt.MouseButton.LeftButton)


def test_first_start_finds_the_folders_and_scans_from_the_empty_models_page(
    qtbot, main_window, model_folder, monkeypatch
):
    """A new user on the Models page: Find model folders adds what web UIs keep, and
    Scan library fills the grid."""
    import civdesk.ui.settings_page as settings_page

    monkeypatch.setattr(settings_page, "find_model_folders", lambda: [model_folder])
    window = main_window
    window.show_page("models")
    page = window.library
    qtbot.waitUntil(lambda: not page.reloading, timeout=5000)
    assert page.stack.currentWidget() is page.empty_library
    qtbot.mouseClick(page.empty_library.find_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.empty_library.scan_button.isEnabled(), timeout=5000)
    assert str(model_folder) in page.empty_library.folders.text()
    with qtbot.waitSignal(window.notifier.notified, timeout=15_000):
        qtbot.mouseClick(page.empty_library.scan_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.stack.currentWidget() is page.grid, timeout=10_000)
    assert page.proxy.rowCount() == 4
