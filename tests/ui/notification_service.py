"""A tiny freedesktop notification service for tests: ``python notification_service.py``
on the bus of ``DBUS_SESSION_BUS_ADDRESS``.

Strict like GNOME Shell and dunst (GDBus checks the signature: a ``replaces_id`` sent as an
int32 is refused). Each notification is printed as one line ``NOTIFY <id> <title>|<body>``;
after each it emits ``ActionInvoked`` for another program's notification, then the click
on this one (a user clicking it).
"""

from __future__ import annotations

import sys

from PySide6.QtCore import ClassInfo, QCoreApplication, QObject, QTimer, Signal, Slot
from PySide6.QtDBus import QDBusConnection


@ClassInfo({"D-Bus Interface": "org.freedesktop.Notifications"})
class Service(QObject):
    ActionInvoked = Signal("uint", str)
    NotificationClosed = Signal("uint", "uint")

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    @Slot(str, "uint", str, str, str, "QStringList", "QVariantMap", int, result="uint")
    def Notify(self, app: str, replaces: int, icon: str, title: str, body: str,
               actions: list[str], hints: dict, timeout: int) -> int:
        self.count += 1
        number = self.count
        print(f"NOTIFY {number} {title}|{body}|{','.join(actions)}", flush=True)
        QTimer.singleShot(50, lambda: self.ActionInvoked.emit(number + 1000, "default"))
        QTimer.singleShot(100, lambda: self.ActionInvoked.emit(number, "default"))
        return number

    @Slot(result="QStringList")
    def GetCapabilities(self) -> list[str]:
        return ["body", "actions"]


def main() -> int:
    app = QCoreApplication(sys.argv[:1])
    bus = QDBusConnection.sessionBus()
    service = Service()
    options = (QDBusConnection.RegisterOption.ExportAllSlots
               | QDBusConnection.RegisterOption.ExportAllSignals)
    if not (bus.registerObject("/org/freedesktop/Notifications", service, options)
            and bus.registerService("org.freedesktop.Notifications")):
        print("FAILED", flush=True)
        return 1
    print("READY", flush=True)
    return app.exec()


if __name__ == "__main__":
    raise SystemExit(main())
