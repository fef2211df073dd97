"""Cards for the library grid: preview thumbnail, name, type and base model, badges.

The delegate asks the :class:`ThumbnailLoader` for a preview only when a card is painted,
so a library of 10,000 files decodes the few dozen previews on screen, not all of them.

Each card is drawn once into a pixmap (:class:`CardCache`) and later paints blit it: while a
scan or a download keeps the GIL busy, every Python call into Qt may wait ~1 ms to win it
back, and a card drawn from scratch makes dozens of them (60-90 ms for a screen of cards).
A cached card costs one model call (the row's :class:`LibraryEntry`) and one ``drawPixmap``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable

from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPainterPath, QPalette, QPixmap
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from civdesk.core.library.repository import UNKNOWN_TYPE, LibraryEntry
from civdesk.ui.card_art import paint_nsfw_label, placeholder_pixmap
from civdesk.ui.library.model import LibrarySnapshot, Role, display_name, type_label
from civdesk.ui.theme import badge_color, type_color
from civdesk.ui.thumbnails import ThumbnailLoader, thumbnail_key

AnyIndex = QModelIndex | QPersistentModelIndex

CARD_WIDTH = 184
THUMB_HEIGHT = 230  # 4:5, close to the portrait previews most models carry
TEXT_HEIGHT = 46
MARGIN = 6
RADIUS = 8.0
#: Rendered cards kept (~225 KB each at 1x): about five screens of a large window.
CARD_CACHE_BYTES = 24 * 1024 * 1024

_SELECTED = QStyle.StateFlag.State_Selected
_HOVERED = QStyle.StateFlag.State_MouseOver
# What the preview area shows, when it is not a decoded thumbnail.
_NO_PREVIEW, _FAILED, _LOADING = "none", "failed", "loading"


class CardCache:
    """Rendered cards by what decides their look, least recently painted dropped first.

    Keys hold everything a card's pixels depend on (the entry's values, badges, preview
    state, selection, size, palette), so a changed row or a thumbnail that arrived gives a
    new key and a fresh render; the stale pixmap simply ages out. Bounded in bytes.
    """

    def __init__(self, limit_bytes: int = CARD_CACHE_BYTES) -> None:
        self.limit_bytes = limit_bytes
        self._pixmaps: OrderedDict[Hashable, QPixmap] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._pixmaps)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def get(self, key: Hashable) -> QPixmap | None:
        pixmap = self._pixmaps.get(key)
        if pixmap is not None:
            self._pixmaps.move_to_end(key)
        return pixmap

    def put(self, key: Hashable, pixmap: QPixmap) -> None:
        old = self._pixmaps.pop(key, None)
        if old is not None:
            self._bytes -= _cost(old)
        self._pixmaps[key] = pixmap
        self._bytes += _cost(pixmap)
        while self._bytes > self.limit_bytes and len(self._pixmaps) > 1:
            _, dropped = self._pixmaps.popitem(last=False)
            self._bytes -= _cost(dropped)

    def clear(self) -> None:
        self._pixmaps.clear()
        self._bytes = 0


def _cost(pixmap: QPixmap) -> int:
    return pixmap.width() * pixmap.height() * 4


class CardDelegate(QStyledItemDelegate):
    """Paints one library entry as a card.

    ``allow_nsfw`` False (the setting's default) blurs the previews of models Civitai marks
    NSFW and labels them. ``snapshot``: returns the snapshot the model shows, so the
    duplicate and update badges are read in Python rather than with two more model calls
    per card; without it they come from ``Role.IsDuplicate`` and ``Role.Update``.
    """

    def __init__(
        self, thumbnails: ThumbnailLoader, parent: QObject | None = None, *,
        allow_nsfw: bool = False, snapshot: Callable[[], LibrarySnapshot] | None = None,
    ) -> None:  # fmt: skip
        super().__init__(parent)
        self.thumbnails = thumbnails
        self.allow_nsfw = allow_nsfw
        self.cards = CardCache()
        self._snapshot = snapshot

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
        entry = index.data(Role.Entry)
        if not isinstance(entry, LibraryEntry):
            return
        duplicate, has_update = self._badges(index, entry)
        device = painter.device()
        ratio = device.devicePixelRatioF() if device is not None else 1.0
        blurred = entry.nsfw and not self.allow_nsfw
        thumb, preview_state = self._preview(entry.preview, self.thumb_size(ratio), blurred)
        state = option.state
        rect = option.rect
        palette = option.palette
        key = (
            entry, duplicate, has_update, blurred, preview_state,
            bool(state & _SELECTED), bool(state & _HOVERED),
            rect.width(), rect.height(), ratio, palette.cacheKey(),
        )  # fmt: skip
        card = self.cards.get(key)
        if card is None:
            card = self._render(painter, option, entry, duplicate, has_update, thumb, ratio)
            self.cards.put(key, card)
        painter.drawPixmap(rect.topLeft(), card)

    def _badges(self, index: AnyIndex, entry: LibraryEntry) -> tuple[bool, bool]:
        """(is a duplicate, has an update) for the card's corner badges."""
        if self._snapshot is None:
            return bool(index.data(Role.IsDuplicate)), index.data(Role.Update) is not None
        snapshot = self._snapshot()
        duplicate = entry.sha256 is not None and entry.sha256 in snapshot.duplicate_hashes
        return duplicate, entry.model_id is not None and entry.model_id in snapshot.updates

    def _preview(
        self, source: str | None, size: QSize, blurred: bool
    ) -> tuple[QPixmap | None, Hashable]:
        """The thumbnail (None until decoded) and what the card's preview area shows."""
        if not source:
            return None, _NO_PREVIEW
        pixmap = self.thumbnails.pixmap(source, size, blurred=blurred)
        if pixmap is not None:
            return pixmap, pixmap.cacheKey()  # a re-decoded preview is a new pixmap
        if self.thumbnails.error(thumbnail_key(source, size, blurred=blurred)):
            return None, _FAILED
        return None, _LOADING

    def _render(
        self, view_painter: QPainter, option: QStyleOptionViewItem, entry: LibraryEntry,
        duplicate: bool, has_update: bool, thumbnail: QPixmap | None, ratio: float,
    ) -> QPixmap:  # fmt: skip
        """The card drawn from scratch into a pixmap of ``option.rect``'s size."""
        size = option.rect.size()
        pixmap = QPixmap(round(size.width() * ratio), round(size.height() * ratio))
        pixmap.setDevicePixelRatio(ratio)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        try:
            painter.setFont(view_painter.font())  # the view's (style sheet) font
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            card = QRectF(0, 0, size.width(), size.height()).adjusted(
                MARGIN, MARGIN, -MARGIN, -MARGIN
            )
            self._paint_card(painter, option, card, entry, duplicate, has_update, thumbnail)
        finally:
            painter.end()
        return pixmap

    def _paint_card(
        self, painter: QPainter, option: QStyleOptionViewItem, card: QRectF,
        entry: LibraryEntry, duplicate: bool, has_update: bool, thumbnail: QPixmap | None,
    ) -> None:  # fmt: skip
        palette = option.palette
        selected = bool(option.state & _SELECTED)
        hovered = bool(option.state & _HOVERED)

        outline = QPainterPath()
        outline.addRoundedRect(card, RADIUS, RADIUS)
        painter.fillPath(outline, palette.color(QPalette.ColorRole.Base))

        thumb = QRectF(card.left(), card.top(), card.width(), THUMB_HEIGHT)
        painter.save()
        painter.setClipPath(outline)
        self._paint_preview(painter, thumb, entry, thumbnail)
        painter.restore()

        self._paint_badges(painter, thumb, entry.type or UNKNOWN_TYPE, duplicate, has_update)
        self._paint_text(painter, card, thumb, entry, palette)

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

    def _paint_preview(
        self, painter: QPainter, rect: QRectF, entry: LibraryEntry, thumbnail: QPixmap | None
    ) -> None:
        source = entry.preview
        if thumbnail is not None:
            painter.drawPixmap(rect.toRect(), thumbnail)
        elif not source or self.thumbnails.error(
            thumbnail_key(source, self.thumb_size(painter.device().devicePixelRatioF()),
                          blurred=entry.nsfw and not self.allow_nsfw)
        ):  # fmt: skip
            painter.drawPixmap(rect.toRect(), placeholder_pixmap(rect.toRect().size()))
        else:
            self._paint_loading(painter, rect, entry.type or UNKNOWN_TYPE)
        if source and entry.nsfw and not self.allow_nsfw:
            paint_nsfw_label(painter, rect)

    @staticmethod
    def _paint_loading(painter: QPainter, rect: QRectF, model_type: str) -> None:
        """Until the preview is decoded: the type's colour and its initials."""
        base = type_color(model_type)
        painter.fillRect(rect, base.darker(260))
        font = QFont(painter.font())
        font.setPointSizeF(font.pointSizeF() * 2.2)
        font.setBold(True)
        painter.setFont(font)
        painter.setPen(base.lighter(130))
        initials = "?" if model_type == UNKNOWN_TYPE else model_type[:2].upper()
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, initials)

    @staticmethod
    def _paint_badges(
        painter: QPainter, thumb: QRectF, model_type: str, duplicate: bool, has_update: bool
    ) -> None:
        left = [(type_label(model_type), type_color(model_type))]
        right = []
        if has_update:
            right.append(("Update", badge_color("update")))
        if duplicate:
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

    @staticmethod
    def _paint_text(
        painter: QPainter, card: QRectF, thumb: QRectF, entry: LibraryEntry, palette: QPalette
    ) -> None:
        text_rect = QRectF(card.left() + 8, thumb.bottom() + 4, card.width() - 16, TEXT_HEIGHT - 6)
        font = QFont(painter.font())
        font.setBold(True)
        painter.setFont(font)
        painter.setPen(palette.color(QPalette.ColorRole.Text))
        metrics = QFontMetrics(font)
        name = metrics.elidedText(
            display_name(entry), Qt.TextElideMode.ElideRight, int(text_rect.width())
        )
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop, name)

        font.setBold(False)
        font.setPointSizeF(max(7.0, font.pointSizeF() * 0.9))
        painter.setFont(font)
        painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
        metrics = QFontMetrics(font)
        detail = metrics.elidedText(
            detail_line(entry), Qt.TextElideMode.ElideRight, int(text_rect.width())
        )
        painter.drawText(
            text_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom, detail
        )


def detail_line(entry: LibraryEntry) -> str:
    """The card's second line: version, base model and size (file name when unidentified)."""
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
