"""A one-line progress bar for terminals: percent, bytes, speed and time left, on stderr.

It draws only when stderr is a terminal and JSON output was not asked for, so pipes, logs
and scripts see nothing but the result. Redraws are throttled: a fast download calls
:meth:`ProgressBar.update` thousands of times a second.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import TextIO

from civdesk.core.units import clock_duration, human_size

Clock = Callable[[], float]

def clear_line(stream: TextIO) -> str:
    """What returns to the start of the line and erases it on ``stream``'s terminal.

    ANSI "erase line", except on Windows, whose console prints escape codes literally
    unless a program switches it to VT mode: there, spaces over the whole width do the same.
    """
    if sys.platform == "win32":
        return "\r" + " " * (_columns(stream) - 1) + "\r"
    return "\r\033[K"


def _columns(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns or 80
    except (AttributeError, ValueError, OSError):
        return shutil.get_terminal_size((80, 24)).columns


#: Seconds of history the speed is averaged over: smooth, but still follows a real change.
SPEED_WINDOW = 5.0
REDRAW_INTERVAL = 0.1
BAR_WIDTH = 24


class SpeedMeter:
    """Bytes per second over the last few seconds of ``(time, bytes done)`` samples."""

    def __init__(self, window: float = SPEED_WINDOW, clock: Clock = time.monotonic) -> None:
        self.window = window
        self.clock = clock
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, done: int) -> None:
        now = self.clock()
        if self._samples and done < self._samples[-1][1]:
            self._samples.clear()  # the count went back (a restart): old samples lie
        self._samples.append((now, done))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.window:
            self._samples.popleft()

    @property
    def bytes_per_second(self) -> float | None:
        if len(self._samples) < 2:
            return None
        (t0, d0), (t1, d1) = self._samples[0], self._samples[-1]
        if t1 - t0 < 0.2:
            return None
        return (d1 - d0) / (t1 - t0)


def format_progress(done: int, total: int | None, speed: float | None, label: str,
                    width: int) -> str:
    """The text of one bar, fitted to ``width`` columns (the label is cut first)."""
    if total and total > 0:
        fraction = min(1.0, max(0.0, done / total))
        filled = int(fraction * BAR_WIDTH)
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        amount = f"{human_size(done)} / {human_size(total)}"
        left = (total - done) / speed if speed and speed > 0 else None
        head = f"{fraction * 100:3.0f}% [{bar}] {amount}"
    else:
        left = None
        head = human_size(done)
    rate = f"{human_size(speed)}/s" if speed is not None else "--/s"
    text = f"{head}  {rate}  ETA {clock_duration(left)}"
    room = width - len(text) - 2
    if label and room > 3:
        text = f"{text}  {label if len(label) <= room else label[:room - 1] + '…'}"
    return text[:width]


def format_count(done: int, total: int | None, noun: str, width: int) -> str:
    """The text of a bar counting items, fitted to ``width`` columns."""
    if total:
        fraction = min(1.0, max(0.0, done / total))
        filled = int(fraction * BAR_WIDTH)
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        text = f"{fraction * 100:3.0f}% [{bar}] {done}/{total} {noun}"
    else:
        text = f"{done} {noun}"
    return text[:width]


class ProgressBar:
    """Redraws one stderr line with the progress of a byte count."""

    def __init__(self, *, enabled: bool, stream: TextIO | None = None,
                 clock: Clock = time.monotonic) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.clock = clock
        self.speed = SpeedMeter(clock=clock)
        self._last_draw = float("-inf")
        self._drawn = False

    @classmethod
    def for_terminal(cls, *, json_output: bool) -> ProgressBar:
        """A bar that draws only on an interactive stderr and never alongside JSON output."""
        return cls(enabled=not json_output and _isatty(sys.stderr))

    def update(self, done: int, total: int | None, label: str = "", *,
               force: bool = False) -> None:
        if not self.enabled:
            return
        self.speed.add(done)
        now = self.clock()
        if not force and now - self._last_draw < REDRAW_INTERVAL:
            return
        self._last_draw = now
        self._draw(format_progress(done, total, self.speed.bytes_per_second, label,
                                   self._width()))

    def _width(self) -> int:
        """Columns of the terminal the bar is drawn on (stderr's, not stdout's: that may be
        a pipe), less one so the cursor never wraps."""
        return max(20, _columns(self.stream) - 1)

    def _draw(self, line: str) -> None:
        self.stream.write(clear_line(self.stream) + line)
        self.stream.flush()
        self._drawn = True

    def count(self, done: int, total: int | None, noun: str) -> None:
        """Progress in items rather than bytes: ``40% [#####---] 400/1000 models checked``."""
        if not self.enabled:
            return
        now = self.clock()
        if now - self._last_draw < REDRAW_INTERVAL and done != total:
            return
        self._last_draw = now
        self._draw(format_count(done, total, noun, self._width()))

    def note(self, message: str) -> None:
        """A line above the bar (a retry, a skipped file); the bar redraws on the next update."""
        if not self.enabled:
            return
        self.stream.write(clear_line(self.stream) + message + "\n")
        self.stream.flush()
        self._last_draw = float("-inf")

    def finish(self) -> None:
        """Erase the bar so the summary that follows starts on a clean line."""
        if self.enabled and self._drawn:
            self.stream.write(clear_line(self.stream))
            self.stream.flush()
        self._drawn = False


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
