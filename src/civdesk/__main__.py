"""``civdesk`` and ``python -m civdesk``: the command line, or the window without a command.

Qt is imported only on the way to the window, so every command starts fast and works on a
machine without a display.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from civdesk.cli.app import Session
from civdesk.cli.app import main as cli_main


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``civdesk`` with ``argv`` (default: the process arguments); the exit code."""
    return cli_main(argv, open_window=_open_window)


def _open_window(session: Session) -> int:
    core = session.core()  # opened first: a broken library is one clear line, not a dialog
    from civdesk.ui.app import run_gui  # the one place the command line reaches Qt

    # Qt sees only the program name; civdesk's own options are not Qt's to parse.
    return run_gui(core, sys.argv[:1])


if __name__ == "__main__":
    sys.exit(main())
