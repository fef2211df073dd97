"""The download queue: persisted tasks, one download at a time, a history with reasons.

:class:`DownloadQueue` is plain Python. A worker thread loops on :meth:`DownloadQueue.run_next`,
which blocks while one file downloads; commands (add, cancel, retry, move, pause, resume)
may come from any thread. Listeners are called as ``listener(event, payload)`` on the thread
that caused the event (the worker for progress and results):

================  ===========================================================
``"added"``       a :class:`TaskSnapshot`
``"changed"``     a :class:`TaskSnapshot` whose state or details changed
``"progress"``    a :class:`TaskSnapshot` (at most ~10 per second per task)
``"finished"``    a :class:`TaskSnapshot`: completed, failed or cancelled
``"removed"``     a list of task ids (removed, or the history cleared: one event)
``"reordered"``   every :class:`TaskSnapshot`, in the new order
``"paused"``      ``True`` / ``False``
``"idle"``        ``None``: :meth:`~DownloadQueue.run_until_empty` ran out of work
================  ===========================================================

A task for the type's folder whose file the library already holds on disk (the same
SHA256, unchanged since it was hashed) completes at once with ``already_present``, pointing
at that file: nothing is fetched twice. A task with a folder of its own still downloads.

A file Civitai's own scans flagged as dangerous (a pickle that runs code when loaded, a
virus) fails with ``error_kind`` ``"flagged"`` unless the task says ``allow_flagged``:
the user's informed choice, asked for by the front end.

Pausing is remembered in the database: a queue paused when the app quit starts paused (its
interrupted task back in line with its ``.part``). Paused, :meth:`DownloadQueue.run_next`
starts nothing by itself, but a task asked for by id (``civdesk download`` in a terminal)
still runs: that is a request for that file now.

A failure of one task never stops the queue: it is recorded with a one-line reason and an
``error_kind`` the UI can word, and the next task starts.

Several processes may share one queue (the window and ``civdesk download`` in a terminal,
two terminals): a task being downloaded is *owned* by the one process holding its lock (see
:mod:`~civdesk.core.downloads.locks`), and the row names that process (``owner_pid``,
``owner_host``). A queue never takes a task another live process owns, takes a
``downloading`` task back only when its owner is gone (its lock is free: a crash, a kill),
and writes every state change as a check-and-set on the row as it is in the database now,
never on a snapshot it read earlier. The downloader writes a ``.part`` only while it holds
the lock of that file itself (see :class:`~civdesk.core.downloads.locks.PartLock`), so no two
processes ever write the same ``.part``, even with different data folders: the second one's
task fails with ``error_kind`` ``"in_use"`` (naming the civdesk when it shares this queue)
and the queue goes on with the next task.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from civdesk.core.civitai.connections import DOWNLOADS
from civdesk.core.civitai.errors import (
    Archived,
    AuthRequired,
    EarlyAccess,
    Forbidden,
    KeyRefused,
    NetworkError,
    NotFound,
    RateLimited,
    ServerError,
)
from civdesk.core.civitai.removals import Removals
from civdesk.core.civitai.schema import ModelFile, ModelVersion, is_removed_mode
from civdesk.core.downloads.downloader import (
    CHUNK_SIZE,
    Downloader,
    DownloadProgress,
    DownloadResult,
    DownloadSource,
)
from civdesk.core.downloads.locks import LockFolder, Owner, PartLock, ProcessLock, read_owner
from civdesk.core.downloads.store import (
    CANCELLED,
    COMPLETED,
    DOWNLOADING,
    FAILED,
    FINISHED_STATES,
    QUEUED,
    StateConflict,
    TaskRecord,
    TaskStore,
    now,
)
from civdesk.core.drives import check_download_folder
from civdesk.core.errors import (
    Cancelled,
    CivdeskError,
    DiskFull,
    HashMismatch,
    PartInUse,
    UnsafePath,
)
from civdesk.core.library.db import Database
from civdesk.core.library.repository import Library
from civdesk.core.longpaths import os_path
from civdesk.core.secret_text import redact

if TYPE_CHECKING:
    from civdesk.core.context import Core
    from civdesk.core.settings import Settings

log = logging.getLogger(__name__)

TaskId = int
Listener = Callable[[str, Any], None]

#: Legal moves between states; anything else raises IllegalTransition.
TRANSITIONS: dict[str, frozenset[str]] = {
    QUEUED: frozenset({DOWNLOADING, CANCELLED}),
    # Back to queued: paused, interrupted by shutdown, or found so after a restart.
    DOWNLOADING: frozenset({COMPLETED, FAILED, CANCELLED, QUEUED}),
    FAILED: frozenset({QUEUED, CANCELLED}),
    CANCELLED: frozenset({QUEUED}),
    COMPLETED: frozenset(),
}

class IllegalTransition(CivdeskError):
    """A command that makes no sense for the task's state (e.g. retrying a completed one)."""


