"""Paths Windows can open past MAX_PATH (260 characters).

Win32 file calls refuse a path of MAX_PATH characters or more unless it is written in the
extended-length form ``\\\\?\\C:\\...`` (``\\\\?\\UNC\\server\\share\\...`` for a network share),
or unless the machine enables long paths (a registry switch a user cannot be asked to flip)
and the app declares itself long-path aware. A model 200 characters long in a deep library
folder passes the limit, so every path the download code and the library scan (walk,
hashing, companions, the offline checks) give the OS goes through :func:`os_path`: on
Windows a long absolute path comes back in the extended form, elsewhere (and for a short
path) the path comes back as it is.

The extended form is only ever what the OS is handed. The paths the library records, shows
and compares stay in their normal form: a listing is joined onto the normal folder path
(``os.scandir`` over an extended path gives entries whose ``.path`` carries the prefix),
and a path the OS hands back (``os.path.realpath``) goes through :func:`normal_path`.

The extended form turns Windows' own normalisation off (``/``, ``.``, ``..``, trailing dots
and spaces are taken literally), so the path is normalised here first; names built from
Civitai data have their trailing dots and spaces removed by
:func:`~civdesk.core.downloads.filenames.sanitize_filename`.
"""

from __future__ import annotations

import ntpath
import os

MAX_PATH = 260
#: CreateDirectory's limit (MAX_PATH less room for an 8.3 name): from this length on a
#: folder path fails even where a file path would not, so the extended form starts here.
LONG_FROM = MAX_PATH - 12
_EXTENDED = "\\\\?\\"
_DEVICE = "\\\\.\\"
_UNC = _EXTENDED + "UNC\\"
_ON_WINDOWS = os.name == "nt"


def os_path(path: str | os.PathLike[str], *, windows: bool | None = None) -> str:
    """``path`` as the OS calls of this system need it (see the module docstring).

    ``windows`` forces the Windows rules (tests run them here); default: this system's.
    """
    text = os.fspath(path)
    # Off Windows this is the whole cost (the scan calls it per file it reads and per folder).
    if not (_ON_WINDOWS if windows is None else windows):
        return text
    if windows is None:  # pragma: no cover - Windows: a relative path counts in full there
        text = os.path.abspath(text)
    return extended_length(text)


def extended_length(path: str) -> str:
    """The extended-length form of a Windows ``path`` of :data:`LONG_FROM` characters or
    more with a drive letter or a UNC share; any other path unchanged."""
    if len(path) < LONG_FROM or path.startswith((_EXTENDED, _DEVICE)):
        return path
    full = ntpath.normpath(path)  # the extended form takes every character literally
    drive, _ = ntpath.splitdrive(full)
    if full.startswith("\\\\") and drive:
        return _UNC + full[2:]
    if len(drive) == 2 and drive[1] == ":" and full[2:3] == "\\":
        return _EXTENDED + full
    return path  # relative or drive-relative ("C:x"): Windows resolves those itself


def normal_path(path: str, *, windows: bool | None = None) -> str:
    """``path`` without the extended-length prefix :func:`os_path` puts on (what the OS
    hands back for an extended path, ``os.path.realpath``'s answer, say): the form the
    library records and compares. Device paths (``\\\\.\\``) and other paths unchanged."""
    if not (_ON_WINDOWS if windows is None else windows) or not path.startswith(_EXTENDED):
        return path
    if path[:len(_UNC)].upper() == _UNC.upper():
        return "\\\\" + path[len(_UNC):]
    return path[len(_EXTENDED):]


def real_path(path: str | os.PathLike[str]) -> str:
    """``os.path.realpath`` of a path of any length, in the normal form."""
    return normal_path(os.path.realpath(os_path(path)))
