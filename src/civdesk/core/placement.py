"""Where a download of a model type goes: where the library already keeps that type.

A library organised by hand (LoRAs under ``LORA/``, or ``loras/sdxl/``) gets downloads where
its owner would put them, beyond the named layouts of :mod:`civdesk.core.settings`. The
order: a type folder the user named in the settings, else the folder of the library that
holds most of that type's files, else the layout's folder for the type.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from civdesk.core.errors import UnsafePath
from civdesk.core.library import Library
from civdesk.core.longpaths import os_path
from civdesk.core.settings import FOLDER_LAYOUTS, OTHER_FOLDER, Settings

#: Files of a type the library must hold before their folder is taken as the type's home.
MIN_FILES = 2


#: Where :func:`placement_of` found a type's folder.
FROM_SETTINGS, FROM_LIBRARY, FROM_LAYOUT = "settings", "library", "layout"


@dataclass(frozen=True)
class Placement:
    """The folder a type's downloads go to, and why there: ``source`` is
    :data:`FROM_SETTINGS` (a folder the user named), :data:`FROM_LIBRARY` (where the
    library keeps that type, learned from its files) or :data:`FROM_LAYOUT` (the layout's
    name for the type under the download folder)."""

    folder: Path
    source: str


def download_folder(settings: Settings, library: Library, model_type: str) -> Path:
    """The folder a download of ``model_type`` goes to (not created here). Reads the
    library and stats a folder: call it off the GUI thread."""
    return placement_of(settings, library, model_type).folder


def placement_of(settings: Settings, library: Library, model_type: str) -> Placement:
    """:func:`download_folder` with where it comes from (``civdesk config`` shows both)."""
    if named_by_user(settings, model_type):
        return Placement(settings.folder_for_type(model_type), FROM_SETTINGS)
    learned = learned_folder(library, _sharing_a_folder(settings, model_type))
    if learned is not None:
        return Placement(learned, FROM_LIBRARY)
    return Placement(settings.folder_for_type(model_type), FROM_LAYOUT)


def allowed_roots(settings: Settings) -> list[Path]:
    """The folders downloads may go under: the library folders and the download root."""
    roots = [Path(folder).expanduser() for folder in settings.library_folders]
    return [*roots, settings.effective_download_root]


def chosen_download_folder(settings: Settings, folder: str | os.PathLike[str]) -> Path:
    """``folder`` (one the user picked for a download), resolved, when it lies inside a
    folder of :func:`allowed_roots`; else :class:`UnsafePath` saying where it may go.
    Resolves links (stats): call it off the GUI thread."""
    chosen = Path(os.path.realpath(Path(folder).expanduser()))
    roots = allowed_roots(settings)
    for root in roots:
        real_root = os.path.realpath(root)
        try:
            if os.path.commonpath([real_root, chosen]) == real_root:
                return chosen
        except ValueError:
            continue  # another drive (Windows)
    listed = "\n".join(f"  {root}" for root in roots)
    raise UnsafePath(f"{folder} is outside the folders civdesk manages; choose a folder "
                     f"inside one of them (add it in Settings first):\n{listed}")


def named_by_user(settings: Settings, model_type: str) -> bool:
    """Whether the type's folder is one the user chose, not a named layout's (explicit
    settings win over what the library suggests)."""
    folder = settings.type_folders.get(model_type)
    if not folder or folder == OTHER_FOLDER:
        return False
    return all(layout.get(model_type) != folder for layout in FOLDER_LAYOUTS.values())


def _sharing_a_folder(settings: Settings, model_type: str) -> list[str]:
    """The type, then the types the settings send to the same folder (LoCons and DoRAs go
    where LoRAs do, when the library holds none of them yet)."""
    folder = settings.type_folders.get(model_type)
    return [model_type, *(kind for kind, other in settings.type_folders.items()
                          if kind != model_type and folder and other == folder)]


def learned_folder(library: Library, model_types: Iterable[str]) -> Path | None:
    """The folder where the library keeps the first of ``model_types`` it holds at least
    :data:`MIN_FILES` of; None when it holds too few or scatters them."""
    for kind in model_types:
        found = most_common_folder(library.paths_of_type([kind]))
        if found is not None:
            return found
    return None


def most_common_folder(files: Iterable[tuple[str, str]]) -> Path | None:
    """The deepest folder (a library folder or one under it) holding more than half of
    ``files`` ((path, library folder) pairs), if it exists now; None for fewer than
    :data:`MIN_FILES` files or when no folder holds most of them.

    Deepest: LoRAs in ``loras/sdxl`` (5) and ``loras/sd15`` (2) go to ``loras/sdxl``; in
    ``LORA/style`` (3) and ``LORA/people`` (3), to ``LORA``.
    """
    under: Counter[tuple[str, ...]] = Counter()
    at_root: Counter[str] = Counter()  # files right in a library folder, not below it
    total = 0
    for path, root in files:
        relative = os.path.relpath(os.path.dirname(path), root)
        if relative.startswith(os.pardir):
            continue  # not under its library folder (moved by hand since): no evidence
        parts = () if relative == os.curdir else tuple(Path(relative).parts)
        total += 1
        at_root[root] += not parts
        for depth in range(1, len(parts) + 1):
            under[(root, *parts[:depth])] += 1
    if total < MIN_FILES:
        return None
    most = [key for key, count in under.items() if count * 2 > total]
    most += [(root,) for root, count in at_root.items() if count * 2 > total]
    if not most:
        return None  # a library folder holding them all in several folders says nothing
    deepest = max(most, key=len)  # the ones holding most of them lie on one line
    folder = Path(deepest[0], *deepest[1:])
    try:
        return folder if os.path.isdir(os_path(folder)) else None
    except OSError:
        return None
