"""Cards for the library grid: preview thumbnail, name, type and base model, badges.

The delegate asks the :class:`ThumbnailLoader` for a preview only when a card is painted,
so a library of 10,000 files decodes the few dozen previews on screen, not all of them.

Each card is drawn once into a pixmap (:class:`CardCache`) and later paints blit it: while a
scan or a download keeps the GIL busy, every Python call into Qt may wait ~1 ms to win it
back, and a card drawn from scratch makes dozens of them (60-90 ms for a screen of cards).
A cached card costs one model call (the row's :class:`LibraryEntry`) and one ``drawPixmap``.

A card drawn for the first time is composed of pieces many cards share, drawn once
(:class:`CardParts`: type and state badges, the loading art, the NSFW pill, fonts and their
metrics), so it costs a couple of dozen Qt calls rather than ~70. And a paint event renders
new cards only for :data:`RENDER_BUDGET_S`: past it the remaining new cards get a stand-in
(their background and name) and are repainted on the next event-loop turn, so a screen of
new cards after a reload is drawn over a few short turns instead of one long one.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import shiboken6
from PySide6.QtCore import (
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QPointF,
    QRect,
    QRectF,
    QSize,
    Qt,
    QTimer,
)
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
from PySide6.QtWidgets import QAbstractItemView, QStyle, QStyledItemDelegate, QStyleOptionViewItem

from civdesk.core.library.repository import UNKNOWN_TYPE, LibraryEntry
from civdesk.core.units import human_size
from civdesk.ui.card_art import paint_nsfw_label, placeholder_pixmap
from civdesk.ui.library.model import Role
from civdesk.ui.library.rows import LibrarySnapshot, display_name, type_label
from civdesk.ui.theme import BADGE_INK, badge_color, type_color
from civdesk.ui.thumbnails import ThumbnailLoader, thumbnail_key

AnyIndex = QModelIndex | QPersistentModelIndex

CARD_WIDTH = 184
THUMB_HEIGHT = 230  # 4:5, close to the portrait previews most models carry
TEXT_HEIGHT = 46
MARGIN = 6
RADIUS = 8.0
#: Rendered cards kept, counted at 1x (~225 KB a card): about five screens of a large
#: window. A HiDPI screen keeps as many cards (see _cost), so it never renders in a loop.
CARD_CACHE_BYTES = 24 * 1024 * 1024
#: How long one paint event may spend rendering new cards (at least one is always rendered).
#: A card costs 1-3 ms while workers hold the GIL, so a turn stays well under 50 ms.
RENDER_BUDGET_S = 0.012
OFFLINE_OPACITY = 0.4  # a card whose file is offline is drawn faded

_TOP_LEFT = int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
_BOTTOM_LEFT = int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom)
_SELECTED = QStyle.StateFlag.State_Selected
_HOVERED = QStyle.StateFlag.State_MouseOver
_FOCUSED = QStyle.StateFlag.State_HasFocus
# What the preview area shows, when it is not a decoded thumbnail.
_NO_PREVIEW, _FAILED, _LOADING = "none", "failed", "loading"
_THUMB_KEYS_KEPT = 20_000  # memoised thumbnail keys (a 10,000-file library's, twice)


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
    """A card's share of the budget, in 1x bytes: the number of cards kept does not shrink
    by the square of the pixel ratio on a HiDPI screen."""
    ratio = max(pixmap.devicePixelRatio(), 1.0)
    return int(pixmap.width() * pixmap.height() * 4 / (ratio * ratio))


@dataclass(frozen=True)
class CardFonts:
    """The card's three fonts and their metrics, derived once from the view's font."""

    badge: QFont
    badge_metrics: QFontMetrics
    name: QFont
    name_metrics: QFontMetrics
    detail: QFont
    detail_metrics: QFontMetrics

    @classmethod
    def from_base(cls, base: QFont) -> CardFonts:
        badge = QFont(base)
        badge.setPointSizeF(max(7.0, badge.pointSizeF() * 0.8))
        badge.setBold(True)
        name = QFont(base)
        name.setBold(True)
        detail = QFont(base)
        detail.setPointSizeF(max(7.0, detail.pointSizeF() * 0.9))
        return cls(
            badge, QFontMetrics(badge), name, QFontMetrics(name), detail, QFontMetrics(detail)
        )


class CardParts:
    """Pieces many cards share, each drawn once: badges, loading art, the NSFW pill, fonts.

    Keyed by what they look like (text, colour, font, size, pixel ratio); the set of keys is
    small (a few types and states per font and screen), so nothing is ever evicted.
    """

    def __init__(self) -> None:
        self._fonts: dict[str, CardFonts] = {}
        self._pixmaps: dict[Hashable, QPixmap] = {}

    def __len__(self) -> int:
        return len(self._pixmaps)

    def fonts(self, base: QFont) -> CardFonts:
        key = base.key()
        fonts = self._fonts.get(key)
        if fonts is None:
            fonts = self._fonts[key] = CardFonts.from_base(base)
        return fonts

    def badge(self, text: str, color: QColor, fonts: CardFonts, ratio: float) -> QPixmap:
        """A rounded pill of ``color`` with ``text`` in white."""
        key = ("badge", text, color.rgba(), fonts.badge.key(), ratio)
        pixmap = self._pixmaps.get(key)
        if pixmap is None:
            metrics = fonts.badge_metrics
            rect = QRectF(0, 0, metrics.horizontalAdvance(text) + 10, metrics.height() + 2)
            pixmap = _transparent(rect.size().toSize(), ratio)
            painter = QPainter(pixmap)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setFont(fonts.badge)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(color)
            painter.drawRoundedRect(rect, 4, 4)
            painter.setPen(BADGE_INK)
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)
            painter.end()
            self._pixmaps[key] = pixmap
        return pixmap

    def loading(self, model_type: str, size: QSize, base: QFont, ratio: float) -> QPixmap:
        """Until the preview is decoded: the type's colour and its initials."""
        key = ("loading", model_type, size.width(), size.height(), base.key(), ratio)
        pixmap = self._pixmaps.get(key)
        if pixmap is None:
            pixmap = _transparent(size, ratio)
            painter = QPainter(pixmap)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            rect = QRectF(0, 0, size.width(), size.height())
            color = type_color(model_type)
            painter.fillRect(rect, color.darker(260))
            font = QFont(base)
            font.setPointSizeF(font.pointSizeF() * 2.2)
            font.setBold(True)
            painter.setFont(font)
            painter.setPen(color.lighter(130))
            initials = "?" if model_type == UNKNOWN_TYPE else model_type[:2].upper()
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, initials)
            painter.end()
            self._pixmaps[key] = pixmap
        return pixmap

    def nsfw_label(self, size: QSize, base: QFont, ratio: float) -> QPixmap:
        """The NSFW pill where :func:`paint_nsfw_label` puts it, on a transparent preview."""
        key = ("nsfw", size.width(), size.height(), base.key(), ratio)
        pixmap = self._pixmaps.get(key)
        if pixmap is None:
            pixmap = _transparent(size, ratio)
            painter = QPainter(pixmap)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setFont(base)
            paint_nsfw_label(painter, QRectF(0, 0, size.width(), size.height()))
            painter.end()
            self._pixmaps[key] = pixmap
        return pixmap


