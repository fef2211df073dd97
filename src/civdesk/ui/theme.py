"""Look and feel: the platform style, a dark palette where the desktop has none, card colours.

civdesk keeps the native style (menus, dialogs and scroll bars behave like the rest of the
desktop) and adds only a small stylesheet (``resources/style/civdesk.qss``) for what the
platform has no widget for: the sidebar, titles, chips. Cards and badges in the grids are
painted by their delegates with the colours below.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QStyleFactory

from civdesk.ui import icons

# A colour per model type, readable on dark and light backgrounds.
_TYPE_COLORS = {
    "Checkpoint": "#7c5cff",
    "LORA": "#2f9e6e",
    "LoCon": "#2b8a83",
    "DoRA": "#3a9e4f",
    "TextualInversion": "#c9822b",
    "Hypernetwork": "#b35c9e",
    "VAE": "#3b7dd8",
    "Controlnet": "#c2494b",
    "Upscaler": "#6f7d8c",
    "MotionModule": "#8c6b3b",
    "Poses": "#5f8f2f",
    "Wildcards": "#8f5f2f",
    "Workflows": "#4f6fa8",
    "Unknown": "#6b6b6b",
}
_OTHER_TYPE = "#5a6f80"
_BADGES = {"update": "#d9822b", "duplicate": "#b23b3b", "nsfw": "#a83279",
           "offline": "#70757e", "unverified": "#8a6d1f", "removed": "#7a3b3b"}

def type_color(model_type: str) -> QColor:
    return QColor(_TYPE_COLORS.get(model_type, _OTHER_TYPE))


def badge_color(kind: str) -> QColor:
    return QColor(_BADGES.get(kind, _OTHER_TYPE))


def dark_palette() -> QPalette:
    """A neutral dark palette, for platforms whose style does not follow a dark desktop."""
    p = QPalette()
    window, base, text = QColor("#202226"), QColor("#17181b"), QColor("#e6e6e6")
    roles = {
        QPalette.ColorRole.Window: window,
        QPalette.ColorRole.WindowText: text,
        QPalette.ColorRole.Base: base,
        QPalette.ColorRole.AlternateBase: QColor("#25272c"),
        QPalette.ColorRole.ToolTipBase: QColor("#2b2d31"),
        QPalette.ColorRole.ToolTipText: text,
        QPalette.ColorRole.PlaceholderText: QColor("#9a9ca3"),
        QPalette.ColorRole.Text: text,
        QPalette.ColorRole.Button: QColor("#2b2d31"),
        QPalette.ColorRole.ButtonText: text,
        QPalette.ColorRole.BrightText: QColor("#ff6b6b"),
        QPalette.ColorRole.Highlight: QColor("#4c8dff"),
        QPalette.ColorRole.HighlightedText: QColor("#ffffff"),
        QPalette.ColorRole.Link: QColor("#6fa8ff"),
        QPalette.ColorRole.LinkVisited: QColor("#b08cff"),
        QPalette.ColorRole.Mid: QColor("#3a3c42"),
        QPalette.ColorRole.Dark: QColor("#111214"),
        QPalette.ColorRole.Light: QColor("#3f4248"),
    }
    for role, color in roles.items():
        p.setColor(role, color)
    disabled = QColor("#6d6f75")
    for role in (
        QPalette.ColorRole.Text,
        QPalette.ColorRole.ButtonText,
        QPalette.ColorRole.WindowText,
    ):
        p.setColor(QPalette.ColorGroup.Disabled, role, disabled)
    return p


def apply_theme(
    app: QApplication, *, force_dark: bool | None = None, stylesheet: str | None = None
) -> None:
    """Use the platform style; go dark when the desktop is dark (or ``force_dark``); then
    civdesk's stylesheet (``resources/style/civdesk.qss`` through :func:`icons.stylesheet`,
    the one place the app's styling lives, unless ``stylesheet`` is given).

    Fusion takes the palette faithfully, so it is the fallback when a dark palette must be
    applied on a platform style that would ignore it.
    """
    scheme = QGuiApplication.styleHints().colorScheme()
    dark = force_dark if force_dark is not None else scheme != Qt.ColorScheme.Light
    if dark and scheme != Qt.ColorScheme.Dark:
        # The desktop did not give us a dark palette: apply ours on a style that honours it.
        available = QStyleFactory.keys()
        if "Fusion" in available:
            app.setStyle("Fusion")
        app.setPalette(dark_palette())
    app.setStyleSheet(icons.stylesheet() if stylesheet is None else stylesheet)
