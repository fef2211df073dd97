"""The Settings page: API key, library folders, download folders, behaviour, advanced.

Changes apply at once and are saved in a worker (the database write and the keychain call
stay off the GUI thread); ``saved`` is emitted when they are on disk. Text fields apply when
editing finishes, so the keychain is not written on every keystroke.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QTimer, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from civdesk.core.civitai.errors import KEY_PAGE
from civdesk.core.civitai.keycheck import KeyCheck, check_api_key
from civdesk.core.errors import CivdeskError
from civdesk.core.locations import find_model_folders
from civdesk.core.settings import (
    A1111,
    DEFAULT_API_BASE,
    DEFAULT_MATURE_API_BASE,
    DEFAULT_TYPE_FOLDERS,
    FOLDER_LAYOUTS,
    LAYOUT_NAMES,
    detect_layout,
    normalised_api_base,
)
from civdesk.ui.library.rows import type_label
from civdesk.ui.services.library import LibraryService
from civdesk.ui.tasks import TaskHandle, run_task
from civdesk.ui.theme_choice import ThemeChooser

if TYPE_CHECKING:
    from civdesk.core.context import Core

log = logging.getLogger(__name__)

#: The folder-names choice when the type folders are named by hand.
OWN_LAYOUT, OWN_LAYOUT_LABEL = "own", "Your own (below)"

SAVE_DELAY_MS = 250


class SettingsPage(QWidget):
    """Edits ``core.settings`` and the API key in ``core.keys``."""

    scan_requested = Signal()
    status_message = Signal(str)
    #: The settings (and key, if changed) are stored.
    saved = Signal()
    #: The key test ended (Test key, or the check after a key was stored): (works, message).
    key_tested = Signal(bool, str)
    #: Something a running part of the app caches changed (api base, key, NSFW).
    settings_changed = Signal()
    library_changed = Signal()  # files were forgotten (the library service reads it again)
    folders_changed = Signal()  # a library folder was added or removed

    def __init__(self, core: Core, parent: QWidget | None = None, *,
                 library: LibraryService | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("settingsPage")
        self.core = core
        # Forgetting a folder's files goes through the library service (which also redoes
        # it after a scan that ran meanwhile).
        if library is None:  # a page of its own (tests): it says what its service did
            library = LibraryService(core, self)
            library.status_message.connect(self.status_message)
        self.library = library
        self.library.folder_forgotten.connect(self._folder_forgotten)

        self._key_dirty = False
        self._saves_running = 0  # saves handed to the "db" pool and not ended yet
        self._after_running_saves: list[Callable[[], object]] = []
        self._tested: dict[str, str] = {}  # key -> what Civitai said of it (Test key)
        self._save_timer = QTimer(self)
        self._save_timer.setSingleShot(True)
        self._save_timer.setInterval(SAVE_DELAY_MS)
        self._save_timer.timeout.connect(self._save_now)
        self._type_edits: dict[str, QLineEdit] = {}
        self._build()
        self.load()

    # -- construction -------------------------------------------------------------------------

    def _build(self) -> None:
        body = QWidget()
        body.setMaximumWidth(960)  # long lines of form fields are hard to read
        column = QVBoxLayout(body)
        column.addWidget(self._account_group())
        column.addWidget(self._library_group())
        column.addWidget(self._downloads_group())
        column.addWidget(self._behaviour_group())
        column.addWidget(self._advanced_group())
        column.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(body)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(scroll)

    def _account_group(self) -> QGroupBox:
        group = QGroupBox("Civitai account")
        self.key_edit = QLineEdit()
        self.key_edit.setObjectName("apiKey")
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.key_edit.setPlaceholderText("Paste your API key from civitai.com → Account settings")
        self.key_edit.textEdited.connect(self._key_edited)
        self.key_edit.editingFinished.connect(self._key_finished)
        self.show_key = QToolButton()
        self.show_key.setObjectName("showKey")
        self.show_key.setText("Show")
        self.show_key.setCheckable(True)
        self.show_key.toggled.connect(self._show_key_toggled)
        self.test_key = QPushButton("Test key")
        self.test_key.setObjectName("testKey")
        self.test_key.clicked.connect(self.test_api_key)
        self.key_status = QLabel()
        self.key_status.setObjectName("keyStatus")
        self.key_status.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.key_edit, 1)
        row.addWidget(self.show_key)
        row.addWidget(self.test_key)
        layout = QVBoxLayout(group)
        layout.addLayout(row)
        layout.addWidget(self.key_status)
        hint = QLabel(
            f"Civitai requires a key for every download: create one on {KEY_PAGE}. "
            "Checked with Civitai when entered. Kept in the system keychain when there is "
            "one, otherwise in a file only you can read."
        )
        hint.setWordWrap(True)
        hint.setEnabled(False)
        layout.addWidget(hint)
        return group

    def _library_group(self) -> QGroupBox:
        group = QGroupBox("Library folders")
        self.folders = QListWidget()
        self.folders.setObjectName("libraryFolders")
        self.folders.setMaximumHeight(120)
        self.add_folder = QPushButton("Add folder…")
        self.add_folder.setObjectName("addFolder")
        self.add_folder.clicked.connect(self.choose_folder)
        self.remove_folder = QPushButton("Remove")
        self.remove_folder.setObjectName("removeFolder")
        self.remove_folder.clicked.connect(self._remove_selected_folder)
        self.find_folders = QPushButton("Find folders")
        self.find_folders.setObjectName("findFolders")
        self.find_folders.setToolTip(
            "Add the model folders of AUTOMATIC1111, Forge, SD.Next, ComfyUI and Stability "
            "Matrix where they are installed by default")
        self.find_folders.clicked.connect(self.look_for_model_folders)
        self.scan_button = QPushButton("Scan Library")
        self.scan_button.setObjectName("settingsScanButton")
        self.scan_button.clicked.connect(self.scan_requested)
        buttons = QVBoxLayout()
        buttons.addWidget(self.add_folder)
        buttons.addWidget(self.find_folders)
        buttons.addWidget(self.remove_folder)
        buttons.addStretch(1)
        buttons.addWidget(self.scan_button)
        layout = QHBoxLayout(group)
        layout.addWidget(self.folders, 1)
        layout.addLayout(buttons)
        return group

    def _downloads_group(self) -> QGroupBox:
        group = QGroupBox("Downloads")
        form = QFormLayout(group)
        self.download_root = QLineEdit()
        self.download_root.setObjectName("downloadRoot")
        self.download_root.editingFinished.connect(self._fields_changed)
        self.download_root.editingFinished.connect(self._follow_layout)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._choose_download_root)
        row = QHBoxLayout()
        row.addWidget(self.download_root, 1)
        row.addWidget(browse)
        form.addRow("Download folder", row)
        note = QLabel(
            "Each model type goes to its own sub-folder, named as your web UI expects "
            "(in an AUTOMATIC1111 or Forge checkout, embeddings go to its embeddings "
            "folder, beside models). A ComfyUI models folder is recognised by itself. An "
            "absolute path puts a type anywhere."
        )
        note.setWordWrap(True)
        note.setEnabled(False)
        form.addRow(note)
        self.layout_choice = QComboBox()
        self.layout_choice.setObjectName("folderLayout")
        for name, label in LAYOUT_NAMES.items():
            self.layout_choice.addItem(label, name)
        self.layout_choice.addItem(OWN_LAYOUT_LABEL, OWN_LAYOUT)
        self.layout_choice.activated.connect(self._layout_chosen)
        form.addRow("Folder names", self.layout_choice)
        for model_type in DEFAULT_TYPE_FOLDERS:
            edit = QLineEdit()
            edit.setObjectName(f"typeFolder_{model_type}")
            edit.editingFinished.connect(self._fields_changed)
            self._type_edits[model_type] = edit
            form.addRow(type_label(model_type), edit)
        return group

    def _behaviour_group(self) -> QGroupBox:
        group = QGroupBox("Behaviour")
        layout = QVBoxLayout(group)
        self.allow_nsfw = QCheckBox("Allow mature content: show NSFW models and previews, "
                                    "search and identify on the site with all content")
        self.allow_nsfw.setObjectName("allowNsfw")
        self.allow_nsfw.toggled.connect(self._fields_changed)
        self.minimize_to_tray = QCheckBox("Keep running in the system tray when the window closes")
        self.minimize_to_tray.setObjectName("minimizeToTray")
        self.minimize_to_tray.toggled.connect(self._fields_changed)
        layout.addWidget(self.allow_nsfw)
        layout.addWidget(self.minimize_to_tray)
        layout.addWidget(ThemeChooser())  # applied and kept at once, not on Save
        return group

    def _advanced_group(self) -> QGroupBox:
        group = QGroupBox("Advanced")
        group.setObjectName("advancedGroup")
        group.setCheckable(True)
        group.setChecked(False)  # folded: most people never need these
        inner = QWidget()
        form = QFormLayout(inner)
        self.api_base = QLineEdit()
        self.api_base.setObjectName("apiBase")
        self.api_base.setPlaceholderText(DEFAULT_API_BASE)
        self.api_base.editingFinished.connect(self._fields_changed)
        form.addRow("Civitai address", self.api_base)
        self.mature_api_base = QLineEdit()
        self.mature_api_base.setObjectName("matureApiBase")
        self.mature_api_base.setPlaceholderText(DEFAULT_MATURE_API_BASE)
        self.mature_api_base.setToolTip("Used instead when mature content is allowed: "
                                        "civitai.com shows safe-for-work content only")
        self.mature_api_base.editingFinished.connect(self._fields_changed)
        form.addRow("Civitai address, all content", self.mature_api_base)
        self.api_base_note = QLabel()
        self.api_base_note.setWordWrap(True)
        self.api_base_note.setEnabled(False)
        form.addRow(self.api_base_note)
        self.hash_workers = QSpinBox()
        self.hash_workers.setObjectName("hashWorkers")
        self.hash_workers.setRange(1, 16)
        self.hash_workers.valueChanged.connect(self._fields_changed)
        form.addRow("Files hashed at once", self.hash_workers)
        layout = QVBoxLayout(group)
        layout.addWidget(inner)
        inner.setVisible(False)
        self.advanced_group = group
        group.toggled.connect(inner.setVisible)
        return group

    # -- showing ------------------------------------------------------------------------------

    def load(self) -> None:
        """Show the current settings (without saving anything back)."""
        s = self.core.settings
        widgets = [self.allow_nsfw, self.minimize_to_tray, self.hash_workers]
        for w in widgets:
            w.blockSignals(True)
        self.folders.clear()
        self.folders.addItems(list(s.library_folders))
        self.download_root.setText(s.download_root or "")
        self._show_download_root()
        self._show_type_folders()
        self.allow_nsfw.setChecked(bool(s.allow_nsfw))
        self.minimize_to_tray.setChecked(bool(s.minimize_to_tray))
        self.hash_workers.setValue(int(s.hash_workers))
        self.api_base.setText(s.api_base if s.api_base != DEFAULT_API_BASE else "")
        self.mature_api_base.setText(
            s.mature_api_base if s.mature_api_base != DEFAULT_MATURE_API_BASE else "")
        overrides = [base for base in (getattr(self.core, "session_api_base", None),
                                       getattr(self.core, "session_mature_api_base", None))
                     if base]
        self.api_base_note.setText(
            f"This session uses {' and '.join(overrides)} (set on the command line or in the "
            "environment)." if overrides else ""
        )
        for w in widgets:
            w.blockSignals(False)
        self._load_key()

    def _load_key(self) -> None:
        def loaded(result: tuple[str | None, str | None]) -> None:
            key, source = result
            if self._key_dirty or self._tested or self.key_edit.text():
                return  # typed, tested or saved meanwhile: that is newer than what was read
            self.key_edit.setText(key or "")
            self.key_status.setText(_key_source_text(source, self.core.keys))

        run_task(
            lambda: (self.core.keys.get(), self.core.keys.source),
            on_result=loaded,
            on_error=lambda e: self.key_status.setText(str(e)),
            pool="db",
            name="read API key",
            owner=self,
        )

    # -- editing ------------------------------------------------------------------------------

    @Slot(bool)
    def _show_key_toggled(self, shown: bool) -> None:
        self.key_edit.setEchoMode(
            QLineEdit.EchoMode.Normal if shown else QLineEdit.EchoMode.Password
        )
        self.show_key.setText("Hide" if shown else "Show")

    def _key_edited(self, _text: str) -> None:
        self._key_dirty = True

    @Slot()
    def _key_finished(self) -> None:
        if self._key_dirty:
            self._save_timer.start()

    @Slot()
    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a library folder", str(Path.home()))
        if folder:
            self.add_library_folder(folder)

    def add_library_folder(self, folder: str) -> bool:
        """Add a folder to scan (also what the Add button does after its dialog)."""
        if not self._add_folders([folder]):
            self.status_message.emit(f"{folder} is already in the library")
            return False
        return True

    def _add_folders(self, folders: list[str]) -> list[str]:
        """Add these folders to the settings and the list; those that were new. The
        download root may be one of them now: its layout is looked at once."""
        added = [f for f in folders if self.core.settings.add_library_folder(f)]
        if added:
            self.folders.clear()
            self.folders.addItems(list(self.core.settings.library_folders))
            self._show_download_root()
            self._save_timer.start()
            self._follow_layout()
            self.folders_changed.emit()
        return added

    @Slot()
    def look_for_model_folders(self) -> TaskHandle:
        """Look where web UIs keep their models (on a worker) and add what is there."""
        self.find_folders.setEnabled(False)

        def found(folders: list[Path]) -> None:
            self.find_folders.setEnabled(True)
            added = self._add_folders([str(f) for f in folders])
            if added:
                self.status_message.emit(
                    f"Added {len(added)} model folder{'s' if len(added) != 1 else ''}: "
                    f"{', '.join(added)}. Press Scan Library to read them.")
            elif folders:
                self.status_message.emit("The model folders found are in the library already")
            else:
                self.status_message.emit(
                    "No web UI model folders in the usual places: add yours with Add folder…")

        return run_task(find_model_folders, on_result=found,
                        on_error=lambda _exc: self.find_folders.setEnabled(True),
                        pool="disk", name="find model folders", owner=self)

    def _show_download_root(self) -> None:
        """Where downloads go when the field is empty: it moves with the library folders."""
        self.download_root.setPlaceholderText(str(self.core.settings.effective_download_root))

    def _show_type_folders(self) -> None:
        s = self.core.settings
        for model_type, edit in self._type_edits.items():
            edit.setText(s.type_folders.get(model_type, DEFAULT_TYPE_FOLDERS[model_type]))
        self.layout_choice.setCurrentIndex(self.layout_choice.findData(s.layout or OWN_LAYOUT))

    @Slot(int)
    def _layout_chosen(self, row: int) -> None:
        name = self.layout_choice.itemData(row)
        if name in FOLDER_LAYOUTS:
            self.core.settings.use_layout(name)
            self._show_type_folders()
            self._save_timer.start()
        else:  # "your own": the folders below are the user's to name
            self._type_edits[next(iter(self._type_edits))].setFocus()

    def _follow_layout(self) -> TaskHandle | None:
        """Look (on a worker) whether the download root is a ComfyUI models folder; if so,
        and the type folders are still the defaults, name them as ComfyUI does."""
        s = self.core.settings
        if s.layout != A1111:
            return None
        root = s.effective_download_root

        def found(layout: str | None) -> None:
            if s.effective_download_root != root:
                return  # the folder changed while we looked: its own look decides
            adopted = s.adopt_layout(layout)
            if adopted is None:
                return
            self._show_type_folders()
            self._save_timer.start()
            self.status_message.emit(
                f"{root} is a {LAYOUT_NAMES[adopted]} models folder: downloads go to its "
                f"folders (LoRAs to {s.folder_for_type('LORA')}, and so on)")

        return run_task(detect_layout, root, on_result=found, pool="disk",
                        name="detect folder layout", owner=self)

    def _remove_selected_folder(self) -> TaskHandle | None:
        """Take the folder out of the library folders; the library forgets its files (on a
        worker), which stay on disk."""
        item = self.folders.currentItem()
        if item is None:
            return None
        folder = item.text()
        answer = QMessageBox.question(
            self, "Remove library folder",
            f"Stop scanning {folder}?\n\nThe library forgets its files: they stay on disk, "
            "and adding the folder again reads them all again.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No)
        if answer != QMessageBox.StandardButton.Yes:
            return None
        self.core.settings.remove_library_folder(folder)
        self.folders.takeItem(self.folders.row(item))
        self._show_download_root()
        self._save_timer.start()
        self.folders_changed.emit()
        return self.library.forget_folder(folder)

    def _folder_forgotten(self, _folder: str, count: int) -> None:
        if count:
            self.library_changed.emit()

    def _choose_download_root(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Download folder", self.download_root.text() or str(Path.home())
        )
        if folder:
            self.download_root.setText(folder)
            self._fields_changed()
            self._follow_layout()

    @Slot()
    def _fields_changed(self, *_: Any) -> None:
        s = self.core.settings
        s.download_root = self.download_root.text().strip() or None
        s.type_folders = {
            **s.type_folders,
            **{t: e.text().strip() or DEFAULT_TYPE_FOLDERS[t] for t, e in self._type_edits.items()},
        }
        self.layout_choice.setCurrentIndex(self.layout_choice.findData(s.layout or OWN_LAYOUT))
        s.allow_nsfw = self.allow_nsfw.isChecked()
        s.minimize_to_tray = self.minimize_to_tray.isChecked()
        s.hash_workers = self.hash_workers.value()
        for name, edit, default in (("api_base", self.api_base, DEFAULT_API_BASE),
                                    ("mature_api_base", self.mature_api_base,
                                     DEFAULT_MATURE_API_BASE)):
            base = edit.text().strip()
            try:
                setattr(s, name, normalised_api_base(base) if base else default)
            except ValueError as exc:
                self.status_message.emit(f"The Civitai address is not saved: {exc}")
        self._show_download_root()
        self._save_timer.start()

    # -- saving -------------------------------------------------------------------------------

    @property
    def _unsaved(self) -> bool:
        """Something typed waits for the save timer (or the key for its save)."""
        return self._save_timer.isActive() or self._key_dirty

    def after_saving(self, then: Callable[[], object]) -> None:
        """Call ``then`` once what was typed is saved: at once when nothing waits, else when
        the save this starts, or the one already on its way, has ended (saved or not). A
        download retried right after the key was pasted then runs with it."""
        if self._unsaved:
            self._save_timer.stop()
            self._save_now(then)
        elif self._saves_running:
            self._after_running_saves.append(then)  # the timer's save took the key already
        else:
            then()

    def flush(self, *, wait: bool = False) -> None:
        """Save what is waiting for the save timer now.

        ``wait=True`` saves on the calling thread: the window is closing and a queued worker
        would be cancelled with the rest. One small write, once.
        """
        if not self._unsaved:
            return
        self._save_timer.stop()
        if wait:
            self.core.settings.save(self.core.library)
            if self._key_dirty:
                self._key_dirty = False
                self.core.keys.set(self.key_edit.text().strip())
            self.saved.emit()
        else:
            self._save_now()

    def _save_now(self, then: Callable[[], object] | None = None) -> None:
        settings = copy.deepcopy(self.core.settings)  # the worker must not see later edits
        key = self.key_edit.text().strip() if self._key_dirty else None
        self._key_dirty = False
        library, keys = self.core.library, self.core.keys

        def save() -> str | None:
            settings.save(library)
            if key is not None:
                keys.set(key)
                return keys.source
            return None

        def done(source: str | None) -> None:
            if key is not None:
                stored = _key_source_text(source, keys)
                tested = self._tested.get(key)  # the answer of Test key stays readable
                self.key_status.setText(f"{tested} {stored}" if tested else stored)
                if key and tested is None:
                    self._check_stored_key(key, stored)
            self.saved.emit()
            self.settings_changed.emit()
            ended()

        def failed(exc: BaseException) -> None:
            self._save_failed(exc)
            ended()

        def ended() -> None:
            self._saves_running -= 1
            waiting = [then] if then is not None else []
            if not self._saves_running:  # saves run in order ("db" pool): all are in now
                waiting += self._after_running_saves
                self._after_running_saves = []
            for call in waiting:
                call()

        self._saves_running += 1
        run_task(
            save,
            on_result=done,
            on_error=failed,
            pool="db",
            name="save settings",
            owner=self,
        )

    def _save_failed(self, exc: BaseException) -> None:
        message = str(exc) if isinstance(exc, CivdeskError) else f"Settings not saved: {exc!r}"
        self.status_message.emit(message)

    # -- key test -----------------------------------------------------------------------------

    @Slot()
    def test_api_key(self) -> None:
        """Ask Civitai whether the key in the field works (in a worker)."""
        key = self.key_edit.text().strip()
        if not key:
            self._key_result(False, "Enter an API key first")
            return
        self.test_key.setEnabled(False)
        self.key_status.setText("Testing the key…")
        self._run_check(key, on_finished=lambda: self.test_key.setEnabled(True))

    def _check_stored_key(self, key: str, stored: str) -> None:
        """A key entered in the field is checked once stored: the user learns at once
        whether Civitai accepts it (it stays stored when Civitai cannot be reached)."""
        self.key_status.setText(f"Checking the key with Civitai… {stored}")
        self._run_check(key, after=f" {stored}")

    def _run_check(self, key: str, *, after: str = "",
                   on_finished: Callable[[], None] | None = None) -> None:
        def checked(check: KeyCheck) -> None:
            if self.key_edit.text().strip() == key:  # else another key was typed since
                self._key_result(bool(check.accepted), check.message, key, after)

        run_task(
            check_api_key,
            self.core.api_base,
            key,
            on_result=checked,
            on_error=lambda exc: self._key_result(False, f"The key could not be checked: {exc}"),
            on_finished=on_finished,
            pool="network",
            name="check API key",
            owner=self,
        )

    def _key_result(self, ok: bool, message: str, key: str | None = None,
                    after: str = "") -> None:
        if key is not None:
            self._tested = {key: message}
        self.key_status.setText(message + after)
        self.key_status.setProperty("ok", ok)
        self.key_tested.emit(ok, message)


def _key_source_text(source: str | None, keys: Any) -> str:
    if source == "environment":
        return "Using the key from the CIVITAI_API_KEY environment variable."
    if source == "keychain":
        return "Stored in the system keychain."
    if source == "file":
        return f"Stored in {keys.file} (readable only by you)."
    return "No key stored: public models only."


__all__ = ["SettingsPage"]
