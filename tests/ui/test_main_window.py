"""The whole window: navigation, the status area (scan line, downloads), shortcuts, state
across restarts."""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta, timezone

import pytest
from PySide6.QtCore import Qt, QThread
from PySide6.QtWidgets import QApplication, QDockWidget, QMessageBox
from tests.ui.conftest import LayoutRequests, open_core, wait_until_ready, write_model_file

from civdesk.core.civitai.client import CivitaiClient
from civdesk.ui import tasks
from civdesk.ui.downloads.summary import QueueCounts
from civdesk.ui.library.model import Role, Show
from civdesk.ui.main_window import MainWindow


def _scan(qtbot, window: MainWindow, folder) -> None:
    window.core.settings.library_folders = [str(folder)]
    window.show_page("models")
    qtbot.waitUntil(lambda: not window.library.reloading, timeout=5000)  # the first read
    with qtbot.waitSignal(window.notifier.notified, timeout=15_000) as notified:
        qtbot.mouseClick(window.library.scan_button, Qt.MouseButton.LeftButton)
    # The scan's end starts a new read of the library, and a quiet update check that reads
    # it again when done.
    with qtbot.waitSignal(window.library.snapshot_loaded, timeout=5000):
        pass
    wait_until_settled(qtbot, window)
    return notified.args


def wait_until_settled(qtbot, window: MainWindow) -> None:
    """Until no update check runs and the library read after it is on screen."""
    page = window.library
    qtbot.waitUntil(
        lambda: not page.update_check_running and not page.reloading,
        timeout=10_000,
    )


def model_requests(civitai) -> list:
    """The update checks' requests: ``/api/v1/models?ids=…``."""
    return [r for r in civitai.requests if r.path == "/api/v1/models" and "ids" in r.query]


def test_navigation_shows_each_page(qtbot, main_window):
    main_window.show()
    nav = main_window.nav
    for name, widget in (
        ("civitai", main_window.browser),
        ("downloads", main_window.downloads_page),
        ("settings", main_window.settings_page),
        ("models", main_window.library),
    ):
        item = nav.item_of(name)
        qtbot.mouseClick(nav.viewport(), Qt.MouseButton.LeftButton,
                         pos=nav.visualItemRect(item).center())
        assert main_window.pages.currentWidget() is widget
        assert main_window.current_page == name and nav.current_name() == name
    # No dock under the pages any more: they have the window's height.
    assert main_window.findChildren(QDockWidget) == []


def test_ctrl_1_to_4_and_show_page_mark_the_sidebar(qtbot, main_window):
    main_window.show()
    qtbot.waitExposed(main_window)
    main_window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is main_window, timeout=2000)
    for key, name in ((Qt.Key.Key_1, "civitai"), (Qt.Key.Key_2, "models"),
                      (Qt.Key.Key_3, "downloads"), (Qt.Key.Key_4, "settings")):
        qtbot.keyClick(main_window, key, Qt.KeyboardModifier.ControlModifier)
        assert main_window.current_page == name and main_window.nav.current_name() == name
    main_window.show_page("downloads")
    assert main_window.nav.current_name() == "downloads"
    assert main_window.nav.selectedItems() == [main_window.nav.item_of("downloads")]


def test_scan_library_reports_on_the_activity_line_and_notifies(qtbot, main_window, model_folder):
    main_window.show()
    title, message = _scan(qtbot, main_window, model_folder)
    assert title == "Library scan finished"
    assert "4 identified" in message
    # Then the quiet update check after the scan adds its outcome to the line.
    assert main_window.activity.text() == (
        f"Scan finished: {message}. 1 update available")
    assert main_window.library.proxy.rowCount() == 4
    assert main_window.count_label.text() == "4 model files"
    assert main_window.library.scan_button.isEnabled()
    assert message.startswith("4 files, 4 identified")  # the title says it is a scan
    assert main_window.status_text() == f"Library scan finished: {message}"


