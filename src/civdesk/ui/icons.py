"""The app's own artwork as Qt objects: window icon, tray icon, placeholders, stylesheet.

Files come from :mod:`civdesk.resources`; ``scripts/make_icons.py`` draws them. Call these
after the ``QGuiApplication`` exists (Qt cannot build an icon before).
"""

from __future__ import annotations

import logging
import sys
from typing import Literal

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QIcon, QImage

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
