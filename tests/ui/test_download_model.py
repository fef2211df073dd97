"""The download list model and the Downloads page's wording, without widgets or threads."""

from __future__ import annotations

import datetime as dt
import os
import socket
from typing import Any

import pytest
from PySide6.QtCore import Qt

from civdesk.core.downloads.queue import ERROR_KINDS, TaskSnapshot
from civdesk.core.units import human_duration
from civdesk.ui.downloads.messages import failure_reason, size_text, task_title
from civdesk.ui.downloads.model import DownloadListModel, TaskRole
from civdesk.ui.downloads.worker import ProgressThrottle

CREATED = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)


def snap(task_id: int, state: str = "queued", position: int | None = None, **fields: Any):
    values: dict[str, Any] = dict(
        id=task_id, version_id=50_000 + task_id, file_id=None, model_id=1000,
        model_name="Paperfold Style", version_name="v2.0", model_type="LORA",
        file_name=f"file{task_id}.safetensors", dest_dir=None, dest_path=None, part_path=None,
        expected_sha256=None, state=state, bytes_done=0, bytes_total=None, error=None,
        error_kind=None, position=task_id if position is None else position,
        created_at=CREATED, started_at=None, finished_at=None,
    )  # fmt: skip
    values.update(fields)
    return TaskSnapshot(**values)


def names(model: DownloadListModel) -> list[int]:
    return [model.index(r).data(TaskRole.TASK_ID) for r in range(model.rowCount())]


def test_rows_follow_the_queue_order_through_every_change(qtmodeltester):
    model = DownloadListModel()
    model.set_tasks([snap(2), snap(1)])
    assert names(model) == [1, 2]
    model.add_task(snap(3))
    model.add_task(snap(3))  # the initial list and the signal may both bring a task
    assert names(model) == [1, 2, 3]
    # A retry sends a task to the end of the queue: its row moves too.
    model.update_task(snap(1, "queued", position=9))
    assert names(model) == [2, 3, 1]
    model.reorder([snap(3, position=1), snap(2, position=2), snap(1, position=3)])
    assert names(model) == [3, 2, 1]
    model.remove_tasks([2])
    assert names(model) == [3, 1]
    model.remove_tasks([99])  # unknown ids are ignored
    qtmodeltester.check(model)


def test_removing_many_tasks_drops_runs_of_rows_in_one_go(qtmodeltester):
    model = DownloadListModel()
    model.set_tasks([snap(i) for i in range(1, 11)])
    qtmodeltester.check(model)
    removed: list[tuple[int, int]] = []
    model.rowsRemoved.connect(lambda _parent, first, last: removed.append((first, last)))

    model.remove_tasks([2, 3, 4, 7, 9, 10, 99])

    assert names(model) == [1, 5, 6, 8]
    assert removed == [(8, 9), (6, 6), (1, 3)]  # the runs, the last first
    assert [model.row_of(i) for i in (1, 5, 6, 8, 2)] == [0, 1, 2, 3, None]


def test_progress_and_state_reach_the_roles(qtbot):
    model = DownloadListModel()
    model.add_task(snap(1))
    index = model.index(0)
    assert index.data(TaskRole.PROGRESS) == -1  # size unknown yet
    with qtbot.waitSignal(model.dataChanged):
        model.update_task(
            snap(1, "downloading", bytes_done=250, bytes_total=1000, speed=5e6, eta=12.0)
        )
    assert index.data(TaskRole.STATE) == "downloading"
    assert index.data(TaskRole.PROGRESS) == 25
    assert index.data(TaskRole.SPEED) == 5e6
    assert index.data(TaskRole.ETA) == 12.0
    assert index.data(TaskRole.REASON) is None
    assert model.active_count() == 1
    model.update_task(snap(1, "completed", bytes_done=1000, bytes_total=1000))
    assert index.data(TaskRole.PROGRESS) == 100
    assert model.active_count() == 0
    model.update_task(snap(1, "failed", error="x", error_kind="auth"))
    assert "API key" in index.data(TaskRole.REASON)
    assert "API key" in index.data(Qt.ItemDataRole.ToolTipRole)


