"""The library manifest: what a library holds, in a file that lets it come back elsewhere.

``civdesk export`` writes it, ``civdesk restore`` reads it (:mod:`civdesk.core.restore`).
The format is specified in ``docs/manifest.md``. A manifest travels between machines and
people, so reading one treats it as hostile: the file is bounded in size, every field is
type- and range-checked, every path must stay below the folder it is restored into, fields
this version does not know are ignored, and a newer major version is refused. Any problem
refuses the whole manifest with one line that names the field.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import IO, Any

from civdesk import __version__
from civdesk.core.errors import CivdeskError, FileProblem
from civdesk.core.library.repository import Library, LibraryEntry, LocalFile
from civdesk.core.settings import DEFAULT_TYPE_FOLDERS, Settings

FORMAT = "civdesk-manifest"
VERSION = 1
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
MAX_ID = (1 << 63) - 1  # what SQLite stores
MAX_SIZE = 1 << 50  # a petabyte: no model file is larger
MAX_TEXT = 1024  # names, types, base models
MAX_PATH = 4096
MAX_ROOTS = 1000
MAX_TYPE_FOLDERS = 200
_SHA256 = re.compile(r"[0-9A-Fa-f]{64}")
_DRIVE = re.compile(r"^[A-Za-z]:")
IDENTIFIED_BY = ("hash", "manual")  # in the manifest: by Civitai's hash, or linked by hand


class InvalidManifest(CivdeskError):
    """The file is not a manifest this civdesk can use (the message says what and where)."""


@dataclass(frozen=True)
class ManifestRoot:
    """A library folder of the exported library (files name it by position)."""

    name: str  # its folder name: where it goes under --dest when there are several
    path: str | None = None  # where it was; informative only, never written to


@dataclass(frozen=True)
class ManifestFile:
    """One library file. ``root`` is None for a file outside every library folder: it
    comes back into its type's folder."""

    root: int | None
    path: str  # relative, "/"-separated
    size: int
    sha256: str | None
    model_id: int | None = None
    version_id: int | None = None
    file_id: int | None = None
    model_name: str | None = None
    version_name: str | None = None
    file_name: str | None = None
    type: str | None = None
    base_model: str | None = None
    identified_by: str | None = None  # "hash", "manual" or None (unknown to Civitai)

    @property
    def name(self) -> str:
        """How the user knows the file: model and version, else its file name."""
        if self.model_name:
            return " ".join(filter(None, (self.model_name, self.version_name)))
        return PurePosixPath(self.path).name

    @property
    def manual(self) -> bool:
        return self.identified_by == "manual"


@dataclass(frozen=True)
class Manifest:
    roots: list[ManifestRoot]
    files: list[ManifestFile]
    type_folders: dict[str, str] = field(default_factory=dict)
    layout: str | None = None
    exported_at: str | None = None
    version: int = VERSION


# ------------------------------------------------------------------------------ export


def build_manifest(library: Library, settings: Settings) -> Manifest:
    """The manifest of ``library`` (read-only: the database and settings only)."""
    files = library.local_files()
    entries = {e.path: e for e in library.entries()}
    versions = library.versions({f.version_id for f in files if f.version_id is not None})
    roots: list[str] = list(settings.library_folders)
    out: list[ManifestFile] = []
    for f in sorted(files, key=lambda f: f.path):
        root = _root_of(f, roots)
        if root is not None and root not in roots:
            roots.append(root)  # a folder removed from the list since: its files still count
        index = roots.index(root) if root is not None else None
        relative = (Path(f.path).relative_to(root).as_posix() if root is not None
                    else Path(f.path).name)
        entry: LibraryEntry | None = entries.get(f.path)
        version = versions.get(f.version_id) if f.version_id is not None else None
        known = version.file_by_id(f.file_id) if version and f.file_id is not None else None
        out.append(ManifestFile(
            root=index, path=relative, size=f.size, sha256=f.sha256,
            model_id=entry.model_id if entry else None, version_id=f.version_id,
            file_id=f.file_id if f.version_id is not None else None,
            # "" is stored for a name Civitai left empty; the manifest says None.
            model_name=(entry.model_name or None) if entry else None,
            version_name=(entry.version_name or None) if entry else None,
            file_name=(known.name or None) if known else None,
            type=(entry.type or None) if entry and entry.identified else None,
            base_model=(entry.base_model or None) if entry else None,
            identified_by=_identified_by(f),
        ))  # fmt: skip
    changed = {k: v for k, v in settings.type_folders.items() if DEFAULT_TYPE_FOLDERS.get(k) != v}
    return Manifest(
        roots=[ManifestRoot(Path(r).name or "library", r) for r in roots], files=out,
        type_folders=changed, layout=settings.layout,
        exported_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )  # fmt: skip


