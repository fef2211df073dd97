"""The Downloads page over the downloads service, with the real queue, real files and the
loopback Civitai double."""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from PySide6.QtCore import Qt, QThread
from PySide6.QtWidgets import QLabel, QMessageBox
from tests.conftest import TEST_API_KEY
from tests.double import CivitaiDouble, SampleCatalog
from tests.ui.test_browser import search, stop_tasks

from civdesk.core.context import Core
from civdesk.core.downloads.queue import TaskSnapshot
from civdesk.core.downloads.store import TaskStore
from civdesk.ui.browser.model import DOWNLOADED, ResultRole
from civdesk.ui.browser.page import BrowserPage
from civdesk.ui.downloads.model import TaskRole
from civdesk.ui.downloads.page import DownloadsPage
from civdesk.ui.services.downloads import DownloadService
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


def open_page(core: Core) -> DownloadsPage:
    """A downloads service and its page, as the window makes them."""
    page = DownloadsPage(DownloadService(core))
    page.downloads.setParent(page)
    return page


@pytest.fixture
def make_page(qtbot, app_core: Core) -> Iterator[Callable[[], DownloadsPage]]:
    """Builds pages on the shared data dir; every one is shut down and checked at the end."""
    pages: list[DownloadsPage] = []

    def make() -> DownloadsPage:
        page = open_page(app_core)
        _FINISHES[page] = _Finishes(page)
        qtbot.addWidget(page)
        page.resize(420, 500)
        page.show()
        pages.append(page)
        qtbot.waitUntil(lambda: page.downloads.running, timeout=WAIT_MS)
        return page

    yield make
    for page in pages:
        page.downloads.stop()
        assert not page.downloads.running


@pytest.fixture
def page(make_page) -> DownloadsPage:
    return make_page()


class _Finishes:
    """Every task_finished of one page's worker, recorded from the page's creation on.

    A wait connected only after the action that starts a download could miss a finish
    that came first (a small file, a busy GUI thread): the signal is not kept for late
    listeners. Waits take the recorded finishes in order instead.
    """

    def __init__(self, page: DownloadsPage) -> None:
        self.seen: list[TaskSnapshot] = []
        self.taken: set[int] = set()
        page.downloads.task_finished.connect(self.seen.append)

    def next_of(self, version_id: int) -> int | None:
        """The index of the first finish of this version no wait has taken yet."""
        return next((i for i, task in enumerate(self.seen)
                     if i not in self.taken and task.version_id == version_id), None)


_FINISHES: weakref.WeakKeyDictionary[DownloadsPage, _Finishes] = weakref.WeakKeyDictionary()


def wait_finished(qtbot, page: DownloadsPage, version_id: int, state: str = "completed"):
    """Wait for the next finish of this version's task (``state`` expected); returns it."""
    finishes = _FINISHES[page]
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


def row_of_version(page: DownloadsPage, version_id: int) -> int:
    rows = [r for r in range(page.model.rowCount()) if page.model.task(r).version_id == version_id]
    assert rows, f"no row for version {version_id}"
    return rows[-1]


def select(qtbot, page: DownloadsPage, row: int) -> None:
    index = page.model.index(row)
    qtbot.waitUntil(lambda: page.view.visualRect(index).isValid())
    page.view.scrollTo(index)
    qtbot.mouseClick(
        page.view.viewport(), Qt.MouseButton.LeftButton, pos=page.view.visualRect(index).center()
    )
    assert page.selected_task() is not None
    assert page.selected_task().id == page.model.task(row).id


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest().upper()


