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