def test_scan_without_folders_sends_the_user_to_settings(qtbot, main_window):
    main_window.show()
    main_window.show_page("models")
    qtbot.mouseClick(main_window.library.scan_button, Qt.MouseButton.LeftButton)
    assert main_window.current_page == "settings"
    assert not main_window.scans.running


def test_a_failing_scan_says_why(qtbot, main_window, tmp_path):
    main_window.show()
    main_window.core.settings.library_folders = [str(tmp_path / "unplugged drive")]
    with qtbot.waitSignal(main_window.scans.stopped, timeout=10_000):
        main_window.start_scan()
    text = main_window.activity.text()
    assert text.startswith(("Scan failed:", "Scan finished:"))
    assert "unplugged drive" in text


def test_cancel_on_the_activity_line_stops_the_scan(qtbot, main_window, model_folder):
    main_window.show()
    main_window.core.settings.library_folders = [str(model_folder)]
    with qtbot.waitSignal(main_window.scans.stopped, timeout=10_000):
        assert main_window.start_scan()
        assert not main_window.start_scan()  # one at a time
        qtbot.mouseClick(main_window.activity.cancel_button, Qt.MouseButton.LeftButton)
    assert main_window.activity.text().startswith(("Scan cancelled", "Scan finished"))


def test_shortcuts_focus_search_and_refresh(qtbot, main_window):
    main_window.show()
    qtbot.waitExposed(main_window)
    main_window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is main_window, timeout=2000)
    main_window.show_page("settings")
    qtbot.keyClick(main_window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert main_window.current_page == "models"
    qtbot.waitUntil(lambda: main_window.library.search.hasFocus(), timeout=1000)
    with qtbot.waitSignal(main_window.library.snapshot_loaded, timeout=3000):
        qtbot.keyClick(main_window, Qt.Key.Key_F5)


@pytest.mark.parametrize("page", ["settings", "downloads"])
def test_state_and_settings_survive_a_restart(qtbot, core, civitai, tmp_path, page):
    first = MainWindow(core, use_tray=False)
    qtbot.addWidget(first)
    wait_until_ready(qtbot, first)
    first.show()
    first.resize(760, 520)  # the offscreen screen is 800x600: restore clamps to it
    size = first.size()
    first.show_page("settings")
    first.settings_page.add_library_folder(str(tmp_path))
    first.settings_page.minimize_to_tray.click()  # it may be scrolled out of sight at 760 px
    first.show_page(page)
    first.close()
    core.close()

    again = open_core(core.paths.data, civitai.base_url)
    try:
        second = MainWindow(again, use_tray=False)
        qtbot.addWidget(second)
        wait_until_ready(qtbot, second)
        assert second.current_page == page and second.nav.current_name() == page
        assert second.size() == size
        assert again.settings.library_folders == [str(tmp_path.resolve())]
        assert second.settings_page.minimize_to_tray.isChecked()
        second.close()
    finally:
        tasks.wait_for_pools(5000)
        again.close()
        core.db = again.db  # the fixture closes core; both are closed now


def test_no_thread_is_left_running_after_close(qtbot, core, model_folder):
    window = MainWindow(core, use_tray=False)
    qtbot.addWidget(window)
    wait_until_ready(qtbot, window)
    window.show()
    core.settings.library_folders = [str(model_folder)]
    window.start_scan()
    window.close()
    assert not window.scans.running or window.scans.job.cancel_event.is_set()
    assert not window.downloads.running
    assert tasks.wait_for_pools(5000)
    assert tasks.active_thread_count() == 0
    threads = [t for t in QApplication.instance().findChildren(QThread) if t.isRunning()]
    assert threads == []


@pytest.mark.parametrize("quit_via", ["close"])
def test_download_notifications_reach_the_notifier(qtbot, main_window, civitai_catalog, quit_via):
    main_window.show()
    worker = main_window.downloads
    with qtbot.waitSignal(main_window.notifier.notified, timeout=15_000) as blocker:
        worker.enqueue(civitai_catalog.vae_v1.id)
    assert blocker.args == ["Download complete", civitai_catalog.vae_v1.files[0].name]
    # The same version again: the library has it, so nothing is fetched and the note says where.
    with qtbot.waitSignal(main_window.notifier.notified, timeout=15_000) as blocker:
        worker.enqueue(civitai_catalog.vae_v1.id)
    title, text = blocker.args
    assert title == "Already in your library"
    assert text.startswith(f"{civitai_catalog.vae_v1.files[0].name}: ")
    assert text.endswith(civitai_catalog.vae_v1.files[0].name)


def test_a_failing_shutdown_step_neither_escapes_close_nor_skips_the_rest(
    qtbot, core, monkeypatch
):
    window = MainWindow(core, use_tray=False)
    qtbot.addWidget(window)
    wait_until_ready(qtbot, window)
    window.show()

    def broken(*_args, **_kwargs):
        raise RuntimeError("settings could not be flushed")

    monkeypatch.setattr(window.settings_page, "flush", broken)
    monkeypatch.setattr(window, "save_state", broken)
    with qtbot.waitSignal(window.quit_requested):
        assert window.close()
    # The later steps ran: the download thread is stopped.
    assert not window.downloads.running and window.downloads.closed


def test_a_window_closed_at_once_leaves_no_thread(qtbot, core):
    # Closed before the download queue was built (CIVDESK_QUIT_AFTER_MS=0 does this).
    window = MainWindow(core, use_tray=False)
    qtbot.addWidget(window)
    window.show()
    window.close()
    qtbot.wait(200)
    assert not window.downloads.running
    assert tasks.wait_for_pools(5000)


def test_allowing_nsfw_in_settings_unblurs_both_grids(qtbot, main_window):
    assert not main_window.library.delegate.allow_nsfw
    assert not main_window.browser.nsfw_box.isChecked()
    with qtbot.waitSignal(main_window.settings_page.settings_changed, timeout=5000):
        main_window.settings_page.allow_nsfw.setChecked(True)
    assert main_window.library.delegate.allow_nsfw
    assert main_window.browser.nsfw_box.isChecked()


def test_check_for_updates_reports_on_the_activity_line(qtbot, main_window, model_folder):
    _scan(qtbot, main_window, model_folder)
    line = main_window.activity
    texts: list[str] = []
    main_window.library.update_check_progressed.connect(lambda *_: texts.append(line.label.text()))
    with qtbot.waitSignal(main_window.library.snapshot_loaded, timeout=10_000):
        qtbot.mouseClick(main_window.library.updates_button, Qt.MouseButton.LeftButton)
    assert texts[0] == "Checking for updates…"
    assert texts[-1] == "Checking for updates: 4 of 4 models"
    assert line.label.text() == "1 update available"
    assert not line.bar.isVisible() and not line.cancel_button.isVisible()


def test_the_update_line_drops_the_update_once_it_is_downloaded(
        qtbot, main_window, model_folder, civitai_catalog):
    _scan(qtbot, main_window, model_folder)
    with qtbot.waitSignal(main_window.library.snapshot_loaded, timeout=10_000):
        qtbot.mouseClick(main_window.library.updates_button, Qt.MouseButton.LeftButton)
    line = main_window.activity
    assert line.label.text() == "1 update available"
    with qtbot.waitSignal(main_window.downloads.task_finished, timeout=15_000) as done:
        main_window.downloads.enqueue(civitai_catalog.lora_v2.id, dest_dir=model_folder)
    assert done.args[0].state == "completed"
    qtbot.waitUntil(lambda: line.label.text() != "1 update available", timeout=10_000)
    assert "update available" not in line.label.text()
    assert line.label.text().endswith("all up to date")


# The offscreen platform has no tray window to follow; Qt says so once.
@pytest.mark.qt_log_ignore(r"No such signal QPlatformNativeInterface::systemTrayWindowChanged")
def test_the_tray_shows_the_one_colour_tray_glyph_not_the_app_icon(qtbot, core):
    from civdesk.ui import icons

    window = MainWindow(core, icon=icons.app_icon(), use_tray=True)
    qtbot.addWidget(window)
    wait_until_ready(qtbot, window)
    try:
        shown = window.tray.icon.icon().pixmap(32, 32).toImage()
        assert shown == icons.tray_icon().pixmap(32, 32).toImage()
        assert shown != icons.app_icon().pixmap(32, 32).toImage()
    finally:
        window.close()


@pytest.mark.qt_log_ignore(r"No such signal QPlatformNativeInterface::systemTrayWindowChanged")
def test_the_tray_starts_paused_when_the_queue_was_left_paused(qtbot, core):
    from civdesk.core.downloads.store import TaskStore

    TaskStore(core.db).set_paused(True)  # as the last run's Pause all left it
    window = MainWindow(core, use_tray=True)
    qtbot.addWidget(window)
    wait_until_ready(qtbot, window)
    try:
        action = window.tray.pause_action
        assert action.isChecked() and action.text() == "Resume downloads"
        assert window.downloads_page.pause_button.text() == "Resume all"
    finally:
        window.close()


def test_one_stylesheet_from_resources_is_applied(qapp):
    from civdesk.ui import icons, theme

    before = qapp.styleSheet()
    try:
        theme.apply_theme(qapp, force_dark=False)
        assert qapp.styleSheet() == icons.stylesheet()
        assert "QListWidget#sidebar" in qapp.styleSheet()
    finally:
        qapp.setStyleSheet(before)


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_the_selected_sidebar_entry_is_readable_in_both_themes(qtbot, qapp, dark):
    # A light theme drew it white on a pale highlight: nothing to read.
    from civdesk.ui import theme
    from civdesk.ui.library.model import LibrarySnapshot
    from civdesk.ui.library.sidebar import TypeSidebar

    style, palette, sheet = qapp.style().name(), qapp.palette(), qapp.styleSheet()
    try:
        theme.apply_theme(qapp, force_dark=dark)
        bar = TypeSidebar()
        qtbot.addWidget(bar)
        bar.set_counts(LibrarySnapshot())
        bar.resize(220, 200)
        bar.show()
        qtbot.waitExposed(bar)
        bar.setCurrentRow(0)
        image = bar.viewport().grab(bar.visualItemRect(bar.item(0))).toImage()
        lightness = {image.pixelColor(x, y).lightness()
                     for x in range(image.width()) for y in range(image.height())}
        assert max(lightness) - min(lightness) > 100  # text stands out from its ground
    finally:
        qapp.setStyle(style)
        qapp.setPalette(palette)
        qapp.setStyleSheet(sheet)


def test_a_scan_fills_update_badges_without_a_manual_check(
    qtbot, main_window, model_folder, civitai, civitai_catalog
):
    page = main_window.library
    main_window.show()
    _scan(qtbot, main_window, model_folder)
    # The LORA's v1 is on disk and Civitai has v2: its card carries the update by itself.
    lora = civitai_catalog.lora
    row = page.model.row_of(next(e.path for e in page.snapshot.entries if e.model_id == lora.id))
    update = page.model.index(row, 0).data(Role.Update)
    assert update is not None and update.latest_version_id == civitai_catalog.lora_v2.id
    page.show_filter(("show", Show.UPDATES))
    assert [page.proxy.index(r, 0).data() for r in range(page.proxy.rowCount())] == [
        "Paperfold Style"
    ]
    assert main_window.activity.text().endswith(". 1 update available")
    asked = model_requests(civitai)
    assert len(asked) == 1  # the four models in one request
    # A second scan minutes later asks Civitai nothing about updates: all checked just now.
    civitai.clear_requests()
    _scan(qtbot, main_window, model_folder)
    assert model_requests(civitai) == []
    assert main_window.activity.text().endswith(". 1 update available")


def test_a_window_opened_on_a_library_checks_for_updates_once(
    qtbot, main_window, model_folder, core, civitai
):
    _scan(qtbot, main_window, model_folder)
    main_window.close()
    # Six hours later: every model is due again.
    past = datetime.now(timezone.utc) - timedelta(hours=7)
    for model_id in {e.model_id for e in main_window.library.snapshot.entries if e.model_id}:
        core.library.record_update_check(model_id, None, past)
    civitai.clear_requests()
    window = MainWindow(core, use_tray=False)
    qtbot.addWidget(window)
    wait_until_ready(qtbot, window)
    qtbot.waitUntil(lambda: window.activity.text() == "1 update available",
                    timeout=10_000)  # fmt: skip
    wait_until_settled(qtbot, window)
    assert len(model_requests(civitai)) == 1
    assert window.library.snapshot.update_count == 1
    window.close()


def test_an_offline_update_check_is_a_quiet_status_line(
    qtbot, main_window, model_folder, core, monkeypatch
):
    _scan(qtbot, main_window, model_folder)
    main_window.close()
    with socket.socket() as sock:  # a port nobody listens on: connections are refused
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setattr(core, "client", lambda **_: CivitaiClient(dead, backoff=0.0))
    past = datetime.now(timezone.utc) - timedelta(hours=7)
    for model_id in {e.model_id for e in main_window.library.snapshot.entries if e.model_id}:
        core.library.record_update_check(model_id, None, past)
    window = MainWindow(core, use_tray=False)
    qtbot.addWidget(window)
    wait_until_ready(qtbot, window)
    line = window.activity.label
    qtbot.waitUntil(lambda: "could not be checked for updates" in line.text(), timeout=10_000)
    wait_until_settled(qtbot, window)
    # What earlier checks found still shows; what this one could not do is said once.
    assert line.text().startswith("1 update available (4 of 4 models could not be checked")
    assert not [w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox)]
    assert window.library.updates_button.isEnabled()
    window.close()


