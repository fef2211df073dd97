"""Stand-ins with the semantics of what only Windows has, to run its code paths here.

``SimulatedMsvcrt.locking`` follows ``msvcrt.locking``: it locks ``nbytes`` at the file's
current position, never waits with ``LK_NBLCK``, and fails with EACCES while another
process holds one of those bytes. It is built on POSIX record locks (``lockf``), which, as
Windows locks do, exclude other processes byte by byte.
"""

from __future__ import annotations

import errno
import fcntl
import os
import pathlib
import types
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


class SimulatedMsvcrt:
    LK_UNLCK, LK_LOCK, LK_NBLCK, LK_RLCK, LK_NBRLCK = 0, 1, 2, 3, 4

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []  # (mode, position), for the tests to read

    def locking(self, fd: int, mode: int, nbytes: int) -> None:
        position = os.lseek(fd, 0, os.SEEK_CUR)
        self.calls.append((mode, position))
        if mode == self.LK_UNLCK:
            fcntl.lockf(fd, fcntl.LOCK_UN, nbytes, position)
            return
        if mode != self.LK_NBLCK:
            raise NotImplementedError(mode)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, nbytes, position)
        except OSError as exc:
            raise OSError(errno.EACCES, "Permission denied") from exc


class ExtendedPath(str):
    """A path :func:`SimulatedLongPaths.os_path` wrote in the extended-length form (the
    POSIX text is kept, so this disk can still open it)."""


EXTENDED_PREFIX = "\\\\?\\"


class _ExtendedEntry:
    """An entry of a folder listed by its extended path: Windows gives its ``.path`` the
    prefix too. Here that text names nothing (this disk cannot open it), so code that
    records, shows or opens ``entry.path`` instead of joining the name onto the folder it
    asked for is caught."""

    def __init__(self, entry: os.DirEntry[str]) -> None:
        self._entry = entry
        self.name = entry.name
        self.path = EXTENDED_PREFIX + entry.path

    def __getattr__(self, name: str) -> Any:  # is_dir, is_file, is_symlink, stat, inode
        return getattr(self._entry, name)

    def __fspath__(self) -> str:
        return self.path


class _ExtendedListing:
    """``os.scandir`` of an :class:`ExtendedPath`: its entries are :class:`_ExtendedEntry`."""

    def __init__(self, listing: Any) -> None:
        self._listing = listing

    def __enter__(self) -> _ExtendedListing:
        return self

    def __exit__(self, *exc: object) -> None:
        self._listing.close()

    def __iter__(self) -> Iterator[_ExtendedEntry]:
        return self

    def __next__(self) -> _ExtendedEntry:
        return _ExtendedEntry(next(self._listing))

    def close(self) -> None:
        self._listing.close()


class SimulatedLongPaths:
    """Windows' MAX_PATH rule on this disk: a path of ``limit`` characters or more given to
    an OS call fails as Windows fails it ("The system cannot find the path specified",
    FileNotFoundError) unless it went through :meth:`os_path`.

    :meth:`patch` puts the rule in front of the ``os`` module (and ``open``) of the modules
    under test and of :class:`pathlib.Path`'s file calls, so a call that skips ``os_path``
    fails the way it would there. ``active`` False lets a test look at the files itself.
    ``os.scandir`` of an extended path lists entries whose ``.path`` carries the prefix, as
    Windows' does (:class:`_ExtendedEntry`).
    """

    _PATH_CALLS = ("open", "stat", "lstat", "replace", "rename", "link", "truncate", "unlink",
                   "remove", "mkdir", "makedirs", "rmdir", "scandir", "listdir")
    _TWO_PATHS = ("replace", "rename", "link")
    _PATH_QUERIES = ("exists", "lexists", "isdir", "isfile", "islink")
    _PATHLIB_CALLS = ("stat", "lstat", "open", "mkdir", "unlink", "rename", "replace",
                      "iterdir", "touch", "rmdir")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.refused: list[str] = []
        self.active = True

    def os_path(self, path: str | os.PathLike[str], *, windows: bool | None = None) -> str:
        text = os.fspath(path)
        return ExtendedPath(text) if len(text) >= self.limit else text

    def check(self, path: object) -> None:
        if not self.active or isinstance(path, (int, ExtendedPath)):
            return
        text = os.fspath(path)  # type: ignore[call-overload]
        if len(text) >= self.limit:
            self.refused.append(text)
            raise FileNotFoundError(errno.ENOENT, "The system cannot find the path specified",
                                    text)

    def guarded(self, call: Callable[..., T], *, query: bool = False) -> Callable[..., T]:
        """``call`` behind the rule; a query (``os.path.exists``) answers False instead."""

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for arg in args[:2] if call.__name__ in self._TWO_PATHS else args[:1]:
                try:
                    self.check(arg)
                except FileNotFoundError:
                    if query:
                        return False
                    raise
            return call(*args, **kwargs)

        return wrapper

    def os_module(self) -> Any:
        """A stand-in for ``os`` whose path calls follow the rule."""
        paths = types.SimpleNamespace(**{name: getattr(os.path, name) for name in dir(os.path)
                                         if not name.startswith("__")})
        for name in self._PATH_QUERIES:
            setattr(paths, name, self.guarded(getattr(os.path, name), query=True))
        module = types.SimpleNamespace(**{name: getattr(os, name) for name in dir(os)
                                          if not name.startswith("__")})
        for name in self._PATH_CALLS:
            setattr(module, name, self.guarded(getattr(os, name)))
        module.scandir = self.guarded(self._scandir)
        module.path = paths
        return module

    @staticmethod
    def _scandir(path: Any = ".") -> Any:
        listing = os.scandir(path)
        return _ExtendedListing(listing) if isinstance(path, ExtendedPath) else listing

    def patch(self, monkeypatch: Any, *modules: types.ModuleType) -> None:
        """Route ``modules``' ``os`` and ``open`` through the rule, and their ``os_path``
        through this simulation's."""
        stand_in = self.os_module()
        for module in modules:
            monkeypatch.setattr(module, "os", stand_in, raising=False)
            monkeypatch.setattr(module, "open", self.guarded(open), raising=False)
            if hasattr(module, "os_path"):
                monkeypatch.setattr(module, "os_path", self.os_path)
        for name in self._PATHLIB_CALLS:
            monkeypatch.setattr(pathlib.Path, name, self.guarded(getattr(pathlib.Path, name)))
