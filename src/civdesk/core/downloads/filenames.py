"""File names that come from a server, made safe to write on any desktop OS.

A download's name comes from Civitai (Content-Disposition or ``files[].name``): it is data
from the network, so it is sanitised as if hostile. The result is one path component,
valid on Windows, macOS and Linux, that cannot leave the folder it is joined to.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Container
from pathlib import Path
from urllib.parse import unquote

from civdesk.core.errors import UnsafePath
from civdesk.core.longpaths import os_path

#: Room under the usual 255-byte limit for ".part" and a " (99)" de-duplication suffix.
MAX_NAME_BYTES = 200
FALLBACK_NAME = "download"

# Windows refuses these as a file's stem whatever the extension ("NUL.txt", "com1.tar.gz").
_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$", "CLOCK$"]
    + [f"{p}{n}" for p in ("COM", "LPT") for n in ("0123456789¹²³")]
)
# Separators of both systems, and the characters Windows forbids in a name.
_FORBIDDEN = re.compile(r'[\\/<>:"|?*]')
_MAX_EXTENSION = 16
# Tabs, newlines, NBSP and the other Unicode spaces read as a plain space.
_SPACES = re.compile("[\t\n\r\v\f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")


def name_from_content_disposition(header: str | None) -> str | None:
    """The unsanitised file name of a Content-Disposition header.

    The RFC 5987 form ``filename*=UTF-8''…`` wins over the plain ``filename=``, which
    older servers fill with a lossy ASCII version.
    """
    if not header:
        return None
    extended = re.search(r"filename\*\s*=\s*([\w!#$%&+^`{}~-]*)'[^']*'([^;\s]+)", header,
                         re.IGNORECASE)
    if extended:
        charset = extended.group(1) or "utf-8"
        try:
            return unquote(extended.group(2), encoding=charset, errors="replace")
        except LookupError:  # an unknown charset name
            return unquote(extended.group(2), errors="replace")
    quoted = re.search(r'filename\s*=\s*"((?:[^"\\]|\\.)*)"', header, re.IGNORECASE)
    if quoted:
        return re.sub(r"\\(.)", r"\1", quoted.group(1))
    bare = re.search(r"filename\s*=\s*([^;]+)", header, re.IGNORECASE)
    if bare:
        return bare.group(1).strip()
    return None


def sanitize_filename(name: str, *, max_bytes: int = MAX_NAME_BYTES) -> str:
    """``name`` as one safe path component; never empty, never ``.`` or ``..``.

    Separators and characters Windows forbids become ``_``; control characters go;
    leading dots (hidden files, ``..``) and trailing dots/spaces (which Windows drops
    silently) are stripped; a Windows device name gets a ``_`` prefix; an over-long name
    is shortened in its stem so the extension survives.
    """
    text = unicodedata.normalize("NFC", name)
    text = _SPACES.sub(" ", text)
    text = "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf", "Cs"))
    text = _FORBIDDEN.sub("_", text)
    text = text.strip(" ").lstrip(".").strip(" ")
    text = text.rstrip(". ")
    stem, ext = _split_extension(text)
    stem, ext = _fit(stem, ext, max_bytes)
    if not stem:
        stem = FALLBACK_NAME
    if stem.split(".")[0].rstrip(" ").upper() in _RESERVED:
        stem = "_" + stem
        stem, ext = _fit(stem, ext, max_bytes)
    return stem + ext


def _split_extension(text: str) -> tuple[str, str]:
    dot = text.rfind(".")
    if dot <= 0 or len(text) - dot > _MAX_EXTENSION or " " in text[dot:]:
        return text, ""
    return text[:dot], text[dot:]


def _fit(stem: str, ext: str, max_bytes: int) -> tuple[str, str]:
    """Shorten ``stem`` (never mid-character) until ``stem + ext`` fits in ``max_bytes``."""
    if len(ext.encode()) > max_bytes // 2:
        ext = ""
    budget = max_bytes - len(ext.encode())
    encoded = stem.encode()
    if len(encoded) > budget:
        # A cut stem may end in "." or " "; without an extension Windows would drop them.
        stem = encoded[:budget].decode(errors="ignore").rstrip(". ")
    return stem, ext


def safe_join(folder: str | os.PathLike[str], name: str) -> Path:
    """``folder / name``, guaranteed to be a direct child of ``folder``.

    Raises :class:`UnsafePath` when ``name`` is not one plain component, or when the
    result (after resolving symlinks) would lie anywhere else.
    """
    base = Path(folder).resolve()
    # Separators of either system, a drive colon, NUL, or a name Windows reads as "." / "..".
    if not name.rstrip(". ") or re.search(r"[\\/:\x00]", name):
        raise UnsafePath(
            f"The file name {_shown(name)} would be written outside {base}; "
            "the download was refused"
        )
    candidate = base / name
    # An existing symlink under that name could point anywhere: resolve and look.
    if candidate.resolve().parent != base:
        raise UnsafePath(
            f"The file name {_shown(name)} points outside {base}; the download was refused"
        )
    return candidate


def free_name(folder: str | os.PathLike[str], name: str, taken: Container[str] = ()) -> str:
    """``name``, or ``stem (1).ext``, ``stem (2).ext``… — the first not on disk nor ``taken``.

    Used when a *different* file already has the name: civdesk never overwrites silently.
    """
    base = Path(folder)
    stem, ext = _split_extension(name)
    candidate = name
    n = 0
    while candidate in taken or os.path.lexists(os_path(base / candidate)):
        n += 1
        candidate = f"{stem} ({n}){ext}"
    return candidate


def _shown(name: str) -> str:
    return repr(name if len(name) <= 60 else name[:57] + "…")
