"""Ctrl+C and kill quit the window the way File → Quit does, however the app was started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.conftest import signals_as_in_a_terminal

from civdesk.ui.stop_signals import StopSignals

SRC = Path(__file__).resolve().parents[2] / "src"


def _start_window(data_dir: Path, ignore_sigint: bool = False) -> subprocess.Popen[str]:
    """The real app in its own process, its stop signals as a terminal would leave them.

    Set explicitly in the child, so the test does not depend on how the suite was started
    (a background job or ``nohup`` inherits SIGINT ignored).
    """
    def signals() -> None:
        signals_as_in_a_terminal()
        if ignore_sigint:
            signal.signal(signal.SIGINT, signal.SIG_IGN)

    env = {k: v for k, v in os.environ.items() if not k.startswith(("CIVITAI_", "CIVDESK_"))}
    env.update(QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(SRC),
               PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
               CIVITAI_API_BASE="http://127.0.0.1:9")
    return subprocess.Popen(
        [sys.executable, "-m", "civdesk", "--data-dir", str(data_dir)], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=signals)


def _wait_for_window(process: subprocess.Popen[str], log: Path) -> None:
    deadline = time.monotonic() + 30
    while not (log.exists() and "Window open" in log.read_text(encoding="utf-8")):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the window never opened"
        time.sleep(0.05)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "kill"])
def test_a_stop_signal_quits_the_window_cleanly(tmp_path: Path, sig: signal.Signals) -> None:
    data = tmp_path / "data"
    log = data / "logs" / "civdesk-gui.log"
    process = _start_window(data)
    try:
        _wait_for_window(process, log)
        process.send_signal(sig)
        _out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 128 + sig, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    text = log.read_text(encoding="utf-8")
    assert f"Quit on signal {int(sig)}" in text
    assert (data / "library.sqlite3").is_file()


def test_a_window_started_with_ctrl_c_ignored_keeps_ignoring_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    process = _start_window(data, ignore_sigint=True)
    try:
        _wait_for_window(process, data / "logs" / "civdesk-gui.log")
        process.send_signal(signal.SIGINT)
        time.sleep(0.5)
        assert process.poll() is None  # as its parent (nohup, a background job) asked
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 128 + signal.SIGTERM


def test_the_relay_emits_on_the_gui_thread_and_gives_the_signal_back(qtbot) -> None:
    before = signal.signal(signal.SIGTERM, lambda *_: None)  # caught even if SIG_IGN was set
    relay = StopSignals()
    relay.install()
    try:
        with qtbot.waitSignal(relay.received, timeout=5000) as got:
            os.kill(os.getpid(), signal.SIGTERM)
        assert got.args == [int(signal.SIGTERM)]
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # a second one is not caught
    finally:
        relay.uninstall()
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL  # given back
        signal.signal(signal.SIGTERM, before)
