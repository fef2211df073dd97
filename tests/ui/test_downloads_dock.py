"""The download dock with the real queue, real files and the loopback Civitai double."""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QThread
from PySide6.QtWidgets import QMessageBox
from tests.conftest import TEST_API_KEY
from tests.double import CivitaiDouble, SampleCatalog
from tests.ui.test_browser import search, stop_tasks

from civdesk.core.context import Core
from civdesk.core.downloads.queue import TaskSnapshot
from civdesk.ui.browser.model import DOWNLOADED, ResultRole
from civdesk.ui.browser.page import BrowserPage
from civdesk.ui.downloads.dock import DownloadDock
from civdesk.ui.downloads.model import TaskRole
from civdesk.ui.thumbnails import ThumbnailLoader

WAIT_MS = 15_000
# The core reads 4 MiB per chunk and reports progress (and sees a stop) between chunks:
# a file of several chunks, served at a throttled rate, is one that can be watched.
BIG = 10_000_000
RATE = 8_000_000  # bytes per second: about 1.3 s for BIG


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    return tmp_path / "models"


def open_core(data_dir: Path, double: CivitaiDouble, models_dir: Path) -> Core:
    core = Core.open(data_dir, api_base=double.base_url)
    core.settings.download_root = str(models_dir)
    return core


@pytest.fixture
def app_core(tmp_data_dir: Path, civitai: CivitaiDouble, models_dir: Path) -> Iterator[Core]:
    core = open_core(tmp_data_dir, civitai, models_dir)
    try:
        yield core
    finally:
        stop_tasks()
        core.close()


@pytest.fixture
def make_dock(qtbot, app_core: Core) -> Iterator[Callable[[], DownloadDock]]:
    """Builds docks on the shared data dir; every one is shut down and checked at the end."""
    docks: list[DownloadDock] = []

    def make() -> DownloadDock:
        dock = DownloadDock(app_core)
        _FINISHES[dock] = _Finishes(dock)
        qtbot.addWidget(dock)
        dock.resize(420, 500)
        dock.show()
        docks.append(dock)
        qtbot.waitUntil(lambda: dock.worker.running, timeout=WAIT_MS)
        return dock

    yield make
    for dock in docks:
        dock.shutdown()
        assert not dock.worker.running


@pytest.fixture
def dock(make_dock) -> DownloadDock:
    return make_dock()


class _Finishes:
    """Every task_finished of one dock's worker, recorded from the dock's creation on.

    A wait connected only after the action that starts a download could miss a finish
    that came first (a small file, a busy GUI thread): the signal is not kept for late
    listeners. Waits take the recorded finishes in order instead.
    """

    def __init__(self, dock: DownloadDock) -> None:
        self.seen: list[TaskSnapshot] = []
        self.taken: set[int] = set()
        dock.worker.task_finished.connect(self.seen.append)

    def next_of(self, version_id: int) -> int | None:
        """The index of the first finish of this version no wait has taken yet."""
        return next((i for i, task in enumerate(self.seen)
                     if i not in self.taken and task.version_id == version_id), None)


_FINISHES: weakref.WeakKeyDictionary[DownloadDock, _Finishes] = weakref.WeakKeyDictionary()


def wait_finished(qtbot, dock: DownloadDock, version_id: int, state: str = "completed"):
    """Wait for the next finish of this version's task (``state`` expected); returns it."""
    finishes = _FINISHES[dock]
    qtbot.waitUntil(lambda: finishes.next_of(version_id) is not None, timeout=WAIT_MS)
    index = finishes.next_of(version_id)
    assert index is not None
    finishes.taken.add(index)
    task = finishes.seen[index]
    assert task.state == state, task
    return task


def has_bytes(task: TaskSnapshot) -> bool:
    """A progress report after some bytes reached the .part (the first may come at 0)."""
    return task.bytes_done > 0


def row_of_version(dock: DownloadDock, version_id: int) -> int:
    rows = [r for r in range(dock.model.rowCount()) if dock.model.task(r).version_id == version_id]
    assert rows, f"no row for version {version_id}"
    return rows[-1]


