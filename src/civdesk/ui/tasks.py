"""Run slow work off the GUI thread and get its outcome back on the GUI thread.

The Picard habit: a callable runs as a :class:`QRunnable` in a *named* thread pool (network,
disk, thumbnails … so a slow download listing never starves thumbnail decoding), and its result
or exception is delivered to callbacks **on the thread that started it** (the GUI thread), never
on a worker. Typical use::

    handle = run_task(core.library.entries, on_result=model.set_entries,
                      on_error=self.show_error, pool="db")
    ...
    handle.cancel()     # the callbacks will not be called; a waiting task never starts

A task that can stop early asks for the handle's cancel event with ``cancellable=True``; it is
passed as the ``cancel`` keyword argument (a :class:`threading.Event`).

Every callback belongs to a QObject, its *owner*: when the owner is destroyed first, the
work still ends but nothing is called back (a result arriving after its page closed must not
touch a deleted widget). Callbacks that are methods of a QObject name their owner themselves;
a lambda or a partial needs ``owner=``. :func:`shutdown` cancels everything and waits for
the pools when the application quits.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

log = logging.getLogger(__name__)

#: Pools and their size. Anything else asked for gets a pool of ``DEFAULT_POOL_SIZE``.
POOL_SIZES: dict[str, int] = {
    "default": 4,
    "db": 1,  # SQLite reads are fast; one at a time keeps their order predictable
    "network": 4,
    "disk": 2,  # scans, deletes: the disk is the bottleneck, not the CPU
    "thumbnails": 4,
}
DEFAULT_POOL_SIZE = 2

_pools: dict[str, QThreadPool] = {}
_live: set[TaskHandle] = set()  # handles kept alive until their outcome is delivered
_live_lock = threading.Lock()


def thread_pool(name: str = "default") -> QThreadPool:
    """The named pool, created on first use (call from the GUI thread)."""
    pool = _pools.get(name)
    if pool is None:
        pool = QThreadPool()
        pool.setObjectName(f"civdesk-{name}")
        pool.setMaxThreadCount(POOL_SIZES.get(name, DEFAULT_POOL_SIZE))
        _pools[name] = pool
    return pool


class TaskHandle(QObject):
    """The caller's side of one task: its outcome as signals, and a way to cancel it.

    Signals are emitted on the thread that created the handle, after the callbacks:
    ``succeeded(result)``, ``failed(exception)``, then always ``finished()`` — also when the
    task was cancelled, so a waiting spinner can stop.
    """

    succeeded = Signal(object)
    failed = Signal(object)
    finished = Signal()
    # Private: emitted on the worker, delivered (queued) on the handle's own thread.
    _outcome = Signal(object, object)

    def __init__(
        self,
        name: str,
        on_result: Callable[[Any], None] | None,
        on_error: Callable[[BaseException], None] | None,
        on_finished: Callable[[], None] | None,
    ) -> None:
        super().__init__()
        self.setObjectName(name)
        self.cancel_event = threading.Event()
        self._on_result = on_result
        self._on_error = on_error
        self._on_finished = on_finished
        self._done = threading.Event()
        self._runnable: QRunnable | None = None
        self._pool: QThreadPool | None = None
        self._outcome.connect(self._deliver)

    @property
    def name(self) -> str:
        return self.objectName()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    @property
    def done(self) -> bool:
        """True once the outcome was delivered (or the task was cancelled before it ran)."""
        return self._done.is_set()

    def cancel(self) -> None:
        """Ask the task to stop; its result and error callbacks will not be called.

        A task still waiting in its pool is taken out and never runs. A running task stops
        only if it watches its ``cancel`` event; its outcome is dropped either way.
        """
        if self.cancel_event.is_set():
            return
        self.cancel_event.set()
        runnable, pool = self._runnable, self._pool
        if runnable is not None and pool is not None and pool.tryTake(runnable):
            # It never started: nothing will emit _outcome, so finish here.
            self._deliver(None, None)

    @Slot()
    def _owner_destroyed(self) -> None:
        # The work goes on (a save or a delete the user asked for must finish); only the
        # callbacks, which would touch the deleted widget, are dropped.
        self._on_result = self._on_error = self._on_finished = None

    @Slot(object, object)
    def _deliver(self, result: Any, error: BaseException | None) -> None:
        if self._done.is_set():
            return
        self._done.set()
        self._runnable = None
        # Each callback read when it is due: one may destroy the owner of the next.
        try:
            if not self.cancelled:
                if error is None:
                    on_result = self._on_result
                    if on_result is not None and _alive(on_result):
                        on_result(result)
                    self.succeeded.emit(result)
                else:
                    on_error = self._on_error
                    if on_error is not None and _alive(on_error):
                        on_error(error)
                    self.failed.emit(error)
        finally:
            on_finished = self._on_finished
            if on_finished is not None and _alive(on_finished):
                on_finished()
            self.finished.emit()
            with _live_lock:
                _live.discard(self)


def _alive(callback: Callable[..., Any] | None) -> bool:
    """False for no callback, or a method of a Qt object whose C++ side is already deleted.

    A widget closed while its task ran must not be called back (Qt would raise, or crash).
    """
    if callback is None:
        return False
    owner = getattr(callback, "__self__", None)
    return not isinstance(owner, QObject) or shiboken6.isValid(owner)


def _owner_of(owner: QObject | None, *callbacks: Callable[..., Any] | None) -> QObject | None:
    """The owner given, else the QObject every callback is a method of.

    A lambda or partial given without an owner is a programming error: nothing would stop it
    from running after the widget it touches was deleted.
    """
    if owner is not None:
        return owner
    owners = {id(getattr(cb, "__self__", None)): getattr(cb, "__self__", None)
              for cb in callbacks if cb is not None}
    if not owners:
        return None
    found = list(owners.values())
    if len(found) == 1 and isinstance(found[0], QObject):
        return found[0]
    raise TypeError("run_task: callbacks that are not methods of one QObject need owner=")


class _Runnable(QRunnable):
    def __init__(self, handle: TaskHandle, func: Callable[..., Any], args: tuple, kwargs: dict):
        super().__init__()
        # Python owns it (through the handle), so cancel() may ask the pool about it safely
        # even after it ran; the pool deleting it would leave the handle a dangling wrapper.
        self.setAutoDelete(False)
        self._handle = handle
        self._func = func
        self._args = args
        self._kwargs = kwargs

    def run(self) -> None:
        handle = self._handle
        if handle.cancelled:
            handle._outcome.emit(None, None)
            return
        try:
            result = self._func(*self._args, **self._kwargs)
        except BaseException as exc:  # a worker must never swallow an exception
            from civdesk.core.errors import CivdeskError

            if not isinstance(exc, CivdeskError):
                log.exception("Task %r failed unexpectedly", handle.name)
            _hand_over(handle, None, exc)
        else:
            _hand_over(handle, result, None)
        finally:
            # Drop references to arguments (maybe large) as soon as the work is over.
            self._func = self._args = self._kwargs = None  # type: ignore[assignment]


def _hand_over(handle: TaskHandle, result: Any, error: BaseException | None) -> None:
    """Send the outcome to the handle's thread; nothing when the handle is gone.

    A task still running when the app quits (a slow request outliving ``shutdown``'s wait)
    ends after its handle was deleted with the rest: the outcome has nowhere to go, and
    saying so with a traceback on the way out helps nobody.
    """
    try:
        if shiboken6.isValid(handle):
            handle._outcome.emit(result, error)
            return
    except RuntimeError:  # deleted between the check and the emit
        pass
    log.debug("A task ended after its handle was deleted")
    with _live_lock:
        _live.discard(handle)


def run_task(
    func: Callable[..., Any],
    *args: Any,
    on_result: Callable[[Any], None] | None = None,
    on_error: Callable[[BaseException], None] | None = None,
    on_finished: Callable[[], None] | None = None,
    pool: str | QThreadPool = "default",
    name: str | None = None,
    cancellable: bool = False,
    priority: int = 0,
    owner: QObject | None = None,
    **kwargs: Any,
) -> TaskHandle:
    """Run ``func(*args, **kwargs)`` in a worker thread of ``pool``; return its handle.

    Call from the GUI thread (or any thread running an event loop): the callbacks run there.
    ``on_error`` gets the exception; a :class:`~civdesk.core.errors.CivdeskError`'s ``str()``
    is fit to show as-is. With ``cancellable=True`` the function receives ``cancel=`` (a
    :class:`threading.Event` set by :meth:`TaskHandle.cancel` and by :func:`shutdown`).
    Higher ``priority`` runs earlier among tasks waiting in the same pool.

    ``owner``: the object the callbacks belong to. When it is destroyed first, the task still
    runs but its callbacks are not called (they would touch a deleted widget). It may be left
    out only when every callback is a method of one QObject, which is then the owner.
    """
    owner = _owner_of(owner, on_result, on_error, on_finished)
    handle = TaskHandle(
        name or str(getattr(func, "__qualname__", "task")), on_result, on_error, on_finished
    )
    if cancellable:
        kwargs["cancel"] = handle.cancel_event
    runnable = _Runnable(handle, func, args, kwargs)
    qpool = pool if isinstance(pool, QThreadPool) else thread_pool(pool)
    handle._runnable = runnable
    handle._pool = qpool
    if owner is not None:
        owner.destroyed.connect(handle._owner_destroyed)
    with _live_lock:
        _live.add(handle)
    qpool.start(runnable, priority)
    return handle


def live_tasks() -> list[TaskHandle]:
    """Tasks whose outcome has not been delivered yet."""
    with _live_lock:
        return list(_live)


def shutdown(timeout_ms: int = 5000) -> bool:
    """Cancel every task and wait for every pool; True when all stopped in time.

    Called when the application quits, so no worker outlives the window and the database.
    """
    for handle in live_tasks():
        handle.cancel()
    stopped = True
    for pool in _pools.values():
        pool.clear()
        stopped = pool.waitForDone(timeout_ms) and stopped
    # Outcomes already queued are now moot; drop the handles, but only once no task runs:
    # a running task's handle (and the runnable it holds) must outlive it.
    if stopped:
        with _live_lock:
            _live.clear()
    return stopped


def wait_for_pools(timeout_ms: int = 5000) -> bool:
    """Wait until every pool is idle, without cancelling anything (for tests and benches)."""
    return all(pool.waitForDone(timeout_ms) for pool in list(_pools.values()))


def active_thread_count() -> int:
    """Worker threads busy right now, over every pool."""
    return sum(pool.activeThreadCount() for pool in _pools.values())
