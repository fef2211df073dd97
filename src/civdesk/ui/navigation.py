"""The window's navigation: a sidebar of the pages, an icon above each name.

The current page is marked as modern desktop apps do: a tint of the highlight behind it, an
accent bar in the highlight at its edge, its name in bold. Its text stays in the window's
text colour, so it reads in dark and light themes alike whatever the platform's highlight
(white text on a light highlight, as the old toolbar drew it, was not readable).
"""

from __future__ import annotations

from PySide6.QtCore import (
    QEvent,
    QModelIndex,
    QPersistentModelIndex,
    QRect,
    QSize,
    Qt,
    Signal,
    Slot,
)
from PySide6.QtGui import QColor, QFont, QFontMetrics, QIcon, QPainter, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QListView,
    QListWidget,
    QListWidgetItem,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QWidget,
)

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
#: How much of the highlight tints the current entry's ground.
TINT = 0.3
AnyIndex = QModelIndex | QPersistentModelIndex


def mix(ground: QColor, tint: QColor, amount: float) -> QColor:
    """``ground`` with ``amount`` (0–1) of ``tint`` laid over it."""
    return QColor.fromRgbF(*(g + (t - g) * amount for g, t in (
        (ground.redF(), tint.redF()), (ground.greenF(), tint.greenF()),
        (ground.blueF(), tint.blueF()))))


def selected_ground(palette: QPalette) -> QColor:
    """The current entry's ground: the window tinted with the highlight."""
    return mix(palette.color(QPalette.ColorRole.Window),
               palette.color(QPalette.ColorRole.Highlight), TINT)


class NavigationDelegate(QStyledItemDelegate):
    """Paints an entry: icon above name; the current one tinted, with an accent bar."""

    def sizeHint(self, option: QStyleOptionViewItem, index: AnyIndex) -> QSize:
        hint = index.data(Qt.ItemDataRole.SizeHintRole)
        return hint if isinstance(hint, QSize) else ENTRY

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: AnyIndex) -> None:
        palette = option.palette
        state = option.state
        selected = bool(state & QStyle.StateFlag.State_Selected)
        box = option.rect.adjusted(4, 2, -4, -2)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        if selected:
            painter.setBrush(selected_ground(palette))
            painter.drawRoundedRect(box, 6, 6)
            painter.setBrush(palette.color(QPalette.ColorRole.Highlight))
            painter.drawRoundedRect(QRect(box.left(), box.top() + 10, 3, box.height() - 20),
                                    1.5, 1.5)
        elif state & QStyle.StateFlag.State_MouseOver:
            painter.setBrush(palette.color(QPalette.ColorRole.AlternateBase))
            painter.drawRoundedRect(box, 6, 6)
        if state & QStyle.StateFlag.State_HasFocus:  # keyboard navigation shows where it is
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.setPen(palette.color(QPalette.ColorRole.Highlight))
            painter.drawRoundedRect(box.adjusted(0, 0, -1, -1), 6, 6)
        icon = index.data(Qt.ItemDataRole.DecorationRole)
        if isinstance(icon, QIcon):
            icon.paint(painter, QRect(box.center().x() - ICON_SIZE // 2, box.top() + 7,
                                      ICON_SIZE, ICON_SIZE))
        font = QFont(option.font)
        font.setBold(selected)
        painter.setFont(font)
        painter.setPen(palette.color(QPalette.ColorRole.WindowText))
        metrics = QFontMetrics(font)
        text_rect = QRect(box.left() + 2, box.top() + 7 + ICON_SIZE + 3, box.width() - 4,
                          metrics.height())
        text = metrics.elidedText(str(index.data(Qt.ItemDataRole.DisplayRole) or ""),
                                  Qt.TextElideMode.ElideRight, text_rect.width())
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignCenter, text)
        painter.restore()


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
        # Wide enough for the longest name in bold (the current page's look), never elided.
        bold = QFont(self.font())
        bold.setBold(True)
        widest = max(QFontMetrics(bold).horizontalAdvance(label) for _n, label, _k in NAV_PAGES)
        self.entry = QSize(max(ENTRY.width(), widest + 24), ENTRY.height())
        self.setGridSize(self.entry)
        self.setUniformItemSizes(True)
        self.setMouseTracking(True)  # hover
        self.setItemDelegate(NavigationDelegate(self))
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFixedWidth(self.entry.width() + 2 * self.frameWidth() + 4)
        self._items: dict[str, QListWidgetItem] = {}
        for name, label, keys in NAV_PAGES:
            item = QListWidgetItem(label)
            item.setData(Qt.ItemDataRole.UserRole, name)
            item.setToolTip(f"{label} ({keys})")
            item.setSizeHint(self.entry)
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
        ink = self.palette().color(QPalette.ColorRole.WindowText)
        for name, item in self._items.items():
            item.setIcon(nav_icon(name, ink))  # type: ignore[arg-type]

    def changeEvent(self, event: QEvent) -> None:
        # A theme that follows the system changes the palette: glyphs in its colours.
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.StyleChange):
            self._paint_icons()
        super().changeEvent(event)
