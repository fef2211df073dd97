"""The ``civdesk`` command line: global options, the commands, and how a run ends.

``main`` never lets an exception escape: an expected failure is one ``civdesk: error:``
line and exit code 1, a usage error 2, Ctrl+C 130, and a bug one line that points at the
log file holding the traceback. Nothing here imports Qt; the window is opened through the
``open_window`` callback that ``civdesk.__main__`` passes in.
"""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from civdesk import APP_NAME, __version__
from civdesk.cli import commands
from civdesk.cli.errors import (
    EXIT_FAILURE,
    EXIT_USAGE,
    PROG,
    UsageError,
    report_expected,
    report_interrupted,
    report_unexpected,
)
from civdesk.cli.progress import ProgressBar, clear_line
from civdesk.core.errors import CivdeskError, FileProblem
from civdesk.core.secret_text import RedactingFilter
from civdesk.core.settings import normalised_api_base
from civdesk.paths import ENV_DATA_DIR, app_paths

if TYPE_CHECKING:
    from civdesk.core.civitai.client import CivitaiClient
    from civdesk.core.civitai.sites import SiteLookups
    from civdesk.core.context import Core

ENV_API_BASE = "CIVITAI_API_BASE"
ENV_MATURE_API_BASE = "CIVITAI_MATURE_API_BASE"
ENV_API_KEY = "CIVITAI_API_KEY"
LOG_FILE_NAME = "civdesk-cli.log"

#: Opens the window for a session (the global options are in ``session.options``).
OpenWindow = Callable[["Session"], int]


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line (plus the usage) and exits 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Manage Stable Diffusion model files from Civitai. "
        "Without a command, opens the window.",
    )
    parser.add_argument("--version", action="version", version=f"{APP_NAME} {__version__}")
    _add_global_options(parser, default=None)
    # The same options after the command too (`civdesk download 12 --api-key K`); SUPPRESS
    # keeps a value given before the command when it is not repeated after it.
    shared = _Parser(add_help=False)
    _add_global_options(shared, default=argparse.SUPPRESS)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.register(subparsers, parents=[shared])
    return parser


def _add_global_options(parser: argparse.ArgumentParser, default: object) -> None:
    group = parser.add_argument_group("global options")
    group.add_argument("--data-dir", metavar="DIR", type=_folder_name, default=default,
                       help=f"keep the library, settings and logs in DIR (env {ENV_DATA_DIR})")
    group.add_argument("--api-base", metavar="URL", type=_api_base, default=default,
                       help=f"the safe Civitai site, default https://civitai.com "
                       f"(env {ENV_API_BASE})")
    group.add_argument("--mature-api-base", metavar="URL", type=_api_base, default=default,
                       help="the Civitai site with all content, used when mature content is "
                       f"allowed; default https://civitai.red (env {ENV_MATURE_API_BASE})")
    group.add_argument("--api-key", metavar="KEY", default=default,
                       help=f"a Civitai API key for this run only; other users can see "
                       f"command lines, so prefer env {ENV_API_KEY} or `civdesk config "
                       "set-key`, which stores it")
    group.add_argument("--retries", metavar="N", type=_non_negative_int, default=default,
                       help="retries of a failed request to Civitai (default 4, and a rate "
                       "limit is waited out; with N, at most N retries; 0 fails fast)")