class FlaggedByCivitai(CivdeskError):
    """Civitai's scans flagged the file as dangerous, and the user did not choose it anyway."""


class DownloadingElsewhere(IllegalTransition):
    """Another live civdesk process is downloading this task, or writing this file."""

    def __init__(self, what: str, owner: Owner | None, hint: str | None = None) -> None:
        who = f" ({owner.describe()})" if owner is not None else ""
        super().__init__(f"{what} is already being downloaded by another civdesk{who}"
                         + (f"; {hint}" if hint else ""))
        self.owner = owner

    @classmethod
    def of_task(cls, record: TaskRecord, hint: str | None = None) -> DownloadingElsewhere:
        owner = Owner(record.owner_pid, record.owner_host or "") if record.owner_pid else None
        return cls(record.file_name or f"Download #{record.id}", owner, hint)


ERROR_KINDS = (
    "auth", "key_refused", "forbidden", "early_access", "not_found", "archived",
    "rate_limited", "network", "hash_mismatch", "disk_full", "unsafe_name", "cancelled",
    "in_use", "flagged", "other",
)  # fmt: skip
#: How long ``run_next(task_id)`` waits for a task lock another queue holds for a moment
#: (while it checks whether the task is stale) before calling the task busy.
CLAIM_WAIT = 2.0
_KIND_OF: tuple[tuple[type[BaseException], str], ...] = (
    (KeyRefused, "key_refused"),  # before AuthRequired: a key set and refused
    (AuthRequired, "auth"),
    (EarlyAccess, "early_access"),
    (Forbidden, "forbidden"),
    (NotFound, "not_found"),
    (Archived, "archived"),
    (RateLimited, "rate_limited"),
    (NetworkError, "network"),
    (ServerError, "network"),
    (HashMismatch, "hash_mismatch"),
    (DiskFull, "disk_full"),
    (UnsafePath, "unsafe_name"),
    (Cancelled, "cancelled"),
    (DownloadingElsewhere, "in_use"),
    (PartInUse, "in_use"),
    (FlaggedByCivitai, "flagged"),
)


def error_kind(exc: BaseException) -> str:
    """The ``error_kind`` recorded for a failure (one of :data:`ERROR_KINDS`)."""
    return next((kind for cls, kind in _KIND_OF if isinstance(exc, cls)), "other")


class UnknownTask(CivdeskError):
    def __init__(self, task_id: int) -> None:
        super().__init__(f"Download #{task_id} is no longer in the list")
        self.task_id = task_id


@dataclass(frozen=True)
class TaskSnapshot(TaskRecord):
    """A task as the UI shows it: the stored record plus live figures."""

    speed: float = 0.0  # bytes per second while downloading
    eta: float | None = None  # seconds
    retry_after: float | None = None  # seconds, while waiting out a rate limit
    deadline: str | None = None  # early access end (ISO), when that is why it failed
    #: ``downloading`` in another process (this queue shows it but does not run it).
    elsewhere: bool = False

    @property
    def owner(self) -> Owner | None:
        """The process downloading it, while it is ``downloading``."""
        if self.state != DOWNLOADING or self.owner_pid is None:
            return None
        return Owner(self.owner_pid, self.owner_host or "")

    @property
    def percent(self) -> float | None:
        if not self.bytes_total:
            return None
        return min(100.0, 100.0 * self.bytes_done / self.bytes_total)

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES


class VersionSource(DownloadSource, Protocol):
    """What the queue needs from the Civitai client (it runs on the worker thread)."""

    def get_version(self, version_id: int) -> ModelVersion: ...


#: Called on the worker thread after a file is downloaded and verified.
PostDownload = Callable[[DownloadResult, ModelVersion, ModelFile], None]