def test_a_rate_limited_check_after_a_scan_says_so_without_a_dialog(
    qtbot, main_window, model_folder, civitai, core, monkeypatch
):
    # No waiting between the client's own retries; all of them answered 429, and no
    # patience to wait the limit out.
    monkeypatch.setattr(core, "client", lambda **_: CivitaiClient(
        civitai.base_url, backoff=0.0, rate_limit_patience=0))
    civitai.rate_limit(n=20, path_prefix="/api/v1/models")
    _scan(qtbot, main_window, model_folder)
    text = main_window.activity.text()
    assert text.startswith("Scan finished: ") and "could not be checked for updates" in text
    assert not [w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox)]
    assert main_window.library.snapshot.update_count == 0


def test_counts_that_change_during_work_do_not_relayout_the_window(qtbot, main_window):
    """The library count (after each reload), the queue's line and count (each task) and
    the scan's progress are status lines: a new number repaints them, and the window, whose
    layout costs tens of milliseconds of GIL hand-overs while a scan runs, is not laid out
    again."""
    main_window.show_page("models")
    main_window.show_activity("Scanning library: 0 files", 0, 0, cancellable=True)
    main_window.show()
    qtbot.waitExposed(main_window)
    wait_until_settled(qtbot, main_window)
    counter = LayoutRequests()
    main_window.installEventFilter(counter)
    try:
        # What the start-up work still lays out (a slow machine finishes it late) is not
        # the counts' doing: wait for 100 ms without any layout request first.
        for _ in range(50):
            counter.count = 0
            qtbot.wait(100)
            if counter.count == 0:
                break
        for n in (4, 1_234, 98_765):
            main_window.count_label.setText(f"{n} model files")
            main_window.downloads_page.count_label.setText(f"{n} downloads in queue · 1 running")
            main_window.downloads_status.show_counts(QueueCounts(
                queued=n, downloading=1, finished=n % 7, name="model.safetensors",
                percent=n % 100, speed=n * 1000.0))
            main_window.show_activity(f"Scanning library: {n} of 99999 files · f{n}.ckpt",
                                      n, 99_999, cancellable=True)
            qtbot.wait(5)
    finally:
        main_window.removeEventFilter(counter)
    assert counter.count == 0
    assert main_window.count_label.text() == "98765 model files"


