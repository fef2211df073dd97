"""The guard against the Qt bindings' None reference-count bug (see civdesk.ui._bindings)."""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QLabel

import civdesk.ui  # noqa: F401  (applies the guard)
from civdesk.ui._bindings import void_calls_drop_none


def test_many_void_qt_calls_from_python_do_not_abort_the_interpreter(qtbot):
    label = QLabel()
    qtbot.addWidget(label)
    # Without the guard, an affected binding aborts the process within ~5,000 calls.
    for _ in range(20_000):
        label.setText("x")
    assert label.text() == "x"


def test_the_guard_is_in_place_where_the_binding_needs_it():
    if void_calls_drop_none():
        assert sys.getrefcount(None) > 1 << 40
