"""The scan's status line: new text repaints the line only, never relayouts the window."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget
from tests.ui.conftest import LayoutRequests

from civdesk.ui.status_line import StatusLine


def _window(qtbot, line: QWidget) -> QWidget:
    window = QWidget()
    qtbot.addWidget(window)
    outer = QVBoxLayout(window)
    row = QHBoxLayout()
    row.addWidget(line, 1)
    outer.addLayout(row)
    outer.addWidget(QLabel("below"))
    window.resize(300, 80)
    window.show()
    qtbot.waitExposed(window)
    return window


def _requests_after_texts(qtbot, line: QWidget) -> int:
    window = _window(qtbot, line)
    qtbot.wait(40)  # the layout of the first show settles
    counter = LayoutRequests()
    window.installEventFilter(counter)
    try:
        for i in range(5):
            line.setText(f"Scanning library: {i} of 5 files · {'long_name_' * (i + 1)}.safetensors")
            qtbot.wait(1)
        return counter.count
    finally:
        window.removeEventFilter(counter)


def test_new_text_does_not_relayout_the_window(qtbot):
    assert _requests_after_texts(qtbot, StatusLine()) == 0
    # The reason it exists: a plain QLabel asks the window for a layout on every text.
    assert _requests_after_texts(qtbot, QLabel()) >= 5


def test_long_text_is_clipped_not_widening_the_window(qtbot):
    line = StatusLine()
    window = _window(qtbot, line)
    before = window.minimumSizeHint().width()
    line.setText("x" * 500)
    line.setToolTip("/full/path/" + "x" * 500)
    assert line.text() == "x" * 500 and line.toolTip().startswith("/full/path/")
    assert window.minimumSizeHint().width() == before
    assert line.label.geometry() == line.rect()
