"""The "Theme: System / Light / Dark" choice, a row any settings form can place."""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QWidget

from civdesk.ui.theme import THEME_LABELS, THEMES, ThemeManager, theme_manager


class ThemeChooser(QWidget):
    """A label and a combo box bound to the application's :class:`ThemeManager`: a choice
    restyles the open window at once and is kept for the next start."""

    def __init__(self, manager: ThemeManager | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.manager = manager or theme_manager()
        self.setObjectName("themeChooser")
        self.combo = QComboBox()
        self.combo.setObjectName("themeChoice")
        for name in THEMES:
            self.combo.addItem(THEME_LABELS[name], name)
        self.combo.setCurrentIndex(THEMES.index(self.manager.choice))
        self.combo.activated.connect(self._chosen)
        label = QLabel("&Theme")
        label.setBuddy(self.combo)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(label)
        layout.addWidget(self.combo)
        layout.addStretch(1)

    def _chosen(self, index: int) -> None:
        self.manager.set_choice(str(self.combo.itemData(index)))