def select(qtbot, dock: DownloadDock, row: int) -> None:
    index = dock.model.index(row)
    qtbot.waitUntil(lambda: dock.view.visualRect(index).isValid())
    dock.view.scrollTo(index)
    qtbot.mouseClick(
        dock.view.viewport(), Qt.MouseButton.LeftButton, pos=dock.view.visualRect(index).center()
    )
    assert dock.selected_task() is not None
    assert dock.selected_task().id == dock.model.task(row).id


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest().upper()


def test_a_download_shows_progress_then_completes_with_a_verified_file(
    qtbot, dock: DownloadDock, civitai: CivitaiDouble, models_dir: Path, qtmodeltester
):
    model = civitai.add_model("Harbor Light", "Checkpoint")
    version = civitai.add_version(model, "v1", files=[civitai.file(size=BIG)])
    civitai.throttle_downloads(RATE)
    with qtbot.waitSignal(dock.worker.task_progress, timeout=WAIT_MS) as progress:
        dock.worker.add(version.id)
    assert progress.args[0].state == "downloading"
    row = row_of_version(dock, version.id)
    qtbot.waitUntil(
        lambda: 0 < dock.model.index(row).data(TaskRole.PROGRESS) < 100, timeout=WAIT_MS
    )
    assert "1 download in queue" in dock.count_label.text()
    dock.view.viewport().repaint()  # the delegate paints a live row without complaint
    task = wait_finished(qtbot, dock, version.id)
    path = Path(task.dest_path)
    assert path.parent == models_dir / "Stable-diffusion"
    assert sha256(path) == version.files[0].sha256
    assert not list(models_dir.rglob("*.part"))
    qtbot.waitUntil(lambda: dock.model.index(row).data(TaskRole.STATE) == "completed")
    assert dock.count_label.text() == "Nothing queued"
    qtmodeltester.check(dock.model)


def test_a_failure_is_worded_and_the_next_task_still_completes(
    qtbot, dock: DownloadDock, civitai_catalog: SampleCatalog
):
    d = civitai_catalog.double
    locked, fine = civitai_catalog.lora_v2, civitai_catalog.embedding_v1
    d.login_required(locked)
    dock.worker.add(locked.id)
    dock.worker.add(fine.id)
    failed = wait_finished(qtbot, dock, locked.id, "failed")
    assert failed.error_kind == "auth"
    wait_finished(qtbot, dock, fine.id)
    assert "API key" in dock.failures_label.text()
    assert dock.failures_label.isVisible()
    reason = dock.model.index(row_of_version(dock, locked.id)).data(TaskRole.REASON)
    assert "set your API key in Settings" in reason
    assert len(dock.recent_failures()) == 1


def test_a_refused_key_says_so_instead_of_asking_for_a_key(
    qtbot, app_core: Core, dock: DownloadDock, civitai_catalog: SampleCatalog
):
    locked = civitai_catalog.lora_v2
    civitai_catalog.double.login_required(locked)
    app_core.session_api_key = "revoked-key"  # set, but Civitai no longer accepts it
    dock.worker.add(locked.id)
    failed = wait_finished(qtbot, dock, locked.id, "failed")
    assert failed.error_kind == "key_refused"
    reason = dock.model.index(row_of_version(dock, locked.id)).data(TaskRole.REASON)
    assert reason.startswith("Civitai refused your API key (expired or revoked): create a new "
                             "one on civitai.com → Account settings → API keys")
    assert "set your API key" not in reason + dock.failures_label.text()
    assert "refused your API key" in dock.failures_label.text()


def test_the_window_downloads_with_smaller_buffers_than_the_command_line(dock: DownloadDock):
    from civdesk.core.downloads.downloader import CHUNK_SIZE
    from civdesk.ui.downloads.dock import WINDOW_BUFFER

    assert dock.worker.queue.downloader.chunk_size == WINDOW_BUFFER < CHUNK_SIZE


def test_setting_the_api_key_then_retry_downloads_the_locked_file(
    qtbot, app_core: Core, dock: DownloadDock, civitai_catalog: SampleCatalog
):
    locked = civitai_catalog.lora_v2
    civitai_catalog.double.login_required(locked)
    dock.worker.add(locked.id)
    wait_finished(qtbot, dock, locked.id, "failed")
    assert len(dock.recent_failures()) == 1 and dock.failures_label.isVisibleTo(dock)
    app_core.session_api_key = TEST_API_KEY  # as if typed into Settings
    select(qtbot, dock, row_of_version(dock, locked.id))
    qtbot.mouseClick(dock.retry_button, Qt.MouseButton.LeftButton)
    task = wait_finished(qtbot, dock, locked.id)
    assert sha256(Path(task.dest_path)) == locked.files[0].sha256
    # Its failure is over: no longer listed under the queue.
    assert dock.recent_failures() == [] and not dock.failures_label.isVisibleTo(dock)