def test_show_in_library_of_a_version_no_longer_there_says_so(qtbot, main_window):
    main_window.show()
    main_window.show_in_library(987654)
    assert main_window.current_page == "models"
    assert main_window.status_text() == (
        "That version is not in the library any more: scan to refresh it")


def test_saving_another_setting_leaves_the_civitai_page_as_it_was(qtbot, main_window):
    w = main_window
    w.show()
    browser = w.browser
    w.show_page("civitai")
    browser.nsfw_box.setChecked(True)  # this page's own choice, not the saved preference
    with qtbot.waitSignal(browser.page_loaded, timeout=10_000):
        qtbot.keyClick(browser.search_box, Qt.Key.Key_Return)
    loads: list[object] = []
    browser.page_loaded.connect(loads.append)
    w.show_page("settings")
    page = w.settings_page
    page.key_edit.setText("a-new-key")
    page.key_edit.textEdited.emit("a-new-key")
    with qtbot.waitSignal(page.settings_changed, timeout=5000):
        page.key_edit.editingFinished.emit()
    w.show_page("civitai")
    qtbot.wait(200)
    assert browser.nsfw_box.isChecked() and loads == []  # no new search either

    browser.nsfw_box.setChecked(False)
    w.core.settings.allow_nsfw = True  # the preference itself changed: the page follows
    page.settings_changed.emit()
    assert browser.nsfw_box.isChecked()


