"""Starting the window where it cannot open: one line on stderr instead of Qt's bare abort."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QMessageLogContext, QtMsgType
from tests.hardening.helpers import fill_settings, wreck_the_middle

import civdesk.__main__ as entry
from civdesk.ui import app

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture
def x_sockets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private X socket folder: display :7 has a server, every other number none."""
    folder = tmp_path / "X11-unix"
    folder.mkdir()
    (folder / "X7").touch()
    monkeypatch.setattr(entry, "_X_SOCKETS", str(folder))
    return folder


@pytest.mark.parametrize(("environ", "problem"), [
    ({}, "there is no display (neither DISPLAY nor WAYLAND_DISPLAY is set)"),
    ({"QT_QPA_PLATFORM": "xcb"}, "there is no display"),
    ({"QT_QPA_PLATFORM": "wayland;xcb"}, "there is no display"),
    ({"DISPLAY": ":99"}, "no X server runs on display :99 (no "),
    ({"DISPLAY": ":99.0"}, "no X server runs on display :99.0"),
])
def test_no_display_is_seen_before_qt_starts(
        x_sockets: Path, environ: dict[str, str], problem: str) -> None:
    found = entry.display_problem(environ, "linux")
    assert found is not None and found.startswith(problem)


@pytest.mark.parametrize("environ", [
    {"DISPLAY": ":7"},
    {"DISPLAY": ":7.0"},
    {"DISPLAY": "localhost:10.0"},  # ssh -X: a TCP display, only Qt can tell
    {"WAYLAND_DISPLAY": "wayland-0"},
    {"WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":99"},  # XWayland may be gone; Wayland not
    {"QT_QPA_PLATFORM": "offscreen"},
    {"QT_QPA_PLATFORM": "xcb;offscreen"},
])
def test_a_possible_display_is_left_to_qt(x_sockets: Path, environ: dict[str, str]) -> None:
    assert entry.display_problem(environ, "linux") is None


@pytest.mark.parametrize("platform", ["win32", "darwin"])
def test_windows_and_macos_are_not_checked(platform: str) -> None:
    assert entry.display_problem({}, platform) is None


def test_the_window_without_a_display_is_one_line_and_exit_1(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(entry.sys, "platform", "linux")
    monkeypatch.setattr(app, "run_gui", lambda *_: pytest.fail("Qt must not start"))
    data = tmp_path / "data"
    assert entry.main(["--data-dir", str(data)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "civdesk: error: the window cannot open: there is no display (neither DISPLAY nor "
        "WAYLAND_DISPLAY is set); start civdesk from a desktop session, or use its commands: "
        "civdesk --help"]
    assert not data.exists()  # nothing written for a window that never opened


def test_a_fatal_qt_message_reaches_stderr_with_the_hint(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(app.sys, "platform", "linux")
    app._qt_message(QtMsgType.QtWarningMsg, QMessageLogContext(), "just chatter")
    assert capsys.readouterr().err == ""
    app._qt_message(
        QtMsgType.QtFatalMsg, QMessageLogContext(),
        "This application failed to start because no Qt platform plugin could be initialized. "
        "Reinstalling the application may fix this problem.\n\nAvailable platform plugins: xcb")
    assert capsys.readouterr().err == (
        "civdesk: error: This application failed to start because no Qt platform plugin "
        f"could be initialized; {app.PLATFORM_HINT}\n")


def test_qt_failing_to_start_says_why_on_stderr(tmp_path: Path) -> None:
    """The case no check can foresee (here a platform plugin that does not exist)."""
    env = {**os.environ, "QT_QPA_PLATFORM": "no-such-platform",
           "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-m", "civdesk", "--data-dir", str(tmp_path / "data")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert done.returncode != 0
    assert ("civdesk: error: This application failed to start because no Qt platform plugin "
            "could be initialized") in done.stderr


def test_the_window_on_a_damaged_library_is_the_same_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    monkeypatch.setattr(app, "run_gui", lambda *_: pytest.fail("Qt must not start"))
    data = tmp_path / "data"
    data.mkdir()
    database = data / "library.sqlite3"
    fill_settings(database, 3000)
    wreck_the_middle(database)
    assert entry.main(["--data-dir", str(data)]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"civdesk: error: The library database {database} is damaged")
    assert "civdesk db restore" in line


def test_started_from_a_desktop_the_same_message_is_a_dialog(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, qapp: object,
        capsys: pytest.CaptureFixture[str]) -> None:
    """No terminal (a launcher, a windowed .exe): the line also goes into a dialog."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    monkeypatch.setattr(entry, "_someone_reads_stderr", lambda environ: False)
    monkeypatch.setattr(app, "run_gui", lambda *_: pytest.fail("the window must not open"))
    data = tmp_path / "data"
    data.mkdir()
    (data / "library.sqlite3").write_bytes(b"my notes, not a database" * 100)
    shown: list[tuple[str, str]] = []

    def answer() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, qapp, answer)  # type: ignore[call-overload]
            return
        shown.append((box.windowTitle(), box.text()))
        box.accept()

    QTimer.singleShot(0, qapp, answer)  # type: ignore[call-overload]
    assert entry.main(["--data-dir", str(data)]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert shown == [(app.START_FAILURE_TITLE, line.removeprefix("civdesk: error: "))]
    assert "is not a SQLite database" in line


@pytest.mark.parametrize(("environ", "tty", "reads"), [
    ({"QT_QPA_PLATFORM": "offscreen"}, False, True),
    ({}, True, True),
    ({}, False, False),
    ({"QT_QPA_PLATFORM": "xcb"}, False, False),
])
def test_who_reads_a_start_failure(monkeypatch: pytest.MonkeyPatch, environ: dict[str, str],
                                   tty: bool, reads: bool) -> None:
    class Stderr:
        def isatty(self) -> bool:
            return tty

    monkeypatch.setattr(entry.sys, "stderr", Stderr())
    assert entry._someone_reads_stderr(environ) is reads
