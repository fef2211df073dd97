"""The download list as an item model: one row per task, in the queue's order.

Like qutebrowser's download model it holds no download logic: it keeps the latest snapshot
of every task and relays the worker's signals into ``beginInsertRows``/``dataChanged``/layout
changes. Everything a view shows comes from the snapshot through a role.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import (
    QAbstractListModel,
    QByteArray,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Slot,
)

from civdesk.core.downloads.queue import TaskSnapshot
from civdesk.core.downloads.store import COMPLETED, DOWNLOADING, FAILED, QUEUED
from civdesk.ui.downloads.messages import (
    STATE_LABELS,
    downloading_elsewhere,
    failure_reason,
    task_title,
)

if TYPE_CHECKING:
    from civdesk.ui.downloads.worker import DownloadWorker
    from civdesk.ui.services.downloads import DownloadService

    DownloadSignals = DownloadWorker | DownloadService

AnyIndex = QModelIndex | QPersistentModelIndex
ACTIVE_STATES = (QUEUED, DOWNLOADING)


class TaskRole(IntEnum):
    SNAPSHOT = Qt.ItemDataRole.UserRole + 1
    TASK_ID = Qt.ItemDataRole.UserRole + 2
    STATE = Qt.ItemDataRole.UserRole + 3
    PROGRESS = Qt.ItemDataRole.UserRole + 4  # 0–100, or -1 while the size is unknown
    BYTES_DONE = Qt.ItemDataRole.UserRole + 5
    BYTES_TOTAL = Qt.ItemDataRole.UserRole + 6
    SPEED = Qt.ItemDataRole.UserRole + 7  # bytes per second (0 when not downloading)
    ETA = Qt.ItemDataRole.UserRole + 8  # seconds, or None
    REASON = Qt.ItemDataRole.UserRole + 9  # why it failed or waits, in words, or None


def progress_percent(task: TaskSnapshot) -> int:
    """0–100, or -1 while the size is unknown."""
    if task.state == COMPLETED:
        return 100
    percent = task.percent
    return -1 if percent is None else int(percent)


def has_reason(task: TaskSnapshot) -> bool:
    """Failed, held up while running (waiting out a rate limit), or run by another process."""
    if task.state == FAILED:
        return True
    return task.state == DOWNLOADING and (
        task.error_kind is not None or downloading_elsewhere(task) is not None
    )


def reason_text(task: TaskSnapshot) -> str:
    """The words for :func:`has_reason`'s tasks."""
    return downloading_elsewhere(task) or failure_reason(task)


def queue_order(task: TaskSnapshot) -> tuple[int, int]:
    """The queue's own order: position, then age (the store's ``ORDER BY``)."""
    return (task.position, task.id)