def test_a_download_shows_progress_then_completes_with_a_verified_file(
    qtbot, page: DownloadsPage, civitai: CivitaiDouble, models_dir: Path, qtmodeltester
):
    model = civitai.add_model("Harbor Light", "Checkpoint")
    version = civitai.add_version(model, "v1", files=[civitai.file(size=BIG)])
    civitai.throttle_downloads(RATE)
    with qtbot.waitSignal(page.downloads.task_progress, timeout=WAIT_MS) as progress:
        page.downloads.enqueue(version.id)
    assert progress.args[0].state == "downloading"
    row = row_of_version(page, version.id)
    qtbot.waitUntil(
        lambda: 0 < page.model.index(row).data(TaskRole.PROGRESS) < 100, timeout=WAIT_MS
    )
    assert "1 download in queue" in page.count_label.text()
    page.view.viewport().repaint()  # the delegate paints a live row without complaint
    task = wait_finished(qtbot, page, version.id)
    path = Path(task.dest_path)
    assert path.parent == models_dir / "Stable-diffusion"
    assert sha256(path) == version.files[0].sha256
    assert not list(models_dir.rglob("*.part"))
    qtbot.waitUntil(lambda: page.model.index(row).data(TaskRole.STATE) == "completed")
    # Says what the list holds: the finished row, not "Nothing queued" beside it.
    assert page.count_label.text() == "1 finished"
    qtmodeltester.check(page.model)


def test_a_failure_is_worded_and_the_next_task_still_completes(
    qtbot, page: DownloadsPage, civitai_catalog: SampleCatalog
):
    d = civitai_catalog.double
    locked, fine = civitai_catalog.lora_v2, civitai_catalog.embedding_v1
    d.login_required(locked)
    page.downloads.enqueue(locked.id)
    page.downloads.enqueue(fine.id)
    failed = wait_finished(qtbot, page, locked.id, "failed")
    assert failed.error_kind == "auth"
    wait_finished(qtbot, page, fine.id)
    assert page.count_label.text() == "1 finished, 1 failed"
    reason = page.model.index(row_of_version(page, locked.id)).data(TaskRole.REASON)
    assert "set your API key in Settings" in reason
    # Said once, on the failed row (whole in its tooltip): no block repeating it below.
    assert page.findChild(QLabel, "recentFailures") is None
    tip = page.model.index(row_of_version(page, locked.id)).data(Qt.ItemDataRole.ToolTipRole)
    assert reason in tip
    assert len(page.failures()) == 1 and "API key" in page.failures()[0]


def test_a_refused_key_says_so_instead_of_asking_for_a_key(
    qtbot, app_core: Core, page: DownloadsPage, civitai_catalog: SampleCatalog
):
    locked = civitai_catalog.lora_v2
    civitai_catalog.double.login_required(locked)
    app_core.session_api_key = "revoked-key"  # set, but Civitai no longer accepts it
    page.downloads.enqueue(locked.id)
    failed = wait_finished(qtbot, page, locked.id, "failed")
    assert failed.error_kind == "key_refused"
    reason = page.model.index(row_of_version(page, locked.id)).data(TaskRole.REASON)
    assert reason.startswith("Civitai refused your API key (expired or revoked): create a new "
                             "one on civitai.com → Account settings → API keys")
    assert "set your API key" not in reason + "".join(page.failures())
    assert "refused your API key" in page.failures()[0]


def test_the_window_downloads_with_smaller_buffers_than_the_command_line(page: DownloadsPage):
    from civdesk.core.downloads.downloader import CHUNK_SIZE
    from civdesk.ui.services.downloads import WINDOW_BUFFER

    assert page.downloads.queue.downloader.chunk_size == WINDOW_BUFFER < CHUNK_SIZE


