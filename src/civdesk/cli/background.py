"""Long work on a worker thread, so that Ctrl+C stops it cleanly instead of mid-write.

Python delivers Ctrl+C to the main thread only. A scan or a download running on the main
thread would be torn out of whatever it was doing (a database transaction, a thread pool
that then waits for every in-flight hash). Here the main thread only waits; on Ctrl+C it
asks the work to stop through the work's own cancel mechanism, waits for it to wind down,
and then lets the KeyboardInterrupt go on to become exit code 130.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)

#: How long stopping may take after Ctrl+C (work checks its cancel flag between chunks).
STOP_TIMEOUT = 15.0
_POLL = 0.2
#: Names of work that did not stop when asked (a request to a server that hangs).
_abandoned: list[str] = []


def abandoned_work() -> list[str]:
    """The work Ctrl+C left running: the process should end without waiting for it (its
    threads would hold the exit up until their network timeouts, minutes)."""
    return list(_abandoned)


def run_cancellable(work: Callable[[], T], stop: Callable[[], None], *,
                    name: str = "civdesk-work", stop_timeout: float = STOP_TIMEOUT) -> T:
    """``work()`` on a worker thread; its result, or its exception re-raised here.

    On Ctrl+C, ``stop()`` is called, the worker is given ``stop_timeout`` seconds to end,
    and KeyboardInterrupt is raised (whatever the stopped work raised is dropped: it was
    asked to stop).
    """
    outcome: dict[str, Any] = {}
    # Waited on instead of Thread.join: on CPython 3.11 a join that Ctrl+C interrupts can
    # mark the thread as ended while it still runs (bpo-45274's fix releases the lock the
    # running thread holds), and a later join then returns at once: the process exited in
    # the middle of the scan's last save, losing what was hashed.
    ended = threading.Event()

    def target() -> None:
        try:
            outcome["result"] = work()
        except BaseException as exc:  # handed to the main thread, which reports it
            outcome["error"] = exc
        finally:
            ended.set()

    worker = threading.Thread(target=target, name=name, daemon=True)
    try:
        # Started inside the try: a Ctrl+C that lands while start() waits must stop it too.
        worker.start()
        # A timed wait: an untimed one would hold Ctrl+C off until the work ends.
        while not ended.wait(_POLL):
            pass
    except KeyboardInterrupt:
        stop()
        if not ended.wait(stop_timeout):
            _abandoned.append(name)
            log.warning("%s did not stop within %.0f s of Ctrl+C; leaving it", name,
                        stop_timeout)
        raise
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]
