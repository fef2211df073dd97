"""Tells the window when Civitai is slowing civdesk down.

The governors live in the core (:attr:`Core.connections`) and are driven by worker threads.
This service looks at them on a timer on the GUI thread: reading their state takes a lock
held for microseconds, never the network, so the GUI thread never waits on Civitai.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal, Slot

POLL_MS = 500


class RateLimitStatus(QObject):
    """Emits ``changed`` with the governors' sentence ("Civitai is rate limiting: slowed
    down, resuming in 12 s"), or '' once requests are back to full speed."""

    changed = Signal(str)

    def __init__(self, core: Any, parent: QObject | None = None, *,
                 interval_ms: int = POLL_MS) -> None:
        super().__init__(parent)
        self._connections = core.connections
        self.text = ""
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.poll)
        self._timer.start()

    @Slot()
    def poll(self) -> None:
        text = self._connections.status()
        if text != self.text:
            self.text = text
            self.changed.emit(text)

    def stop(self) -> None:
        self._timer.stop()
