"""The download queue on a thread of its own, speaking Qt signals.

The core :class:`~civdesk.core.downloads.queue.DownloadQueue` is plain Python: its
``run_next()`` blocks while one file downloads, and it tells listeners what happened by
calling them on that same thread. :class:`DownloadWorker` owns the thread that loops on
``run_next()`` and turns each callback into a signal (delivered queued to GUI objects).

Commands (add, cancel, retry, move, pause, resume) run on a one-thread pool, in the order
given (they write the database, which the GUI thread never does); a command that may give
the loop work wakes it. Progress is throttled per task
so a fast download cannot flood the GUI thread with events.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, cast

import shiboken6
from PySide6.QtCore import QMetaObject, QObject, QThread, QThreadPool, Signal, Slot

from civdesk.core.civitai.schema import ModelVersion
from civdesk.core.downloads.queue import DownloadQueue
from civdesk.ui.tasks import TaskHandle, run_task

if TYPE_CHECKING:
    from civdesk.core.civitai.client import CivitaiClient

log = logging.getLogger(__name__)

#: At most this many progress signals per task per second (state changes always go out).
PROGRESS_HZ = 10.0
STOP_POLL_MS = 50


class ProgressThrottle:
    """Lets one progress update per task through every ``1/hz`` seconds."""

    def __init__(self, hz: float = PROGRESS_HZ, clock: Any = time.monotonic) -> None:
        self._interval = 1.0 / hz
        self._clock = clock
        self._last: dict[int, float] = {}
        self._lock = threading.Lock()

    def allow(self, task_id: int) -> bool:
        now = self._clock()
        with self._lock:
            last = self._last.get(task_id)
            if last is not None and now - last < self._interval:
                return False
            self._last[task_id] = now
            return True

    def forget(self, task_id: int) -> None:
        with self._lock:
            self._last.pop(task_id, None)


class _LoopThread(QThread):
    def __init__(self, target: Any) -> None:
        super().__init__()
        self.setObjectName("civdesk-downloads")
        self._target = target

    def run(self) -> None:
        self._target()


def _stop_thread(
    thread: QThread, queue: DownloadQueue, stopping: threading.Event, wake: threading.Event,
    timeout_ms: int,
) -> bool:  # fmt: skip
    """End the loop on ``thread`` and wait for it; True when it ended in time.

    A plain function of the loop's parts (not of the worker), so it can also run from the
    worker's ``destroyed`` signal. Idempotent; a thread whose C++ side is gone (the app is
    being torn down) has nothing left to wait for.
    """
    stopping.set()
    wake.set()
    if not shiboken6.isValid(thread):
        return True
    # Interrupt again while waiting: a download may have been starting just as the stop
    # came, too late for the first interrupt to see it.
    deadline = time.monotonic() + timeout_ms / 1000
    queue.interrupt()
    while not (ended := thread.wait(STOP_POLL_MS)) and time.monotonic() < deadline:
        queue.interrupt()
    if not ended:
        log.error("The download thread did not stop within %d ms", timeout_ms)
    return ended


class DownloadWorker(QObject):
    """Runs a :class:`DownloadQueue` on a private :class:`QThread`.

    Signals carry the queue's immutable task snapshots. ``start()`` once, ``stop()`` before
    the queue's database closes; ``stop()`` interrupts a running download, which stays
    ``queued`` in the database and resumes (with Range) on the next start.
    """

    task_added = Signal(object)  # TaskSnapshot
    task_changed = Signal(object)  # state or details changed (not mere progress)
    task_progress = Signal(object)  # throttled to PROGRESS_HZ per task
    task_finished = Signal(object)  # completed, failed or cancelled
    tasks_removed = Signal(list)  # task ids (removed, or the history cleared)
    tasks_reordered = Signal(list)  # every task, in the queue's new order
    paused_changed = Signal(bool)
    queue_idle = Signal()  # nothing left to run (or paused) after some work
    crashed = Signal(str)  # an unexpected error stopped the loop (a bug; logged)
    command_failed = Signal(str)  # a command was refused (e.g. retry of a completed task)

    def __init__(
        self, queue: DownloadQueue, parent: QObject | None = None, *,
        api_key: Callable[[], str | None] | None = None,
        site: Callable[[], str] | None = None,
    ) -> None:  # fmt: skip
        """``api_key`` gives the current key; it is read before each task, so a key set in
        Settings after a failure is used by the retry. ``site`` likewise gives the Civitai
        site downloads go to (it follows the mature-content setting)."""
        super().__init__(parent)
        self.queue = queue
        self._api_key = api_key
        self._site = site
        queue.before_task = self._prepare_client  # on the worker's thread, per task
        self._thread: QThread | None = None
        self._closed = False  # stop() was called: the loop never starts again
        self._last_resort: QMetaObject.Connection | None = None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._throttle = ProgressThrottle()
        self._commands = QThreadPool(self)
        self._commands.setMaxThreadCount(1)
        self._listener = self._on_queue_event  # keep one bound method to remove it later
        queue.add_listener(self._listener)

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.isRunning()

    @property
    def closed(self) -> bool:
        """``stop()`` was called; ``start()`` does nothing from now on."""
        return self._closed

    def start(self) -> None:
        """Start the download thread (once). After :meth:`stop` it does nothing: a start
        that arrives late (from a callback queued before the window closed) must not run a
        thread past the database's life."""
        if self._thread is not None or self._closed:
            return
        # The worker object stays on the GUI thread; only the loop runs on the new thread,
        # and the signals it emits there reach GUI receivers queued.
        thread = _LoopThread(self._loop)
        self._thread = thread
        self._stopping.clear()
        thread.start()
        # Last line of defence: if the window is torn down without stop() (its shutdown
        # failed half-way), stop the loop anyway; Qt aborts on a QThread destroyed running.
        self._last_resort = self.destroyed.connect(
            partial(_stop_thread, thread, self.queue, self._stopping, self._wake, 10_000)
        )

    def stop(self, timeout_ms: int = 10_000) -> bool:
        """Interrupt the current download, end the thread and wait for it; True if it ended.

        Safe to call more than once, and before :meth:`start` (which then never starts).
        """
        if self._closed and self._thread is None:
            return True
        self._closed = True
        self._stopping.set()
        self._commands.waitForDone(timeout_ms)
        thread, self._thread = self._thread, None
        ended = True
        if thread is not None:
            ended = _stop_thread(thread, self.queue, self._stopping, self._wake, timeout_ms)
        if ended and self._last_resort is not None:
            # Stopped for good: the destroyed-hook would only touch a thread Python may
            # already have deleted by the time the worker goes (at interpreter exit).
            self.disconnect(self._last_resort)  # type: ignore[call-overload]  # stubs lack it
            self._last_resort = None
        self.queue.remove_listener(self._listener)
        return ended

    def _loop(self) -> None:
        worked = False
        try:
            while not self._stopping.is_set():
                self._wake.clear()  # before run_next: a command arriving during it re-wakes
                snapshot = self.queue.run_next()
                if snapshot is not None:
                    worked = True
                    continue
                if worked:
                    worked = False
                    self.queue_idle.emit()
                self._wake.wait()
        except Exception as exc:  # a thread would swallow it: log it and say so
            log.exception("The download loop stopped")
            self.crashed.emit(f"The download queue stopped unexpectedly: {exc}")

    def _prepare_client(self) -> None:
        """The key and site as they are now, read once the next task is claimed."""
        client = cast("CivitaiClient", self.queue.client)  # the window's queue has one
        if self._api_key is not None:
            try:
                client.api_key = self._api_key()
            except Exception:  # a keychain hiccup: keep the key we had
                log.warning("Could not read the API key; keeping the current one",
                            exc_info=True)
        if self._site is not None:
            client.base_url = self._site()

    # -- commands ---------------------------------------------------------------------------
    # Each command touches the database, so none runs on the GUI thread: they go, in order,
    # through a one-thread pool. Results/errors come back on the caller's (GUI) thread.

    def _command(
        self, func: Callable[[], Any], *, wake: bool = False,
        on_result: Callable[[Any], None] | None = None,
    ) -> TaskHandle:  # fmt: skip
        def run() -> Any:
            if self._stopping.is_set():  # the database may be closing: do nothing
                return None
            result = func()
            if wake:
                self._wake.set()
            return result

        return run_task(run, on_result=on_result, on_error=self._command_failed,
                        pool=self._commands, name=getattr(func, "__name__", "command"),
                        owner=self)

    def _command_failed(self, exc: BaseException) -> None:
        # A CivdeskError is one line for the user; anything else was logged by run_task.
        self.command_failed.emit(str(exc))

    def add(
        self, version_id: int, file_id: int | None = None, dest_dir: str | None = None, *,
        version: ModelVersion | None = None, on_added: Callable[[int], None] | None = None,
        allow_flagged: bool = False,
    ) -> TaskHandle:  # fmt: skip
        """Queue a download; ``on_added(task_id)`` is called on the GUI thread.

        ``version`` (when at hand) lets the list show names before the task runs;
        ``allow_flagged``: the user confirmed a file Civitai's scans flagged.
        """
        return self._command(
            lambda: self.queue.add(version_id, file_id, dest_dir, version=version,
                                   allow_flagged=allow_flagged),
            wake=True, on_result=on_added,
        )  # fmt: skip

    @Slot(int)
    def remove(self, task_id: int) -> TaskHandle:
        """Forget a finished task (its file stays)."""
        return self._command(lambda: self.queue.remove(task_id))

    @Slot()
    def clear_finished(self) -> TaskHandle:
        return self._command(self.queue.clear_finished)


    @Slot(int)
    def cancel(self, task_id: int) -> TaskHandle:
        return self._command(lambda: self.queue.cancel(task_id))

    @Slot(int)
    def retry(self, task_id: int, *, allow_flagged: bool = False) -> TaskHandle:
        """Queue a failed or cancelled task again; ``allow_flagged``: the user chose its
        flagged file (see :func:`~civdesk.ui.downloads.confirm.confirm_flagged`)."""
        choice = True if allow_flagged else None
        return self._command(lambda: self.queue.retry(task_id, allow_flagged=choice), wake=True)

    @Slot(int, int)
    def move(self, task_id: int, new_position: int) -> TaskHandle:
        return self._command(lambda: self.queue.move(task_id, new_position))

    @Slot()
    def pause(self) -> TaskHandle:
        return self._command(self.queue.pause)

    @Slot()
    def resume(self) -> TaskHandle:
        return self._command(self.queue.resume, wake=True)

    @property
    def paused(self) -> bool:
        return bool(self.queue.paused)

    def wake(self) -> None:
        """Look at the queue again: tasks were added to it directly (a restore)."""
        self._wake.set()

    # -- queue callbacks (download thread, or the caller's thread for commands) --------------

    def _on_queue_event(self, event: str, payload: Any) -> None:
        if event == "progress":
            if self._throttle.allow(payload.id):
                self.task_progress.emit(payload)
        elif event == "added":
            self.task_added.emit(payload)
        elif event == "changed":
            self.task_changed.emit(payload)
        elif event == "finished":
            self._throttle.forget(payload.id)
            self.task_finished.emit(payload)
        elif event == "removed":
            self.tasks_removed.emit([int(task_id) for task_id in payload])
        elif event == "reordered":
            self.tasks_reordered.emit(list(payload))
        elif event == "paused":
            self.paused_changed.emit(bool(payload))
