"""Shared fixtures. The Qt platform must be set before anything imports Qt.

Besides the double and the data folder, three autouse checks (the napari habit) fail a test
that used Qt and left work behind: a running ``QThread``, an active ``QThreadPool`` job or
an active ``QTimer`` (pending ``singleShot`` calls included). Left-overs like these fire
during a later test, on objects that are gone, and crash it far from the cause.
"""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import faulthandler
import gc
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from civdesk.core.library.db import Database
from civdesk.core.library.repository import Library
from tests.double import CivitaiDouble, SampleCatalog, build_sample_catalog

TEST_API_KEY = "test-key"


def signals_as_in_a_terminal() -> None:
    """``preexec_fn`` for a child that a test stops with Ctrl+C or kill.

    A suite started as a background job or under ``nohup`` passes SIGINT on ignored, and
    the child would never see the test's Ctrl+C: give it the signals a terminal gives.
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@pytest.fixture
def ctrl_c_as_in_a_terminal() -> Iterator[None]:
    """Ctrl+C raises KeyboardInterrupt in this process for the test, as in a terminal,
    also when the suite runs as a background job (SIGINT inherited ignored)."""
    import signal

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.fixture
def civitai() -> Iterator[CivitaiDouble]:
    """A running Civitai double (API + storage hosts on loopback); the valid key is TEST_API_KEY."""
    double = CivitaiDouble(api_key=TEST_API_KEY)
    double.start()
    try:
        yield double
    finally:
        double.stop()


@pytest.fixture
def civitai_catalog(civitai: CivitaiDouble) -> SampleCatalog:
    """The double pre-filled with four models (LORA with an update, Checkpoint, TI, VAE)."""
    return build_sample_catalog(civitai)


@pytest.fixture(autouse=True)
def private_home(tmp_path_factory: pytest.TempPathFactory,
                 monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own empty home folder: with no download folder set, downloads
    go to ``~/civdesk-models``, and a test must neither write into the real home nor find
    a file an earlier run left there (one did: a VAE, which later looked "already there")."""
    folder = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(folder))
    monkeypatch.setenv("USERPROFILE", str(folder))  # what expanduser reads on Windows
    return folder


@pytest.fixture
def tmp_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private CIVDESK_DATA_DIR so nothing touches the real home."""
    data_dir = tmp_path / "civdesk-data"
    data_dir.mkdir()
    monkeypatch.setenv("CIVDESK_DATA_DIR", str(data_dir))
    return data_dir


@pytest.fixture
def library(tmp_path: Path) -> Iterator[Library]:
    """A real library database in tmp_path (no Core, no double)."""
    db = Database.open(tmp_path / "library.sqlite3")
    try:
        yield Library(db)
    finally:
        db.close()


# -- Hung tests -------------------------------------------------------------------------------

#: Beyond its pytest-timeout limit, how long a test may go on before the run is killed.
HARD_KILL_MARGIN_SECONDS = float(os.environ.get("CIVDESK_TEST_HARD_KILL_MARGIN", "30"))


class _Watchdog:
    """Kills the whole run, with every thread's stack, when a test outlives its timeout.

    pytest-timeout's signal method raises in the main thread, which only works once that
    thread runs Python again: a test stuck in C (``QThread.wait``, a Qt event loop that
    swallows the exception in a slot) would otherwise hang the run until CI's own limit,
    saying nothing. One Python thread watches every test and ends with the hung test's
    name, so the tail of a CI log says it; faulthandler's C watchdog, which needs no GIL,
    is the last resort when a deadlock holds the GIL.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd  # a copy of the real stderr: during a test fd 2 is a capture file
        self._cond = threading.Condition()
        self._armed: tuple[str, float, float] | None = None  # nodeid, limit, deadline
        threading.Thread(target=self._watch, name="civdesk-test-watchdog", daemon=True).start()

    def arm(self, nodeid: str, limit: float) -> None:
        with self._cond:
            self._armed = (nodeid, limit, time.monotonic() + limit + HARD_KILL_MARGIN_SECONDS)
            self._cond.notify()
        faulthandler.dump_traceback_later(limit + 2 * HARD_KILL_MARGIN_SECONDS, exit=True,
                                          file=self._fd)

    def disarm(self) -> None:
        faulthandler.cancel_dump_traceback_later()
        with self._cond:
            self._armed = None

    def _watch(self) -> None:
        with self._cond:
            while True:
                if self._armed is None:
                    self._cond.wait()
                    continue
                nodeid, limit, deadline = self._armed
                left = deadline - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                faulthandler.dump_traceback(file=self._fd, all_threads=True)
                os.write(self._fd, f"\n[watchdog] {nodeid} hung: still running "
                                   f"{HARD_KILL_MARGIN_SECONDS:.0f} s after its {limit:.0f} s "
                                   "timeout; the run is stopped.\n".encode())
                os._exit(70)


