"""Look and feel: the platform style, light or dark as the system (or the user) says.

civdesk keeps the native style (menus, dialogs and scroll bars behave like the rest of the
desktop) and adds only a small stylesheet (``resources/style/civdesk.qss``) for what the
platform has no widget for: the sidebar, titles, chips. Every colour in the sheet is a
palette role, so it reads in both schemes. Cards and badges in the grids are painted by
their delegates with the colours below.

:class:`ThemeManager` follows the system's colour scheme live (``colorSchemeChanged``,
Qt 6.5+) or the user's choice (System / Light / Dark): the native palette when the
platform gives the scheme asked for, else Fusion with :func:`dark_palette` or
:func:`light_palette`. The stylesheet is set again after each change, so every widget on
screen is polished with the new palette.
"""

from __future__ import annotations

from typing import Final

from PySide6.QtCore import QObject, QSettings, Qt, Signal, Slot
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QStyleFactory, QToolTip

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

#: The ink of every pill painted on a card (type and state badges): white.
BADGE_INK = QColor("#ffffff")


def type_color(model_type: str) -> QColor:
    """The type's pill colour, dark enough for white text (:data:`BADGE_INK`) at 4.5:1."""
    return readable_on(QColor(_TYPE_COLORS.get(model_type, _OTHER_TYPE)), BADGE_INK)


def badge_color(kind: str) -> QColor:
    """A state pill's colour (update, duplicate…), dark enough for white text at 4.5:1."""
    return readable_on(QColor(_BADGES.get(kind, _OTHER_TYPE)), BADGE_INK)


#: Pills on the Civitai page's cards and versions: (fill, ink), readable in both schemes.
_PILLS = {"downloaded": ("#2e7d32", "#ffffff"), "update": ("#f9a825", "#000000"),
          "early-access": ("#6a1b9a", "#ffffff")}


def pill_colors(kind: str) -> tuple[QColor, QColor]:
    """A card pill's (fill, ink): ``downloaded``, ``update`` or ``early-access``."""
    fill, ink = _PILLS[kind]
    return QColor(fill), QColor(ink)


#: Words that tell an outcome (a download done or failed) in the colour of their kind.
_OUTCOME_COLORS = {"failed": "#c62828", "completed": "#2e7d32", "warning": "#b26a00"}


def outcome_color(kind: str, ground: QColor) -> QColor:
    """Red for a failure, green for a success…, in a lightness that reads on ``ground``
    (the row's background in the scheme shown) at 4.5:1."""
    return readable_on(QColor(_OUTCOME_COLORS.get(kind, "#808080")), ground)


def readable_on(color: QColor, ground: QColor, minimum: float = 4.5) -> QColor:
    """``color`` moved in lightness only (its hue kept) until it reads on ``ground``."""
    darker = relative_luminance(ground) > 0.18
    result = QColor(color)
    for _ in range(60):
        if contrast_ratio(result, ground) >= minimum:
            break
        result = result.darker(108) if darker else result.lighter(108)
    return result


def placeholder_colors(palette: QPalette) -> tuple[QColor, QColor]:
    """(ground, ink) of a preview that is not there yet ("Loading…"): the scheme's own
    quiet colours, the ink readable on the ground."""
    ground = palette.color(QPalette.ColorRole.Base)
    return ground, readable_on(palette.color(QPalette.ColorRole.PlaceholderText), ground)


_ROLE_ORDER: Final = (
    "Window", "WindowText", "Base", "AlternateBase", "ToolTipBase", "ToolTipText",
    "PlaceholderText", "Text", "Button", "ButtonText", "BrightText", "Highlight",
    "HighlightedText", "Link", "LinkVisited", "Mid", "Midlight", "Dark", "Light",
)


def _palette(colours: dict[str, str], disabled: str) -> QPalette:
    """A palette of role name -> colour, with one colour for disabled text."""
    p = QPalette()
    for role in _ROLE_ORDER:
        p.setColor(getattr(QPalette.ColorRole, role), QColor(colours[role]))
    for role_name in ("Text", "ButtonText", "WindowText"):
        p.setColor(QPalette.ColorGroup.Disabled, getattr(QPalette.ColorRole, role_name),
                   QColor(disabled))  # fmt: skip
    return p


