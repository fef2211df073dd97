"""The library as Qt item models: a list of :class:`LibraryEntry` snapshots, and a filter.

A worker reads a :class:`LibrarySnapshot` from the database (:func:`load_snapshot`), sorts
and filters it with Python's own list operations (milliseconds for 10,000 entries, where a
``QSortFilterProxyModel`` calling Python ``lessThan`` or ``filterAcceptsRow`` per row takes
tens to hundreds) and works out how the rows on screen change (:func:`load_change`).
:class:`LibraryModel` then applies that :class:`RowChange` on the GUI thread a few row ranges
per event-loop turn, so a reload of a large library never holds the window.
"""

from __future__ import annotations

import dataclasses
import enum
import time
import unicodedata
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    QTimer,
    Slot,
)

from civdesk.core.library.repository import UNKNOWN_TYPE, Library, LibraryEntry, UpdateInfo

AnyIndex = QModelIndex | QPersistentModelIndex
OFFLINE_TIP = ("Offline: its drive or folder is not there now (unplugged or unmounted?). "
               "Kept in the library; back with the next scan that finds it.")
REMOVED_TIP = ("Removed from Civitai: the library keeps its metadata, previews and trigger "
               "words; it gets no updates.")


class Role(enum.IntEnum):
    """Custom data roles of :class:`LibraryModel` (``Qt.DisplayRole`` is the card title)."""

    Entry = Qt.ItemDataRole.UserRole + 1  # the LibraryEntry snapshot
    Path = enum.auto()
    Type = enum.auto()
    BaseModel = enum.auto()
    Preview = enum.auto()  # path of the preview image, or None
    Size = enum.auto()
    AddedAt = enum.auto()
    Sha256 = enum.auto()
    ModelId = enum.auto()
    VersionId = enum.auto()
    Identified = enum.auto()
    TriggerWords = enum.auto()
    IsDuplicate = enum.auto()  # another file on disk has the same SHA256
    Update = enum.auto()  # the UpdateInfo for this file's model, or None
    Nsfw = enum.auto()  # Civitai marks the model or its preview as mature
    Offline = enum.auto()  # kept while its drive or folder is away (not on disk now)
    Removed = enum.auto()  # Civitai archived or took down its model, or unpublished its version


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
        object.__setattr__(self, "_offline_count", sum(e.offline for e in self.entries))
        object.__setattr__(self, "_removed_count", sum(e.removed for e in self.entries))
        object.__setattr__(self, "_search_text", {e.path: search_text(e) for e in self.entries})

    def matches(self, entry: LibraryEntry, terms: tuple[str, ...]) -> bool:
        """Every (lower-case) term occurs in the entry's names, file name or trigger words."""
        text = self._search_text.get(entry.path)
        if text is None:  # not one of this snapshot's entries
            text = search_text(entry)
        return all(term in text for term in terms)

    def type_counts(self) -> dict[str, int]:
        return dict(self._type_counts)

    def base_model_counts(self) -> dict[str, int]:
        """Files per base model (files Civitai does not know have none)."""
        return dict(self._base_model_counts)

    @property
    def duplicate_count(self) -> int:
        return self._duplicate_count

    @property
    def update_count(self) -> int:
        return len(self.updates)

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


def search_text(entry: LibraryEntry) -> str:
    """What a search looks in (as :meth:`LibraryEntry.matches`), folded once: the names,
    the file name, the trigger words and the base model ("sdxl" finds SDXL files)."""
    return search_fold("\n".join(
        (entry.model_name or "", entry.version_name or "", entry.file_name,
         entry.base_model or "", *entry.trained_words)
    ))


def search_fold(text: str) -> str:
    """``text`` as searches compare it: case-folded, accents dropped ("cafe" finds
    "Café", "unicode" finds "Ünïcödé")."""
    folded = text.casefold()
    if folded.isascii():
        return folded
    decomposed = unicodedata.normalize("NFKD", folded)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


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


def _sort_key(key: SortKey) -> Callable[[LibraryEntry], Any]:
    # The path last: a total order, so two snapshots of the same library sort alike and a
    # reload can be applied as a diff.
    if key is SortKey.DATE:
        return lambda e: (e.added_at, e.path)
    if key is SortKey.SIZE:
        return lambda e: (e.size, e.path)
    return lambda e: (display_name(e).casefold(), e.file_name.casefold(), e.path)


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


Sort = tuple[SortKey, Qt.SortOrder]
DEFAULT_SORT: Sort = (SortKey.NAME, Qt.SortOrder.AscendingOrder)


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
    keys: dict[str, Any]  # path -> sort key (a total order: the path breaks ties)


