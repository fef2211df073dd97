"""Scan progress reaches the GUI thread at most 10 times a second, and at each phase change."""

from __future__ import annotations

from civdesk.core.scanner import PHASE_HASHING, PHASE_WALKING, ScanProgress
from civdesk.ui.scan import ProgressThrottle, progress_counts


def _progress(phase: str, n: int) -> ScanProgress:
    return ScanProgress(phase, n, 0, 0, f"/m/{n}", 0, 0)


def test_progress_is_throttled_but_phase_changes_always_pass():
    now = [0.0]
    passed: list[ScanProgress] = []
    throttle = ProgressThrottle(passed.append, hz=10, clock=lambda: now[0])
    for n in range(1000):  # 1,000 files walked within 0.5 s
        now[0] = n * 0.0005
        throttle(_progress(PHASE_WALKING, n))
    assert 5 <= len(passed) <= 6
    throttle(_progress(PHASE_HASHING, 1000))
    assert passed[-1].phase == PHASE_HASHING


def test_files_not_read_again_count_as_done() -> None:
    # 400 files unchanged since the last scan, 20 new: 5 of those read so far.
    progress = ScanProgress(PHASE_HASHING, 420, 5, 0, "/m/new.safetensors", 10, 100, 20)
    assert progress_counts(progress) == (405, 420)
