"""Cards for the library grid: preview thumbnail, name, type and base model, badges.

The delegate asks the :class:`ThumbnailLoader` for a preview only when a card is painted,
so a library of 10,000 files decodes the few dozen previews on screen, not all of them.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPainterPath, QPalette
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from civdesk.core.library.repository import UNKNOWN_TYPE
from civdesk.ui.card_art import paint_nsfw_label, placeholder_pixmap
from civdesk.ui.library.model import Role, type_label
from civdesk.ui.theme import badge_color, type_color
from civdesk.ui.thumbnails import ThumbnailLoader, thumbnail_key

AnyIndex = QModelIndex | QPersistentModelIndex

CARD_WIDTH = 184
THUMB_HEIGHT = 230  # 4:5, close to the portrait previews most models carry
TEXT_HEIGHT = 46
MARGIN = 6
RADIUS = 8.0


class CardDelegate(QStyledItemDelegate):
    """Paints one library entry as a card.

    ``allow_nsfw`` False (the setting's default) blurs the previews of models Civitai marks
    NSFW and labels them.
    """

    def __init__(
        self, thumbnails: ThumbnailLoader, parent: QObject | None = None, *,
        allow_nsfw: bool = False,
    ) -> None:  # fmt: skip
        super().__init__(parent)
        self.thumbnails = thumbnails
        self.allow_nsfw = allow_nsfw

    def blurs(self, index: AnyIndex) -> bool:
        """Whether this card's preview is shown blurred."""
        return not self.allow_nsfw and bool(index.data(Role.Nsfw))

    @staticmethod
    def card_size() -> QSize:
        return QSize(CARD_WIDTH + 2 * MARGIN, THUMB_HEIGHT + TEXT_HEIGHT + 2 * MARGIN)

    @staticmethod
    def thumb_size(device_pixel_ratio: float = 1.0) -> QSize:
        return QSize(
            round(CARD_WIDTH * device_pixel_ratio), round(THUMB_HEIGHT * device_pixel_ratio)
        )

    def sizeHint(self, option: QStyleOptionViewItem, index: AnyIndex) -> QSize:
        return self.card_size()

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: AnyIndex) -> None:
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = option.palette
        card = QRectF(option.rect).adjusted(MARGIN, MARGIN, -MARGIN, -MARGIN)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        hovered = bool(option.state & QStyle.StateFlag.State_MouseOver)

        outline = QPainterPath()
        outline.addRoundedRect(card, RADIUS, RADIUS)
        painter.fillPath(outline, palette.color(QPalette.ColorRole.Base))

        thumb = QRectF(card.left(), card.top(), card.width(), THUMB_HEIGHT)
        painter.save()
        painter.setClipPath(outline)
        self._paint_preview(painter, thumb, index)
        painter.restore()

        self._paint_badges(painter, thumb, index)
        self._paint_text(painter, card, thumb, index, palette)

        if selected or hovered:
            pen_color = palette.color(QPalette.ColorRole.Highlight)
            if not selected:
                pen_color.setAlpha(140)
            painter.setPen(pen_color)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            pen = painter.pen()
            pen.setWidthF(3.0 if selected else 1.5)
            painter.setPen(pen)
            painter.drawRoundedRect(card.adjusted(1, 1, -1, -1), RADIUS, RADIUS)
        painter.restore()

    def _paint_preview(self, painter: QPainter, rect: QRectF, index: AnyIndex) -> None:
        ratio = painter.device().devicePixelRatioF() if painter.device() else 1.0
        source, size, blurred = index.data(Role.Preview), self.thumb_size(ratio), self.blurs(index)
        pixmap = self.thumbnails.pixmap(source, size, blurred=blurred)
        if pixmap is not None:
            painter.drawPixmap(rect.toRect(), pixmap)
        elif not source or self.thumbnails.error(thumbnail_key(source, size, blurred=blurred)):
            painter.drawPixmap(rect.toRect(), placeholder_pixmap(rect.toRect().size()))
        else:
            self._paint_loading(painter, rect, index)
        if blurred and source:
            paint_nsfw_label(painter, rect)

    def _paint_loading(self, painter: QPainter, rect: QRectF, index: AnyIndex) -> None:
        """Until the preview is decoded: the type's colour and its initials."""
        model_type = index.data(Role.Type) or UNKNOWN_TYPE
        base = type_color(model_type)
        painter.fillRect(rect, base.darker(260))
        font = QFont(painter.font())
        font.setPointSizeF(font.pointSizeF() * 2.2)
        font.setBold(True)
        painter.setFont(font)
        painter.setPen(base.lighter(130))
        initials = "?" if model_type == UNKNOWN_TYPE else model_type[:2].upper()
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, initials)

    def _paint_badges(self, painter: QPainter, thumb: QRectF, index: AnyIndex) -> None:
        model_type = index.data(Role.Type) or UNKNOWN_TYPE
        left = [(type_label(model_type), type_color(model_type))]
        right = []
        if index.data(Role.Update) is not None:
            right.append(("Update", badge_color("update")))
        if index.data(Role.IsDuplicate):
            right.append(("Duplicate", badge_color("duplicate")))
        font = QFont(painter.font())
        font.setPointSizeF(max(7.0, font.pointSizeF() * 0.8))
        font.setBold(True)
        painter.setFont(font)
        metrics = QFontMetrics(font)
        x = thumb.left() + 6
        for text, color in left:
            x += _badge(painter, metrics, text, color, x, thumb.top() + 6) + 4
        y = thumb.top() + 6
        for text, color in right:
            width = metrics.horizontalAdvance(text) + 10
            _badge(painter, metrics, text, color, thumb.right() - 6 - width, y)
            y += metrics.height() + 6

    def _paint_text(
        self, painter: QPainter, card: QRectF, thumb: QRectF, index: AnyIndex, palette: QPalette
    ) -> None:
        text_rect = QRectF(card.left() + 8, thumb.bottom() + 4, card.width() - 16, TEXT_HEIGHT - 6)
        font = QFont(painter.font())
        font.setBold(True)
        painter.setFont(font)
        painter.setPen(palette.color(QPalette.ColorRole.Text))
        metrics = QFontMetrics(font)
        name = metrics.elidedText(
            str(index.data() or ""), Qt.TextElideMode.ElideRight, int(text_rect.width())
        )
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop, name)

        detail = _detail_line(index)
        font.setBold(False)
        font.setPointSizeF(max(7.0, font.pointSizeF() * 0.9))
        painter.setFont(font)
        painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
        metrics = QFontMetrics(font)
        detail = metrics.elidedText(detail, Qt.TextElideMode.ElideRight, int(text_rect.width()))
        painter.drawText(
            text_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom, detail
        )


def _detail_line(index: AnyIndex) -> str:
    entry = index.data(Role.Entry)
    if entry is None:
        return ""
    if not entry.identified:
        return f"{entry.file_name} · {format_size(entry.size)}"
    parts = [entry.version_name, entry.base_model, format_size(entry.size)]
    return " · ".join(p for p in parts if p)


def _badge(
    painter: QPainter, metrics: QFontMetrics, text: str, color: QColor, x: float, y: float
) -> float:
    width = metrics.horizontalAdvance(text) + 10
    rect = QRectF(x, y, width, metrics.height() + 2)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(color)
    painter.drawRoundedRect(rect, 4, 4)
    painter.setPen(QColor("white"))
    painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)
    return width


def format_size(size: int) -> str:
    """Bytes as people read them: 2.1 GB, 144 MB, 12 KB."""
    value = float(size)
    units = ["B", "KB", "MB", "GB", "TB"]
    while value >= 1024 and len(units) > 1:
        value /= 1024
        units.pop(0)
    unit = units[0]
    if unit in ("B", "KB") or value >= 100:
        return f"{value:.0f} {unit}"
    return f"{value:.1f} {unit}"
