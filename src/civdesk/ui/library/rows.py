"""The library as rows for the grid, without Qt: snapshot, filter, sort and diff.

A worker reads a :class:`LibrarySnapshot` from the database (:func:`load_snapshot`), sorts
and filters it with Python's own list operations (milliseconds for 10,000 entries, where a
``QSortFilterProxyModel`` calling Python ``lessThan`` or ``filterAcceptsRow`` per row takes
tens to hundreds) and works out how the rows on screen change (:func:`load_change`, a
:class:`RowChange`). :class:`~civdesk.ui.library.model.LibraryModel` applies it on the GUI
thread. Nothing here imports Qt, so all of it runs (and is tested) anywhere.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from civdesk.core.library.repository import UNKNOWN_TYPE, Library, LibraryEntry, UpdateInfo
from civdesk.core.library.search import matches, search_text


class SortKey(enum.Enum):
    NAME = "name"
    DATE = "date"
    SIZE = "size"


class Show(enum.Enum):
    """What the proxy lets through besides the type and search filters."""

    ALL = "all"
    DUPLICATES = "duplicates"
    UPDATES = "updates"
    OFFLINE = "offline"  # files whose drive or folder is away
    REMOVED = "removed"  # files whose model or version Civitai removed


@dataclass(frozen=True)
class LibrarySnapshot:
    """Everything the Models page shows, read in one go off the GUI thread.

    The counts are worked out once, where the snapshot is made (a worker), not on each use.
    """

    entries: tuple[LibraryEntry, ...] = ()
    duplicate_hashes: frozenset[str] = frozenset()
    updates: dict[int, UpdateInfo] = field(default_factory=dict)  # model id -> update
    _type_counts: dict[str, int] = field(init=False, repr=False, compare=False)
    _base_model_counts: dict[str, int] = field(init=False, repr=False, compare=False)
    _duplicate_count: int = field(init=False, repr=False, compare=False)
    _duplicate_groups: int = field(init=False, repr=False, compare=False)
    _update_files: int = field(init=False, repr=False, compare=False)
    _offline_count: int = field(init=False, repr=False, compare=False)
    _removed_count: int = field(init=False, repr=False, compare=False)
    _search_text: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        counts = dict(Counter(e.type for e in self.entries))
        duplicates = sum(1 for e in self.entries if e.sha256 in self.duplicate_hashes)
        object.__setattr__(self, "_type_counts", counts)
        object.__setattr__(self, "_base_model_counts",
                           dict(Counter(e.base_model for e in self.entries if e.base_model)))
        object.__setattr__(self, "_duplicate_count", duplicates)
        object.__setattr__(self, "_duplicate_groups", len(
            {e.sha256 for e in self.entries if e.sha256 in self.duplicate_hashes}))
        object.__setattr__(self, "_update_files", sum(
            1 for e in self.entries if e.model_id is not None and e.model_id in self.updates))
        object.__setattr__(self, "_offline_count", sum(e.offline for e in self.entries))
        object.__setattr__(self, "_removed_count", sum(e.removed for e in self.entries))
        object.__setattr__(self, "_search_text", {e.path: search_text(e) for e in self.entries})

    def matches(self, entry: LibraryEntry, terms: tuple[str, ...]) -> bool:
        """Every (folded) term occurs in what the search looks in (:mod:`search
        <civdesk.core.library.search>`, folded once per snapshot)."""
        text = self._search_text.get(entry.path)
        if text is None:  # not one of this snapshot's entries
            text = search_text(entry)
        return matches(text, terms)

    def type_counts(self) -> dict[str, int]:
        return dict(self._type_counts)

    def base_model_counts(self) -> dict[str, int]:
        """Files per base model (files Civitai does not know have none)."""
        return dict(self._base_model_counts)

    @property
    def duplicate_count(self) -> int:
        """Files that have a byte-for-byte copy in the library (each copy counted)."""
        return self._duplicate_count

    @property
    def duplicate_extra_copies(self) -> int:
        """Files that could go while one of each content stays."""
        return self._duplicate_count - self._duplicate_groups

    @property
    def update_count(self) -> int:
        """Models with a newer version on Civitai (one per model, however many files)."""
        return len(self.updates)

    @property
    def update_file_count(self) -> int:
        """Files on disk of the models with an update (what the Updates view lists)."""
        return self._update_files

    @property
    def offline_count(self) -> int:
        return self._offline_count

    @property
    def removed_count(self) -> int:
        return self._removed_count

    def versions_on_disk(self, model_id: int | None) -> list[LibraryEntry]:
        if model_id is None:
            return []
        return [e for e in self.entries if e.model_id == model_id]


def load_snapshot(library: Library) -> LibrarySnapshot:
    """Read the library for the view (worker thread: it runs SQL)."""
    entries = tuple(library.entries())
    duplicates = frozenset(
        group[0].sha256 for group in library.duplicates() if group and group[0].sha256
    )
    updates = {u.model_id: u for u in library.available_updates()}
    return LibrarySnapshot(entries, duplicates, updates)


TYPE_LABELS = {
    "TextualInversion": "Embedding",
    "LORA": "LoRA",
    "Controlnet": "ControlNet",
    UNKNOWN_TYPE: "Unidentified",
}


def type_label(model_type: str) -> str:
    """The name people use for a Civitai model type."""
    return TYPE_LABELS.get(model_type, model_type)


def display_name(entry: LibraryEntry) -> str:
    """Model name for identified files, the file name for the rest."""
    return entry.model_name or entry.file_name


def _sort_key(key: SortKey) -> Callable[[LibraryEntry], str]:
    """An entry's place in the order, as one string.

    The path last: a total order, so two snapshots of the same library sort alike and a
    reload can be applied as a diff. The parts are joined with NUL, which sorts before any
    other character (so the string compares like the tuple of its parts) and never occurs
    in a path (so the path is what follows the last NUL, and two entries never tie).

    A string, not a tuple: every tuple is an object the garbage collector walks until it
    learns it holds nothing of interest, and a read of the library makes one per file —
    12,000 more objects for the collector on the GUI thread after each reload.
    """
    if key is SortKey.DATE:
        return lambda e: f"{e.added_at.timestamp():020.6f}\0{e.path}"
    if key is SortKey.SIZE:
        return lambda e: f"{e.size:020d}\0{e.path}"
    return lambda e: f"{display_name(e).casefold()}\0{e.file_name.casefold()}\0{e.path}"


@dataclass(frozen=True)
class LibraryFilter:
    """What the grid shows: one model type (or all), one base model (or all), search words,
    and all/duplicates/updates/offline/removed."""

    model_type: str | None = None
    terms: tuple[str, ...] = ()
    show: Show = Show.ALL
    base_model: str | None = None  # "SDXL 1.0", "Pony"… as Civitai names it

    @property
    def is_everything(self) -> bool:
        return (self.model_type is None and self.base_model is None and not self.terms
                and self.show is Show.ALL)

    def accepts(self, entry: LibraryEntry, snapshot: LibrarySnapshot) -> bool:
        if self.model_type is not None and entry.type != self.model_type:
            return False
        if self.base_model is not None and entry.base_model != self.base_model:
            return False
        if self.show is Show.DUPLICATES and entry.sha256 not in snapshot.duplicate_hashes:
            return False
        if self.show is Show.UPDATES and (
            entry.model_id is None or entry.model_id not in snapshot.updates
        ):
            return False
        if self.show is Show.OFFLINE and not entry.offline:
            return False
        if self.show is Show.REMOVED and not entry.removed:
            return False
        return not self.terms or snapshot.matches(entry, self.terms)


#: The sort of the rows: a key, and whether it runs from the highest down.
Sort = tuple[SortKey, bool]
DEFAULT_SORT: Sort = (SortKey.NAME, False)


@dataclass(frozen=True)
class LibraryRows:
    """A snapshot sorted and filtered for the grid, with every entry's sort key.

    Made by :func:`prepare_rows`, on a worker when it comes with a reload: sorting 10,000
    entries by name costs tens of milliseconds of Python that the GUI thread need not pay.
    """

    snapshot: LibrarySnapshot
    sort: Sort
    filter: LibraryFilter
    all: tuple[LibraryEntry, ...]  # every entry, sorted
    visible: tuple[LibraryEntry, ...]  # those the filter accepts, in the same order
    keys: dict[str, str]  # path -> sort key (a total order: the path breaks ties)


def prepare_rows(
    snapshot: LibrarySnapshot, sort: Sort = DEFAULT_SORT,
    library_filter: LibraryFilter | None = None, *, keys: dict[str, str] | None = None,
) -> LibraryRows:  # fmt: skip
    """Sort and filter ``snapshot`` (any thread). ``keys``: already known sort keys."""
    library_filter = library_filter or LibraryFilter()
    key_of = _sort_key(sort[0])
    if keys is None:
        keys = {e.path: key_of(e) for e in snapshot.entries}
    ordered = tuple(
        sorted(snapshot.entries, key=lambda e: keys[e.path],
               reverse=sort[1])
    )  # fmt: skip
    if library_filter.is_everything:
        visible = ordered
    else:
        visible = tuple(e for e in ordered if library_filter.accepts(e, snapshot))
    return LibraryRows(snapshot, sort, library_filter, ordered, visible, keys)


#: Above this many separate row ranges a change is applied as a model reset: one reset is
#: cheaper for the view than thousands of small inserts/removals (e.g. a type filter on a
#: library sorted by name, where every fifth row stays).
MAX_RANGES = 32
#: Above this many rows with new data, one dataChanged covers them all.
MAX_CHANGED_RANGES = MAX_RANGES * 8
#: How long one event-loop turn may spend applying a reload (at least one row range is
#: applied per turn). Each Qt call may wait ~1 ms for the GIL while a scan runs, so a change
#: of many ranges applied at once held the window for 100 ms and more.
Runs = tuple[tuple[int, int], ...]


def _derived(entry: LibraryEntry, snapshot: LibrarySnapshot) -> tuple[bool, Any]:
    """What a row shows from the snapshot rather than its entry: duplicate, update."""
    update = snapshot.updates.get(entry.model_id) if entry.model_id is not None else None
    return entry.sha256 is not None and entry.sha256 in snapshot.duplicate_hashes, update


def _ranges(rows: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted row numbers as (first, last) runs of consecutive rows."""
    runs: list[tuple[int, int]] = []
    for row in rows:
        if runs and runs[-1][1] == row - 1:
            runs[-1] = (runs[-1][0], row)
        else:
            runs.append((row, row))
    return runs


