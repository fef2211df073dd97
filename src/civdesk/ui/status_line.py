"""A one-line text that changes often without relayouting the window."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget


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
