"""The worker helper: outcomes reach the GUI thread, cancel drops them, shutdown waits."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import QThread

from civdesk.core.errors import FileProblem
from civdesk.ui import tasks


def _gui_thread() -> QThread:
    return QThread.currentThread()


def test_result_is_delivered_on_the_calling_thread(qtbot):
    seen: dict[str, object] = {}

    def work(a, b):
        seen["worker"] = threading.current_thread()
        return a + b

    def on_result(value):
        seen["result"] = value
        seen["callback_thread"] = _gui_thread()

    gui = _gui_thread()
    handle = tasks.run_task(work, 2, 3, on_result=on_result)
    with qtbot.waitSignal(handle.finished, timeout=2000):
        pass
    assert seen["result"] == 5
    assert seen["callback_thread"] is gui
    assert seen["worker"] is not threading.main_thread()
    assert handle.done


def test_error_is_delivered_with_the_exception(qtbot):
    errors: list[BaseException] = []

    def work():
        raise FileProblem("The folder /x cannot be read")

    handle = tasks.run_task(work, on_error=errors.append, on_result=pytest.fail)
    with qtbot.waitSignal(handle.failed, timeout=2000) as blocker:
        pass
    assert str(errors[0]) == "The folder /x cannot be read"
    assert blocker.args[0] is errors[0]


def test_cancel_stops_a_cooperative_task_and_drops_its_outcome(qtbot):
    started = threading.Event()
    results: list[object] = []

    def work(cancel):
        started.set()
        while not cancel.wait(0.01):
            pass
        return "stopped"

    handle = tasks.run_task(work, on_result=results.append, cancellable=True, pool="test-cancel")
    assert started.wait(2)
    with qtbot.waitSignal(handle.finished, timeout=2000):
        handle.cancel()
    assert results == []
    assert handle.cancelled


def test_cancel_before_start_never_runs_the_task(qtbot):
    release = threading.Event()
    ran: list[str] = []
    pool = tasks.thread_pool("test-single")
    pool.setMaxThreadCount(1)
    blocker = tasks.run_task(release.wait, 5, pool="test-single")
    waiting = tasks.run_task(ran.append, "ran", pool="test-single")
    with qtbot.waitSignal(waiting.finished, timeout=1000):
        waiting.cancel()
    release.set()
    with qtbot.waitSignal(blocker.finished, timeout=2000):
        pass
    assert ran == []


def test_call_in_gui_runs_on_the_gui_thread(qtbot):
    gui = _gui_thread()
    seen: list[object] = []

    def from_worker():
        tasks.call_in_gui(lambda: seen.append(_gui_thread()))

    tasks.install_gui_invoker()
    worker = threading.Thread(target=from_worker)
    worker.start()
    worker.join()
    qtbot.waitUntil(lambda: bool(seen), timeout=2000)
    assert seen[0] is gui


def test_shutdown_cancels_and_waits(qtbot):
    started = threading.Event()
    stopped = threading.Event()

    def work(cancel):
        started.set()
        cancel.wait(5)
        stopped.set()

    tasks.run_task(work, cancellable=True, pool="test-shutdown")
    assert started.wait(2)
    assert tasks.shutdown(2000)
    assert stopped.is_set()
    assert tasks.active_thread_count() == 0


def test_callbacks_of_a_deleted_widget_are_not_called(qtbot):
    from PySide6.QtWidgets import QLabel

    label = QLabel()
    release = threading.Event()
    handle = tasks.run_task(lambda: release.wait(5) and "text", on_result=label.setText)
    label.deleteLater()
    qtbot.waitUntil(lambda: not __import__("shiboken6").isValid(label), timeout=2000)
    release.set()
    with qtbot.waitSignal(handle.finished, timeout=2000):
        pass  # delivered without touching the deleted label (would raise RuntimeError)