def _transparent(size: QSize, ratio: float) -> QPixmap:
    return _transparent_pixmap(size.width(), size.height(), ratio)


def _transparent_pixmap(width: int, height: int, ratio: float) -> QPixmap:
    pixmap = QPixmap(round(width * ratio), round(height * ratio))
    pixmap.setDevicePixelRatio(ratio)
    pixmap.fill(Qt.GlobalColor.transparent)
    return pixmap


#: A card as plain ints (x, y, width, height) in viewport coordinates.
CardRect = tuple[int, int, int, int]


class _DeferredCards:
    """Cards a paint event left as stand-ins, repainted for real on the next turn.

    The follow-up is a zero-interval single-shot timer owned by the delegate (so it dies
    with it). Positions are in viewport coordinates: if the view scrolled in between, the
    stand-ins moved with the pixels, so the whole viewport is repainted instead.

    Kept as plain ints and read once per view and turn: every Qt value object made on the
    GUI thread (a QRegion, a scroll bar's wrapper) gives up the GIL when it is freed, and
    waits up to a switch interval to win it back while workers run.
    """

    def __init__(self, parent: QObject, on_turn: Callable[[], None]) -> None:
        self.timer = QTimer(parent)
        self.timer.setSingleShot(True)
        self.timer.setInterval(0)
        self.timer.timeout.connect(self._next_turn)
        self._on_turn = on_turn
        # id(view) -> (view, its scroll offset at the first stand-in, the stand-ins)
        self._pending: dict[int, tuple[QAbstractItemView, tuple[int, int], list[CardRect]]] = {}
        self.repaint_requested = False  # stand-ins asked to be repainted, no paint came yet

    def __bool__(self) -> bool:
        return bool(self._pending) or self.repaint_requested

    def schedule(self) -> None:
        if not self.timer.isActive():
            self.timer.start()

    def add(self, view: QAbstractItemView, rect: CardRect) -> None:
        known = self._pending.get(id(view))
        if known is None:
            self._pending[id(view)] = (view, _scroll_offset(view), [rect])
        else:
            known[2].append(rect)
        self.schedule()

    def _next_turn(self) -> None:
        self._on_turn()
        pending, self._pending = self._pending, {}
        for view, offset, rects in pending.values():
            if not shiboken6.isValid(view):
                continue
            viewport = view.viewport()
            if _scroll_offset(view) == offset:
                for x, y, width, height in rects:
                    viewport.update(x, y, width, height)
            else:
                viewport.update()
            self.repaint_requested = True