def test_setting_the_api_key_then_retry_downloads_the_locked_file(
    qtbot, app_core: Core, page: DownloadsPage, civitai_catalog: SampleCatalog
):
    locked = civitai_catalog.lora_v2
    civitai_catalog.double.login_required(locked)
    page.downloads.enqueue(locked.id)
    wait_finished(qtbot, page, locked.id, "failed")
    assert len(page.failures()) == 1 and "1 failed" in page.count_label.text()
    app_core.session_api_key = TEST_API_KEY  # as if typed into Settings
    select(qtbot, page, row_of_version(page, locked.id))
    qtbot.mouseClick(page.retry_button, Qt.MouseButton.LeftButton)
    task = wait_finished(qtbot, page, locked.id)
    assert sha256(Path(task.dest_path)) == locked.files[0].sha256
    # Its failure is over: the row and the headline say it finished.
    assert page.failures() == [] and page.count_label.text() == "1 finished"


def test_early_access_failure_says_until_when(
    qtbot, page: DownloadsPage, civitai_catalog: SampleCatalog
):
    civitai_catalog.double.early_access(civitai_catalog.vae_v1, "2031-05-06T00:00:00.000Z")
    page.downloads.enqueue(civitai_catalog.vae_v1.id)
    wait_finished(qtbot, page, civitai_catalog.vae_v1.id, "failed")
    assert "early access until 2031-05-06" in page.failures()[0].lower()


def test_cancel_then_retry(qtbot, page: DownloadsPage, civitai: CivitaiDouble, models_dir: Path):
    model = civitai.add_model("Slow One", "LORA")
    version = civitai.add_version(model, "v1", files=[civitai.file(size=BIG)])
    civitai.throttle_downloads(RATE)
    with qtbot.waitSignal(page.downloads.task_progress, timeout=WAIT_MS):
        page.downloads.enqueue(version.id)
    row = row_of_version(page, version.id)
    select(qtbot, page, row)
    assert page.cancel_button.isEnabled()
    assert not page.retry_button.isEnabled()
    qtbot.mouseClick(page.cancel_button, Qt.MouseButton.LeftButton)
    wait_finished(qtbot, page, version.id, "cancelled")
    qtbot.waitUntil(lambda: not list(models_dir.rglob("*.part")), timeout=WAIT_MS)
    civitai.throttle_downloads(None)
    qtbot.waitUntil(page.retry_button.isEnabled)
    qtbot.mouseClick(page.retry_button, Qt.MouseButton.LeftButton)
    task = wait_finished(qtbot, page, version.id)
    assert sha256(Path(task.dest_path)) == version.files[0].sha256


def test_retry_of_a_flagged_file_asks_first(
    qtbot, page: DownloadsPage, civitai: CivitaiDouble, models_dir: Path, monkeypatch
):
    model = civitai.add_model("Old Pickle", "Checkpoint")
    version = civitai.add_version(model, "v1", files=[civitai.file(
        name="old.ckpt", format="PickleTensor", pickle_scan="Danger",
        pickle_message="Dangerous import detected: os.system")])
    page.downloads.enqueue(version.id)
    task = wait_finished(qtbot, page, version.id, "failed")
    assert task.error_kind == "flagged"
    row = row_of_version(page, version.id)
    assert page.model.index(row).data(TaskRole.REASON).endswith(
        "Retry asks whether to download it anyway")
    answers = [QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes]
    asked: list[str] = []

    def warning(parent, title, text, buttons, default):
        asked.append(text)
        return answers.pop(0)

    monkeypatch.setattr(QMessageBox, "warning", staticmethod(warning))
    select(qtbot, page, row)
    qtbot.mouseClick(page.retry_button, Qt.MouseButton.LeftButton)  # No: nothing happens
    assert page.model.task(row).state == "failed" and "os.system" in asked[0]
    qtbot.mouseClick(page.retry_button, Qt.MouseButton.LeftButton)  # Yes: downloaded
    task = wait_finished(qtbot, page, version.id, "completed")
    assert task.allow_flagged and Path(task.dest_path or "").name == "old.ckpt"


