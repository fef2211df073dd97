"""The library scanner: walk → sidecars → hash → look up → companions → register → clean up.

A rescan of an unchanged library must be instant, so a file whose (size, mtime_ns, inode)
match what the library stored is never read. A file that vanished from one path and shows
up at another (same identity, or same hash) is a move, and keeps its row, added_at and
history. New and changed files are hashed on a thread pool, big files first; results are
settled in batches (one Civitai request per 100 hashes, one database transaction per batch)
while the pool keeps hashing, so network and database work hide behind the disk.

Safety of the user's library comes first: a library folder that is missing, unreadable or
suddenly empty (an unplugged drive, an unmounted share) never loses its entries; it is
reported in ``missing_roots`` instead. Below a library folder the same holds at any depth
(:mod:`civdesk.core.drives`): a file is forgotten only when its folder is there, readable
and on the device the file was last seen on; the others are kept and marked offline, and
come back online with the next scan that sees them.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import NamedTuple, Protocol

from civdesk.core.civitai.errors import CivitaiError
from civdesk.core.civitai.schema import ModelVersion
from civdesk.core.civitai.threads import ThreadClients
from civdesk.core.companion_formats import formats_of
from civdesk.core.disks import HASHING_AUTO, Classifier, classify, disk_position, one_at_a_time_key
from civdesk.core.drives import Presence
from civdesk.core.errors import Cancelled, CivdeskError
from civdesk.core.hashing import (
    SMALL_FILE,
    CancelFlag,
    FileStat,
    Hasher,
    Turn,
    default_workers,
    hash_many,
    sha256_file,
)
from civdesk.core.library import Library, LocalFile
from civdesk.core.library.repository import FileMove, FileRecord, version_form_json
from civdesk.core.longpaths import os_path, real_path
from civdesk.core.sidecars import (
    IDENTIFYING_SUFFIXES,
    INFO_SUFFIX,
    USER_META_SUFFIXES,
    Companions,
    FolderNames,
    ImageFetcher,
    SidecarInfo,
    companion_stems,
    find_info,
    find_preview,
    free_stem,
    info_json,
    is_model_file_name,
    move_file,
    owns_companion,
    read_sidecars,
    write_companions,
)

log = logging.getLogger(__name__)

LOOKUP_BATCH = 100  # Civitai's bulk by-hash route takes up to 100 hashes per request
# Batches looked up at once. Each by-hash request to Civitai takes a few hundred ms (the
# server's work and the way there), while a batch hashes and settles here in tens: with one
# request at a time a first scan of thousands of small files waits on them in turn. Three
# stay polite to a server that publishes no limit (a 429 still backs every one of them off).
LOOKUP_CONCURRENCY = 3
SETTLE_BATCH = 100  # files looked up and settled together while hashing continues
#: Files stored per database transaction. A commit writes every page it changed to the
#: write-ahead log, and with hashes and paths as index keys 100 files change ~1,000 pages
#: while 500 change few more: fewer, larger transactions write several times less.
STORE_BATCH = 500
PROGRESS_INTERVAL = 0.1  # seconds between progress callbacks (phase changes always report)
CANCEL_POLL = 0.2  # seconds between looks at the cancel flag while waiting on Civitai
# Companion files (info + preview fetch) of a batch are written by a few threads, each with
# its own client: the preview fetches wait on the network, not on a core. With ~150 ms per
# image from afar, 1,000 previews took 39 s with 4 threads, 20 s with 8 (a browser opens 6
# connections per host; Civitai's pages load dozens of images at once).
COMPANION_WORKERS = 8
DEFAULT_RECHECK_UNKNOWN = timedelta(days=30)

PHASE_WALKING = "walking"
PHASE_HASHING = "hashing"
PHASE_LOOKING_UP = "looking up"
PHASE_CLEANING = "cleaning up"
PHASE_DONE = "done"


class LinkConflict(CivdeskError):
    """A manual link of a file Civitai knows, by its hash, as another version."""

    def __init__(self, file_name: str, known: ModelVersion, wanted: ModelVersion) -> None:
        super().__init__(f"{file_name} is {_version_words(known)} on Civitai (its SHA256 is "
                         f"that file's), not {_version_words(wanted)}: it was not linked")
        self.known, self.wanted = known, wanted


def _version_words(version: ModelVersion) -> str:
    name = " ".join(filter(None, (version.model.name if version.model else None, version.name)))
    return f"{name} (version {version.id})" if name else f"version {version.id}"


class ScanSettings(Protocol):
    """The settings the scanner reads (``civdesk.core.settings.Settings`` has them)."""

    library_folders: list[str]
    allow_nsfw: bool
    type_folders: dict[str, str]

    @property
    def effective_download_root(self) -> Path: ...

    def folder_for_type(self, model_type: str) -> Path: ...


class VersionSource(Protocol):
    """The part of ``CivitaiClient`` the scanner uses."""

    def versions_by_sha256(self, digests: Iterable[str]) -> dict[str, ModelVersion]: ...

    def get_version(self, version_id: int) -> ModelVersion: ...

    def fetch_image(self, url: str) -> tuple[bytes, str]: ...


@dataclass(frozen=True)
class ScanProgress:
    phase: str
    files_found: int
    files_hashed: int
    files_identified: int
    current_path: str | None
    bytes_done: int
    bytes_total: int
    files_to_hash: int = 0  # of files_found: the new and changed ones (the rest are known)


@dataclass
class ScanSummary:
    """What a scan did. ``duplicates`` counts extra copies: files whose content is also at
    another path among the scanned ones (two identical files count 1)."""

    found: int = 0
    identified: int = 0
    unknown: int = 0
    removed: int = 0
    moved: int = 0
    duplicates: int = 0
    errors: list[str] = field(default_factory=list)
    missing_roots: list[str] = field(default_factory=list)
    hashed: int = 0  # files read this scan (the rest were unchanged)
    unchanged: int = 0
    companions_written: int = 0
    offline: int = 0  # entries kept although not on disk: their drive or folder is away


ProgressCallback = Callable[[ScanProgress], None]


@dataclass
class _Found:
    """One model file seen by the walk."""

    path: Path
    stat: FileStat
    root: Path
    siblings: FolderNames  # the names in its folder, shared by every file of the folder
    device: int = 0  # st_dev: with stat.inode, tells the same file reached by two paths
    via_link: bool = False  # reached through a symlink (the file's or a folder's on the way)
    # st_dev of the entry itself (a symlinked file's link, not its target): the device of
    # the folder it is in, which tells a deleted file from one whose drive is away.
    entry_device: int = 0
    #: str(path) as the listing gave it: a Path makes its text on first use, which costs
    #: more than anything else a rescan does for an unchanged file.
    text: str = ""

    @property
    def key(self) -> str:
        """The path as text (the library's key for the file)."""
        return self.text or os.fspath(self.path)

    @property
    def stored_device(self) -> int | None:
        """The device to record (None where the walk cannot tell: Windows' scandir has 0)."""
        return self.entry_device or None


@dataclass
class _Work:
    """A file on its way to the database."""

    found: _Found
    sha256: str | None = None
    stat: FileStat | None = None  # after hashing (the one to store)
    sidecar: SidecarInfo | None = None
    version: ModelVersion | None = None
    identified_by: str | None = None
    lookup_state: str = "pending"
    looked_up: bool = False
    row: LocalFile | None = None  # the existing row at this path, if any
    needs_lookup: bool = True
    user_meta: dict[str, object] | None = None  # what users wrote in other tools (read)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _identified_row(w: _Work) -> bool:
    """Whether the file's path already has an identified row (with its hash)."""
    return w.row is not None and w.row.identified and w.row.sha256 is not None


def _under(path: str, folder: str) -> bool:
    folder = folder.rstrip("/\\")  # "/" becomes "": everything absolute is under it
    return path == folder or path.startswith(folder + os.sep) or path.startswith(folder + "/")


class _Walk:
    """An iterative walk of one library folder that survives loops and unreadable folders.

    Every folder is listed through :func:`os_path` (Windows: a deep folder past MAX_PATH),
    and each entry's path is its name joined onto the folder's normal path, never the
    entry's own ``.path``: a listing of an extended path gives that the ``\\\\?\\`` prefix,
    which the library must never record.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: list[_Found] = []
        self.unreadable: list[str] = []  # folders whose contents are unknown this time
        self.bad_names: list[str] = []  # names that are not text (see _visit), skipped
        self.entries_at_root = 0

    def run(self, cancel: CancelFlag | None) -> None:
        """Raises OSError when the root itself cannot be listed.

        Folders reached through a symlink are walked after every real folder, so a folder
        that is both in the tree and linked into it is known by its real path.
        """
        seen: set[tuple[int, int]] = set()
        root_stat = os.stat(os_path(self.root))
        seen.add((root_stat.st_dev, root_stat.st_ino))
        stack: list[tuple[Path, bool]] = [(self.root, False)]
        linked: list[tuple[Path, bool]] = []
        first = True
        while stack or linked:
            if cancel is not None and cancel.is_set():
                raise Cancelled("Scan")
            folder, via_link = stack.pop() if stack else linked.pop()
            if via_link and not self._first_visit(folder, seen):
                continue
            try:
                with os.scandir(os_path(folder)) as it:
                    entries = list(it)
            except OSError as err:
                if first:
                    raise
                self.unreadable.append(os.fspath(folder))
                log.warning("Cannot list %s: %s", folder, err)
                continue
            if first:
                self.entries_at_root = len(entries)
                first = False
            names = FolderNames(e.name for e in entries)
            text = os.fspath(folder)
            prefix = text if text.endswith(os.sep) else text + os.sep  # "/" or "C:\\"
            for entry in entries:
                self._visit(entry, folder, prefix, via_link, names, stack, linked, seen)

    def _first_visit(self, folder: Path, seen: set[tuple[int, int]]) -> bool:
        """Whether a folder reached through a link is new (not a loop, not seen by its
        real path or through another link)."""
        try:
            st = os.stat(os_path(folder))
        except OSError as err:
            log.info("Skipping %s: %s", folder, err)
            return False
        key = (st.st_dev, st.st_ino)
        if key in seen:
            return False
        seen.add(key)
        return True

    def _visit(
        self,
        entry: os.DirEntry[str],
        folder: Path,
        prefix: str,
        folder_via_link: bool,
        names: FolderNames,
        stack: list[tuple[Path, bool]],
        linked: list[tuple[Path, bool]],
        seen: set[tuple[int, int]],
    ) -> None:
        name = entry.name
        if not name.isascii() and not _is_text(name):
            # Bytes that are no UTF-8 (a name from an old archive or share): the database,
            # the companions and Civitai all need text. Told, and skipped (and what lies
            # under such a folder with it) rather than failing the whole scan.
            if entry.is_dir() or is_model_file_name(name):
                self.bad_names.append(prefix + name)
            return
        try:
            if entry.is_dir():  # follows symlinks: linked folders are part of the library
                if entry.name.startswith("."):
                    return  # .git, .cache, .Trash-1000 …: never model folders
                if folder_via_link or entry.is_symlink():
                    linked.append((folder / entry.name, True))  # checked against seen later
                    return
                st = entry.stat()
                key = (st.st_dev, st.st_ino)
                if key in seen:
                    return  # a folder mounted twice
                seen.add(key)
                stack.append((folder / entry.name, False))
            elif is_model_file_name(entry.name) and entry.is_file():
                st = entry.stat()  # follows a symlinked file to its target
                link = entry.is_symlink()
                here = entry.stat(follow_symlinks=False).st_dev if link else st.st_dev
                self.files.append(_Found(_child(folder, name), FileStat.of(st), self.root, names,
                                         st.st_dev, folder_via_link or link, here, prefix + name))
        except OSError as err:  # a dangling link, or permissions on the entry
            log.info("Skipping %s: %s", prefix + name, err)


def _child(folder: Path, name: str) -> Path:
    """``folder / name`` for a name from a listing: pathlib's own shortcut for that (what
    ``Path.iterdir`` uses) skips parsing the name, a fifth of walking 100,000 files."""
    make = getattr(folder, "_make_child_relpath", None)
    return make(name) if make is not None else folder / name


def _is_text(name: str) -> bool:
    """Whether a file name decoded from the disk is real text: undecodable bytes come back
    as lone surrogates, which UTF-8 (SQLite, JSON, the network) cannot carry."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _distinct_roots(folders: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The folders as absolute paths, without repeats and without folders inside another
    one of them (compared by real path: a linked alias of a folder is that folder). The
    paths themselves are kept as given, so the stored file paths do not change."""
    roots = list(dict.fromkeys(Path(os.path.abspath(os.fspath(f))) for f in folders))
    real = [real_path(r) for r in roots]
    kept = []
    for i, root in enumerate(roots):
        inside_another = any(
            _under(real[i], real[j]) and (real[i] != real[j] or j < i)
            for j in range(len(roots)) if j != i
        )
        if not inside_another:
            kept.append(root)
    return kept


def _distinct_files(found: list[_Found]) -> list[_Found]:
    """Drops files reached a second time through a symlink (same st_dev and st_ino): the
    real path wins, else the first link met. Hard links seen by real paths are kept."""
    real = {(f.device, f.stat.inode) for f in found if not f.via_link}
    linked: set[tuple[int, int]] = set()
    kept = []
    for f in found:
        key = (f.device, f.stat.inode)
        if f.via_link and f.stat.inode:  # inode 0: a filesystem that has none to compare
            if key in real or key in linked:
                continue
            linked.add(key)
        kept.append(f)
    return kept


class _Throttle:
    def __init__(self, callback: ProgressCallback | None) -> None:
        self.callback = callback
        self.last = 0.0
        self.phase = ""

    def __call__(self, p: ScanProgress, force: bool = False) -> None:
        if self.callback is None:
            return
        now = time.monotonic()
        if force or p.phase != self.phase or now - self.last >= PROGRESS_INTERVAL:
            self.phase, self.last = p.phase, now
            self.callback(p)


class Scanner:
    """Keeps the library in step with the model files on disk.

    ``client`` may be None (offline): files are then registered with lookup_state
    "pending" and looked up on a later scan. ``hasher`` is for tests that count reads.
    ``client_factory`` makes one client per companion-writing thread (a requests.Session
    is not thread-safe); by default ``client.clone`` when the client has it, else the
    companions are written one at a time with ``client``.
    """

    def __init__(
        self,
        library: Library,
        client: VersionSource | None,
        settings: ScanSettings,
        *,
        workers: int | None = None,
        hasher: Hasher = sha256_file,
        recheck_unknown_after: timedelta = DEFAULT_RECHECK_UNKNOWN,
        client_factory: Callable[[], ImageFetcher] | None = None,
        companion_workers: int = COMPANION_WORKERS,
        lookup_concurrency: int = LOOKUP_CONCURRENCY,
        disks: Classifier = classify,
    ) -> None:
        self.library = library
        self.disks = disks  # what storage a file is on (hard disk, share: one at a time)
        self.client = client
        if client_factory is None and client is not None:
            client_factory = getattr(client, "clone", None)
        self.client_factory = client_factory
        self.companion_workers = max(1, companion_workers)
        self.lookup_concurrency = max(1, lookup_concurrency)
        self.settings = settings
        configured = getattr(settings, "hash_workers", None)
        self.workers = workers or configured or default_workers()
        self.hasher = hasher
        self.recheck_unknown_after = recheck_unknown_after

    # ------------------------------------------------------------------------ public API

    def scan(
        self,
        folders: Iterable[str | os.PathLike[str]] | None = None,
        *,
        full: bool = True,
        progress: ProgressCallback | None = None,
        cancel: CancelFlag | None = None,
        recheck_unknown: bool = False,
    ) -> ScanSummary:
        """Scan ``folders`` (default: :meth:`default_folders`).

        ``full`` also forgets files that are gone from readable folders. ``recheck_unknown``
        looks up again hashes Civitai did not know, however recently that was checked.
        Raises :class:`Cancelled` when ``cancel`` is set; what was done so far is saved.
        """
        roots = _distinct_roots(folders if folders is not None else self.default_folders())
        run = _ScanRun(self, roots, full, _Throttle(progress), cancel, recheck_unknown)
        run.everywhere = folders is None
        return run.execute()

    def link(
        self, path: str | os.PathLike[str], version: ModelVersion, *, force: bool = False
    ) -> LocalFile:
        """Link a file to a Civitai version by hand (identified_by "manual").

        The version is stored, companions are written, and the file is registered (hashed
        only when the library does not already know its unchanged content). A file Civitai
        knows by its SHA256 as another version raises :class:`LinkConflict` and is left
        alone (its companions would be overwritten), unless ``force``.
        """
        p = Path(os.path.abspath(os.fspath(path)))
        st = FileStat.of(os.stat(os_path(p)))
        p = self._as_the_library_sees(p, st)
        row = self.library.local_file(p)
        recorded: LocalFile | None = None  # the row, when it is of these very bytes
        if row is not None and row.sha256 and (row.size, row.mtime_ns, row.inode) == (
            st.size, st.mtime_ns, st.inode
        ):
            sha256, recorded = row.sha256, row
        else:
            sha256 = self.hasher(p)
        if not force and version.file_with_hash(sha256) is None:
            known = self._known_as(sha256, recorded)
            if known is not None and known.id != version.id:
                raise LinkConflict(p.name, known, version)
        self.library.upsert_version(version)
        version = self.library.richer_version(version)
        done = write_companions(p, version, self.client, self.settings.allow_nsfw,
                                sha256=sha256, recorded=_recorded(row),
                                formats=formats_of(self.settings))
        matching = version.file_with_hash(sha256)
        root = next((r for r in map(str, self._roots()) if _under(str(p), r)), None)
        return self.library.register_file(
            p,
            size=st.size,
            mtime_ns=st.mtime_ns,
            inode=st.inode,
            sha256=sha256,
            version_id=version.id,
            file_id=matching.id if matching else None,
            identified_by="manual",
            library_root=root or (row.library_root if row else None),
            preview_path=done.preview_path,
            info_path=done.info_path,
            lookup_state="found",
            device=os.lstat(os_path(p)).st_dev or None,
            verified=publishes_sha256(version, sha256),
        )

    def _as_the_library_sees(self, p: Path, st: FileStat) -> Path:
        """The library's own path for the file at ``p``.

        A file reached another way than the scan reached it (through the drive a linked type
        folder points at, or a library folder's real path) is the entry the library already
        has, not a second one beside it.
        """
        if self.library.local_file(p) is not None:
            return p
        known = self.library.file_by_identity(st.size, st.mtime_ns, st.inode)
        if known is not None and known.path != str(p) and (
                real_path(known.path) == real_path(p)):
            return Path(known.path)
        return p

    def _known_as(self, sha256: str, row: LocalFile | None) -> ModelVersion | None:
        """The version these bytes are on Civitai: as a scan or a download recorded it,
        else as Civitai answers now; None when Civitai does not know them."""
        if row is not None and row.version_id is not None and row.identified_by != "manual":
            known = self.library.version(row.version_id)
            if known is not None:
                return known
        if self.client is None:
            return None
        return self.client.versions_by_sha256([sha256]).get(sha256.upper())

    def _roots(self) -> list[Path]:
        return [Path(os.path.abspath(f)) for f in self.settings.library_folders]

    def forget_folder(self, folder: str | os.PathLike[str]) -> int:
        """Forget the files of a folder taken out of the library folders; how many.

        The files stay on disk. Those that a folder still scanned holds (the download
        folder, say) stay in the library too. Call it off the GUI thread.
        """
        kept = [os.path.abspath(f) for f in self.default_folders()]
        gone = [lf.path for lf in self.library.local_files(os.path.abspath(os.fspath(folder)))
                if not any(_under(lf.path, root) for root in kept)]
        return self.library.remove_files(gone) if gone else 0

    def default_folders(self) -> list[str]:
        """The library folders, and the folders downloads go to that exist outside them.

        What civdesk downloaded is part of the library wherever it went (the download
        folder set apart from the library folders, ``~/civdesk-models`` when none is set,
        an A1111 checkout's ``embeddings``): a download deleted from disk must leave the
        library on the next scan, as any file does. A few ``stat`` calls: call it off the
        GUI thread.
        """
        folders = list(self.settings.library_folders)
        s = self.settings
        downloads = [s.effective_download_root, *map(s.folder_for_type, s.type_folders)]
        for folder in dict.fromkeys(downloads):
            try:
                exists = os.path.isdir(os_path(folder))
            except OSError:
                exists = False
            if exists:  # else nothing was downloaded there (or its drive is away)
                folders.append(str(folder))
        return [str(root) for root in _distinct_roots(folders)]


class _ScanRun:
    """The state of one scan; :class:`Scanner` stays reusable and stateless."""

    def __init__(
        self,
        scanner: Scanner,
        roots: list[Path],
        full: bool,
        report: _Throttle,
        cancel: CancelFlag | None,
        recheck_unknown: bool,
    ) -> None:
        self.s = scanner
        self.lib = scanner.library
        self.roots = roots
        self.full = full
        self.report = report
        self.cancel = cancel
        self.recheck_unknown = recheck_unknown
        #: The whole library is scanned: files kept outside its folders are looked at too.
        self.everywhere = False
        self.known: dict[str, LocalFile] = {}
        self.summary = ScanSummary()
        self.walks: list[_Walk] = []
        self.found: list[_Found] = []
        self.presence = Presence()
        #: Paths of rows kept although not on disk (drive or folder away): marked offline.
        self.away: list[str] = []
        self.away_where: Counter[str] = Counter()  # folder that told -> files (for the user)
        self.hashed = 0
        self.identified = 0
        self.bytes_done = 0
        self.bytes_total = 0
        self.to_hash = 0
        self.phase = PHASE_WALKING
        self.lookups_down: str | None = None  # set after a transient failure: stop asking
        self.lookup_failures = 0
        # The hash of every file seen, by path: a file settled twice (an unchanged file
        # looked up again) still counts once towards the duplicates.
        self.hash_by_path: dict[str, str] = {}
        self.file_updates: list[tuple[int, dict[str, object]]] = []  # written in bulk
        # Identified files whose companions are missing: (row, file, preview, info).
        self.stale_companions: list[tuple[LocalFile, _Found, Path | None, Path | None]] = []
        # Files recognised by their hash as a vanished row moved (new inode: copied to
        # another drive, restored): stored together, as the moves found by identity.
        self.hash_moves: list[tuple[LocalFile, _Found]] = []
        self.progress_lock = threading.Lock()  # progress comes from the hashing threads too
        self.companion_writer = _CompanionWriter(scanner)
        self.written: _Written | None = None  # companions being written, not yet stored
        self.unstored = _Unstored()  # settled batches waiting for their transaction
        self.lookups = _Lookups(scanner.client, scanner.lookup_concurrency, cancel)
        self.lookup_lock = threading.Lock()  # lookups of several batches run at once
        self.folder_suffixes: dict[tuple[int, int, tuple[str, ...]], bool] = {}

    # ---------------------------------------------------------------------- helpers

    def _progress(self, current: Path | None = None, force: bool = False) -> None:
        report = self.report
        if report.callback is None or (  # decided without the lock the hashers contend for
            not force and self.phase == report.phase
            and time.monotonic() - report.last < PROGRESS_INTERVAL
        ):
            return
        with self.progress_lock:
            self.report(
                ScanProgress(
                    self.phase,
                    len(self.found),
                    self.hashed,
                    self.identified,
                    os.fspath(current) if current else None,
                    self.bytes_done,
                    self.bytes_total,
                    self.to_hash,
                ),
                force,
            )

    def _check_cancel(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled("Scan")

    # ------------------------------------------------------------------------ steps

    def execute(self) -> ScanSummary:
        try:
            return self._execute()
        finally:
            self.lookups.close(cancelled=self._cancelled())
            self.companion_writer.close()

    def _execute(self) -> ScanSummary:
        self._progress(force=True)
        known = self.known = {lf.path: lf for lf in self.lib.local_files()}
        self._walk(known)
        self.summary.found = len(self.found)
        pending = self._classify(known)
        self._flush_file_updates()
        self._hash_and_settle(pending)
        self._flush_file_updates()
        self._clean_up()
        self.summary.duplicates = self._count_duplicates()
        self.summary.identified = self.identified
        self.summary.hashed = self.hashed
        if self.lookup_failures:
            self.summary.errors.append(
                f"Civitai could not be asked about {self.lookup_failures} file(s) "
                f"({self.lookups_down}); they were registered and will be looked up on the "
                "next scan"
            )
        self.phase = PHASE_DONE
        self._progress(force=True)
        return self.summary

    def _count_duplicates(self) -> int:
        """Extra copies among the files seen: paths with the same SHA256, less those that
        are one file on disk (hard links, or a file reached through a linked folder), which
        take no extra space and must not be offered for deletion."""
        identity = {f.key: (f.device, f.stat.inode) for f in self.found}
        files = {(sha256, identity.get(path, path)) for path, sha256 in self.hash_by_path.items()}
        counts = Counter(sha256 for sha256, _file in files)
        return sum(n - 1 for n in counts.values() if n > 1)

    def _walk(self, known: dict[str, LocalFile]) -> None:
        for root in self.roots:
            self._check_cancel()
            walk = _Walk(root)
            try:
                walk.run(self.cancel)
            except OSError as err:
                self.summary.missing_roots.append(os.fspath(root))
                self.summary.errors.append(
                    f"Library folder {root} is missing or unreadable ({err.strerror or err}); "
                    "its entries were kept (shown as offline)"
                )
                continue
            root_key = os.fspath(root)
            if walk.entries_at_root == 0 and any(_under(p, root_key) for p in known):
                # An empty folder that used to hold models is an unmounted drive far more
                # often than a deliberate wipe: keep the entries, tell the user.
                self.summary.missing_roots.append(root_key)
                self.summary.errors.append(
                    f"Library folder {root} is empty but the library has files there "
                    "(an unmounted drive?); its entries were kept (shown as offline)"
                )
                continue
            for folder in walk.unreadable:
                self.summary.errors.append(
                    f"Cannot read folder {folder}; its files were kept (shown as offline)")
            for path in walk.bad_names:
                shown = os.fsencode(path).decode("utf-8", "backslashreplace")
                self.summary.errors.append(
                    f"Skipped {shown}: its name is not valid text (UTF-8); rename it")
            self.walks.append(walk)
            self.found.extend(walk.files)
            self._progress()
        self.found = _distinct_files(self.found)

    def _classify(self, known: dict[str, LocalFile]) -> list[_Work]:
        """Split found files into unchanged (done), moved (done) and to-be-hashed."""
        found_paths = {f.key for f in self.found}
        scanned_roots = [os.fspath(w.root) for w in self.walks]
        missing_roots = self.summary.missing_roots
        # Rows under a scanned root that the walk did not see: gone (candidates for a move)
        # or away (their drive or folder is: kept, offline, never taken as moved).
        vanished = {}
        for p, lf in known.items():
            if p in found_paths:
                continue
            if any(_under(p, r) for r in missing_roots):
                self.away.append(p)
            elif any(_under(p, r) for r in scanned_roots):
                if self._in_unreadable(p):
                    self.away.append(p)
                elif self._gone(p, lf):
                    vanished[p] = lf
        by_identity = {(lf.size, lf.mtime_ns, lf.inode): lf for lf in vanished.values()}
        self.vanished = vanished
        self.vanished_by_sha = {lf.sha256: lf for lf in vanished.values() if lf.sha256}

        work: list[_Work] = []
        moves: list[tuple[LocalFile, _Found]] = []
        recheck_before = _now() - self.s.recheck_unknown_after
        for f in self.found:
            key = f.key
            row = known.get(key)
            if row is not None and row.sha256 and _same(row, f.stat):
                self.summary.unchanged += 1
                self.hash_by_path[key] = row.sha256
                named = self._named_by_new_info(row, f, recheck_before)
                wants_lookup = named is None and self._wants_lookup(row, recheck_before)
                if row.identified and not wants_lookup:
                    self.identified += 1  # else counted once settled
                self._refresh_unchanged(row, f)
                self._note_seen(row, f)
                self._read_user_meta_once(row, f)
                if named is not None:
                    work.append(named)
                elif wants_lookup:
                    work.append(self._lookup_work(row, f))
                elif row.lookup_state == "unknown" and not row.identified:
                    self.summary.unknown += 1
                continue
            moved_from = by_identity.get((f.stat.size, f.stat.mtime_ns, f.stat.inode))
            if row is None and moved_from is not None and moved_from.sha256:
                del by_identity[(f.stat.size, f.stat.mtime_ns, f.stat.inode)]  # moved once
                self._claim(moved_from)
                moves.append((moved_from, f))
                continue
            work.append(_Work(f, row=row))
        self._move_all(moves)
        return work

    def _lookup_work(self, row: LocalFile, f: _Found) -> _Work:
        """The work of an unchanged file to look up on Civitai. One identified only by its
        sidecar keeps that identity until Civitai answers with more."""
        w = _Work(f, row.sha256, f.stat, row=row)
        if row.identified and row.version_id is not None:
            version = self.lib.version(row.version_id)
            if version is not None:
                w.version, w.identified_by = version, row.identified_by
                w.lookup_state = row.lookup_state
        return w

    def _read_user_meta_once(self, row: LocalFile, f: _Found) -> None:
        """Read what users wrote in other tools for an unchanged file registered before
        civdesk read it (an upgraded library), or again when asked to look again
        (``recheck_unknown``); only where such a companion is there: a rescan stays
        without reads."""
        if (row.user_meta is not None and not self.recheck_unknown) or not self._folder_has(
                f.siblings, USER_META_SUFFIXES) or not any(
                stem + suffix in f.siblings for stem in companion_stems(f.path)
                for suffix in USER_META_SUFFIXES):
            return
        meta = read_sidecars(f.path, f.siblings).user_meta()
        self.file_updates.append((row.id, {"user_meta": meta}))

    def _folder_has(self, names: FolderNames, suffixes: tuple[str, ...]) -> bool:
        """Whether any name in a folder ends with one of ``suffixes`` (in any case): once
        per folder, not per file (a folder of 10,000 models without companions)."""
        key = (id(names), len(names.names), suffixes)  # a name added: asked again
        known = self.folder_suffixes.get(key)
        if known is None:
            lowered = tuple(x.lower() for x in suffixes)
            known = self.folder_suffixes[key] = any(
                n.lower().endswith(lowered) for n in names.names)
        return known

    def _named_by_new_info(
        self, row: LocalFile, f: _Found, recheck_before: datetime
    ) -> _Work | None:
        """An unchanged file not identified yet, whose ``.civitai.info`` appeared since the
        last scan (another tool wrote it, or the user copied it in) and names these very
        bytes: its work, to be identified by that sidecar; else None.

        Only a new info file is read (the last scan recorded none), so a rescan still reads
        nothing for files whose sidecars were already weighed.
        """
        if row.identified or row.info_path is not None or row.sha256 is None:
            return None
        if not self._folder_has(f.siblings, IDENTIFYING_SUFFIXES) or not any(
                stem + suffix in f.siblings for stem in companion_stems(f.path)
                   for suffix in IDENTIFYING_SUFFIXES):
            return None
        w = _Work(f, row.sha256, f.stat, row=row, lookup_state=row.lookup_state,
                  needs_lookup=self._wants_lookup(row, recheck_before))
        self._read_sidecars(w)
        if w.sidecar is None or not w.sidecar.agrees_with(row.sha256):
            return None
        return w

    def _wants_lookup(self, row: LocalFile, recheck_before: datetime) -> bool:
        if self.s.client is None:
            return False
        if row.identified:  # by its sidecar alone: Civitai has the rest to tell
            return row.lookup_state == "sidecar"
        if row.lookup_state in ("pending", "error"):
            return True
        if row.lookup_state == "unknown":
            if self.recheck_unknown or row.looked_up_at is None:
                return True
            return row.looked_up_at < recheck_before
        return False

    def _gone(self, path: str, row: LocalFile) -> bool:
        """Whether a file missing from disk is gone; else it is noted as away."""
        verdict = self.presence.verdict(path, row.device)
        if not verdict.gone:
            self.away.append(path)
            self.away_where[verdict.where] += 1
        return verdict.gone

    def _note_seen(self, row: LocalFile, f: _Found) -> None:
        """An unchanged file seen now: back online, on the device it is on now."""
        if row.offline or row.device != f.stored_device:
            self.file_updates.append((row.id, {"device": f.stored_device,
                                               "offline_since": None}))

    def _in_unreadable(self, path: str) -> bool:
        return any(_under(path, u) for w in self.walks for u in w.unreadable)

    def _refresh_unchanged(self, row: LocalFile, f: _Found) -> None:
        """Keep companion paths true to the disk (decided from the listing: no file read)."""
        sha256s = (row.sha256,) if row.sha256 else ()
        preview = find_preview(f.path, f.siblings, sha256s)
        # Most folders of a big library hold no .civitai.info at all: asked once per folder.
        info = (find_info(f.path, f.siblings, row.sha256)
                if self._folder_has(f.siblings, (INFO_SUFFIX,)) else None)
        # A missing info file means the companions were deleted or left behind by a move:
        # write them again. A missing preview alone is retried only on request (the version
        # may have no image the NSFW setting allows; asking on every rescan would be slow).
        retry_preview = self.recheck_unknown and preview is None and self.s.client is not None
        if row.identified and row.version_id is not None and (info is None or retry_preview):
            # Written together later (one query for their versions, previews in parallel):
            # a folder moved without its companions has thousands.
            self.stale_companions.append((row, f, preview, info))
            return
        self._note_companions(row, preview, info)

    def _note_companions(self, row: LocalFile, preview: Path | None, info: Path | None) -> None:
        if _opt(preview) != row.preview_path or _opt(info) != row.info_path:
            self.file_updates.append((row.id, {"preview_path": _opt(preview),
                                               "info_path": _opt(info)}))

    def _rewrite_companions(self) -> None:
        """Write the companions :meth:`_refresh_unchanged` found missing."""
        stale, self.stale_companions = self.stale_companions, []
        if not stale:
            return
        versions = self.lib.versions({row.version_id for row, *_ in stale
                                      if row.version_id is not None})
        due = [(row, f, preview, info, versions[row.version_id])
               for row, f, preview, info in stale
               if row.version_id is not None and row.version_id in versions
               and not versions[row.version_id].from_sidecar_only]
        encoded = {vid: info_json(version_form_json(v)) for vid, v in versions.items()}
        outcomes = self.companion_writer.start_all(
            [_CompanionJob(f, version, encoded[version.id], row.sha256, _recorded(row))
             for row, f, _p, _i, version in due],
            self.cancel)()
        for (row, _f, preview, info, _v), outcome in zip(due, outcomes, strict=True):
            done = self._count_companions(outcome)
            if done is not None:
                preview, info = done.preview_path or preview, done.info_path or info
            self._note_companions(row, preview, info)

    def _flush_file_updates(self) -> None:
        self._rewrite_companions()
        if self.file_updates:
            self.lib.update_files(self.file_updates)
            self.file_updates = []

    def _claim(self, old: LocalFile) -> None:
        """``old`` has been found elsewhere: it is no longer a vanished row."""
        del self.vanished[old.path]
        if old.sha256:
            self.vanished_by_sha.pop(old.sha256, None)

    def _flush_hash_moves(self) -> None:
        moves, self.hash_moves = self.hash_moves, []
        self._move_all(moves)

    def _move_all(self, moves: list[tuple[LocalFile, _Found]]) -> None:
        """Record files found at new paths (each :meth:`_claim`-ed when found), in one
        transaction (a renamed folder moves thousands at once)."""
        if not moves:
            return
        stored = self.lib.move_files(
            FileMove(old.path, f.path, f.stat.size, f.stat.mtime_ns, f.stat.inode, f.root,
                     f.stored_device)
            for old, f in moves
        )
        self.summary.moved += len(moves)
        for (old, f), moved in zip(moves, stored, strict=True):
            if moved is None:
                continue
            if moved.sha256:
                self.hash_by_path[os.fspath(f.path)] = moved.sha256
            if moved.identified:
                self.identified += 1
            # The companions may have moved along, stayed behind, or never existed.
            self._carry_companions(old, f)
            self._refresh_unchanged(moved, f)

    def _carry_companions(self, old: LocalFile, f: _Found) -> None:
        """Move the companions a moved or renamed model left behind to its new place.

        A rename (a copy and a delete when the model went to another drive), not new files:
        the old folder is not left with orphans, nothing is fetched again, and another
        tool's ``.civitai.info`` keeps what it had. Only the files the library recorded as
        the model's, and never over an existing one.
        """
        # Plain strings: a renamed folder moves thousands, whose companions mostly came along.
        old_name = os.path.basename(old.path)
        old_stems = companion_stems(Path(old_name))
        new_stem: str | None = None
        for recorded in (old.info_path, old.preview_path):
            if not recorded:
                continue
            name = os.path.basename(recorded)
            old_stem = next((s for s in old_stems if name.startswith(s + ".")), None)
            if old_stem is None:
                continue
            # Named after the new place's free stem: not one another model file there has.
            new_stem = new_stem or free_stem(f.path, f.siblings)
            if new_stem is None:
                return  # both names are other models' there: left where they are
            target_name = new_stem + name[len(old_stem):]
            if target_name in f.siblings:
                continue  # moved along with the model, or the model's new place has one
            source, target = Path(recorded), f.path.with_name(target_name)
            try:
                if os.path.lexists(os_path(target)) or not os.path.isfile(os_path(source)):
                    continue
                if not owns_companion(Path(old.path), source, old.sha256):
                    continue  # recorded, yet the stem is another model's in the old folder
                move_file(recorded, os.fspath(target))  # a copy when it went to another drive
            except OSError as err:  # written anew below instead
                log.info("Could not move %s to %s: %s", source, target, err)
                continue
            f.siblings.add(target.name)

    # ----------------------------------------------------------------- hash and settle

    def _hash_and_settle(self, work: list[_Work]) -> None:
        ready = [w for w in work if w.sha256 is not None]  # unchanged, only to look up
        to_hash = [w for w in work if w.sha256 is None]
        for w in to_hash:
            if not _identified_row(w):  # else the database knows more than any sidecar
                self._read_sidecars(w)
        # Big files first so the pool finishes together; sidecar-identified files last,
        # because they are already usable before their hash is known.
        to_hash.sort(key=lambda w: (w.sidecar is not None, -w.found.stat.size))
        self.bytes_total = sum(w.found.stat.size for w in to_hash)
        self.to_hash = len(to_hash)
        self.phase = PHASE_HASHING if to_hash else PHASE_LOOKING_UP
        self._progress(force=True)

        batch: list[_Work] = list(ready)
        by_path = {os.fspath(w.found.path): w for w in to_hash}

        def on_bytes(total: int) -> None:  # on hashing threads
            self.bytes_done = total
            self._progress()

        # The hashing threads run ahead of this loop (results wait in a queue): settling a
        # batch here never holds them back.
        hashing = hash_many(
            [w.found.path for w in to_hash],
            self.s.workers,
            progress=on_bytes,
            cancel=self.cancel,
            hasher=self.s.hasher,
            sizes=[w.found.stat.size for w in to_hash],
            turns=self._turns(to_hash),
        )
        # Batches are looked up on side threads (a few at once) while the ones before them
        # are settled here, in order: the wait on Civitai overlaps hashing, companions and
        # the database instead of adding to them.
        in_flight: deque[_Batch] = deque()
        try:
            for result in hashing:
                w = by_path[os.fspath(result.path)]
                if result.error is not None or result.sha256 is None:
                    self.summary.errors.append(str(result.error))
                    continue
                self.hashed += 1
                w.sha256, w.stat = result.sha256, result.stat
                if _identified_row(w):
                    assert w.row is not None
                    if w.sha256 == w.row.sha256:
                        self._same_bytes(w.row, w.found, w.stat)
                        continue
                    self._read_sidecars(w)  # new content: its sidecars may name it
                if self._moved_by_hash(w):
                    continue
                batch.append(w)
                self._progress(w.found.path)
                if len(batch) >= SETTLE_BATCH:
                    in_flight.append(self._start_settle(batch))
                    batch = []
                    if len(in_flight) > self.s.lookup_concurrency:
                        # Taken off first: a cancel raised while finishing it must leave
                        # only the others to the handler below, not finish it twice.
                        self._finish_settle(in_flight.popleft())
        except Cancelled:
            # Keep what was hashed: registered as pending, looked up next time.
            self._flush_hash_moves()
            self._flush_file_updates()
            while in_flight:
                self._finish_settle(in_flight.popleft(), offline=True)
            self._settle(batch, offline=True)
            raise
        finally:
            hashing.close()
        while in_flight:
            self._finish_settle(in_flight.popleft())
        self._settle(batch)
        self._store_written(final=True)
        self._flush_hash_moves()

    def _turns(self, work: list[_Work]) -> list[Turn | None] | None:
        """Which big files take turns on their device (the ``hashing`` setting and what
        the device is), and their place on it; None when all run in parallel."""
        policy = getattr(self.s.settings, "hashing", HASHING_AUTO)
        devices: dict[object, object] = {}
        turns: list[Turn | None] = []
        for w in work:
            f = w.found
            if f.stat.size <= SMALL_FILE:
                turns.append(None)
                continue
            name = os.fspath(f.path)
            # Windows' scandir gives no st_dev: the drive tells the device there.
            seen_as = f.device or os.path.splitdrive(name)[0]
            if seen_as not in devices:
                devices[seen_as] = one_at_a_time_key(self.s.disks(f.device, name), policy)
            key = devices[seen_as]
            turns.append(None if key is None else
                         (key, disk_position(name, f.stat.inode)))
        return turns if any(t is not None for t in turns) else None

    def _read_sidecars(self, w: _Work) -> None:
        sidecars = read_sidecars(w.found.path, w.found.siblings)
        for note in sidecars.notes:
            log.info("%s: %s", w.found.path.parent, note)
        w.sidecar = sidecars.identifying()
        w.user_meta = sidecars.user_meta()

    def _same_bytes(self, row: LocalFile, f: _Found, stat: FileStat | None) -> None:
        """An identified file whose stat changed but whose bytes did not (touched, restored
        from a backup, copied back without its times): only the new stat is stored. No
        sidecar read, lookup or version write: a library copied to a new drive costs its
        hashing and little more."""
        stat = stat or f.stat
        self.file_updates.append((row.id, {"size": stat.size, "mtime_ns": stat.mtime_ns,
                                           "inode": stat.inode, "last_seen": _now(),
                                           "device": f.stored_device, "offline_since": None}))
        self.hash_by_path[os.fspath(f.path)] = row.sha256 or ""
        self.identified += 1
        self._refresh_unchanged(row, f)

    def _moved_by_hash(self, w: _Work) -> bool:
        """A new path whose content vanished from elsewhere: a move (e.g. across drives)."""
        if w.row is not None or w.sha256 is None:
            return False
        old = self.vanished_by_sha.get(w.sha256)
        if old is None:
            return False
        self._claim(old)  # now: another new file with the same bytes is not a move of it
        self.hash_moves.append((old, replace(w.found, stat=w.stat or w.found.stat)))
        if len(self.hash_moves) >= STORE_BATCH:
            self._flush_hash_moves()
        return True

    def _settle(self, batch: list[_Work], offline: bool = False) -> None:
        """Identify a batch (sidecars, then Civitai), write companions, register in one go."""
        self._finish_settle(self._start_settle(batch, offline), offline)

    def _start_settle(self, batch: list[_Work], offline: bool = False) -> _Batch:
        """Apply the sidecars and start the batch's Civitai lookup (on a side thread when
        the client can be cloned, else now)."""
        for w in batch:
            self._apply_sidecar(w)
        wanted = [w for w in batch if w.needs_lookup and (
            w.version is None or w.version.from_sidecar_only)]
        if offline or not wanted:
            return _Batch(batch, None)
        return _Batch(batch, self.lookups.start(lambda client: self._look_up(wanted, client)))

    def _finish_settle(self, started: _Batch, offline: bool = False) -> None:
        """Wait for the batch's lookup and start writing its companions; store the batch
        before it (whose companions were written meanwhile) in one transaction.

        Creating thousands of small files is kernel time that needs no interpreter lock, so
        it overlaps the next batch's work. :meth:`_store_written` stores the last batch.
        """
        batch = started.work
        if not batch:
            return
        if started.lookup is not None:
            # The lookup records its own failures. Waited on in steps: a cancel must not
            # wait for a server that does not answer (the request's timeout is a minute).
            while True:
                try:
                    started.lookup.result(timeout=CANCEL_POLL)
                    break
                except FutureTimeout:
                    self._check_cancel()
        versions: dict[int, ModelVersion] = {}
        _add_versions(versions, (w.version for w in batch if w.version is not None))
        # Each version's JSON is encoded once, for its .civitai.info and the database both.
        encoded = {vid: info_json(version_form_json(v)) for vid, v in versions.items()}
        identified: list[_Work] = []
        outcomes = _no_outcomes
        if not offline:  # else: register the batch anyway; companions are written next scan
            # A version known only from a sidecar gets no .civitai.info: it has less to say
            # than the sidecar beside it, and other tools read that file as Civitai's.
            identified = [w for w in batch
                          if w.version is not None and not w.version.from_sidecar_only]
            outcomes = self.companion_writer.start_all(
                [_CompanionJob(w.found, w.version, encoded[w.version.id], w.sha256,
                               _recorded(w.row))
                 for w in identified if w.version is not None],
                self.cancel,
            )
        self._store_written()
        self.written = _Written(batch, versions, encoded, identified, outcomes)
        if offline or self._cancelled():
            self._store_written(final=True)  # all that was settled is stored before Cancelled
        if not offline:
            self._check_cancel()

    def _store_written(self, *, final: bool = False) -> None:
        """Take the batch whose companions were being written into the next transaction,
        and store what waits once it reaches :data:`STORE_BATCH` files (or is ``final``)."""
        written, self.written = self.written, None
        unstored = self.unstored
        if written is not None:
            companions: dict[int, Companions | None] = {}
            for w, outcome in zip(written.identified, written.outcomes(), strict=True):
                companions[id(w)] = self._count_companions(outcome)
            now = _now()
            unstored.records.extend(self._record(w, companions.get(id(w)), now)
                                    for w in written.work)
            _add_versions(unstored.versions, written.versions.values())
            unstored.encoded.update(written.encoded)
        if not unstored.records or (len(unstored.records) < STORE_BATCH and not final):
            return
        with self.lib.db.session():  # one transaction (one commit) for all of it
            self.lib.upsert_versions(
                (v for v in unstored.versions.values() if v.model_id is not None),
                encoded=unstored.encoded)
            self.lib.save_files(unstored.records)
        self.unstored = _Unstored()

    def _cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()

    def _apply_sidecar(self, w: _Work) -> None:
        info = w.sidecar
        if info is None or w.sha256 is None:
            return
        if not info.agrees_with(w.sha256):
            log.info("%s: %s names another file; identifying by hash", w.found.path, info.path)
            return
        version = info.version()
        if version is not None and version.model_id is None:
            version = None  # not the /model-versions form: fetch it below
        if version is None and info.version_id is not None:
            version = (self.unstored.versions.get(info.version_id)  # settled, not yet stored
                       or self.lib.version(info.version_id))
        if (version is None and info.version_id is not None and self.s.client is not None
                and self.lookups_down is None):
            try:
                version = self.s.client.get_version(info.version_id)
            except CivitaiError as err:
                log.info("Version %s named by %s: %s", info.version_id, info.path, err)
                if getattr(err, "transient", False):  # offline or rate-limited: ask no more
                    with self.lookup_lock:
                        self.lookups_down = self.lookups_down or str(err)
            except CivdeskError as err:
                log.info("Version %s named by %s: %s", info.version_id, info.path, err)
        if version is not None:
            w.version, w.identified_by = version, "sidecar"
            w.lookup_state, w.looked_up, w.needs_lookup = "found", True, False
        elif info.sha256 == w.sha256 and (partial := info.sidecar_only_version()) is not None:
            # Civitai cannot be asked, or no longer has it: the sidecar names these very
            # bytes by their hash, so what it holds identifies them now; the hash lookup
            # below (this scan or a later one) brings Civitai's full version.
            w.version, w.identified_by, w.lookup_state = partial, "sidecar", "sidecar"

    def _look_up(self, items: list[_Work], client: VersionSource) -> None:
        """Identify ``items`` by hash (on a lookup thread; other batches may be looked up
        at the same time, so the state shared between them changes under the lock)."""
        if not items:
            return
        self.phase = PHASE_LOOKING_UP
        items = self._only_known(items, client)
        for start in range(0, len(items), LOOKUP_BATCH):
            chunk = items[start : start + LOOKUP_BATCH]
            if self._cancelled():
                return  # they stay "pending"
            if self.lookups_down is not None:
                self._lookup_failed(chunk)
                continue
            try:
                found = client.versions_by_sha256({w.sha256 for w in chunk if w.sha256})
            except CivitaiError as err:
                with self.lookup_lock:
                    if self.lookups_down is None:
                        self.lookups_down = str(err)
                self._lookup_failed(chunk)
                continue
            for w in chunk:
                version = found.get(w.sha256 or "")
                w.looked_up = True
                if version is None:
                    w.lookup_state = "unknown"  # a sidecar-only version stays (removed?)
                else:
                    w.version, w.identified_by, w.lookup_state = (
                        self.lib.richer_version(version), "hash", "found")
        self.phase = PHASE_HASHING
        self._progress(force=True)

    def _only_known(self, items: list[_Work], client: VersionSource) -> list[_Work]:
        """Of more than a request's worth of items, those Civitai knows (one cheap request
        per 10,000 hashes); the others are unknown without a full lookup each. All of them
        when the client or server cannot tell, or the question failed."""
        known_sha256 = getattr(client, "known_sha256", None)
        if len(items) <= LOOKUP_BATCH or known_sha256 is None or self.lookups_down:
            return items
        try:
            known = known_sha256([w.sha256 for w in items if w.sha256])
        except CivitaiError as err:
            log.info("Asking which hashes Civitai knows failed (%s); asking for each", err)
            return items
        if known is None:
            return items
        for w in items:
            if w.sha256 not in known:
                w.looked_up, w.lookup_state = True, "unknown"
        return [w for w in items if w.sha256 in known]

    def _lookup_failed(self, chunk: list[_Work]) -> None:
        with self.lookup_lock:
            self.lookup_failures += len(chunk)
        for w in chunk:
            if w.version is None:  # one identified by its sidecar stays so
                w.lookup_state = "error"

    def _count_companions(self, outcome: Companions | CivdeskError | None) -> Companions | None:
        if isinstance(outcome, CivdeskError):
            self.summary.errors.append(str(outcome))
            return None
        if outcome is not None:
            self.summary.errors.extend(outcome.problems)
            self.summary.companions_written += int(outcome.wrote_info) + int(
                outcome.wrote_preview)
        return outcome

    def _record(self, w: _Work, done: Companions | None, now: datetime) -> FileRecord:
        f, st = w.found, w.stat or w.found.stat
        assert w.sha256 is not None
        preview = (done.preview_path if done else None) or find_preview(
            f.path, f.siblings, (w.sha256,))
        info = (done.info_path if done else None) or find_info(f.path, f.siblings, w.sha256)
        version = w.version
        matching = version.file_with_hash(w.sha256) if version else None
        if w.lookup_state == "unknown" and version is None:
            self.summary.unknown += 1
        if version is not None:
            self.identified += 1
        self.hash_by_path[os.fspath(f.path)] = w.sha256
        return FileRecord(
            f.path,
            size=st.size,
            mtime_ns=st.mtime_ns,
            inode=st.inode,
            sha256=w.sha256,
            version_id=version.id if version else None,
            file_id=matching.id if matching else None,
            identified_by=w.identified_by if version else None,
            library_root=f.root,
            preview_path=preview,
            info_path=info,
            lookup_state=w.lookup_state,
            # An unknown hash needs its lookup time too, or it is asked about on every scan.
            looked_up_at=now if w.looked_up else None,
            device=f.stored_device,
            verified=version is not None and publishes_sha256(version, w.sha256),
            user_meta=w.user_meta,
        )

    # -------------------------------------------------------------------- clean up

    def _clean_up(self) -> None:
        """Forget the files that are gone (a ``full`` scan), mark those whose drive or
        folder is away offline, and those seen again outside the folders online."""
        self.phase = PHASE_CLEANING
        self._progress(force=True)
        gone, back = list(self.vanished), list[str]()
        if self.everywhere:
            more_gone, back = self._outside_folders()
            gone.extend(more_gone)
        if gone and self.full:
            self.summary.removed = self.lib.remove_files(gone)
        if back:
            self.lib.set_offline(back, offline=False)
        if self.away:
            self.lib.set_offline(self.away)
        self.summary.offline = len(self.away)
        for where, count in sorted(self.away_where.items()):
            self.summary.errors.append(
                f"{_plural_files(count)} under {where} kept as offline: the folder or its "
                "drive is not there (unplugged or unmounted?)")

    def _outside_folders(self) -> tuple[list[str], list[str]]:
        """Files the library holds outside its folders (downloaded with ``--dest``, linked
        by hand): those deleted (no walk sees them go) and the offline ones that are back.
        One stat each; a file whose drive is away stays (:meth:`_gone`)."""
        # Under a scanned root the walk decided (vanished rows), under a missing one nothing
        # may be decided.
        roots = [os.fspath(w.root) for w in self.walks] + self.summary.missing_roots
        gone, back = [], []
        for path, row in self.known.items():
            if any(_under(path, r) for r in roots):
                continue
            if os.path.exists(os_path(path)):
                if row.offline:
                    back.append(path)
            elif self._gone(path, row):
                gone.append(path)
        return gone, back


class _CompanionJob(NamedTuple):
    """One model file whose companions are to be written."""

    found: _Found
    version: ModelVersion
    info_text: str  # the info file's text, encoded once per version by the caller
    sha256: str | None
    recorded: tuple[str | None, ...]  # the companion paths the library holds for it


def _recorded(row: LocalFile | None) -> tuple[str | None, ...]:
    return () if row is None else (row.info_path, row.preview_path)


class _CompanionWriter:
    """Writes companion files, a batch at a time on a few threads with a client each."""

    def __init__(self, scanner: Scanner) -> None:
        self.scanner = scanner
        self.clients: ThreadClients[ImageFetcher] = ThreadClients(scanner.client_factory)
        self.pool: ThreadPoolExecutor | None = None
        self.writer: ThreadPoolExecutor | None = None

    def start_all(
        self, items: list[_CompanionJob], cancel: CancelFlag | None
    ) -> Callable[[], list[Companions | CivdeskError | None]]:
        """:meth:`write_all` on a writer thread; returns the call that waits for its result.

        Without a client factory the one shared client is only used from the caller's
        thread, so the companions are written at once.
        """
        if not items or (self.scanner.client_factory is None
                         and self.scanner.client is not None):
            done = self.write_all(items, cancel)
            return lambda: done
        if self.writer is None:
            self.writer = ThreadPoolExecutor(1, thread_name_prefix="civdesk-companion-writer")
        return self.writer.submit(self.write_all, items, cancel).result

    def write(self, job: _CompanionJob, client: ImageFetcher | None) -> Companions | CivdeskError:
        try:
            return write_companions(
                job.found.path, job.version, client, self.scanner.settings.allow_nsfw,
                job.found.siblings, job.info_text, sha256=job.sha256, recorded=job.recorded,
                formats=formats_of(self.scanner.settings),
            )
        except CivdeskError as err:
            return err

    def write_all(
        self, items: list[_CompanionJob], cancel: CancelFlag | None
    ) -> list[Companions | CivdeskError | None]:
        """Each item's companions (None: skipped after a cancel), in the order given; an
        item is (file, version, the text of its info file, encoded once by the caller).

        Only items that must fetch a preview go to the pool; the rest (an info file to
        write) are done on this thread meanwhile: a thread hand-off per small local write
        costs more than the write, as threads wait on the GIL between syscalls.
        """
        parallel = self.scanner.client_factory is not None

        def one(item: _CompanionJob) -> Companions | CivdeskError | None:
            if cancel is not None and cancel.is_set():
                return None  # the files are registered anyway; companions come next scan
            return self.write(item, self.clients.get() if parallel else self.scanner.client)

        fetching = [i for i, item in enumerate(items) if parallel and self._fetches(item)]
        if len(fetching) < 2:
            return [one(item) for item in items]
        if self.pool is None:
            self.pool = ThreadPoolExecutor(self.scanner.companion_workers,
                                           thread_name_prefix="civdesk-companions")
        futures = {i: self.pool.submit(one, items[i]) for i in fetching}
        out: list[Companions | CivdeskError | None] = []
        for i, item in enumerate(items):
            if i not in futures:
                out.append(self._write_local(item, cancel))
        local = iter(out)
        return [futures[i].result() if i in futures else next(local) for i in range(len(items))]

    def _fetches(self, job: _CompanionJob) -> bool:
        """Whether writing this file's companions needs a preview from the network."""
        f = job.found
        return (find_preview(f.path, f.siblings, (job.sha256,) if job.sha256 else ()) is None
                and job.version.preview_image(self.scanner.settings.allow_nsfw) is not None)

    def _write_local(
        self, item: _CompanionJob, cancel: CancelFlag | None
    ) -> Companions | CivdeskError | None:
        if cancel is not None and cancel.is_set():
            return None
        return self.write(item, None)  # nothing to fetch

    def close(self) -> None:
        if self.writer is not None:  # first: it may still hand previews to the pool
            self.writer.shutdown(wait=True)
            self.writer = None
        if self.pool is not None:
            self.pool.shutdown(wait=True)
            self.pool = None
        self.clients.close()