def test_early_access_failure_says_until_when(
    qtbot, dock: DownloadDock, civitai_catalog: SampleCatalog
):
    civitai_catalog.double.early_access(civitai_catalog.vae_v1, "2031-05-06T00:00:00.000Z")
    dock.worker.add(civitai_catalog.vae_v1.id)
    wait_finished(qtbot, dock, civitai_catalog.vae_v1.id, "failed")
    assert "early access until 2031-05-06" in dock.recent_failures()[0].lower()


def test_cancel_then_retry(qtbot, dock: DownloadDock, civitai: CivitaiDouble, models_dir: Path):
    model = civitai.add_model("Slow One", "LORA")
    version = civitai.add_version(model, "v1", files=[civitai.file(size=BIG)])
    civitai.throttle_downloads(RATE)
    with qtbot.waitSignal(dock.worker.task_progress, timeout=WAIT_MS):
        dock.worker.add(version.id)
    row = row_of_version(dock, version.id)
    select(qtbot, dock, row)
    assert dock.cancel_button.isEnabled()
    assert not dock.retry_button.isEnabled()
    qtbot.mouseClick(dock.cancel_button, Qt.MouseButton.LeftButton)
    wait_finished(qtbot, dock, version.id, "cancelled")
    qtbot.waitUntil(lambda: not list(models_dir.rglob("*.part")), timeout=WAIT_MS)
    civitai.throttle_downloads(None)
    qtbot.waitUntil(dock.retry_button.isEnabled)
    qtbot.mouseClick(dock.retry_button, Qt.MouseButton.LeftButton)
    task = wait_finished(qtbot, dock, version.id)
    assert sha256(Path(task.dest_path)) == version.files[0].sha256


def test_retry_of_a_flagged_file_asks_first(
    qtbot, dock: DownloadDock, civitai: CivitaiDouble, models_dir: Path, monkeypatch
):
    model = civitai.add_model("Old Pickle", "Checkpoint")
    version = civitai.add_version(model, "v1", files=[civitai.file(
        name="old.ckpt", format="PickleTensor", pickle_scan="Danger",
        pickle_message="Dangerous import detected: os.system")])
    dock.worker.add(version.id)
    task = wait_finished(qtbot, dock, version.id, "failed")
    assert task.error_kind == "flagged"
    row = row_of_version(dock, version.id)
    assert dock.model.index(row).data(TaskRole.REASON).endswith(
        "Retry asks whether to download it anyway")
    answers = [QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes]
    asked: list[str] = []

    def warning(parent, title, text, buttons, default):
        asked.append(text)
        return answers.pop(0)

    monkeypatch.setattr(QMessageBox, "warning", staticmethod(warning))
    select(qtbot, dock, row)
    qtbot.mouseClick(dock.retry_button, Qt.MouseButton.LeftButton)  # No: nothing happens
    assert dock.model.task(row).state == "failed" and "os.system" in asked[0]
    qtbot.mouseClick(dock.retry_button, Qt.MouseButton.LeftButton)  # Yes: downloaded
    task = wait_finished(qtbot, dock, version.id, "completed")
    assert task.allow_flagged and Path(task.dest_path or "").name == "old.ckpt"


