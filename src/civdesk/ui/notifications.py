"""Where a notification goes: the desktop's notification service, the tray, or the window.

A balloon drawn by Qt's tray (Linux without a notification service) took the desktop's
tooltip colours against the app's text colour, near-white on pale yellow. So the platform
shows a notification wherever it can, in its own colours:

1. Linux and the BSDs: the freedesktop ``org.freedesktop.Notifications`` service on the
   session bus (GNOME, KDE, dunst, mako…), through QtDBus; a click on it shows the window.
2. The tray icon's message (native on Windows and macOS; on Linux, Qt's balloon, which
   :func:`civdesk.ui.theme` gives the app's tooltip colours).
3. A toast inside the window, in the palette's colours.

A backend that turns out not to work (the service went away, an error answer) passes that
notification to the next one and is not asked again. Text goes out through
:func:`notification_text`: never the API key, never a folder in someone's home.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QPoint, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QGuiApplication, QMouseEvent
from PySide6.QtWidgets import QFrame, QLabel, QSystemTrayIcon, QVBoxLayout, QWidget

from civdesk.core.secret_text import redact

log = logging.getLogger(__name__)

#: How long a notification stays up (the service may keep it longer, e.g. in a list).
NOTIFY_MS = 6000
SERVICE = "org.freedesktop.Notifications"
OBJECT_PATH = "/org/freedesktop/Notifications"
APP_NAME = "civdesk"

# A home folder in a path: /home/NAME, /Users/NAME, /root, C:\Users\NAME (either slash).
_HOME_IN_PATH = re.compile(
    r"(?:(?<![\w.])/(?:home|Users|var/home)/[^/\s:]+|(?<![\w.])/root|[A-Za-z]:[\\/]Users[\\/][^\\/\s:]+)"
    r"(?=[\\/]|\s|:|$)"
)


def notification_text(text: str) -> str:
    """``text`` fit for a notification, which others may see on a screen or a lock screen:
    the API key hidden, and each home folder in a path shortened to ``~`` (the user's own)
    or ``…`` (anybody else's, whose name is nobody's business)."""
    text = redact(text)
    own = str(Path.home())

    def shorten(match: re.Match[str]) -> str:
        found = match.group(0)
        return "~" if found.replace("\\", "/").rstrip("/") == own.replace("\\", "/") else "…"

    return _HOME_IN_PATH.sub(shorten, text)


class NotificationBackend(QObject):
    """One way to show a notification. ``clicked`` when the user clicks one it showed."""

    clicked = Signal()
    name = "backend"

    def available(self) -> bool:
        raise NotImplementedError

    def show(self, title: str, message: str, *, warning: bool,
             failed: Callable[[], None]) -> None:
        """Show it; call ``failed`` (on the GUI thread) when it could not be shown after all."""
        raise NotImplementedError


class FreedesktopNotifications(NotificationBackend):
    """The desktop's notification service on the session bus (the freedesktop spec).

    Whether the service is there is asked once (of the bus daemon, which answers at once);
    the Notify call itself goes to the service, which may be slow or hung, so it runs on a
    worker thread. Its ``default`` action is a click on the notification body.
    """

    name = "freedesktop"

    def __init__(self, bus_address: str | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        from PySide6.QtDBus import QDBusConnection

        if bus_address is None:
            self._bus = QDBusConnection.sessionBus()
        else:  # a private bus (tests)
            self._bus = QDBusConnection.connectToBus(bus_address, f"civdesk-{id(self)}")
        self._usable: bool | None = None
        self._ours: set[int] = set()  # ids of our notifications: the signals are broadcast

    def available(self) -> bool:
        if self._usable is None:
            self._usable = self._service_present()
            if self._usable:
                # The stubs say bytes for the slot; PySide takes only a str.
                self._bus.connect(SERVICE, OBJECT_PATH, SERVICE, "ActionInvoked",  # type: ignore[call-overload]
                                  self, "1_action_invoked(uint,QString)")  # fmt: skip
                self._bus.connect(SERVICE, OBJECT_PATH, SERVICE, "NotificationClosed",  # type: ignore[call-overload]
                                  self, "1_closed(uint,uint)")  # fmt: skip
        return self._usable

    def _service_present(self) -> bool:
        if not self._bus.isConnected():
            return False
        bus = self._bus.interface()
        if bus is None:
            return False
        if bus.isServiceRegistered(SERVICE).value():
            return True
        # dunst, mako and others start on the first call (D-Bus activation).
        from PySide6.QtDBus import QDBusMessage

        ask = QDBusMessage.createMethodCall(
            "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
            "ListActivatableNames")  # fmt: skip
        answer = self._bus.call(ask, timeout=2000)
        names = answer.arguments()[0] if answer.arguments() else []
        return SERVICE in names

    def show(self, title: str, message: str, *, warning: bool,
             failed: Callable[[], None]) -> None:
        from civdesk.ui.tasks import run_task

        def sent(notification_id: object) -> None:
            if isinstance(notification_id, int) and notification_id > 0:
                self._ours.add(notification_id)

        def not_sent(error: BaseException) -> None:
            log.info("The notification service did not take a notification: %s", error)
            self._usable = False
            failed()

        run_task(self._notify, title, message, warning, on_result=sent, on_error=not_sent,
                 pool="notifications", owner=self)  # fmt: skip

    def _notify(self, title: str, message: str, warning: bool) -> int:
        """On a worker: the Notify call, with the spec's types (replaces_id is a uint32,
        which only the introspected interface marshals as such from Python)."""
        from PySide6.QtCore import Q_ARG, Q_RETURN_ARG, QMetaObject
        from PySide6.QtDBus import QDBusInterface

        service = QDBusInterface(SERVICE, OBJECT_PATH, SERVICE, self._bus)
        service.setTimeout(5000)
        if not service.isValid():
            raise OSError(service.lastError().message() or "no notification service")
        hints = {"urgency": 1, "desktop-entry": APP_NAME}  # 1: normal
        result = QMetaObject.invokeMethod(
            service, "Notify", Qt.ConnectionType.DirectConnection, Q_RETURN_ARG("uint"),
            Q_ARG(str, APP_NAME), Q_ARG("uint", 0), Q_ARG(str, "dialog-warning" if warning
                                                          else APP_NAME),
            Q_ARG(str, title), Q_ARG(str, message),
            Q_ARG("QStringList", ["default", "Show civdesk"]),
            Q_ARG("QVariantMap", hints), Q_ARG(int, NOTIFY_MS))  # fmt: skip
        error = service.lastError()
        if error.isValid():
            raise OSError(error.message())
        return int(result)  # type: ignore[call-overload]  # a uint, typed as object

    @Slot("uint", str)
    def _action_invoked(self, notification_id: int, action: str) -> None:
        if notification_id in self._ours and action == "default":
            self.clicked.emit()

    @Slot("uint", "uint")
    def _closed(self, notification_id: int, reason: int) -> None:
        self._ours.discard(notification_id)


class TrayMessages(NotificationBackend):
    """The tray icon's message: native on Windows and macOS, Qt's balloon elsewhere."""

    name = "tray"

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.tray: QSystemTrayIcon | None = None

    def set_tray(self, tray: QSystemTrayIcon | None) -> None:
        if self.tray is not None:
            self.tray.messageClicked.disconnect(self.clicked)
        self.tray = tray
        if tray is not None:
            tray.messageClicked.connect(self.clicked)

    def available(self) -> bool:
        return (self.tray is not None and self.tray.isVisible()
                and QSystemTrayIcon.supportsMessages())  # fmt: skip

    def show(self, title: str, message: str, *, warning: bool,
             failed: Callable[[], None]) -> None:
        assert self.tray is not None
        icon = (QSystemTrayIcon.MessageIcon.Warning if warning
                else QSystemTrayIcon.MessageIcon.Information)  # fmt: skip
        self.tray.showMessage(title, message, icon, NOTIFY_MS)


class Toast(QFrame):
    """A small box in the window's bottom-right corner; its colours are the palette's
    (``QFrame#toast`` in the stylesheet). A click on it is ``clicked``."""

    clicked = Signal()

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("toast")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.title = QLabel()
        self.title.setObjectName("toastTitle")
        self.message = QLabel()
        self.message.setObjectName("toastMessage")
        self.message.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 10)
        layout.addWidget(self.title)
        layout.addWidget(self.message)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.dismiss)
        parent.installEventFilter(self)
        self.hide()

    def show_text(self, title: str, message: str, warning: bool) -> None:
        self.setProperty("warning", warning)
        self.style().unpolish(self)
        self.style().polish(self)
        self.title.setText(title)
        self.message.setText(message)
        self._place()
        self.show()
        self.raise_()
        self._timer.start(NOTIFY_MS)

    def _place(self) -> None:
        parent = self.parentWidget()
        if parent is None:
            return
        width = min(360, max(200, parent.width() - 32))
        self.setFixedWidth(width)
        self.adjustSize()
        self.move(QPoint(parent.width() - width - 16, parent.height() - self.height() - 16))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Resize and self.isVisible():
            self._place()
        elif event.type() in (QEvent.Type.Hide, QEvent.Type.Close):
            self.dismiss()  # gone with the window, not waiting on a timer
        return False

    def dismiss(self) -> None:
        self._timer.stop()
        self.hide()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.dismiss()
        self.clicked.emit()