@dataclass
class _Written:
    """A settled batch whose companions are being written (``outcomes`` waits for them)."""

    work: list[_Work]
    versions: dict[int, ModelVersion]
    encoded: dict[int, str]
    identified: list[_Work]
    outcomes: Callable[[], list[Companions | CivdeskError | None]]


@dataclass
class _Unstored:
    """Settled files and their versions, waiting to be stored in one transaction."""

    records: list[FileRecord] = field(default_factory=list)
    versions: dict[int, ModelVersion] = field(default_factory=dict)
    encoded: dict[int, str] = field(default_factory=dict)


def _no_outcomes() -> list[Companions | CivdeskError | None]:
    return []


@dataclass
class _Batch:
    """A batch on its way: its sidecars applied, its Civitai lookup maybe still running."""

    work: list[_Work]
    lookup: Future[None] | None


class _Lookups:
    """Runs batches' Civitai lookups on up to ``concurrency`` side threads, each with a
    client of its own (a ``requests.Session`` is not thread-safe).

    Without a ``clone`` on the client (a test fake), lookups run at once on the caller's
    thread with that client, one at a time.
    """

    def __init__(self, client: VersionSource | None, concurrency: int = 1,
                 cancel: CancelFlag | None = None) -> None:
        self.client = client
        self.concurrency = max(1, concurrency)
        self.clone: Callable[[], VersionSource] | None = getattr(client, "clone", None)
        self.cancel = cancel
        self.clients: ThreadClients[VersionSource] = ThreadClients(
            self._new_client if self.clone is not None else None)
        self.pool: ThreadPoolExecutor | None = None

    def _new_client(self) -> VersionSource:
        assert self.clone is not None
        client = self.clone()
        if hasattr(client, "stop"):
            client.stop = self.cancel
        return client

    def start(self, look_up: Callable[[VersionSource], None]) -> Future[None]:
        """``look_up(client)`` on a side thread; a finished future when there is none."""
        if self.clone is None:
            done: Future[None] = Future()
            try:
                if self.client is not None:
                    look_up(self.client)
                done.set_result(None)
            except BaseException as exc:
                done.set_exception(exc)
            return done
        if self.pool is None:
            self.pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="civdesk-lookups")
        return self.pool.submit(lambda: look_up(self.clients.get()))

    def close(self, *, cancelled: bool = False) -> None:
        """Wait for the lookups; once the scan is cancelled, only drop those not started:
        one waiting on a server that hangs ends by itself, its client told to try no more."""
        if self.pool is not None:
            self.pool.shutdown(wait=not cancelled, cancel_futures=cancelled)
            self.pool = None
        if not cancelled:
            self.clients.close()  # else still in use: closed with their threads' end