_WATCHDOG = pytest.StashKey[_Watchdog]()


def pytest_configure(config: pytest.Config) -> None:
    # Output capture is off while pytest configures: this is the real stderr.
    config.stash[_WATCHDOG] = _Watchdog(os.dup(sys.stderr.fileno()))
    # As in the app (civdesk.ui.collector): no collection starts inside a Qt destructor,
    # where it can deadlock on Qt's own lock. Cycles are collected between tests instead,
    # and during a Qt test by the GUI thread's collector.
    gc.disable()


def pytest_unconfigure(config: pytest.Config) -> None:
    gc.enable()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    marker = item.get_closest_marker("timeout")
    limit = float(marker.args[0]) if marker and marker.args else float(
        item.config.getini("timeout") or 0)
    watchdog = item.config.stash[_WATCHDOG]
    if limit > 0:
        watchdog.arm(item.nodeid, limit)
    try:
        return (yield)
    finally:
        _collect_between_tests()
        watchdog.disarm()  # a no-op when not armed


def _collect_between_tests() -> None:
    from civdesk.ui.collector import due_generation

    generation = due_generation(gc.get_threshold())
    if generation is not None:
        gc.collect(generation)


# -- Qt left-overs ---------------------------------------------------------------------------

#: How long a test's threads, pool jobs and short timers get to finish after it returned.
QT_GRACE_SECONDS = float(os.environ.get("CIVDESK_TEST_QT_GRACE", "3"))
#: Mark a test that deliberately leaves Qt work behind (say why in the reason).
LEAK_CHECK_OPT_OUT = "qt_leaks_allowed"


def _uses_qt(request: pytest.FixtureRequest) -> bool:
    # qtbot, qtmodeltester and every widget fixture depend on qapp; core tests never do.
    return "qapp" in request.fixturenames and LEAK_CHECK_OPT_OUT not in request.keywords


def _spin_until(done: Callable[[], bool], seconds: float) -> bool:
    """Process Qt events until ``done()`` or the time is up; whether it got done."""
    from PySide6.QtCore import QCoreApplication

    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() >= deadline:
            return False
        QCoreApplication.processEvents()
        time.sleep(0.01)
    return True


def _alive(obj: Any) -> bool:
    import shiboken6

    return obj is not None and shiboken6.isValid(obj)