@pytest.mark.parametrize(
    ("kind", "extra", "expected"),
    [
        ("auth", {}, "set your API key"),
        ("key_refused", {}, "refused your API key (expired or revoked)"),
        ("early_access", {"deadline": "2026-12-31T00:00:00.000Z"}, "early access until 2026-12-31"),
        ("not_found", {}, "Removed from Civitai"),
        ("archived", {}, "Archived on Civitai"),
        ("rate_limited", {"retry_after": 42.4}, "retrying in 42 s"),
        ("disk_full", {}, "disk is full"),
        ("forbidden", {}, "refused"),
        ("hash_mismatch", {}, "corrupt"),
        ("unsafe_name", {}, "unsafe"),
        ("network", {}, "Cannot reach"),
        ("other", {}, "Cannot reach"),
        ("in_use", {}, "another civdesk window — it will continue there"),
    ],
)
def test_every_error_kind_is_worded_for_action(kind, extra, expected):
    task = snap(
        1, "failed", error="Cannot reach Civitai at host: refused", error_kind=kind, **extra
    )
    assert expected.lower() in failure_reason(task).lower()


def test_every_kind_the_core_records_has_its_own_words():
    generic = failure_reason(snap(1, "failed", error="E", error_kind="other"))
    worded = {
        k
        for k in ERROR_KINDS
        if failure_reason(snap(1, "failed", error="E", error_kind=k)) != generic
    }
    # "network" and "other" pass the core's own one-line message through; cancelled never fails.
    assert set(ERROR_KINDS) - worded == {"network", "other", "cancelled"}


@pytest.mark.parametrize(
    ("message", "who"),
    [
        ("a.safetensors is already being downloaded by another civdesk (pid 4242)", "(pid 4242)"),
        ("a.safetensors is already being downloaded by another civdesk (pid 7 on nas); "
         "cancel it there", "(pid 7 on nas)"),
    ],
)
def test_in_use_names_the_process_that_has_the_download(message, who):
    reason = failure_reason(snap(1, "failed", error=message, error_kind="in_use"))
    assert reason == f"Being downloaded by another civdesk window {who} — it will continue there"


def test_a_task_another_process_downloads_says_so_in_the_list():
    model = DownloadListModel()
    mine = snap(1, "downloading", owner_pid=os.getpid(), owner_host=socket.gethostname())
    theirs = snap(2, "downloading", owner_pid=4242, owner_host=socket.gethostname(),
                  elsewhere=True)  # fmt: skip
    model.set_tasks([mine, theirs])
    assert model.index(0).data(TaskRole.REASON) is None
    assert model.index(1).data(TaskRole.REASON) == (
        "Downloading in another civdesk window (pid 4242)"
    )
    assert "pid 4242" in model.index(1).data(Qt.ItemDataRole.ToolTipRole)


def test_titles_sizes_and_durations():
    assert task_title(snap(1)) == "file1.safetensors"
    assert task_title(snap(1, file_name=None)) == "Paperfold Style — v2.0"
    assert task_title(snap(1, file_name=None, model_name=None)) == "Model version 50001"
    assert size_text(None) == "?"
    assert size_text(6_300_000_000) == "6.3 GB"
    assert human_duration(None) == "—"
    assert human_duration(42) == "42 s"
    assert human_duration(75) == "1 min 15 s"
    assert human_duration(3 * 3600 + 120) == "3 h 2 min"


def test_progress_throttle_lets_ten_a_second_through_per_task():
    now = [100.0]
    throttle = ProgressThrottle(hz=10, clock=lambda: now[0])
    assert throttle.allow(1)
    assert not throttle.allow(1)
    assert throttle.allow(2)  # per task
    now[0] += 0.05
    assert not throttle.allow(1)
    now[0] += 0.06
    assert throttle.allow(1)
    throttle.forget(1)
    assert throttle.allow(1)
