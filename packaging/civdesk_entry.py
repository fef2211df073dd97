"""The script PyInstaller freezes: ``civdesk.__main__.main()`` plus two diagnostics.

Run it unfrozen (``python packaging/civdesk_entry.py``) and it behaves exactly like
``python -m civdesk``, which is how the packaging test compares start-up times.

Diagnostics, both off unless their variable is set, both for CI and bug reports:

``CIVDESK_STARTUP_PROBE=1``
    When the first top-level window paints, print one line to stdout:
    ``civdesk-startup-probe: first-window-shown <unix time> <title>``.
``CIVDESK_QUIT_AFTER_MS=<ms>``
    That many milliseconds after the first window paints, close every window (so their
    close handlers run, as when a person closes them) and quit the event loop: the app
    exits through its normal path with its normal exit code.

They hook ``QApplication.exec``, so they need nothing from the window code and cost
nothing when unset (Qt is not even imported then).
"""

from __future__ import annotations

import os
import sys
import time

ENV_STARTUP_PROBE = "CIVDESK_STARTUP_PROBE"
ENV_QUIT_AFTER_MS = "CIVDESK_QUIT_AFTER_MS"
PROBE_PREFIX = "civdesk-startup-probe:"


def _give_windowed_app_streams() -> None:
    """A windowed Windows executable starts with ``sys.stdout``/``stderr`` set to None;
    any print or logging.StreamHandler would then raise. Point them at the null device."""
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115


def _install_window_diagnostics(probe: bool, quit_after_ms: int | None) -> None:
    from PySide6.QtCore import QEvent, QObject, QTimer
    from PySide6.QtWidgets import QApplication, QWidget

    original_exec = QApplication.exec

    class FirstPaintWatcher(QObject):
        """Notices the first paint of a top-level widget, then reports and/or quits."""

        def __init__(self, app: QApplication) -> None:
            super().__init__(app)
            self._app = app
            self._seen = False

        def eventFilter(self, watched: QObject, event: QEvent) -> bool:
            if (
                not self._seen
                and event.type() == QEvent.Type.Paint
                and isinstance(watched, QWidget)
                and watched.isWindow()
            ):
                self._seen = True
                self._first_window_shown(watched)
            return False

        def _first_window_shown(self, window: QWidget) -> None:
            if probe:
                print(f"{PROBE_PREFIX} first-window-shown {time.time():.6f} "
                      f"{window.windowTitle()!r}", flush=True)
            if quit_after_ms is not None:
                QTimer.singleShot(quit_after_ms, self._quit)
            # Uninstalled later, not inside the filter Qt is iterating over.
            QTimer.singleShot(0, lambda: self._app.removeEventFilter(self))

        def _quit(self) -> None:
            self._app.closeAllWindows()
            self._app.quit()

    def exec_with_diagnostics(*_args: object) -> int:
        # Called as app.exec() or QApplication.exec(); the original takes no arguments.
        app = QApplication.instance()
        if isinstance(app, QApplication):
            app.installEventFilter(FirstPaintWatcher(app))
        return original_exec()

    QApplication.exec = exec_with_diagnostics  # type: ignore[method-assign]


def _diagnostics_from_environment() -> tuple[bool, int | None]:
    probe = os.environ.get(ENV_STARTUP_PROBE, "") not in ("", "0")
    raw = os.environ.get(ENV_QUIT_AFTER_MS, "").strip()
    try:
        quit_after_ms = max(0, int(raw)) if raw else None
    except ValueError:
        print(f"civdesk: ignoring {ENV_QUIT_AFTER_MS}={raw!r} (not a number of ms)",
              file=sys.stderr)
        quit_after_ms = None
    return probe, quit_after_ms


def run() -> int:
    _give_windowed_app_streams()
    probe, quit_after_ms = _diagnostics_from_environment()
    if probe or quit_after_ms is not None:
        _install_window_diagnostics(probe, quit_after_ms)
    from civdesk.__main__ import main

    return main()


if __name__ == "__main__":
    sys.exit(run())
