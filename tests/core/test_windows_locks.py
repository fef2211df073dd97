"""The Windows locking path of core/downloads/locks.py, run here on a simulated msvcrt.

Windows itself runs it in the CI workflow; here the same code takes its locks through
``tests/core/windows_sim.py``, across two real processes, as two civdesk installs would.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from civdesk.core.downloads import locks
from tests.core.windows_sim import SimulatedMsvcrt

REPO = Path(__file__).resolve().parents[2]
PART_OFFSET = 1 << 40

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="Windows runs the real one")

HOLDER = """
import sys
from pathlib import Path
from civdesk.core.downloads import locks
from tests.core.windows_sim import SimulatedMsvcrt
locks._PLATFORM = locks._WindowsLocks(SimulatedMsvcrt())
locks.PartLock._windows_offset = 1 << 40
kind, path = sys.argv[1], Path(sys.argv[2])
if kind == "part":
    lock = locks.PartLock.try_acquire(path)
else:
    lock = locks.ProcessLock.try_acquire(path, locks.Owner.this_process())
print("held" if lock else "busy", flush=True)
sys.stdin.readline()
if lock:
    lock.release()
"""


@pytest.fixture
def msvcrt(monkeypatch: pytest.MonkeyPatch) -> SimulatedMsvcrt:
    simulated = SimulatedMsvcrt()
    monkeypatch.setattr(locks, "_PLATFORM", locks._WindowsLocks(simulated))
    # NTFS takes a file position of 2**62; ext4 stops at 2**44: lock a byte this disk takes.
    monkeypatch.setattr(locks.PartLock, "_windows_offset", PART_OFFSET)
    return simulated


@pytest.fixture
def holder() -> Iterator:
    started: list[subprocess.Popen[str]] = []

    def start(kind: str, path: Path) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-c", HOLDER, kind, str(path)], cwd=REPO, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            env={"PYTHONPATH": f"{REPO / 'src'}:{REPO}", "PATH": "/usr/bin:/bin"})
        started.append(process)
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "held"
        return process

    yield start
    for process in started:
        if process.returncode is None:
            process.communicate("\n", timeout=30)


def test_a_part_held_by_another_process_is_busy_then_free(
        msvcrt: SimulatedMsvcrt, holder, tmp_path: Path) -> None:
    part = tmp_path / "model.safetensors.part"
    other = holder("part", part)
    assert locks.PartLock.try_acquire(part) is None
    other.communicate("\n", timeout=30)
    mine = locks.PartLock.try_acquire(part)
    assert mine is not None
    mine.release()
    # The byte locked lies past any file's end: writing the file is never blocked.
    assert (msvcrt.LK_NBLCK, PART_OFFSET) in msvcrt.calls
    assert (msvcrt.LK_UNLCK, PART_OFFSET) in msvcrt.calls


def test_who_holds_a_lock_file_can_be_read_while_it_is_held(
        msvcrt: SimulatedMsvcrt, holder, tmp_path: Path) -> None:
    path = tmp_path / "task-7.lock"
    other = holder("process", path)
    assert locks.ProcessLock.try_acquire(path) is None
    owner = locks.read_owner(path)  # the owner text lies before the locked byte
    assert owner is not None and owner.pid == other.pid
    assert locks.is_held(path)


def test_a_released_lock_file_is_closed_before_it_is_deleted(
        msvcrt: SimulatedMsvcrt, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Windows refuses to delete an open file: unlock, close, then delete.
    path = tmp_path / "task-8.lock"
    lock = locks.ProcessLock.try_acquire(path, locks.Owner.this_process())
    assert lock is not None
    order: list[str] = []
    real_close, real_remove = locks.os.close, locks._remove_quietly
    monkeypatch.setattr(locks.os, "close", lambda fd: (order.append("close"), real_close(fd)))
    monkeypatch.setattr(locks, "_remove_quietly",
                        lambda p: (order.append("delete"), real_remove(p)))
    lock.release()
    assert order == ["close", "delete"] and not path.exists()
    assert msvcrt.calls[-1] == (msvcrt.LK_UNLCK, locks._WINDOWS_LOCK_OFFSET)
