"""A model's versions as a list to scan: name and badge, then base model, date and size.

Badges say what the library holds: Downloaded (this version is on disk), Update (newer than
every version on disk), or until when a version is in early access. The chosen version is
the selected row, marked with a bar in the highlight colour.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRect,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import QFont, QFontMetrics, QPainter, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QListView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QWidget,
)

from civdesk.core.civitai.schema import ModelVersion
from civdesk.ui.browser.delegate import BADGES, EARLY_ACCESS_BADGE, CardDelegate
from civdesk.ui.browser.model import DOWNLOADED, NOT_OWNED, UPDATE
from civdesk.ui.downloads.messages import size_text

AnyIndex = QModelIndex | QPersistentModelIndex
#: Rows shown without scrolling; a model with more versions scrolls the list.
VISIBLE_ROWS = 4
PADDING = 6
MARK_WIDTH = 4


class VersionRole(IntEnum):
    VERSION = Qt.ItemDataRole.UserRole + 1
    VERSION_ID = Qt.ItemDataRole.UserRole + 2
    DETAILS = Qt.ItemDataRole.UserRole + 3  # "SD 1.5 · 2025-01-10 · 144 KB"
    LIBRARY_STATE = Qt.ItemDataRole.UserRole + 4  # NOT_OWNED | DOWNLOADED | UPDATE
    EARLY_ACCESS = Qt.ItemDataRole.UserRole + 5  # "early access until …" or None


def version_details(version: ModelVersion) -> str:
    """Base model, the date it came out, the size of its primary file."""
    date = (version.published_at or version.created_at or "")[:10]
    primary = version.primary_file
    size = size_text(primary.size_bytes) if primary is not None else None
    return " · ".join(part for part in (version.base_model, date, size) if part)


def version_states(versions: list[ModelVersion], installed: set[int]) -> list[str]:
    """Each version's badge: Downloaded when on disk; Update when newer than every version
    on disk (versions come newest first); nothing otherwise."""
    states = []
    newer = bool(installed)  # above the first version on disk, every one is newer
    for version in versions:
        if version.id in installed:
            newer = False
            states.append(DOWNLOADED)
        else:
            states.append(UPDATE if newer else NOT_OWNED)
    return states


class VersionListModel(QAbstractListModel):
    """The versions of one model, newest first."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._versions: list[ModelVersion] = []
        self._states: list[str] = []

    def set_versions(self, versions: Iterable[ModelVersion], installed: set[int]) -> None:
        self.beginResetModel()
        self._versions = list(versions)
        self._states = version_states(self._versions, installed)
        self.endResetModel()

    def row_of(self, version_id: int) -> int | None:
        return next((row for row, v in enumerate(self._versions) if v.id == version_id), None)

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._versions)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._versions):
            return None
        version = self._versions[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return version.name or f"Version {version.id}"
        if role == Qt.ItemDataRole.ToolTipRole:
            return version_details(version)
        if role == VersionRole.VERSION:
            return version
        if role == VersionRole.VERSION_ID:
            return version.id
        if role == VersionRole.DETAILS:
            return version_details(version)
        if role == VersionRole.LIBRARY_STATE:
            return self._states[index.row()]
        if role == VersionRole.EARLY_ACCESS:
            return version.early_access_text()
        return None


class VersionDelegate(QStyledItemDelegate):
    """Two lines: the name in bold with its badge; base model, date and size below."""

    def sizeHint(self, option: QStyleOptionViewItem, index: AnyIndex) -> QSize:
        line = QFontMetrics(option.font).height()
        return QSize(200, PADDING * 2 + line * 2 + 4)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: AnyIndex) -> None:
        painter.save()
        try:
            self._paint(painter, option, index)
        finally:
            painter.restore()

    def _paint(self, painter: QPainter, option: QStyleOptionViewItem, index: AnyIndex) -> None:
        rect = option.rect
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        hovered = bool(option.state & QStyle.StateFlag.State_MouseOver)
        palette = option.palette
        if selected or hovered:
            painter.fillRect(rect, palette.color(
                QPalette.ColorRole.Highlight if selected else QPalette.ColorRole.Midlight))
        if selected:  # the chosen version, marked beyond its colour
            painter.fillRect(QRect(rect.left(), rect.top(), MARK_WIDTH, rect.height()),
                             palette.color(QPalette.ColorRole.HighlightedText))
        ink = palette.color(QPalette.ColorRole.HighlightedText if selected
                            else QPalette.ColorRole.Text)
        fm = QFontMetrics(option.font)
        line = fm.height()
        left = rect.left() + MARK_WIDTH + PADDING
        top = rect.top() + PADDING
        badge_rect = QRect(left, top - 6, rect.width(), line + 10)  # the pill's own inset
        name_width = rect.width() - MARK_WIDTH - 2 * PADDING
        state = index.data(VersionRole.LIBRARY_STATE)
        early = index.data(VersionRole.EARLY_ACCESS)
        bold = QFont(option.font)
        bold.setBold(True)
        name = str(index.data(Qt.ItemDataRole.DisplayRole))
        name = QFontMetrics(bold).elidedText(name, Qt.TextElideMode.ElideRight, name_width // 2)
        painter.setFont(bold)
        painter.setPen(ink)
        painter.drawText(QRect(left, top, name_width, line), Qt.AlignmentFlag.AlignLeft, name)
        badge_rect.moveLeft(left + QFontMetrics(bold).horizontalAdvance(name) + PADDING - 6)
        painter.setFont(option.font)
        if state in BADGES:
            CardDelegate._paint_pill(painter, badge_rect, *BADGES[state])
        elif early:
            CardDelegate._paint_pill(painter, badge_rect, early[:1].upper() + early[1:],
                                     *EARLY_ACCESS_BADGE)
        painter.setFont(option.font)
        painter.setPen(ink)
        details = fm.elidedText(str(index.data(VersionRole.DETAILS) or ""),
                                Qt.TextElideMode.ElideRight, name_width)
        painter.drawText(QRect(left, top + line + 4, name_width, line),
                         Qt.AlignmentFlag.AlignLeft, details)


class VersionList(QListView):
    """The versions, one selected at a time; ``version_chosen`` when the selection moves."""

    version_chosen = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("versionList")
        self.versions = VersionListModel(self)
        self.setModel(self.versions)
        self.setItemDelegate(VersionDelegate(self))
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setMouseTracking(True)
        self.setUniformItemSizes(True)
        self.selectionModel().currentRowChanged.connect(lambda *_: self.version_chosen.emit())

    def show_versions(self, versions: list[ModelVersion], installed: set[int],
                      keep: int | None) -> None:
        """List ``versions``; select the one with id ``keep`` if listed, else the newest.
        Emits ``version_chosen`` once."""
        self.blockSignals(True)
        self.selectionModel().blockSignals(True)
        try:
            self.versions.set_versions(versions, installed)
            row = self.versions.row_of(keep) if keep is not None else None
            if self.versions.rowCount():
                self.setCurrentIndex(self.versions.index(row or 0))
        finally:
            self.selectionModel().blockSignals(False)
            self.blockSignals(False)
        shown = min(max(len(versions), 1), VISIBLE_ROWS)
        option = QStyleOptionViewItem()
        option.font = self.font()
        row_height = self.itemDelegate().sizeHint(option, QModelIndex()).height()
        self.setFixedHeight(shown * row_height + 2 * self.frameWidth())
        self.version_chosen.emit()

    def current_version(self) -> ModelVersion | None:
        version = self.currentIndex().data(VersionRole.VERSION)
        return version if isinstance(version, ModelVersion) else None

    def select_version(self, version_id: int) -> None:
        row = self.versions.row_of(version_id)
        if row is not None:
            self.setCurrentIndex(self.versions.index(row))
