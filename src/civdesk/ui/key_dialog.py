"""Ask for the Civitai API key before the first download without one.

Civitai's docs require a token for every download (April 2026). Rather than fail on the
first 401, the window asks up front: :class:`KeyDialog` says where to create a key, tests it
(off the GUI thread) and stores it; :class:`KeyGate` stands between a Download click and the
queue and opens the dialog when no key is set. The user may also try without a key; that
choice holds for the rest of the session.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from civdesk.core.civitai.errors import KEY_PAGE, KEY_PAGE_URL
from civdesk.core.civitai.keycheck import KeyCheck, check_api_key
from civdesk.ui.tasks import run_task

if TYPE_CHECKING:
    from civdesk.core.context import Core
    from civdesk.ui.services.downloads import DownloadService


class KeyDialog(QDialog):
    """Where to create a key, a field, Test and Save; "Download without a key" as a way out.

    ``choice`` after it closes: ``"saved"`` (the key is stored), ``"without"`` or None.
    """

    #: Civitai answered the Test: (accepted or None when it could not be asked, message).
    tested = Signal(object, str)

    def __init__(self, core: Core, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("keyDialog")
        self.setWindowTitle("Civitai API key")
        self.core = core
        self.choice: str | None = None
        intro = QLabel(
            "Civitai requires an API key for every download. Create one on "
            f'<a href="{KEY_PAGE_URL}">{KEY_PAGE}</a>, paste it here and '
            "save it: civdesk keeps it in the system keychain (or a file only you can read)."
        )
        intro.setWordWrap(True)
        intro.setOpenExternalLinks(True)
        self.key_edit = QLineEdit()
        self.key_edit.setObjectName("dialogApiKey")
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.key_edit.setPlaceholderText("Paste your Civitai API key")
        self.key_edit.textChanged.connect(self._key_changed)
        self.test_button = QPushButton("Test")
        self.test_button.setObjectName("dialogTestKey")
        self.test_button.clicked.connect(self.test_key)
        self.status = QLabel()
        self.status.setObjectName("dialogKeyStatus")
        self.status.setWordWrap(True)
        buttons = QDialogButtonBox()
        # ActionRole: the box would close the dialog before the key is stored.
        self.save_button = buttons.addButton("Save", QDialogButtonBox.ButtonRole.ActionRole)
        self.save_button.setObjectName("dialogSaveKey")
        self.save_button.setDefault(True)
        self.without_button = buttons.addButton("Download without a key",
                                                QDialogButtonBox.ButtonRole.ActionRole)
        self.without_button.setObjectName("dialogWithoutKey")
        self.without_button.setToolTip("Some files may still come without a key; most will "
                                       "be refused")
        buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.save_button.clicked.connect(self.save_key)
        self.without_button.clicked.connect(self._without_key)
        buttons.rejected.connect(self.reject)
        row = QHBoxLayout()
        row.addWidget(self.key_edit, 1)
        row.addWidget(self.test_button)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(row)
        layout.addWidget(self.status)
        layout.addWidget(buttons)
        self._key_changed("")

    @property
    def key(self) -> str:
        return self.key_edit.text().strip()

    @Slot(str)
    def _key_changed(self, _text: str) -> None:
        self.test_button.setEnabled(bool(self.key))
        self.save_button.setEnabled(bool(self.key))
        self.status.setText("")

    @Slot()
    def test_key(self) -> None:
        """Ask Civitai whether the key works (network: in a worker)."""
        key = self.key
        if not key:
            return
        self.test_button.setEnabled(False)
        self.status.setText("Asking Civitai…")

        def checked(check: KeyCheck) -> None:
            if key == self.key:  # else the field changed meanwhile: that answer is stale
                self.status.setText(check.message)
            self.tested.emit(check.accepted, check.message)

        run_task(check_api_key, self.core.api_base, key, on_result=checked,
                 on_error=lambda exc: self._show(f"The key could not be checked: {exc}"),
                 on_finished=lambda: self.test_button.setEnabled(bool(self.key)),
                 pool="network", name="check API key", owner=self)

    @Slot()
    def save_key(self) -> None:
        """Store the key (the keychain may be slow: in a worker), then close."""
        key = self.key
        if not key:
            return
        self.save_button.setEnabled(False)
        self.status.setText("Saving the key…")

        def saved(_: object) -> None:
            self.choice = "saved"
            self.accept()

        def failed(exc: BaseException) -> None:
            self.save_button.setEnabled(True)
            self._show(f"The key was not saved: {exc}")

        run_task(self.core.keys.set, key, on_result=saved, on_error=failed, pool="db",
                 name="store API key", owner=self)

    def _show(self, text: str) -> None:
        self.status.setText(text)

    @Slot()
    def _without_key(self) -> None:
        self.choice = "without"
        self.accept()


class KeyGate(QObject):
    """Queues downloads on the downloads service, asking for the key first when none is set.

    Has ``add`` and ``task_finished``, so the pages take it in the service's place.
    """

    #: A key was stored through the dialog (the Settings page shows it).
    key_saved = Signal()

    def __init__(self, core: Core, downloads: DownloadService, window: QWidget) -> None:
        super().__init__(window)
        self.core = core
        self.downloads = downloads
        self.window = window
        self._without_key = False  # chosen in the dialog: not asked again this session
        self._dialog: KeyDialog | None = None
        self._waiting: list[Callable[[], object]] = []  # downloads waiting for the answer
        #: Makes the dialog (replaced in tests).
        self.make_dialog: Callable[[], KeyDialog] = lambda: KeyDialog(core, window)

    @property
    def task_finished(self) -> Any:
        return self.downloads.task_finished

    def add(self, version_id: int, file_id: int | None = None, dest_dir: str | None = None,
            **kw: Any) -> None:
        """Queue a download once there is a key (or the user chose to go without)."""
        self._when_allowed(lambda: self.downloads.enqueue(version_id, file_id, dest_dir, **kw))

    def _when_allowed(self, queue_it: Callable[[], object]) -> None:
        if self._without_key:
            queue_it()
            return
        self._waiting.append(queue_it)
        if self._dialog is not None or len(self._waiting) > 1:
            return  # the key is being read or asked for: this one waits with the others
        # Reading the key may ask the keychain: not on the GUI thread.
        run_task(self.core.api_key, on_result=self._key_read, on_error=self._key_unreadable,
                 pool="db", name="read API key", owner=self)

    def _key_read(self, key: str | None) -> None:
        if key:
            self._release()
            return
        dialog = self._dialog = self.make_dialog()
        dialog.finished.connect(self._answered)
        dialog.open()

    def _key_unreadable(self, _exc: BaseException) -> None:
        self._key_read(None)  # a keychain that cannot be read is no key: ask

    @Slot(int)
    def _answered(self, _result: int) -> None:
        dialog, self._dialog = self._dialog, None
        choice = dialog.choice if dialog is not None else None
        if dialog is not None:
            dialog.deleteLater()
        if choice == "saved":
            self.key_saved.emit()
            self._release()
        elif choice == "without":
            self._without_key = True
            self._release()
        else:
            self._waiting.clear()  # cancelled: nothing is queued

    def _release(self) -> None:
        waiting, self._waiting = self._waiting, []
        for queue_it in waiting:
            queue_it()


__all__ = ["KeyDialog", "KeyGate"]
