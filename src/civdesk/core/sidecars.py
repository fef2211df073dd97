"""Companion files next to a model: read what other tools left, write ours.

For a model ``<dir>/<stem>.<ext>`` the ecosystem keeps, beside it:

- ``<stem>.civitai.info``   Civitai Helper & co: the raw ModelVersion JSON (``{}`` = "not on
  Civitai"). This is also what civdesk writes.
- ``<stem>.cm-info.json``   Stability Matrix's ConnectedModelInfo (PascalCase keys).
- ``<stem>.metadata.json``  ComfyUI-Lora-Manager: lowercase ``sha256`` and the version JSON
  under ``civitai``.
- ``<stem>.json``           A1111 user metadata: trigger words (``activation text``), no ids.
- a preview image, under one of several names.

Two model files may share a stem (``foo.safetensors`` and ``foo.pt``): then ``foo.*``
companions are *contested*, each belongs to the model whose hash it names, and civdesk
gives the other model companions named after its whole file name (``foo.pt.civitai.info``,
``foo.pt.preview.png``), which it reads first. A companion that names another file is never
written over.

Reading never raises for a broken companion file: it is skipped with a note, because one
bad file written by another tool must not stop a scan of thousands.

Every path given to the OS here goes through :func:`~civdesk.core.longpaths.os_path` (a
model deep in a library folder on Windows); the paths returned and reported stay normal.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from civdesk.core.civitai.errors import MalformedResponse
from civdesk.core.civitai.schema import FROM_SIDECAR_KEY, ModelVersion
from civdesk.core.errors import CivdeskError, FileProblem
from civdesk.core.images import check_image, sniff_image
from civdesk.core.longpaths import os_path

INFO_SUFFIX = ".civitai.info"
STABILITY_MATRIX_SUFFIX = ".cm-info.json"
LORA_MANAGER_SUFFIX = ".metadata.json"
A1111_SUFFIX = ".json"

#: The companions that can identify a model (name its version and its hash or files).
IDENTIFYING_SUFFIXES = (INFO_SUFFIX, LORA_MANAGER_SUFFIX, STABILITY_MATRIX_SUFFIX)
#: The companions that hold what users wrote in other tools.
USER_META_SUFFIXES = (A1111_SUFFIX, LORA_MANAGER_SUFFIX, STABILITY_MATRIX_SUFFIX)

# Sources, strongest first: the order in which sidecars are trusted when they disagree.
SOURCE_CIVITAI_INFO = "civitai.info"
SOURCE_LORA_MANAGER = "lora-manager"
SOURCE_STABILITY_MATRIX = "stability-matrix"
SOURCE_A1111 = "a1111"

# Lora Manager's lookup order (the most thorough in the ecosystem), with our own
# ``.preview.gif`` and ``.preview.webm``. A video preview is the model's too: the window
# shows it as a marked placeholder, and no still is fetched over it.
PREVIEW_SUFFIXES = (
    ".webp",
    ".preview.webp",
    ".preview.png",
    ".preview.jpeg",
    ".preview.jpg",
    ".preview.gif",
    ".preview.mp4",
    ".preview.webm",
    ".png",
    ".jpeg",
    ".jpg",
    ".mp4",
    ".gif",
    ".webm",
)
#: The endings of video previews (Lora Manager and Civitai keep animated previews so).
VIDEO_ENDINGS = (".mp4", ".webm")


def is_video(path: str | os.PathLike[str]) -> bool:
    """Whether a preview is a video (shown as a marked placeholder, not decoded)."""
    return os.fspath(path).lower().endswith(VIDEO_ENDINGS)


#: The fields of what users wrote in other tools, as civdesk stores and shows them.
USER_FIELDS = ("title", "notes", "activation_text", "preferred_weight", "negative_text",
               "description", "sd_version", "tags", "favorite")
_USER_SOURCE_ORDER = (SOURCE_A1111, SOURCE_LORA_MANAGER, SOURCE_STABILITY_MATRIX)
# Bounds on what is kept of a user's text: a companion is hostile input like any other.
MAX_USER_TEXT = 20_000
MAX_USER_TAGS = 100
MAX_TAG_TEXT = 200

_IMAGE_ENDINGS = tuple({suffix.rsplit(".", 1)[1] for suffix in PREVIEW_SUFFIXES})

#: The model files a library holds: their companions are named after them.
MODEL_EXTENSIONS = frozenset(
    {".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf", ".sft"}
)

# Sidecars are small; anything bigger is not one (and must not be read into memory).
MAX_SIDECAR_BYTES = 16 << 20


@dataclass(frozen=True)
class SidecarInfo:
    """What one companion file says about its model file."""

    source: str
    path: Path
    sha256: str | None = None  # UPPER hex, when the sidecar states the file's own hash
    version_id: int | None = None
    model_id: int | None = None
    version_json: Mapping[str, Any] | None = None  # the raw ModelVersion JSON, when present
    trained_words: tuple[str, ...] = ()
    model_name: str | None = None
    version_name: str | None = None
    model_type: str | None = None
    base_model: str | None = None
    not_on_civitai: bool = False  # the ``{}`` marker: a tool looked it up and found nothing
    contested: bool = False  # named after a stem another model file in the folder shares
    #: What the user wrote in the tool (see :data:`USER_FIELDS`), bounded in size.
    user: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def agrees_with(self, sha256: str) -> bool:
        """False when this sidecar names a different file than the one with this hash.

        A sidecar that states a hash must match it; one that carries the version's file list
        must list it. A sidecar with neither cannot be checked and is given the benefit of
        the doubt, unless it is contested (it may as well be the other model's).
        """
        sha256 = sha256.upper()
        if self.sha256 is not None:
            return self.sha256 == sha256
        listed = _listed_sha256s(self.version_json)
        return sha256 in listed if listed else not self.contested

    def sidecar_only_version(self) -> ModelVersion | None:
        """The version as far as this sidecar tells it (ids, names, type, base model,
        trigger words; no files or images), marked :attr:`ModelVersion.from_sidecar_only`;
        None without both ids. Only for a sidecar whose hash was checked against the file:
        Civitai fills in the rest when it can be asked."""
        if self.version_id is None or self.model_id is None:
            return None
        data: dict[str, Any] = {
            "id": self.version_id, "modelId": self.model_id, "name": self.version_name or "",
            # "" never blanks a type the library knows (a new model gets "Other").
            "model": {"name": self.model_name or "", "type": self.model_type or ""},
            "trainedWords": list(self.trained_words), FROM_SIDECAR_KEY: self.source,
        }
        if self.base_model:
            data["baseModel"] = self.base_model
        return ModelVersion.from_json(data, where=self.path.name)

    def version(self) -> ModelVersion | None:
        """The parsed version, when the sidecar carries its full JSON."""
        if not self.version_json:
            return None
        try:
            return ModelVersion.from_json(self.version_json)
        except MalformedResponse:
            return None


@dataclass
class Sidecars:
    """Every companion of one model file."""

    infos: list[SidecarInfo] = field(default_factory=list)  # strongest source first
    preview: Path | None = None
    notes: list[str] = field(default_factory=list)  # malformed files that were skipped

    def identifying(self, sha256: str | None = None) -> SidecarInfo | None:
        """The strongest sidecar naming a Civitai version (and, given a hash, agreeing)."""
        for info in self.infos:
            if info.version_id is None:
                continue
            if sha256 is not None and not info.agrees_with(sha256):
                continue
            return info
        return None

    @property
    def trained_words(self) -> tuple[str, ...]:
        for info in self.infos:
            if info.trained_words:
                return info.trained_words
        return ()

    @property
    def not_on_civitai(self) -> bool:
        return any(info.not_on_civitai for info in self.infos)

    def user_meta(self) -> dict[str, Any]:
        """What the user wrote in other tools, merged: each field from the first tool that
        has it, the one whose edit dialog is about it first (A1111, Lora Manager, Stability
        Matrix). Empty when there is nothing."""
        merged: dict[str, Any] = {}
        for source in _USER_SOURCE_ORDER:
            for info in self.infos:
                if info.source == source:
                    for key, value in info.user.items():
                        merged.setdefault(key, value)
        return {key: merged[key] for key in USER_FIELDS if key in merged}


def _as_path(path: Path | str) -> Path:
    """``Path(path)`` without re-parsing a Path (on Python 3.11 that costs ~6 us a call,
    paid several times per file on a first scan)."""
    return path if isinstance(path, Path) else Path(path)


def is_model_file_name(name: str) -> bool:
    """Whether a file of this name is a model file the scanner takes.

    Not macOS's ``._name.safetensors``: the resource-fork side file a Mac writes beside
    every file on a drive formatted for Windows, a few KB that are no model.
    """
    dot = name.rfind(".")
    return dot > 0 and name[dot:].lower() in MODEL_EXTENSIONS and not name.startswith("._")


def stem_of(model_path: Path) -> str:
    """The model's name without its last extension, as every companion format uses it."""
    return model_path.name.rsplit(".", 1)[0] if "." in model_path.name else model_path.name


def companion(model_path: Path, suffix: str) -> Path:
    return model_path.with_name(stem_of(model_path) + suffix)


def read_sidecars(model_path: Path, siblings: Collection[str] | None = None) -> Sidecars:
    """Read every companion of ``model_path``.

    ``siblings`` are the names in the model's folder when the caller already listed it (the
    scanner does): then nothing is looked up on disk for absent companions.
    """
    model_path = _as_path(model_path)
    present = _Presence(model_path, siblings)
    result = Sidecars()
    for suffix, parse in _READERS:
        # The whole-name companion first: only civdesk writes it, for this very file.
        stem = next((s for s in companion_stems(model_path) if present.has(s + suffix)), None)
        if stem is None:  # names first: most files have no companions
            continue
        path = model_path.with_name(stem + suffix)
        try:
            data = _load_json(path)
            info = parse(path, data)
        except (OSError, ValueError, TypeError, MalformedResponse) as err:
            result.notes.append(f"Ignored {path.name}: {_reason(err)}")
            continue
        if info is not None:
            if present.contested(stem):
                info = _replace(info, contested=True)
            result.infos.append(info)
    result.preview = find_preview(model_path, siblings)
    return result


def companion_stems(model_path: Path) -> tuple[str, ...]:
    """The stems the model's companions may be named after, in the order they are read:
    its whole file name (civdesk's name when the stem is another model's too), its stem."""
    name, stem = model_path.name, stem_of(model_path)
    return (name, stem) if name != stem else (name,)


def _owned_stems(
    model_path: Path, present: _Presence, sha256s: Collection[str]
) -> Iterator[str]:
    """The stems whose companions are this model's: the ones no other model file in the
    folder shares, and contested ones whose ``.civitai.info`` names one of ``sha256s``."""
    for stem in companion_stems(model_path):
        info = present.actual(stem + INFO_SUFFIX)
        if not present.contested(stem) or (
            sha256s and info is not None and _names_any(model_path.with_name(info), sha256s)
        ):
            yield stem


def find_info(
    model_path: Path, siblings: Collection[str] | None = None, sha256: str | None = None
) -> Path | None:
    """The model's existing ``.civitai.info`` (a contested one only when it names
    ``sha256``), from the listing when given."""
    model_path = _as_path(model_path)
    present = _Presence(model_path, siblings)
    for stem in _owned_stems(model_path, present, (sha256.upper(),) if sha256 else ()):
        actual = present.actual(stem + INFO_SUFFIX)
        if actual is not None:
            return model_path.with_name(actual)
    return None


def _named_sha256s(data: Any) -> set[str]:
    """Every SHA256 a companion's JSON names as its file's (any of the formats above)."""
    if not isinstance(data, Mapping):
        return set()
    found = _listed_sha256s(data)
    civitai = data.get("civitai")
    if isinstance(civitai, Mapping):
        found |= _listed_sha256s(civitai)
    hashes = data.get("Hashes")
    for value in (data.get("sha256"),
                  *(hashes.values() if isinstance(hashes, Mapping) else ())):
        digest = _sha256(value)
        if digest:
            found.add(digest)
    return found


def _names_any(path: Path, sha256s: Collection[str]) -> bool:
    """Whether the companion at ``path`` names one of these hashes (False when unreadable)."""
    try:
        data = _load_json(path)
    except (OSError, ValueError):
        return False
    return not _named_sha256s(data).isdisjoint(sha256s)


def owns_companion(model_path: Path, companion_path: Path, sha256: str | None) -> bool:
    """Whether ``companion_path`` (beside ``model_path``, which may be gone) is that
    model's: named after a stem of it no other model file shares, or naming its hash."""
    present = _Presence(model_path, None)
    name = companion_path.name
    stem = next((s for s in companion_stems(model_path) if name.startswith(s + ".")), None)
    return stem is not None and stem in _owned_stems(
        model_path, present, (sha256.upper(),) if sha256 else ())


def companion_files(model_path: Path | str, sha256: str | None = None) -> list[Path]:
    """Every existing companion that is this model's (``sha256``: its hash, to claim the
    contested ones that name it), whatever tool wrote it. Another model's are left out."""
    model_path = _as_path(model_path)
    present = _Presence(model_path, None)
    found: list[Path] = []
    for stem in _owned_stems(model_path, present, (sha256.upper(),) if sha256 else ()):
        for suffix in (*(suffix for suffix, _parse in _READERS), *PREVIEW_SUFFIXES):
            actual = present.actual(stem + suffix)
            if actual is not None and actual != model_path.name:
                found.append(model_path.with_name(actual))
    return found


def find_preview(
    model_path: Path, siblings: Collection[str] | None = None, sha256s: Collection[str] = ()
) -> Path | None:
    """An existing preview image of the model, in Lora Manager's lookup order (its whole
    name's first). A preview named after a stem another model file shares is this one's
    only when that stem's ``.civitai.info`` names one of ``sha256s`` (the model's hash)."""
    model_path = _as_path(model_path)
    present = _Presence(model_path, siblings)
    folder = present.folder
    if folder is not None and not folder.any_images():
        return None  # a folder without a single image: most of a first scan
    for stem in companion_stems(model_path):
        if folder is not None:  # the scanner's case: dict lookups, no Path made
            found = folder.preview_for(stem)
        else:
            found = next((a for a in map(present.actual, (stem + suffix
                                                          for suffix in PREVIEW_SUFFIXES))
                          if a is not None), None)
        if found is not None and stem in _owned_stems(model_path, present, sha256s):
            return model_path.with_name(found)
    return None


class FolderNames(Collection[str]):
    """The names in one folder, indexed once for exact and case-insensitive lookups.

    Pass one to the readers instead of a plain list when many model files share a folder:
    the index is then built once per folder, not once per file.
    """

    def __init__(self, names: Iterable[str]) -> None:
        self.names = list(names)
        # Case-insensitive matches (Windows, tools that write ".PNG"); an exact name wins.
        self.lookup: dict[str, str] = {name.lower(): name for name in self.names}
        self.lookup.update({name: name for name in self.names})
        self.has_images: bool | None = None  # any preview-like name at all; known on demand
        self._model_stems: dict[str, list[str]] | None = None  # lower stem -> model names

    def __contains__(self, name: object) -> bool:
        return name in self.lookup

    def add(self, name: str) -> None:
        """A name that now exists in the folder too (a file the scan put there)."""
        self.names.append(name)
        self.lookup[name] = self.lookup[name.lower()] = name
        if name.endswith(_IMAGE_ENDINGS):
            self.has_images = True
        if self._model_stems is not None and is_model_file_name(name):  # kept, not rebuilt:
            # a first scan adds thousands of companions to a folder of thousands of models
            self._model_stems.setdefault(name.rsplit(".", 1)[0].lower(), []).append(name)

    def any_images(self) -> bool:
        if self.has_images is None:
            self.has_images = any(n.endswith(_IMAGE_ENDINGS) for n in self.lookup)
        return self.has_images

    def models_named(self, stem: str) -> list[str]:
        """The model files in this folder whose stem is ``stem`` (in any case)."""
        if self._model_stems is None:
            index: dict[str, list[str]] = {}
            for name in self.names:
                if is_model_file_name(name):
                    index.setdefault(name.rsplit(".", 1)[0].lower(), []).append(name)
            self._model_stems = index
        return self._model_stems.get(stem.lower(), [])

    def preview_for(self, stem: str) -> str | None:
        """The actual name of ``stem``'s preview in this folder (see :func:`find_preview`)."""
        if not self.any_images():
            return None  # a folder without a single image: most of a first scan
        lookup = self.lookup
        lower = stem.lower()
        for suffix in PREVIEW_SUFFIXES:  # lower-case already
            actual = lookup.get(stem + suffix) or lookup.get(lower + suffix)
            if actual is not None:
                return actual
        return None

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)