def dark_palette() -> QPalette:
    """A neutral dark palette, for platforms whose style does not follow a dark desktop."""
    text = "#e6e6e6"
    return _palette({
        "Window": "#202226", "WindowText": text, "Base": "#17181b",
        "AlternateBase": "#25272c", "ToolTipBase": "#2b2d31", "ToolTipText": text,
        "PlaceholderText": "#9a9ca3", "Text": text, "Button": "#2b2d31", "ButtonText": text,
        "BrightText": "#ff6b6b", "Highlight": "#2f6fd6",  # white on it: 4.8:1
        "HighlightedText": "#ffffff", "Link": "#6fa8ff", "LinkVisited": "#b08cff",
        "Mid": "#3a3c42", "Dark": "#111214", "Light": "#3f4248",
        "Midlight": "#2f3137",  # hovered cards and rows: a step up from the window
    }, disabled="#6d6f75")  # fmt: skip


def light_palette() -> QPalette:
    """A neutral light palette, for platforms whose style gives no light one on request."""
    text = "#1d1f23"
    return _palette({
        "Window": "#f3f3f5", "WindowText": text, "Base": "#ffffff",
        "AlternateBase": "#f0f1f4", "ToolTipBase": "#ffffff", "ToolTipText": text,
        "PlaceholderText": "#5f636b", "Text": text, "Button": "#e9eaee", "ButtonText": text,
        "BrightText": "#b00020", "Highlight": "#2f6fd6", "HighlightedText": "#ffffff",
        "Link": "#1f5fbf", "LinkVisited": "#6a3fb0", "Mid": "#c4c6cc", "Dark": "#a0a3aa",
        "Light": "#ffffff", "Midlight": "#e3e5ea",
    }, disabled="#8d9097")  # fmt: skip


#: The user's choices; "system" follows the desktop.
THEMES: Final = ("system", "light", "dark")
THEME_LABELS: Final = {"system": "System", "light": "Light", "dark": "Dark"}
_SETTINGS_KEY = "appearance/theme"


def is_dark(palette: QPalette) -> bool:
    return palette.color(QPalette.ColorRole.Window).lightness() < 128


def relative_luminance(color: QColor) -> float:
    def channel(value: float) -> float:
        return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4

    return (0.2126 * channel(color.redF()) + 0.7152 * channel(color.greenF())
            + 0.0722 * channel(color.blueF()))  # fmt: skip


def contrast_ratio(a: QColor, b: QColor) -> float:
    """WCAG contrast ratio (1–21); 4.5 is the least for body text."""
    la, lb = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


_R = QPalette.ColorRole
#: (text, its background, the one to move) where a platform palette may fall short: Fusion's
#: light highlight takes white text at 3.7:1, placeholders are often pale.
_READABLE_PAIRS: Final = [
    (_R.HighlightedText, _R.Highlight, _R.Highlight),
    (_R.PlaceholderText, _R.Base, _R.PlaceholderText),
    (_R.ToolTipText, _R.ToolTipBase, _R.ToolTipText),
]
MIN_CONTRAST: Final = 4.5


def made_readable(palette: QPalette) -> QPalette:
    """``palette`` with the pairs that read poorly moved apart to a 4.5:1 contrast (the
    colour moved only in lightness, so it keeps its hue)."""
    result = QPalette(palette)
    for text_role, ground_role, moved in _READABLE_PAIRS:
        text, ground = result.color(text_role), result.color(ground_role)
        other = ground if moved == text_role else text
        colour = text if moved == text_role else ground
        darker = relative_luminance(other) > relative_luminance(colour) or (
            relative_luminance(other) == relative_luminance(colour) and other.lightness() > 127)
        for _ in range(40):
            if contrast_ratio(colour, other) >= MIN_CONTRAST:
                break
            colour = colour.darker(108) if darker else colour.lighter(108)
        result.setColor(QPalette.ColorGroup.Active, moved, colour)
        result.setColor(QPalette.ColorGroup.Inactive, moved, colour)
    return result