@dataclass(frozen=True)
class RowChange:
    """How the rows of ``base`` become those of ``rows``: made by :func:`diff_rows` on any
    thread, applied by :meth:`LibraryModel.apply_change` on the GUI thread.

    Rows whose entry kept its path and its sort key stay (they keep selection, current index
    and scroll position); the others are removed, then the new ones inserted, in ranges.
    """

    base: LibraryRows  # the rows this change starts from
    rows: LibraryRows  # the rows it ends with
    reset: bool  # too many ranges (or nothing shown before): one model reset instead
    removed: Runs  # ranges of base.visible rows, ascending
    inserted: Runs  # ranges of rows.visible rows, ascending
    changed: Runs  # staying rows (numbered in rows.visible) whose data differs now
    rows_by_path: dict[str, int]  # path -> row in rows.visible


def diff_rows(base: LibraryRows, rows: LibraryRows, *, refresh_data: bool = True) -> RowChange:
    """The :class:`RowChange` from ``base`` to ``rows`` (same sort and filter), any thread.

    ``refresh_data``: also find the staying rows whose entry or badges differ (a reload; a
    new filter on the same snapshot changes none).
    """
    old, new = base.visible, rows.visible
    old_keys, new_keys = base.keys, rows.keys
    rows_by_path = {e.path: row for row, e in enumerate(new)}
    # A renamed entry has a new key, so a new place: it goes out, then in.
    removed = _ranges(
        row for row, e in enumerate(old)
        if e.path not in rows_by_path or new_keys.get(e.path) != old_keys.get(e.path)
    )  # fmt: skip
    reset = RowChange(base, rows, True, (), (), (), rows_by_path)
    if not old or len(removed) > MAX_RANGES:
        return reset
    gone = {old[row].path for first, last in removed for row in range(first, last + 1)}
    staying = {e.path: e for e in old if e.path not in gone}
    inserted = _ranges(row for row, e in enumerate(new) if e.path not in staying)
    if len(inserted) > MAX_RANGES:
        return reset
    changed: list[tuple[int, int]] = []
    if refresh_data and new:
        old_snapshot, snapshot = base.snapshot, rows.snapshot
        changed = _ranges(
            row for row, e in enumerate(new)
            # A row inserted by this change is asked for its data anyway.
            if (o := staying.get(e.path)) is not None
            and (o != e or _derived(o, old_snapshot) != _derived(e, snapshot))
        )  # fmt: skip
        if len(changed) > MAX_CHANGED_RANGES:
            changed = [(changed[0][0], changed[-1][1])]
    return RowChange(
        base, rows, False, tuple(removed), tuple(inserted), tuple(changed), rows_by_path
    )


def load_change(library: Library, base: LibraryRows) -> RowChange:
    """Read the library and work out how ``base`` (the rows shown) changes (worker thread)."""
    return diff_rows(base, prepare_rows(load_snapshot(library), base.sort, base.filter))
