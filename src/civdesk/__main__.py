"""``civdesk`` and ``python -m civdesk``: the command line, or the window without a command.

Qt is imported only on the way to the window, so every command starts fast and works on a
machine without a display.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from civdesk.cli.app import main as cli_main


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``civdesk`` with ``argv`` (default: the process arguments); the exit code."""
    return cli_main(argv, open_window=_open_window)


def _open_window(options: argparse.Namespace) -> int:
    from civdesk.ui.app import run_gui  # the one place the command line reaches Qt

    return int(run_gui(data_dir=options.data_dir, api_base=options.api_base,
                       api_key=options.api_key) or 0)


if __name__ == "__main__":
    sys.exit(main())
