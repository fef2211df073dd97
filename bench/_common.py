"""Helpers shared by the bench scripts: big files fast, reference commands, RSS, tables."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # for `from tests.double import ...` and an uninstalled src
    sys.path.insert(0, str(REPO))
if str(REPO / "src") not in sys.path:
    sys.path.insert(1, str(REPO / "src"))

MiB = 1 << 20
MB = 1_000_000
_BLOCK = 16 * MiB


def peak_rss_mib(children: bool = False) -> float:
    """Peak resident memory of this process (or of its waited-for children), in MiB."""
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    peak = resource.getrusage(who).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / MiB if sys.platform == "darwin" else peak / 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def make_file(path: Path, size: int) -> Path:
    """A file of ``size`` random-looking bytes, written fast.

    One random block is reused with a per-block counter stamped in, so every block differs
    (hashing cannot shortcut anything) without paying os.urandom for gigabytes.
    """
    block = bytearray(os.urandom(min(_BLOCK, max(size, 1))))
    with open(path, "wb") as fh:
        written, n = 0, 0
        while written < size:
            block[:8] = n.to_bytes(8, "little")
            chunk = memoryview(block)[: min(len(block), size - written)]
            fh.write(chunk)
            written += len(chunk)
            n += 1
    return path


def warm(paths: Sequence[Path]) -> None:
    """Read files once so the page cache holds them for every contender alike."""
    buf = bytearray(MiB)
    for p in paths:
        with open(p, "rb", buffering=0) as fh:
            while fh.readinto(buf):
                pass


def best_of(runs: int, fn: Callable[[], T]) -> tuple[float, T]:
    """The fastest wall time of ``runs`` calls, and the last result."""
    best, result = float("inf"), None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result  # type: ignore[return-value]


def run_reference(cmd: Sequence[str] | str, *, shell: bool = False, stdin: bytes | None = None
                  ) -> float:
    """Run a reference command (output discarded) and return its wall time in seconds."""
    start = time.perf_counter()
    subprocess.run(cmd, shell=shell, input=stdin, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def have(program: str) -> bool:
    from shutil import which

    return which(program) is not None


def print_table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> None:
    cells = [[str(c) for c in header]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for i, row in enumerate(cells):
        print("  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in
                        enumerate(zip(row, widths, strict=True))))
        if i == 0:
            print("  ".join("-" * w for w in widths))


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)
