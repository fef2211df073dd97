"""The grid of Civitai cards: a keyboard-first icon view with a context menu.

Arrows, Home/End and PageUp/PageDown move between cards (``QListView``'s own cursor
moves), Enter opens the current card (``activated``), and the menu key, Shift+F10 or a
right click ask for the card's menu (``menu_requested``). Hovered and focused cards are
drawn as such by the delegate (the view tracks the mouse for it).
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPoint, QSize, Qt, Signal
from PySide6.QtGui import QContextMenuEvent, QKeyEvent, QResizeEvent
from PySide6.QtWidgets import QAbstractItemView, QListView, QWidget

from civdesk.ui.grid_layout import justify


class ResultsView(QListView):
    """Cards in rows; ``menu_requested(index, global position)`` for the card's menu."""

    menu_requested = Signal(QModelIndex, QPoint)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("results")
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setUniformItemSizes(True)
        self.setSpacing(4)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)  # hover states
        self.viewport().setAttribute(Qt.WidgetAttribute.WA_Hover)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.DefaultContextMenu)
        #: The cards' size (the delegate's): cells share the width, each card centred.
        self.card = QSize()

    def set_card_size(self, card: QSize) -> None:
        self.card = card
        justify(self, card)

    def resizeEvent(self, event: QResizeEvent) -> None:
        if self.card.isValid():
            justify(self, self.card)
        super().resizeEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        shift_f10 = (event.key() == Qt.Key.Key_F10
                     and event.modifiers() == Qt.KeyboardModifier.ShiftModifier)
        if shift_f10 or event.key() == Qt.Key.Key_Menu:
            self._menu_of_current()
            event.accept()
            return
        super().keyPressEvent(event)

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        if event.reason() == QContextMenuEvent.Reason.Keyboard:
            self._menu_of_current()  # the menu key, where the platform turns it into this
        else:
            index = self.indexAt(event.pos())  # the viewport's event: its coordinates
            if index.isValid():
                self.setCurrentIndex(index)
                self.menu_requested.emit(index, event.globalPos())
        event.accept()

    def _menu_of_current(self) -> None:
        index = self.currentIndex()
        if index.isValid():
            self.scrollTo(index)
            rect = self.visualRect(index)
            self.menu_requested.emit(index, self.viewport().mapToGlobal(rect.center()))
