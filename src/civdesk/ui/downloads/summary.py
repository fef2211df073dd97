"""The queue in one line for the status area: how many, which one, how far, how fast.

Pure functions of task snapshots (no Qt), so the wording is tested without widgets.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from civdesk.core.downloads.queue import TaskSnapshot
from civdesk.core.downloads.store import DOWNLOADING, QUEUED
from civdesk.ui.downloads.messages import size_text, task_title


@dataclass(frozen=True)
class QueueCounts:
    """What the queue is doing now; ``finished``: tasks ended since it was last empty."""

    queued: int = 0
    downloading: int = 0
    finished: int = 0
    paused: bool = False
    #: The running download's name (the first, when several run).
    name: str = ""
    #: Of the running downloads' bytes together; None while a size is unknown.
    percent: int | None = None
    speed: float = 0.0  # bytes per second, all running downloads together

    @property
    def active(self) -> int:
        """Queued or downloading: the badge's number."""
        return self.queued + self.downloading

    @property
    def batch(self) -> int:
        """The downloads of this run of work: ended ones and those still to come."""
        return self.finished + self.active


def queue_counts(tasks: Iterable[TaskSnapshot], *, finished: int = 0,
                 paused: bool = False) -> QueueCounts:
    """The counts of these tasks (every task the queue holds, history included)."""
    queued = 0
    running: list[TaskSnapshot] = []
    for task in tasks:
        if task.state == QUEUED:
            queued += 1
        elif task.state == DOWNLOADING:
            running.append(task)
    totals = [t.bytes_total for t in running]
    percent = None
    if running and all(totals):
        whole = sum(t or 0 for t in totals)
        percent = min(100, int(100 * sum(t.bytes_done for t in running) / whole))
    return QueueCounts(
        queued=queued, downloading=len(running), finished=finished if queued or running else 0,
        paused=paused, name=task_title(running[0]) if running else "", percent=percent,
        speed=sum(t.speed for t in running),
    )  # fmt: skip


def counts_text(counts: QueueCounts) -> str:
    """``No downloads``; ``model.safetensors · 45% · 12 MB/s``; ``2 of 5 · 45% · 12 MB/s``."""
    if not counts.active:
        return "No downloads"
    if counts.paused:
        return f"Downloads paused · {counts.active} waiting"
    if not counts.downloading:
        return f"{counts.active} download{'s' if counts.active != 1 else ''} waiting"
    parts = [counts.name if counts.batch == 1 else
             f"{min(counts.finished + 1, counts.batch)} of {counts.batch}"]
    if counts.percent is not None:
        parts.append(f"{counts.percent}%")
    if counts.speed:
        parts.append(f"{size_text(counts.speed)}/s")
    return " · ".join(parts)
