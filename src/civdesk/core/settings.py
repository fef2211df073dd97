"""User settings, persisted one key per row in the library database's ``settings`` table.

Loading is forgiving: a missing key gets its default and a stored value of the wrong shape
is replaced by the default (and logged), so a hand-edited or older database never stops
the app from starting.

Where downloads go: ``download_root`` when set; otherwise the first library folder;
otherwise ``~/civdesk-models`` (a visible folder in the home directory, easy to find and to
add to another UI later). Each model type then has a sub-folder named the way the
AUTOMATIC1111 / Forge web UIs expect (``type_folders``), so a download root pointed at a web
UI's ``models`` folder puts every file where that UI looks for it (embeddings go to the
checkout's own ``embeddings`` folder beside it: :func:`webui_embeddings`). ComfyUI names its
folders otherwise (``checkpoints``, ``loras``…): :meth:`Settings.adopt_layout_of` switches
the untouched defaults to those names when the download root is a ComfyUI ``models`` folder.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from civdesk.core.disks import HASHING_AUTO, HASHING_CHOICES

if TYPE_CHECKING:  # annotations only: the command line imports this module on every start
    from civdesk.core.library.repository import Library

log = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://civitai.com"
#: The site with all content, mature included (civitai.com is safe-for-work only since
#: April 2026); used instead of ``api_base`` when mature content is allowed.
DEFAULT_MATURE_API_BASE = "https://civitai.red"
FALLBACK_DOWNLOAD_ROOT = Path("~/civdesk-models")
OTHER_FOLDER = "Other"
#: Companion formats civdesk can write (civdesk.core.companion_formats): Civitai Helper's
#: .civitai.info (always), Stability Matrix's .cm-info.json, Lora Manager's .metadata.json.
COMPANION_FORMATS = ("civitai-info", "cm-info", "metadata-json")
DEFAULT_COMPANION_FORMATS = ("civitai-info",)
MAX_DEFAULT_HASH_WORKERS = 4  # hashing is mostly disk-bound; more threads just seek more

# Model type -> folder (relative: under the download root), as A1111/Forge name them.
DEFAULT_TYPE_FOLDERS: dict[str, str] = {
    "Checkpoint": "Stable-diffusion",
    "LORA": "Lora",
    "LoCon": "Lora",
    "DoRA": "Lora",
    "VAE": "VAE",
    "TextualInversion": "embeddings",
    "Hypernetwork": "hypernetworks",
    "Controlnet": "ControlNet",
    "Upscaler": "ESRGAN",
    "MotionModule": "AnimateDiff",
}
# The same for ComfyUI's models folder (AnimateDiff-Evolved's folder for motion modules).
COMFYUI_TYPE_FOLDERS: dict[str, str] = {
    "Checkpoint": "checkpoints",
    "LORA": "loras",
    "LoCon": "loras",
    "DoRA": "loras",
    "VAE": "vae",
    "TextualInversion": "embeddings",
    "Hypernetwork": "hypernetworks",
    "Controlnet": "controlnet",
    "Upscaler": "upscale_models",
    "MotionModule": "animatediff_models",
}
# The same for Stability Matrix's shared models folder (Data/Models), named after its
# SharedFolderType: LoCons and DoRAs have their own LyCORIS folder there.
STABILITY_MATRIX_TYPE_FOLDERS: dict[str, str] = {
    "Checkpoint": "StableDiffusion",
    "LORA": "Lora",
    "LoCon": "LyCORIS",
    "DoRA": "LyCORIS",
    "VAE": "VAE",
    "TextualInversion": "TextualInversion",
    "Hypernetwork": "Hypernetwork",
    "Controlnet": "ControlNet",
    "Upscaler": "ESRGAN",
    "MotionModule": "AnimateDiff",
}
A1111, COMFYUI, STABILITY_MATRIX = "a1111", "comfyui", "stabilitymatrix"
#: Sets of type folders by the tool that reads them, and what people call them.
FOLDER_LAYOUTS: dict[str, dict[str, str]] = {A1111: DEFAULT_TYPE_FOLDERS,
                                             COMFYUI: COMFYUI_TYPE_FOLDERS,
                                             STABILITY_MATRIX: STABILITY_MATRIX_TYPE_FOLDERS}
LAYOUT_NAMES = {A1111: "AUTOMATIC1111 / Forge", COMFYUI: "ComfyUI",
                STABILITY_MATRIX: "Stability Matrix"}
# Per layout, the folder names no other layout uses (``vae``/``VAE`` tell nothing apart).
_OWN_FOLDER_NAMES = {
    layout: {f.casefold() for f in folders.values()}
    - {f.casefold() for other, fs in FOLDER_LAYOUTS.items() if other != layout
       for f in fs.values()}
    for layout, folders in FOLDER_LAYOUTS.items()
}


def detect_layout(folder: str | os.PathLike[str]) -> str | None:
    """Whose ``models`` folder ``folder`` is, by the sub-folders only one web UI names
    so (``Stable-diffusion``, ``Lora`` against ``checkpoints``, ``loras``…); None when it
    has neither kind (or as many of each), or cannot be read."""
    try:
        with os.scandir(folder) as entries:
            names = {e.name.casefold() for e in entries if e.is_dir()}
    except OSError:
        return None
    found = {layout: len(names & own) for layout, own in _OWN_FOLDER_NAMES.items()}
    best = max(found, key=lambda layout: found[layout])
    if not found[best] or list(found.values()).count(found[best]) > 1:
        return None
    return best


def webui_embeddings(models: Path) -> Path | None:
    """The ``embeddings`` folder of the AUTOMATIC1111 or Forge checkout whose ``models``
    folder this is, or None.

    Those UIs read embeddings from the checkout's own ``embeddings`` folder, beside
    ``models``; one under ``models`` goes unseen. A checkout is known by its ``webui.py``
    and its ``embeddings`` folder (SD.Next, which also has a ``webui.py``, keeps
    embeddings under ``models``). Two ``stat`` calls: downloads ask on a worker thread.
    """
    if models.name.casefold() != "models":
        return None
    checkout = models.parent
    try:
        if (checkout / "webui.py").is_file() and (checkout / "embeddings").is_dir():
            return checkout / "embeddings"
    except OSError:
        pass
    return None


def as_spelled_on_disk(root: Path, relative: Path) -> Path:
    """``root / relative``, each missing folder replaced by one that exists spelled with
    other capitals (``LORA`` for ``Lora``).

    Windows and macOS see those as one folder; Linux sees two, and a download would start a
    second ``Lora`` beside the ``LORA`` the user sorted their LoRAs into. A few ``stat``
    calls, and a listing only where the name is missing: downloads ask on a worker thread.
    """
    path = root
    for part in relative.parts:
        candidate = path / part
        try:
            if not candidate.exists() and path.is_dir():
                wanted = part.casefold()
                same = sorted(e.name for e in os.scandir(path)
                              if e.name.casefold() == wanted and e.is_dir())
                if same:
                    candidate = path / same[0]
        except OSError:
            pass  # an unreadable folder: the name as configured, and the download says why
        path = candidate
    return path


def default_hash_workers() -> int:
    return max(1, min(os.cpu_count() or 2, MAX_DEFAULT_HASH_WORKERS))


@dataclass
class Settings:
    """Everything the user can set. Mutate fields, then :meth:`save`."""

    api_base: str = DEFAULT_API_BASE
    mature_api_base: str = DEFAULT_MATURE_API_BASE
    library_folders: list[str] = field(default_factory=list)
    download_root: str | None = None  # None: see the module docstring
    type_folders: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_TYPE_FOLDERS))
    allow_nsfw: bool = False  # "allow mature content": shown, searched and identified
    minimize_to_tray: bool = False
    hash_workers: int = field(default_factory=default_hash_workers)
    #: How big files are hashed: "auto" (one at a time on hard disks and network shares,
    #: in parallel elsewhere), "parallel" or "one-at-a-time" (see civdesk.core.disks).
    hashing: str = HASHING_AUTO
    #: Companion files written for downloaded and identified models: always
    #: "civitai-info"; "cm-info" (Stability Matrix) and "metadata-json" (Lora Manager)
    #: when asked (see civdesk.core.companion_formats).
    companion_formats: list[str] = field(
        default_factory=lambda: list(DEFAULT_COMPANION_FORMATS))

    # ------------------------------------------------------------------- persistence

    @classmethod
    def load(cls, library: Library) -> Settings:
        """The stored settings, with defaults for anything missing or malformed."""
        return cls.from_values(library.settings_values())

    @classmethod
    def from_values(cls, stored: dict[str, Any]) -> Settings:
        """Settings from stored values (key -> JSON value), as :meth:`load` reads them."""
        settings = cls()
        for f in dataclasses.fields(cls):
            if f.name not in stored:
                continue
            value = _validated(f.name, stored[f.name])
            if value is _INVALID:
                log.warning("Ignoring the stored setting %s: unexpected value", f.name)
                continue
            if f.name == "type_folders":
                # Stored entries override the defaults; new default types still appear.
                value = {**DEFAULT_TYPE_FOLDERS, **value}
            setattr(settings, f.name, value)
        settings._baseline = settings._values()
        return settings

    def save(self, library: Library) -> None:
        """Store the fields changed since :meth:`load` (every field when not loaded).

        Another process (a second ``civdesk`` command, the window) may have saved since:
        a field this one did not change keeps its value, and the library folders this one
        added or removed are applied to the list stored now, so both changes stay.
        """
        values = self._values()
        baseline = getattr(self, "_baseline", None)
        if baseline is None:
            library.save_settings(values)
        else:
            changed = {k: v for k, v in values.items() if baseline.get(k) != v}
            before, now = baseline.get("library_folders", []), changed.pop("library_folders",
                                                                          None)
            lists = {}
            if now is not None:
                lists["library_folders"] = ([f for f in now if f not in before],
                                            [f for f in before if f not in now])
            merged = library.save_settings(changed, list_changes=lists)
            if "library_folders" in merged:  # with what another process added meanwhile
                self.library_folders = list(merged["library_folders"])
                values["library_folders"] = list(self.library_folders)
        self._baseline = values

    def _values(self) -> dict[str, Any]:
        """The fields as stored (type folders: only those that differ from the defaults)."""
        values: dict[str, Any] = {
            f.name: copy.deepcopy(getattr(self, f.name)) for f in dataclasses.fields(self)
        }
        values["type_folders"] = {
            kind: folder
            for kind, folder in self.type_folders.items()
            if DEFAULT_TYPE_FOLDERS.get(kind) != folder
        }
        values["library_folders"] = list(self.library_folders)
        return values

    # ----------------------------------------------------------------------- folders

    @property
    def effective_download_root(self) -> Path:
        """Where downloads go when no type folder is absolute (see the module docstring)."""
        if self.download_root:
            return Path(self.download_root).expanduser()
        if self.library_folders:
            return Path(self.library_folders[0]).expanduser()
        return FALLBACK_DOWNLOAD_ROOT.expanduser()

    def folder_for_type(self, model_type: str) -> Path:
        """The folder a download of this model type goes to (not created here)."""
        folder = self.type_folders.get(model_type) or DEFAULT_TYPE_FOLDERS.get(
            model_type, OTHER_FOLDER
        )
        path = Path(folder).expanduser()
        if path.is_absolute():
            return path
        root = self.effective_download_root
        if model_type == "TextualInversion" and folder == DEFAULT_TYPE_FOLDERS[model_type]:
            beside = webui_embeddings(root)
            if beside is not None:
                return beside
        return as_spelled_on_disk(root, path)

    @property
    def layout(self) -> str | None:
        """The web UI whose folder names the type folders are (None: the user's own)."""
        for name, folders in FOLDER_LAYOUTS.items():
            if all(self.type_folders.get(kind) == folder for kind, folder in folders.items()):
                return name
        return None

    def use_layout(self, name: str) -> None:
        """Name the type folders as ``name``'s web UI does (:data:`FOLDER_LAYOUTS`)."""
        self.type_folders = {**self.type_folders, **FOLDER_LAYOUTS[name]}

    def adopt_layout_of(self) -> str | None:
        """:meth:`adopt_layout` of what the download root is.

        Reads the folder's listing: off the GUI thread (the window runs
        :func:`detect_layout` on a worker, then :meth:`adopt_layout`).
        """
        return self.adopt_layout(detect_layout(self.effective_download_root))

    def adopt_layout(self, found: str | None) -> str | None:
        """Follow the web UI ``found`` (:func:`detect_layout` of the download root) while
        the type folders are still the defaults; the layout adopted, or None.

        Only that one step: folders the user named are theirs, and an A1111 root needs
        nothing.
        """
        if self.layout != A1111 or found is None or found == A1111:
            return None
        self.use_layout(found)
        return found

    def add_library_folder(self, path: str | os.PathLike[str]) -> bool:
        """Add a folder to scan; False when it is already covered by one in the list.

        The path is made absolute and normalised. Adding a parent of folders already in
        the list replaces them (they would otherwise be scanned twice).
        """
        new = _normalised(path)
        existing = [Path(p) for p in self.library_folders]
        if any(new == old or new.is_relative_to(old) for old in existing):
            return False
        kept = [str(old) for old in existing if not old.is_relative_to(new)]
        self.library_folders = [*kept, str(new)]
        return True

    def remove_library_folder(self, path: str | os.PathLike[str]) -> bool:
        """Remove a folder from the list; False if it was not in it."""
        target = _normalised(path)
        before = len(self.library_folders)
        self.library_folders = [p for p in self.library_folders if Path(p) != target]
        return len(self.library_folders) != before


def _normalised(path: str | os.PathLike[str]) -> Path:
    # resolve(strict=False): absolute, "..", and symlinks resolved where they exist, so
    # a folder reached two ways is still recognised as the same one.
    return Path(path).expanduser().resolve()


_INVALID = object()


#: What people paste when they copy the API's address instead of the site's.
_API_PATH = "/api/v1"


def normalised_api_base(text: str) -> str:
    """The Civitai site root ``text`` names, without a trailing ``/`` or ``/api/v1``.

    The base is the site root (the client adds ``/api/v1``), but the API's own address is
    an easy thing to paste. :class:`ValueError`, with the expected form, for anything that
    is not an http(s) address with a host.
    """
    root = text.strip().rstrip("/")
    if not _is_web_address(root):
        raise ValueError(f"{text!r} is not the address of a Civitai site; give its root, "
                         f"e.g. {DEFAULT_API_BASE}")
    if root.lower().endswith(_API_PATH):
        root = root[: -len(_API_PATH)]
    return root


def _is_web_address(url: str) -> bool:
    try:
        parts = urlsplit(url)
        port = parts.port  # a port that is not a number raises ValueError here
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and port != 0


def _validated(name: str, value: Any) -> Any:
    """``value`` if it has the right shape for setting ``name``, else ``_INVALID``."""
    if name in ("api_base", "mature_api_base"):
        try:
            return normalised_api_base(value) if isinstance(value, str) else _INVALID
        except ValueError:
            return _INVALID
    if name == "library_folders":
        ok = isinstance(value, list) and all(isinstance(p, str) and p for p in value)
        return list(value) if ok else _INVALID
    if name == "download_root":
        return value if value is None or (isinstance(value, str) and value) else _INVALID
    if name == "type_folders":
        ok = isinstance(value, dict) and all(
            isinstance(k, str) and isinstance(v, str) and v for k, v in value.items()
        )
        return dict(value) if ok else _INVALID
    if name in ("allow_nsfw", "minimize_to_tray"):
        return value if isinstance(value, bool) else _INVALID
    if name == "companion_formats":
        ok = isinstance(value, list) and all(
            v in COMPANION_FORMATS for v in value)
        return list(value) if ok else _INVALID
    if name == "hashing":
        return value if value in HASHING_CHOICES else _INVALID
    if name == "hash_workers":
        ok = isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 64
        return value if ok else _INVALID
    return _INVALID
