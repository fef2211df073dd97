"""Bring a library back from its manifest (:mod:`civdesk.core.manifest`).

What is already on disk is found by its SHA256: the library's own records, after a scan of
the folders the library is restored into (the scanner registers, hashes and identifies
what it finds there). The rest is queued on the normal :class:`DownloadQueue` into the
folder it had below its library folder, so resume, SHA256 verification and companion files
apply as to any download. Manual links are re-applied to files that are present. What
cannot come back is reported by name with the reason: files Civitai never knew, files
linked by hand (Civitai has other bytes), versions Civitai no longer has, models removed.

Nothing is written outside the destination folders: every target is checked against its
folder, on top of the manifest's own path validation.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from civdesk.core.civitai.errors import Archived, NotFound
from civdesk.core.civitai.schema import ModelVersion
from civdesk.core.civitai.sites import Sites, mature_hint
from civdesk.core.errors import CivdeskError
from civdesk.core.library.repository import Library, LocalFile
from civdesk.core.manifest import Manifest, ManifestFile
from civdesk.core.settings import DEFAULT_TYPE_FOLDERS, Settings

if TYPE_CHECKING:
    from civdesk.core.context import Core
    from civdesk.core.downloads.queue import DownloadQueue
    from civdesk.core.scanner import ScanSummary
    from civdesk.core.scanner import VersionSource as LookupSource

log = logging.getLogger(__name__)

REMOVED_MODES = ("Archived", "TakenDown")


class VersionSource(Protocol):
    def get_version(self, version_id: int) -> ModelVersion: ...


@dataclass(frozen=True)
class RestoreItem:
    """One manifest file and what restore did (or would do) with it."""

    name: str  # how the user knows it (model and version, or its file name)
    path: str  # where it belongs (absolute, below its destination folder)
    sha256: str | None
    reason: str | None = None  # why it cannot come back
    task_id: int | None = None  # the queued download
    present_at: str | None = None  # the file already on disk


@dataclass
class RestoreOutcome:
    present: list[RestoreItem] = field(default_factory=list)
    queued: list[RestoreItem] = field(default_factory=list)
    linked: list[RestoreItem] = field(default_factory=list)
    cannot: list[RestoreItem] = field(default_factory=list)
    dry_run: bool = False
    destinations: list[str] = field(default_factory=list)
    layout_applied: bool = False

    @property
    def complete(self) -> bool:
        return not self.cannot

    def record(self) -> dict[str, object]:
        """The outcome as JSON (``civdesk restore --json``)."""
        def items(group: list[RestoreItem]) -> list[dict[str, object]]:
            return [{k: v for k, v in vars(i).items() if v is not None} for i in group]
        return {"dry_run": self.dry_run, "destinations": self.destinations,
                "present": items(self.present), "queued": items(self.queued),
                "linked": items(self.linked), "cannot_restore": items(self.cannot),
                "type_folders_applied": self.layout_applied}


def destinations(manifest: Manifest, dest: Path | None, library_folders: list[str]) -> list[Path]:
    """Where each manifest root goes: ``dest`` for a single root (each root in its own
    folder under ``dest`` when there are several); without ``dest``, this library's
    folders by position. A :class:`CivdeskError` when that is not possible."""
    count = max(1, len(manifest.roots))
    if dest is not None:
        if count == 1:
            return [dest]
        names = _distinct([r.name for r in manifest.roots])
        return [dest / name for name in names]
    if len(library_folders) >= count:
        return [Path(f) for f in library_folders[:count]]
    raise CivdeskError(
        f"The manifest has {count} library folder(s) and this library "
        f"{len(library_folders) or 'none'}: say where the files go with --dest DIR")


def _distinct(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        key = name.casefold()
        seen[key] = seen.get(key, 0) + 1
        out.append(name if seen[key] == 1 else f"{name} ({seen[key]})")
    return out


def restore_library(core: Core, manifest: Manifest, dest: Path | None, *,
                    client: VersionSource, lookup: LookupSource | None,
                    queue: DownloadQueue | None, dry_run: bool = False) -> RestoreOutcome:
    """Restore ``manifest`` into ``dest`` (see :func:`destinations`) for a front end: the
    destination is scanned with ``lookup`` first (a dry run identifies nothing online and
    writes no companions: it only hashes), then :class:`Restorer` does the rest."""
    from civdesk.core.scanner import Scanner

    roots = destinations(manifest, dest, core.settings.library_folders)
    scanner = Scanner(core.library, None if dry_run else lookup, core.settings)
    restorer = Restorer(core.library, core.settings, client, queue,
                        scan=lambda folders: scanner.scan(folders, full=False),
                        sites=core.sites)
    return restorer.restore(manifest, roots, dry_run=dry_run)


class Restorer:
    """Restore a :class:`Manifest` into folders (see the module docstring)."""

    def __init__(self, library: Library, settings: Settings, client: VersionSource,
                 queue: DownloadQueue | None,
                 scan: Callable[[list[Path]], ScanSummary | None] | None = None,
                 sites: Sites | None = None) -> None:
        """``scan(folders)`` registers what is on disk there (a :class:`Scanner` scan);
        ``queue`` may be None for a dry run; ``sites``: a version not found while mature
        content is hidden may be mature, and the reason says how to allow it."""
        self.sites = sites
        self.library = library
        self.settings = settings
        self.client = client
        self.queue = queue
        self.scan = scan
        self._versions: dict[int, ModelVersion | CivdeskError] = {}

    def restore(self, manifest: Manifest, roots: list[Path], *,
                dry_run: bool = False) -> RestoreOutcome:
        roots = [Path(os.path.abspath(r)) for r in roots]
        outcome = RestoreOutcome(dry_run=dry_run, destinations=[str(r) for r in roots])
        layout = self._layout(manifest)
        if not dry_run:
            for root in roots:
                root.mkdir(parents=True, exist_ok=True)
                self.settings.add_library_folder(root)
            if layout is not None:
                self.settings.type_folders = layout
                outcome.layout_applied = True
            self.settings.save(self.library)
        if self.scan is not None:
            existing = [r for r in roots if r.is_dir()]
            if existing:
                self.scan(existing)
        types = layout or self.settings.type_folders
        done: set[str] = set()
        for f in manifest.files:
            target = _target(f, roots, types)
            key = f.sha256 or f"{f.root}/{f.path}"
            if key in done:
                continue  # a second copy of the same bytes: once is enough
            done.add(key)
            self._restore_file(f, target, outcome, dry_run)
        return outcome

    def _layout(self, manifest: Manifest) -> dict[str, str] | None:
        """The manifest's type folders, when this library's are still the defaults (the
        user's own choice here is kept)."""
        if not manifest.type_folders:
            return None
        if any(DEFAULT_TYPE_FOLDERS.get(k) != v for k, v in self.settings.type_folders.items()):
            return None
        return {**DEFAULT_TYPE_FOLDERS, **manifest.type_folders}

    def _restore_file(self, f: ManifestFile, target: Path, outcome: RestoreOutcome,
                      dry_run: bool) -> None:
        item = RestoreItem(f.name, str(target), f.sha256)
        present = self._present(f)
        if present is not None:
            item = RestoreItem(f.name, str(target), f.sha256, present_at=present.path)
            if f.manual and f.version_id is not None and not (
                    present.identified_by == "manual" and present.version_id == f.version_id):
                self._relink(f, present, item, outcome, dry_run)
            else:
                outcome.present.append(item)
            return
        if f.version_id is None:
            outcome.cannot.append(_cannot(item, "Civitai never knew this file (not identified "
                                                "by its hash), so it cannot be downloaded"))
            return
        if f.manual:
            outcome.cannot.append(_cannot(item, "linked by hand: Civitai has no file with "
                                                "these bytes, so it cannot be downloaded"))
            return
        found = self._version(f.version_id)
        if isinstance(found, CivdeskError):
            outcome.cannot.append(_cannot(item, str(found)))
            return
        file = found.file_by_id(f.file_id) if f.file_id is not None else None
        file = file or (found.file_with_hash(f.sha256) if f.sha256 else None)
        if file is None:
            outcome.cannot.append(_cannot(item, "Civitai no longer offers this file of "
                                                f"version {f.version_id}"))
            return
        if f.sha256 and file.sha256 and file.sha256.upper() != f.sha256:
            outcome.cannot.append(_cannot(item, "Civitai's file now has other bytes than the "
                                                "one in the manifest"))
            return
        if not _inside(target, outcome.destinations):
            outcome.cannot.append(_cannot(item, "its path leads outside the folders "
                                                "restored into"))
            return
        if not dry_run:
            task_id = self._queue(found, file.id, target.parent)
            item = RestoreItem(f.name, str(target), f.sha256, task_id=task_id)
        outcome.queued.append(item)

    def _queue(self, version: ModelVersion, file_id: int, folder: Path) -> int:
        """A task for this file and folder: the unfinished one of an earlier restore (it
        resumes its ``.part``), else a new one."""
        assert self.queue is not None
        for task in self.queue.tasks():
            if (task.version_id, task.file_id, task.dest_dir) == (version.id, file_id,
                                                                  str(folder)):
                if task.state == "failed":
                    self.queue.retry(task.id)
                if task.state in ("queued", "failed", "downloading"):
                    return task.id
        return self.queue.add(version.id, file_id, folder, version=version)

    def _relink(self, f: ManifestFile, present: LocalFile, item: RestoreItem,
                outcome: RestoreOutcome, dry_run: bool) -> None:
        from civdesk.core.scanner import Scanner

        assert f.version_id is not None
        found = self._version(f.version_id)
        if isinstance(found, CivdeskError):
            outcome.cannot.append(_cannot(item, f"its manual link cannot be re-applied: {found}"))
            return
        if not dry_run:
            # force: the link is the user's own decision, recorded in the manifest.
            Scanner(self.library, None, self.settings).link(present.path, found, force=True)
        outcome.linked.append(item)

    def _present(self, f: ManifestFile) -> LocalFile | None:
        """A file on disk the library knows holds these bytes (unchanged since hashed)."""
        return self.library.unchanged_file(f.sha256) if f.sha256 else None

    def _version(self, version_id: int) -> ModelVersion | CivdeskError:
        """The version as Civitai has it now (once per version), or why it cannot come back;
        other failures (no network, a refused key) stop the restore."""
        if version_id not in self._versions:
            version: ModelVersion | CivdeskError
            try:
                if self.sites is None:
                    found = self.client.get_version(version_id)
                else:
                    with mature_hint(self.sites):
                        found = self.client.get_version(version_id)
            except NotFound as exc:
                hint = str(exc).partition("; if it is mature content")[2]
                hint = f"; if it is mature content{hint}" if hint else ""
                version = CivdeskError(f"version {version_id} is no longer on Civitai "
                                       f"(404){hint}")
            except Archived:
                version = CivdeskError("removed from Civitai (archived)")
            else:
                mode = found.model.mode if found.model else None
                version = (CivdeskError(f"removed from Civitai ({mode})")
                           if mode in REMOVED_MODES else found)
            self._versions[version_id] = version
        return self._versions[version_id]


def _cannot(item: RestoreItem, reason: str) -> RestoreItem:
    return RestoreItem(item.name, item.path, item.sha256, reason=reason)


def _target(f: ManifestFile, roots: list[Path], type_folders: dict[str, str]) -> Path:
    """Where the file belongs: below its root; a file that was outside every library folder
    goes into its type's folder under the first destination."""
    if f.root is not None and f.root < len(roots):
        return roots[f.root].joinpath(*f.path.split("/"))
    folder = type_folders.get(f.type or "") or DEFAULT_TYPE_FOLDERS.get(f.type or "", "Other")
    if Path(folder).is_absolute() or ".." in Path(folder).parts:
        folder = "Other"  # this library's own absolute folder is not the manifest's to use
    return roots[0].joinpath(*Path(folder).parts, f.path.split("/")[-1])


def _inside(target: Path, destinations: list[str]) -> bool:
    """The target is below a destination folder as written (the manifest's paths were
    checked when read; this holds for a :class:`Manifest` built any other way too).
    Symlinks inside the destination are the user's own layout (a type folder on another
    drive) and are followed, as every download follows them."""
    normal = Path(os.path.normpath(target))
    return any(normal.is_relative_to(os.path.normpath(d)) for d in destinations)
