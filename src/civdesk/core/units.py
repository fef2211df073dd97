"""Sizes and durations for people: the one place they are worded, for the window and the
command line alike.

Sizes are decimal (1 GB = 10^9 bytes), as the file managers of Linux and macOS show them
and as Civitai lists a file: a 6,000,000,000-byte file reads "6.0 GB" on a card, in the
detail pane, in the download list and in the terminal (Windows Explorer would say 5.58 GB,
but labels it GB too; matching Civitai's page matters more to a user comparing the two).
"""

from __future__ import annotations

import math

_UNITS = ("KB", "MB", "GB", "TB", "PB")


def human_size(size: float | None) -> str:
    """``1536`` → ``1.5 KB``, ``6_000_000_000`` → ``6.0 GB``, ``250e6`` → ``250 MB``;
    ``999`` → ``999 B``; unknown → ``?``. One decimal below 100 of a unit."""
    if size is None or (isinstance(size, float) and math.isnan(size)):
        return "?"
    value = float(size)
    if abs(value) < 1000:
        return f"{value:.0f} B"
    for unit in _UNITS:
        value /= 1000
        if abs(round(value, 1)) < 1000 or unit == _UNITS[-1]:
            return f"{value:.1f} {unit}" if abs(value) < 99.95 else f"{value:.0f} {unit}"
    raise AssertionError("unreachable")


def human_duration(seconds: float | None) -> str:
    """In words, for the window: ``75`` → ``1 min 15 s``; unknown → ``—``."""
    if seconds is None or seconds < 0 or math.isnan(seconds):
        return "—"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def clock_duration(seconds: float | None) -> str:
    """As a clock, for a terminal progress line of fixed width: ``75`` → ``1:15``,
    ``3725`` → ``1:02:05``; unknown (or beyond 99 h) → ``--:--``."""
    if seconds is None or seconds < 0 or math.isnan(seconds) or seconds > 99 * 3600:
        return "--:--"
    hours, rest = divmod(round(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def plural(count: int, noun: str, plural_form: str | None = None) -> str:
    """``1 file``, ``1,200 files``, ``2 extra copies``: a count that says what it counts."""
    return f"{count:,} {noun if count == 1 else (plural_form or noun + 's')}"
