"""The window's navigation: a sidebar of the pages, an icon above each name, the current
one on the highlight (its text in the highlight's text colour, readable in both themes)."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QSize, Qt, Signal, Slot
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QAbstractItemView, QListView, QListWidget, QListWidgetItem, QWidget

from civdesk.ui.icons import NavGlyph, nav_icon

#: (page name, label, shortcut): the sidebar's entries, top to bottom.
NAV_PAGES: tuple[tuple[NavGlyph, str, str], ...] = (
    ("civitai", "Civitai", "Ctrl+1"),
    ("models", "Models", "Ctrl+2"),
    ("downloads", "Downloads", "Ctrl+3"),
    ("settings", "Settings", "Ctrl+4"),
)
ICON_SIZE = 24
ENTRY = QSize(84, 60)


class NavigationBar(QListWidget):
    """One entry per page; ``page_chosen(name)`` when the user picks one."""

    page_chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("navigation")
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setFlow(QListView.Flow.TopToBottom)
        self.setWrapping(False)
        self.setMovement(QListView.Movement.Static)
        self.setResizeMode(QListView.ResizeMode.Fixed)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setIconSize(QSize(ICON_SIZE, ICON_SIZE))
        self.setGridSize(ENTRY)
        self.setUniformItemSizes(True)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFixedWidth(ENTRY.width() + 2 * self.frameWidth() + 4)
        self._items: dict[str, QListWidgetItem] = {}
        for name, label, keys in NAV_PAGES:
            item = QListWidgetItem(label)
            item.setData(Qt.ItemDataRole.UserRole, name)
            item.setToolTip(f"{label} ({keys})")
            item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom)
            item.setSizeHint(ENTRY)
            self.addItem(item)
            self._items[name] = item
        self._paint_icons()
        self.currentItemChanged.connect(self._current_changed)

    def item_of(self, name: str) -> QListWidgetItem:
        return self._items[name]

    def current_name(self) -> str | None:
        item = self.currentItem()
        return str(item.data(Qt.ItemDataRole.UserRole)) if item is not None else None

    def mark(self, name: str) -> None:
        """Show ``name`` as the current page (without ``page_chosen``)."""
        self.blockSignals(True)
        try:
            self.setCurrentItem(self._items[name])
        finally:
            self.blockSignals(False)
        self.viewport().update()

    @Slot(QListWidgetItem, QListWidgetItem)
    def _current_changed(self, current: QListWidgetItem | None,
                         _previous: QListWidgetItem | None) -> None:
        if current is not None:
            self.page_chosen.emit(str(current.data(Qt.ItemDataRole.UserRole)))

    def _paint_icons(self) -> None:
        palette = self.palette()
        text = palette.color(QPalette.ColorRole.Text)
        selected = palette.color(QPalette.ColorRole.HighlightedText)
        for name, item in self._items.items():
            item.setIcon(nav_icon(name, text, selected))  # type: ignore[arg-type]

    def changeEvent(self, event: QEvent) -> None:
        # A theme that follows the system changes the palette: glyphs in its colours.
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.StyleChange):
            self._paint_icons()
        super().changeEvent(event)