class _Presence:
    """Which names exist next to a model file: from a listing when given, else asked of
    the disk."""

    def __init__(self, model_path: Path, siblings: Collection[str] | None) -> None:
        self.model_path = model_path
        self.names: Mapping[str, str] | None = None
        self.folder: FolderNames | None = None
        if isinstance(siblings, FolderNames):
            self.folder = siblings
        elif siblings is not None:
            self.folder = FolderNames(siblings)
        if self.folder is not None:
            self.names = self.folder.lookup

    def contested(self, stem: str) -> bool:
        """Whether another model file in the folder has ``stem`` as its stem (listed once,
        on demand, when no listing was given)."""
        if self.folder is None:
            try:
                listing = os.listdir(os_path(self.model_path.parent))
            except OSError:
                listing = []
            self.folder = FolderNames(listing)
        name = self.model_path.name
        return any(other != name for other in self.folder.models_named(stem))

    def actual(self, name: str) -> str | None:
        if self.names is None:
            return name if os.path.isfile(os_path(self.model_path.with_name(name))) else None
        return self.names.get(name) or self.names.get(name.lower())

    def has(self, name: str) -> bool:
        return self.actual(name) is not None


def _reason(err: Exception) -> str:
    if isinstance(err, OSError):
        return err.strerror or type(err).__name__
    if isinstance(err, json.JSONDecodeError):
        return f"not valid JSON (line {err.lineno})"
    return str(err) or type(err).__name__


