"""What commands print on stdout: JSON for scripts, aligned tables and sizes for people."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from civdesk.core.units import plural as plural  # the commands' wording, one place


def print_json(data: Any, stream: TextIO | None = None) -> None:
    """``data`` as indented JSON, one document per command (paths become strings)."""
    out = stream or sys.stdout
    json.dump(data, out, indent=2, ensure_ascii=False, default=_json_default)
    out.write("\n")
    out.flush()


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def print_lines(lines: Sequence[str], stream: TextIO | None = None) -> None:
    out = stream or sys.stdout
    for line in lines:
        out.write(line + "\n")
    out.flush()


def print_warning(message: str, stream: TextIO | None = None) -> None:
    """A problem that did not stop the command: ``civdesk: warning: …`` on stderr."""
    out = stream or sys.stderr
    out.write(f"civdesk: warning: {' '.join(message.split())}\n")
    out.flush()


def table(rows: Sequence[Sequence[object]], headers: Sequence[str]) -> list[str]:
    """Left-aligned columns separated by two spaces; the last column is never padded.

    ``None`` shows as ``-`` so an empty cell still reads as a cell.
    """
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    def line(values: Sequence[str]) -> str:
        padded = [v.ljust(widths[i]) for i, v in enumerate(values[:-1])]
        return "  ".join([*padded, values[-1]]).rstrip()
    return [line(list(headers)), *(line(row) for row in cells)]


def _cell(value: object) -> str:
    if value is None:
        return "-"
    return " ".join(str(value).split())


def shell_quote(text: str) -> str:
    """``text`` as one argument of a command the user can paste into their shell: POSIX
    quoting, or cmd.exe's double quotes on Windows."""
    if os.name == "nt":
        return subprocess.list2cmdline([text])
    return shlex.quote(text)
