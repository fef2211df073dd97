"""Start the window: the QApplication, its look, the main window, a clean quit.

``python -m civdesk`` without a command ends up in :func:`run_gui`.
"""

from __future__ import annotations

import gc
import logging
import logging.handlers
import sys
from typing import TYPE_CHECKING

from PySide6.QtCore import (
    QCoreApplication,
    QMessageLogContext,
    QObject,
    QSettings,
    Qt,
    QtMsgType,
    qInstallMessageHandler,
)
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QMessageBox

from civdesk import APP_NAME, __version__
from civdesk.core.secret_text import RedactingFilter
from civdesk.ui import tasks
from civdesk.ui.collector import GuiGarbageCollector
from civdesk.ui.stop_signals import StopSignals

if TYPE_CHECKING:
    from civdesk.core.context import Core

log = logging.getLogger(__name__)
qt_log = logging.getLogger("civdesk.qt")

_QT_LEVELS = {
    QtMsgType.QtDebugMsg: logging.DEBUG,
    QtMsgType.QtInfoMsg: logging.INFO,
    QtMsgType.QtWarningMsg: logging.WARNING,
    QtMsgType.QtCriticalMsg: logging.ERROR,
    QtMsgType.QtFatalMsg: logging.CRITICAL,
}

ORGANIZATION = "civdesk"
LOG_FILE_NAME = "civdesk-gui.log"
#: Said on Linux with Qt's fatal "no Qt platform plugin could be initialized" (the README
#: lists the libraries).
PLATFORM_HINT = (
    "the window needs a desktop session and the system libraries Qt's xcb plugin loads "
    "(libxcb-cursor0 and the others the README lists); the commands work without them: "
    "civdesk --help"
)


START_FAILURE_TITLE = "civdesk cannot start"


def show_start_failure(message: str) -> None:
    """Why the window cannot open (the library cannot be used: damaged, locked, a full
    disk...), in a dialog: started from a desktop launcher, nobody reads stderr."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    box = QMessageBox(QMessageBox.Icon.Critical, START_FAILURE_TITLE, message)
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)  # copy a path
    box.exec()


def configure_application(app: QCoreApplication, core: Core) -> None:
    """Names for QSettings and the desktop, and QSettings kept under the data dir's config."""
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationVersion(__version__)
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(
        QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(core.paths.config / "qt")
    )
    if isinstance(app, QGuiApplication):  # a QCoreApplication has no display name
        app.setApplicationDisplayName("civdesk")
        app.setDesktopFileName(APP_NAME)


def _qt_message(kind: QtMsgType, context: QMessageLogContext, message: str) -> None:
    where = f" ({context.category})" if context.category and context.category != "default" else ""
    qt_log.log(_QT_LEVELS.get(kind, logging.WARNING), "%s%s", message, where)
    if kind == QtMsgType.QtFatalMsg:
        _tell_terminal_before_abort(message)


def _tell_terminal_before_abort(message: str) -> None:
    """Qt aborts right after a fatal message: one line on stderr, or the terminal shows only
    "Aborted" and the reason stays in the log."""
    # The first sentence: Qt goes on with "Reinstalling the application may fix this problem."
    lines = message.strip().splitlines()
    reason = (lines[0].split(". ")[0].rstrip(".") if lines else "") or "Qt failed"
    on_linux = sys.platform.startswith("linux")
    hint = f"; {PLATFORM_HINT}" if on_linux and "platform plugin" in message else ""
    try:
        sys.stderr.write(f"civdesk: error: {reason}{hint}\n")
        sys.stderr.flush()
    except (AttributeError, OSError, ValueError):
        pass  # a windowed build has no stderr (None) to write to


def route_qt_messages() -> None:
    """Send Qt's own messages to civdesk's log (the qutebrowser habit) instead of stderr.

    A bug report then carries them next to civdesk's lines, and platform chatter (e.g. the
    headless plugin's "does not support propagateSizeHints()") stays off the terminal. A
    fatal message, which Qt aborts after, reaches stderr too.
    """
    qInstallMessageHandler(_qt_message)