class DownloadListModel(QAbstractListModel):
    """Rows of task snapshots, fed by :class:`~civdesk.ui.downloads.worker.DownloadWorker`."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._tasks: list[TaskSnapshot] = []
        self._rows: dict[int, int] = {}  # task id -> row

    # -- wiring -------------------------------------------------------------------------------

    def connect_worker(self, worker: DownloadSignals) -> None:
        """Follow the task signals of a worker or of the downloads service."""
        worker.task_added.connect(self.add_task)
        worker.task_changed.connect(self.update_task)
        worker.task_progress.connect(self.update_task)
        worker.task_finished.connect(self.update_task)
        worker.tasks_reordered.connect(self.reorder)
        worker.tasks_removed.connect(self.remove_tasks)

    # -- relays -------------------------------------------------------------------------------

    @Slot(list)
    def set_tasks(self, tasks: Iterable[TaskSnapshot]) -> None:
        self.beginResetModel()
        self._tasks = sorted(tasks, key=queue_order)
        self._reindex()
        self.endResetModel()

    @Slot(object)
    def add_task(self, task: TaskSnapshot) -> None:
        if task.id in self._rows:  # already known (the initial list raced the signal)
            self.update_task(task)
            return
        row = bisect.bisect_right([queue_order(t) for t in self._tasks], queue_order(task))
        self.beginInsertRows(QModelIndex(), row, row)
        self._tasks.insert(row, task)
        self._reindex()
        self.endInsertRows()

    @Slot(object)
    def update_task(self, task: TaskSnapshot) -> None:
        row = self._rows.get(task.id)
        if row is None:
            self.add_task(task)
            return
        if queue_order(task) != queue_order(self._tasks[row]):
            self._move_row(row, task)
            return
        self._tasks[row] = task
        index = self.index(row)
        self.dataChanged.emit(index, index)

    def _move_row(self, row: int, task: TaskSnapshot) -> None:
        """A task whose position changed (a retry goes to the end): move its row there."""
        others = [queue_order(t) for i, t in enumerate(self._tasks) if i != row]
        target = bisect.bisect_right(others, queue_order(task))  # index once removed
        # beginMoveRows wants the destination as an index *before* the removal.
        destination = target + 1 if target >= row else target
        if destination in (row, row + 1):
            self._tasks[row] = task
            self.dataChanged.emit(self.index(row), self.index(row))
            return
        self.beginMoveRows(QModelIndex(), row, row, QModelIndex(), destination)
        del self._tasks[row]
        self._tasks.insert(target, task)
        self._reindex()
        self.endMoveRows()

    @Slot(list)
    def remove_tasks(self, task_ids: list[int]) -> None:
        """Drop these tasks' rows (unknown ids are ignored): one removal per run of adjacent
        rows, last run first, and one re-index. Row by row, clearing a history of 2,000
        re-indexed the list 2,000 times on the GUI thread."""
        rows = sorted({self._rows.pop(i) for i in task_ids if i in self._rows})
        end = len(rows)
        while end:
            first = end - 1
            while first and rows[first - 1] == rows[first] - 1:
                first -= 1
            self.beginRemoveRows(QModelIndex(), rows[first], rows[end - 1])
            del self._tasks[rows[first] : rows[end - 1] + 1]
            self.endRemoveRows()
            end = first
        self._reindex()

    @Slot(list)
    def reorder(self, tasks: list[TaskSnapshot]) -> None:
        """Take the queue's new order (after a move); rows keep their identity for views."""
        if {t.id for t in tasks} != set(self._rows):
            self.set_tasks(tasks)
            return
        self.layoutAboutToBeChanged.emit()
        old_persistent = self.persistentIndexList()
        old_ids = [self._tasks[p.row()].id for p in old_persistent]
        self._tasks = sorted(tasks, key=queue_order)
        self._reindex()
        self.changePersistentIndexList(
            old_persistent, [self.index(self._rows[task_id]) for task_id in old_ids]
        )
        self.layoutChanged.emit()

    def _reindex(self) -> None:
        self._rows = {task.id: row for row, task in enumerate(self._tasks)}

    # -- reading ------------------------------------------------------------------------------

    def task(self, row: int) -> TaskSnapshot:
        return self._tasks[row]

    def tasks(self) -> list[TaskSnapshot]:
        return list(self._tasks)

    def row_of(self, task_id: int) -> int | None:
        row = self._rows.get(task_id)
        # Checked: between the ranges of a removal the index is behind the list.
        if row is None or row >= len(self._tasks) or self._tasks[row].id != task_id:
            return None
        return row

    def active_count(self) -> int:
        return sum(1 for t in self._tasks if t.state in ACTIVE_STATES)

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._tasks)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._tasks):
            return None
        task = self._tasks[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return task_title(task)
        if role == Qt.ItemDataRole.ToolTipRole:
            tip = f"{task_title(task)}\n{STATE_LABELS.get(task.state, task.state)}"
            return f"{tip}\n{reason_text(task)}" if has_reason(task) else tip
        if role == TaskRole.SNAPSHOT:
            return task
        if role == TaskRole.TASK_ID:
            return task.id
        if role == TaskRole.STATE:
            return task.state
        if role == TaskRole.PROGRESS:
            return progress_percent(task)
        if role == TaskRole.BYTES_DONE:
            return task.bytes_done
        if role == TaskRole.BYTES_TOTAL:
            return task.bytes_total
        if role == TaskRole.SPEED:
            return task.speed
        if role == TaskRole.ETA:
            return task.eta
        if role == TaskRole.REASON:
            return reason_text(task) if has_reason(task) else None
        return None

    def roleNames(self) -> dict[int, QByteArray]:
        names = super().roleNames()
        names.update({role.value: QByteArray(role.name.lower().encode()) for role in TaskRole})
        return names