class WindowToast(NotificationBackend):
    """A toast in the window, while the window is on screen."""

    name = "toast"

    def __init__(self, window: QWidget, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.window = window
        self.toast: Toast | None = None

    def available(self) -> bool:
        return self.window.isVisible() and not self.window.isMinimized()

    def show(self, title: str, message: str, *, warning: bool,
             failed: Callable[[], None]) -> None:
        if self.toast is None:
            self.toast = Toast(self.window)
            self.toast.clicked.connect(self.clicked)
        self.toast.show_text(title, message, warning)


def desktop_has_notification_bus() -> bool:
    """Linux and the BSDs, on a real display (an offscreen run must not notify a desktop)."""
    platform = QGuiApplication.platformName()
    unix = sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd"))
    return unix and platform not in ("offscreen", "minimal", "")


def default_backends(window: QWidget | None, parent: QObject) -> list[NotificationBackend]:
    """The platform's order: the desktop's service, the tray, the window's toast."""
    backends: list[NotificationBackend] = []
    if desktop_has_notification_bus():
        backends.append(FreedesktopNotifications(parent=parent))
    backends.append(TrayMessages(parent))
    if window is not None:
        backends.append(WindowToast(window, parent))
    return backends


class Notifier(QObject):
    """Tells the user something happened: a download finished or failed, a scan ended.

    ``notified(title, message)`` is emitted for every notification, whoever shows it (the
    window's status bar shows it; tests watch it); ``activated`` when the user clicked a
    notification (the window comes to the front). ``backends`` are tried in order, the
    first :meth:`~NotificationBackend.available` one shows it.
    """

    notified = Signal(str, str)
    activated = Signal()

    def __init__(self, parent: QObject | None = None, *,
                 backends: Sequence[NotificationBackend] | None = None) -> None:
        super().__init__(parent)
        window = parent if isinstance(parent, QWidget) else None
        self.backends = list(backends) if backends is not None else default_backends(window, self)
        for backend in self.backends:
            backend.clicked.connect(self.activated)
        #: The backend that showed the last notification (None: nothing could).
        self.last_backend: NotificationBackend | None = None

    @property
    def tray(self) -> QSystemTrayIcon | None:
        tray = next((b for b in self.backends if isinstance(b, TrayMessages)), None)
        return tray.tray if tray is not None else None

    @tray.setter
    def tray(self, icon: QSystemTrayIcon | None) -> None:
        for backend in self.backends:
            if isinstance(backend, TrayMessages):
                backend.set_tray(icon)

    def notify(self, title: str, message: str, *, warning: bool = False) -> None:
        self.notified.emit(title, message)
        self._show(notification_text(title), notification_text(message), warning, 0)

    def _show(self, title: str, message: str, warning: bool, start: int) -> None:
        for index in range(start, len(self.backends)):
            backend = self.backends[index]
            if not backend.available():
                continue
            self.last_backend = backend

            def failed(after: int = index) -> None:
                self._show(title, message, warning, after + 1)

            backend.show(title, message, warning=warning, failed=failed)
            return
        self.last_backend = None