def _scroll_offset(view: QAbstractItemView) -> tuple[int, int]:
    return view.horizontalScrollBar().value(), view.verticalScrollBar().value()


class CardDelegate(QStyledItemDelegate):
    """Paints one library entry as a card.

    ``allow_nsfw`` False (the setting's default) blurs the previews of models Civitai marks
    NSFW and labels them. ``snapshot``: returns the snapshot the model shows, so the
    duplicate and update badges are read in Python rather than with two more model calls
    per card; without it they come from ``Role.IsDuplicate`` and ``Role.Update``.
    ``entry``: returns the :class:`LibraryEntry` of a (view) index in plain Python, so a
    paint is one call into Python rather than three (``data()`` through the proxy reaches
    the model's Python ``rowCount`` and ``data``, each waiting for the GIL while workers
    run); without it the entry comes from ``Role.Entry``.

    ``render_budget_s``: how long one event-loop turn may spend rendering new cards in a
    view (``None``: no limit); the rest are painted as stand-ins and redrawn on the next turn.
    """

    def __init__(
        self, thumbnails: ThumbnailLoader, parent: QObject | None = None, *,
        allow_nsfw: bool = False, snapshot: Callable[[], LibrarySnapshot] | None = None,
        entry: Callable[[AnyIndex], LibraryEntry | None] | None = None,
        render_budget_s: float | None = RENDER_BUDGET_S,
    ) -> None:  # fmt: skip
        super().__init__(parent)
        self.thumbnails = thumbnails
        self.allow_nsfw = allow_nsfw
        self.cards = CardCache()
        self.parts = CardParts()
        self.render_budget_s = render_budget_s
        self._snapshot = snapshot
        self._entry = entry
        self._turn_started: float | None = None  # first render of this event-loop turn
        # Per-card values that would otherwise cost Qt calls on every paint (each may wait
        # for the GIL): thumbnail sizes and keys.
        self._thumb_sizes: dict[float, QSize] = {}
        self._thumb_keys: dict[tuple[str, float, bool], str] = {}
        self._deferred = _DeferredCards(self, self._end_turn)
        self._stand_in_colors: dict[int, QColor] = {}  # palette cache key -> its Base colour
        # What rendering a card reads, made once (Qt value objects cost a GIL hand-off when
        # freed): geometry per card size, colours per palette, badge colours per type.
        self._geometries: dict[tuple[int, int], CardGeometry] = {}
        self._palette_colors: dict[int, CardColors] = {}
        self._type_colors: dict[str, QColor] = {}
        self.scale = 1.0  # the card-size slider: cards are rendered at this many times
        self._scaled = self.card_size()
        self._scaled_width, self._scaled_height = self._scaled.width(), self._scaled.height()

    def set_scale(self, scale: float) -> None:
        """Cards at ``scale`` times their natural size (rendered sharp at that size)."""
        self.scale = scale
        natural = self.card_size()
        self._scaled = QSize(round(natural.width() * scale), round(natural.height() * scale))
        self._scaled_width, self._scaled_height = self._scaled.width(), self._scaled.height()
        self.cards.clear()

    def scaled_card_size(self) -> QSize:
        return QSize(self._scaled)

    @property
    def has_deferred_cards(self) -> bool:
        """Whether some cards on screen are stand-ins waiting for the next turn."""
        return bool(self._deferred)

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

    @staticmethod
    def _shows_focus(option: QStyleOptionViewItem) -> bool:
        """The focus ring: on the current card while its view has the keyboard focus."""
        view = option.widget
        return bool(option.state & _FOCUSED) and view is not None and view.hasFocus()

    def sizeHint(self, option: QStyleOptionViewItem, index: AnyIndex) -> QSize:
        return QSize(self._scaled)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: AnyIndex) -> None:
        self._deferred.repaint_requested = False
        entry = self._entry(index) if self._entry is not None else index.data(Role.Entry)
        if not isinstance(entry, LibraryEntry):
            return
        duplicate, has_update = self._badges(index, entry)
        device = painter.device()
        # Rendered at the natural size with more (or fewer) pixels, drawn at the scaled one.
        ratio = (device.devicePixelRatioF() if device is not None else 1.0) * self.scale
        blurred = entry.nsfw and not self.allow_nsfw
        thumb, preview_state = self._preview(entry.preview, ratio, blurred)
        state = option.state
        rect = option.rect
        focused = bool(state & _FOCUSED) and self._shows_focus(option)
        # A cell wider than the card (the grid spreads cards over its width): centred.
        # Plain ints, no QRect to make and free per paint (see _DeferredCards).
        x = rect.x() + (rect.width() - self._scaled_width) // 2
        y = rect.y()
        width, height = (CARD_WIDTH + 2 * MARGIN,
                         THUMB_HEIGHT + TEXT_HEIGHT + 2 * MARGIN)  # rendered at this size
        palette = option.palette  # each read copies it (a wrapper to free): read once
        key = (
            entry, duplicate, has_update, blurred, preview_state,
            bool(state & _SELECTED), bool(state & _HOVERED), focused,
            width, height, ratio, palette.cacheKey(),
        )  # fmt: skip
        card = self.cards.get(key)
        if card is None:
            view = option.widget
            if isinstance(view, QAbstractItemView) and self._over_budget():
                card_rect = (x, y, self._scaled_width, self._scaled_height)
                self._paint_stand_in(painter, card_rect, palette, entry)
                self._deferred.add(view, card_rect)
                return
            started = time.perf_counter()
            card = self._render(
                painter, option, palette, entry, duplicate, has_update, thumb, preview_state,
                ratio, width, height, focused,
            )  # fmt: skip
            # Rendered with scale times the pixels: drawn at the scaled logical size.
            card.setDevicePixelRatio(ratio / self.scale)
            self.cards.put(key, card)
            budgeted = isinstance(view, QAbstractItemView) and self.render_budget_s is not None
            if budgeted and self._turn_started is None:
                self._turn_started = started
                self._deferred.schedule()  # the next turn starts a fresh budget
        painter.drawPixmap(x, y, card)  # its logical size is the card's: a plain blit

    def _over_budget(self) -> bool:
        if self.render_budget_s is None or self._turn_started is None:
            return False
        return time.perf_counter() - self._turn_started >= self.render_budget_s

    def _end_turn(self) -> None:
        self._turn_started = None

    def _paint_stand_in(
        self, painter: QPainter, rect: CardRect, palette: QPalette, entry: LibraryEntry
    ) -> None:
        """A card not rendered yet: its background and its name, two calls on plain ints
        (no Qt value object to make and free, see :class:`_DeferredCards`)."""
        x, y, width, height = rect
        key = palette.cacheKey()
        base = self._stand_in_colors.get(key)
        if base is None:
            base = self._stand_in_colors[key] = palette.color(QPalette.ColorRole.Base)
        painter.fillRect(x + MARGIN, y + MARGIN, width - 2 * MARGIN, height - 2 * MARGIN, base)
        painter.drawText(
            x + MARGIN + 8, y + MARGIN + THUMB_HEIGHT + 4, width - 2 * MARGIN - 16,
            height - 2 * MARGIN - THUMB_HEIGHT - 4, _TOP_LEFT, display_name(entry),
        )  # fmt: skip

    def _badges(self, index: AnyIndex, entry: LibraryEntry) -> tuple[bool, bool]:
        """(is a duplicate, has an update) for the card's corner badges."""
        if self._snapshot is None:
            return bool(index.data(Role.IsDuplicate)), index.data(Role.Update) is not None
        snapshot = self._snapshot()
        duplicate = entry.sha256 is not None and entry.sha256 in snapshot.duplicate_hashes
        return duplicate, entry.model_id is not None and entry.model_id in snapshot.updates

    def _preview(
        self, source: str | None, ratio: float, blurred: bool
    ) -> tuple[QPixmap | None, Hashable]:
        """The thumbnail (None until decoded) and what the card's preview area shows."""
        if not source:
            return None, _NO_PREVIEW
        key = self._thumbnail_key(source, ratio, blurred)
        pixmap = self.thumbnails.cached(key)  # a dict look-up: no Qt call for a shown card
        if pixmap is None:
            pixmap = self.thumbnails.pixmap(source, self._thumb_size(ratio), blurred=blurred)
        if pixmap is not None:
            return pixmap, pixmap.cacheKey()  # a re-decoded preview is a new pixmap
        if self.thumbnails.error(key):
            return None, _FAILED
        return None, _LOADING

    def _thumb_size(self, ratio: float) -> QSize:
        size = self._thumb_sizes.get(ratio)
        if size is None:
            size = self._thumb_sizes[ratio] = self.thumb_size(ratio)
        return size

    def _thumbnail_key(self, source: str, ratio: float, blurred: bool) -> str:
        memo = (source, ratio, blurred)
        key = self._thumb_keys.get(memo)
        if key is None:
            if len(self._thumb_keys) >= _THUMB_KEYS_KEPT:
                self._thumb_keys.clear()
            key = self._thumb_keys[memo] = thumbnail_key(
                source, self._thumb_size(ratio), blurred=blurred
            )
        return key

    def _render(
        self, view_painter: QPainter, option: QStyleOptionViewItem, palette: QPalette,
        entry: LibraryEntry, duplicate: bool, has_update: bool, thumbnail: QPixmap | None,
        preview_state: Hashable, ratio: float, width: int, height: int, focused: bool = False,
    ) -> QPixmap:  # fmt: skip
        """The card composed into a pixmap of ``width`` x ``height``.

        Rectangles, paths and colours come from :class:`CardGeometry` and
        :class:`CardColors`, made once: each Qt value object made here and freed gives up
        the GIL (see :class:`_DeferredCards`), a card made them by the dozen.
        """
        geometry = self._geometry(width, height)
        colors = self._colors(palette)
        pixmap = _transparent_pixmap(width, height, ratio)
        base_font = view_painter.font()  # the view's (style sheet) font
        fonts = self.parts.fonts(base_font)
        painter = QPainter(pixmap)
        try:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            if entry.offline:  # greyed: kept in the library, its drive is away
                painter.setOpacity(OFFLINE_OPACITY)
            painter.fillPath(geometry.outline, colors.base)
            painter.setClipPath(geometry.outline)
            painter.drawPixmap(
                geometry.thumb_rect,
                self._preview_art(entry, thumbnail, preview_state, base_font, ratio, geometry),
            )
            painter.setClipping(False)
            if entry.preview and entry.nsfw and not self.allow_nsfw:
                painter.drawPixmap(
                    geometry.thumb_left, geometry.thumb_top,
                    self.parts.nsfw_label(geometry.thumb_size, base_font, ratio),
                )  # fmt: skip
            self._paint_badges(painter, geometry, entry.type or UNKNOWN_TYPE, duplicate,
                               has_update, is_unverified(entry), fonts, ratio,
                               offline=entry.offline, removed=entry.removed)  # fmt: skip
            self._paint_text(painter, geometry, entry, colors, fonts)
            self._paint_outline(painter, option.state, geometry, colors,
                                focused=focused)
        finally:
            painter.end()
        return pixmap

    def _geometry(self, width: int, height: int) -> CardGeometry:
        geometry = self._geometries.get((width, height))
        if geometry is None:
            geometry = self._geometries[width, height] = CardGeometry.for_size(width, height)
        return geometry

    def _colors(self, palette: QPalette) -> CardColors:
        key = palette.cacheKey()
        colors = self._palette_colors.get(key)
        if colors is None:
            colors = self._palette_colors[key] = CardColors.from_palette(palette)
        return colors

    def _type_color(self, model_type: str) -> QColor:
        color = self._type_colors.get(model_type)
        if color is None:
            color = self._type_colors[model_type] = type_color(model_type)
        return color

    def _preview_art(
        self, entry: LibraryEntry, thumbnail: QPixmap | None, preview_state: Hashable,
        base_font: QFont, ratio: float, geometry: CardGeometry,
    ) -> QPixmap:  # fmt: skip
        """The decoded thumbnail, else the placeholder art or the type's loading art."""
        if thumbnail is not None:
            return thumbnail
        if preview_state == _LOADING:
            size = geometry.preview_size
            return self.parts.loading(entry.type or UNKNOWN_TYPE, size, base_font, ratio)
        return placeholder_pixmap(geometry.preview_size)

    def _paint_badges(
        self, painter: QPainter, geometry: CardGeometry, model_type: str, duplicate: bool,
        has_update: bool, unverified: bool, fonts: CardFonts, ratio: float, *,
        offline: bool = False, removed: bool = False,
    ) -> None:  # fmt: skip
        top = geometry.thumb_top + 6
        label = self.parts.badge(type_label(model_type), self._type_color(model_type), fonts,
                                 ratio)  # fmt: skip
        painter.drawPixmap(geometry.thumb_left + 6, top, label)
        states = [("Removed", removed), ("Offline", offline), ("Update", has_update),
                  ("Duplicate", duplicate), ("Unverified", unverified)]
        for text, shown in states:
            if shown:
                opacity = painter.opacity()
                painter.setOpacity(1.0)  # a state badge stays legible on a greyed card
                badge = self.parts.badge(text, badge_color(text.lower()), fonts, ratio)
                width = badge.width() / ratio
                painter.drawPixmap(QPointF(geometry.thumb.right() - 6 - width, top), badge)
                painter.setOpacity(opacity)
                top += fonts.badge_metrics.height() + 6

    @staticmethod
    def _paint_text(
        painter: QPainter, geometry: CardGeometry, entry: LibraryEntry, colors: CardColors,
        fonts: CardFonts,
    ) -> None:  # fmt: skip
        text_rect, width = geometry.text, geometry.text_width
        painter.setFont(fonts.name)
        painter.setPen(colors.text)
        elide = Qt.TextElideMode.ElideRight
        name = fonts.name_metrics.elidedText(display_name(entry), elide, width)
        painter.drawText(text_rect, _TOP_LEFT, name)
        painter.setFont(fonts.detail)
        painter.setPen(colors.detail)
        detail = fonts.detail_metrics.elidedText(detail_line(entry), elide, width)
        painter.drawText(text_rect, _BOTTOM_LEFT, detail)

    @staticmethod
    def _paint_outline(
        painter: QPainter, state: QStyle.StateFlag, geometry: CardGeometry, colors: CardColors,
        *, focused: bool = False,
    ) -> None:
        """The selection (thick) or hover (thin, translucent) outline; the keyboard's
        current card (the grid has the focus) gets a dashed ring inside it."""
        if focused:
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.setPen(colors.focus_outline)
            # Around the card, in its margin: clear of the selection outline and the text.
            painter.drawRoundedRect(geometry.outline_rect.adjusted(-4, -4, 4, 4),
                                    RADIUS + 3, RADIUS + 3)
        if state & _SELECTED:
            painter.setPen(colors.selected_outline)
        elif state & _HOVERED:
            painter.setPen(colors.hover_outline)
        else:
            return
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRoundedRect(geometry.outline_rect, RADIUS, RADIUS)