def test_show_in_folder_opens_a_finished_downloads_folder(
    qtbot, page: DownloadsPage, civitai_catalog: SampleCatalog, models_dir: Path
):
    opened: list[str] = []
    page.opener.open_url = lambda url: opened.append(url.toLocalFile()) or True
    version = civitai_catalog.vae_v1
    page.downloads.enqueue(version.id)
    task = wait_finished(qtbot, page, version.id)
    row = row_of_version(page, version.id)
    assert not page.show_button.isEnabled()  # nothing selected yet
    select(qtbot, page, row)
    assert page.show_button.isEnabled()
    qtbot.mouseClick(page.show_button, Qt.MouseButton.LeftButton)
    rect = page.view.visualRect(page.model.index(row))
    qtbot.mouseDClick(page.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert opened == [str(Path(task.dest_path or "").parent)] * 2


def test_pause_keeps_the_part_and_resume_finishes_it(
    qtbot, page: DownloadsPage, civitai: CivitaiDouble, models_dir: Path
):
    model = civitai.add_model("Paused One", "LORA")
    version = civitai.add_version(model, "v1", files=[civitai.file(size=BIG)])
    civitai.throttle_downloads(RATE)
    with qtbot.waitSignal(page.downloads.task_progress, timeout=WAIT_MS, check_params_cb=has_bytes):
        page.downloads.enqueue(version.id)
    with qtbot.waitSignal(page.downloads.paused_changed, timeout=WAIT_MS):
        qtbot.mouseClick(page.pause_button, Qt.MouseButton.LeftButton)
    row = row_of_version(page, version.id)
    qtbot.waitUntil(lambda: page.model.task(row).state == "queued", timeout=WAIT_MS)
    assert page.pause_button.text() == "Resume all"
    assert "paused" in page.count_label.text()
    assert page.model.task(row).bytes_done > 0
    assert list(models_dir.rglob("*.part"))
    civitai.throttle_downloads(None)
    civitai.clear_requests()
    qtbot.mouseClick(page.pause_button, Qt.MouseButton.LeftButton)
    task = wait_finished(qtbot, page, version.id)
    assert sha256(Path(task.dest_path)) == version.files[0].sha256
    ranges = [h.get("Range") for h in civitai.storage_headers]
    assert any(r and not r.startswith("bytes=0-") for r in ranges), ranges


def test_queued_tasks_move_up_and_down(qtbot, page: DownloadsPage, civitai_catalog: SampleCatalog):
    qtbot.mouseClick(page.pause_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.downloads.paused)
    versions = [civitai_catalog.lora_v1, civitai_catalog.checkpoint_v1, civitai_catalog.vae_v1]
    for version in versions:
        page.downloads.enqueue(version.id)
    qtbot.waitUntil(lambda: page.model.rowCount() == 3, timeout=WAIT_MS)
    select(qtbot, page, 2)
    assert page.up_button.isEnabled() and not page.down_button.isEnabled()
    with qtbot.waitSignal(page.downloads.tasks_reordered, timeout=WAIT_MS):
        qtbot.mouseClick(page.up_button, Qt.MouseButton.LeftButton)
    order = [page.model.task(r).version_id for r in range(3)]
    assert order == [versions[0].id, versions[2].id, versions[1].id]
    # The selection follows the moved task.
    assert page.selected_task().version_id == versions[2].id
    with qtbot.waitSignal(page.downloads.tasks_reordered, timeout=WAIT_MS):
        qtbot.mouseClick(page.up_button, Qt.MouseButton.LeftButton)
    assert page.model.task(0).version_id == versions[2].id
    assert not page.up_button.isEnabled()
    # Resumed, they download in the new order.
    qtbot.mouseClick(page.pause_button, Qt.MouseButton.LeftButton)
    first = wait_finished(qtbot, page, versions[2].id)
    wait_finished(qtbot, page, versions[0].id)
    wait_finished(qtbot, page, versions[1].id)
    assert first.state == "completed"


def test_an_interrupted_queue_comes_back_and_resumes_in_a_new_page(
    qtbot, make_page, civitai: CivitaiDouble, civitai_catalog: SampleCatalog
):
    model = civitai.add_model("Big Checkpoint", "Checkpoint")
    big = civitai.add_version(model, "v1", files=[civitai.file(size=BIG)])
    waiting = civitai_catalog.embedding_v1
    first = make_page()
    civitai.throttle_downloads(RATE)
    # Some bytes on disk first: the resume must then ask for the rest with Range.
    with qtbot.waitSignal(first.downloads.task_progress, timeout=WAIT_MS,
                          check_params_cb=has_bytes):
        first.downloads.enqueue(big.id)
        first.downloads.enqueue(waiting.id)
    qtbot.waitUntil(lambda: first.model.rowCount() == 2, timeout=WAIT_MS)
    first.downloads.stop()  # as the window quits: the thread stops, the download halts
    assert not first.downloads.running
    civitai.throttle_downloads(None)
    civitai.clear_requests()

    second = make_page()
    qtbot.waitUntil(lambda: second.model.rowCount() == 2, timeout=WAIT_MS)
    assert {t.version_id for t in second.model.tasks()} == {big.id, waiting.id}
    task = wait_finished(qtbot, second, big.id)
    wait_finished(qtbot, second, waiting.id)
    assert sha256(Path(task.dest_path)) == big.files[0].sha256
    ranges = [h.get("Range") for h in civitai.storage_headers]
    assert any(r and not r.startswith("bytes=0-") for r in ranges), ranges


def test_pause_all_is_still_on_in_a_new_page(
    qtbot, make_page, civitai: CivitaiDouble, civitai_catalog: SampleCatalog
):
    first = make_page()
    with qtbot.waitSignal(first.downloads.paused_changed, timeout=WAIT_MS):
        qtbot.mouseClick(first.pause_button, Qt.MouseButton.LeftButton)
    first.downloads.enqueue(civitai_catalog.vae_v1.id)
    qtbot.waitUntil(lambda: first.model.rowCount() == 1, timeout=WAIT_MS)
    first.downloads.stop()

    second = make_page()  # the app started again
    qtbot.waitUntil(lambda: second.model.rowCount() == 1, timeout=WAIT_MS)
    assert second.pause_button.text() == "Resume all"
    assert "paused" in second.count_label.text()
    qtbot.wait(300)
    assert second.model.task(0).state == "queued" and not civitai.storage_headers
    qtbot.mouseClick(second.pause_button, Qt.MouseButton.LeftButton)
    wait_finished(qtbot, second, civitai_catalog.vae_v1.id)


def test_clear_finished_empties_the_history(qtbot, page: DownloadsPage, civitai_catalog):
    page.downloads.enqueue(civitai_catalog.vae_v1.id)
    wait_finished(qtbot, page, civitai_catalog.vae_v1.id)
    qtbot.waitUntil(page.clear_button.isEnabled)
    qtbot.mouseClick(page.clear_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.model.rowCount() == 0, timeout=WAIT_MS)


def test_a_download_asked_for_while_the_queue_opens_runs_once_it_is_open(
    qtbot, app_core: Core, civitai_catalog: SampleCatalog
):
    page = open_page(app_core)
    qtbot.addWidget(page)
    finished: list[tuple[TaskSnapshot, int]] = []
    # Whoever hears the finish finds the service's counts already up to date with it.
    page.downloads.task_finished.connect(
        lambda task: finished.append((task, page.downloads.counts.active)))
    try:
        page.downloads.enqueue(civitai_catalog.vae_v1.id)  # the queue is being built
        qtbot.waitUntil(lambda: bool(finished), timeout=WAIT_MS)
        task, active_then = finished[0]
        assert task.state == "completed"
        assert active_then == 0
    finally:
        page.downloads.stop()


def test_a_queue_that_cannot_be_opened_says_so(qtbot, app_core: Core):
    from civdesk.core.library.health import DatabaseNotWritable

    def refuse() -> None:
        raise DatabaseNotWritable("The library database is read-only: make it writable")

    service = DownloadService(app_core, open_queue=refuse)  # type: ignore[arg-type]
    page = DownloadsPage(service)
    qtbot.addWidget(page)
    service.setParent(page)
    with qtbot.waitSignal(service.problem, timeout=WAIT_MS) as said:
        pass
    assert said.args[0].startswith("Downloads are unavailable: ")
    assert page.error_label.isVisibleTo(page) and page.error_label.text() == said.args[0]
    service.enqueue(1)  # nothing runs, nothing breaks
    assert not service.running
    service.stop()


def test_stopping_the_service_ends_its_thread(qtbot, make_page):
    page = make_page()
    thread = page.downloads.worker._thread
    assert isinstance(thread, QThread) and thread.isRunning()
    page.downloads.stop()
    assert thread.isFinished()
    assert not page.downloads.running
    page.downloads.stop()  # twice is harmless


def test_a_service_deleted_without_stop_still_stops_its_thread(qtbot, app_core: Core):
    # As when the window's own shutdown fails half-way: Qt would abort on a running QThread.
    page = open_page(app_core)
    qtbot.waitUntil(lambda: page.downloads.running, timeout=WAIT_MS)
    thread = page.downloads.worker._thread
    with qtbot.waitSignal(page.downloads.worker.destroyed):
        page.deleteLater()
    assert thread.isFinished()


def test_download_from_the_browser_then_the_card_says_downloaded(
    qtbot, app_core: Core, page: DownloadsPage, civitai_catalog: SampleCatalog
):
    browser = BrowserPage(app_core, ThumbnailLoader.for_core(app_core))
    qtbot.addWidget(browser)
    browser.resize(900, 700)
    browser.show()
    # As the window's key gate passes them on (a key is set here): add → enqueue.
    browser.connect_downloads(SimpleNamespace(add=page.downloads.enqueue,
                                              task_finished=page.downloads.task_finished))
    search(qtbot, browser, "Harbor")
    browser.open_model(browser.results.model_at(0))
    version = civitai_catalog.checkpoint_v1
    qtbot.mouseClick(browser.detail.download_version_button, Qt.MouseButton.LeftButton)
    # Names show at once: the browser handed the version it had to the queue.
    qtbot.waitUntil(lambda: page.model.rowCount() == 1, timeout=WAIT_MS)
    assert page.model.index(0).data() == version.files[0].name
    wait_finished(qtbot, page, version.id)
    qtbot.waitUntil(
        lambda: browser.results.index(0).data(ResultRole.LIBRARY_STATE) == DOWNLOADED,
        timeout=WAIT_MS,
    )
    assert browser.detail.info["On disk"].text() == "Yes"


def test_a_service_stopped_before_its_queue_is_built_never_starts_a_thread(
    qtbot, app_core: Core
):
    # The window closed right after opening: the queue (built in a worker) is still on its
    # way when stop() runs. Its arrival must not start the loop afterwards; stop() waited
    # for the build, which uses the database that closes next.
    page = open_page(app_core)
    qtbot.addWidget(page)
    page.downloads.enqueue(1)  # waits for the queue: dropped with it
    page.downloads.stop()
    assert page.downloads.closed
    qtbot.wait(200)  # the build's callback, if any, has been delivered by now
    assert page.downloads.worker is None and not page.downloads.running
    assert TaskStore(app_core.db).all() == []


def test_a_stopped_worker_is_deleted_without_touching_its_finished_thread(
    qtbot, app_core: Core
):
    # The destroyed-hook of start() must not run after stop(): at exit Python may have
    # deleted the thread first ("Internal C++ object (_LoopThread) already deleted").
    page = open_page(app_core)
    qtbot.waitUntil(lambda: page.downloads.running, timeout=WAIT_MS)
    thread = page.downloads.worker._thread
    page.downloads.stop()
    assert thread.isFinished()
    with qtbot.waitSignal(page.downloads.worker.destroyed):
        page.deleteLater()


def test_a_retried_task_moved_to_the_end_updates_the_count_and_buttons(
    qtbot, page: DownloadsPage, civitai_catalog: SampleCatalog
):
    qtbot.mouseClick(page.pause_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.downloads.paused)
    ids: list[int] = []
    for version in (civitai_catalog.lora_v2, civitai_catalog.checkpoint_v1):
        page.downloads.enqueue(version.id, on_added=ids.append)
    qtbot.waitUntil(lambda: page.model.rowCount() == 2, timeout=WAIT_MS)
    page.select_task(ids[0])
    qtbot.mouseClick(page.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.model.tasks()[0].state == "cancelled", timeout=WAIT_MS)
    qtbot.mouseClick(page.retry_button, Qt.MouseButton.LeftButton)  # back in line, last
    qtbot.waitUntil(lambda: [t.state for t in page.model.tasks()] == ["queued", "queued"],
                    timeout=WAIT_MS)
    assert page.count_label.text().startswith("2 downloads")
    assert page.selected_task().id == ids[0]
    assert page.cancel_button.isEnabled() and not page.retry_button.isEnabled()


def test_downloads_follow_the_mature_setting_changed_after_the_queue_started(
    qtbot, tmp_data_dir: Path, models_dir: Path
):
    """Allowing mature content in Settings while the window runs: the next download goes
    to the site with all content (civitai.com answers 404 for a mature model)."""
    with CivitaiDouble(api_key=TEST_API_KEY, two_sites=True) as d:
        night = d.add_version(d.add_model("Night Glow"), nsfw_level=8)
        core = Core.open(tmp_data_dir, api_base=d.base_url, mature_api_base=d.mature_url)
        core.settings.download_root = str(models_dir)
        page = open_page(core)
        _FINISHES[page] = _Finishes(page)
        qtbot.addWidget(page)
        try:
            qtbot.waitUntil(lambda: page.downloads.running, timeout=WAIT_MS)
            core.settings.allow_nsfw = True  # as if ticked in Settings
            page.downloads.enqueue(night.id)
            task = wait_finished(qtbot, page, night.id)
            assert Path(task.dest_path).read_bytes() == night.files[0].read_bytes()
            assert {r.host for r in d.requests if r.path.startswith("/api/")} == {"mature"}
        finally:
            page.downloads.stop()
            stop_tasks()
            core.close()


def test_a_row_is_never_cut_so_that_its_size_shows_without_its_name(qtbot, page: DownloadsPage):
    from PySide6.QtCore import QPoint
    from tests.ui.test_download_model import snap

    page.model.set_tasks([snap(n, "completed", bytes_done=4_200, bytes_total=4_200)
                          for n in range(1, 8)])
    view = page.view
    row = view.sizeHintForRow(0)
    view.setFixedHeight(row * 3 // 2)  # room for a row and a half
    bar = view.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0)
    for value in range(bar.minimum(), bar.maximum() + 1):
        bar.setValue(value)
        top = view.indexAt(QPoint(5, 0))
        # The first row in sight starts at the top: its name line is shown.
        assert view.visualRect(top).top() == 0, value


def test_the_headline_counts_what_the_list_holds() -> None:
    from tests.ui.test_download_model import snap

    from civdesk.ui.downloads.page import queue_headline

    assert queue_headline([]) == "Nothing queued"
    assert queue_headline([snap(1, "completed"), snap(2, "completed"),
                           snap(3, "failed")]) == "2 finished, 1 failed"
    assert queue_headline([snap(1, "queued"), snap(2, "downloading"), snap(3, "completed")],
                          paused=True) == "2 downloads in queue · 1 finished · paused"
    assert queue_headline([snap(1, "cancelled")]) == "1 cancelled"
