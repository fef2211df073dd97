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
from collections.abc import Callable
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


class SimulatedLongPaths:
    """Windows' MAX_PATH rule on this disk: a path of ``limit`` characters or more given to
    an OS call fails as Windows fails it ("The system cannot find the path specified",
    FileNotFoundError) unless it went through :meth:`os_path`.

    :meth:`patch` puts the rule in front of the ``os`` module (and ``open``) of the modules
    under test and of :class:`pathlib.Path`'s file calls, so a call that skips ``os_path``
    fails the way it would there. ``active`` False lets a test look at the files itself.
    """

    _PATH_CALLS = ("open", "stat", "lstat", "replace", "rename", "truncate", "unlink",
                   "remove", "mkdir", "makedirs", "rmdir", "scandir", "listdir")
    _PATH_QUERIES = ("exists", "lexists", "isdir", "isfile")
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
            for arg in args[:2] if call.__name__ in ("replace", "rename") else args[:1]:
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
        module.path = paths
        return module

    def patch(self, monkeypatch: Any, *modules: types.ModuleType) -> None:
        """Route ``modules``' ``os`` and ``open`` through the rule, and their ``os_path``
        through this simulation's."""
        stand_in = self.os_module()
        for module in modules:
            monkeypatch.setattr(module, "os", stand_in)
            monkeypatch.setattr(module, "open", self.guarded(open), raising=False)
            if hasattr(module, "os_path"):
                monkeypatch.setattr(module, "os_path", self.os_path)
        for name in self._PATHLIB_CALLS:
            monkeypatch.setattr(pathlib.Path, name, self.guarded(getattr(pathlib.Path, name)))
