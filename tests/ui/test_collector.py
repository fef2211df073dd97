"""Cycles are collected on the GUI thread, never on the worker that dropped them."""

from __future__ import annotations

import gc
import threading
from typing import Any

import pytest

from civdesk.ui.collector import GuiGarbageCollector


class _Cycle:
    """Half of a reference cycle that records the thread it is finalised on."""

    def __init__(self, seen: list[int]) -> None:
        self.seen = seen
        self.other: Any = None

    def __del__(self) -> None:
        self.seen.append(threading.get_ident())


@pytest.fixture
def collector(qapp: Any) -> Any:
    # The suite's own fixture already runs one; this one is the object under test.
    gc.collect()
    made = GuiGarbageCollector(interval_ms=10)
    yield made
    made.stop()


def test_a_cycle_dropped_by_a_worker_is_finalised_on_the_gui_thread(collector, qtbot) -> None:
    collector.start()
    seen: list[int] = []
    kept: list[Any] = []

    def worker() -> None:
        first, second = _Cycle(seen), _Cycle(seen)
        first.other, second.other = second, first
        del first, second
        # Plenty of new objects: with automatic collection on, this thread would collect.
        kept.append([[i] for i in range(gc.get_threshold()[0] * 20)])

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == []  # nothing collected on the worker
    qtbot.waitUntil(lambda: len(seen) == 2, timeout=5000)
    assert set(seen) == {threading.main_thread().ident}


def test_start_and_stop_hand_automatic_collection_back(collector) -> None:
    was = gc.isenabled()
    gc.enable()
    try:
        collector.start()
        collector.start()  # idempotent
        assert collector.running and not gc.isenabled()
        collector.stop()
        assert not collector.running and gc.isenabled()
        gc.disable()
        collector.start()
        collector.stop()
        assert not gc.isenabled()  # it was off before: stays off
    finally:
        (gc.enable if was else gc.disable)()


def test_collects_only_past_the_young_threshold(collector) -> None:
    gc.collect()
    assert collector.collect_due() is None
    keep = [[i] for i in range(gc.get_threshold()[0] * 2)]
    assert collector.collect_due() in (0, 1, 2)
    assert collector.collect_due() is None
    del keep


def test_qt_tests_run_without_automatic_collection(qtbot) -> None:
    """The suite's regime is the app's: a collection never starts by itself, wherever an
    allocation happens (inside a QObject destructor it could deadlock on Qt's lock)."""
    assert not gc.isenabled()


def test_the_app_turns_automatic_collection_off_for_good(qapp) -> None:
    from civdesk.ui.app import collect_garbage_on_gui_thread

    gc.enable()
    try:
        collector = collect_garbage_on_gui_thread(qapp)
        assert collector.running and not gc.isenabled()
    finally:
        collector.stop()
        collector.deleteLater()
        gc.disable()
