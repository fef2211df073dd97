"""Paints one search result as a card: preview, name, type and base model, stats, badges.

The preview is asked of the thumbnail loader only while the card is painted, so a page of
results never fetches images for cards the user does not scroll to.

Like the library's cards, each card is drawn once into a pixmap (:class:`CardCache`) and
later paints blit it. A paint reads the row's :class:`Model` and the three values the item
model decides (library state, thumbnail URL, blurred) instead of eight role calls, each of
which may wait for the GIL while a download or a scan runs.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex, QRect, QRectF, QSize, Qt
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetrics,
    QPainter,
    QPainterPath,
    QPalette,
    QPen,
    QPixmap,
)
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from civdesk.core.civitai.schema import Model
from civdesk.ui.browser.model import DOWNLOADED, UPDATE, ResultRole
from civdesk.ui.card_art import paint_nsfw_label, placeholder_pixmap
from civdesk.ui.library.delegate import CardCache
from civdesk.ui.theme import pill_colors, placeholder_colors
from civdesk.ui.thumbnails import ThumbnailLoader

AnyIndex = QModelIndex | QPersistentModelIndex

CARD_WIDTH = 200
THUMB_SIZE = QSize(CARD_WIDTH - 12, 220)
PADDING = 6
BADGES = {
    DOWNLOADED: ("Downloaded", *pill_colors("downloaded")),
    UPDATE: ("Update", *pill_colors("update")),
}
#: The early-access badge (bottom of the preview): its fill and ink.
EARLY_ACCESS_BADGE = pill_colors("early-access")
#: The width of the ring around the card the keyboard is on (pixels).
FOCUS_RING = 2
# What the preview area shows, when it is not a decoded thumbnail.
_NO_PREVIEW, _LOADING = "none", "loading"


def compact_number(value: int | None) -> str:
    """``4821`` → ``4.8k``."""
    if value is None:
        return "–"
    for limit, suffix in ((1_000_000, "M"), (1_000, "k")):
        if value >= limit:
            return f"{value / limit:.1f}".rstrip("0").rstrip(".") + suffix
    return str(value)


@dataclass(frozen=True)
class ResultCard:
    """Everything a result card shows, read from the row with four model calls."""

    name: str
    kind: str  # "LORA · SD 1.5"
    stats: str  # "↓ 4.8k   ♥ 312"
    library_state: str
    thumbnail_url: str | None
    blurred: bool
    early_access: str | None = None  # "early access until 2026-12-10"

    @classmethod
    def of(cls, index: AnyIndex) -> ResultCard | None:
        model = index.data(ResultRole.MODEL)
        if not isinstance(model, Model):
            return None
        latest = model.latest_version
        base_model = latest.base_model if latest is not None else None
        url = index.data(ResultRole.THUMBNAIL_URL)
        return cls(
            name=model.name,
            kind=" · ".join(str(part) for part in (model.type, base_model) if part),
            stats=(
                f"↓ {compact_number(model.download_count)}   "
                f"♥ {compact_number(model.thumbs_up_count)}"
            ),
            library_state=index.data(ResultRole.LIBRARY_STATE),
            thumbnail_url=url,
            blurred=bool(url) and bool(index.data(ResultRole.PREVIEW_BLURRED)),
            early_access=index.data(ResultRole.EARLY_ACCESS),
        )


def card_state(option: QStyleOptionViewItem) -> tuple[bool, bool, bool]:
    """Whether the card is selected, under the mouse, and the keyboard's current card."""
    state = option.state
    return (bool(state & QStyle.StateFlag.State_Selected),
            bool(state & QStyle.StateFlag.State_MouseOver),
            bool(state & QStyle.StateFlag.State_HasFocus))