def prepare_rows(
    snapshot: LibrarySnapshot, sort: Sort = DEFAULT_SORT,
    library_filter: LibraryFilter | None = None, *, keys: dict[str, Any] | None = None,
) -> LibraryRows:  # fmt: skip
    """Sort and filter ``snapshot`` (any thread). ``keys``: already known sort keys."""
    library_filter = library_filter or LibraryFilter()
    key_of = _sort_key(sort[0])
    if keys is None:
        keys = {e.path: key_of(e) for e in snapshot.entries}
    ordered = tuple(
        sorted(snapshot.entries, key=lambda e: keys[e.path],
               reverse=sort[1] == Qt.SortOrder.DescendingOrder)
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
APPLY_BUDGET_S = 0.008

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


class _Step(enum.Enum):
    """One piece of a :class:`RowChange`, small enough for one event-loop turn."""

    RESET = enum.auto()
    REMOVE = enum.auto()
    INSERT = enum.auto()
    SETTLE = enum.auto()  # staying rows take their new entries
    CHANGED = enum.auto()


def _steps(change: RowChange) -> deque[tuple[_Step, int, int]]:
    """The steps applying ``change``, in order; after each one the model is consistent."""
    if change.reset:
        return deque([(_Step.RESET, 0, 0)])
    # Removals from the bottom up and insertions from the top down keep every range's row
    # numbers valid when its turn comes.
    steps = [(_Step.REMOVE, first, last) for first, last in reversed(change.removed)]
    steps += [(_Step.INSERT, first, last) for first, last in change.inserted]
    steps.append((_Step.SETTLE, 0, 0))
    steps += [(_Step.CHANGED, first, last) for first, last in change.changed]
    return deque(steps)


class LibraryModel(QAbstractListModel):
    """One row per local file that passes the :class:`LibraryFilter`; the roles in :class:`Role`.

    Sorting and filtering happen in plain Python over the snapshot (:func:`prepare_rows`,
    on a worker for a reload), not in a ``QSortFilterProxyModel`` calling Python
    ``filterAcceptsRow`` once per row (~35 ms for 10,000 rows before any work). New rows are
    applied as a diff: rows that stay keep their identity (selection, current index, scroll
    position), so a reload after a scan does not rebuild the view.

    A reload's :class:`RowChange` comes ready from the worker (:meth:`apply_change`) and is
    applied over several event-loop turns when large; :attr:`snapshot`, :attr:`filter` and
    the counts are the new ones from its start, the rows follow range by range.
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows = prepare_rows(LibrarySnapshot())
        self._entries: list[LibraryEntry] = []  # the rows shown
        self._rows_by_path: dict[str, int] | None = {}  # None: work it out when asked
        # The change being applied over several turns (steps left), and what then.
        self._pending: RowChange | None = None
        self._steps: deque[tuple[_Step, int, int]] = deque()
        self._on_applied: Callable[[], None] | None = None
        self._budget_s: float | None = None
        self._next_turn = QTimer(self)
        self._next_turn.setSingleShot(True)
        self._next_turn.setInterval(0)
        self._next_turn.timeout.connect(self._continue)

    # -- content ----------------------------------------------------------------------------

    @property
    def rows(self) -> LibraryRows:
        """The rows shown (or being applied): a worker's :func:`load_change` starts here."""
        return self._rows

    @property
    def snapshot(self) -> LibrarySnapshot:
        return self._rows.snapshot

    @property
    def total_count(self) -> int:
        """Entries in the library, shown or filtered out."""
        return len(self._rows.all)

    @property
    def filter(self) -> LibraryFilter:
        return self._rows.filter

    @property
    def sort_order(self) -> Sort:
        return self._rows.sort

    @property
    def sort_key(self) -> SortKey:
        return self._rows.sort[0]

    @property
    def applying(self) -> bool:
        """Whether a change is still being applied over the next event-loop turns."""
        return self._pending is not None

    def set_snapshot(self, snapshot: LibrarySnapshot) -> None:
        """Show a new read of the library (sorted and filtered here, on this thread)."""
        self.set_rows(prepare_rows(snapshot, self._rows.sort, self._rows.filter))

    def set_rows(self, rows: LibraryRows) -> None:
        """Show rows prepared by :func:`prepare_rows` at once; rows present before keep their
        identity. Rows prepared for another sort or filter than the current one (the user
        changed it while they were read) are prepared again for the current one.
        """
        # apply_change finishes a change still being applied; self._rows is already its end.
        self.apply_change(diff_rows(self._rows, self._for_current_order(rows)), budget_s=None)

    def apply_change(
        self, change: RowChange, *, budget_s: float | None = APPLY_BUDGET_S,
        on_applied: Callable[[], None] | None = None,
    ) -> None:  # fmt: skip
        """Show ``change.rows``, spending at most ``budget_s`` per event-loop turn on it (at
        least one range of rows; None: all now); then ``on_applied()``.

        A change still being applied is finished first. A change worked out from other rows
        than the ones shown now (a filter changed while the worker read) is worked out again.
        """
        self.finish_applying()
        if change.base is not self._rows:
            change = diff_rows(self._rows, self._for_current_order(change.rows))
        self._pending, self._steps = change, _steps(change)
        self._on_applied, self._budget_s = on_applied, budget_s
        self._rows = change.rows
        self._continue()

    def finish_applying(self) -> None:
        """Apply what is left of a change at once (before anything else changes the rows)."""
        if self._pending is not None:
            self._next_turn.stop()
            self._budget_s = None
            self._continue()

    def _for_current_order(self, rows: LibraryRows) -> LibraryRows:
        if rows.sort != self._rows.sort or rows.filter != self._rows.filter:
            return prepare_rows(rows.snapshot, self._rows.sort, self._rows.filter)
        return rows

    @Slot()
    def _continue(self) -> None:
        """Apply steps until the budget of this turn is spent; the rest on the next turn."""
        change = self._pending
        if change is None:
            return
        started = time.perf_counter()
        while self._steps:
            self._apply_step(change, *self._steps.popleft())
            budget = self._budget_s
            if self._steps and budget is not None and time.perf_counter() - started >= budget:
                self._next_turn.start()
                return
        self._pending = None
        on_applied, self._on_applied = self._on_applied, None
        if on_applied is not None:
            on_applied()

    def _apply_step(self, change: RowChange, step: _Step, first: int, last: int) -> None:
        new = change.rows.visible
        if step is _Step.RESET:
            self.beginResetModel()
            self._entries = list(new)
            self._rows_by_path = change.rows_by_path
            self.endResetModel()
        elif step is _Step.REMOVE:
            self.beginRemoveRows(QModelIndex(), first, last)
            del self._entries[first : last + 1]
            self._rows_by_path = None
            self.endRemoveRows()
        elif step is _Step.INSERT:
            self.beginInsertRows(QModelIndex(), first, last)
            self._entries[first:first] = new[first : last + 1]
            self._rows_by_path = None
            self.endInsertRows()
        elif step is _Step.SETTLE:
            # The rows are the new ones now; those that stayed take their fresh entries
            # (names, previews, badges), announced by the CHANGED steps. Only those: a view
            # may ask for an index per row in a dataChanged range.
            self._entries = list(new)
            self._rows_by_path = change.rows_by_path
        else:
            self.dataChanged.emit(self.index(first, 0), self.index(last, 0))

    def set_filter(self, library_filter: LibraryFilter) -> None:
        self.finish_applying()
        if library_filter != self._rows.filter:
            rows = self._rows
            filtered = prepare_rows(rows.snapshot, rows.sort, library_filter, keys=rows.keys)
            self.apply_change(diff_rows(rows, filtered, refresh_data=False), budget_s=None)

    def entry(self, row: int) -> LibraryEntry:
        return self._entries[row]

    def entry_at(self, row: int) -> LibraryEntry | None:
        """The entry of ``row``, None past the rows: a plain Python read, no Qt call."""
        return self._entries[row] if 0 <= row < len(self._entries) else None

    def entries(self) -> list[LibraryEntry]:
        return list(self._entries)

    def row_of(self, path: str) -> int | None:
        """The row showing ``path``; None when it is not in the library or filtered out."""
        rows_by_path = self._rows_by_path
        if rows_by_path is None:  # asked half-way through a change
            rows_by_path = self._reindex()
        return rows_by_path.get(path)

    def remove_paths(self, paths: Iterable[str]) -> None:
        """Drop rows for deleted files at once (the next snapshot confirms it)."""
        self.finish_applying()
        gone = set(paths)
        rows = self._rows
        snapshot = dataclasses.replace(
            rows.snapshot, entries=tuple(e for e in rows.snapshot.entries if e.path not in gone)
        )
        kept = prepare_rows(snapshot, rows.sort, rows.filter, keys=rows.keys)
        self.apply_change(diff_rows(rows, kept, refresh_data=False), budget_s=None)

    def _reindex(self) -> dict[str, int]:
        rows_by_path = {e.path: row for row, e in enumerate(self._entries)}
        self._rows_by_path = rows_by_path
        return rows_by_path

    # -- sorting ------------------------------------------------------------------------------

    def sort_by(self, key: SortKey, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Reorder the rows; selections and other persistent indexes follow their entries."""
        self.finish_applying()
        rows = self._rows
        same_key = key is rows.sort[0]
        self.layoutAboutToBeChanged.emit()
        old_paths = [e.path for e in self._entries]
        self._rows = prepare_rows(
            rows.snapshot, (key, order), rows.filter, keys=rows.keys if same_key else None
        )
        self._entries = list(self._rows.visible)
        rows_by_path = self._reindex()
        persistent = self.persistentIndexList()
        self.changePersistentIndexList(
            persistent,
            [self.index(rows_by_path[old_paths[index.row()]], 0) for index in persistent],
        )
        self.layoutChanged.emit()

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        self.sort_by(self._rows.sort[0], order)

    # -- QAbstractItemModel ---------------------------------------------------------------

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._entries)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._entries):
            return None
        e = self._entries[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return display_name(e)
        if role == Qt.ItemDataRole.ToolTipRole:
            tips = [tip for tip, shown in ((OFFLINE_TIP, e.offline), (REMOVED_TIP, e.removed))
                    if shown]
            return "\n".join([e.path, *tips])
        if role < Role.Entry:
            return None
        return self._role_value(e, role)

    def _role_value(self, e: LibraryEntry, role: int) -> Any:
        if role == Role.Entry:
            return e
        if role == Role.Path:
            return e.path
        if role == Role.Type:
            return e.type
        if role == Role.BaseModel:
            return e.base_model
        if role == Role.Preview:
            return e.preview
        if role == Role.Size:
            return e.size
        if role == Role.AddedAt:
            return e.added_at
        if role == Role.Sha256:
            return e.sha256
        if role == Role.ModelId:
            return e.model_id
        if role == Role.VersionId:
            return e.version_id
        if role == Role.Identified:
            return e.identified
        if role == Role.TriggerWords:
            return list(e.trained_words)
        if role == Role.IsDuplicate:
            return e.sha256 is not None and e.sha256 in self._rows.snapshot.duplicate_hashes
        if role == Role.Update:
            updates = self._rows.snapshot.updates
            return updates.get(e.model_id) if e.model_id is not None else None
        if role == Role.Nsfw:
            return e.nsfw
        if role == Role.Offline:
            return e.offline
        if role == Role.Removed:
            return e.removed
        return None

    def roleNames(self) -> dict[int, bytes]:
        names = dict(super().roleNames())
        names.update({int(role): role.name.encode() for role in Role})
        return names

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return (
            Qt.ItemFlag.ItemIsEnabled
            | Qt.ItemFlag.ItemIsSelectable
            | Qt.ItemFlag.ItemNeverHasChildren
        )


class LibraryFilterProxy(QSortFilterProxyModel):
    """The grid's model: the filter controls in front of :class:`LibraryModel`.

    The filtering itself happens in the source model (see there why); this proxy neither
    filters nor sorts (no filter set, no sort column, no dynamic re-sorting), so it maps rows
    one to one, and keeps the page's filter calls in one place.

    Why a ``QSortFilterProxyModel`` then: it keeps the row mapping in C++, so its
    ``rowCount()`` and ``index()`` never call Python. An icon-mode ``QListView`` asks for an
    index per row on every layout (after each insert, removal or reset) and a
    ``QIdentityProxyModel`` forwards each to the Python ``rowCount`` of the source, which
    waits up to a switch interval for the GIL while a scan runs: 10,000 rows took ~50 ms
    idle and seconds under busy threads, against ~5 ms here.
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setDynamicSortFilter(False)

    def library_model(self) -> LibraryModel:
        model = self.sourceModel()
        assert isinstance(model, LibraryModel)
        return model

    @property
    def model_type(self) -> str | None:
        return self.library_model().filter.model_type

    @property
    def show(self) -> Show:
        return self.library_model().filter.show

    def set_model_type(self, model_type: str | None) -> None:
        """Only entries of this type (``"Unknown"`` for unidentified files); None for all."""
        self.set_filter(model_type=model_type)

    def set_search(self, text: str) -> None:
        self.set_filter(terms=tuple(search_fold(text).split()))

    def set_show(self, show: Show) -> None:
        self.set_filter(show=show)

    def set_filter(self, **changes: Any) -> None:
        """Change several parts of the filter at once (one update of the view)."""
        model = self.library_model()
        model.set_filter(dataclasses.replace(model.filter, **changes))

    def sort_by(self, key: SortKey, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        self.library_model().sort_by(key, order)

    def entry(self, index: AnyIndex) -> LibraryEntry | None:
        if not index.isValid():
            return None
        value = index.data(Role.Entry)
        return value if isinstance(value, LibraryEntry) else None


__all__ = [
    "UNKNOWN_TYPE",
    "LibraryFilter",
    "LibraryFilterProxy",
    "LibraryModel",
    "LibraryRows",
    "LibrarySnapshot",
    "Role",
    "RowChange",
    "Show",
    "SortKey",
    "diff_rows",
    "display_name",
    "load_change",
    "load_snapshot",
    "prepare_rows",
]