@dataclass(frozen=True)
class CardGeometry:
    """Where a card's parts go, for one card size (made once per size)."""

    thumb: QRectF
    thumb_rect: QRect
    thumb_left: int
    thumb_top: int
    thumb_size: QSize
    preview_size: QSize  # the art drawn into the thumbnail area, in logical pixels
    outline: QPainterPath
    outline_rect: QRectF
    text: QRectF
    text_width: int

    @classmethod
    def for_size(cls, width: int, height: int) -> CardGeometry:
        card = QRectF(0, 0, width, height).adjusted(MARGIN, MARGIN, -MARGIN, -MARGIN)
        thumb = QRectF(card.left(), card.top(), card.width(), THUMB_HEIGHT)
        outline = QPainterPath()
        outline.addRoundedRect(card, RADIUS, RADIUS)
        text = QRectF(card.left() + 8, thumb.bottom() + 4, card.width() - 16, TEXT_HEIGHT - 6)
        thumb_rect = thumb.toRect()
        return cls(
            thumb, thumb_rect, thumb_rect.left(), thumb_rect.top(), thumb_rect.size(),
            QSize(CARD_WIDTH, THUMB_HEIGHT), outline, card.adjusted(1, 1, -1, -1), text,
            int(text.width()),
        )  # fmt: skip