@pytest.fixture(scope="session", autouse=True)
def _deferred_calls_need_a_context() -> Iterator[None]:
    """Refuse, for the whole run, a ``QTimer.singleShot`` from civdesk code without a context.

    Without one Qt cannot drop the call when the widget it touches dies: it fires later, in
    another test or after a window closed, on a deleted object. A whole-session patch, so a
    call made while some fixture tears down is caught too; the error fails the test it is in.
    """
    from PySide6.QtCore import QObject, QTimer

    original = QTimer.singleShot

    def single_shot(msec: Any, *args: Any) -> Any:
        if args and callable(args[-1]) and not isinstance(args[-1], (QObject, str)) and not any(
                isinstance(a, QObject) for a in args[:-1]):
            caller = _caller_outside_conftest()
            if caller.startswith("civdesk."):
                raise TypeError(f"QTimer.singleShot without a context object in {caller}: "
                                "give the object the call belongs to, so Qt drops it with it")
        return original(msec, *args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(QTimer, "singleShot", staticmethod(single_shot))
        yield


def _caller_outside_conftest() -> str:
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame = frame.f_back  # type: ignore[assignment]
    return frame.f_globals.get("__name__", "") if frame is not None else ""


@pytest.fixture(autouse=True)
def _no_dangling_qthreads(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Fail a test that leaves a QThread it started still running."""
    if not _uses_qt(request):
        yield
        return
    from PySide6.QtCore import QThread

    started: weakref.WeakSet[Any] = weakref.WeakSet()
    original_start = QThread.start

    def start(self: Any, *args: Any) -> None:
        started.add(self)
        original_start(self, *args)

    monkeypatch.setattr(QThread, "start", start)
    yield
    monkeypatch.setattr(QThread, "start", original_start)

    def running() -> list[Any]:
        return [t for t in list(started) if _alive(t) and t.isRunning()]

    if _spin_until(lambda: not running(), QT_GRACE_SECONDS):
        return
    left = running()
    names = ", ".join(f"{type(t).__name__}({t.objectName()!r})" for t in left)
    for thread in left:  # contain the damage: a QThread destroyed running aborts Python
        thread.quit()
        thread.wait(5000)
    pytest.fail(f"The test left {len(left)} QThread(s) running: {names}", pytrace=False)


@pytest.fixture(autouse=True)
def _no_dangling_qthreadpool_jobs(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Fail a test that leaves jobs running in a QThreadPool it used."""
    if not _uses_qt(request):
        yield
        return
    from PySide6.QtCore import QThreadPool

    pools: weakref.WeakSet[Any] = weakref.WeakSet()
    originals = {name: getattr(QThreadPool, name) for name in ("start", "tryStart")}

    def tracking(name: str) -> Callable[..., Any]:
        original = originals[name]

        def submit(self: Any, *args: Any) -> Any:
            pools.add(self)
            return original(self, *args)

        return submit

    for name in originals:
        monkeypatch.setattr(QThreadPool, name, tracking(name))
    yield
    for name, original in originals.items():
        monkeypatch.setattr(QThreadPool, name, original)

    def busy() -> list[Any]:
        return [p for p in list(pools) if _alive(p) and p.activeThreadCount() > 0]

    # Events are processed while waiting: a job may be handing its result to the GUI thread.
    if _spin_until(lambda: not busy(), QT_GRACE_SECONDS):
        return
    left = busy()
    names = ", ".join(f"{p.objectName() or 'unnamed'}: {p.activeThreadCount()}" for p in left)
    pytest.fail(f"The test left QThreadPool jobs running ({names})", pytrace=False)


@pytest.fixture(autouse=True)
def _gc_on_gui_thread(request: pytest.FixtureRequest) -> Iterator[None]:
    """Qt tests collect garbage the way the app does: from the GUI thread's event loop."""
    if "qapp" not in request.fixturenames:
        yield
        return
    from civdesk.ui.collector import GuiGarbageCollector

    request.getfixturevalue("qapp")
    collector = GuiGarbageCollector()
    collector.start()
    yield
    collector.stop()


#: Blocking dialog functions: each runs a nested event loop that nothing ends offscreen.
_MODAL_CALLS = {
    "QMessageBox": ("question", "warning", "critical", "information", "about"),
    "QInputDialog": ("getText", "getInt", "getDouble", "getItem", "getMultiLineText"),
    "QFileDialog": ("getExistingDirectory", "getOpenFileName", "getOpenFileNames",
                    "getSaveFileName"),
}
#: A modal window open this long in a test is closed and the test failed.
MODAL_PATIENCE_MS = 10_000


@pytest.fixture(autouse=True)
def _no_blocking_dialogs(request: pytest.FixtureRequest,
                         monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail a Qt test that opens a blocking dialog instead of hanging the run.

    A dialog's nested event loop waits for a click that never comes offscreen, and
    pytest-timeout's exception lands in some slot inside that loop, where Qt swallows it.
    The static dialog functions raise at once (pytest-qt reports an exception raised in a
    Qt callback); a test that expects one patches it itself, after this fixture. Any other
    modal window (``exec()`` on an instance cannot be patched from Python) is closed by a
    timer that runs inside the nested loop, and the test fails.
    """
    if "qapp" not in request.fixturenames:
        yield
        return
    from PySide6 import QtWidgets
    from PySide6.QtCore import QTimer

    def refuse(where: str) -> Callable[..., Any]:
        def blocked(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError(f"{where} would block the test in a nested event loop: "
                                 "patch it in the test, or use open()")
        return blocked

    for class_name, names in _MODAL_CALLS.items():
        cls = getattr(QtWidgets, class_name)
        for name in names:
            monkeypatch.setattr(cls, name, staticmethod(refuse(f"{class_name}.{name}()")))

    closed: list[str] = []
    seen: dict[int, float] = {}

    def close_lingering_modal() -> None:
        modal = QtWidgets.QApplication.activeModalWidget()
        if modal is None:
            seen.clear()
            return
        first = seen.setdefault(id(modal), time.monotonic())
        if (time.monotonic() - first) * 1000 >= MODAL_PATIENCE_MS:
            closed.append(f"{type(modal).__name__} {modal.windowTitle()!r}")
            modal.close()

    watcher = QTimer()
    watcher.setInterval(250)
    watcher.timeout.connect(close_lingering_modal)
    watcher.start()
    yield
    watcher.stop()
    if closed:
        pytest.fail(f"The test left a modal window open for {MODAL_PATIENCE_MS // 1000} s "
                    f"(closed it): {', '.join(closed)}", pytrace=False)


@pytest.fixture(autouse=True)
def _no_dangling_qtimers(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
    # Their own timers start before this fixture watches timers.
    _gc_on_gui_thread: None, _no_blocking_dialogs: None,
) -> Iterator[None]:
    """Fail a test that leaves a QTimer active or a QTimer.singleShot pending.

    A timer whose owner was deleted is gone with it and does not count; neither does a
    single shot whose context object was deleted (Qt drops it).
    """
    if not _uses_qt(request):
        yield
        return
    from PySide6.QtCore import QObject, QTimer

    timers: weakref.WeakSet[Any] = weakref.WeakSet()
    pending: dict[int, tuple[Any, float, str]] = {}  # id -> (context or None, due, what)
    original_start = QTimer.start
    original_single_shot = QTimer.singleShot

    def start(self: Any, *args: Any) -> None:
        timers.add(self)
        original_start(self, *args)

    def single_shot(msec: Any, *args: Any) -> None:
        # Overloads: (msec, callable), (msec, context, callable), (msec, timerType, callable).
        func = args[-1] if args else None
        if not callable(func) or isinstance(func, (QObject, str)):
            original_single_shot(msec, *args)  # (msec, receiver, "slot"): not traceable
            return
        context = args[0] if len(args) == 2 and isinstance(args[0], QObject) else None
        key = id(func) ^ int(time.monotonic_ns())
        what = getattr(func, "__qualname__", repr(func))

        def fire(*fargs: Any) -> Any:
            pending.pop(key, None)
            return func(*fargs)

        original_single_shot(msec, *args[:-1], fire)  # may refuse it: then nothing is pending
        pending[key] = (context, time.monotonic() + int(msec) / 1000, what)

    monkeypatch.setattr(QTimer, "start", start)
    monkeypatch.setattr(QTimer, "singleShot", staticmethod(single_shot))
    yield
    monkeypatch.setattr(QTimer, "start", original_start)
    monkeypatch.setattr(QTimer, "singleShot", original_single_shot)

    def shots_left() -> list[str]:
        return [what for context, _, what in list(pending.values())
                if context is None or _alive(context)]

    def active() -> list[Any]:
        return [t for t in list(timers) if _alive(t) and t.isActive()]

    # Single shots (debounces, coalescing) due within the grace period are let fire; a
    # repeating timer never stops by itself and a later single shot is a leak.
    soon = time.monotonic() + QT_GRACE_SECONDS
    if all(due <= soon for _, due, _ in pending.values()) and all(
        t.isSingleShot() and t.remainingTime() <= QT_GRACE_SECONDS * 1000 for t in active()
    ):
        _spin_until(lambda: not shots_left() and not active(), QT_GRACE_SECONDS)
    still_active = active()
    shots = shots_left()
    if still_active or shots:
        described = [f"QTimer {t.objectName() or 'unnamed'} ({t.interval()} ms, parent "
                     f"{type(t.parent()).__name__})" for t in still_active]
        described += [f"singleShot -> {what}" for what in shots]
        for timer in still_active:
            timer.stop()
        pytest.fail("The test left Qt timers active: " + "; ".join(described), pytrace=False)