def test_show_in_folder_opens_a_finished_downloads_folder(
    qtbot, dock: DownloadDock, civitai_catalog: SampleCatalog, models_dir: Path
):
    opened: list[str] = []
    dock.opener.open_url = lambda url: opened.append(url.toLocalFile()) or True
    version = civitai_catalog.vae_v1
    dock.worker.add(version.id)
    task = wait_finished(qtbot, dock, version.id)
    row = row_of_version(dock, version.id)
    assert not dock.show_button.isEnabled()  # nothing selected yet
    select(qtbot, dock, row)
    assert dock.show_button.isEnabled()
    qtbot.mouseClick(dock.show_button, Qt.MouseButton.LeftButton)
    rect = dock.view.visualRect(dock.model.index(row))
    qtbot.mouseDClick(dock.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert opened == [str(Path(task.dest_path or "").parent)] * 2


def test_pause_keeps_the_part_and_resume_finishes_it(
    qtbot, dock: DownloadDock, civitai: CivitaiDouble, models_dir: Path
):
    model = civitai.add_model("Paused One", "LORA")
    version = civitai.add_version(model, "v1", files=[civitai.file(size=BIG)])
    civitai.throttle_downloads(RATE)
    with qtbot.waitSignal(dock.worker.task_progress, timeout=WAIT_MS, check_params_cb=has_bytes):
        dock.worker.add(version.id)
    with qtbot.waitSignal(dock.worker.paused_changed, timeout=WAIT_MS):
        qtbot.mouseClick(dock.pause_button, Qt.MouseButton.LeftButton)
    row = row_of_version(dock, version.id)
    qtbot.waitUntil(lambda: dock.model.task(row).state == "queued", timeout=WAIT_MS)
    assert dock.pause_button.text() == "Resume all"
    assert "paused" in dock.count_label.text()
    assert dock.model.task(row).bytes_done > 0
    assert list(models_dir.rglob("*.part"))
    civitai.throttle_downloads(None)
    civitai.clear_requests()
    qtbot.mouseClick(dock.pause_button, Qt.MouseButton.LeftButton)
    task = wait_finished(qtbot, dock, version.id)
    assert sha256(Path(task.dest_path)) == version.files[0].sha256
    ranges = [h.get("Range") for h in civitai.storage_headers]
    assert any(r and not r.startswith("bytes=0-") for r in ranges), ranges


def test_queued_tasks_move_up_and_down(qtbot, dock: DownloadDock, civitai_catalog: SampleCatalog):
    qtbot.mouseClick(dock.pause_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dock.worker.paused)
    versions = [civitai_catalog.lora_v1, civitai_catalog.checkpoint_v1, civitai_catalog.vae_v1]
    for version in versions:
        dock.worker.add(version.id)
    qtbot.waitUntil(lambda: dock.model.rowCount() == 3, timeout=WAIT_MS)
    select(qtbot, dock, 2)
    assert dock.up_button.isEnabled() and not dock.down_button.isEnabled()
    with qtbot.waitSignal(dock.worker.tasks_reordered, timeout=WAIT_MS):
        qtbot.mouseClick(dock.up_button, Qt.MouseButton.LeftButton)
    order = [dock.model.task(r).version_id for r in range(3)]
    assert order == [versions[0].id, versions[2].id, versions[1].id]
    # The selection follows the moved task.
    assert dock.selected_task().version_id == versions[2].id
    with qtbot.waitSignal(dock.worker.tasks_reordered, timeout=WAIT_MS):
        qtbot.mouseClick(dock.up_button, Qt.MouseButton.LeftButton)
    assert dock.model.task(0).version_id == versions[2].id
    assert not dock.up_button.isEnabled()
    # Resumed, they download in the new order.
    qtbot.mouseClick(dock.pause_button, Qt.MouseButton.LeftButton)
    first = wait_finished(qtbot, dock, versions[2].id)
    wait_finished(qtbot, dock, versions[0].id)
    wait_finished(qtbot, dock, versions[1].id)
    assert first.state == "completed"


def test_an_interrupted_queue_comes_back_and_resumes_in_a_new_dock(
    qtbot, make_dock, civitai: CivitaiDouble, civitai_catalog: SampleCatalog
):
    model = civitai.add_model("Big Checkpoint", "Checkpoint")
    big = civitai.add_version(model, "v1", files=[civitai.file(size=BIG)])
    waiting = civitai_catalog.embedding_v1
    first = make_dock()
    civitai.throttle_downloads(RATE)
    # Some bytes on disk first: the resume must then ask for the rest with Range.
    with qtbot.waitSignal(first.worker.task_progress, timeout=WAIT_MS, check_params_cb=has_bytes):
        first.worker.add(big.id)
        first.worker.add(waiting.id)
    qtbot.waitUntil(lambda: first.model.rowCount() == 2, timeout=WAIT_MS)
    first.close()  # as the window quits: the thread stops, the download is interrupted
    assert not first.worker.running
    civitai.throttle_downloads(None)
    civitai.clear_requests()

    second = make_dock()
    qtbot.waitUntil(lambda: second.model.rowCount() == 2, timeout=WAIT_MS)
    assert {t.version_id for t in second.model.tasks()} == {big.id, waiting.id}
    task = wait_finished(qtbot, second, big.id)
    wait_finished(qtbot, second, waiting.id)
    assert sha256(Path(task.dest_path)) == big.files[0].sha256
    ranges = [h.get("Range") for h in civitai.storage_headers]
    assert any(r and not r.startswith("bytes=0-") for r in ranges), ranges


def test_pause_all_is_still_on_in_a_new_dock(
    qtbot, make_dock, civitai: CivitaiDouble, civitai_catalog: SampleCatalog
):
    first = make_dock()
    with qtbot.waitSignal(first.worker.paused_changed, timeout=WAIT_MS):
        qtbot.mouseClick(first.pause_button, Qt.MouseButton.LeftButton)
    first.worker.add(civitai_catalog.vae_v1.id)
    qtbot.waitUntil(lambda: first.model.rowCount() == 1, timeout=WAIT_MS)
    first.close()

    second = make_dock()  # the app started again
    qtbot.waitUntil(lambda: second.model.rowCount() == 1, timeout=WAIT_MS)
    assert second.pause_button.text() == "Resume all"
    assert "paused" in second.count_label.text()
    qtbot.wait(300)
    assert second.model.task(0).state == "queued" and not civitai.storage_headers
    qtbot.mouseClick(second.pause_button, Qt.MouseButton.LeftButton)
    wait_finished(qtbot, second, civitai_catalog.vae_v1.id)


def test_clear_finished_empties_the_history(qtbot, dock: DownloadDock, civitai_catalog):
    dock.worker.add(civitai_catalog.vae_v1.id)
    wait_finished(qtbot, dock, civitai_catalog.vae_v1.id)
    qtbot.waitUntil(dock.clear_button.isEnabled)
    qtbot.mouseClick(dock.clear_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dock.model.rowCount() == 0, timeout=WAIT_MS)


def test_scan_status_line(qtbot, dock: DownloadDock):
    assert not dock.scan_status.isVisible()
    dock.show_scan_progress(3, 10, "/models/Lora/paperfold.safetensors")
    status = dock.scan_status
    assert status.isVisible() and status.bar.isVisible()
    assert "3 of 10" in status.label.text() and "paperfold.safetensors" in status.label.text()
    assert status.bar.value() == 3 and status.bar.maximum() == 10
    with qtbot.waitSignal(dock.scan_cancel_requested):
        qtbot.mouseClick(status.cancel_button, Qt.MouseButton.LeftButton)
    assert not status.cancel_button.isEnabled()
    dock.show_scan_result("Scan finished: 10 files, 8 identified")
    assert status.label.text() == "Scan finished: 10 files, 8 identified"
    assert not status.bar.isVisible() and not status.cancel_button.isVisible()


def test_the_dock_cannot_be_closed_by_the_user_and_leaves_no_thread(qtbot, make_dock):
    dock = make_dock()
    assert not dock.features() & dock.DockWidgetFeature.DockWidgetClosable
    thread = dock.worker._thread
    assert isinstance(thread, QThread) and thread.isRunning()
    dock.close()
    assert thread.isFinished()
    assert not dock.worker.running
    dock.shutdown()  # twice is harmless


def test_a_dock_deleted_without_shutdown_still_stops_its_thread(qtbot, app_core: Core):
    # As when the window's own shutdown fails half-way: Qt would abort on a running QThread.
    dock = DownloadDock(app_core)
    qtbot.waitUntil(lambda: dock.worker.running, timeout=WAIT_MS)
    thread = dock.worker._thread
    with qtbot.waitSignal(dock.worker.destroyed):
        dock.deleteLater()
    assert thread.isFinished()


def test_download_from_the_browser_then_the_card_says_downloaded(
    qtbot, app_core: Core, dock: DownloadDock, civitai_catalog: SampleCatalog
):
    page = BrowserPage(app_core, ThumbnailLoader.for_core(app_core))
    qtbot.addWidget(page)
    page.resize(900, 700)
    page.show()
    page.connect_downloads(dock.worker)
    search(qtbot, page, "Harbor")
    page.open_model(page.results.model_at(0))
    version = civitai_catalog.checkpoint_v1
    qtbot.mouseClick(page.detail.download_version_button, Qt.MouseButton.LeftButton)
    # Names show at once: the page handed the version it had to the queue.
    qtbot.waitUntil(lambda: dock.model.rowCount() == 1, timeout=WAIT_MS)
    assert dock.model.index(0).data() == version.files[0].name
    wait_finished(qtbot, dock, version.id)
    qtbot.waitUntil(
        lambda: page.results.index(0).data(ResultRole.LIBRARY_STATE) == DOWNLOADED,
        timeout=WAIT_MS,
    )
    assert page.detail.info["On disk"].text() == "Yes"


def test_a_dock_shut_down_before_its_task_list_arrives_never_starts_its_thread(
    qtbot, app_core: Core
):
    # The window closed right after opening: the queue's task list (read in a worker) is
    # still on its way when stop() runs. Its arrival must not start the loop afterwards.
    dock = DownloadDock(app_core)
    qtbot.addWidget(dock)
    dock.shutdown()
    assert dock.worker.closed
    qtbot.wait(200)  # the load_tasks callback, if any, has been delivered by now
    assert dock.worker._thread is None and not dock.worker.running
    dock.worker.start()  # a late start is refused
    assert not dock.worker.running


def test_a_stopped_worker_is_deleted_without_touching_its_finished_thread(
    qtbot, app_core: Core
):
    # The destroyed-hook of start() must not run after stop(): at exit Python may have
    # deleted the thread first ("Internal C++ object (_LoopThread) already deleted").
    dock = DownloadDock(app_core)
    qtbot.waitUntil(lambda: dock.worker.running, timeout=WAIT_MS)
    thread = dock.worker._thread
    dock.shutdown()
    assert thread.isFinished()
    with qtbot.waitSignal(dock.worker.destroyed):
        dock.deleteLater()


def test_a_retried_task_moved_to_the_end_updates_the_count_and_buttons(
    qtbot, dock: DownloadDock, civitai_catalog: SampleCatalog
):
    qtbot.mouseClick(dock.pause_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dock.worker.paused)
    ids: list[int] = []
    for version in (civitai_catalog.lora_v2, civitai_catalog.checkpoint_v1):
        dock.worker.add(version.id, on_added=ids.append)
    qtbot.waitUntil(lambda: dock.model.rowCount() == 2, timeout=WAIT_MS)
    dock.select_task(ids[0])
    qtbot.mouseClick(dock.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dock.model.tasks()[0].state == "cancelled", timeout=WAIT_MS)
    qtbot.mouseClick(dock.retry_button, Qt.MouseButton.LeftButton)  # back in line, last
    qtbot.waitUntil(lambda: [t.state for t in dock.model.tasks()] == ["queued", "queued"],
                    timeout=WAIT_MS)
    assert dock.count_label.text().startswith("2 downloads")
    assert dock.selected_task().id == ids[0]
    assert dock.cancel_button.isEnabled() and not dock.retry_button.isEnabled()


def test_downloads_follow_the_mature_setting_changed_after_the_dock_started(
    qtbot, tmp_data_dir: Path, models_dir: Path
):
    """Allowing mature content in Settings while the window runs: the next download goes
    to the site with all content (civitai.com answers 404 for a mature model)."""
    with CivitaiDouble(api_key=TEST_API_KEY, two_sites=True) as d:
        night = d.add_version(d.add_model("Night Glow"), nsfw_level=8)
        core = Core.open(tmp_data_dir, api_base=d.base_url, mature_api_base=d.mature_url)
        core.settings.download_root = str(models_dir)
        dock = DownloadDock(core)
        _FINISHES[dock] = _Finishes(dock)
        qtbot.addWidget(dock)
        try:
            qtbot.waitUntil(lambda: dock.worker.running, timeout=WAIT_MS)
            core.settings.allow_nsfw = True  # as if ticked in Settings
            dock.worker.add(night.id)
            task = wait_finished(qtbot, dock, night.id)
            assert Path(task.dest_path).read_bytes() == night.files[0].read_bytes()
            assert {r.host for r in d.requests if r.path.startswith("/api/")} == {"mature"}
        finally:
            dock.shutdown()
            stop_tasks()
            core.close()