class RegisterInLibrary:
    """The post-download step: record the version and the file, write companion files."""

    def __init__(self, library: Library, client: Any, allow_nsfw: Callable[[], bool],
                 formats: Callable[[], Collection[str]] = tuple) -> None:
        self.library = library
        self.client = client
        self.allow_nsfw = allow_nsfw
        self.formats = formats  # the other tools' companions to write too

    def __call__(self, result: DownloadResult, version: ModelVersion, file: ModelFile) -> None:
        from civdesk.core.sidecars import write_companions

        if version.model_id is not None:
            self.library.upsert_version(version)
        companions = write_companions(result.path, version, self.client, self.allow_nsfw(),
                                      sha256=result.sha256, formats=self.formats())
        for problem in companions.problems:
            log.warning("Companion files of %s: %s", result.path, problem)
        known = self.library.local_file(result.path) if result.already_present else None
        if known is not None and known.sha256 == result.sha256 and known.version_id is not None:
            # Identified by a scan or an earlier download: its record stays as it is, but
            # for the SHA256 Civitai publishes now, if it was not matched before.
            if result.verified and not known.verified:
                self.library.update_file(known.id, verified=True)
            return
        stat = os.stat(os_path(result.path))
        self.library.register_file(
            result.path, size=result.size, mtime_ns=stat.st_mtime_ns, inode=stat.st_ino,
            sha256=result.sha256, version_id=version.id, file_id=file.id,
            identified_by="download", preview_path=companions.preview_path,
            info_path=companions.info_path, device=stat.st_dev or None,
            verified=result.verified,
        )  # fmt: skip


@dataclass
class _Running:
    """The task the worker is on, the lock that makes it ours, and why it is being stopped."""

    task_id: int
    task_lock: ProcessLock
    stop: threading.Event = dataclasses.field(default_factory=threading.Event)
    reason: str | None = None  # "cancel" | "pause" | "interrupt"
    record: TaskRecord | None = None
    last_saved: float = 0.0

    def release_locks(self) -> None:
        """After the final state is written: the task is no longer ours."""
        self.task_lock.release()


@dataclass
class _Live:
    speed: float = 0.0
    eta: float | None = None
    retry_after: float | None = None
    deadline: str | None = None