def _folder_name(text: str) -> str:
    # An unset variable ("$DIR") must not quietly mean the default data folder.
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty folder name (an unset variable?)")
    return text


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _api_base(text: str) -> str:
    try:
        return normalised_api_base(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _api_base_from_env(name: str = ENV_API_BASE) -> str | None:
    """CIVITAI_API_BASE (or ``name``) held to the rules of --api-base (Core.open would
    take it as it is)."""
    text = os.environ.get(name)
    if not text:
        return None
    try:
        return normalised_api_base(text)
    except ValueError as exc:
        raise UsageError(f"{name}: {exc}") from None


@dataclass
class Session:
    """One command's view of civdesk: the parsed options and a lazily opened :class:`Core`.

    Opening the core creates the data folder and the database, so commands that never
    need it (``--version``, usage errors) leave the disk untouched.
    """

    options: argparse.Namespace
    _core: Core | None = field(default=None, init=False, repr=False)

    @property
    def json(self) -> bool:
        return bool(getattr(self.options, "json", False))

    def core(self) -> Core:
        if self._core is None:
            from civdesk.core.context import Core

            api_base, mature_api_base = self.site_options()
            try:
                self._core = Core.open(
                    self.options.data_dir,
                    api_base=api_base,
                    mature_api_base=mature_api_base,
                    # CIVITAI_API_KEY is the key store's to read (it reports it as the source).
                    api_key=self.options.api_key or None,
                )
            except OSError as exc:
                # A data folder that is a file, read-only or on a vanished drive.
                where = exc.filename or app_paths(self.options.data_dir).data
                raise FileProblem(f"Cannot use the civdesk data folder {where}: "
                                  f"{exc.strerror or exc}") from exc
        return self._core

    def site_options(self) -> tuple[str | None, str | None]:
        """This run's safe and mature sites (--api-base, --mature-api-base or their
        variables), None where the settings decide."""
        return (self.options.api_base or _api_base_from_env(),
                self.options.mature_api_base or _api_base_from_env(ENV_MATURE_API_BASE))

    def client(self) -> CivitaiClient:
        """A Civitai client with this run's base URL, key and retry budget."""
        return self.tune(self.core().client())

    def lookup_client(self) -> SiteLookups:
        """Identification's client over the allowed sites (:meth:`Core.lookup_client`)."""
        lookups = self.core().lookup_client()
        for client in lookups.clients:
            self.tune(client)
        return lookups

    def tune(self, client: Any) -> Any:
        """Apply ``--retries`` to a client made elsewhere (the download queue's): the count
        given rules rate limits too (no waiting them out beyond it)."""
        from civdesk.core.civitai.client import CivitaiClient

        if self.options.retries is not None and isinstance(client, CivitaiClient):
            client.max_retries = self.options.retries
            client.rate_limit_patience = 0
        return client

    def progress(self) -> ProgressBar:
        return ProgressBar.for_terminal(json_output=self.json)

    def close(self) -> None:
        if self._core is not None:
            self._core.close()
            self._core = None


def main(argv: Sequence[str] | None = None, open_window: OpenWindow | None = None) -> int:
    """Run one command line and return its exit code (a command never raises; the window
    reports its own failures once it runs)."""
    parser = build_parser()
    try:
        options = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exit_:
        # --help / --version exit 0, usage errors 2: argparse has printed what it had to.
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    if options.command is None:
        if open_window is None:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        return _run_window(open_window, Session(options))
    log_file = _setup_logging(options)
    session = Session(options)
    try:
        return int(options.handler(session, options))
    except CivdeskError as error:
        return report_expected(error)
    except KeyboardInterrupt as interrupt:
        # A download leaves its .part file: the next run resumes from it.
        return report_interrupted(str(interrupt))
    except BrokenPipeError:
        # `civdesk list | head`: the reader left; nothing more to say to it.
        _silence_stdout()
        return EXIT_FAILURE
    except Exception as error:
        return report_unexpected(error, log_file)
    finally:
        try:
            session.close()
        except Exception:
            logging.getLogger("civdesk.cli").exception("Closing the library failed")
        logging.getLogger("civdesk.cli").info("Exit")
        _close_logging()


def _run_window(open_window: OpenWindow, session: Session) -> int:
    """The window, with the same one-line report when the library cannot be opened.

    The window owns the core from here on (it closes it when it quits). Failures inside
    the running window are the window's to report.
    """
    try:
        return int(open_window(session) or 0)
    except CivdeskError as error:
        return report_expected(error)
    except KeyboardInterrupt:
        return report_interrupted()


class _TerminalNotices(logging.Handler):
    """Warnings from the core (a retry, a rate limit) as short lines on an interactive stderr.

    Scripts and JSON consumers see none of them: for a failure they get the one error line,
    and the log file has the rest.
    """

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(clear_line(sys.stderr) + f"{PROG}: {record.getMessage()}\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


class _LogFile(logging.handlers.RotatingFileHandler):
    """The log file, which stays silent when it cannot be written (a read-only or full data
    folder): the command's own one-line message says what is wrong, not a logging traceback."""

    def handleError(self, record: logging.LogRecord) -> None:
        pass


_handlers: list[tuple[logging.Logger, logging.Handler]] = []
THIRD_PARTY_LOGGERS = ("sqlalchemy", "urllib3")


def _setup_logging(options: argparse.Namespace) -> Path | None:
    """Log to a rotating file in the data folder's logs; notices to a terminal. The file path."""
    root = logging.getLogger("civdesk")
    root.setLevel(logging.INFO)
    root.propagate = False
    log_file: Path | None = None
    try:
        logs = app_paths(options.data_dir).logs
        logs.mkdir(parents=True, exist_ok=True)
        log_file = logs / LOG_FILE_NAME
        file_handler = _LogFile(
            log_file, maxBytes=1_000_000, backupCount=2, encoding="utf-8", delay=True)
        file_handler.setFormatter(logging.Formatter(
            "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"))
        _add_handler(root, file_handler)
        # The libraries' own errors too: without a handler, Python prints them with their
        # traceback on stderr (SQLAlchemy's "Exception closing connection" after a second
        # Ctrl+C), where the user expects one line.
        for library in THIRD_PARTY_LOGGERS:
            _add_handler(logging.getLogger(library), file_handler)
    except OSError:
        log_file = None  # an unwritable log folder must not stop the command itself
    if not getattr(options, "json", False) and sys.stderr.isatty():
        notices = _TerminalNotices(logging.WARNING)
        _add_handler(root, notices)
    return log_file


def _add_handler(logger: logging.Logger, handler: logging.Handler) -> None:
    if not any(isinstance(f, RedactingFilter) for f in handler.filters):
        handler.addFilter(RedactingFilter())  # no key in a log line, whoever wrote it
    logger.addHandler(handler)
    _handlers.append((logger, handler))


def _close_logging() -> None:
    while _handlers:
        logger, handler = _handlers.pop()
        logger.removeHandler(handler)
        handler.close()


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
