"""Notifications: which way each one goes, what it may say, and a click on one."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QWidget

from civdesk.core.secret_text import remember_secret
from civdesk.ui.notifications import (
    FreedesktopNotifications,
    NotificationBackend,
    Notifier,
    TrayMessages,
    WindowToast,
    notification_text,
)

SERVICE_SCRIPT = Path(__file__).with_name("notification_service.py")


class FakeBackend(NotificationBackend):
    """Records what it was asked to show; ``works=False`` fails each one after accepting."""

    def __init__(self, name: str, *, up: bool = True, works: bool = True,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name, self.up, self.works = name, up, works
        self.shown: list[tuple[str, str, bool]] = []

    def available(self) -> bool:
        return self.up

    def show(self, title: str, message: str, *, warning: bool,
             failed: Callable[[], None]) -> None:
        self.shown.append((title, message, warning))
        if not self.works:
            self.up = False  # as the D-Bus backend does: not asked again
            failed()


def test_the_first_available_backend_shows_it(qapp: object) -> None:
    service = FakeBackend("service", up=False)
    tray, toast = FakeBackend("tray"), FakeBackend("toast")
    notifier = Notifier(backends=[service, tray, toast])
    notifier.notify("Download complete", "Neon Alley", warning=True)
    assert (service.shown, tray.shown, toast.shown) == ([], [("Download complete", "Neon Alley",
                                                             True)], [])
    assert notifier.last_backend is tray


def test_a_backend_that_fails_hands_over_and_is_not_asked_again(qapp: object) -> None:
    service, toast = FakeBackend("service", works=False), FakeBackend("toast")
    notifier = Notifier(backends=[service, toast])
    notifier.notify("A", "one")
    notifier.notify("B", "two")
    assert service.shown == [("A", "one", False)]
    assert toast.shown == [("A", "one", False), ("B", "two", False)]


def test_nothing_available_still_tells_the_window(qtbot) -> None:
    notifier = Notifier(backends=[FakeBackend("tray", up=False)])
    with qtbot.waitSignal(notifier.notified) as seen:
        notifier.notify("Library scan finished", "3 files")
    assert seen.args == ["Library scan finished", "3 files"]
    assert notifier.last_backend is None


def test_a_click_on_any_backend_activates(qtbot) -> None:
    tray, toast = FakeBackend("tray"), FakeBackend("toast")
    notifier = Notifier(backends=[tray, toast])
    with qtbot.waitSignal(notifier.activated):
        toast.clicked.emit()


def test_no_key_and_no_one_elses_home_in_a_notification(
        qapp: object, monkeypatch: pytest.MonkeyPatch) -> None:
    key = "c1v1ta1-s3cret-key-0123456789"
    remember_secret(key)
    monkeypatch.setattr(Path, "home", classmethod(lambda cls: Path("/home/me")))
    text = notification_text(f"Failed with {key}: /home/bob/models/x.safetensors, "
                             "/home/me/Lora/y.safetensors, C:\\Users\\Ann\\SD\\z.ckpt, /root/a")
    assert key not in text and "[API key hidden]" in text
    assert "bob" not in text and "Ann" not in text and "/root" not in text
    assert "…/models/x.safetensors" in text and "~/Lora/y.safetensors" in text
    assert "…\\SD\\z.ckpt" in text


def test_what_a_backend_shows_is_cleaned(qapp: object) -> None:
    remember_secret("another-secret-key-abcdef")
    shown = FakeBackend("toast")
    notifier = Notifier(backends=[shown])
    notifier.notify("Download failed", "refused another-secret-key-abcdef at /home/zoe/a")
    assert shown.shown == [("Download failed", "refused [API key hidden] at …/a", False)]


def test_the_window_toast_reads_in_the_window(qtbot) -> None:
    window = QWidget()
    window.resize(640, 400)
    qtbot.addWidget(window)
    toast = WindowToast(window)
    assert not toast.available()  # a hidden window shows no toast
    window.show()
    qtbot.waitExposed(window)
    notifier = Notifier(backends=[TrayMessages(), toast])  # no tray: the toast
    notifier.notify("Download complete", "Neon Alley")
    assert notifier.last_backend is toast and toast.toast is not None
    assert toast.toast.isVisible()
    assert (toast.toast.title.text(), toast.toast.message.text()) == (
        "Download complete", "Neon Alley")
    assert window.rect().contains(toast.toast.geometry())
    with qtbot.waitSignal(notifier.activated):
        qtbot.mouseClick(toast.toast, Qt.MouseButton.LeftButton)
    assert not toast.toast.isVisible()


def test_a_click_on_a_notification_brings_the_window_back(qtbot, main_window) -> None:
    main_window.show()
    qtbot.waitExposed(main_window)
    main_window.showMinimized()
    qtbot.waitUntil(main_window.isMinimized)
    main_window.notifier.backends[-1].clicked.emit()
    qtbot.waitUntil(lambda: not main_window.isMinimized())


# -- the freedesktop service, on a private session bus ----------------------------------------


@pytest.fixture
def private_bus(tmp_path: Path) -> Iterator[str]:
    daemon = shutil.which("dbus-daemon")
    if daemon is None:
        pytest.skip("dbus-daemon is not installed (apt-get install dbus)")
    socket = tmp_path / "bus"
    bus = subprocess.Popen(
        [daemon, "--session", "--nofork", "--print-address=1", f"--address=unix:path={socket}"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert bus.stdout is not None
        address = bus.stdout.readline().strip()
        assert address, "dbus-daemon printed no address"
        yield address
    finally:
        bus.terminate()
        bus.wait(10)
        if bus.stdout is not None:
            bus.stdout.close()


@pytest.fixture
def notification_service(private_bus: str, tmp_path: Path) -> Iterator[Path]:
    log = tmp_path / "service.log"
    env = {**os.environ, "DBUS_SESSION_BUS_ADDRESS": private_bus,
           "QT_QPA_PLATFORM": "offscreen"}
    with log.open("w") as out:
        service = subprocess.Popen([sys.executable, str(SERVICE_SCRIPT)], stdout=out,
                                   stderr=subprocess.STDOUT, env=env)
    try:
        yield log
    finally:
        service.terminate()
        service.wait(10)


def test_the_desktop_service_shows_it_and_its_click_activates(
        qtbot, private_bus: str, notification_service: Path) -> None:
    qtbot.waitUntil(lambda: "READY" in notification_service.read_text(), timeout=10_000)
    service = FreedesktopNotifications(bus_address=private_bus)
    toast = FakeBackend("toast")
    notifier = Notifier(backends=[service, toast])
    with qtbot.waitSignal(notifier.activated, timeout=10_000):
        notifier.notify("Download complete", "Neon Alley")
    assert notifier.last_backend is service and toast.shown == []
    lines = [line for line in notification_service.read_text().splitlines()
             if line.startswith("NOTIFY")]
    assert lines == ["NOTIFY 1 Download complete|Neon Alley|default,Show civdesk"]


def test_another_programs_click_does_not_activate(
        qtbot, private_bus: str, notification_service: Path) -> None:
    qtbot.waitUntil(lambda: "READY" in notification_service.read_text(), timeout=10_000)
    service = FreedesktopNotifications(bus_address=private_bus)
    clicks: list[int] = []
    service.clicked.connect(lambda: clicks.append(1))
    assert service.available()
    service._action_invoked(1234, "default")  # not one of ours
    assert clicks == []


def test_a_bus_without_the_service_falls_back(qtbot, private_bus: str) -> None:
    service = FreedesktopNotifications(bus_address=private_bus)
    toast = FakeBackend("toast")
    notifier = Notifier(backends=[service, toast])
    notifier.notify("Download complete", "Neon Alley")
    assert not service.available()
    assert toast.shown == [("Download complete", "Neon Alley", False)]
