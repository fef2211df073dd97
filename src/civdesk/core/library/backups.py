"""Rolling copies of the library database, and putting one back.

Copies are taken with SQLite's online backup API (consistent even while other connections
write, and including what is still in the WAL) into ``backups/`` beside the database:
before every schema upgrade, and once a day when civdesk opens a library that passes its
quick check (a copy of a damaged file would push a good one out). The newest
:data:`KEEP` are kept. A restore first moves the current file (and its WAL) into
``backups/`` too, under a ``-replaced`` name that is never pruned, so nothing is lost.

Each process that has the database open holds a ``locks/database/user-*.lock``; a restore
holds ``locks/database/restore.lock`` and refuses while any user lock is held, and opening
refuses while the restore lock is held, so a file is never swapped under a running civdesk.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import re
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from civdesk.core.downloads.locks import Owner, ProcessLock, is_held, read_owner
from civdesk.core.library.health import (
    DatabaseInUse,
    DatabaseProblem,
    damaged,
    explain,
    integrity_problems,
    read_only_connection,
)

log = logging.getLogger(__name__)

#: Backups kept (the ``-replaced`` files a restore sets aside are never deleted).
KEEP = 5
DAILY = timedelta(days=1)
FOLDER = "backups"
_STAMP = "%Y%m%d-%H%M%S"
_NAME = re.compile(r"^(?P<stem>.+)-(?P<stamp>\d{8}-\d{6})-(?P<reason>[a-z0-9-]+?)"
                   r"(?:-(?P<n>\d+))?\.sqlite3$")
_REPLACED = "replaced"
#: Beside the download locks, in a folder of their own (they are held as long as a library
#: is open, and the download tests look for leftover locks).
LOCKS = Path("locks", "database")
_RESTORE_LOCK = "restore.lock"
_USER_LOCKS = "user-*.lock"
_SIDE_FILES = ("-wal", "-shm")
_counter = itertools.count()


@dataclass(frozen=True)
class Backup:
    path: Path
    taken: datetime
    reason: str

    @property
    def name(self) -> str:
        return self.path.name


class Backups:
    """The backups of the database at ``database``."""

    def __init__(self, database: Path, *, keep: int = KEEP) -> None:
        self.database = database
        self.folder = database.parent / FOLDER
        self.locks = database.parent / LOCKS
        self.keep = keep

    # ----------------------------------------------------------------------------- listing

    def all(self) -> list[Backup]:
        """Every backup of this database, newest first."""
        return [backup for backup, _ in self._numbered()]

    def _numbered(self) -> list[tuple[Backup, int]]:
        """The backups with their number within their second, newest first."""
        found: list[tuple[Backup, int]] = []
        stem = self.database.stem
        with contextlib.suppress(FileNotFoundError):
            for path in self.folder.iterdir():
                match = _NAME.match(path.name)
                if not match or match["stem"] != stem or not path.is_file():
                    continue
                taken = datetime.strptime(match["stamp"], _STAMP).replace(tzinfo=UTC)
                found.append((Backup(path, taken, match["reason"]), int(match["n"] or 1)))
        found.sort(key=lambda item: (item[0].taken, item[1]), reverse=True)
        return found

    def find(self, name: str) -> Backup:
        """The backup called ``name`` ("newest" for the newest); DatabaseProblem if none."""
        backups = self.all()
        if name == "newest":
            taken = [b for b in backups if b.reason != _REPLACED]
            if not taken:
                raise DatabaseProblem(f"There is no backup of the library in {self.folder}")
            return taken[0]
        for backup in backups:
            if backup.name == name or str(backup.path) == name:
                return backup
        raise DatabaseProblem(f"No backup called {name!r} in {self.folder}; "
                              "`civdesk db restore` lists them")

    # ------------------------------------------------------------------------------ taking

    def take(self, reason: str, source: sqlite3.Connection | None = None) -> Path:
        """Copy the database into a new backup; prune the oldest. The backup's path.

        ``source`` is a connection to read from (else one is opened). Raises
        :class:`DatabaseProblem` (the disk full, the folder read-only...).
        """
        now = datetime.now(UTC)
        target = self._new_name(now, reason)
        partial = target.with_name(target.name + ".partial")
        try:
            self.folder.mkdir(exist_ok=True)
            with contextlib.ExitStack() as stack:
                src = source or stack.enter_context(
                    contextlib.closing(sqlite3.connect(self.database, timeout=30)))
                dst = stack.enter_context(contextlib.closing(sqlite3.connect(partial)))
                _copy(src, dst)
            os.replace(partial, target)
        except sqlite3.Error as exc:
            _remove(partial)
            raise explain(exc, self.database, doing="write a backup of") from exc
        except OSError as exc:
            _remove(partial)
            raise DatabaseProblem(f"Could not write a backup of the library to {self.folder} "
                                  f"({exc.strerror or exc})") from exc
        log.info("Backed up %s to %s", self.database.name, target)
        self.prune()
        return target

    def take_daily(self, source: sqlite3.Connection) -> Path | None:
        """A backup when the newest is a day old or more (and the file checks intact)."""
        now = datetime.now(UTC)
        if any(b.reason != _REPLACED and now - b.taken < DAILY for b in self.all()):
            return None
        try:
            problems = [str(r[0]) for r in source.execute("PRAGMA quick_check")]
        except sqlite3.DatabaseError as exc:
            problems = [str(exc)]
        if problems != ["ok"]:
            log.warning("%s", damaged(self.database, problems))
            return None
        try:
            return self.take("daily", source)
        except DatabaseProblem as exc:  # a missed daily copy must not stop the library
            log.warning("No daily backup: %s", exc)
            return None

    def prune(self) -> None:
        kept = [b for b in self.all() if b.reason != _REPLACED]
        for old in kept[self.keep:]:
            for suffix in ("", *_SIDE_FILES):
                _remove(old.path.with_name(old.name + suffix))

    def _new_name(self, now: datetime, reason: str) -> Path:
        """A name that sorts after every backup taken in the same second."""
        stamp = now.replace(microsecond=0)
        n = 1 + max((n for b, n in self._numbered() if b.taken == stamp), default=0)
        base = f"{self.database.stem}-{stamp.strftime(_STAMP)}-{reason}"
        return self.folder / (f"{base}.sqlite3" if n == 1 else f"{base}-{n}.sqlite3")

    # --------------------------------------------------------------------------- restoring

    def restore(self, backup: Backup) -> Path:
        """Put ``backup`` in place of the database; where the current file went (if any).

        Refuses while any civdesk (or another program) has the database open, and when
        the backup itself fails its integrity check.
        """
        problems = integrity_problems(backup.path)
        if problems:
            raise damaged(backup.path, problems)
        with self._restore_lock():
            self._check_unused()
            aside = self._move_current_aside()
            partial = self.database.with_name(self.database.name + ".restoring")
            try:
                with contextlib.closing(read_only_connection(backup.path, 5)) as src, \
                        contextlib.closing(sqlite3.connect(partial)) as dst:
                    _copy(src, dst)
                os.replace(partial, self.database)
            except (sqlite3.Error, OSError) as exc:
                _remove(partial)
                if aside is not None:  # put the current file back as it was
                    self._move_back(aside)
                if isinstance(exc, sqlite3.Error):
                    raise explain(exc, self.database, doing="restore") from exc
                raise DatabaseProblem(f"Could not restore {backup.name} "
                                      f"({exc.strerror or exc})") from exc
        log.info("Restored %s from %s (the previous file is %s)", self.database, backup.path,
                 aside)
        return aside if aside is not None else self.database

    @contextlib.contextmanager
    def _restore_lock(self):  # type: ignore[no-untyped-def]
        lock = ProcessLock.try_acquire(self.locks / _RESTORE_LOCK, Owner.this_process())
        if lock is None:
            raise DatabaseInUse("Another civdesk is restoring the library database right now")
        with lock:
            yield

    def _check_unused(self) -> None:
        for path in sorted(self.locks.glob(_USER_LOCKS)):
            if is_held(path):
                owner = read_owner(path)
                who = f" (civdesk {owner.describe()})" if owner else ""
                raise DatabaseInUse(
                    f"The library database {self.database} is in use by another civdesk{who}; "
                    "quit it, then restore")
        if not self.database.exists():
            return
        # Another program holding a lock. Read-only: a writing connection would checkpoint
        # the WAL into a damaged file on closing, and that file is to be kept as it is.
        try:
            with contextlib.closing(read_only_connection(self.database, 0.1)) as conn:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error as exc:
            problem = explain(exc, self.database, doing="restore")
            if isinstance(problem, DatabaseInUse):
                raise problem from exc
            # A damaged file is why one restores: it is set aside, whatever SQLite thinks.

    def _move_current_aside(self) -> Path | None:
        if not self.database.exists():
            return None
        self.folder.mkdir(exist_ok=True)
        aside = self._new_name(datetime.now(UTC), _REPLACED)
        os.replace(self.database, aside)
        for suffix in _SIDE_FILES:
            side = self.database.with_name(self.database.name + suffix)
            if side.exists():
                os.replace(side, aside.with_name(aside.name + suffix))
        return aside

    def _move_back(self, aside: Path) -> None:
        os.replace(aside, self.database)
        for suffix in _SIDE_FILES:
            side = aside.with_name(aside.name + suffix)
            if side.exists():
                os.replace(side, self.database.with_name(self.database.name + suffix))


class DatabaseUse:
    """This process's claim on the database, which a restore waits for (see module doc)."""

    def __init__(self, database: Path) -> None:
        locks = database.parent / LOCKS
        name = f"user-{os.getpid()}-{next(_counter)}.lock"
        self._lock: ProcessLock | None = None
        try:
            self._lock = ProcessLock.try_acquire(locks / name, Owner.this_process())
        except OSError as exc:  # a read-only data folder: nothing can be restored there anyway
            log.info("Could not mark the library database in use: %s", exc)
        if _restoring(locks):
            self.release()
            raise DatabaseInUse(f"The library database {database} is being restored by "
                                "`civdesk db restore`; try again when it has finished")

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None


def _copy(source: sqlite3.Connection, target: sqlite3.Connection) -> None:
    """Every page of ``source`` into ``target``, a file that stands alone: rollback journal
    mode, so reading it later leaves no -wal or -shm beside it."""
    source.backup(target)
    target.execute("PRAGMA journal_mode=DELETE")


def _restoring(locks: Path) -> bool:
    try:
        return is_held(locks / _RESTORE_LOCK)
    except OSError:  # cannot even look (read-only): no restore can run there either
        return False


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
