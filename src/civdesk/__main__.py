"""``civdesk`` and ``python -m civdesk``: the command line, or the window without a command.

Qt is imported only on the way to the window, so every command starts fast and works on a
machine without a display.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import re
import sys
from collections.abc import Mapping, Sequence
from typing import NoReturn

from civdesk.cli.app import Session
from civdesk.cli.app import main as cli_main
from civdesk.cli.background import abandoned_work
from civdesk.cli.errors import EXIT_INTERRUPTED, report_expected
from civdesk.core.errors import CivdeskError

#: Qt platforms that draw on a desktop session (others, e.g. offscreen or vnc, need none).
_DESKTOP_PLATFORMS = {"xcb", "wayland", "wayland-egl", "wayland-brcm"}
#: Qt platforms that show nothing to a person: no dialog there.
_HEADLESS_PLATFORMS = {"offscreen", "minimal", "minimalegl", "vnc"}
_X_SOCKETS = "/tmp/.X11-unix"
_COMMANDS_INSTEAD = "start civdesk from a desktop session, or use its commands: civdesk --help"


class NoDisplay(CivdeskError):
    """The window has nowhere to open; the commands still work."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``civdesk`` with ``argv`` (default: the process arguments); the exit code."""
    global _window_asked
    _window_asked = False
    code = cli_main(argv, open_window=_open_window)
    if code == EXIT_INTERRUPTED or abandoned_work():
        # Stopped by Ctrl+C: the work has wound down and saved what it did (SQLite commits
        # are atomic), but a request to a server that does not answer may still hold a
        # thread, and the interpreter would wait for it at exit, minutes, deaf to a
        # second Ctrl+C.
        _exit_now(code)
    if not _window_asked:
        # A command has ended, its work saved and its files closed; the process ends next.
        # Finalisation's collections would walk every object SQLAlchemy, requests and the
        # command made: 0.1-0.4 s of a short command here (a sixth of `download` of a GiB).
        # Frozen, they are freed with the process instead.
        gc.freeze()
    return code


#: Whether this run was for the window (which manages the collector itself).
_window_asked = False


def _exit_now(code: int) -> NoReturn:
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def _open_window(session: Session) -> int:
    global _window_asked
    _window_asked = True
    # Without a display Qt aborts, and says why only in the log file.
    problem = display_problem(os.environ, sys.platform)
    if problem:
        raise NoDisplay(f"the window cannot open: {problem}; {_COMMANDS_INSTEAD}")
    try:
        core = session.core()  # opened before Qt: a broken library is one clear line
    except CivdeskError as error:
        if not _someone_reads_stderr(os.environ):
            # Started from a desktop launcher: the same message, where it can be seen. The
            # line goes first, in case Qt cannot start after all.
            code = report_expected(error)
            from civdesk.ui.app import show_start_failure

            show_start_failure(str(error))
            return code
        raise
    from civdesk.ui.app import run_gui  # the one place the command line reaches Qt

    # Qt sees only the program name; civdesk's own options are not Qt's to parse.
    return run_gui(core, sys.argv[:1])


def _someone_reads_stderr(environ: Mapping[str, str]) -> bool:
    """Whether a start-up failure printed on stderr is seen: a terminal, or a Qt platform
    that shows nothing to a person anyway (offscreen, minimal: tests and CI)."""
    if sys.stderr is not None and sys.stderr.isatty():
        return True
    platform = (environ.get("QT_QPA_PLATFORM") or "").split(":")[0].strip()
    return platform in _HEADLESS_PLATFORMS


def display_problem(environ: Mapping[str, str], platform: str) -> str | None:
    """Why Qt would find no display on this Linux machine, or None when it may find one.

    Only what is certain without starting Qt: no display named at all, or a local X display
    (``:N``) whose server socket is missing. Windows and macOS always have their own.
    """
    if not platform.startswith("linux") or not _needs_desktop(environ.get("QT_QPA_PLATFORM")):
        return None
    x_display, wayland = environ.get("DISPLAY"), environ.get("WAYLAND_DISPLAY")
    if wayland:
        return None
    if not x_display:
        return "there is no display (neither DISPLAY nor WAYLAND_DISPLAY is set)"
    local = re.fullmatch(r":(\d+)(?:\.\d+)?", x_display)
    if local and not _x_server_listens(local.group(1)):
        return f"no X server runs on display {x_display} (no {_X_SOCKETS}/X{local.group(1)})"
    return None


def _needs_desktop(qpa_platform: str | None) -> bool:
    """Whether every platform QT_QPA_PLATFORM lets Qt try needs a desktop session."""
    if not qpa_platform:
        return True
    # "wayland;xcb" are alternatives; "xcb:option=value" carries options.
    names = {entry.split(":")[0].strip() for entry in qpa_platform.split(";")}
    return names <= _DESKTOP_PLATFORMS


def _x_server_listens(number: str) -> bool:
    socket = f"{_X_SOCKETS}/X{number}"
    if os.path.exists(socket):
        return True
    # A container may see the server only by its abstract socket (no file in /tmp).
    try:
        with open("/proc/net/unix", encoding="utf-8", errors="replace") as sockets:
            return any(line.rstrip().endswith(f" @{socket}") for line in sockets)
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(main())
