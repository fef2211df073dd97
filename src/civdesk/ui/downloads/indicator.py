"""The downloads in the status bar: one compact line and a badge with the queue's count.

A click on either opens the Downloads page. The line changes up to ten times a second
while a download runs, so it is a :class:`StatusLine` of fixed width: no window layout.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QHBoxLayout, QToolButton, QWidget

from civdesk.ui.downloads.summary import QueueCounts, counts_text
from civdesk.ui.status_line import StatusLine

#: Wide enough for "2 of 5 · 45% · 12.3 MB/s" and a name of some length (a longer one is
#: elided in its middle): at 900 px the status bar keeps room for a message beside it.
LINE_TEXT = "model-name-v2.safetensors · 100% · 000.0 MB/s"


class DownloadsIndicator(QWidget):
    """``No downloads`` / ``name · 45% · 12 MB/s`` / ``2 of 5 · …``, and the count."""

    clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("downloadsIndicator")
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip("Show the downloads")
        self.line = StatusLine("No downloads")
        self.line.setObjectName("downloadsLine")
        self.line.label.setTextInteractionFlags(Qt.TextInteractionFlag.NoTextInteraction)
        self.line.label.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        # Against the badge at the window's edge, whatever the text's length.
        self.line.label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.line.setFixedWidth(self.fontMetrics().horizontalAdvance(LINE_TEXT) + 8)
        self.badge = QToolButton()
        self.badge.setObjectName("downloadsBadge")
        self.badge.setText("0")
        self.badge.setAutoRaise(True)
        self.badge.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        # A fixed size: a new count must not ask the window for a layout (see StatusLine).
        self.badge.setFixedSize(self.fontMetrics().horizontalAdvance("⬇ 9999") + 16,
                                self.badge.sizeHint().height())
        self.badge.clicked.connect(self.clicked)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.line)
        layout.addWidget(self.badge)
        self.show_counts(QueueCounts())

    @Slot(object)
    def show_counts(self, counts: QueueCounts) -> None:
        text = counts_text(counts)
        self.line.setText(self._fitted(text, counts))
        self.line.setToolTip(f"{text}\nClick to show the downloads")
        # Blank while nothing is queued ("⬇ 0" said nothing); the fixed size stays, so a
        # count coming or going asks the window for no new layout (hiding it would).
        self.badge.setText(f"⬇ {counts.active}" if counts.active else "")
        self.badge.setToolTip(
            f"{counts.active} download{'s' if counts.active != 1 else ''} queued or running"
            " · show the downloads")
        self.badge.setProperty("busy", bool(counts.active))

    def _fitted(self, text: str, counts: QueueCounts) -> str:
        """``text`` with the download's name elided to leave its figures in sight."""
        metrics = self.line.label.fontMetrics()
        room = self.line.width() - 4
        name = counts.name
        if metrics.horizontalAdvance(text) <= room or not name or not text.startswith(name):
            return text
        rest = text[len(name):]
        short = metrics.elidedText(name, Qt.TextElideMode.ElideMiddle,
                                   max(room - metrics.horizontalAdvance(rest), 0))
        return short + rest

    def text(self) -> str:
        return self.line.text()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.rect().contains(
                event.position().toPoint()):
            self.clicked.emit()
        super().mouseReleaseEvent(event)
