"""Which process owns a download: OS advisory locks that die with their process.

A download task is *owned* by the one process that holds its lock; the task row only
records who that is (pid, host) for the user. The lock is the truth because the operating
system releases it when its process ends, however it ends (SIGKILL and power loss
included), so "is this ``downloading`` task stale?" has an exact answer: stale when its
lock can be taken.

Two kinds of lock:

* ``<data>/locks/task-<id>.lock``: held from the moment a queue takes a task until its
  final state is written (a task lives in one data folder, so its lock does too);
* :class:`PartLock`, a lock on the ``.part`` file itself, held while bytes may be written to
  it. It lives with the file, not in a data folder: two civdesk installs with their own
  data folders (a portable copy beside an installed one, two machines sharing a NAS
  library) writing into one folder exclude each other as two tasks of one queue do.

POSIX uses ``flock`` (per open file, so two queues in one process exclude each other as two
processes do); Windows locks one byte with ``msvcrt.locking``. A lock file is deleted on
release *while still held* and a taker checks that the file it locked is still the one at
the path, so deleting never lets two holders in.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
import sys
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from civdesk.core.longpaths import os_path

log = logging.getLogger(__name__)

#: Windows locks are mandatory for the locked bytes: lock one far past the owner text so
#: another process can still read who holds it.
_WINDOWS_LOCK_OFFSET = 1 << 20
#: The byte locked in a ``.part`` there: past any file's end, so writes are never blocked.
_WINDOWS_PART_LOCK_OFFSET = 1 << 62
_BUSY_ERRNOS = {errno.EAGAIN, errno.EACCES, getattr(errno, "EWOULDBLOCK", errno.EAGAIN)}
_MAX_RACES = 20


@dataclass(frozen=True)
class Owner:
    """The process that owns a download."""

    pid: int
    host: str

    @classmethod
    def this_process(cls) -> Owner:
        return cls(os.getpid(), socket.gethostname())

    def describe(self) -> str:
        """``pid 123`` (plus ``on host X`` when that is not this computer)."""
        if self.host and self.host != socket.gethostname():
            return f"pid {self.pid} on {self.host}"
        return f"pid {self.pid}"


class _HeldLock:
    """An open file holding its exclusive OS lock (see :func:`_open_locked`) until
    :meth:`release` or the process ends. Use as a context manager to release it."""

    #: The byte locked on Windows.
    _windows_offset = _WINDOWS_LOCK_OFFSET

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        """Give the lock up; the file stays (idempotent)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        _PLATFORM.unlock(fd, self._windows_offset)
        os.close(fd)

    def _delete(self) -> None:
        """Delete the file, then give the lock up (idempotent)."""
        if self._fd is None:
            return
        if not _PLATFORM.can_delete_open_files:
            # An open file can't be deleted there: unlock, close, then delete if still free.
            self._close()
            _remove_quietly(self.path)
            return
        # Deleted while still held: a process that opened it meanwhile sees the change
        # in is_current and starts over on a fresh file.
        _remove_quietly(self.path)
        self._close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:
        # A lock must never outlive its owner object silently held (a forgotten release).
        if self._fd is not None:
            self.release()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, held={self.held})"


class ProcessLock(_HeldLock):
    """An exclusive lock on a lock file, held until :meth:`release` or the process ends.

    Take one with :meth:`try_acquire` (never waits) or :meth:`acquire` (waits up to a
    timeout).
    """

    @classmethod
    def try_acquire(cls, path: Path, owner: Owner | None = None) -> ProcessLock | None:
        """The lock at ``path`` if nobody holds it, else None. Writes ``owner`` into it."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = _open_locked(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0),
                          _WINDOWS_LOCK_OFFSET)
        if fd is None:
            return None
        lock = cls(path, fd)
        if owner is not None:
            lock._write_owner(owner)
        return lock

    @classmethod
    def acquire(cls, path: Path, owner: Owner | None = None, *, timeout: float,
                poll: float = 0.05) -> ProcessLock | None:
        """Like :meth:`try_acquire`, retrying for up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            lock = cls.try_acquire(path, owner)
            if lock is not None or time.monotonic() >= deadline:
                return lock
            time.sleep(poll)

    def release(self) -> None:
        """Give the lock up and delete its file (idempotent)."""
        self._delete()

    def _write_owner(self, owner: Owner) -> None:
        assert self._fd is not None
        text = json.dumps({"pid": owner.pid, "host": owner.host}).encode()
        try:
            os.ftruncate(self._fd, 0)
            os.lseek(self._fd, 0, os.SEEK_SET)
            os.write(self._fd, text)
        except OSError as exc:  # only informative: the lock itself is what counts
            log.warning("Could not record the owner in %s: %s", self.path, exc)


