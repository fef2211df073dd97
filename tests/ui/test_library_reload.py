"""A reload of a large library applied over several event-loop turns (``apply_change``).

The rows, the selection and every model signal must come out as a one-shot apply would
leave them, with the model consistent at every step (qtmodeltester stays attached).
"""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import QItemSelectionModel, QModelIndex, Qt
from PySide6.QtWidgets import QListView
from tests.ui.library_cards import numbered_entry, paint_card

from civdesk.core.library.repository import UpdateInfo
from civdesk.ui.library.delegate import CardDelegate
from civdesk.ui.library.model import (
    LibraryFilter,
    LibraryFilterProxy,
    LibraryModel,
    LibrarySnapshot,
    Role,
    diff_rows,
    prepare_rows,
)
from civdesk.ui.thumbnails import ThumbnailLoader

ROWS = 3_000


def _before() -> LibrarySnapshot:
    return LibrarySnapshot(tuple(numbered_entry(i) for i in range(0, 2 * ROWS, 2)))


def _after() -> LibrarySnapshot:
    """20 rows removed and 20 inserted, each a range of its own; 5 entries renamed (they
    move to the end: 5 more removals, 1 insertion); update badges on 10 rows."""
    gone = {2 * i for i in range(50, ROWS, ROWS // 20)}
    renamed = {2 * i for i in range(75, ROWS, ROWS // 5)}
    entries = [
        numbered_entry(i, name=f"Renamed {i:05d}" if i in renamed else None)
        for i in range(0, 2 * ROWS, 2)
        if i not in gone
    ]
    entries += [numbered_entry(2 * i + 1) for i in range(10, ROWS, ROWS // 20)]  # new odd paths
    updated = [2 * i for i in range(33, ROWS, ROWS // 10) if 2 * i not in gone | renamed]
    updates = {
        i: UpdateInfo(i, f"Model {i:05d}", "LORA", (10_000 + i,), ("v1",), 90_000 + i, "v2")
        for i in updated
    }
    return LibrarySnapshot(tuple(entries), updates=updates)


def _rows(model) -> list[tuple[str, bool]]:
    """What each row shows: its path and its update badge."""
    return [
        (model.index(r, 0).data(Role.Path), model.index(r, 0).data(Role.Update) is not None)
        for r in range(model.rowCount())
    ]


def _apply_in_slices(qtbot, model: LibraryModel, snapshot: LibrarySnapshot) -> None:
    """Apply ``snapshot`` one step per event-loop turn, and wait until it is all applied."""
    rows = prepare_rows(snapshot, model.sort_order, model.filter)
    applied: list[bool] = []
    model.apply_change(
        diff_rows(model.rows, rows), budget_s=0.0, on_applied=lambda: applied.append(True)
    )
    assert model.applying and not applied  # one step done, the others wait for their turns
    qtbot.waitUntil(lambda: bool(applied), timeout=10_000)
    assert not model.applying


def test_a_change_applied_in_slices_ends_like_a_one_shot_apply(qtbot, qtmodeltester):
    sliced, one_shot = LibraryModel(), LibraryModel()
    for model in (sliced, one_shot):
        model.set_snapshot(_before())
    proxy = LibraryFilterProxy()
    proxy.setSourceModel(sliced)
    # The testers stay attached: every signal of every step is checked as it comes.
    qtmodeltester.check(sliced)
    qtmodeltester.check(proxy)
    signals: list[str] = []
    sliced.rowsRemoved.connect(lambda *_: signals.append("removed"))
    sliced.rowsInserted.connect(lambda *_: signals.append("inserted"))
    sliced.dataChanged.connect(lambda *_: signals.append("changed"))
    sliced.modelReset.connect(lambda *_: signals.append("reset"))

    first_turn: list[int] = []
    sliced.apply_change(
        diff_rows(sliced.rows, prepare_rows(_after(), sliced.sort_order, sliced.filter)),
        budget_s=0.0, on_applied=lambda: first_turn.append(len(signals)),
    )  # fmt: skip
    assert signals == ["removed"]  # one range in this turn, the rest in the next ones
    qtbot.waitUntil(lambda: bool(first_turn), timeout=10_000)
    one_shot.set_snapshot(_after())

    assert "reset" not in signals
    assert signals.count("removed") == 25 and signals.count("inserted") == 21
    assert signals.count("changed") == 10  # the update badges, nothing else
    assert _rows(sliced) == _rows(one_shot) == _rows(proxy)
    assert sum(badge for _, badge in _rows(sliced)) == 10
    for row, entry in enumerate(one_shot.entries()):
        assert sliced.row_of(entry.path) == row
    assert sliced.row_of(numbered_entry(100).path) is None  # removed


def test_the_selection_stays_on_its_entries_through_a_sliced_change(qtbot):
    model = LibraryModel()
    model.set_snapshot(_before())
    proxy = LibraryFilterProxy()
    proxy.setSourceModel(model)
    view = QListView()
    qtbot.addWidget(view)
    view.setModel(proxy)
    kept, also_kept = numbered_entry(2 * 1500).path, numbered_entry(2 * 2999).path
    selection = view.selectionModel()
    current = proxy.mapFromSource(model.index(model.row_of(kept), 0))
    selection.setCurrentIndex(current, QItemSelectionModel.SelectionFlag.ClearAndSelect)
    selection.select(
        proxy.mapFromSource(model.index(model.row_of(also_kept), 0)),
        QItemSelectionModel.SelectionFlag.Select,
    )

    _apply_in_slices(qtbot, model, _after())

    # Above it 10 rows went, 3 moved to the end (renamed) and 10 came: it moved up 3 rows.
    assert model.row_of(kept) == 1500 - 3
    assert view.currentIndex().data(Role.Path) == kept
    selected = sorted(index.data(Role.Path) for index in selection.selectedIndexes())
    assert selected == sorted([kept, also_kept])


def test_a_change_asked_for_during_another_finishes_the_first(qtbot):
    model = LibraryModel()
    model.set_snapshot(_before())
    first = diff_rows(model.rows, prepare_rows(_after(), model.sort_order, model.filter))
    model.apply_change(first, budget_s=0.0)
    assert model.applying
    qtbot.wait(0)
    # Mid-way, the user picks a filter: the change is finished at once, then filtered.
    model.set_filter(LibraryFilter(terms=("renamed",)))
    assert not model.applying
    assert [e.model_name for e in model.entries()] == [
        f"Renamed {2 * i:05d}" for i in range(75, ROWS, ROWS // 5)
    ]
    assert model.total_count == len(_after().entries)


def test_a_change_worked_out_from_older_rows_is_worked_out_again(qtbot, qtmodeltester):
    model = LibraryModel()
    model.set_snapshot(_before())
    # A worker read the library with the rows of this moment ...
    stale = diff_rows(model.rows, prepare_rows(_after(), model.sort_order, model.filter))
    # ... and the filter changed before its result arrived.
    model.set_filter(LibraryFilter(terms=("0000",)))
    qtmodeltester.check(model)
    model.apply_change(stale, budget_s=None)
    reference = LibraryModel()
    reference.set_snapshot(_after())
    reference.set_filter(LibraryFilter(terms=("0000",)))
    assert _rows(model) == _rows(reference)
    assert model.filter == LibraryFilter(terms=("0000",))


def test_an_unchanged_reload_is_no_signal_at_all(qtbot):
    model = LibraryModel()
    model.set_snapshot(_before())
    signals: list[object] = []
    for signal in (model.rowsInserted, model.rowsRemoved, model.dataChanged, model.modelReset):
        signal.connect(lambda *args: signals.append(args))
    # A fresh read: equal entries, new objects.
    again = LibrarySnapshot(tuple(dataclasses.replace(e) for e in _before().entries))
    change = diff_rows(model.rows, prepare_rows(again, model.sort_order, model.filter))
    assert (change.removed, change.inserted, change.changed) == ((), (), ())
    model.apply_change(change)
    assert signals == [] and not model.applying


class _CountingModel(LibraryModel):
    """Counts the Python ``rowCount`` calls the proxy makes."""

    calls = 0

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008
        _CountingModel.calls += 1
        return super().rowCount(parent)


def test_the_proxy_answers_index_and_row_count_without_python():
    """An icon-mode view asks for every row's index on each layout: the proxy must answer
    from its C++ mapping, not by calling the (Python) source model once per row."""
    rows = ROWS
    model = _CountingModel()
    model.set_snapshot(LibrarySnapshot(tuple(numbered_entry(i) for i in range(rows))))
    proxy = LibraryFilterProxy()
    proxy.setSourceModel(model)
    assert proxy.rowCount() == rows  # builds the mapping: one source call
    _CountingModel.calls = 0
    indexes = [proxy.index(row, 0) for row in range(rows)]
    assert all(index.isValid() for index in indexes) and proxy.rowCount() == rows
    assert _CountingModel.calls == 0
    assert proxy.mapToSource(indexes[7]).row() == 7  # one to one


class _DataCountingModel(LibraryModel):
    """Counts the Python ``data`` calls views make."""

    calls = 0

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):  # type: ignore[no-untyped-def]
        _DataCountingModel.calls += 1
        return super().data(index, role)


def test_the_grid_delegate_reads_entries_without_model_calls(qtbot, tmp_path):
    """The page's delegate gets each card's entry in Python (the proxy maps rows one to
    one): the same card as through ``Role.Entry``, without a model call per paint."""
    model = _DataCountingModel()
    model.set_snapshot(LibrarySnapshot(tuple(numbered_entry(i) for i in range(20))))
    proxy = LibraryFilterProxy()
    proxy.setSourceModel(model)
    thumbnails = ThumbnailLoader(tmp_path / "cache")
    by_role = CardDelegate(thumbnails, snapshot=lambda: model.snapshot)
    direct = CardDelegate(
        thumbnails, snapshot=lambda: model.snapshot,
        entry=lambda index: model.entry_at(index.row()),
    )  # fmt: skip
    index = proxy.index(7, 0)
    expected = paint_card(by_role, index)
    _DataCountingModel.calls = 0
    assert paint_card(direct, index) == expected
    assert paint_card(direct, index) == expected  # from the card cache
    assert _DataCountingModel.calls == 0
    assert model.entry_at(20) is None and model.entry_at(-1) is None
    thumbnails.cancel_pending()