@dataclass(frozen=True)
class CardColors:
    """The palette colours and outline pens a card uses, for one palette (made once)."""

    base: QColor
    text: QColor
    detail: QColor
    selected_outline: QPen
    hover_outline: QPen
    focus_outline: QPen

    @classmethod
    def from_palette(cls, palette: QPalette) -> CardColors:
        highlight = palette.color(QPalette.ColorRole.Highlight)
        hover = QColor(highlight)
        hover.setAlpha(140)
        return cls(
            palette.color(QPalette.ColorRole.Base), palette.color(QPalette.ColorRole.Text),
            palette.color(QPalette.ColorRole.PlaceholderText), QPen(highlight, 3.0),
            QPen(hover, 1.5),
            QPen(palette.color(QPalette.ColorRole.Text), 1.0, Qt.PenStyle.DashLine),
        )  # fmt: skip


def detail_line(entry: LibraryEntry) -> str:
    """The card's second line: version, base model and size (file name when unidentified)."""
    if not entry.identified:
        return f"{entry.file_name} · {human_size(entry.size)}"
    parts = [entry.version_name, entry.base_model, human_size(entry.size)]
    return " · ".join(p for p in parts if p)


def is_unverified(entry: LibraryEntry) -> bool:
    """A file tied to a Civitai version whose bytes were never matched against a SHA256
    Civitai publishes (it publishes none for it). An unknown file says so already."""
    return entry.identified and not entry.verified
