"""The window closed while workers run, and the left-over checks of tests/conftest.py.

Closing mid-download and mid-scan must stop every thread (the conftest fixtures fail the test
otherwise), keep the ``.part`` and put the task back in line so the next start resumes it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from civdesk.core.context import Core
from civdesk.core.downloads.downloader import PART_SUFFIX
from civdesk.core.downloads.queue import DownloadQueue
from tests.double import CivitaiDouble, make_safetensors
from tests.hardening.helpers import REPO, MiB, cli_env, integrity
from tests.ui.conftest import open_core, wait_until_ready

BIG = 24 * MiB


@pytest.fixture
def core(tmp_path: Path, civitai: CivitaiDouble) -> Iterator[Core]:
    core = open_core(tmp_path / "data", civitai.base_url)
    try:
        yield core
    finally:
        from civdesk.ui import tasks

        tasks.wait_for_pools(5000)
        core.close()


def test_window_closed_mid_download_and_mid_scan(
    qtbot, core: Core, civitai: CivitaiDouble, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    from civdesk.ui.main_window import MainWindow

    model = civitai.add_model("Closing", "Checkpoint")
    version = civitai.add_version(model, files=[civitai.file(size=BIG)])
    civitai.throttle_downloads(4 * MiB)
    folder = tmp_path / "models"
    folder.mkdir()
    for i in range(200):
        (folder / f"f{i}.safetensors").write_bytes(make_safetensors(bytes([i % 251]) * 4096))
    core.settings.library_folders = [str(folder)]
    dest = tmp_path / "dl"

    window = MainWindow(core, use_tray=False)
    qtbot.addWidget(window)
    wait_until_ready(qtbot, window)
    window.show()
    window.downloads.enqueue(version.id, dest_dir=str(dest))
    part = dest / ((version.files[0].name or "") + PART_SUFFIX)
    qtbot.waitUntil(lambda: part.exists() and part.stat().st_size > 0, timeout=15_000)
    assert window.scans.start()
    assert not window.scans.start()  # a second scan is refused while one runs
    window.close()
    assert not window.downloads.running

    kept = part.stat().st_size
    assert 0 < kept < BIG  # interrupted, not finished and not thrown away
    assert integrity(core.paths.database) == "ok"
    (task,) = DownloadQueue(core.db, core.client()).tasks()
    assert task.state == "queued" and task.part_path == str(part)
    # The conftest checks run after this: no QThread, pool job or timer may be left.


LEAKY_TESTS = textwrap.dedent('''
    import time
    from PySide6.QtCore import QRunnable, QThread, QThreadPool, QTimer

    def test_leaves_a_timer(qtbot):
        timer = QTimer()
        timer.start(1000)
        test_leaves_a_timer.keep = timer

    def test_leaves_a_late_single_shot(qtbot):
        QTimer.singleShot(60_000, lambda: None)

    class Sleeper(QThread):
        def run(self):
            time.sleep(2)

    def test_leaves_a_thread(qtbot):
        thread = Sleeper()
        thread.start()
        test_leaves_a_thread.keep = thread

    class Job(QRunnable):
        def run(self):
            time.sleep(2)

    def test_leaves_a_pool_job(qtbot):
        pool = QThreadPool()
        pool.start(Job())
        test_leaves_a_pool_job.keep = pool

    def test_tidy(qtbot):
        timer = QTimer()
        timer.setSingleShot(True)
        timer.start(50)
        QTimer.singleShot(20, lambda: None)
        thread = Sleeper()
        thread.run = lambda: None
        thread.start()
        thread.wait()
''')


def test_the_left_over_checks_catch_each_kind_of_leak(tmp_path: Path) -> None:
    (tmp_path / "test_leaky.py").write_text(LEAKY_TESTS)
    (tmp_path / "conftest.py").write_text(
        "from tests.conftest import (_gc_on_gui_thread, _no_blocking_dialogs,  # noqa: F401\n"
        "    _no_dangling_qthreadpool_jobs, _no_dangling_qthreads, _no_dangling_qtimers)\n")
    (tmp_path / "pytest.ini").write_text("[pytest]\nqt_api = pyside6\n")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rE", str(tmp_path)],
        cwd=tmp_path, env=cli_env(PYTHONPATH=str(REPO), QT_QPA_PLATFORM="offscreen",
                    CIVDESK_TEST_QT_GRACE="0.5"),
        capture_output=True, text=True, timeout=120, check=False)
    out = result.stdout
    assert "5 passed, 4 errors" in out, out  # each leaky test errs at teardown
    assert "left 1 QThread(s) running: Sleeper" in out
    assert "left QThreadPool jobs running" in out
    assert "QTimer unnamed (1000 ms" in out
    assert "singleShot -> test_leaves_a_late_single_shot.<locals>.<lambda>" in out


STUCK_TESTS = textwrap.dedent('''
    import pytest
    from PySide6.QtCore import QThread


    @pytest.mark.timeout(1)
    def test_stuck_in_qt(qtbot):
        QThread.msleep(60_000)  # C code: pytest-timeout's signal cannot interrupt it


    def test_never_reached():
        pass
''')


def test_a_test_stuck_in_c_stops_the_run_and_names_itself(tmp_path: Path) -> None:
    """CI once hung for 90 min on a deadlocked test; now the run ends with its name."""
    (tmp_path / "test_stuck.py").write_text(STUCK_TESTS)
    (tmp_path / "conftest.py").write_text(
        "from tests.conftest import pytest_configure, pytest_runtest_protocol  # noqa: F401\n")
    (tmp_path / "pytest.ini").write_text("[pytest]\nqt_api = pyside6\ntimeout = 120\n")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path, env=cli_env(PYTHONPATH=str(REPO), QT_QPA_PLATFORM="offscreen",
                                  CIVDESK_TEST_HARD_KILL_MARGIN="2"),
        capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 70, result.stdout + result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "test_stuck.py::test_stuck_in_qt hung" in last, result.stderr
    assert "test_stuck_in_qt" in result.stderr.split("[watchdog]")[0]  # its stack is there
    assert "test_never_reached" not in result.stdout
