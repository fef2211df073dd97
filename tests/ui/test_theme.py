"""Light and dark: the system's scheme followed live, the user's choice, readable colours."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QLabel, QLineEdit, QListWidget, QVBoxLayout, QWidget

from civdesk.ui import icons
from civdesk.ui.notifications import Toast
from civdesk.ui.theme import ThemeManager, contrast_ratio, is_dark
from civdesk.ui.theme_choice import ThemeChooser

R = QPalette.ColorRole
#: (text, its background) pairs every widget draws with.
PAIRS = [(R.WindowText, R.Window), (R.Text, R.Base), (R.ButtonText, R.Button),
         (R.HighlightedText, R.Highlight), (R.ToolTipText, R.ToolTipBase),
         (R.PlaceholderText, R.Base)]


@pytest.fixture
def manager(qapp: QApplication, tmp_path: Path) -> Iterator[ThemeManager]:
    """A ThemeManager of its own; the application's look put back afterwards."""
    style, palette, sheet = qapp.style().name(), qapp.palette(), qapp.styleSheet()
    settings = QSettings(str(tmp_path / "appearance.ini"), QSettings.Format.IniFormat)
    made = ThemeManager(qapp, settings=settings, stylesheet=icons.stylesheet())
    try:
        yield made
    finally:
        QGuiApplication.styleHints().colorSchemeChanged.disconnect(made._system_scheme_changed)
        made.setParent(None)
        qapp.setStyle(style)
        qapp.setPalette(palette)
        qapp.setStyleSheet(sheet)


def system_turns(scheme: Qt.ColorScheme) -> None:
    """What Qt emits when the desktop switches between light and dark."""
    QGuiApplication.styleHints().colorSchemeChanged.emit(scheme)


def a_window(qtbot) -> tuple[QWidget, dict[str, QWidget]]:
    window = QWidget()
    layout = QVBoxLayout(window)
    widgets: dict[str, QWidget] = {"label": QLabel("Library scan finished"),
                                   "edit": QLineEdit("lora"), "sidebar": QListWidget()}
    widgets["sidebar"].setObjectName("sidebar")
    widgets["sidebar"].addItems(["Civitai", "Models"])
    widgets["sidebar"].setCurrentRow(0)
    for widget in widgets.values():
        layout.addWidget(widget)
    window.resize(500, 400)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    toast = Toast(window)
    toast.show_text("Download complete", "Neon Alley", False)
    widgets["toast"] = toast
    return window, widgets


def assert_readable(widgets: dict[str, QWidget], dark: bool) -> None:
    for name, widget in widgets.items():
        palette = widget.palette()
        assert is_dark(palette) is dark, name
        for text, ground in PAIRS:
            ratio = contrast_ratio(palette.color(text), palette.color(ground))
            assert ratio >= 4.5, (name, text, ground, ratio)


def toast_ground(toast: QWidget) -> QColor:
    image = toast.grab().toImage()
    return image.pixelColor(image.width() // 2, 4)  # inside the border, above the title


def test_the_open_window_follows_the_system_scheme_live(qtbot, manager: ThemeManager) -> None:
    _window, widgets = a_window(qtbot)
    for scheme, dark in [(Qt.ColorScheme.Dark, True), (Qt.ColorScheme.Light, False),
                         (Qt.ColorScheme.Dark, True)]:
        with qtbot.waitSignal(manager.changed) as restyled:
            system_turns(scheme)
        assert restyled.args == [dark] and manager.dark is dark
        assert_readable(widgets, dark)
        ground = toast_ground(widgets["toast"])
        assert (ground.lightness() < 128) is dark  # the toast took the new palette
        text = widgets["toast"].palette().color(R.Text)
        assert contrast_ratio(text, ground) >= 4.5


def test_the_users_choice_wins_over_the_system_and_is_kept(
        qtbot, manager: ThemeManager, qapp: QApplication) -> None:
    _window, widgets = a_window(qtbot)
    system_turns(Qt.ColorScheme.Light)
    chooser = ThemeChooser(manager)
    qtbot.addWidget(chooser)
    chooser.combo.setCurrentIndex(chooser.combo.findData("dark"))
    chooser.combo.activated.emit(chooser.combo.currentIndex())
    assert manager.choice == "dark" and manager.dark
    assert_readable(widgets, True)
    system_turns(Qt.ColorScheme.Light)  # the desktop changes: the user said dark
    assert manager.dark
    assert manager.settings is not None
    again = ThemeManager(qapp, settings=manager.settings)  # the next start
    try:
        assert again.choice == "dark"
    finally:
        QGuiApplication.styleHints().colorSchemeChanged.disconnect(again._system_scheme_changed)
        again.setParent(None)
    manager.set_choice("system")
    system_turns(Qt.ColorScheme.Light)
    assert not manager.dark
    assert_readable(widgets, False)


def test_every_fixed_colour_in_the_stylesheet_brings_a_readable_partner() -> None:
    """Palette roles follow the scheme; a hard-coded text colour must carry its own
    background (and the pair must read), or it is near-white on near-white in one theme."""
    sheet = re.sub(r"/\*.*?\*/", "", icons.stylesheet(), flags=re.S)
    for selector, body in re.findall(r"([^{}]+)\{([^}]*)\}", sheet):
        props = dict(re.findall(r"([\w-]+)\s*:\s*([^;]+);?", body))
        color = props.get("color", "").strip()
        ground = (props.get("background-color") or props.get("background") or "").strip()
        fixed = [v for v in (color, ground) if v and not v.startswith(("palette(", "transparent"))]
        if not fixed:
            continue
        assert color and ground, f"{selector.strip()}: a fixed colour without its partner"
        ratio = contrast_ratio(QColor(color), QColor(ground))
        assert ratio >= 4.5, f"{selector.strip()}: {color} on {ground} is {ratio:.2f}"
