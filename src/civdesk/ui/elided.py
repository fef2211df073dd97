"""A label for paths: as much as fits, cut in the middle, never widening its pane."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget


class MiddleElidedLabel(QLabel):
    """A one-line label that shows as much of a path as fits, cutting in the middle
    (``/home/me/…/models/Lora/``): both ends say which folder it is. ``prefix`` and
    ``suffix`` stay whole; the full text is :meth:`full_text` (and the caller's tooltip)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTextFormat(Qt.TextFormat.PlainText)
        # Never asks for the path's width: the row gives it what is left.
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self._prefix = self._path = self._suffix = ""

    def set_parts(self, prefix: str, path: str, suffix: str = "") -> None:
        self._prefix, self._path, self._suffix = prefix, path, suffix
        self._elide()

    def full_text(self) -> str:
        return self._prefix + self._path + self._suffix

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        metrics = self.fontMetrics()
        room = max(0, self.contentsRect().width()
                   - metrics.horizontalAdvance(self._prefix + self._suffix))
        path = metrics.elidedText(self._path, Qt.TextElideMode.ElideMiddle, room)
        self.setText(self._prefix + path + self._suffix)
