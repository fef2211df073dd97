"""Lines of the status area: a text that changes often without relayouting the window, and
the line of the library's work (scan, update check) with its bar and Cancel."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QWidget,
)


class StatusLine(QWidget):
    """One line of text that may change ten times a second (the scan's current file).

    A QLabel in a layout asks the whole window for a new layout on every ``setText``, since
    its size hint follows its text; a long file name would also widen the dock. Here the
    label sits in a holder without a layout: a new text posts its layout request to the
    holder, which has nothing to lay out, and the label is repainted by Qt alone (no Python
    paint code, which would have to win the GIL from a busy scan). Text that does not fit is
    clipped; callers put the full text in the tooltip.
    """

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel(text, self)
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMinimumSize(self.fontMetrics().averageCharWidth() * 8,
                            self.label.sizeHint().height())

    def text(self) -> str:
        return self.label.text()

    def setText(self, text: str) -> None:  # QLabel's name, for drop-in use
        self.label.setText(text)

    def setToolTip(self, text: str) -> None:  # the label covers the holder: it gets the hover
        self.label.setToolTip(text)

    def toolTip(self) -> str:
        return self.label.toolTip()

    def resizeEvent(self, event: QResizeEvent) -> None:
        self.label.setGeometry(self.rect())
        super().resizeEvent(event)


class ActivityLine(QWidget):
    """The library's work in one line under the pages, whichever page is shown: what runs
    (a scan, an update check), a bar, Cancel when it can be cancelled; then its outcome.

    Hidden until there is something to say; the outcome stays until dismissed or replaced.
    """

    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("activity")
        self.label = StatusLine()  # the current file changes ten times a second
        self.label.setObjectName("activityLabel")
        self.bar = QProgressBar()
        self.bar.setObjectName("activityProgress")
        self.bar.setTextVisible(False)
        self.bar.setFixedWidth(160)
        self.bar.setMaximumHeight(12)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("activityCancel")
        self.cancel_button.clicked.connect(self._cancel_clicked)
        self.dismiss_button = QToolButton()
        self.dismiss_button.setObjectName("activityDismiss")
        self.dismiss_button.setText("✕")
        self.dismiss_button.setAutoRaise(True)
        self.dismiss_button.setToolTip("Hide this line")
        self.dismiss_button.clicked.connect(self.hide)
        row = QHBoxLayout(self)
        row.setContentsMargins(8, 2, 4, 2)
        row.addWidget(self.label, 1)
        row.addWidget(self.bar)
        row.addWidget(self.cancel_button)
        row.addWidget(self.dismiss_button)
        self.hide()

    def show_activity(self, text: str, done: int, total: int, cancellable: bool = False,
                      tooltip: str = "") -> None:
        """Work in progress: ``done`` of ``total`` (``total`` 0: not known yet, a busy bar);
        ``cancellable`` shows Cancel (``cancel_requested``)."""
        self._set_bar(done, total)
        self.label.setText(text)
        self.label.setToolTip(tooltip or text)
        self.bar.show()
        if cancellable and not self.cancel_button.isVisibleTo(self):
            self.cancel_button.setEnabled(True)
        self.cancel_button.setVisible(cancellable)
        self.dismiss_button.hide()
        self.show()

    def show_result(self, text: str) -> None:
        """The outcome, without bar or Cancel, until dismissed or replaced."""
        self.label.setText(text)
        self.label.setToolTip(text)
        self.bar.hide()
        self.cancel_button.hide()
        self.dismiss_button.show()
        self.show()

    def text(self) -> str:
        return self.label.text()

    @Slot()
    def _cancel_clicked(self) -> None:
        self.cancel_button.setEnabled(False)
        self.label.setText("Cancelling…")
        self.cancel_requested.emit()

    def _set_bar(self, done: int, total: int) -> None:
        # QProgressBar.setValue repaints at once when the bar moves by a percent or more,
        # and an immediate repaint paints every pending region of the window with it (the
        # grid and the download list included: 10-40 ms while a scan keeps the GIL busy),
        # ten times a second. With updates off the value is only stored; turning them
        # back on schedules an ordinary update, painted with the rest of the next frame.
        self.bar.setUpdatesEnabled(False)
        try:
            self.bar.setRange(0, max(total, 0))
            self.bar.setValue(min(done, total) if total > 0 else 0)
        finally:
            self.bar.setUpdatesEnabled(True)


def scan_progress_text(done: int, total: int, current_path: str = "") -> str:
    """``Scanning library: 3 of 10 files · name.safetensors`` (``total`` 0: not known yet)."""
    counted = f"{done} of {total}" if total > 0 else f"{done}"
    name = current_path.replace("\\", "/").rsplit("/", 1)[-1]
    return f"Scanning library: {counted} files" + (f" · {name}" if name else "")