class CardDelegate(QStyledItemDelegate):
    """Fixed-size cards for a ``QListView`` in icon mode."""

    def __init__(self, thumbnails: ThumbnailLoader, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.thumbnails = thumbnails
        self.cards = CardCache()

    def sizeHint(self, option: QStyleOptionViewItem, index: AnyIndex) -> QSize:
        return QSize(CARD_WIDTH, self.card_height(option.font))

    @staticmethod
    def card_height(font: QFont) -> int:
        return PADDING * 4 + THUMB_SIZE.height() + QFontMetrics(font).height() * 3

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: AnyIndex) -> None:
        card = ResultCard.of(index)
        if card is None:
            return
        thumbnail = None
        if card.thumbnail_url:
            thumbnail = self.thumbnails.pixmap(card.thumbnail_url, THUMB_SIZE, blurred=card.blurred)
            if thumbnail is not None and thumbnail.isNull():
                thumbnail = None
        preview_state: Hashable = (
            thumbnail.cacheKey() if thumbnail is not None
            else _LOADING if card.thumbnail_url else _NO_PREVIEW
        )  # fmt: skip
        device = painter.device()
        ratio = device.devicePixelRatioF() if device is not None else 1.0
        # A grid cell wider than the card (the grid spreads cards over its width): centred.
        cell = option.rect
        width = min(cell.width(), CARD_WIDTH)
        rect = QRect(cell.x() + (cell.width() - width) // 2, cell.y(), width,
                     min(cell.height(), self.card_height(option.font)))
        key = (
            card, preview_state, card_state(option),
            rect.width(), rect.height(), ratio, option.palette.cacheKey(), option.font.key(),
            painter.font().key(),
        )  # fmt: skip
        pixmap = self.cards.get(key)
        if pixmap is None:
            pixmap = self._render(painter, option, rect.size(), card, thumbnail, ratio)
            self.cards.put(key, pixmap)
        painter.drawPixmap(rect.topLeft(), pixmap)

    def _render(
        self, view_painter: QPainter, option: QStyleOptionViewItem, size: QSize,
        card: ResultCard, thumbnail: QPixmap | None, ratio: float,
    ) -> QPixmap:  # fmt: skip
        """The card drawn from scratch into a pixmap of ``size``."""
        pixmap = QPixmap(round(size.width() * ratio), round(size.height() * ratio))
        pixmap.setDevicePixelRatio(ratio)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        try:
            painter.setFont(view_painter.font())
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            self._paint_card(painter, QRect(0, 0, size.width(), size.height()), option, card,
                             thumbnail)  # fmt: skip
        finally:
            painter.end()
        return pixmap

    def _paint_card(
        self, painter: QPainter, rect: QRect, option: QStyleOptionViewItem, card: ResultCard,
        thumbnail: QPixmap | None,
    ) -> None:  # fmt: skip
        outline = QRectF(rect.adjusted(3, 3, -3, -3))
        selected, hovered, focused = card_state(option)
        background = option.palette.color(
            QPalette.ColorRole.Highlight if selected
            else QPalette.ColorRole.Midlight if hovered else QPalette.ColorRole.AlternateBase
        )  # fmt: skip
        path = QPainterPath()
        path.addRoundedRect(outline, 6, 6)
        painter.fillPath(path, background)
        if focused or hovered:
            # The keyboard's card: a ring in the highlight colour (in the text colour on a
            # selected card, which is highlight-filled already); a hovered one: a thin ring.
            ring = option.palette.color(
                QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Highlight)
            pen = QPen(ring, FOCUS_RING if focused else 1)
            painter.setPen(pen)
            painter.drawPath(path)

        thumb_rect = QRect(
            outline.toRect().left() + PADDING // 2, outline.toRect().top() + PADDING // 2,
            THUMB_SIZE.width(), THUMB_SIZE.height(),
        )  # fmt: skip
        self._paint_thumbnail(painter, thumb_rect, card, thumbnail, option.palette)
        self._paint_badge(painter, thumb_rect, card.library_state)
        if card.early_access:
            self._paint_early_access(painter, thumb_rect, card.early_access)

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
        name = QFontMetrics(bold).elidedText(card.name, Qt.TextElideMode.ElideRight, width)
        painter.drawText(QRect(x, y, width, line), Qt.AlignmentFlag.AlignLeft, name)
        painter.setFont(option.font)
        painter.drawText(
            QRect(x, y + line, width, line), Qt.AlignmentFlag.AlignLeft,
            fm.elidedText(card.kind, Qt.TextElideMode.ElideRight, width),
        )  # fmt: skip
        painter.drawText(
            QRect(x, y + 2 * line, width, line), Qt.AlignmentFlag.AlignLeft, card.stats
        )

    @staticmethod
    def _paint_thumbnail(
        painter: QPainter, rect: QRect, card: ResultCard, thumbnail: QPixmap | None,
        palette: QPalette,
    ) -> None:  # fmt: skip
        if thumbnail is not None:
            painter.drawPixmap(rect, thumbnail)
        elif card.thumbnail_url:
            ground, ink = placeholder_colors(palette)  # the scheme's, not a fixed grey
            painter.fillRect(rect, ground)
            painter.setPen(ink)
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, "Loading…")
        else:
            painter.drawPixmap(rect, placeholder_pixmap(rect.size()))
        if card.blurred:
            paint_nsfw_label(painter, rect)

    @staticmethod
    def _paint_badge(painter: QPainter, thumb: QRect, state: str) -> None:
        if state in BADGES:
            CardDelegate._paint_pill(painter, thumb, *BADGES[state])

    @staticmethod
    def _paint_early_access(painter: QPainter, thumb: QRect, text: str) -> None:
        """``Early access until 2026-12-10`` across the bottom of the preview: said on the
        card, before a download is tried and refused."""
        CardDelegate._paint_pill(painter, thumb, text[:1].upper() + text[1:],
                                 *EARLY_ACCESS_BADGE, at_bottom=True)

    @staticmethod
    def _paint_pill(painter: QPainter, thumb: QRect, text: str, fill: QColor, ink: QColor, *,
                    at_bottom: bool = False) -> None:
        """A rounded label 6 px in from the preview's top-left (or bottom-left) corner."""
        font = QFont(painter.font())
        font.setBold(True)
        fm = QFontMetrics(font)
        words = fm.elidedText(text, Qt.TextElideMode.ElideRight, thumb.width() - 24)
        height = fm.height() + 4
        top = thumb.bottom() - 6 - height if at_bottom else thumb.top() + 6
        badge = QRect(thumb.left() + 6, top, fm.horizontalAdvance(words) + 12, height)
        path = QPainterPath()
        path.addRoundedRect(QRectF(badge), 4, 4)
        painter.fillPath(path, fill)
        painter.setFont(font)
        painter.setPen(ink)
        painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, words)