class ThemeManager(QObject):
    """Light or dark for the whole application, following the system or the user.

    One per application (:func:`theme_manager`). ``settings``, when given, keeps the user's
    choice (key ``appearance/theme``). ``changed(dark)`` after each restyle.
    """

    changed = Signal(bool)

    def __init__(self, app: QApplication, *, settings: QSettings | None = None,
                 stylesheet: str | None = None) -> None:
        super().__init__(app)
        self.app = app
        self.settings = settings
        self.stylesheet = icons.stylesheet() if stylesheet is None else stylesheet
        self._native_style = app.style().name()
        saved = settings.value(_SETTINGS_KEY, "system") if settings is not None else "system"
        self._choice = saved if saved in THEMES else "system"
        hints = QGuiApplication.styleHints()
        self._system_scheme = hints.colorScheme()
        hints.colorSchemeChanged.connect(self._system_scheme_changed)
        #: Whether the palette in use is dark (after :meth:`apply`).
        self.dark = is_dark(app.palette())

    @property
    def choice(self) -> str:
        return self._choice

    def set_choice(self, choice: str) -> None:
        if choice not in THEMES:
            raise ValueError(f"unknown theme {choice!r}")
        self._choice = choice
        if self.settings is not None:
            self.settings.setValue(_SETTINGS_KEY, choice)
        self.apply()

    def wanted_dark(self) -> bool | None:
        """Dark, light, or None: whatever the platform gives (it does not say its scheme)."""
        if self._choice != "system":
            return self._choice == "dark"
        if self._system_scheme == Qt.ColorScheme.Dark:
            return True
        if self._system_scheme == Qt.ColorScheme.Light:
            return False
        return None

    @Slot(Qt.ColorScheme)
    def _system_scheme_changed(self, scheme: Qt.ColorScheme) -> None:
        self._system_scheme = scheme
        if self._choice == "system":
            self.apply()

    def apply(self) -> None:
        """Restyle the application, and every widget on screen, for the wanted scheme."""
        app, dark = self.app, self.wanted_dark()
        hints = QGuiApplication.styleHints()
        # Ask the platform first (Qt 6.8: Windows, macOS, GNOME through the portal).
        if self._choice == "system":
            hints.unsetColorScheme()
        else:
            hints.setColorScheme(Qt.ColorScheme.Dark if dark else Qt.ColorScheme.Light)
        if app.style().name() != self._native_style:
            app.setStyle(self._native_style)
        app.setPalette(QPalette())  # the platform's own palette again
        if dark is not None and is_dark(app.palette()) != dark:
            # The platform cannot give that scheme: ours, on a style that honours a palette.
            if "Fusion" in QStyleFactory.keys():  # noqa: SIM118 (a list, not a dict)
                app.setStyle("Fusion")
            app.setPalette(dark_palette() if dark else light_palette())
        palette = made_readable(app.palette())
        app.setPalette(palette)
        QToolTip.setPalette(palette)  # tooltips and Qt's tray balloon read like the window
        # Set again, so that widgets already polished take the new palette's roles.
        app.setStyleSheet("")
        app.setStyleSheet(self.stylesheet)
        self.dark = is_dark(palette)
        self.changed.emit(self.dark)


def theme_manager(app: QApplication | None = None, *,
                  settings: QSettings | None = None) -> ThemeManager:
    """The application's :class:`ThemeManager`, made (without applying it) on first use."""
    app = app or QApplication.instance()  # type: ignore[assignment]
    assert isinstance(app, QApplication)
    found = app.findChild(ThemeManager)
    if found is None:
        found = ThemeManager(app, settings=settings)
    return found


def apply_theme(
    app: QApplication, *, force_dark: bool | None = None, stylesheet: str | None = None,
    settings: QSettings | None = None,
) -> ThemeManager:
    """Style ``app`` by the user's saved choice (``settings``) or the system's scheme,
    live from now on; ``force_dark`` sets the choice (screenshots), ``stylesheet`` replaces
    ``resources/style/civdesk.qss`` (the one place the app's styling lives)."""
    manager = theme_manager(app, settings=settings)
    if stylesheet is not None:
        manager.stylesheet = stylesheet
    if force_dark is not None:
        manager._choice = "dark" if force_dark else "light"
    manager.apply()
    return manager
