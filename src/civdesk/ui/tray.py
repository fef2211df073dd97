"""The system tray icon and its menu.

Notifications are :mod:`civdesk.ui.notifications` (the tray's message is one of the ways
they are shown); :class:`Notifier` is re-exported here for the window.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtGui import QAction, QIcon
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from civdesk.ui.notifications import Notifier

__all__ = ["Notifier", "Tray", "tray_available"]


class Tray(QObject):
    """The tray icon with its menu: show the window, pause/resume the queue, quit.

    Build it only when :func:`tray_available`; ``show_requested`` and ``quit_requested``
    are for the window, ``pause_toggled(paused)`` for the download worker.
    """

    show_requested = Signal()
    quit_requested = Signal()
    pause_toggled = Signal(bool)

    def __init__(self, icon: QIcon, notifier: Notifier, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.icon = QSystemTrayIcon(icon, self)
        self.icon.setToolTip("civdesk")
        self.menu = QMenu()
        self.show_action = self.menu.addAction("Show civdesk")
        self.show_action.triggered.connect(self.show_requested)
        self.pause_action: QAction = self.menu.addAction("Pause downloads")
        self.pause_action.setCheckable(True)
        self.pause_action.toggled.connect(self._pause_toggled)
        self.menu.addSeparator()
        self.quit_action = self.menu.addAction("Quit")
        self.quit_action.triggered.connect(self.quit_requested)
        self.icon.setContextMenu(self.menu)
        self.icon.activated.connect(self._activated)
        notifier.tray = self.icon
        self.icon.show()

    def set_paused(self, paused: bool) -> None:
        """Reflect the queue's state without emitting ``pause_toggled`` back."""
        self.pause_action.blockSignals(True)
        self.pause_action.setChecked(paused)
        self.pause_action.setText("Resume downloads" if paused else "Pause downloads")
        self.pause_action.blockSignals(False)

    @Slot(bool)
    def _pause_toggled(self, paused: bool) -> None:
        self.pause_action.setText("Resume downloads" if paused else "Pause downloads")
        self.pause_toggled.emit(paused)

    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason in (
            QSystemTrayIcon.ActivationReason.Trigger,
            QSystemTrayIcon.ActivationReason.DoubleClick,
        ):
            self.show_requested.emit()

    def hide(self) -> None:
        self.icon.hide()


def tray_available() -> bool:
    return QSystemTrayIcon.isSystemTrayAvailable()
