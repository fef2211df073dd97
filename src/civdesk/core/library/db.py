"""The library database: one SQLite file, shared by several threads.

Scanner workers, the download worker and the GUI's reader threads all use it at once, so:

* WAL journal: readers never block the writer, nor the writer the readers;
* a busy timeout: a second writer waits for the first instead of failing at once;
* write sessions start with ``BEGIN IMMEDIATE``: a transaction that read first and then
  tries to write could otherwise deadlock against another writer and fail with
  "database is locked" whatever the timeout; read sessions use a plain deferred ``BEGIN``;
* one session per thread: :meth:`Database.session` is a context manager that commits on
  success and rolls back on error; nested calls in the same thread join the outer session.

Opening looks at the file read-only first: one that is not SQLite, or a SQLite database
that is not a civdesk library, is refused and never touched (not even switched to WAL); an
empty (0-byte) file stands for a new library only when no backup says there was one. It then
brings an older database up to the current schema (see ``migrations.py``) after a backup,
and takes the daily backup (see ``backups.py``). Every SQLite error, at opening or in a
session, reaches the caller as the :class:`DatabaseProblem` that explains it (``health.py``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session, sessionmaker

from civdesk.core.library.backups import Backups, DatabaseUse
from civdesk.core.library.health import (
    SQLITE_MAGIC,
    CorruptDatabase,
    DatabaseProblem,
    ForeignDatabase,
    MigrationFailed,
    NewerDatabase,
    explain,
    read_only_connection,
)
from civdesk.core.library.migrations import MIGRATIONS, Migration, check_steps
from civdesk.core.library.tables import Base

__all__ = ["CorruptDatabase", "Database", "DatabaseProblem", "ForeignDatabase",
           "MigrationFailed", "NewerDatabase"]

log = logging.getLogger(__name__)

#: Tables every civdesk library has had since schema v1: how a library is told from another
#: program's database.
_LIBRARY_TABLES = frozenset({"local_files", "download_tasks", "settings"})
_READ_ONLY = "civdesk_read_only"  # execution option: begin a deferred (reading) transaction


class Database:
    """An open library database. Create with :meth:`open`; share one instance across threads."""

    def __init__(self, engine: Engine, path: Path, schema_version: int,
                 use: DatabaseUse | None = None) -> None:
        self._engine = engine
        self._use = use
        self._path = path
        self._schema_version = schema_version
        self._sessions = sessionmaker(bind=engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(
            bind=engine.execution_options(**{_READ_ONLY: True}), expire_on_commit=False
        )
        self._local = threading.local()

    # ----------------------------------------------------------------------------- opening

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        busy_timeout: float = 30.0,
        migrations: Sequence[Migration] = MIGRATIONS,
    ) -> Database:
        """Open (creating or upgrading as needed) the database at ``path``.

        Raises a :class:`DatabaseProblem` that says what is wrong (:class:`CorruptDatabase`,
        :class:`NewerDatabase`, :class:`MigrationFailed`, a full disk, a lock...); the
        user's file is never deleted or rewritten in any of those cases.
        ``migrations`` is for tests of the migration machinery.
        """
        path = Path(path).expanduser().absolute()
        target = check_steps(migrations)
        existing = _inspect(path, busy_timeout)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseProblem(
                f"Cannot create the folder {path.parent}: {exc.strerror}"
            ) from exc
        use = DatabaseUse(path)  # before the first write: a restore must not swap the file
        engine = _create_engine(path, busy_timeout)
        try:
            version = _upgrade(engine, path, migrations, target)
            if existing:
                _daily_backup(engine, path)
        except BaseException:
            engine.dispose()
            use.release()
            raise
        return cls(engine, path, version, use)

    @property
    def path(self) -> Path:
        return self._path

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def schema_version(self) -> int:
        return self._schema_version

    def close(self) -> None:
        """Close every pooled connection (open sessions finish on their own connections)."""
        self._engine.dispose()
        if self._use is not None:
            self._use.release()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Database({str(self._path)!r}, schema v{self._schema_version})"

    # ---------------------------------------------------------------------------- sessions

    @contextlib.contextmanager
    def session(self, *, write: bool = True) -> Iterator[Session]:
        """This thread's session: committed when the block succeeds, rolled back if it raises.

        ``write=False`` starts a deferred transaction that never waits for a writer; use it
        for pure reads. A nested call in the same thread returns the outer session and
        leaves committing to the outermost block.
        """
        current: Session | None = getattr(self._local, "session", None)
        if current is not None:
            yield current
            return
        factory = self._sessions if write else self._read_sessions
        session = factory()
        self._local.session = session
        try:
            yield session
            session.commit()
        except (sa_exc.OperationalError, sa_exc.DatabaseError) as exc:
            # A lock, a full disk, a failing drive, damage: said as what it is. Constraint
            # and programming errors are the caller's (and bugs) and stay as they are.
            problem = _explain(exc, self._path) if _is_sqlite_trouble(exc) else None
            _rollback(session, quietly=problem is not None)
            if problem is not None:
                raise problem from exc
            raise
        except BaseException:
            session.rollback()
            raise
        finally:
            self._local.session = None
            session.close()


def _inspect(path: Path, busy_timeout: float) -> bool:
    """Refuse what must not be opened as a library, reading only; whether a library exists.

    Runs before SQLite writes anything (a -wal, the WAL flag in the header), so a file
    that is not ours stays byte for byte as it was.
    """
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            header = f.read(len(SQLITE_MAGIC))
    except FileNotFoundError:
        return False
    except IsADirectoryError as exc:
        raise DatabaseProblem(f"The library database path {path} is a folder, not a file; "
                              "move it aside or choose another data folder") from exc
    except OSError as exc:
        raise DatabaseProblem(f"Cannot read the library database {path}: {exc.strerror}; "
                              "check its permissions and that its drive is connected") from exc
    if size == 0:
        return _empty_file(path)
    if header != SQLITE_MAGIC:
        raise CorruptDatabase(
            f"{path} is not a SQLite database; it was left untouched — move it aside, "
            "restore a backup with `civdesk db restore`, or choose another data folder")
    try:
        with contextlib.closing(read_only_connection(path, busy_timeout)) as conn:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            tables = {row[0] for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%'")}
    except sqlite3.Error as exc:
        raise explain(exc, path, doing="open") from exc
    if (tables or version) and not tables >= _LIBRARY_TABLES:
        raise _foreign(path)
    return bool(tables)


def _empty_file(path: Path) -> bool:
    """A 0-byte file is what SQLite leaves when it created a file and wrote nothing, so it
    may start a library, unless there was one: backups of it, or a WAL beside it."""
    wal = path.with_name(path.name + "-wal")
    if Backups(path).all() or (wal.exists() and wal.stat().st_size > 0):
        raise CorruptDatabase(
            f"The library database {path} is an empty file (0 bytes), though this library "
            "had content; it was left untouched — `civdesk db restore` brings back the newest "
            "backup (or move the empty file aside to start a new library)")
    log.warning("The library database %s was an empty file; a new library starts in it", path)
    return False


def _foreign(path: Path) -> ForeignDatabase:
    return ForeignDatabase(
        f"{path} is a SQLite database but not a civdesk library; it was left untouched — "
        "choose another data folder (--data-dir)")


def _create_engine(path: Path, busy_timeout: float) -> Engine:
    engine = create_engine(
        f"sqlite+pysqlite:///{path}",
        connect_args={"timeout": busy_timeout, "check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN, so we choose its kind (see module doc).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            # Statement journals and sorts in memory: in files under /var/tmp, a first scan
            # of 3,000 files wrote 38,000 pages to them (strace), besides the WAL.
            cursor.execute("PRAGMA temp_store=MEMORY")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        read_only = connection.get_execution_options().get(_READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def _upgrade(engine: Engine, path: Path, steps: Sequence[Migration], target: int) -> int:
    """Create or migrate the schema; return the version the database is at afterwards."""
    try:
        with engine.connect() as conn:
            version = int(conn.exec_driver_sql("PRAGMA user_version").scalar_one())
            tables = conn.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            ).scalars().all()
    except sa_exc.DBAPIError as exc:
        raise _explain(exc, path, doing="open") from exc

    if version == target:
        return version
    if version > target:
        raise NewerDatabase(
            f"The library database {path.name} is from a newer civdesk (schema v{version}, "
            f"this release knows v{target}); update civdesk"
        )
    if version == 0:
        if tables:
            raise _foreign(path)
        try:
            with engine.begin() as conn:
                Base.metadata.create_all(conn)
                conn.exec_driver_sql(f"PRAGMA user_version = {target}")
        except sa_exc.DBAPIError as exc:
            raise _explain(exc, path, doing="create") from exc
        log.info("Created library database %s (schema v%d)", path, target)
        return target

    if not set(tables) >= _LIBRARY_TABLES:
        raise _foreign(path)
    backup = Backups(path).take(f"before-v{target}")
    pending = [step for step in steps if step.version > version]
    try:
        with engine.begin() as conn:
            for step in pending:
                log.info("Upgrading %s to schema v%d: %s", path.name, step.version,
                         step.description)
                step.apply(conn)
            conn.exec_driver_sql(f"PRAGMA user_version = {target}")
    except Exception as exc:
        raise MigrationFailed(
            f"Could not upgrade the library database from schema v{version} to v{target} "
            f"({exc}); it was left as it was, and a copy is in {backup}"
        ) from exc
    return target


def _daily_backup(engine: Engine, path: Path) -> None:
    try:
        with engine.connect() as conn:
            raw = conn.connection.driver_connection
            assert isinstance(raw, sqlite3.Connection)
            Backups(path).take_daily(raw)
    except sa_exc.DBAPIError as exc:
        log.warning("No daily backup: %s", _explain(exc, path, doing="back up"))


def _is_sqlite_trouble(exc: sa_exc.DBAPIError) -> bool:
    return type(exc) in (sa_exc.OperationalError, sa_exc.DatabaseError) and isinstance(
        exc.orig, sqlite3.Error)


def _explain(exc: sa_exc.DBAPIError, path: Path, doing: str = "use") -> DatabaseProblem:
    if isinstance(exc.orig, sqlite3.Error):
        return explain(exc.orig, path, doing=doing)
    return DatabaseProblem(f"Could not {doing} the library database {path} "
                           f"({str(exc).splitlines()[0]})")


def _rollback(session: Session, *, quietly: bool) -> None:
    try:
        session.rollback()
    except Exception:
        if not quietly:
            raise
        # The error being reported says more than a rollback that failed after it.
        log.warning("Rolling back after a database error failed", exc_info=True)
