"""The app's own artwork as Qt objects: window icon, tray icon, placeholders, stylesheet.

Files come from :mod:`civdesk.resources`; ``scripts/make_icons.py`` draws them. Call these
after the ``QGuiApplication`` exists (Qt cannot build an icon before).
"""

from __future__ import annotations

import logging
import math
import sys
from typing import Literal

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import (
    QColor,
    QGuiApplication,
    QIcon,
    QImage,
    QPainter,
    QPainterPath,
    QPen,
    QPixmap,
)

from civdesk.resources import resource_path

log = logging.getLogger(__name__)

APP_ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512, 1024)
TRAY_ICON_SIZES = (16, 22, 32, 64)

Placeholder = Literal["no-preview", "nsfw-hidden"]
NO_PREVIEW: Placeholder = "no-preview"
NSFW_HIDDEN: Placeholder = "nsfw-hidden"


def app_icon() -> QIcon:
    """The civdesk mark at every drawn size, so Qt never scales a large one down blurrily."""
    icon = QIcon()
    for size in APP_ICON_SIZES:
        _add_file(icon, "icons", f"civdesk-{size}.png")
    return icon


def tray_icon(*, dark_panel: bool | None = None) -> QIcon:
    """The one-colour tray glyph.

    On macOS the white glyph is marked as a mask, so the menu bar recolours it for light and
    dark mode. Elsewhere the panel's colour cannot be asked; ``dark_panel=None`` follows the
    system colour scheme (a light scheme usually means a light taskbar on Windows and KDE).
    """
    if sys.platform == "darwin":
        icon = _tray_set("tray")
        icon.setIsMask(True)
        return icon
    if dark_panel is None:
        dark_panel = _system_scheme() != Qt.ColorScheme.Light
    return _tray_set("tray" if dark_panel else "tray-dark")


def placeholder_image(kind: Placeholder = NO_PREVIEW) -> QImage:
    """The card image shown when a model has no preview, or when its preview is NSFW and
    hidden. A ``QImage`` (not a pixmap) so worker threads may scale it too."""
    path = resource_path("images", f"{kind}.png")
    image = QImage(str(path))
    if image.isNull():
        log.warning("Placeholder image %s could not be read", path)
    return image


def stylesheet() -> str:
    """civdesk's stylesheet (cards and badges); an empty one if the file is unreadable, since
    the app stays usable with the platform style alone."""
    path = resource_path("style", "civdesk.qss")
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        log.warning("Stylesheet %s could not be read: %s", path, exc)
        return ""


#: The pages of the window's navigation, each with a glyph drawn below.
NavGlyph = Literal["civitai", "models", "downloads", "settings"]
NAV_ICON_SIZES = (20, 24, 32, 48)


def nav_icon(glyph: NavGlyph, color: QColor) -> QIcon:
    """A line glyph for a navigation entry, in ``color`` (the palette's text colour, so it
    reads in both themes). Drawn, not loaded: crisp at every size and in any palette."""
    icon = QIcon()
    for size in NAV_ICON_SIZES:
        icon.addPixmap(_glyph_pixmap(glyph, size, color))
    return icon


def _glyph_pixmap(glyph: NavGlyph, size: int, ink: QColor) -> QPixmap:
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.scale(size / 24, size / 24)  # glyphs are drawn on a 24-unit square
    pen = QPen(ink, 1.8)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    painter.setPen(pen)
    _GLYPHS[glyph](painter)
    painter.end()
    return pixmap


def _draw_globe(p: QPainter) -> None:
    p.drawEllipse(QPointF(12, 12), 9, 9)
    p.drawEllipse(QPointF(12, 12), 4, 9)
    p.drawLine(QPointF(3, 12), QPointF(21, 12))


def _draw_grid(p: QPainter) -> None:
    for x in (3.5, 13.5):
        for y in (3.5, 13.5):
            p.drawRoundedRect(QRectF(x, y, 7, 7), 1.5, 1.5)


def _draw_download(p: QPainter) -> None:
    p.drawLine(QPointF(12, 3), QPointF(12, 15))
    arrow = QPainterPath(QPointF(7, 10.5))
    arrow.lineTo(12, 15.5)
    arrow.lineTo(17, 10.5)
    p.drawPath(arrow)
    tray = QPainterPath(QPointF(4, 15))
    tray.lineTo(4, 20)
    tray.lineTo(20, 20)
    tray.lineTo(20, 15)
    p.drawPath(tray)


def _draw_gear(p: QPainter) -> None:
    p.drawEllipse(QPointF(12, 12), 3, 3)
    teeth = 8
    outer, inner = 9.5, 7.0
    path = QPainterPath()
    for i in range(teeth * 2):
        # Each tooth: two points on the outer radius, then two on the inner one.
        base = math.pi * 2 * i / (teeth * 2)
        radius = outer if i % 2 == 0 else inner
        for offset in (-0.16, 0.16):
            point = QPointF(12 + radius * math.cos(base + offset),
                            12 + radius * math.sin(base + offset))
            if path.elementCount() == 0:
                path.moveTo(point)
            else:
                path.lineTo(point)
    path.closeSubpath()
    p.drawPath(path)


_GLYPHS = {"civitai": _draw_globe, "models": _draw_grid, "downloads": _draw_download,
           "settings": _draw_gear}


def _tray_set(prefix: str) -> QIcon:
    icon = QIcon()
    for size in TRAY_ICON_SIZES:
        _add_file(icon, "icons", f"{prefix}-{size}.png")
    return icon


def _add_file(icon: QIcon, *parts: str) -> None:
    path = resource_path(*parts)
    if path.is_file():
        icon.addFile(str(path))
    else:
        log.warning("Icon file %s is missing", path)


def _system_scheme() -> Qt.ColorScheme:
    app = QGuiApplication.instance()
    if not isinstance(app, QGuiApplication):
        return Qt.ColorScheme.Unknown
    return app.styleHints().colorScheme()
