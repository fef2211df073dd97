"""Draw civdesk's icons and placeholder images into ``resources/``.

Everything is drawn with QPainter on an offscreen platform, so the script runs on a build
server without a display and the artwork stays reviewable as code. The ICO and ICNS
containers are written here too (PNG entries only, which every supported Windows and
macOS version reads), so no image library is needed.

    .venv/bin/python scripts/make_icons.py            # writes into resources/
    .venv/bin/python scripts/make_icons.py --out DIR  # somewhere else (to compare)

The mark: a rounded tile in a deep indigo → teal gradient carrying a stack of three
isometric "model cards", the top one cut as a faceted gem. Below 32 px the facets and the
third card are dropped, because they turn into noise at that size.
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

# Must be set before Qt is imported: the script never needs a display.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QPointF, QRectF, Qt
from PySide6.QtGui import (
    QBrush,
    QColor,
    QGuiApplication,
    QImage,
    QLinearGradient,
    QPainter,
    QPainterPath,
    QPen,
    QPolygonF,
    QRadialGradient,
)

REPO = Path(__file__).resolve().parents[1]

APP_ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512, 1024)
TRAY_ICON_SIZES = (16, 22, 32, 64)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
# ICNS types holding PNG data, with the pixel size each one must carry.
ICNS_TYPES = (
    (b"ic11", 32),  # 16@2x
    (b"ic12", 64),  # 32@2x
    (b"ic07", 128),
    (b"ic13", 256),  # 128@2x
    (b"ic08", 256),
    (b"ic14", 512),  # 256@2x
    (b"ic09", 512),
    (b"ic10", 1024),  # 512@2x
)

INDIGO = QColor("#2b1f7a")
VIOLET = QColor("#4b3bbf")
TEAL = QColor("#0fa3a3")
CARD_WHITE = QColor("#ffffff")
TRAY_DARK = QColor("#1d1d22")

# The artwork is designed on a 1024-unit canvas and scaled to each size.
CANVAS = 1024.0


# --------------------------------------------------------------------------------------
# Drawing helpers
# --------------------------------------------------------------------------------------


def new_image(width: int, height: int | None = None) -> QImage:
    image = QImage(width, height or width, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    return image


def painter_for(image: QImage, design_width: float = CANVAS) -> QPainter:
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    scale = image.width() / design_width
    painter.scale(scale, scale)
    return painter


def rhombus(cx: float, cy: float, half_w: float, half_h: float) -> QPolygonF:
    """An isometric card seen from above: a diamond centred on (cx, cy)."""
    return QPolygonF(
        [
            QPointF(cx, cy - half_h),
            QPointF(cx + half_w, cy),
            QPointF(cx, cy + half_h),
            QPointF(cx - half_w, cy),
        ]
    )


def rounded_polygon(points: QPolygonF, radius: float) -> QPainterPath:
    """The polygon with its corners rounded (quadratic curves), like a printed card."""
    path = QPainterPath()
    count = points.size()
    for index in range(count):
        prev_pt = points.at((index - 1) % count)
        corner = points.at(index)
        next_pt = points.at((index + 1) % count)
        start = _towards(corner, prev_pt, radius)
        end = _towards(corner, next_pt, radius)
        if index == 0:
            path.moveTo(start)
        else:
            path.lineTo(start)
        path.quadTo(corner, end)
    path.closeSubpath()
    return path


def _towards(origin: QPointF, target: QPointF, distance: float) -> QPointF:
    delta = target - origin
    length = (delta.x() ** 2 + delta.y() ** 2) ** 0.5
    if length == 0:
        return QPointF(origin)
    return origin + delta * (distance / length)


def chevron(cx: float, cy: float, half_w: float, half_h: float, thickness: float) -> QPolygonF:
    """The visible lower edge of a card lying under another: a thick V."""
    return QPolygonF(
        [
            QPointF(cx - half_w, cy),
            QPointF(cx, cy + half_h),
            QPointF(cx + half_w, cy),
            QPointF(cx + half_w, cy + thickness),
            QPointF(cx, cy + half_h + thickness),
            QPointF(cx - half_w, cy + thickness),
        ]
    )


# --------------------------------------------------------------------------------------
# The app icon
# --------------------------------------------------------------------------------------


def draw_tile(painter: QPainter, detailed: bool) -> None:
    # macOS Big Sur grid: an 824-unit tile centred on the 1024 canvas leaves room for the
    # shadow; on small sizes the tile fills more of the canvas so it does not look tiny.
    margin = 100.0 if detailed else 36.0
    rect = QRectF(margin, margin, CANVAS - 2 * margin, CANVAS - 2 * margin)
    radius = rect.width() * 0.225
    tile = QPainterPath()
    tile.addRoundedRect(rect, radius, radius)

    if detailed:
        # Soft drop shadow: a few translucent, growing copies below the tile.
        painter.setPen(Qt.PenStyle.NoPen)
        for step in range(12):
            grow = 4.0 + step * 3.0
            shadow = QPainterPath()
            shadow.addRoundedRect(
                rect.adjusted(-grow * 0.5, grow * 0.2, grow * 0.5, grow * 1.2),
                radius + grow,
                radius + grow,
            )
            painter.fillPath(shadow, QColor(10, 6, 40, 9))

    gradient = QLinearGradient(rect.topLeft(), rect.bottomRight())
    gradient.setColorAt(0.0, VIOLET)
    gradient.setColorAt(0.45, INDIGO)
    gradient.setColorAt(1.0, TEAL)
    painter.fillPath(tile, QBrush(gradient))

    # A glow behind the glyph lifts it off the tile.
    glow = QRadialGradient(QPointF(CANVAS / 2, CANVAS * 0.44), rect.width() * 0.5)
    glow.setColorAt(0.0, QColor(255, 255, 255, 46))
    glow.setColorAt(1.0, QColor(255, 255, 255, 0))
    painter.fillPath(tile, QBrush(glow))

    if detailed:
        # Thin light rim along the top edge, darker along the bottom: reads as a bevel.
        rim = QLinearGradient(rect.topLeft(), rect.bottomLeft())
        rim.setColorAt(0.0, QColor(255, 255, 255, 90))
        rim.setColorAt(0.5, QColor(255, 255, 255, 0))
        rim.setColorAt(1.0, QColor(0, 0, 0, 60))
        painter.setPen(QPen(QBrush(rim), 6.0))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        inset = QPainterPath()
        inset.addRoundedRect(rect.adjusted(3, 3, -3, -3), radius - 3, radius - 3)
        painter.drawPath(inset)


def draw_card_stack(painter: QPainter, *, detailed: bool, color: QColor | None = None) -> None:
    """Three cards stacked isometrically; the top one is a cut gem.

    ``color`` draws the whole stack in one colour (the tray icon); otherwise it is drawn
    in white with depth-graded opacity and a faceted top card.
    """
    cx = CANVAS / 2
    half_w = 300.0 if detailed else 330.0
    half_h = half_w * 0.58
    top_cy = 400.0 if detailed else 395.0
    gap = 118.0 if detailed else 150.0
    thickness = 54.0 if detailed else 78.0
    corner = 34.0 if detailed else 30.0
    layers = 2 if detailed else 1

    painter.setPen(Qt.PenStyle.NoPen)
    # Lower cards first (back to front), so the top card covers them.
    for depth in range(layers, 0, -1):
        lower_cy = top_cy + gap * depth
        edge = rounded_polygon(chevron(cx, lower_cy, half_w, half_h, thickness), corner * 0.6)
        if color is not None:
            fill = QColor(color)
        else:
            fill = QColor(CARD_WHITE)
            fill.setAlpha(150 if depth == layers and layers > 1 else 205)
        painter.fillPath(edge, fill)

    top = rounded_polygon(rhombus(cx, top_cy, half_w, half_h), corner)
    if color is not None:
        painter.fillPath(top, color)
        return
    painter.fillPath(top, CARD_WHITE)
    if detailed:
        draw_gem_facets(painter, cx, top_cy, half_w, half_h, top)


def draw_gem_facets(
    painter: QPainter, cx: float, cy: float, half_w: float, half_h: float, clip: QPainterPath
) -> None:
    """Cut the top card like a gem: a table in the middle, tinted crown facets around."""
    painter.save()
    painter.setClipPath(clip)
    table = rhombus(cx, cy, half_w * 0.46, half_h * 0.46)
    outer = rhombus(cx, cy, half_w * 1.2, half_h * 1.2)
    tints = (
        QColor(213, 206, 255),  # top-right facet, lit from above: pale violet
        QColor(196, 236, 238),  # bottom-right: pale teal
        QColor(176, 214, 226),  # bottom-left, in shade
        QColor(236, 232, 255),  # top-left, brightest
    )
    for index, tint in enumerate(tints):
        facet = QPolygonF(
            [
                outer.at(index),
                outer.at((index + 1) % 4),
                table.at((index + 1) % 4),
                table.at(index),
            ]
        )
        painter.setBrush(tint)
        painter.drawPolygon(facet)
    painter.setBrush(CARD_WHITE)
    painter.drawPolygon(table)
    # Facet edges, barely there: enough to read as a cut stone at 128 px and up.
    painter.setPen(QPen(QColor(75, 59, 191, 70), 5.0))
    for index in range(4):
        painter.drawLine(table.at(index), outer.at(index))
    painter.setBrush(Qt.BrushStyle.NoBrush)
    painter.drawPolygon(table)
    painter.restore()


def render_app_icon(size: int) -> QImage:
    image = new_image(size)
    painter = painter_for(image)
    detailed = size >= 32
    draw_tile(painter, detailed)
    draw_card_stack(painter, detailed=detailed)
    painter.end()
    return image


def render_tray_icon(size: int, color: QColor) -> QImage:
    """A one-colour silhouette of the card stack. The white one reads on dark panels and
    serves as the macOS template (the ui layer marks it as a mask, so the system recolours
    it); the near-black one is for light panels."""
    image = new_image(size)
    painter = painter_for(image)
    # No tile: tray icons are glyphs. Scale the stack up so it fills the small square.
    painter.translate(CANVAS / 2, CANVAS / 2)
    painter.scale(1.3, 1.3)
    painter.translate(-CANVAS / 2, -CANVAS * 0.56)
    draw_card_stack(painter, detailed=size >= 32, color=color)
    painter.end()
    return image


# --------------------------------------------------------------------------------------
# Placeholders for cards without a preview
# --------------------------------------------------------------------------------------

# Civitai previews are mostly portrait (2:3); the placeholders match so the grid stays even.
PLACEHOLDER_SIZE = (512, 768)


def draw_placeholder_base(painter: QPainter, width: float, height: float) -> None:
    # Neutral, slightly cool greys that sit well on both a dark and a light window.
    gradient = QLinearGradient(0, 0, 0, height)
    gradient.setColorAt(0.0, QColor("#3a3f4b"))
    gradient.setColorAt(1.0, QColor("#262a33"))
    painter.fillRect(QRectF(0, 0, width, height), QBrush(gradient))


def draw_no_preview(painter: QPainter, width: float, height: float) -> None:
    """A picture frame with mountains and a sun, in a muted tone: "no image here"."""
    draw_placeholder_base(painter, width, height)
    glyph = QColor(255, 255, 255, 70)
    frame = QRectF(width * 0.27, height * 0.39, width * 0.46, width * 0.36)
    painter.setPen(QPen(glyph, width * 0.022, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap,
                        Qt.PenJoinStyle.RoundJoin))
    painter.setBrush(Qt.BrushStyle.NoBrush)
    painter.drawRoundedRect(frame, width * 0.03, width * 0.03)

    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(glyph)
    sun_r = frame.width() * 0.09
    painter.drawEllipse(QPointF(frame.right() - frame.width() * 0.25,
                                frame.top() + frame.height() * 0.3), sun_r, sun_r)
    mountains = QPolygonF(
        [
            QPointF(frame.left() + frame.width() * 0.1, frame.bottom() - frame.height() * 0.12),
            QPointF(frame.left() + frame.width() * 0.38, frame.top() + frame.height() * 0.42),
            QPointF(frame.left() + frame.width() * 0.58, frame.bottom() - frame.height() * 0.32),
            QPointF(frame.left() + frame.width() * 0.7, frame.top() + frame.height() * 0.6),
            QPointF(frame.right() - frame.width() * 0.1, frame.bottom() - frame.height() * 0.12),
        ]
    )
    painter.drawPolygon(mountains)


def draw_nsfw_hidden(painter: QPainter, width: float, height: float) -> None:
    """A closed eye with a slash over a soft blur of colour: "hidden on purpose"."""
    draw_placeholder_base(painter, width, height)
    # Blurred colour blobs suggest an image behind frosted glass.
    for cx, cy, radius, color in (
        (0.3, 0.35, 0.55, QColor(110, 90, 200, 70)),
        (0.75, 0.65, 0.6, QColor(20, 160, 160, 60)),
        (0.45, 0.85, 0.45, QColor(200, 110, 150, 45)),
    ):
        blob = QRadialGradient(QPointF(width * cx, height * cy), width * radius)
        blob.setColorAt(0.0, color)
        blob.setColorAt(1.0, QColor(color.red(), color.green(), color.blue(), 0))
        painter.fillRect(QRectF(0, 0, width, height), QBrush(blob))

    glyph = QColor(255, 255, 255, 150)
    pen = QPen(glyph, width * 0.026, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap,
               Qt.PenJoinStyle.RoundJoin)
    painter.setPen(pen)
    painter.setBrush(Qt.BrushStyle.NoBrush)
    cx, cy = width / 2, height / 2
    half = width * 0.2
    eye = QPainterPath()
    eye.moveTo(cx - half, cy)
    eye.quadTo(cx, cy - half * 0.95, cx + half, cy)
    eye.quadTo(cx, cy + half * 0.95, cx - half, cy)
    painter.drawPath(eye)
    painter.drawEllipse(QPointF(cx, cy), half * 0.28, half * 0.28)
    painter.drawLine(QPointF(cx - half * 0.85, cy + half * 0.85),
                     QPointF(cx + half * 0.85, cy - half * 0.85))


def render_placeholder(draw: Callable[[QPainter, float, float], None]) -> QImage:
    width, height = PLACEHOLDER_SIZE
    image = new_image(width, height)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    draw(painter, float(width), float(height))
    painter.end()
    return image


# --------------------------------------------------------------------------------------
# Containers
# --------------------------------------------------------------------------------------


def png_bytes(image: QImage) -> bytes:
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buffer, "PNG"):
        raise RuntimeError("Qt could not encode a PNG (is the PNG image plugin missing?)")
    buffer.close()
    return bytes(data.data())


def ico_bytes(entries: Iterable[tuple[int, bytes]]) -> bytes:
    """A Windows ICO with PNG-compressed entries (read by Windows Vista and later).

    ICONDIR (reserved, type=1, count) then one 16-byte ICONDIRENTRY per image; a width or
    height of 256 is stored as 0.
    """
    entries = list(entries)
    header = struct.pack("<HHH", 0, 1, len(entries))
    offset = len(header) + 16 * len(entries)
    directory = b""
    payload = b""
    for size, data in entries:
        stored = 0 if size >= 256 else size
        directory += struct.pack(
            "<BBBBHHII", stored, stored, 0, 0, 1, 32, len(data), offset + len(payload)
        )
        payload += data
    return header + directory + payload


def icns_bytes(entries: Iterable[tuple[bytes, bytes]]) -> bytes:
    """An Apple ICNS: 'icns' + total length, then (type, length incl. 8-byte header, data)."""
    body = b"".join(kind + struct.pack(">I", len(data) + 8) + data for kind, data in entries)
    return b"icns" + struct.pack(">I", len(body) + 8) + body


# --------------------------------------------------------------------------------------


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    print(f"  {path.relative_to(path.parents[2])}  {len(data):>8,} bytes")


def build(out: Path) -> None:
    icons = out / "icons"
    pngs = {size: png_bytes(render_app_icon(size)) for size in APP_ICON_SIZES}
    for size, data in pngs.items():
        write(icons / f"civdesk-{size}.png", data)
    write(icons / "civdesk.ico", ico_bytes((size, pngs[size]) for size in ICO_SIZES))
    write(icons / "civdesk.icns", icns_bytes((kind, pngs[size]) for kind, size in ICNS_TYPES))
    for size in TRAY_ICON_SIZES:
        write(icons / f"tray-{size}.png", png_bytes(render_tray_icon(size, CARD_WHITE)))
        write(icons / f"tray-dark-{size}.png", png_bytes(render_tray_icon(size, TRAY_DARK)))
    images = out / "images"
    write(images / "no-preview.png", png_bytes(render_placeholder(draw_no_preview)))
    write(images / "nsfw-hidden.png", png_bytes(render_placeholder(draw_nsfw_hidden)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "resources",
                        help="the resources folder to write into (default: %(default)s)")
    args = parser.parse_args(argv)
    _app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    print(f"Writing icons into {args.out}")
    build(args.out.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