def failed_for_want_of_a_key(qtbot, window: MainWindow, civitai, catalog):
    """A download that failed because Civitai wants a key (the queue's task record)."""
    version = catalog.lora_v2
    civitai.login_required(version)
    with qtbot.waitSignal(window.downloads.task_finished, timeout=15_000) as failed:
        window.downloads.enqueue(version.id)
    task = failed.args[0]
    assert task.error_kind == "auth"
    return task


def test_retry_right_after_pasting_the_key_uses_it(qtbot, main_window, civitai, civitai_catalog):
    from tests.conftest import TEST_API_KEY

    w = main_window
    task = failed_for_want_of_a_key(qtbot, w, civitai, civitai_catalog)
    w.show_page("settings")
    w.settings_page.key_edit.insert(TEST_API_KEY)  # a paste: saved a moment later, or…
    w.settings_page.key_edit.textEdited.emit(w.settings_page.key_edit.text())
    w.downloads_page.select_task(task.id)
    with qtbot.waitSignal(w.downloads.task_finished, timeout=15_000) as retried:
        qtbot.mouseClick(w.downloads_page.retry_button, Qt.MouseButton.LeftButton)  # …now, first
    assert retried.args[0].state == "completed"


def test_retry_while_the_pasted_key_is_being_saved_waits_for_that_save(
        qtbot, main_window, civitai, civitai_catalog, monkeypatch):
    # A slow machine: the save timer fired before Retry, and its save is still running.
    import threading

    from tests.conftest import TEST_API_KEY

    w = main_window
    task = failed_for_want_of_a_key(qtbot, w, civitai, civitai_catalog)
    release = threading.Event()
    store_key = w.core.keys.set
    monkeypatch.setattr(w.core.keys, "set", lambda key: (release.wait(10), store_key(key)))
    page = w.settings_page
    page.key_edit.insert(TEST_API_KEY)
    page.key_edit.textEdited.emit(page.key_edit.text())
    page.key_edit.editingFinished.emit()  # the save starts now, as the timer would
    qtbot.waitUntil(lambda: not page._unsaved, timeout=5000)
    w.downloads_page.select_task(task.id)
    qtbot.mouseClick(w.downloads_page.retry_button, Qt.MouseButton.LeftButton)
    release.set()
    with qtbot.waitSignal(w.downloads.task_finished, timeout=15_000) as retried:
        pass
    assert retried.args[0].state == "completed"


