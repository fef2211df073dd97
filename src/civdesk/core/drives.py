"""Is a missing file gone, or is the drive it lives on away?

A library folder (or a folder deep inside one) may be an external drive: a symlink to it
(``models/Lora -> /media/usb/Lora``) or a drive mounted on the folder. Unplugged, the link
dangles, the mount point stays behind as an empty folder on the drive below, or the folder
vanishes with the drive. None of that may make the library forget the drive's files.

The rule: a file is **gone** only when its folder is there, can be listed and is on the
device (``st_dev``) the file was last seen on. Anything else (a dangling link on the way, a
folder that cannot be listed, a folder now on another device, a folder that vanished with
its drive) means the file is **away**: kept, and shown as offline until its drive is back.
Files recorded before devices were (``device`` None) count as gone only from a folder of
their own that is there and not empty.

Also used before a download creates its folder: a type folder must not be made again
inside an empty mount point or in place of a dangling link (:func:`check_download_folder`).

The OS is asked about each path through :func:`~civdesk.core.longpaths.os_path`: on
Windows a deep folder past MAX_PATH would otherwise look missing, and a missing folder of
a drive that is away would pass for a deleted one.
"""

from __future__ import annotations

import errno
import functools
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from civdesk.core.errors import FileProblem
from civdesk.core.longpaths import os_path

if TYPE_CHECKING:
    from civdesk.core.library import Library

# stat() errors that say "nothing there" (as opposed to "cannot look": EACCES, EIO, ESTALE).
_ABSENT = frozenset({errno.ENOENT, errno.ENOTDIR})


class DriveAway(FileProblem):
    """A download folder whose drive seems to be unplugged (nothing was created)."""

    def __init__(self, folder: str, where: str, why: str) -> None:
        super().__init__(f"The drive for {folder} seems to be unplugged ({where} {why}): "
                         "plug it in or mount it, then retry")
        self.folder, self.where = folder, where


@dataclass(frozen=True)
class Verdict:
    """Whether a missing file is gone, and the folder that decided it."""

    gone: bool
    where: str  # the folder looked at last: the file's folder, or the ancestor that answered


@dataclass(frozen=True)
class _Folder:
    present: bool  # there, a folder, and listable
    away: bool  # a dangling link, or there but not listable / not statable: cannot tell
    device: int = 0
    empty: bool = False


_MISSING = _Folder(present=False, away=False)
_AWAY = _Folder(present=False, away=True)


class Presence:
    """Decides gone-or-away for files missing from disk, looking at each folder once."""

    def __init__(self) -> None:
        self._folders: dict[str, _Folder] = {}

    def verdict(self, path: str, device: int | None) -> Verdict:
        """Whether the file at ``path``, last seen on ``device``, is gone (see the module)."""
        try:
            os.stat(os_path(path))
        except OSError as err:
            if err.errno not in _ABSENT or os.path.islink(os_path(path)):
                return Verdict(False, os.path.dirname(path))  # cannot look, or a dangling link
        folder, own = os.path.dirname(path), True
        while True:
            state = self.folder(folder)
            if state.away:
                return Verdict(False, folder)
            if state.present:
                break
            parent = os.path.dirname(folder)
            if parent == folder:
                return Verdict(False, folder)
            folder, own = parent, False
        if device is not None:
            return Verdict(state.device == device, folder)
        return Verdict(own and not state.empty, folder)

    def folder(self, folder: str) -> _Folder:
        """What is at ``folder`` now (cached for this instance)."""
        known = self._folders.get(folder)
        if known is None:
            known = self._folders[folder] = _look_at(folder)
        return known


def _look_at(folder: str) -> _Folder:
    on_disk = os_path(folder)
    try:
        st = os.stat(on_disk)
    except OSError as err:
        if err.errno in _ABSENT and not os.path.islink(on_disk):
            return _MISSING
        return _AWAY  # a dangling link (its target's drive is away), or EACCES/EIO
    if not stat.S_ISDIR(st.st_mode):
        return _MISSING  # a file where the folder was: the folder itself is gone
    try:
        with os.scandir(on_disk) as entries:
            empty = next(entries, None) is None
    except OSError:
        return _AWAY
    return _Folder(present=True, away=False, device=st.st_dev, empty=empty)


def check_download_folder(folder: str | os.PathLike[str], library: Library) -> None:
    """Raise :class:`DriveAway` when creating ``folder`` (or writing into it) would put a
    download on the drive below an unplugged one. Creates nothing.

    That is: a dangling link on the way to it, or the nearest folder that exists is where
    the library saw files (directly, or in folders that vanished with them) on another
    device than the one there now (or, recorded before devices were, files it marked
    offline).
    """
    target = os.path.abspath(os.fspath(folder))
    existing = target
    while True:
        try:
            st = os.stat(os_path(existing))
        except OSError as err:
            if os.path.islink(os_path(existing)):
                raise DriveAway(target, existing, "is a link to a folder that is not there"
                                ) from None
            if err.errno not in _ABSENT:
                return  # no permission, I/O error: creating the folder says so itself
            parent = os.path.dirname(existing)
            if parent == existing:
                return
            existing = parent
            continue
        if not stat.S_ISDIR(st.st_mode):
            return  # a file in the way: creating the folder says so itself
        break
    is_dir = functools.cache(lambda path: os.path.isdir(os_path(path)))
    for row in library.local_files(existing):
        if row.device == st.st_dev or (row.device is None and not row.offline):
            continue  # seen on this very drive (or before devices were recorded)
        if _reached_below(row.path, existing, is_dir) or os.path.lexists(os_path(row.path)):
            continue  # another drive's folder that is there, or a file that is
        raise DriveAway(target, existing, "is not on the drive the library's files there "
                        "were on")


def _reached_below(path: str, top: str, is_dir: Callable[[str], bool]) -> bool:
    """Whether a folder between ``path`` and ``top`` (excluded) exists: the file's drive
    then hangs below ``top``, not on it."""
    folder = os.path.dirname(path)
    top = top.rstrip(os.sep) or os.sep
    while folder != top and len(folder) > len(top):
        if is_dir(folder):
            return True
        folder = os.path.dirname(folder)
    return False
