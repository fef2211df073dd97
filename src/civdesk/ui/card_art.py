"""What cards paint besides a thumbnail: the placeholder for no preview, the NSFW label.

Shared by the Civitai browser's cards and the library grid, so both look the same.
GUI thread only (pixmaps).
"""

from __future__ import annotations

from PySide6.QtCore import QRect, QRectF, QSize, Qt
from PySide6.QtGui import (
    QFont,
    QFontMetrics,
    QGuiApplication,
    QPainter,
    QPainterPath,
    QPalette,
    QPixmap,
)

from civdesk.ui import icons
from civdesk.ui.theme import BADGE_INK, badge_color

NSFW_LABEL = "NSFW"
_placeholders: dict[tuple[str, int, int, int], QPixmap] = {}


def placeholder_pixmap(size: QSize, kind: icons.Placeholder = icons.NO_PREVIEW) -> QPixmap:
    """The app's placeholder artwork filling ``size`` (centre-cropped); cached per size."""
    palette = QGuiApplication.palette()
    cache_key = (kind, size.width(), size.height(), palette.cacheKey())
    pixmap = _placeholders.get(cache_key)
    if pixmap is None:
        image = icons.placeholder_image(kind)
        if image.isNull():  # the artwork is missing: a quiet ground of the scheme shown
            pixmap = QPixmap(size)
            pixmap.fill(palette.color(QPalette.ColorRole.Mid))
        else:
            scaled = image.scaled(
                size, Qt.AspectRatioMode.KeepAspectRatioByExpanding,
                Qt.TransformationMode.SmoothTransformation,
            )  # fmt: skip
            x = (scaled.width() - size.width()) // 2
            y = (scaled.height() - size.height()) // 2
            pixmap = QPixmap.fromImage(scaled.copy(QRect(x, y, size.width(), size.height())))
        _placeholders[cache_key] = pixmap
    return pixmap


def paint_nsfw_label(painter: QPainter, thumb: QRect | QRectF) -> None:
    """A small "NSFW" pill in the bottom-left corner of a (blurred) preview."""
    rect = QRectF(thumb)
    painter.save()
    font = QFont(painter.font())
    font.setBold(True)
    font.setPointSizeF(max(7.0, font.pointSizeF() * 0.8))
    painter.setFont(font)
    metrics = QFontMetrics(font)
    pill = QRectF(
        rect.left() + 6, rect.bottom() - metrics.height() - 8,
        metrics.horizontalAdvance(NSFW_LABEL) + 12, metrics.height() + 2,
    )  # fmt: skip
    path = QPainterPath()
    path.addRoundedRect(pill, 4, 4)
    fill = badge_color("nsfw")
    fill.setAlpha(225)  # a little see-through over the blurred preview
    painter.fillPath(path, fill)
    painter.setPen(BADGE_INK)
    painter.drawText(pill, Qt.AlignmentFlag.AlignCenter, NSFW_LABEL)
    painter.restore()
