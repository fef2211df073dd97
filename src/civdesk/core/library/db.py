"""The library database: one SQLite file, shared by several threads.

Scanner workers, the download worker and the GUI's reader threads all use it at once, so:

* WAL journal: readers never block the writer, nor the writer the readers;
* a busy timeout: a second writer waits for the first instead of failing at once;
* write sessions start with ``BEGIN IMMEDIATE``: a transaction that read first and then
  tries to write could otherwise deadlock against another writer and fail with
  "database is locked" whatever the timeout; read sessions use a plain deferred ``BEGIN``;
* one session per thread: :meth:`Database.session` is a context manager that commits on
  success and rolls back on error; nested calls in the same thread join the outer session.

Opening brings an older database up to the current schema (see ``migrations.py``), taking a
backup copy ``<name>.bak-v<N>`` first. A file that is not a SQLite database is never touched.
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

from civdesk.core.errors import CivdeskError
from civdesk.core.library.migrations import MIGRATIONS, Migration, check_steps
from civdesk.core.library.tables import Base

log = logging.getLogger(__name__)

SQLITE_MAGIC = b"SQLite format 3\x00"
_READ_ONLY = "civdesk_read_only"  # execution option: begin a deferred (reading) transaction


class DatabaseProblem(CivdeskError):
    """The library database cannot be opened or upgraded."""


class CorruptDatabase(DatabaseProblem):
    """The file is not a SQLite database, is damaged, or belongs to another program."""


class NewerDatabase(DatabaseProblem):
    """The database was written by a newer civdesk whose schema this release doesn't know."""


class MigrationFailed(DatabaseProblem):
    """Upgrading the schema failed; the transaction was rolled back."""


class Database:
    """An open library database. Create with :meth:`open`; share one instance across threads."""

    def __init__(self, engine: Engine, path: Path, schema_version: int) -> None:
        self._engine = engine
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

        Raises :class:`CorruptDatabase`, :class:`NewerDatabase` or :class:`MigrationFailed`;
        the user's file is never deleted or rewritten in any of those cases.
        ``migrations`` is for tests of the migration machinery.
        """
        path = Path(path).expanduser().absolute()
        target = check_steps(migrations)
        _check_is_sqlite(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseProblem(
                f"Cannot create the folder {path.parent}: {exc.strerror}"
            ) from exc
        engine = _create_engine(path, busy_timeout)
        try:
            version = _upgrade(engine, path, migrations, target)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, path, version)

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
        except BaseException:
            session.rollback()
            raise
        finally:
            self._local.session = None
            session.close()


def _check_is_sqlite(path: Path) -> None:
    """Refuse a file that exists but is not SQLite, before SQLite writes a -wal next to it."""
    try:
        with path.open("rb") as f:
            header = f.read(len(SQLITE_MAGIC))
    except FileNotFoundError:
        return
    except IsADirectoryError as exc:
        raise CorruptDatabase(f"The library database path {path} is a folder, not a file") from exc
    except OSError as exc:
        raise DatabaseProblem(f"Cannot read the library database {path}: {exc.strerror}") from exc
    if header and header != SQLITE_MAGIC:
        raise CorruptDatabase(
            f"{path} is not a SQLite database; move it aside (it was left untouched) "
            "or choose another data folder"
        )


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
    except sa_exc.DatabaseError as exc:
        raise CorruptDatabase(
            f"The library database {path} is damaged ({_sqlite_reason(exc)}); it was left "
            "untouched — restore a backup or move it aside to start a new library"
        ) from exc

    if version == target:
        return version
    if version > target:
        raise NewerDatabase(
            f"The library database {path.name} is from a newer civdesk (schema v{version}, "
            f"this release knows v{target}); update civdesk"
        )
    if version == 0:
        if tables:
            raise CorruptDatabase(
                f"{path} is a SQLite database but not a civdesk library; it was left "
                "untouched — choose another data folder"
            )
        with engine.begin() as conn:
            Base.metadata.create_all(conn)
            conn.exec_driver_sql(f"PRAGMA user_version = {target}")
        log.info("Created library database %s (schema v%d)", path, target)
        return target

    backup = _backup(path, version)
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
            f"({exc}); it was left as it was, and a copy is in {backup.name}"
        ) from exc
    return target


def _backup(path: Path, version: int) -> Path:
    """Copy the database (including what is still in its WAL) to ``<name>.bak-v<version>``."""
    backup = path.with_name(f"{path.name}.bak-v{version}")
    try:
        with contextlib.closing(sqlite3.connect(path)) as src, contextlib.closing(
            sqlite3.connect(backup)
        ) as dst:
            src.backup(dst)
    except (sqlite3.Error, OSError) as exc:
        raise DatabaseProblem(
            f"Could not back up the library database to {backup} before upgrading it ({exc}); "
            "nothing was changed — check the free disk space"
        ) from exc
    return backup


def _sqlite_reason(exc: sa_exc.DatabaseError) -> str:
    return str(exc.orig) if exc.orig is not None else str(exc).splitlines()[0]
