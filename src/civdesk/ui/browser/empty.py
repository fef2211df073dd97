"""What the Civitai page shows before its first search: what to do, and the buttons for it.

With no API key stored, it says that downloads need one and offers "Paste API key…" (the
:class:`KeyDialog`, which tests the key before saving it), instead of a blank pane now and
a refused download later.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from civdesk.ui.key_dialog import KeyDialog
from civdesk.ui.tasks import run_task

if TYPE_CHECKING:
    from civdesk.core.context import Core

#: The widest the words run (pixels).
TEXT_WIDTH = 560
NO_KEY_TEXT = (
    "Civitai requires an API key for downloads. Searching works without one; paste your key "
    "now and civdesk tests it with Civitai before saving it."
)


class BrowserEmptyState(QFrame):
    """The first view of the page: search hints, the top models, and the API key."""

    #: the user wants the top models (an empty search)
    top_models_requested = Signal()
    #: a key was tested and stored through the dialog
    key_saved = Signal()

    def __init__(self, core: Core, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("browserEmpty")
        self.core = core
        self.dialog: KeyDialog | None = None
        title = QLabel("Find models on Civitai")
        title.setObjectName("emptyTitle")
        font = title.font()
        font.setPointSizeF(font.pointSizeF() * 1.5)
        font.setBold(True)
        title.setFont(font)
        hint = QLabel("Type a name above and press Enter, or look at the top models now.")
        hint.setWordWrap(True)
        self.top_button = QPushButton("Show top models")
        self.top_button.setObjectName("showTopModels")
        self.top_button.clicked.connect(self.top_models_requested)
        self.key_text = QLabel(NO_KEY_TEXT)
        self.key_text.setObjectName("noKeyText")
        self.key_text.setWordWrap(True)
        self.key_button = QPushButton("Paste API key…")
        self.key_button.setObjectName("pasteApiKey")
        self.key_button.clicked.connect(self.ask_for_key)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.top_button)
        buttons.addWidget(self.key_button)
        buttons.addStretch(1)
        # The words in a column of a readable width, centred in the page.
        column = QWidget()
        column.setMaximumWidth(TEXT_WIDTH)
        words = QVBoxLayout(column)
        for label in (title, hint, self.key_text):
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            label.setWordWrap(True)
            words.addWidget(label)
        words.addLayout(buttons)
        # Centred by stretches, not an alignment: a widget placed with an alignment gets
        # its size hint's height, and wrapped words would be cut.
        centred = QHBoxLayout()
        centred.addStretch(1)
        centred.addWidget(column, 4)
        centred.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        layout.addLayout(centred)
        layout.addStretch(2)
        self._show_key_part(False)  # until the key store answers (when first shown)

    def showEvent(self, event: QShowEvent) -> None:
        """Each time it shows: the key may have been set in Settings meanwhile."""
        super().showEvent(event)
        self.check_key()

    @property
    def asks_for_key(self) -> bool:
        return not self.key_button.isHidden()

    def check_key(self) -> None:
        """Whether a key is stored (the keychain may be slow: in a worker)."""
        run_task(self.core.api_key, on_result=lambda key: self._show_key_part(not key),
                 on_error=lambda _exc: self._show_key_part(True),
                 pool="db", name="read API key", owner=self)

    def _show_key_part(self, no_key: bool) -> None:
        self.key_text.setVisible(no_key)
        self.key_button.setVisible(no_key)

    @Slot()
    def ask_for_key(self) -> None:
        """The key dialog (Test, then Save); there is no download to go without a key for."""
        if self.dialog is not None:
            self.dialog.raise_()
            return
        dialog = self.dialog = KeyDialog(self.core, self)
        dialog.without_button.hide()
        dialog.finished.connect(self._answered)
        dialog.open()

    @Slot(int)
    def _answered(self, _result: int) -> None:
        dialog, self.dialog = self.dialog, None
        if dialog is None:
            return
        if dialog.choice == "saved":
            self._show_key_part(False)
            self.key_saved.emit()
        dialog.deleteLater()