def _root_of(f: LocalFile, roots: list[str]) -> str | None:
    # The configured folders first: the scan's own root may be a sub-folder of one.
    candidates = [*roots, f.library_root]
    for root in candidates:
        if root and Path(f.path).is_relative_to(root) and Path(f.path) != Path(root):
            return root
    return None


def _identified_by(f: LocalFile) -> str | None:
    if f.version_id is None:
        return None
    # A manual link is the user's work (Civitai does not know these bytes); every other
    # way (hash, sidecar, download) names the bytes Civitai serves.
    return "manual" if f.identified_by == "manual" else "hash"


def manifest_json(manifest: Manifest) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "generator": f"civdesk {__version__}",
        "exported_at": manifest.exported_at,
        "settings": {"layout": manifest.layout, "type_folders": dict(manifest.type_folders)},
        "roots": [{"name": r.name, "path": r.path} for r in manifest.roots],
        "files": [
            {"root": f.root, "path": f.path, "size": f.size, "sha256": f.sha256,
             "model_id": f.model_id, "version_id": f.version_id, "file_id": f.file_id,
             "model_name": f.model_name, "version_name": f.version_name,
             "file_name": f.file_name, "type": f.type, "base_model": f.base_model,
             "identified_by": f.identified_by}
            for f in manifest.files
        ],
    }  # fmt: skip