def setup_logging(core: Core) -> logging.Handler | None:
    """civdesk's log (and Qt's messages) to ``<logs>/civdesk-gui.log``, rotated; the handler.

    A windowed app has no terminal to show a traceback on: the file is where a bug report
    finds it. An unwritable log folder costs the log, never the window.
    """
    root = logging.getLogger("civdesk")
    try:
        logs = core.paths.logs
        logs.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.handlers.RotatingFileHandler(
            logs / LOG_FILE_NAME, maxBytes=1_000_000, backupCount=2, encoding="utf-8",
            delay=True,
        )  # fmt: skip
    except OSError:
        return None
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
    )
    handler.addFilter(RedactingFilter())  # no key in a log line, whoever wrote it
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    root.propagate = False
    return handler


#: How long a Python thread may hold the GIL before it must offer it (CPython: 5 ms).
GUI_SWITCH_INTERVAL = 0.001


def tune_runtime_for_gui() -> None:
    """Keep the GUI thread responsive while workers run Python (scan, downloads, lookups).

    The GUI thread gives up the GIL around each Qt call and must win it back from busy
    workers every time: with CPython's 5 ms switch interval a slot making a few Qt calls
    waited tens of milliseconds during a scan. A 1 ms interval bounds each wait at ~1 ms
    for a little switching overhead in the workers. Then :func:`settle_garbage_collector`.
    """
    sys.setswitchinterval(GUI_SWITCH_INTERVAL)
    settle_garbage_collector()


def collect_garbage_on_gui_thread(app: QObject) -> GuiGarbageCollector:
    """From now until the process ends, cycles are collected by a timer in ``app``'s event
    loop, never automatically (:mod:`civdesk.ui.collector` says why). Call it as soon as
    the application object exists: a window being built or torn down deletes QObjects too.
    """
    collector = GuiGarbageCollector(app)
    collector.start()
    return collector


def settle_garbage_collector() -> None:
    """Collect once, then exempt everything alive from later full collections.

    A full (generation 2) collection walks every tracked object while holding the GIL, so
    it stalls the GUI thread whichever thread triggers it: with the app's modules, Qt
    wrappers and a 10,000-model library that is 70–90 ms, several times during a scan.
    What exists once the window is up (modules, widgets, the database layer) lives as long
    as the app; frozen, it is no longer walked, and a full collection costs a fraction.
    Call it once, when the window is built and before the event loop runs.
    """
    gc.collect()
    gc.freeze()


def run_gui(core: Core, argv: list[str] | None = None) -> int:
    """Show the window and run until it quits; returns the exit code."""
    from civdesk.ui.icons import app_icon, tray_icon
    from civdesk.ui.main_window import MainWindow
    from civdesk.ui.theme import apply_theme

    log_handler = setup_logging(core)
    route_qt_messages()
    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv)
    assert isinstance(app, QApplication)
    # Never stopped: the objects that die as the app quits must not meet a collection either.
    collect_garbage_on_gui_thread(app)
    configure_application(app, core)
    icon = app_icon()
    app.setWindowIcon(icon)
    # The user's theme choice lives beside the window's state; the system's is followed live.
    apply_theme(app, settings=QSettings(str(core.paths.config / "appearance.ini"),
                                        QSettings.Format.IniFormat))
    # With the tray, closing the window may only hide it; the app quits on the tray's Quit.
    app.setQuitOnLastWindowClosed(False)

    window = MainWindow(core, icon=icon, tray_icon=tray_icon())
    window.quit_requested.connect(app.quit)
    app.aboutToQuit.connect(window.shutdown)
    stop_signals = StopSignals(app)
    stop_signals.received.connect(window.quit)  # Ctrl+C, kill: the same path as File → Quit
    stop_signals.install()
    window.show()
    tune_runtime_for_gui()
    log.info("Window open")
    try:
        code = app.exec()
        if stop_signals.first is not None:
            log.info("Quit on signal %d", stop_signals.first)
            code = 128 + stop_signals.first  # what a shell expects of a process it stopped
        return code
    finally:
        stop_signals.uninstall()
        window.shutdown()
        if not tasks.shutdown(timeout_ms=10_000):
            log.warning("Some background work did not stop within 10 s")
        core.close()
        qInstallMessageHandler(None)
        if log_handler is not None:
            logging.getLogger("civdesk").removeHandler(log_handler)
            log_handler.close()