def _load_json(path: Path) -> Any:
    # O_NONBLOCK: a FIFO under a companion's name would block the open until a writer came.
    fd = os.open(os_path(path),
                 os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0))
    with open(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError("not a regular file")
        raw = fh.read(MAX_SIDECAR_BYTES + 1)
    if len(raw) > MAX_SIDECAR_BYTES:
        raise ValueError("too large for a companion file")
    if not raw.strip():
        return {}
    # utf-8-sig: some Windows tools write a byte-order mark.
    return json.loads(raw.decode("utf-8-sig"))


def _object(data: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise TypeError(f"expected a JSON object, got {type(data).__name__}")
    return data


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _sha256(value: Any) -> str | None:
    if isinstance(value, str) and len(value) == 64:
        try:
            int(value, 16)
        except ValueError:
            return None
        return value.upper()
    return None


def _words(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list):
        return ()
    return tuple(w.strip() for w in value if isinstance(w, str) and w.strip())


def _listed_sha256s(version_json: Mapping[str, Any] | None) -> set[str]:
    out: set[str] = set()
    if not version_json:
        return out
    files = version_json.get("files")
    for f in files if isinstance(files, list) else ():
        hashes = f.get("hashes") if isinstance(f, Mapping) else None
        if isinstance(hashes, Mapping):
            for kind, value in hashes.items():
                if isinstance(kind, str) and kind.upper() == "SHA256":
                    digest = _sha256(value)
                    if digest:
                        out.add(digest)
    return out


def _from_version_json(
    source: str, path: Path, version: Mapping[str, Any], sha256: str | None = None
) -> SidecarInfo:
    """A SidecarInfo from a raw ModelVersion JSON, validated by the schema parser."""
    parsed = ModelVersion.from_json(version, where=path.name)  # raises MalformedResponse
    model = parsed.model
    return SidecarInfo(
        source=source,
        path=path,
        sha256=sha256,
        version_id=parsed.id,
        model_id=parsed.model_id,
        version_json=dict(version),
        trained_words=tuple(parsed.trained_words),
        model_name=model.name if model else None,
        version_name=parsed.name or None,
        model_type=model.type if model else None,
        base_model=parsed.base_model,
    )


def _parse_civitai_info(path: Path, data: Any) -> SidecarInfo | None:
    obj = _object(data, "civitai.info")
    if not obj:
        return SidecarInfo(SOURCE_CIVITAI_INFO, path, not_on_civitai=True)
    return _from_version_json(SOURCE_CIVITAI_INFO, path, obj)


def _user_text(value: Any) -> str | None:
    """A user's text, trimmed and bounded; None when empty or not text."""
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()[:MAX_USER_TEXT]


def _user_weight(value: Any) -> float | None:
    """A LoRA weight (A1111's ``preferred weight``, Lora Manager's ``strength``): 0, not
    a number or beyond any sane range means unset."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if 0 < abs(value) <= 100 else None


def _user(**values: Any) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value not in (None, "", [])}


def _lora_manager_user(obj: Mapping[str, Any]) -> dict[str, Any]:
    tags = obj.get("tags")
    tips = obj.get("usage_tips")
    strength = None
    if isinstance(tips, str) and len(tips) < 4096:  # a JSON text, e.g. {"strength": 0.8}
        with contextlib.suppress(ValueError):
            parsed = json.loads(tips)
            if isinstance(parsed, Mapping):
                strength = _user_weight(parsed.get("strength"))
    return _user(
        notes=_user_text(obj.get("notes")),
        tags=[t.strip()[:MAX_TAG_TEXT] for t in tags if isinstance(t, str) and t.strip()
              ][:MAX_USER_TAGS] if isinstance(tags, list) else None,
        favorite=True if obj.get("favorite") is True else None,
        preferred_weight=strength,
    )


def _parse_lora_manager(path: Path, data: Any) -> SidecarInfo | None:
    obj = _object(data, "metadata.json")
    sha256 = _sha256(obj.get("sha256"))
    user = _lora_manager_user(obj)
    civitai = obj.get("civitai")
    if isinstance(civitai, Mapping) and civitai.get("id") is not None:
        info = _from_version_json(SOURCE_LORA_MANAGER, path, civitai, sha256)
        if info.base_model is None:
            info = _replace(info, base_model=_str(obj.get("base_model")))
        if info.model_name is None:
            info = _replace(info, model_name=_str(obj.get("model_name")))
        return _replace(info, user=user)
    return SidecarInfo(
        SOURCE_LORA_MANAGER,
        path,
        sha256=sha256,
        model_name=_str(obj.get("model_name")),
        base_model=_str(obj.get("base_model")),
        not_on_civitai=obj.get("from_civitai") is False and bool(obj.get("db_checked")),
        user=user,
    )


def _parse_stability_matrix(path: Path, data: Any) -> SidecarInfo | None:
    obj = _object(data, "cm-info.json")
    hashes = obj.get("Hashes")
    sha256 = None
    if isinstance(hashes, Mapping):
        sha256 = _sha256(next((v for k, v in hashes.items() if k.upper() == "SHA256"), None))
    model_type = obj.get("ModelType")
    return SidecarInfo(
        SOURCE_STABILITY_MATRIX,
        path,
        sha256=sha256,
        version_id=_int(obj.get("VersionId")),
        model_id=_int(obj.get("ModelId")),
        trained_words=_words(obj.get("TrainedWords")),
        model_name=_str(obj.get("ModelName")),
        version_name=_str(obj.get("VersionName")),
        # An enum: System.Text.Json writes its name, or its number without a converter.
        model_type=_str(model_type),
        base_model=_str(obj.get("BaseModel")),
        user=_user(title=_user_text(obj.get("UserTitle"))),
    )


_A1111_KEYS = ("activation text", "sd version", "description", "preferred weight", "notes")


def _parse_a1111(path: Path, data: Any) -> SidecarInfo | None:
    obj = _object(data, "json")
    if not any(key in obj for key in _A1111_KEYS):
        return None  # some other JSON that merely shares the name; not ours to judge
    sd_version = _str(obj.get("sd version"))
    known_version = None if sd_version in (None, "Unknown") else sd_version
    return SidecarInfo(
        SOURCE_A1111,
        path,
        trained_words=_words(obj.get("activation text")),
        base_model=known_version,
        user=_user(
            activation_text=_user_text(obj.get("activation text")),
            preferred_weight=_user_weight(obj.get("preferred weight")),
            notes=_user_text(obj.get("notes")),
            description=_user_text(obj.get("description")),
            negative_text=_user_text(obj.get("negative text")),
            sd_version=known_version and known_version[:MAX_TAG_TEXT],
        ),
    )


def _replace(info: SidecarInfo, **changes: Any) -> SidecarInfo:
    from dataclasses import replace

    return replace(info, **changes)


_READERS = (
    (INFO_SUFFIX, _parse_civitai_info),
    (LORA_MANAGER_SUFFIX, _parse_lora_manager),
    (STABILITY_MATRIX_SUFFIX, _parse_stability_matrix),
    (A1111_SUFFIX, _parse_a1111),
)


# --------------------------------------------------------------------------- writing


class PreviewProblem(CivdeskError):
    """A preview could not be saved (not an image we know, or the fetch failed)."""


_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


class _Pid:
    """This process's id, asked once: ``os.getpid`` is a system call (glibc keeps no copy),
    and each one hands the interpreter lock over, which a first scan's companion writer
    would then wait to win back, once per file. A forked child asks again."""

    value = os.getpid()

    @classmethod
    def refresh(cls) -> None:
        cls.value = os.getpid()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_Pid.refresh)


#: The longest file name most file systems take (bytes, as ext4 and NTFS count them).
_NAME_MAX = 255


def _temp_name(name: str) -> str:
    """A temporary name beside ``name``, unique per process and thread, and never longer
    than a name may be: the companion of a 240-byte model name still gets written."""
    suffix = f".{_Pid.value}.{threading.get_ident()}.tmp"
    if len(os.fsencode(name)) + len(suffix) + 1 <= _NAME_MAX:
        return f".{name}{suffix}"
    return f".civdesk{suffix}"


def _atomic_write(path: Path, data: bytes, *, replace: bool = True) -> bool:
    """Write via a temp file in the same folder and ``os.replace``: readers never see half.
    ``replace=False``: never over an existing file (False when one is there).

    No fsync: companions can be rebuilt from Civitai, and thousands of fsyncs would make a
    first scan crawl on spinning disks. The temp name is unique per process and thread
    (``mkstemp``'s random names cost more than the write of a small file).
    """
    # Plain strings: Path operations cost more than the writes. Only the OS sees os_path's.
    folder, name = os.path.split(os.fspath(path))
    target = os_path(path)
    tmp = os_path(os.path.join(folder, _temp_name(name)))
    try:
        fd = os.open(tmp, _TEMP_FLAGS, 0o644)
    except FileExistsError:  # left by a crashed run that had our pid and thread id
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp",
                                   dir=os_path(folder) if folder else None)
        tmp = os_path(tmp)
    try:
        try:
            written = os.write(fd, data)
            if written < len(data):  # a short write: rare, but allowed to happen
                view = memoryview(data)[written:]
                while view:
                    view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        if not replace:
            return _place_new(tmp, target)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return True


def _place_new(tmp: str, target: str) -> bool:
    """Give ``tmp`` the name ``target`` unless that exists: a hard link fails rather than
    replace (the check and the rename are one step); file systems without links (FAT)
    check first. False, and ``tmp`` gone, when ``target`` exists. Both are OS paths
    (:func:`os_path`)."""
    try:
        try:
            os.link(tmp, target)
        except FileExistsError:
            return False
        except OSError:  # no hard links here
            if os.path.lexists(target):
                return False
            os.replace(tmp, target)
        return True
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def place_new_companion(path: Path, data: bytes) -> bool:
    """Write a companion atomically under ``path`` unless a file is there (False then):
    a companion civdesk did not write is never written over."""
    try:
        return _atomic_write(path, data, replace=False)
    except OSError as err:
        raise FileProblem(f"Cannot write {path}: {err.strerror or err}") from err


def move_file(source: str, target: str) -> None:
    """Rename ``source`` to ``target``; across drives, copy it under a temporary name
    beside the target, rename that into place and delete the source (if it can be), so the
    target is never a half-copied file."""
    folder, name = os.path.split(target)
    source, target = os_path(source), os_path(target)
    try:
        os.rename(source, target)
        return
    except OSError as err:
        if err.errno != errno.EXDEV:
            raise
    tmp = os_path(os.path.join(folder, _temp_name(name)))
    try:
        shutil.copy2(source, tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    # The copy is in place: a source that cannot be deleted (a read-only drive) only stays.
    with contextlib.suppress(OSError):
        os.unlink(source)


# One encoder for every call: json.dumps(..., ensure_ascii=False) builds a new one each time.
_INFO_ENCODER = json.JSONEncoder(ensure_ascii=False)
_encode_string = json.encoder.encode_basestring  # no ensure_ascii: UTF-8 text, as above


def _not_json(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not JSON")


# The C encoder itself, built once: JSONEncoder.encode builds one per call, which was a
# third of the cost of a .civitai.info (a first scan writes thousands). No circular check
# (markers=None): the values come from parsed JSON. None where CPython's _json is missing.
_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)  # not in typeshed
_C_ENCODE = (_c_make_encoder(None, _not_json, _encode_string, None, ": ", ", ", False, False,
                             True)
             if _c_make_encoder is not None else None)


def _encode_field(value: Any) -> str:
    """One top-level value; plain scalars without the encoder's per-call set-up cost."""
    if isinstance(value, str):
        return _encode_string(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if type(value) is int:
        return str(value)
    if _C_ENCODE is not None:
        return "".join(_C_ENCODE(value, 0))
    return _INFO_ENCODER.encode(value)


def info_json(version_json: Mapping[str, Any]) -> str:
    """The text of a ``.civitai.info``: one top-level field per line, each value compact.

    Readable in an editor and diffable, yet encoded by the C JSON encoder: ``indent=``
    falls back to the pure-Python encoder, ~4x slower, which a first scan of thousands of
    files pays in full.
    """
    fields = [f"  {_encode_string(str(key))}: {_encode_field(value)}"
              for key, value in version_json.items()]
    return "{\n" + ",\n".join(fields) + "\n}\n" if fields else "{}\n"


def write_info(
    model_path: Path, version_json: Mapping[str, Any], text: str | None = None
) -> Path:
    """Write ``<stem>.civitai.info`` (see :func:`info_json`), the version as Civitai sent it,
    over whatever is there: the app writes through :func:`write_companions`, which decides
    which name is the model's.

    ``text``: ``info_json(version_json)`` when the caller has encoded it already.
    """
    path = companion(_as_path(model_path), INFO_SUFFIX)
    _write_info_at(path, version_json, text)
    return path


def _write_info_at(path: Path, version_json: Mapping[str, Any], text: str | None) -> None:
    try:
        _atomic_write(path, (text or info_json(version_json)).encode("utf-8"))
    except OSError as err:
        raise FileProblem(f"Cannot write {path}: {err.strerror or err}") from err


def write_preview(model_path: Path, data: bytes, stem: str | None = None) -> Path:
    """Write ``<stem>.preview.<ext>``, the extension taken from the image bytes themselves,
    never over an existing file.

    Civitai's image URLs end in ``.jpeg`` whatever the encoding (often WebP), so the URL and
    the Content-Type are not trusted. Raises :class:`PreviewProblem` for non-images and
    when a file of that name exists (it is another model's, or came meanwhile).
    """
    model_path = _as_path(model_path)
    kind = sniff_image(data)
    if kind is None:
        raise PreviewProblem(
            f"The preview for {model_path.name} is not a PNG, JPEG, WebP or GIF image; skipped"
        )
    check_image(data, f"The preview for {model_path.name}")  # whoever fetched it
    path = model_path.with_name((stem or stem_of(model_path)) + f".preview.{kind}")
    try:
        placed = _atomic_write(path, data, replace=False)
    except OSError as err:
        raise FileProblem(f"Cannot write {path}: {err.strerror or err}") from err
    if not placed:
        raise PreviewProblem(f"{path.name} exists already and is left as it is")
    return path


class ImageFetcher(Protocol):
    """The part of CivitaiClient companions need."""

    def fetch_image(self, url: str) -> tuple[bytes, str]: ...


@dataclass(frozen=True)
class Companions:
    """The companion files of a model after :func:`write_companions`."""

    info_path: Path | None
    preview_path: Path | None
    wrote_info: bool = False
    wrote_preview: bool = False
    problems: tuple[str, ...] = ()
    for_other_tools: tuple[Path, ...] = ()  # .cm-info.json / .metadata.json written


def _sha256s_of(version: ModelVersion, sha256: str | None) -> frozenset[str]:
    """The hashes that identify the model being written for: its own when known, else
    every file of its version (one of them is it)."""
    if sha256:
        return frozenset((sha256.upper(),))
    return frozenset(digest for f in version.files for kind, value in f.hashes.items()
                     if kind.upper() == "SHA256" and (digest := _sha256(value)))


class _InfoFile:
    """What an existing ``.civitai.info`` (or a name for one) is to the model being
    written for."""

    def __init__(self, model_path: Path, present: _Presence, stem: str) -> None:
        actual = present.actual(stem + INFO_SUFFIX)  # the name as it is on disk
        self.path = model_path.with_name(actual or stem + INFO_SUFFIX)
        self.exists = actual is not None
        self.contested = present.contested(stem)
        self.data: Any = None
        if self.exists:
            with contextlib.suppress(OSError, ValueError):
                self.data = _load_json(self.path)

    def names_any(self, sha256s: Collection[str]) -> bool:
        return not _named_sha256s(self.data).isdisjoint(sha256s)

    def is_marker(self) -> bool:
        return isinstance(self.data, Mapping) and not self.data

    def is_current(self, version_id: int, sha256s: Collection[str]) -> bool:
        """This model's and of this version already: kept as it is."""
        if not (isinstance(self.data, Mapping) and _int(self.data.get("id")) == version_id):
            return False
        return self.names_any(sha256s) or not self.contested

    def may_replace(self, sha256s: Collection[str], recorded: Collection[str]) -> bool:
        """Only a companion of this very file is written over: one naming its hash, or (no
        other model sharing the name) the ``{}`` marker or the one the library recorded as
        the model's (the file was replaced in place)."""
        if not self.exists or self.names_any(sha256s):
            return True
        if self.contested:
            return False
        return self.is_marker() or os.fspath(self.path) in recorded


def _place_info(
    model_path: Path, version: ModelVersion, present: _Presence, sha256s: Collection[str],
    recorded: Collection[str], text: str | None,
) -> tuple[Path | None, bool]:
    """Write the model's ``.civitai.info`` where it may go; (its path, whether written).

    Under the plain stem when that is the model's alone or already names it, else under
    the whole file name; (None, False) when both names are another model's."""
    candidates = [_InfoFile(model_path, present, stem) for stem in companion_stems(model_path)]
    whole = candidates[0] if len(candidates) > 1 else None
    plain = candidates[-1]
    if whole is not None and whole.exists and not whole.contested:
        order = [whole]  # written by civdesk for this very file before: the one read first
    elif plain.exists or not plain.contested:
        order = [plain, *([whole] if whole else [])]
    else:  # a new plain one would be ambiguous: the stem is another model's too
        order = [whole] if whole else []
    for info in order:
        if info.is_current(version.id, sha256s):
            return info.path, False
        if info.may_replace(sha256s, recorded) and (info.exists or not info.contested):
            _write_info_at(info.path, version.raw or _minimal_version_json(version), text)
            return info.path, True
    return None, False


def free_stem(model_path: Path, siblings: Collection[str] | None = None) -> str | None:
    """The stem new companions of the model are named after: its stem, else its whole
    name, whichever no other model file in the folder shares (None: both are shared)."""
    return _free_stem(model_path, _Presence(_as_path(model_path), siblings))


def _free_stem(model_path: Path, present: _Presence) -> str | None:
    return next((stem for stem in reversed(companion_stems(model_path))
                 if not present.contested(stem)), None)


def write_companions(
    model_path: Path,
    version: ModelVersion,
    client: ImageFetcher | None,
    allow_nsfw: bool,
    siblings: Collection[str] | None = None,
    info_text: str | None = None,
    *,
    sha256: str | None = None,
    recorded: Collection[str | None] = (),
    formats: Collection[str] = (),
) -> Companions:
    """Write the missing ``.civitai.info`` and preview of an identified model file.

    An existing info file naming this version and any existing preview of the model are
    kept. Another file's companions are never written over (see :class:`_InfoFile`): the
    model's then take its whole file name. A failed image fetch never fails the whole:
    the info is still written and the problem reported. ``sha256``: the model's hash
    (else the version's files' hashes stand for it); ``recorded``: the companion paths the
    library holds for this model. ``info_text``: the info file's text when the caller has
    encoded the version already (:func:`info_json` of its JSON). ``formats``: the other
    tools' companions to write too (:mod:`civdesk.core.companion_formats`). Raises
    :class:`FileProblem` only when the info file cannot be written.
    """
    model_path = _as_path(model_path)
    problems: list[str] = []
    present = _Presence(model_path, siblings)
    sha256s = _sha256s_of(version, sha256)
    info_path, wrote_info = _place_info(
        model_path, version, present, sha256s, {os.fspath(p) for p in recorded if p},
        info_text)
    if info_path is None:
        problems.append(f"No {INFO_SUFFIX} for {model_path.name}: both names it could take "
                        "belong to other model files' companions")

    preview = find_preview(model_path, siblings, sha256s)
    wrote_preview = False
    stem = _free_stem(model_path, present)
    if preview is None and client is not None and stem is not None:
        image = version.preview_image(allow_nsfw)
        if image is not None:
            try:
                data, _content_type = client.fetch_image(image.url)
                preview = write_preview(model_path, data, stem=stem)
                wrote_preview = True
            except CivdeskError as err:
                problems.append(f"No preview for {model_path.name}: {err}")
    others: list[Path] = []
    if formats:
        from civdesk.core.companion_formats import write_for_other_tools  # it imports us

        others, more = write_for_other_tools(model_path, version, sha256, formats, preview,
                                             siblings)
        problems.extend(more)
    return Companions(info_path, preview, wrote_info, wrote_preview, tuple(problems),
                      tuple(others))


def _minimal_version_json(version: ModelVersion) -> dict[str, Any]:
    """For a version built in code rather than parsed (no raw JSON): the identifying fields."""
    out: dict[str, Any] = {"id": version.id, "modelId": version.model_id, "name": version.name}
    if version.base_model:
        out["baseModel"] = version.base_model
    if version.trained_words:
        out["trainedWords"] = list(version.trained_words)
    if version.model:
        out["model"] = {"name": version.model.name, "type": version.model.type}
    out["files"] = [
        {"id": f.id, "name": f.name, "sizeKB": f.size_kb, "type": f.type, "hashes": f.hashes}
        for f in version.files
    ]
    return out
