"""Persistence of download tasks in the ``download_tasks`` table.

The queue holds no task state the database doesn't: a crash or a restart loses nothing but
speed figures. Rows come out as frozen :class:`TaskRecord` snapshots, never ORM objects.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import bindparam, delete, func, select, update

from civdesk.core.library.db import Database
from civdesk.core.library.tables import DownloadTaskRow, SettingRow

QUEUED, DOWNLOADING, COMPLETED, FAILED, CANCELLED = (
    "queued", "downloading", "completed", "failed", "cancelled",
)  # fmt: skip
STATES = (QUEUED, DOWNLOADING, COMPLETED, FAILED, CANCELLED)
FINISHED_STATES = (COMPLETED, FAILED, CANCELLED)


@dataclass(frozen=True)
class TaskRecord:
    """One row of ``download_tasks``."""

    id: int
    version_id: int
    file_id: int | None
    model_id: int | None
    model_name: str | None
    version_name: str | None
    model_type: str | None
    file_name: str | None
    dest_dir: str | None
    dest_path: str | None
    part_path: str | None
    expected_sha256: str | None
    state: str
    bytes_done: int
    bytes_total: int | None
    error: str | None
    error_kind: str | None
    position: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    #: The process downloading it (while ``downloading``); informative, see ``locks.py``.
    owner_pid: int | None = None
    owner_host: str | None = None
    #: Completed without downloading: the library already held this very file, at
    #: ``dest_path`` (or an identical file was waiting under the final name).
    already_present: bool = False
    #: Download it even though Civitai's scans flagged the file (the user confirmed).
    allow_flagged: bool = False
    #: Once completed: what the file was checked against (``DownloadResult.checked``).
    checked: str | None = None


FIELDS = tuple(f.name for f in dataclasses.fields(TaskRecord))
_WRITABLE = frozenset(FIELDS) - {"id", "created_at"}


class StateConflict(Exception):
    """The task was not in an expected state when a change was to be made (see ``current``)."""

    def __init__(self, current: TaskRecord | None) -> None:
        super().__init__(f"task is {current.state if current else 'gone'}")
        self.current = current


def now() -> datetime:
    return datetime.now(timezone.utc)


def _record(row: DownloadTaskRow) -> TaskRecord:
    return TaskRecord(**{name: getattr(row, name) for name in FIELDS})


#: The settings row that keeps "Pause all" across restarts (not a :class:`Settings` field:
#: the queue writes it alone, so a Settings dialog saving its copy never undoes a pause).
PAUSED_KEY = "downloads_paused"


class TaskStore:
    """CRUD for download tasks; safe to use from several threads (one session each)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def paused(self) -> bool:
        """Whether the queue was left paused."""
        with self.db.session(write=False) as s:
            row = s.get(SettingRow, PAUSED_KEY)
            return row is not None and row.value is True

    def set_paused(self, paused: bool) -> None:
        with self.db.session() as s:
            s.merge(SettingRow(key=PAUSED_KEY, value=paused))

    def add(self, version_id: int, **fields: Any) -> TaskRecord:
        """A new queued task at the end of the queue."""
        self._check(fields)
        with self.db.session() as s:
            last = s.scalar(select(func.max(DownloadTaskRow.position)))
            row = DownloadTaskRow(
                version_id=version_id, state=QUEUED, bytes_done=0,
                position=(last or 0) + 1, created_at=now(), **fields,
            )  # fmt: skip
            s.add(row)
            s.flush()
            return _record(row)

    def get(self, task_id: int) -> TaskRecord | None:
        with self.db.session(write=False) as s:
            row = s.get(DownloadTaskRow, task_id)
            return None if row is None else _record(row)

    def all(self) -> list[TaskRecord]:
        """Every task in queue order (position, then age)."""
        with self.db.session(write=False) as s:
            rows = s.scalars(
                select(DownloadTaskRow).order_by(DownloadTaskRow.position, DownloadTaskRow.id)
            )
            return [_record(r) for r in rows]

    def queued(self) -> list[TaskRecord]:
        return [t for t in self.all() if t.state == QUEUED]

    def update(self, task_id: int, **fields: Any) -> TaskRecord:
        self._check(fields)
        with self.db.session() as s:
            row = s.get(DownloadTaskRow, task_id)
            if row is None:
                raise KeyError(task_id)
            for name, value in fields.items():
                setattr(row, name, value)
            s.flush()
            return _record(row)

    def transition(self, task_id: int, state: str, allowed_from: Collection[str],
                   **fields: Any) -> TaskRecord:
        """Set ``state`` (and ``fields``) only if the task is now in ``allowed_from``.

        The check and the write are one ``BEGIN IMMEDIATE`` transaction, so a change made
        meanwhile by another process is seen, never overwritten: it raises
        :class:`StateConflict` carrying the row as it is now (None when deleted).
        """
        self._check({**fields, "state": state})
        with self.db.session() as s:
            row = s.get(DownloadTaskRow, task_id)
            if row is None or row.state not in allowed_from:
                raise StateConflict(None if row is None else _record(row))
            row.state = state
            for name, value in fields.items():
                setattr(row, name, value)
            s.flush()
            return _record(row)

    def delete(self, task_id: int, *, if_state_in: Collection[str] | None = None) -> bool:
        """Delete the task (only when in ``if_state_in``, checked atomically); whether it was."""
        with self.db.session() as s:
            row = s.get(DownloadTaskRow, task_id)
            if row is None:
                return False
            if if_state_in is not None and row.state not in if_state_in:
                raise StateConflict(_record(row))
            s.delete(row)
            return True

    def set_order(self, task_ids: list[int]) -> None:
        """Give these tasks the positions 1, 2, 3… in this order.

        Only the rows whose position changes are written, in one statement: moving one
        download among a few waiting ones must not rewrite a history of thousands.
        """
        with self.db.session() as s:
            current = {task_id: position for task_id, position in
                       s.execute(select(DownloadTaskRow.id, DownloadTaskRow.position))}
            changes = [{"key": task_id, "new_position": position}
                       for position, task_id in enumerate(task_ids, start=1)
                       if task_id in current and current[task_id] != position]
            if changes:
                s.connection().execute(
                    update(DownloadTaskRow).where(DownloadTaskRow.id == bindparam("key"))
                    .values(position=bindparam("new_position")), changes)

    def delete_finished(self) -> list[int]:
        """Delete every completed, failed and cancelled task in one transaction; their ids."""
        finished = DownloadTaskRow.state.in_(FINISHED_STATES)
        with self.db.session() as s:
            ids = list(s.scalars(select(DownloadTaskRow.id).where(finished)
                                .order_by(DownloadTaskRow.position, DownloadTaskRow.id)))
            if ids:
                s.execute(delete(DownloadTaskRow).where(finished))
            return ids

    def next_position(self) -> int:
        with self.db.session(write=False) as s:
            return (s.scalar(select(func.max(DownloadTaskRow.position))) or 0) + 1

    def downloading(self) -> list[TaskRecord]:
        """Tasks marked ``downloading`` (by this process, another one, or a dead one)."""
        with self.db.session(write=False) as s:
            rows = s.scalars(
                select(DownloadTaskRow).where(DownloadTaskRow.state == DOWNLOADING)
                .order_by(DownloadTaskRow.position, DownloadTaskRow.id)
            )  # fmt: skip
            return [_record(r) for r in rows]

    @staticmethod
    def _check(fields: dict[str, Any]) -> None:
        unknown = set(fields) - _WRITABLE
        if unknown:
            raise TypeError(f"Not a download task field: {', '.join(sorted(unknown))}")
        if "state" in fields and fields["state"] not in STATES:
            raise ValueError(f"Not a task state: {fields['state']!r}")
