"""Ctrl+C in the terminal, SIGINT or SIGTERM from outside: quit the window as File → Quit does.

Python runs a signal handler only between bytecodes of the main thread, and the main thread
sits in Qt's event loop (C++) until something happens: a Ctrl+C did nothing until the next
event, then raised KeyboardInterrupt inside whatever slot ran, which printed a traceback and
left the window running. Here the C-level handler writes the signal's number to a socket
(:func:`signal.set_wakeup_fd`); a :class:`QSocketNotifier` wakes the event loop on it and
:attr:`StopSignals.received` is emitted on the GUI thread, where the window quits cleanly.

A signal the parent process ignores (a background job, ``nohup``) stays ignored. Once one
arrived the default action comes back, so a second Ctrl+C ends a quit that hangs.
"""

from __future__ import annotations

import contextlib
import signal
import socket
from types import FrameType

from PySide6.QtCore import QObject, QSocketNotifier, Signal, Slot

#: The signals that mean "quit"; SIGTERM is what a session manager or ``kill`` sends.
STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)


class StopSignals(QObject):
    """Relays SIGINT/SIGTERM to the GUI thread as :attr:`received` (the signal's number)."""

    received = Signal(int)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._reader, self._writer = socket.socketpair()
        for end in (self._reader, self._writer):
            end.setblocking(False)
        self._notifier = QSocketNotifier(self._reader.fileno(), QSocketNotifier.Type.Read, self)
        self._notifier.activated.connect(self._drain)
        self._previous: dict[signal.Signals, object] = {}
        self._previous_wakeup_fd: int | None = None
        #: The first stop signal that arrived, or None.
        self.first: int | None = None

    def install(self) -> None:
        """Catch the stop signals from now on (call on the main thread)."""
        self._previous_wakeup_fd = signal.set_wakeup_fd(
            self._writer.fileno(), warn_on_full_buffer=False)
        for sig in STOP_SIGNALS:
            if signal.getsignal(sig) is signal.SIG_IGN:
                continue  # the parent asked for it to be ignored
            self._previous[sig] = signal.signal(sig, self._note)

    def uninstall(self) -> None:
        """Give the signals back to what handled them before; close the sockets."""
        for sig, handler in self._previous.items():
            with contextlib.suppress(TypeError, ValueError):
                signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous.clear()
        if self._previous_wakeup_fd is not None:
            signal.set_wakeup_fd(self._previous_wakeup_fd)
            self._previous_wakeup_fd = None
        self._notifier.setEnabled(False)
        self._reader.close()
        self._writer.close()

    @staticmethod
    def _note(_signum: int, _frame: FrameType | None) -> None:
        """The Python-level handler: nothing to do, the wake-up byte carries the news."""

    @Slot()
    def _drain(self) -> None:
        try:
            data = self._reader.recv(64)
        except (BlockingIOError, InterruptedError):
            return
        for signum in data:
            if signum not in {int(s) for s in self._previous}:
                continue  # a signal another handler owns (SIGCHLD…) woke us too
            if self.first is None:
                self.first = signum
                for sig in list(self._previous):
                    signal.signal(sig, signal.SIG_DFL)  # a second one is not caught again
                self.received.emit(signum)
