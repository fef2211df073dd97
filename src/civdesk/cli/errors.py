"""How a failure reaches a person at a terminal: one line on stderr and an exit code.

Expected failures (:class:`CivdeskError`) print their own message, which is written for
people, plus a command-line hint where the core's wording points at the window (the API key
lives in Settings there; here it is ``--api-key`` or ``civdesk config set-key``). Anything
else is a bug: one short line, and the traceback goes to the log file instead of the screen.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TextIO

from civdesk.core.civitai.errors import AuthRequired, KeyNeeded, RateLimited
from civdesk.core.errors import CivdeskError
from civdesk.core.secret_text import redact

log = logging.getLogger("civdesk.cli")

PROG = "civdesk"

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
#: 128 + SIGINT, what shells report for a Ctrl+C.
EXIT_INTERRUPTED = 130

KEY_HINT = "on the command line: --api-key KEY, CIVITAI_API_KEY or `civdesk config set-key`"


class UsageError(CivdeskError):
    """The command line asks for something that cannot be done as written (exit code 2)."""


class Interrupted(KeyboardInterrupt):
    """Ctrl+C, with a word on what was kept (``str()`` is the line to show)."""


def describe(error: CivdeskError) -> str:
    """The one line to show for an expected failure, without the ``civdesk: error:`` prefix."""
    message = " ".join(redact(str(error)).split()) or type(error).__name__
    if isinstance(error, KeyNeeded):
        message = (f"{message}, then pass it with --api-key KEY, set CIVITAI_API_KEY or store "
                   "it with `civdesk config set-key` (--without-key tries without one)")
    elif isinstance(error, AuthRequired) and "disabled downloads" not in message.lower():
        message = f"{message} ({KEY_HINT})"
    elif isinstance(error, RateLimited) and (error.retry_after or 0) >= 1:
        message = f"{message} (Civitai asked to wait {error.retry_after:.0f} s)"
    return message


def report_expected(error: CivdeskError, stream: TextIO | None = None) -> int:
    """Print ``error`` as one line and return the exit code for it."""
    _print_line(f"{PROG}: error: {describe(error)}", stream)
    log.info("Failed: %s", error)
    return EXIT_USAGE if isinstance(error, UsageError) else EXIT_FAILURE


def report_unexpected(error: BaseException, log_file: Path | None,
                      stream: TextIO | None = None) -> int:
    """Log the traceback to ``log_file`` and print one line that says where it went."""
    log.error("Unexpected error", exc_info=(type(error), error, error.__traceback__))
    what = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    what = " ".join(redact(what).split())
    if len(what) > 200:
        what = what[:199] + "…"
    where = f"; the details are in {log_file}" if log_file else ""
    _print_line(f"{PROG}: error: unexpected failure ({what}){where}", stream)
    return EXIT_FAILURE


def report_interrupted(what: str = "", stream: TextIO | None = None) -> int:
    _print_line(f"{PROG}: {what or 'interrupted'}", stream)
    log.info("Interrupted")
    return EXIT_INTERRUPTED


def _print_line(line: str, stream: TextIO | None) -> None:
    out = stream or sys.stderr
    if out.isatty():
        # A progress bar may own the current line; clear it before the message.
        from civdesk.cli.progress import clear_line

        out.write(clear_line(out))
    out.write(line + "\n")
    out.flush()