def write_manifest(manifest: Manifest, target: str | os.PathLike[str] | IO[str]) -> None:
    """Write ``manifest`` to a file atomically (a temporary file beside it, then a rename:
    never a half manifest under the final name), or to an open text stream."""
    text = json.dumps(manifest_json(manifest), indent=1, ensure_ascii=False) + "\n"
    if not isinstance(target, (str, os.PathLike)):
        target.write(text)
        target.flush()
        return
    path = Path(target)
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise FileProblem(f"Cannot write the manifest in {path.parent}: "
                          f"{exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise FileProblem(f"Cannot write the manifest {path}: {exc.strerror or exc}") from exc


# ------------------------------------------------------------------------------- read


def read_manifest(source: str | os.PathLike[str] | IO[bytes]) -> Manifest:
    """Read and validate a manifest; :class:`InvalidManifest` (one line) when unusable."""
    where = "the manifest" if not isinstance(source, (str, os.PathLike)) else str(source)
    if isinstance(source, (str, os.PathLike)):
        try:
            with open(source, "rb") as stream:
                data = stream.read(MAX_MANIFEST_BYTES + 1)
        except OSError as exc:
            raise FileProblem(f"Cannot read the manifest {source}: {exc.strerror or exc}") from exc
    else:
        data = source.read(MAX_MANIFEST_BYTES + 1)
    if len(data) > MAX_MANIFEST_BYTES:
        raise InvalidManifest(f"{where} is larger than {MAX_MANIFEST_BYTES // 2**20} MB: "
                              "not a civdesk manifest")
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InvalidManifest(f"{where} is not a civdesk manifest (not JSON: "
                              f"{str(exc)[:120]})") from None
    try:
        return parse_manifest(document)
    except _Bad as bad:
        raise InvalidManifest(f"{where} is not a usable civdesk manifest: {bad}") from None


class _Bad(Exception):
    pass


def parse_manifest(document: Any) -> Manifest:
    """A :class:`Manifest` from its decoded JSON (raises ``_Bad`` naming the field)."""
    doc = _dict(document, "the document")
    if doc.get("format") != FORMAT:
        raise _Bad(f'"format" is not "{FORMAT}"')
    version = _int(doc.get("version"), "version", 1, MAX_ID)
    if version > VERSION:
        raise _Bad(f"it is version {version}, newer than this civdesk reads ({VERSION}): "
                   "update civdesk to restore it")
    settings = _dict(doc.get("settings", {}), "settings")
    type_folders = _dict(settings.get("type_folders", {}), "settings.type_folders")
    if len(type_folders) > MAX_TYPE_FOLDERS:
        raise _Bad("settings.type_folders has too many entries")
    folders = {_text(k, "settings.type_folders key"): relative_path(
        v, f"settings.type_folders[{k[:40]!r}]") for k, v in type_folders.items()}
    layout = _opt_text(settings.get("layout"), "settings.layout")
    roots_raw = _list(doc.get("roots", []), "roots")
    if len(roots_raw) > MAX_ROOTS:
        raise _Bad("too many roots")
    roots = []
    for i, raw in enumerate(roots_raw):
        r = _dict(raw, f"roots[{i}]")
        name = _text(r.get("name"), f"roots[{i}].name")
        if "/" in name or "\\" in name or name in (".", "..") or _DRIVE.match(name):
            raise _Bad(f"roots[{i}].name is not a folder name: {name[:80]!r}")
        roots.append(ManifestRoot(name, _opt_text(r.get("path"), f"roots[{i}].path", MAX_PATH)))
    files = [_file(raw, i, len(roots)) for i, raw in enumerate(_list(doc.get("files"), "files"))]
    exported = _opt_text(doc.get("exported_at"), "exported_at")
    return Manifest(roots, files, folders, layout, exported, version)


def _file(raw: Any, i: int, roots: int) -> ManifestFile:
    at = f"files[{i}]"
    f = _dict(raw, at)
    root = f.get("root")
    if root is not None:
        root = _int(root, f"{at}.root", 0, roots - 1)
    sha256 = _opt_text(f.get("sha256"), f"{at}.sha256")
    if sha256 is not None and not _SHA256.fullmatch(sha256):
        raise _Bad(f"{at}.sha256 is not a SHA256 (64 hex digits)")
    identified_by = _opt_text(f.get("identified_by"), f"{at}.identified_by")
    if identified_by is not None and identified_by not in IDENTIFIED_BY:
        raise _Bad(f"{at}.identified_by is not one of {', '.join(IDENTIFIED_BY)}")
    version_id = _opt_id(f.get("version_id"), f"{at}.version_id")
    if identified_by is not None and version_id is None:
        raise _Bad(f"{at} is identified_by {identified_by} without a version_id")
    return ManifestFile(
        root=root, path=relative_path(f.get("path"), f"{at}.path"),
        size=_int(f.get("size"), f"{at}.size", 0, MAX_SIZE),
        sha256=sha256.upper() if sha256 else None,
        model_id=_opt_id(f.get("model_id"), f"{at}.model_id"), version_id=version_id,
        file_id=_opt_id(f.get("file_id"), f"{at}.file_id"),
        model_name=_opt_text(f.get("model_name"), f"{at}.model_name"),
        version_name=_opt_text(f.get("version_name"), f"{at}.version_name"),
        file_name=_opt_text(f.get("file_name"), f"{at}.file_name"),
        type=_opt_text(f.get("type"), f"{at}.type"),
        base_model=_opt_text(f.get("base_model"), f"{at}.base_model"),
        identified_by=identified_by if version_id is not None else None,
    )  # fmt: skip


def relative_path(value: Any, at: str) -> str:
    """A "/"-separated path that stays below the folder it is joined to: no absolute path,
    no drive letter, no backslash, no ``..``, no empty or control-character parts."""
    text = _text(value, at, MAX_PATH)
    shown = text[:80]
    if text.startswith(("/", "\\")) or _DRIVE.match(text) or "\\" in text:
        raise _Bad(f"{at} is not a relative path: {shown!r}")
    parts = text.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise _Bad(f"{at} leaves its folder or has an empty part: {shown!r}")
        if any(ord(c) < 32 for c in part) or ":" in part:
            raise _Bad(f"{at} has a character no file name may hold: {shown!r}")
    return "/".join(parts)


def _dict(value: Any, at: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Bad(f"{at} is not an object")
    return value


def _list(value: Any, at: str) -> list[Any]:
    if not isinstance(value, list):
        raise _Bad(f"{at} is not a list")
    return value


def _int(value: Any, at: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Bad(f"{at} is not a whole number")
    if not low <= value <= high:
        raise _Bad(f"{at} is out of range ({low} to {high})")
    return value


def _opt_id(value: Any, at: str) -> int | None:
    return None if value is None else _int(value, at, 1, MAX_ID)


def _text(value: Any, at: str, limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str) or not value:
        raise _Bad(f"{at} is not a text")
    if len(value) > limit or "\0" in value:
        raise _Bad(f"{at} is longer than {limit} characters or holds a NUL")
    return value


def _opt_text(value: Any, at: str, limit: int = MAX_TEXT) -> str | None:
    return None if value is None else _text(value, at, limit)