class DownloadQueue:
    """Persisted, ordered downloads run one at a time. See the module docstring."""

    def __init__(
        self,
        db: Database,
        client: VersionSource,
        *,
        settings: Settings | None = None,
        downloader: Downloader | None = None,
        post_download: PostDownload | None = None,
        rate_limit_retries: int = 3,
        max_rate_limit_wait: float = 300.0,
        save_interval: float = 1.0,
        lock_folder: Path | None = None,
        removals: Removals | None = None,
    ) -> None:
        """``lock_folder`` (default ``locks/`` beside the database) must be the same for
        every process sharing the database. ``removals`` records what a download finds
        removed from Civitai (default: only a 410, which proves it without the sites)."""
        self.store = TaskStore(db)
        self.library = Library(db)
        self.removals = removals or Removals(self.library)
        self.locks = LockFolder(lock_folder or Path(db.path).parent / "locks")
        self.owner = Owner.this_process()
        self.client = client
        self.settings = settings
        self.downloader = downloader or Downloader(client)
        self.post_download = post_download
        self.rate_limit_retries = rate_limit_retries
        self.max_rate_limit_wait = max_rate_limit_wait
        self.save_interval = save_interval
        self._lock = threading.RLock()
        self._listeners: list[Listener] = []
        self._paused = self.store.paused()
        self._running: _Running | None = None
        #: Called once a task is claimed, right before it runs: the window refreshes the
        #: client's key and site there, so a key saved before a Retry re-queued the task
        #: is the one its download uses (read earlier, it could be the one from before).
        self.before_task: Callable[[], object] | None = None
        self._live: dict[int, _Live] = {}
        self._at_hand: dict[int, ModelVersion] = {}  # see use_version
        requeued = self.recover_stale()
        if requeued:
            log.info("Resuming %d download(s) interrupted by the last exit", len(requeued))

    def use_version(self, version: ModelVersion) -> None:
        """A version its caller has just fetched: the next task of it that runs uses it
        instead of asking Civitai again (``civdesk download`` resolved it a moment ago)."""
        self._at_hand[version.id] = version

    @classmethod
    def for_core(cls, core: Core, *, chunk_size: int = CHUNK_SIZE) -> DownloadQueue:
        """The queue of this data directory, downloading with the core's key and settings
        (``chunk_size``: see :data:`~civdesk.core.downloads.downloader.CHUNK_SIZE`)."""
        client = core.client(patience=DOWNLOADS)
        return cls(
            core.db, client, settings=core.settings,
            downloader=Downloader(client, chunk_size=chunk_size),
            post_download=RegisterInLibrary(core.library, client,
                                            lambda: core.settings.allow_nsfw,
                                            lambda: core.settings.companion_formats),
            removals=Removals(core.library, core.sites, core.api_key()),
        )  # fmt: skip

    # -- listeners ------------------------------------------------------------------------

    def add_listener(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def _emit(self, event: str, payload: Any) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(event, payload)
            except Exception:  # a broken listener must not break a download
                log.exception("Download queue listener failed on %r", event)

    # -- reading --------------------------------------------------------------------------

    @property
    def paused(self) -> bool:
        return self._paused

    def tasks(self) -> list[TaskSnapshot]:
        """Every task (queued, running and the history) in queue order."""
        return [self._snapshot(r) for r in self.store.all()]

    def task(self, task_id: TaskId) -> TaskSnapshot:
        return self._snapshot(self._get(task_id))

    def _get(self, task_id: TaskId) -> TaskRecord:
        record = self.store.get(task_id)
        if record is None:
            raise UnknownTask(task_id)
        return record

    def _snapshot(self, record: TaskRecord) -> TaskSnapshot:
        live = self._live.get(record.id)
        values = {f.name: getattr(record, f.name) for f in dataclasses.fields(TaskRecord)}
        elsewhere = record.state == DOWNLOADING and not self._is_running(record.id)
        if live is None:
            return TaskSnapshot(**values, elsewhere=elsewhere)
        return TaskSnapshot(**values, speed=live.speed, eta=live.eta, elsewhere=elsewhere,
                            retry_after=live.retry_after, deadline=live.deadline)

    def _is_running(self, task_id: TaskId) -> bool:
        running = self._running
        return running is not None and running.task_id == task_id

    # -- commands -------------------------------------------------------------------------

    def add(
        self,
        version_id: int,
        file_id: int | None = None,
        dest_dir: str | Path | None = None,
        *,
        version: ModelVersion | None = None,
        allow_flagged: bool = False,
    ) -> TaskId:
        """Queue a download of a version's file (its primary file when ``file_id`` is None).

        No network here: the version is resolved when the task runs. Pass ``version`` when
        it is at hand so the list can show names right away. ``allow_flagged``: the user
        confirmed a file Civitai's scans flagged (see :attr:`ModelFile.danger`).
        """
        details: dict[str, Any] = {"file_id": file_id,
                                   "dest_dir": str(dest_dir) if dest_dir else None,
                                   "allow_flagged": allow_flagged}
        if version is not None:
            details.update(self._details_of(version, _pick_file(version, file_id)))
            if dest_dir:
                details["dest_dir"] = str(dest_dir)
        record = self.store.add(int(version_id), **details)
        self._emit("added", self._snapshot(record))
        return record.id

    def cancel(self, task_id: TaskId) -> None:
        """Stop (if running) and drop a task; its ``.part`` is deleted."""
        with self._lock:
            running = self._running
            if running is not None and running.task_id == task_id:
                running.reason = "cancel"
                running.stop.set()  # the worker records it when the current chunk is written
                return
            if self._get(task_id).state == DOWNLOADING:
                record = self._cancel_unowned(task_id)
            else:
                record = self._transition(task_id, CANCELLED, finished_at=now(),
                                          error="Cancelled", error_kind="cancelled")
            self._delete_part(record)
        self._emit("finished", self._snapshot(record))

    def _cancel_unowned(self, task_id: TaskId) -> TaskRecord:
        """Cancel a task marked downloading by another process: only if that one is gone."""
        lock = ProcessLock.try_acquire(self.locks.task(task_id), self.owner)
        if lock is None:
            raise DownloadingElsewhere.of_task(self._get(task_id), "cancel it there")
        with lock:
            return self._transition(task_id, CANCELLED, owned=True, finished_at=now(),
                                    error="Cancelled", error_kind="cancelled", owner_pid=None,
                                    owner_host=None)

    def retry(self, task_id: TaskId, *, allow_flagged: bool | None = None) -> None:
        """Queue a failed or cancelled task again, at the end; a kept ``.part`` is resumed.

        ``allow_flagged`` (when given) records the user's choice on a flagged file.
        """
        choice = {} if allow_flagged is None else {"allow_flagged": allow_flagged}
        with self._lock:
            try:
                record = self.store.transition(
                    task_id, QUEUED, (FAILED, CANCELLED), error=None, error_kind=None,
                    finished_at=None, position=self.store.next_position(), **choice,
                )  # fmt: skip
            except StateConflict as exc:
                raise self._refusal(task_id, exc.current, "retried") from None
            self._live.pop(task_id, None)
        self._emit("changed", self._snapshot(record))

    def allow_flagged_file(self, task_id: TaskId) -> None:
        """The user chose to download this queued task's file although Civitai's scans
        flagged it (a failed task: :meth:`retry` with ``allow_flagged``)."""
        with self._lock:
            try:
                record = self.store.transition(task_id, QUEUED, (QUEUED,), allow_flagged=True)
            except StateConflict as exc:
                raise self._refusal(task_id, exc.current, "changed") from None  # it started
        self._emit("changed", self._snapshot(record))

    def move(self, task_id: TaskId, new_position: int) -> None:
        """Put a queued task at ``new_position`` (0 = next) among the queued tasks."""
        with self._lock:
            everything = self.store.all()
            queued = [t.id for t in everything if t.state == QUEUED]
            if task_id not in queued:
                state = self._get(task_id).state
                raise IllegalTransition(f"Only waiting downloads can be reordered (this one is "
                                        f"{state})")
            queued.remove(task_id)
            queued.insert(max(0, min(new_position, len(queued))), task_id)
            # Queued tasks trade places among the queued slots; the rest keep theirs.
            order = iter(queued)
            self.store.set_order([next(order) if t.state == QUEUED else t.id
                                  for t in everything])
        self._emit("reordered", self.tasks())

    def remove(self, task_id: TaskId) -> None:
        """Forget a finished task (the downloaded file stays where it is)."""
        with self._lock:
            self._get(task_id)
            try:
                self.store.delete(task_id, if_state_in=FINISHED_STATES)
            except StateConflict:
                raise IllegalTransition("Cancel the download before removing it from the list"
                                        ) from None
            self._live.pop(task_id, None)
        self._emit("removed", [task_id])

    def clear_finished(self) -> int:
        """Forget every completed, failed and cancelled task (one transaction, however long
        the history); returns how many."""
        with self._lock:
            removed = self.store.delete_finished()
            for task_id in removed:
                self._live.pop(task_id, None)
        if removed:
            self._emit("removed", list(removed))  # one event: a list drops them in ranges
        return len(removed)

    def pause(self) -> None:
        """Stop after the current chunk (keeping the ``.part``); start nothing new."""
        with self._lock:
            if self._paused:
                return
            self._paused = True
            self._stop_running("pause")
        self.store.set_paused(True)
        self._emit("paused", True)

    def resume(self) -> None:
        with self._lock:
            if not self._paused:
                return
            self._paused = False
        self.store.set_paused(False)
        self._emit("paused", False)

    def interrupt(self) -> None:
        """Stop the running download for shutdown; it stays queued and resumes next time."""
        with self._lock:
            self._stop_running("interrupt")

    def _stop_running(self, reason: str) -> None:
        if self._running is not None and self._running.reason is None:
            self._running.reason = reason
            self._running.stop.set()

    def _transition(self, task_id: TaskId, state: str, *, owned: bool = False,
                    **fields: Any) -> TaskRecord:
        """Move the task to ``state`` if that is legal from its state *in the database now*.

        A ``downloading`` task is only changed by the holder of its lock (``owned``): the
        task may have been taken by another process since the caller last looked.
        """
        allowed = [source for source, targets in TRANSITIONS.items()
                   if state in targets and (owned or source != DOWNLOADING)]
        try:
            return self.store.transition(task_id, state, allowed, **fields)
        except StateConflict as exc:
            raise self._refusal(task_id, exc.current, state) from None

    def _refusal(self, task_id: TaskId, current: TaskRecord | None, wanted: str) -> CivdeskError:
        """Why the task (as it is now) can't become ``wanted``, in words."""
        if current is None:
            return UnknownTask(task_id)
        if current.state == COMPLETED and wanted == "retried":
            return IllegalTransition("This download already completed; nothing to retry")
        if current.state == DOWNLOADING and not self._is_running(task_id):
            return DownloadingElsewhere.of_task(current)
        action = {"retried": "be retried", "changed": "be changed"}.get(wanted, f"become {wanted}")
        return IllegalTransition(f"Download #{task_id} is {current.state}; it cannot {action}")

    def _finish(self, running: _Running, state: str, **fields: Any) -> TaskRecord:
        """Record how our download ended (we hold its lock, so the row should still say
        downloading; if an older civdesk changed it anyway, keep that and don't crash)."""
        try:
            return self.store.transition(running.task_id, state, (DOWNLOADING,),
                                         owner_pid=None, owner_host=None, **fields)
        except StateConflict as exc:
            log.warning("Download #%d was changed by another process while it ran (now %s)",
                        running.task_id, exc.current.state if exc.current else "removed")
            if exc.current is not None:
                return exc.current
            base = running.record or self._get(running.task_id)
            return dataclasses.replace(base, state=state, owner_pid=None, owner_host=None,
                                       **fields)

    def recover_stale(self) -> list[TaskId]:
        """Put back in line the ``downloading`` tasks whose process is gone; their ids.

        A task is stale when its lock can be taken: the process that held it ended (the
        system releases the lock of a crashed or killed process). A task whose lock is held
        belongs to a live process (another civdesk, or this queue) and is left alone.
        """
        recovered: list[TaskId] = []
        for record in self.store.downloading():
            if self._is_running(record.id):
                continue
            lock = ProcessLock.try_acquire(self.locks.task(record.id), self.owner)
            if lock is None:
                continue
            with lock:
                try:
                    record = self.store.transition(
                        record.id, QUEUED, (DOWNLOADING,), owner_pid=None, owner_host=None,
                        bytes_done=self._part_size(record),
                    )  # fmt: skip
                except StateConflict:
                    continue  # it ended between our read and our lock
            log.info("Download #%d was left unfinished by process %s; back in the queue",
                     record.id, record.owner_pid)
            recovered.append(record.id)
            self._emit("changed", self._snapshot(record))
        return recovered

    # -- running --------------------------------------------------------------------------

    def run_until_empty(self) -> int:
        """Run queued tasks until none is left (or the queue is paused); how many ran."""
        count = 0
        while self.run_next() is not None:
            count += 1
        self._emit("idle", None)
        return count

    def run_next(self, task_id: TaskId | None = None) -> TaskSnapshot | None:
        """Run the first queued task (or the queued task ``task_id``) to its end.

        None when paused (a ``task_id`` still runs) or when there is nothing this queue may
        run: tasks other processes are downloading are skipped, and ``task_id`` in a finished
        state runs nothing (read its state with :meth:`task`). A ``task_id`` another live
        process is downloading raises :class:`DownloadingElsewhere`.
        """
        self.recover_stale()  # a process that died since the last look leaves its task
        with self._lock:
            if self._paused and task_id is None:
                return None
            running = self._claim_first() if task_id is None else self._claim(task_id)
            if running is None:
                return None
            record = running.record
            assert record is not None
        self._emit("changed", self._snapshot(record))
        try:
            if self.before_task is not None:
                self.before_task()
            final = self._run(running)
        finally:
            with self._lock:
                self._running = None
                live = self._live.get(running.task_id)
                if live is not None:
                    live.speed, live.eta = 0.0, None
            # Only now: the final state is in the row before anyone else may take the task.
            running.release_locks()
        snapshot = self._snapshot(final)
        self._emit("finished" if final.state in FINISHED_STATES else "changed", snapshot)
        return snapshot

    def _claim_first(self) -> _Running | None:
        for record in self.store.queued():
            running = self._try_claim(record.id)
            if running is not None:
                return running
        return None

    def _claim(self, task_id: TaskId) -> _Running | None:
        """Take this task (waiting a moment for a queue that is only looking at it)."""
        record = self._get(task_id)
        if record.state == DOWNLOADING:
            raise DownloadingElsewhere.of_task(record)
        if record.state != QUEUED:
            return None
        lock_path = self.locks.task(task_id)
        lock = ProcessLock.acquire(lock_path, self.owner, timeout=CLAIM_WAIT)
        if lock is None:
            record = self._get(task_id)
            if record.state == DOWNLOADING:
                raise DownloadingElsewhere.of_task(record)
            raise DownloadingElsewhere(record.file_name or f"Download #{task_id}",
                                       read_owner(lock_path))
        running = self._take(task_id, lock)
        if running is None:
            record = self._get(task_id)
            if record.state == DOWNLOADING:
                raise DownloadingElsewhere.of_task(record)
        return running

    def _try_claim(self, task_id: TaskId) -> _Running | None:
        lock = ProcessLock.try_acquire(self.locks.task(task_id), self.owner)
        return None if lock is None else self._take(task_id, lock)

    def _take(self, task_id: TaskId, lock: ProcessLock) -> _Running | None:
        """With the task's lock held: queued → downloading, owned by this process."""
        try:
            record = self.store.transition(
                task_id, DOWNLOADING, (QUEUED,), started_at=now(), error=None,
                error_kind=None, finished_at=None, owner_pid=self.owner.pid,
                owner_host=self.owner.host,
            )  # fmt: skip
        except StateConflict:
            lock.release()  # taken and maybe finished by another process meanwhile
            return None
        except BaseException:
            lock.release()
            raise
        running = _Running(task_id, lock, record=record)
        self._running = running
        self._live[task_id] = _Live()
        return running

    def _run(self, running: _Running) -> TaskRecord:
        """Download one task and record how it ended; never raises for a task's failure."""
        task_id = running.task_id
        try:
            result, version, file = self._download(running)
        except Cancelled:
            return self._stopped(running)
        except CivdeskError as exc:
            return self._failed(running, exc)
        except Exception as exc:  # a bug, but the queue must go on with the next task
            log.exception("Download #%d failed unexpectedly", task_id)
            return self._failed(running, exc, f"Unexpected error: {exc}")
        if self.post_download is not None:
            try:
                self.post_download(result, version, file)
            except Exception:
                # The verified file is in place; the library/companions can catch up on scan.
                log.exception("Registering %s in the library failed", result.path)
        with self._lock:
            return self._finish(
                running, COMPLETED, dest_path=str(result.path), part_path=None,
                bytes_done=result.size, bytes_total=result.size, finished_at=now(),
                error=None, error_kind=None, already_present=result.already_present,
                checked=result.checked,
            )  # fmt: skip

    def _stopped(self, running: _Running) -> TaskRecord:
        with self._lock:
            record = self._get(running.task_id)
            if running.reason == "cancel":
                self._delete_part(record)
                return self._finish(running, CANCELLED, finished_at=now(),
                                    error="Cancelled", error_kind="cancelled")
            # Paused or interrupted: back in line, the .part kept for a Range resume.
            return self._finish(running, QUEUED, bytes_done=self._part_size(record))

    def _failed(self, running: _Running, exc: BaseException,
                message: str | None = None) -> TaskRecord:
        kind = error_kind(exc)
        with self._lock:
            live = self._live.setdefault(running.task_id, _Live())
            live.deadline = getattr(exc, "deadline", None)
            live.retry_after = getattr(exc, "retry_after", None)
            record = self._get(running.task_id)
            part: dict[str, Any] = {"bytes_done": self._part_size(record)}
            if isinstance(exc, PartInUse):
                exc = self._part_holder(exc, running.task_id)
            if isinstance(exc, (DownloadingElsewhere, PartInUse)):
                # The .part is another task's: never point at it (a cancel would delete it).
                part = {"bytes_done": 0, "part_path": None}
            return self._finish(running, FAILED, finished_at=now(), error_kind=kind,
                                error=redact(message or str(exc)), **part)

    def _part_holder(self, exc: PartInUse, task_id: TaskId) -> CivdeskError:
        """Who writes the locked ``.part``: a task of this queue's database names its civdesk;
        another data folder's is only "another program"."""
        for other in self.store.downloading():
            if other.id != task_id and other.part_path == exc.part:
                return DownloadingElsewhere.of_task(other)
        return exc

    @staticmethod
    def _part_size(record: TaskRecord) -> int:
        if not record.part_path:
            return 0
        try:
            return os.stat(os_path(record.part_path)).st_size
        except OSError:
            return 0

    def _download(self, running: _Running) -> tuple[DownloadResult, ModelVersion, ModelFile]:
        record = self._get(running.task_id)
        try:
            return self._download_version(running, record)
        except Archived:
            # A 410, or a version of an archived model listing no files: the library keeps
            # what it has of the model and shows it as removed.
            self.removals.archived(record.version_id)
            raise

    def _download_version(self, running: _Running, record: TaskRecord
                          ) -> tuple[DownloadResult, ModelVersion, ModelFile]:
        task_id = running.task_id
        with self.removals.watching(record.version_id, getattr(self.client, "base_url", "")):
            version = (self._at_hand.pop(record.version_id, None)
                       or self.client.get_version(record.version_id))
        file = _pick_file(version, record.file_id)
        details = self._details_of(version, file)
        # No folder of its own yet: the type's folder, where a copy the library already
        # holds anywhere would only be a duplicate. A folder given with the task (or kept
        # from an earlier attempt, whose .part it resumes) gets the download it asked for.
        held = self._held_in_library(file) if record.dest_dir is None else None
        dest = self._destination(record, folder_type(details["model_type"], file.type))
        record = self.store.update(task_id, dest_dir=str(dest), **details)
        running.record = record
        self._emit("changed", self._snapshot(record))
        if held is not None:
            log.info("Download #%d: %s is already in the library", task_id, held.path)
            return held, version, file
        if file.danger and not record.allow_flagged:
            raise FlaggedByCivitai(file.danger)
        check_download_folder(dest, self.library)  # never a type folder in an empty mount
        self._check_stop(running)
        attempt = 0
        while True:
            try:
                result = self.downloader.download(
                    version.id, file.id, dest,
                    expected_sha256=file.sha256,
                    progress=lambda p: self._progress(running, p),
                    cancel=running.stop,
                    part_path=record.part_path,
                    file_name=file.name,
                    expected_size=file.size_bytes or None,
                    on_part=lambda path: self._remember_part(running, path),
                )  # fmt: skip
                return result, version, file
            except RateLimited as exc:
                attempt += 1
                if attempt > self.rate_limit_retries:
                    raise
                self._wait_out(running, exc, attempt)
                record = self._get(task_id)

    def _held_in_library(self, file: ModelFile) -> DownloadResult | None:
        """The file on disk the library knows holds ``file``'s bytes, or None.

        Trusted without reading it when its size and times are those it was hashed with,
        as a rescan trusts it; a changed or vanished one does not count.
        """
        known = self.library.unchanged_file(file.sha256) if file.sha256 else None
        if known is None or not file.sha256:
            return None
        return DownloadResult(Path(known.path), file.sha256.upper(), known.size,
                              already_present=True)

    def _wait_out(self, running: _Running, exc: RateLimited, attempt: int) -> None:
        """Wait what Civitai asked (bounded) before trying again; a stop cuts it short."""
        wait = exc.retry_after if exc.retry_after is not None else 5.0 * 2 ** (attempt - 1)
        wait = min(wait, self.max_rate_limit_wait)
        with self._lock:
            self._live.setdefault(running.task_id, _Live()).retry_after = wait
            record = self.store.update(
                running.task_id, error_kind="rate_limited",
                error=f"Civitai is rate limiting requests; retrying in {wait:.0f} s",
            )  # fmt: skip
        self._emit("changed", self._snapshot(record))
        log.info("Download #%d rate limited; retrying in %.1f s", running.task_id, wait)
        if running.stop.wait(wait):
            raise Cancelled("Download")
        with self._lock:
            self._live[running.task_id].retry_after = None
            record = self.store.update(running.task_id, error=None, error_kind=None)
        self._emit("changed", self._snapshot(record))

    def _check_stop(self, running: _Running) -> None:
        if running.stop.is_set():
            raise Cancelled("Download")

    def _remember_part(self, running: _Running, path: Path) -> None:
        """The downloader names the ``.part`` (then locks it) before writing to it."""
        running.record = self.store.update(running.task_id, part_path=str(path))

    def _delete_part(self, record: TaskRecord) -> None:
        """Delete the task's ``.part``, unless a download (any process's) is writing it."""
        if not record.part_path:
            return
        part = Path(record.part_path)
        try:
            lock = PartLock.try_acquire(part, create=False)
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("Could not delete %s: %s", part, exc)
            return
        if lock is None:
            log.info("Kept %s: another download is writing it", part)
            return
        lock.delete()

    def _progress(self, running: _Running, progress: DownloadProgress) -> None:
        record = running.record
        if record is None:
            return
        live = self._live.setdefault(running.task_id, _Live())
        live.speed, live.eta = progress.speed, progress.eta
        record = dataclasses.replace(record, bytes_done=progress.bytes_done,
                                     bytes_total=progress.bytes_total or record.bytes_total)
        running.record = record
        clock = time.monotonic()
        if clock - running.last_saved >= self.save_interval:
            # Persist now and then: after a crash the list shows roughly where it was.
            running.last_saved = clock
            self.store.update(running.task_id, bytes_done=record.bytes_done,
                              bytes_total=record.bytes_total)
        self._emit("progress", self._snapshot(record))

    def _details_of(self, version: ModelVersion, file: ModelFile) -> dict[str, Any]:
        model = version.model
        return {
            "model_id": version.model_id,
            "model_name": model.name if model else None,
            "version_name": version.name or None,
            "model_type": model.type if model else None,
            "file_id": file.id,
            "file_name": file.name,
            "expected_sha256": file.sha256,
            "bytes_total": file.size_bytes or None,
        }

    def _destination(self, record: TaskRecord, model_type: str | None) -> Path:
        if record.dest_dir:
            return Path(record.dest_dir)
        if self.settings is None:
            raise CivdeskError("No download folder: choose one in Settings")
        from civdesk.core.placement import download_folder

        return download_folder(self.settings, self.library, model_type or "Other")


#: Civitai file types that belong in another type's folder than their model's: the VAE a
#: checkpoint's page offers is read from the VAE folder, by A1111 and ComfyUI alike.
FILE_TYPE_FOLDERS = {"VAE": "VAE"}


def folder_type(model_type: str | None, file_type: str | None) -> str:
    """The model type whose folder a file of a version goes to (see :data:`FILE_TYPE_FOLDERS`)."""
    return FILE_TYPE_FOLDERS.get(file_type or "") or model_type or "Other"


def _pick_file(version: ModelVersion, file_id: int | None) -> ModelFile:
    file = version.file_by_id(file_id) if file_id is not None else version.primary_file
    if file is None and version.model is not None and is_removed_mode(version.model.mode):
        # Civitai lists no files for a removed model: say why, not just "not found".
        how = "taken down" if version.model.mode == "TakenDown" else "archived"
        raise Archived(f"This model was {how} on Civitai and can no longer be downloaded")
    if file is None:
        what = f"File {file_id}" if file_id is not None else "A downloadable file"
        raise NotFound(f"{what} of model version {version.id} not found on Civitai "
                       "(removed or never published)")
    return file

