"""Ctrl+C during long command-line work: the work is asked to stop and waited for."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from civdesk.cli.background import run_cancellable


def test_ctrl_c_during_the_wait_still_waits_for_the_work_to_wind_down(
        ctrl_c_as_in_a_terminal: None) -> None:
    # A real SIGINT while the main thread is blocked waiting: on CPython 3.11 an
    # interrupted Thread.join marked the worker ended while it still ran, so the command
    # line exited in the middle of the scan's last save.
    stop = threading.Event()
    finished = threading.Event()

    def work() -> None:
        time.sleep(0.5)  # the main thread is in its wait by now
        os.kill(os.getpid(), signal.SIGINT)
        stop.wait(10)
        time.sleep(0.5)  # winding down: saving what was done
        finished.set()

    with pytest.raises(KeyboardInterrupt):
        run_cancellable(work, stop.set)
    assert finished.is_set()
