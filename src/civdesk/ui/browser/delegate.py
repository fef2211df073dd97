"""Paints one search result as a card: preview, name, type and base model, stats, badges.

The preview is asked of the thumbnail loader only while the card is painted, so a page of
results never fetches images for cards the user does not scroll to.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPainterPath, QPalette
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from civdesk.ui.browser.model import DOWNLOADED, UPDATE, ResultRole
from civdesk.ui.card_art import paint_nsfw_label, placeholder_pixmap
from civdesk.ui.thumbnails import ThumbnailLoader

AnyIndex = QModelIndex | QPersistentModelIndex

CARD_WIDTH = 200
THUMB_SIZE = QSize(CARD_WIDTH - 12, 220)
PADDING = 6
BADGES = {
    DOWNLOADED: ("Downloaded", QColor("#2e7d32"), QColor("white")),
    UPDATE: ("Update", QColor("#f9a825"), QColor("black")),
}
PLACEHOLDER = QColor("#3a3a3a")


def compact_number(value: int | None) -> str:
    """``4821`` → ``4.8k``."""
    if value is None:
        return "–"
    for limit, suffix in ((1_000_000, "M"), (1_000, "k")):
        if value >= limit:
            return f"{value / limit:.1f}".rstrip("0").rstrip(".") + suffix
    return str(value)


class CardDelegate(QStyledItemDelegate):
    """Fixed-size cards for a ``QListView`` in icon mode."""

    def __init__(self, thumbnails: ThumbnailLoader, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.thumbnails = thumbnails

    def sizeHint(self, option: QStyleOptionViewItem, index: AnyIndex) -> QSize:
        line = QFontMetrics(option.font).height()
        return QSize(CARD_WIDTH, PADDING * 4 + THUMB_SIZE.height() + line * 3)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: AnyIndex) -> None:
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        card = QRectF(option.rect.adjusted(3, 3, -3, -3))
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        background = option.palette.color(
            QPalette.ColorRole.Highlight if selected else QPalette.ColorRole.AlternateBase
        )
        path = QPainterPath()
        path.addRoundedRect(card, 6, 6)
        painter.fillPath(path, background)

        thumb_rect = QRect(
            card.toRect().left() + PADDING // 2, card.toRect().top() + PADDING // 2,
            THUMB_SIZE.width(), THUMB_SIZE.height(),
        )  # fmt: skip
        self._paint_thumbnail(painter, thumb_rect, index)
        self._paint_badge(painter, thumb_rect, index.data(ResultRole.LIBRARY_STATE))

        fm = QFontMetrics(option.font)
        line = fm.height()
        text_color = option.palette.color(
            QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        )
        x, width = thumb_rect.left() + 2, thumb_rect.width() - 4
        y = thumb_rect.bottom() + PADDING
        bold = QFont(option.font)
        bold.setBold(True)
        painter.setFont(bold)
        painter.setPen(text_color)
        name = QFontMetrics(bold).elidedText(
            str(index.data(Qt.ItemDataRole.DisplayRole)), Qt.TextElideMode.ElideRight, width
        )
        painter.drawText(QRect(x, y, width, line), Qt.AlignmentFlag.AlignLeft, name)
        painter.setFont(option.font)
        kind = " · ".join(
            str(part) for part in (index.data(ResultRole.TYPE), index.data(ResultRole.BASE_MODEL))
            if part
        )  # fmt: skip
        painter.drawText(
            QRect(x, y + line, width, line), Qt.AlignmentFlag.AlignLeft,
            fm.elidedText(kind, Qt.TextElideMode.ElideRight, width),
        )  # fmt: skip
        stats = (
            f"↓ {compact_number(index.data(ResultRole.DOWNLOADS))}   "
            f"♥ {compact_number(index.data(ResultRole.LIKES))}"
        )
        painter.drawText(QRect(x, y + 2 * line, width, line), Qt.AlignmentFlag.AlignLeft, stats)
        painter.restore()

    def _paint_thumbnail(self, painter: QPainter, rect: QRect, index: AnyIndex) -> None:
        url = index.data(ResultRole.THUMBNAIL_URL)
        blurred = bool(index.data(ResultRole.PREVIEW_BLURRED))
        pixmap = self.thumbnails.pixmap(url, THUMB_SIZE, blurred=blurred) if url else None
        if pixmap is not None and not pixmap.isNull():
            painter.drawPixmap(rect, pixmap)
        elif url:
            painter.fillRect(rect, PLACEHOLDER)
            painter.setPen(QColor("#bbbbbb"))
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, "Loading…")
        else:
            painter.drawPixmap(rect, placeholder_pixmap(rect.size()))
        if blurred:
            paint_nsfw_label(painter, rect)

    def _paint_badge(self, painter: QPainter, thumb: QRect, state: str) -> None:
        if state not in BADGES:
            return
        text, fill, ink = BADGES[state]
        font = QFont(painter.font())
        font.setBold(True)
        fm = QFontMetrics(font)
        badge = QRect(thumb.left() + 6, thumb.top() + 6, fm.horizontalAdvance(text) + 12,
                      fm.height() + 4)
        path = QPainterPath()
        path.addRoundedRect(QRectF(badge), 4, 4)
        painter.fillPath(path, fill)
        painter.setFont(font)
        painter.setPen(ink)
        painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, text)
