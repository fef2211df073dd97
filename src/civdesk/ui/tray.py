"""The system tray icon and the notifications that go through it.

Where there is no tray (offscreen tests, some Linux desktops) :class:`Notifier` still emits
``notified`` — the window's status bar shows it, and tests watch it.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtGui import QAction, QIcon
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

NOTIFY_MS = 6000


class Notifier(QObject):
    """Tells the user something happened: a download finished or failed, a scan ended."""

    #: (title, message), for every notification, tray or not.
    notified = Signal(str, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.tray: QSystemTrayIcon | None = None

    def notify(self, title: str, message: str, *, warning: bool = False) -> None:
        self.notified.emit(title, message)
        if self.tray is not None and self.tray.isVisible() and QSystemTrayIcon.supportsMessages():
            icon = (
                QSystemTrayIcon.MessageIcon.Warning
                if warning
                else QSystemTrayIcon.MessageIcon.Information
            )
            self.tray.showMessage(title, message, icon, NOTIFY_MS)


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

    def _activated(self, reason: Any) -> None:
        if reason in (
            QSystemTrayIcon.ActivationReason.Trigger,
            QSystemTrayIcon.ActivationReason.DoubleClick,
        ):
            self.show_requested.emit()

    def hide(self) -> None:
        self.icon.hide()


def tray_available() -> bool:
    return QSystemTrayIcon.isSystemTrayAvailable()
