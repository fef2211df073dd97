"""Card grids that fill their width: the cells share the row instead of leaving the rest of
it as a margin on the right (the Models and the Civitai pages)."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QListView


def justify(view: QListView, card: QSize) -> None:
    """Grid cells of ``view`` as wide as its width divided by the cards that fit.

    The icon layout wraps within the viewport's largest size less a scroll bar's width,
    whether the bar shows or not (QListViewPrivate::prepareItemsLayout): the same width
    here, so a scroll bar coming or going changes nothing.
    """
    width = view.maximumViewportSize().width() - 1
    if view.verticalScrollBarPolicy() != Qt.ScrollBarPolicy.ScrollBarAlwaysOff:
        width -= view.verticalScrollBar().sizeHint().width()
    columns = max(1, width // max(1, card.width()))
    cell = QSize(max(card.width(), width // columns), card.height())
    if cell != view.gridSize():
        view.setGridSize(cell)
