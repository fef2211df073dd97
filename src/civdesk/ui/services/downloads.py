"""The downloads service: the window's download queue, as a QObject with signals and slots.

Not a widget: the Downloads page, the status line's summary, the tray and the pages that
queue downloads are all views or callers of this one object. It builds the core
:class:`~civdesk.core.downloads.queue.DownloadQueue` off the GUI thread (building it reads
the API key, which may ask the keychain, and puts back in line the tasks a crashed process
left, which writes the database), then runs it on a :class:`DownloadWorker`. Commands given
before the queue is ready wait and run, in order, once it is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QThreadPool, Signal, Slot
from PySide6.QtWidgets import QApplication

from civdesk.core.civitai.schema import ModelVersion
from civdesk.core.downloads.queue import DownloadQueue, TaskSnapshot
from civdesk.core.downloads.store import FINISHED_STATES
from civdesk.ui.downloads.summary import QueueCounts, queue_counts
from civdesk.ui.downloads.worker import DownloadWorker
from civdesk.ui.tasks import run_task

if TYPE_CHECKING:
    from civdesk.core.context import Core

log = logging.getLogger(__name__)

#: The window's download buffers: half the command line's. At loopback speed (over 1 GB/s)
#: 4 MiB buffers let a download beside a scan keep both cores so busy that the window
#: stalled over 50 ms in 3 of 8 bench_gui runs (2 MiB: none in 5); at Civitai's speeds
#: the two sizes do the same.
WINDOW_BUFFER = 2 << 20

Command = Callable[[DownloadWorker], object]
_Opened = tuple[DownloadQueue, list[TaskSnapshot]]


class DownloadService(QObject):
    """Owns the download queue and its thread; says what happens through signals.

    ``ready`` is emitted once the queue is built and its tasks are known (``tasks_loaded``
    carries them); ``stop()`` ends the download thread (a download in flight resumes on the
    next start).
    """

    task_added = Signal(object)  # TaskSnapshot
    task_changed = Signal(object)  # state or details changed
    task_progress = Signal(object)  # throttled per task
    task_finished = Signal(object)  # completed, failed or cancelled
    tasks_removed = Signal(list)  # task ids
    tasks_reordered = Signal(list)  # every task, in the queue's new order
    tasks_loaded = Signal(list)  # every task, once, when the queue is ready
    paused_changed = Signal(bool)
    counts_changed = Signal(object)  # QueueCounts
    #: One line for the user: a command refused, the loop stopped, the queue not opened.
    problem = Signal(str)
    ready = Signal()

    def __init__(self, core: Core, parent: QObject | None = None, *,
                 open_queue: Callable[[], DownloadQueue] | None = None) -> None:
        """``open_queue`` builds the queue (on a worker thread); default: the core's."""
        super().__init__(parent)
        self.core = core
        self.worker: DownloadWorker | None = None
        self._closed = False
        self._pending: list[Command] = []  # commands given before the queue was ready
        self._tasks: dict[int, TaskSnapshot] = {}
        self._finished_in_batch = 0
        self._paused = False
        self._counts = QueueCounts()
        self._open = open_queue or (lambda: DownloadQueue.for_core(core,
                                                                   chunk_size=WINDOW_BUFFER))
        # A pool of its own, so stop() can wait for a build still running (it uses the
        # database, which closes after the window).
        self._opening = QThreadPool(self)
        self._opening.setMaxThreadCount(1)
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.stop)
        run_task(self._open_queue, on_result=self._opened, on_error=self._open_failed,
                 pool=self._opening, name="open the download queue", owner=self)

    # -- state --------------------------------------------------------------------------------

    @property
    def is_ready(self) -> bool:
        return self.worker is not None

    @property
    def running(self) -> bool:
        """The download thread runs."""
        return self.worker is not None and self.worker.running

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def queue(self) -> DownloadQueue | None:
        """The core queue once built (a restore adds to it from its own thread)."""
        return self.worker.queue if self.worker is not None else None

    @property
    def counts(self) -> QueueCounts:
        return self._counts

    def tasks(self) -> list[TaskSnapshot]:
        return list(self._tasks.values())

    # -- opening (worker thread, then the GUI thread) -----------------------------------------

    def _open_queue(self) -> _Opened:
        queue = self._open()
        return queue, list(queue.tasks())

    def _opened(self, opened: _Opened) -> None:
        queue, tasks = opened
        if self._closed:  # the window closed while the queue was being built
            return
        worker = DownloadWorker(queue, self, api_key=self.core.api_key,
                                site=lambda: self.core.site)
        # The counts first: queued calls run in the order they were connected, so whoever
        # hears a relayed signal finds the service's counts already up to date with it.
        worker.task_added.connect(self._note_task)
        worker.task_changed.connect(self._note_task)
        worker.task_progress.connect(self._note_task)
        worker.task_finished.connect(self._note_finished)
        worker.tasks_removed.connect(self._note_removed)
        worker.tasks_reordered.connect(self._note_reordered)
        worker.paused_changed.connect(self._note_paused)
        for source, relay in (
            (worker.task_added, self.task_added), (worker.task_changed, self.task_changed),
            (worker.task_progress, self.task_progress),
            (worker.task_finished, self.task_finished),
            (worker.tasks_removed, self.tasks_removed),
            (worker.tasks_reordered, self.tasks_reordered),
            (worker.crashed, self.problem), (worker.command_failed, self.problem),
        ):
            source.connect(relay)
        self.worker = worker
        self._tasks = {t.id: t for t in tasks}
        self._paused = worker.paused
        self.tasks_loaded.emit(tasks)
        self.paused_changed.emit(self._paused)
        self._recount()
        worker.start()
        pending, self._pending = self._pending, []
        for command in pending:
            command(worker)
        self.ready.emit()

    def _open_failed(self, error: BaseException) -> None:
        log.error("The download queue could not be opened: %s", error)
        self.problem.emit(f"Downloads are unavailable: {error}")

    # -- commands -----------------------------------------------------------------------------

    def _command(self, command: Command) -> None:
        if self._closed:
            return
        if self.worker is None:
            self._pending.append(command)
        else:
            command(self.worker)

    def enqueue(
        self, version_id: int, file_id: int | None = None, dest_dir: str | None = None, *,
        version: ModelVersion | None = None, on_added: Callable[[int], None] | None = None,
        allow_flagged: bool = False,
    ) -> None:  # fmt: skip
        """Queue a download (see :meth:`DownloadWorker.add`)."""
        self._command(lambda w: w.add(version_id, file_id, dest_dir, version=version,
                                      on_added=on_added, allow_flagged=allow_flagged))

    @Slot()
    def pause(self) -> None:
        self._command(lambda w: w.pause())

    @Slot()
    def resume(self) -> None:
        self._command(lambda w: w.resume())

    @Slot(bool)
    def set_paused(self, paused: bool) -> None:
        (self.pause if paused else self.resume)()

    @Slot(int)
    def cancel(self, task_id: int) -> None:
        self._command(lambda w: w.cancel(task_id))

    @Slot(int)
    def retry(self, task_id: int, *, allow_flagged: bool = False) -> None:
        self._command(lambda w: w.retry(task_id, allow_flagged=allow_flagged))

    @Slot(int)
    def remove(self, task_id: int) -> None:
        """Forget a finished task (its file stays)."""
        self._command(lambda w: w.remove(task_id))

    @Slot()
    def clear_finished(self) -> None:
        self._command(lambda w: w.clear_finished())

    @Slot(int, int)
    def move(self, task_id: int, new_position: int) -> None:
        self._command(lambda w: w.move(task_id, new_position))

    def wake(self) -> None:
        """Look at the queue again: tasks were added to it directly (a restore)."""
        self._command(lambda w: w.wake())

    @Slot()
    def stop(self) -> None:
        """End the download thread (and wait for a queue still being built). Idempotent."""
        self._closed = True
        self._pending.clear()
        self._opening.waitForDone(10_000)
        if self.worker is not None:
            self.worker.stop()

    # -- bookkeeping of the counts ----------------------------------------------------------

    @Slot(object)
    def _note_task(self, task: TaskSnapshot) -> None:
        self._tasks[task.id] = task
        self._recount()

    @Slot(object)
    def _note_finished(self, task: TaskSnapshot) -> None:
        before = self._tasks.get(task.id)
        if before is None or before.state not in FINISHED_STATES:
            self._finished_in_batch += 1
        self._note_task(task)

    @Slot(list)
    def _note_removed(self, task_ids: list[int]) -> None:
        for task_id in task_ids:
            self._tasks.pop(task_id, None)
        self._recount()

    @Slot(list)
    def _note_reordered(self, tasks: list[TaskSnapshot]) -> None:
        self._tasks = {t.id: t for t in tasks}
        self._recount()

    @Slot(bool)
    def _note_paused(self, paused: bool) -> None:
        self._paused = paused
        self.paused_changed.emit(paused)
        self._recount()

    def _recount(self) -> None:
        counts = queue_counts(self._tasks.values(), finished=self._finished_in_batch,
                              paused=self._paused)
        if not counts.active:
            self._finished_in_batch = 0  # the next download starts a new "1 of N"
        if counts != self._counts:
            self._counts = counts
            self.counts_changed.emit(counts)
