"""The whole journey in the real window, with real clicks and keys, against the Civitai double.

Civitai page → search → open a model → Download → its progress on the Downloads page, then
completed → the notification → the card's Downloaded badge → the Models page shows the file.
And a download that fails (login required, no key) says why on the Downloads page while the
next one completes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from tests.conftest import TEST_API_KEY
from tests.double import SampleCatalog

from civdesk.core.downloads.queue import TaskSnapshot
from civdesk.ui.browser.model import DOWNLOADED, ResultRole
from civdesk.ui.downloads.model import TaskRole
from civdesk.ui.main_window import MainWindow

WAIT_MS = 15_000


@pytest.fixture
def window(main_window: MainWindow, tmp_path: Path) -> MainWindow:
    main_window.core.settings.download_root = str(tmp_path / "models")
    main_window.resize(1200, 800)
    main_window.show()
    return main_window


def click_nav(qtbot, window: MainWindow, page: str) -> None:
    nav = window.nav
    qtbot.mouseClick(nav.viewport(), Qt.MouseButton.LeftButton,
                     pos=nav.visualItemRect(nav.item_of(page)).center())
    assert window.current_page == page


def search_and_open(qtbot, window: MainWindow, text: str) -> None:
    """Type a query + Enter, then open the first card with Enter."""
    browser = window.browser
    qtbot.mouseClick(browser.search_box, Qt.MouseButton.LeftButton)
    qtbot.keyClicks(browser.search_box, text)
    with qtbot.waitSignal(browser.page_loaded, timeout=WAIT_MS):
        qtbot.keyClick(browser.search_box, Qt.Key.Key_Return)
    assert browser.results.rowCount() >= 1
    first = browser.view.model().index(0, 0)
    qtbot.waitUntil(lambda: browser.view.visualRect(first).isValid())
    qtbot.mouseClick(
        browser.view.viewport(), Qt.MouseButton.LeftButton,
        pos=browser.view.visualRect(first).center(),
    )  # fmt: skip
    with qtbot.waitSignal(browser.model_opened, timeout=WAIT_MS):
        qtbot.keyClick(browser.view, Qt.Key.Key_Return)
    assert browser.stack.currentWidget() is browser.detail


def test_search_open_download_then_the_file_is_in_the_library(
    qtbot, window: MainWindow, civitai_catalog: SampleCatalog
):
    click_nav(qtbot, window, "civitai")
    search_and_open(qtbot, window, "Harbor")
    version = civitai_catalog.checkpoint_v1
    assert window.browser.detail.current_version().id == version.id

    downloads, notifier = window.downloads_page, window.notifier
    # Listening before the click: the file is small, and a wait set up only after the first
    # progress report could start after the download had finished (a rare, real failure).
    ended: dict[int, TaskSnapshot] = {}
    window.downloads.task_finished.connect(lambda task: ended.setdefault(task.version_id, task))
    notes: list[list[str]] = []
    notifier.notified.connect(lambda *args: notes.append(list(args)))
    # No key yet: the first download asks for one, and goes on once it is saved.
    qtbot.mouseClick(window.browser.detail.download_version_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.key_gate._dialog is not None, timeout=WAIT_MS)
    dialog = window.key_gate._dialog
    assert dialog is not None
    qtbot.keyClicks(dialog.key_edit, TEST_API_KEY)
    with qtbot.waitSignal(window.downloads.task_progress, timeout=WAIT_MS) as progress:
        qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert progress.args[0].state == "downloading"
    qtbot.waitUntil(lambda: version.id in ended and bool(notes), timeout=WAIT_MS)
    task = ended[version.id]
    assert task.state == "completed"
    assert notes == [["Download complete", downloads.model.index(0).data()]]
    row = downloads.model.row_of(task.id)
    assert downloads.model.index(row).data(TaskRole.STATE) == "completed"
    assert downloads.model.index(row).data(TaskRole.PROGRESS) == 100

    results = window.browser.results
    qtbot.waitUntil(
        lambda: results.index(0).data(ResultRole.LIBRARY_STATE) == DOWNLOADED, timeout=WAIT_MS
    )
    assert window.browser.detail.info["On disk"].text() == "Yes"

    click_nav(qtbot, window, "models")
    library = window.library
    qtbot.waitUntil(lambda: library.model.row_of(task.dest_path) is not None, timeout=WAIT_MS)
    assert Path(task.dest_path).is_file()
    assert library.select_path(task.dest_path)
    assert library.detail.title.text() == "Harbor Light"

    # Back on the model page: "Show in library" finds the file past a filter that hid it.
    library.show_filter(("type", "LORA"))
    click_nav(qtbot, window, "civitai")
    show = window.browser.detail.show_in_library_button
    assert show.isVisibleTo(window)
    qtbot.mouseClick(show, Qt.MouseButton.LeftButton)
    assert window.current_page == "models"
    current = library.current_entry()
    assert current is not None and current.path == task.dest_path
    assert library.detail.title.text() == "Harbor Light"


def test_a_failed_download_says_why_and_the_next_one_completes(
    qtbot, window: MainWindow, civitai_catalog: SampleCatalog
):
    locked, fine = civitai_catalog.lora_v2, civitai_catalog.embedding_v1
    civitai_catalog.double.login_required(locked)
    # The failure may come while the second search runs: record every finish from now on.
    ended: dict[int, TaskSnapshot] = {}
    window.downloads.task_finished.connect(lambda task: ended.setdefault(task.version_id, task))
    click_nav(qtbot, window, "civitai")
    search_and_open(qtbot, window, "Paperfold")
    detail = window.browser.detail
    assert detail.current_version().id == locked.id
    qtbot.mouseClick(detail.download_version_button, Qt.MouseButton.LeftButton)
    # Asked for a key first; trying without one is the user's choice (for the session).
    qtbot.waitUntil(lambda: window.key_gate._dialog is not None, timeout=WAIT_MS)
    dialog = window.key_gate._dialog
    assert dialog is not None
    qtbot.mouseClick(dialog.without_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(detail.back_button, Qt.MouseButton.LeftButton)
    window.browser.search_box.clear()
    search_and_open(qtbot, window, "Bad Hands")
    assert detail.current_version().id == fine.id
    qtbot.mouseClick(detail.download_version_button, Qt.MouseButton.LeftButton)

    qtbot.waitUntil(lambda: {locked.id, fine.id} <= set(ended), timeout=WAIT_MS)
    failed, completed = ended[locked.id], ended[fine.id]
    assert failed.state == "failed"
    assert completed.state == "completed"
    click_nav(qtbot, window, "downloads")
    downloads = window.downloads_page
    assert "1 failed" in downloads.count_label.text()
    assert "API key" in "".join(downloads.failures())
    reason = downloads.model.index(downloads.model.row_of(failed.id)).data(TaskRole.REASON)
    assert "set your API key in Settings" in reason
