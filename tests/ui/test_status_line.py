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


def test_the_activity_line_shows_a_scan_with_cancel_then_its_outcome(qtbot):
    from PySide6.QtCore import Qt

    from civdesk.ui.status_line import ActivityLine, scan_progress_text

    line = ActivityLine()
    window = _window(qtbot, line)
    assert not line.isVisible()  # nothing to say yet
    text = scan_progress_text(3, 10, "/models/Lora/paperfold.safetensors")
    assert text == "Scanning library: 3 of 10 files · paperfold.safetensors"
    line.show_activity(text, 3, 10, cancellable=True)
    assert line.isVisible() and line.bar.isVisible() and line.cancel_button.isVisible()
    assert line.text() == text
    assert line.bar.value() == 3 and line.bar.maximum() == 10
    with qtbot.waitSignal(line.cancel_requested):
        qtbot.mouseClick(line.cancel_button, Qt.MouseButton.LeftButton)
    assert not line.cancel_button.isEnabled()
    line.show_activity("Checking for updates…", 0, 0)  # not cancellable: no button
    assert not line.cancel_button.isVisible() and line.bar.maximum() == 0
    line.show_result("Scan finished: 10 files, 8 identified")
    assert line.text() == "Scan finished: 10 files, 8 identified"
    assert not line.bar.isVisible() and not line.cancel_button.isVisible()
    qtbot.mouseClick(line.dismiss_button, Qt.MouseButton.LeftButton)
    assert not line.isVisible() and window.isVisible()
    line.show_activity(text, 4, 10, cancellable=True)  # a new scan: Cancel works again
    assert line.cancel_button.isEnabled()
