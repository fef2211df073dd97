"""Start the window: the QApplication, its look, the main window, a clean quit.

``python -m civdesk`` without a command ends up in :func:`run_gui`.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from PySide6.QtCore import QCoreApplication, QSettings
from PySide6.QtWidgets import QApplication

from civdesk import APP_NAME, __version__
from civdesk.ui import tasks

log = logging.getLogger(__name__)

ORGANIZATION = "civdesk"


def configure_application(app: QCoreApplication, core: Any) -> None:
    """Names for QSettings and the desktop, and QSettings kept under the data dir's config."""
    app.setApplicationName(APP_NAME)
    app.setApplicationDisplayName("civdesk")
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationVersion(__version__)
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(
        QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(core.paths.config / "qt")
    )
    if isinstance(app, QApplication):
        app.setDesktopFileName(APP_NAME)


def run_gui(core: Any, argv: list[str] | None = None) -> int:
    """Show the window and run until it quits; returns the exit code."""
    from civdesk.ui.icons import app_icon, stylesheet
    from civdesk.ui.main_window import MainWindow
    from civdesk.ui.theme import apply_theme

    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv)
    assert isinstance(app, QApplication)
    configure_application(app, core)
    tasks.install_gui_invoker()
    icon = app_icon()
    app.setWindowIcon(icon)
    apply_theme(app, extra_stylesheet=stylesheet())
    # With the tray, closing the window may only hide it; the app quits on the tray's Quit.
    app.setQuitOnLastWindowClosed(False)

    window = MainWindow(core, icon=icon)
    window.quit_requested.connect(app.quit)
    app.aboutToQuit.connect(window.shutdown)
    window.show()
    try:
        return app.exec()
    finally:
        window.shutdown()
        if not tasks.shutdown(timeout_ms=10_000):
            log.warning("Some background work did not stop within 10 s")
        core.close()
