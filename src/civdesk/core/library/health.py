"""What is wrong with the library database, told apart so the advice fits.

A full disk, a read-only folder, a lock held by another program and a failing drive all
surface from SQLite as errors on a healthy file; telling the user to move such a file aside
would make them throw a good library away. So every SQLite error is explained here
(:func:`explain`): by its result code, then by looking at the disk (free space, write
permission), and the file is called damaged only when ``PRAGMA integrity_check`` says so
(:func:`integrity_problems`) or when it is no SQLite database at all.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

from civdesk.core.errors import CivdeskError, DiskFull

SQLITE_MAGIC = b"SQLite format 3\x00"

#: Below this much free space, a failed write is taken for a full disk.
LOW_SPACE = 1 << 20
#: How many of integrity_check's findings a message quotes.
_SHOWN_PROBLEMS = 3

# SQLite's primary result codes (https://sqlite.org/rescode.html).
_PERM, _BUSY, _LOCKED, _READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _AUTH, _NOTADB = (
    3, 5, 6, 8, 10, 11, 13, 14, 23, 26)


class DatabaseProblem(CivdeskError):
    """The library database cannot be opened, read or written."""


class CorruptDatabase(DatabaseProblem):
    """The file is not a SQLite database, fails its integrity check, or is another program's."""


class ForeignDatabase(CorruptDatabase):
    """A SQLite database that is not a civdesk library (left exactly as it was)."""


class NewerDatabase(DatabaseProblem):
    """The database was written by a newer civdesk whose schema this release doesn't know."""


class MigrationFailed(DatabaseProblem):
    """Upgrading the schema failed; the transaction was rolled back."""


class DatabaseDiskFull(DatabaseProblem, DiskFull):
    """No space left for the database (or its journal) to grow."""


class DatabaseNotWritable(DatabaseProblem):
    """The folder or file is read-only, or belongs to another user."""


class DatabaseInUse(DatabaseProblem):
    """Another program (or another civdesk) holds a lock on the database."""


class DatabaseIOError(DatabaseProblem):
    """The drive failed a read or a write (unplugged, failing, a network share gone)."""


def explain(error: sqlite3.Error, path: Path, *, doing: str = "use") -> DatabaseProblem:
    """The :class:`DatabaseProblem` behind ``error``, raised while trying to ``doing`` the
    database at ``path`` (its message says what the user can do)."""
    code = getattr(error, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    reason = str(error) or type(error).__name__
    folder = path.parent
    if primary == _FULL or (primary in (_IOERR, _CANTOPEN) and _low_space(folder)):
        return DatabaseDiskFull(
            f"The disk holding the library database {path} is full, so civdesk could not "
            f"{doing} it; free some space and try again (the library itself is intact)")
    if primary in (_BUSY, _LOCKED):
        return DatabaseInUse(
            f"The library database {path} is locked by another program; close the program "
            "that has it open (a database browser, a backup or sync tool) and try again")
    if primary in (_READONLY, _PERM, _AUTH, _CANTOPEN) and folder.is_dir() and not _writable(path):
        return DatabaseNotWritable(
            f"civdesk may not write to the library database in {folder} (read-only folder or "
            "file, or another user's); make it writable or choose another data folder with "
            "--data-dir")
    if primary == _CANTOPEN:
        return DatabaseProblem(
            f"Cannot open the library database {path} ({reason}); check that its folder "
            "exists and its drive is connected")
    if primary in (_CORRUPT, _NOTADB):
        problems = integrity_problems(path)
        if problems:
            return damaged(path, problems)
        # SQLite read something wrong, yet the file checks intact: the drive misread it.
        primary = _IOERR
    if primary == _IOERR:
        return DatabaseIOError(
            f"The drive holding the library database {path} reported a read or write error "
            f"({reason}); check that it is connected and healthy, then try again — "
            "`civdesk db check` tells whether the file itself is damaged")
    return DatabaseProblem(f"Could not {doing} the library database {path} ({reason})")


def damaged(path: Path, problems: list[str]) -> CorruptDatabase:
    shown = "; ".join(problems[:_SHOWN_PROBLEMS])
    more = f" and {len(problems) - _SHOWN_PROBLEMS} more" if len(problems) > _SHOWN_PROBLEMS else ""
    return CorruptDatabase(
        f"The library database {path} is damaged (its integrity check found: {shown}{more}); "
        "it was left untouched — `civdesk db restore` brings back the newest backup")


def integrity_problems(path: Path, *, timeout: float = 5.0) -> list[str]:
    """What ``PRAGMA integrity_check`` finds wrong with ``path`` ([] when it is intact).

    A file that is not SQLite is one problem; an error that is no damage (a lock, a
    missing file, a full disk) is raised as the :class:`DatabaseProblem` it is.
    """
    if not has_sqlite_header(path):
        return ["not a SQLite database"]
    try:
        with contextlib.closing(read_only_connection(path, timeout)) as conn:
            rows = [str(row[0]) for row in conn.execute("PRAGMA integrity_check")]
    except sqlite3.DatabaseError as exc:
        code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
        if code in (_CORRUPT, _NOTADB):
            return [str(exc)]
        raise explain_without_check(exc, path) from exc
    return [] if rows == ["ok"] else rows


def explain_without_check(error: sqlite3.Error, path: Path) -> DatabaseProblem:
    """:func:`explain` for an error met while checking (no second check of the check)."""
    code = getattr(error, "sqlite_errorcode", 0) & 0xFF
    if code in (_CORRUPT, _NOTADB):
        return damaged(path, [str(error)])
    return explain(error, path, doing="check")


def read_only_connection(path: Path, timeout: float) -> sqlite3.Connection:
    """A connection that never writes the file (a foreign file stays byte for byte)."""
    return sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, timeout=timeout)


def has_sqlite_header(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC


def _low_space(folder: Path) -> bool:
    try:
        usage = os.statvfs(folder) if hasattr(os, "statvfs") else None
    except OSError:
        return False
    if usage is None:  # pragma: no cover - Windows
        import shutil

        return shutil.disk_usage(folder).free < LOW_SPACE
    return usage.f_bavail * usage.f_frsize < LOW_SPACE


def _writable(path: Path) -> bool:
    """Whether this process may create files in ``path``'s folder and write ``path``."""
    target = path if path.exists() else path.parent
    if not os.access(path.parent, os.W_OK | os.X_OK):
        return False
    return os.access(target, os.W_OK)
