"""The library as Qt item models: :class:`LibraryModel` (one row per local file) and the
grid's pass-through :class:`LibraryFilterProxy`.

The rows come ready from :mod:`civdesk.ui.library.rows` (Qt-free: read, sorted, filtered
and diffed on a worker); :class:`LibraryModel` applies a :class:`RowChange` on the GUI
thread a few row ranges per event-loop turn, so a reload of a large library never holds
the window.
"""

from __future__ import annotations

import dataclasses
import enum
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QByteArray,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    QTimer,
    Slot,
)

from civdesk.core.library.repository import UNKNOWN_TYPE, LibraryEntry
from civdesk.core.library.search import search_terms
from civdesk.ui.library.rows import (
    LibraryFilter,
    LibraryRows,
    LibrarySnapshot,
    RowChange,
    Show,
    Sort,
    SortKey,
    diff_rows,
    display_name,
    load_change,
    load_snapshot,
    prepare_rows,
)

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


APPLY_BUDGET_S = 0.008

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
        descending = order == Qt.SortOrder.DescendingOrder
        self._rows = prepare_rows(
            rows.snapshot, (key, descending), rows.filter, keys=rows.keys if same_key else None
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

    def roleNames(self) -> dict[int, QByteArray]:
        names = dict(super().roleNames())
        names.update({int(role): QByteArray(role.name.encode()) for role in Role})
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
        self.set_filter(terms=search_terms(text))

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