def test_an_update_check_ending_during_a_scan_leaves_the_scan_its_line(
    qtbot, main_window, model_folder, civitai
):
    w = main_window
    w.show()
    _scan(qtbot, w, model_folder)
    for n in range(2):  # new to the library: the next scan asks Civitai about them
        (model_folder / f"new{n}.safetensors").write_bytes(os.urandom(1000))
    civitai.api_latency(0.6)
    w.library.check_all_updates()
    qtbot.wait(100)
    assert w.start_scan()  # its lookups wait as long as the check: it ends first
    line = w.activity
    with qtbot.waitSignal(w.library.update_check_finished, timeout=10_000) as checked:
        pass
    said = checked.args[0]
    assert w.scans.running
    assert line.cancel_button.isVisible() and said not in line.label.text()
    assert w.status_text() == said
    qtbot.waitUntil(lambda: not w.scans.running, timeout=10_000)


def _unknown_files(folder, count: int) -> list:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"f{n:03d}.safetensors" for n in range(count)]
    for path in paths:
        path.write_bytes(os.urandom(4096))
    return paths


def _wait_settled_after_scan(qtbot, window: MainWindow) -> None:
    qtbot.waitUntil(lambda: not window.scans.running, timeout=30_000)
    page = window.library
    qtbot.waitUntil(lambda: not page.reloading, timeout=10_000)


