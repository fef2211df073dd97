"""The worker helper: outcomes reach the GUI thread, cancel drops them, shutdown waits."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import QObject, QThread

from civdesk.core.errors import FileProblem
from civdesk.ui import tasks


def _gui_thread() -> QThread:
    return QThread.currentThread()


@pytest.fixture
def owner():
    """What the test's callbacks belong to (a widget, in the app)."""
    return QObject()


def test_result_is_delivered_on_the_calling_thread(qtbot, owner):
    seen: dict[str, object] = {}

    def work(a, b):
        seen["worker"] = threading.current_thread()
        return a + b

    def on_result(value):
        seen["result"] = value
        seen["callback_thread"] = _gui_thread()

    gui = _gui_thread()
    handle = tasks.run_task(work, 2, 3, on_result=on_result, owner=owner)
    with qtbot.waitSignal(handle.finished, timeout=2000):
        pass
    assert seen["result"] == 5
    assert seen["callback_thread"] is gui
    assert seen["worker"] is not threading.main_thread()
    assert handle.done


def test_error_is_delivered_with_the_exception(qtbot, owner):
    errors: list[BaseException] = []

    def work():
        raise FileProblem("The folder /x cannot be read")

    handle = tasks.run_task(work, on_error=errors.append, on_result=pytest.fail, owner=owner)
    with qtbot.waitSignal(handle.failed, timeout=2000) as blocker:
        pass
    assert str(errors[0]) == "The folder /x cannot be read"
    assert blocker.args[0] is errors[0]


def test_cancel_stops_a_cooperative_task_and_drops_its_outcome(qtbot, owner):
    started = threading.Event()
    results: list[object] = []

    def work(cancel):
        started.set()
        while not cancel.wait(0.01):
            pass
        return "stopped"

    handle = tasks.run_task(work, on_result=results.append, cancellable=True, pool="test-cancel",
                            owner=owner)
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


def test_a_lambda_callback_without_an_owner_is_refused(qtbot):
    # Nothing would stop it from running after the widget it touches is gone.
    with pytest.raises(TypeError, match="owner="):
        tasks.run_task(int, on_result=lambda _: None)
    assert tasks.live_tasks() == []


def test_a_lambda_callback_is_dropped_with_its_owner(qtbot):
    from PySide6.QtWidgets import QLabel

    label = QLabel()
    release = threading.Event()
    handle = tasks.run_task(lambda: release.wait(5) and "text",
                            on_result=lambda text: label.setText(text), owner=label)
    label.deleteLater()
    qtbot.waitUntil(lambda: not __import__("shiboken6").isValid(label), timeout=2000)
    release.set()
    with qtbot.waitSignal(handle.finished, timeout=2000):
        pass  # the lambda would raise RuntimeError on the deleted label


def test_a_task_outliving_its_handle_ends_without_a_traceback(qtbot, capfd):
    # The app quit while a slow request ran: its handle went with everything else.
    import shiboken6

    started, release = threading.Event(), threading.Event()

    def slow() -> None:
        started.set()
        release.wait(5)

    handle = tasks.run_task(slow, pool="test-outlive")
    assert started.wait(5)
    shiboken6.delete(handle)
    release.set()
    assert tasks.thread_pool("test-outlive").waitForDone(5000)
    assert "Traceback" not in capfd.readouterr().err
    assert handle not in tasks.live_tasks()


def test_a_shutdown_that_times_out_keeps_the_running_tasks_handles(qtbot):
    started, release = threading.Event(), threading.Event()

    def slow() -> None:
        started.set()
        release.wait(5)

    handle = tasks.run_task(slow, pool="test-slow-shutdown")
    try:
        assert started.wait(5)
        assert not tasks.shutdown(timeout_ms=50)
        assert handle in tasks.live_tasks()  # the runnable it holds is still running
    finally:
        release.set()
        assert tasks.thread_pool("test-slow-shutdown").waitForDone(5000)
        tasks.shutdown(timeout_ms=1000)