class PartLock(_HeldLock):
    """An exclusive OS lock on a ``.part`` itself: whoever holds it may write the file.

    Writing goes through other descriptors (the lock is advisory on POSIX, and on Windows
    only a byte past any file's end is locked). :meth:`try_acquire` never waits. A holder
    that deletes the file does so while still holding it (:meth:`delete`), and a taker
    checks that the file it locked is still the one at the path, as for
    :class:`ProcessLock`. On POSIX the lock follows the file through a rename.
    """

    _windows_offset = _WINDOWS_PART_LOCK_OFFSET

    @classmethod
    def try_acquire(cls, path: Path, *, create: bool = True) -> PartLock | None:
        """The lock of the file at ``path`` (created empty if absent and ``create``), or
        None while another holds it. Raises OSError (FileNotFoundError without ``create``);
        a link is refused (ELOOP), never followed."""
        flags = (os.O_RDWR | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)
                 | (os.O_CREAT if create else 0))
        fd = _open_locked(path, flags, cls._windows_offset)
        return None if fd is None else cls(path, fd)

    def fileno(self) -> int:
        assert self._fd is not None, "the lock was released"
        return self._fd

    def is_empty_file_at_path(self) -> bool:
        """Whether the locked file is empty and still the one at the path."""
        if self._fd is None:
            return False
        mine = os.fstat(self._fd)
        return mine.st_size == 0 and _PLATFORM.is_current(self._fd, self.path)

    def release(self) -> None:
        """Give the lock up; the file stays (idempotent)."""
        self._close()

    def delete(self) -> None:
        """Delete the file, then give the lock up (a taker who opened it meanwhile sees
        that it is no longer the file at the path)."""
        self._delete()


def _open_locked(path: Path, flags: int, windows_offset: int) -> int | None:
    """A descriptor of the file at ``path`` holding its exclusive lock, or None when
    another holds it."""
    for _ in range(_MAX_RACES):
        fd = os.open(os_path(path), flags, 0o644)
        try:
            if not _PLATFORM.lock(fd, windows_offset):
                os.close(fd)
                return None
            if not _PLATFORM.is_current(fd, path):
                # The holder deleted it between our open and our lock: take the new one.
                os.close(fd)
                continue
        except BaseException:
            os.close(fd)
            raise
        return fd
    raise OSError(f"Could not lock {path}: it kept being replaced")


def read_owner(path: Path) -> Owner | None:
    """Who wrote the lock file at ``path`` (None if unknown: absent, empty, unreadable)."""
    try:
        data = json.loads(path.read_bytes()[:_WINDOWS_LOCK_OFFSET] or b"null")
        return Owner(int(data["pid"]), str(data.get("host") or ""))
    except (OSError, ValueError, TypeError, KeyError):
        return None


def is_held(path: Path) -> bool:
    """Whether some live lock holder (this process included) has the lock at ``path``."""
    lock = ProcessLock.try_acquire(path)
    if lock is None:
        return True
    lock.release()
    return False


class LockFolder:
    """The lock files of one data folder (see the module docstring)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def task(self, task_id: int) -> Path:
        return self.folder / f"task-{task_id}.lock"



# -- the platform part ------------------------------------------------------------------------


class _PosixLocks:
    """``flock`` on the whole file: per open file, advisory, kept through a rename."""

    can_delete_open_files = True

    def lock(self, fd: int, offset: int) -> bool:
        import fcntl

        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if isinstance(exc, BlockingIOError) or exc.errno in _BUSY_ERRNOS:
                return False
            raise
        return True

    def unlock(self, fd: int, offset: int) -> None:
        """Nothing: closing the descriptor gives a ``flock`` up."""

    def is_current(self, fd: int, path: Path) -> bool:
        """Whether ``fd`` is still the file at ``path`` (not one a releaser just deleted)."""
        try:
            on_disk = os.stat(os_path(path))
        except FileNotFoundError:
            return False
        mine = os.fstat(fd)
        return (mine.st_dev, mine.st_ino) == (on_disk.st_dev, on_disk.st_ino)


class _WindowsLocks:
    """``msvcrt.locking`` on one byte at ``offset``: mandatory for that byte, so the byte
    lies past anything written. ``msvcrt`` is passed in, so that tests can run this path
    on any system with a stand-in that has its semantics."""

    #: Windows refuses to delete a file some process has open.
    can_delete_open_files = False

    def __init__(self, msvcrt: Any) -> None:
        self._msvcrt = msvcrt

    def lock(self, fd: int, offset: int) -> bool:
        os.lseek(fd, offset, os.SEEK_SET)
        try:
            self._msvcrt.locking(fd, self._msvcrt.LK_NBLCK, 1)
        except OSError as exc:
            if exc.errno in _BUSY_ERRNOS or exc.errno == errno.EDEADLK:
                return False
            raise
        return True

    def unlock(self, fd: int, offset: int) -> None:
        os.lseek(fd, offset, os.SEEK_SET)
        with suppress(OSError):  # closing the handle releases it too
            self._msvcrt.locking(fd, self._msvcrt.LK_UNLCK, 1)

    def is_current(self, fd: int, path: Path) -> bool:
        return True  # an open file can't be deleted there, so it is always the current one


def _platform_locks() -> _PosixLocks | _WindowsLocks:
    if sys.platform == "win32":  # pragma: no cover - the Windows runner's
        import msvcrt

        return _WindowsLocks(msvcrt)
    return _PosixLocks()


_PLATFORM = _platform_locks()


def _remove_quietly(path: Path) -> None:
    # Fails when another process has it open (Windows) or the folder went away: harmless.
    with suppress(OSError):
        os.unlink(os_path(path))