def test_a_folder_removed_while_a_scan_runs_leaves_the_library(
    qtbot, main_window, civitai, tmp_path, monkeypatch
):
    w = main_window
    keep, drop = tmp_path / "keep", tmp_path / "drop"
    _unknown_files(keep, 3)
    _unknown_files(drop, 12)
    w.core.settings.library_folders = [str(keep), str(drop)]
    w.settings_page.load()
    civitai.api_latency(0.5)  # the scan's lookups: it still runs when the folder goes
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    assert w.start_scan()
    qtbot.wait(200)
    w.settings_page.folders.setCurrentRow(1)
    w.settings_page._remove_selected_folder()
    _wait_settled_after_scan(qtbot, w)
    qtbot.waitUntil(lambda: not any(f.path.startswith(str(drop))
                                    for f in w.core.library.local_files()), timeout=5000)
    assert len(w.core.library.local_files()) == 3


def test_a_file_deleted_while_a_scan_looks_it_up_stays_deleted(
    qtbot, main_window, civitai, civitai_catalog, tmp_path, monkeypatch
):
    w = main_window
    root = tmp_path / "models"
    lora = write_model_file(root / "Lora", civitai_catalog.lora_v1.files[0])
    _unknown_files(root / "x", 10)
    w.core.settings.library_folders = [str(root)]
    civitai.fail(n=1000, status=503, path_prefix="/api/v1/model-versions")  # Civitai down
    client = w.core.client
    monkeypatch.setattr(w.core, "client",
                        lambda **_: CivitaiClient(civitai.base_url, backoff=0.0))
    assert w.start_scan()
    _wait_settled_after_scan(qtbot, w)
    assert not w.core.library.local_file(lora).version_id
    monkeypatch.setattr(w.core, "client", client)
    civitai.reset_faults()
    civitai.api_latency(1.0)  # the next scan identifies it, slowly
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    assert w.start_scan()
    qtbot.wait(300)
    victim = next(e for e in w.library.snapshot.entries if e.path == str(lora))
    w.library.delete_entry(victim)
    qtbot.waitUntil(lambda: not lora.exists(), timeout=5000)
    _wait_settled_after_scan(qtbot, w)
    qtbot.waitUntil(lambda: w.core.library.local_file(lora) is None, timeout=5000)
    qtbot.waitUntil(lambda: os.listdir(lora.parent) == [], timeout=5000)  # no companions


@pytest.mark.parametrize(("screen", "expected"), [
    ((1920, 1040), (1280, 820)),  # full HD: the size the layout is made for
    ((1366, 728), (1229, 655)),  # a small laptop: nine tenths of what is free
    ((800, 600), (720, 540)),
])
def test_the_first_window_fits_the_screen(screen, expected):
    from PySide6.QtCore import QSize

    from civdesk.ui.main_window import first_size

    assert first_size(QSize(*screen)) == QSize(*expected)


def test_a_first_window_on_a_small_screen_is_not_larger_than_it(qtbot, core):
    window = MainWindow(core, use_tray=False)
    qtbot.addWidget(window)
    wait_until_ready(qtbot, window)
    available = window.screen().availableGeometry().size()
    assert window.width() <= available.width() and window.height() <= available.height()