def _add_versions(into: dict[int, ModelVersion], versions: Iterable[ModelVersion]) -> None:
    """Add ``versions`` by id; one known only from a sidecar never replaces a fuller one."""
    for version in versions:
        held = into.get(version.id)
        if held is None or not version.from_sidecar_only or held.from_sidecar_only:
            into[version.id] = version


def _plural_files(n: int) -> str:
    return f"{n} file" if n == 1 else f"{n} files"


def _same(row: LocalFile, st: FileStat) -> bool:
    return (row.size, row.mtime_ns, row.inode) == (st.size, st.mtime_ns, st.inode)


def _opt(path: Path | None) -> str | None:
    return None if path is None else os.fspath(path)


def iter_model_files(root: str | os.PathLike[str]) -> Iterator[Path]:
    """Every model file under ``root`` as the scanner sees it (for tools and tests)."""
    walk = _Walk(Path(os.path.abspath(os.fspath(root))))
    walk.run(None)
    return iter([f.path for f in walk.files])


def publishes_sha256(version: ModelVersion, sha256: str) -> bool:
    """Whether Civitai publishes ``sha256`` (hashed from a file's bytes) as the SHA256 of
    one of ``version``'s files: what makes a library file *verified*."""
    return any(f.sha256 == sha256.upper() for f in version.files)
