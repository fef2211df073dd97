"""The Models page: the local library as a grid of cards, with a type sidebar and details.

Reading the library, deleting files, checking updates and linking files to Civitai all run
in worker threads (:mod:`civdesk.ui.tasks`); the page only shows snapshots and reacts.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QModelIndex, QObject, QPoint, QSize, Qt, QTimer, QUrl, Signal, Slot
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListView,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from civdesk.core.civitai.sites import CIVITAI_SITES, Sites
from civdesk.core.errors import CivdeskError
from civdesk.core.hashing import autov2
from civdesk.core.library.repository import UNKNOWN_TYPE, LibraryEntry
from civdesk.core.updates import UpdateCheck
from civdesk.ui.library.delegate import CardDelegate, format_size, is_unverified
from civdesk.ui.library.model import (
    LibraryFilterProxy,
    LibraryModel,
    LibrarySnapshot,
    RowChange,
    Show,
    SortKey,
    display_name,
    load_change,
    type_label,
)
from civdesk.ui.library.operations import (
    check_library_updates,
    check_model_update,
    delete_again,
    delete_with_companions,
    update_check_text,
)
from civdesk.ui.opener import Opener
from civdesk.ui.tasks import TaskHandle, run_task
from civdesk.ui.thumbnails import ThumbnailLoader, thumbnail_key

log = logging.getLogger(__name__)

DETAIL_PREVIEW = QSize(240, 300)
SEARCH_DELAY_MS = 150
LAYOUT_BATCH = 1000  # rows the grid lays out per event-loop turn
#: The base-model filter's first choice: no filter.
ALL_BASE_MODELS = "All base models"
SIDEBAR_KIND = Qt.ItemDataRole.UserRole + 1  # ("type", name) | ("show", Show)

# The order types appear in the sidebar; others follow alphabetically, Unknown last.
TYPE_ORDER = (
    "Checkpoint",
    "LORA",
    "LoCon",
    "DoRA",
    "TextualInversion",
    "Hypernetwork",
    "VAE",
    "Controlnet",
    "Upscaler",
)


def civitai_url(entry: LibraryEntry, sites: Sites = CIVITAI_SITES) -> str | None:
    """The entry's model page at its version, on the site that shows it (civitai.red for
    a model or version rated R or above)."""
    if entry.model_id is None:
        return None
    return sites.model_page(entry.model_id, entry.version_id,
                            nsfw_level=entry.nsfw_level, nsfw=entry.nsfw)


def _user_message(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, CivdeskError) else f"Unexpected error: {exc!r}"


class TypeSidebar(QListWidget):
    """ "All", one row per model type with its count, then the Duplicates, Updates and
    Offline and Removed views."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sidebar")
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setMinimumWidth(160)
        self.setMaximumWidth(240)

    def set_counts(self, snapshot: LibrarySnapshot) -> None:
        current = self.current_filter()
        self.blockSignals(True)
        self.clear()
        counts = snapshot.type_counts()
        self._add(f"All models  ({len(snapshot.entries)})", ("type", None))
        known = [t for t in TYPE_ORDER if t in counts]
        others = sorted(t for t in counts if t not in TYPE_ORDER and t != UNKNOWN_TYPE)
        for model_type in [*known, *others]:
            self._add(f"{type_label(model_type)}  ({counts[model_type]})", ("type", model_type))
        if UNKNOWN_TYPE in counts:
            self._add(
                f"{type_label(UNKNOWN_TYPE)}  ({counts[UNKNOWN_TYPE]})", ("type", UNKNOWN_TYPE)
            )
        separator = QListWidgetItem("")
        separator.setFlags(Qt.ItemFlag.NoItemFlags)
        separator.setSizeHint(QSize(10, 10))
        self.addItem(separator)
        self._add(f"Duplicates  ({snapshot.duplicate_count})", ("show", Show.DUPLICATES))
        self._add(f"Updates  ({snapshot.update_count})", ("show", Show.UPDATES))
        self._add(f"Offline  ({snapshot.offline_count})", ("show", Show.OFFLINE))
        self._add(f"Removed  ({snapshot.removed_count})", ("show", Show.REMOVED))
        self.blockSignals(False)
        self.select_filter(current if self._row_of(current) is not None else ("type", None))

    def _add(self, text: str, kind: tuple[str, Any]) -> None:
        item = QListWidgetItem(text)
        item.setData(SIDEBAR_KIND, kind)
        self.addItem(item)

    def current_filter(self) -> tuple[str, Any]:
        item = self.currentItem()
        kind = item.data(SIDEBAR_KIND) if item is not None else None
        return kind if kind else ("type", None)

    def _row_of(self, kind: tuple[str, Any]) -> int | None:
        for row in range(self.count()):
            if self.item(row).data(SIDEBAR_KIND) == kind:
                return row
        return None

    def select_filter(self, kind: tuple[str, Any]) -> None:
        row = self._row_of(kind)
        if row is not None:
            self.setCurrentRow(row)

    def item_for(self, kind: tuple[str, Any]) -> QListWidgetItem | None:
        row = self._row_of(kind)
        return None if row is None else self.item(row)


#: Where a long name may wrap although it has no space: after these (file names join
#: words with them).
_NAME_JOINERS = re.compile(r"([_\-.,)\]/\\])")


#: A run of letters and digits this long gets break points too (a hash, a name written
#: without separators); non-Latin scripts such as CJK wrap between characters already.
_LONG_RUN = re.compile(r"([A-Za-z0-9]{24})(?=[A-Za-z0-9])")


def breakable(name: str) -> str:
    """``name`` with invisible break points after ``_ - . , ) ] / \\`` and inside long runs
    of letters and digits, so that a label wraps a file name like
    ``sdxl_style_lora_v2.1-pruned_fp16`` (or a path) instead of growing to fit it."""
    return _LONG_RUN.sub("\\1\u200b", _NAME_JOINERS.sub("\\1\u200b", name))


UNVERIFIED_TIP = ("Its bytes never matched a SHA256 Civitai publishes for it (Civitai "
                  "publishes none, or it was linked by hand): it may not be the file "
                  "Civitai serves")


def removed_text(entry: LibraryEntry) -> str:
    """The detail pane's line about a model or version Civitai removed ("" when it is up)."""
    if entry.removed_at is None:
        return ""
    seen = entry.removed_at.astimezone().strftime("%Y-%m-%d")
    return (f"Removed from Civitai ({entry.removed_how}, seen {seen}). The library keeps "
            "its metadata, previews and trigger words.")


def verified_text(entry: LibraryEntry) -> str:
    if entry.verified:
        return "Yes: its SHA256 is the one Civitai publishes"
    if entry.identified:
        return "No: its bytes never matched a SHA256 from Civitai"
    return "No: not identified on Civitai"


_USER_LABELS = (  # what users wrote in other tools, in the order it is shown
    ("title", "Title"), ("activation_text", "Activation text"),
    ("preferred_weight", "Preferred weight"), ("tags", "Tags"), ("favorite", "Favourite"),
    ("sd_version", "SD version"), ("notes", "Notes"), ("description", "Description"),
    ("negative_text", "Negative prompt"),
)


def user_text(user: Mapping[str, Any]) -> str:
    """What the user wrote in other tools (A1111, Lora Manager, Stability Matrix), one
    field a line; empty when there is nothing."""
    lines = []
    for key, label in _USER_LABELS:
        value = user.get(key)
        if value in (None, "", [], False):
            continue
        if isinstance(value, list):
            value = ", ".join(map(str, value))
        elif value is True:
            value = "yes"
        lines.append(f"{label}: {value}")
    return "\n".join(lines)


class DetailPane(QWidget):
    """Everything known about the selected file."""

    copy_requested = Signal(str, str)  # text, what ("trigger word", "path", ...)
    download_update_requested = Signal(object)  # LibraryEntry
    link_requested = Signal(object)  # LibraryEntry

    def __init__(self, thumbnails: ThumbnailLoader, parent: QWidget | None = None,
                 sites: Callable[[], Sites] = lambda: CIVITAI_SITES) -> None:
        super().__init__(parent)
        self.setObjectName("detailPane")
        self.thumbnails = thumbnails
        self.sites = sites  # read when shown: the Settings page may change the sites
        self.entry: LibraryEntry | None = None
        self.allow_nsfw = False  # False: an NSFW model's preview is shown blurred
        self._preview_key: str | None = None
        thumbnails.thumbnail_ready.connect(self._thumbnail_ready)

        self.preview = QLabel()
        self.preview.setFixedSize(DETAIL_PREVIEW)
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.title = QLabel()
        self.title.setObjectName("detailTitle")
        self.subtitle = QLabel()
        self.unverified = QLabel("Unverified")
        self.unverified.setObjectName("unverifiedMark")
        self.unverified.setToolTip(UNVERIFIED_TIP)
        for label in (self.title, self.subtitle):
            # Wrapped to the pane: a long file name must not widen it beyond the window.
            label.setWordWrap(True)
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.update_label = QLabel()
        self.removed_label = QLabel()
        self.removed_label.setObjectName("removedFromCivitai")
        self.removed_label.setWordWrap(True)
        self.update_button = QPushButton("Download update")
        self.update_button.setObjectName("downloadUpdate")
        self.update_button.clicked.connect(
            lambda: self.entry and self.download_update_requested.emit(self.entry)
        )
        self.link_button = QPushButton("Link to Civitai model…")
        self.link_button.setObjectName("linkButton")
        self.link_button.clicked.connect(
            lambda: self.entry and self.link_requested.emit(self.entry)
        )

        self.fields = QFormLayout()
        self.fields.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        self._values: dict[str, QLabel] = {}
        for name in (
            "Type",
            "Base model",
            "Version",
            "Size",
            "Added",
            "Path",
            "SHA256",
            "Verified",
            "AutoV2",
            "Civitai",
        ):
            value = QLabel()
            value.setWordWrap(True)
            if name in ("Path", "SHA256", "Civitai"):
                # Long unbreakable text: clip it to the pane (full text in the tooltip and
                # selectable) rather than widen the pane beyond the window.
                value.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
                value.setWordWrap(False)
            # Selectable; only the link takes the keyboard focus (Tab would stop on each).
            value.setTextInteractionFlags(
                Qt.TextInteractionFlag.TextBrowserInteraction if name == "Civitai"
                else Qt.TextInteractionFlag.TextSelectableByMouse)
            value.setOpenExternalLinks(True)
            self._values[name] = value
            self.fields.addRow(name, value)

        self.words_title = QLabel("Trigger words")
        self.words_title.setObjectName("sectionTitle")
        self.words_box = QWidget()
        self.words_layout = _FlowRow(self.words_box)
        self.copy_words = QPushButton("Copy all")
        self.copy_words.setObjectName("copyTriggerWords")
        self.copy_words.clicked.connect(self._copy_all_words)

        self.user_title = QLabel("From your other tools")
        self.user_title.setObjectName("sectionTitle")
        self.user_notes = QLabel()
        self.user_notes.setObjectName("userNotes")
        self.user_notes.setTextFormat(Qt.TextFormat.PlainText)  # their text, never markup
        self.user_notes.setWordWrap(True)
        self.user_notes.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.user_notes.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.versions_title = QLabel("On disk")
        self.versions_title.setObjectName("sectionTitle")
        self.versions = QLabel()
        self.versions.setWordWrap(True)
        self.versions.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.versions.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        layout = QVBoxLayout(self)
        layout.addWidget(self.preview, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(self.title)
        layout.addWidget(self.subtitle)
        layout.addWidget(self.unverified, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.removed_label)
        row = QHBoxLayout()
        row.addWidget(self.update_label, 1)
        row.addWidget(self.update_button)
        layout.addLayout(row)
        layout.addWidget(self.link_button)
        layout.addLayout(self.fields)
        words_header = QHBoxLayout()
        words_header.addWidget(self.words_title, 1)
        words_header.addWidget(self.copy_words)
        layout.addLayout(words_header)
        layout.addWidget(self.words_box)
        layout.addWidget(self.user_title)
        layout.addWidget(self.user_notes)
        layout.addWidget(self.versions_title)
        layout.addWidget(self.versions)
        layout.addStretch(1)
        self.show_entry(None, LibrarySnapshot())

    def show_entry(self, entry: LibraryEntry | None, snapshot: LibrarySnapshot) -> None:
        self.entry = entry
        has = entry is not None
        for widget in (
            self.preview,
            self.title,
            self.subtitle,
            self.words_box,
            self.versions_title,
            self.versions,
        ):
            widget.setVisible(has)
        for i in range(self.fields.rowCount()):
            self.fields.setRowVisible(i, has)
        self.unverified.setVisible(has and entry is not None and is_unverified(entry))
        if entry is None:
            self.update_label.hide()
            self.removed_label.hide()
            self.update_button.hide()
            self.link_button.hide()
            self.words_title.hide()
            self.copy_words.hide()
            self.user_title.hide()
            self.user_notes.hide()
            return
        self.title.setText(breakable(display_name(entry)))
        self.title.setToolTip(display_name(entry))
        self.subtitle.setText(
            breakable(entry.file_name) if entry.model_name else "Not identified on Civitai")
        self._set_preview(entry)
        update = snapshot.updates.get(entry.model_id) if entry.model_id is not None else None
        self.update_label.setVisible(update is not None)
        self.update_button.setVisible(update is not None)
        if update is not None:
            self.update_label.setText(f"Update available: {update.latest_label()}")
            until = update.early_access_until()
            # Said on the button before a download is tried: Civitai refuses it until then.
            self.update_button.setText(f"Download update (early access until {until})"
                                       if until else "Download update")
        self.link_button.setVisible(not entry.identified)
        self.removed_label.setVisible(entry.removed)
        self.removed_label.setText(removed_text(entry))

        url = civitai_url(entry, self.sites())
        values = {
            "Type": type_label(entry.type),
            "Base model": entry.base_model or "—",
            "Version": entry.version_name or "—",
            "Size": format_size(entry.size),
            "Added": entry.added_at.astimezone().strftime("%Y-%m-%d %H:%M"),
            "Path": f"{entry.path}  (offline: its drive is not there)" if entry.offline
                    else entry.path,
            "SHA256": entry.sha256 or "not hashed yet",
            "Verified": verified_text(entry),
            "AutoV2": autov2(entry.sha256) if entry.sha256 else "—",
            "Civitai": f'<a href="{url}">{url}</a>' if url else "—",
        }
        for name, text in values.items():
            label = self._values[name]
            label.setTextFormat(
                Qt.TextFormat.RichText if name == "Civitai" else Qt.TextFormat.PlainText
            )
            label.setText(text)
            label.setToolTip(text if name in ("Path", "SHA256") else "")

        self.words_layout.clear()
        for word in entry.trained_words:
            chip = QToolButton()
            chip.setObjectName("chip")
            chip.setText(word)
            chip.setToolTip("Copy this trigger word")
            chip.clicked.connect(
                lambda _=False, w=word: self.copy_requested.emit(w, "trigger word")
            )
            self.words_layout.add(chip)
        self.words_title.setVisible(bool(entry.trained_words))
        self.copy_words.setVisible(bool(entry.trained_words))
        self.words_box.setVisible(bool(entry.trained_words))

        notes = user_text(entry.user)
        self.user_notes.setText(notes)
        self.user_title.setVisible(bool(notes))
        self.user_notes.setVisible(bool(notes))

        others = snapshot.versions_on_disk(entry.model_id) if entry.model_id else [entry]
        self.versions.setText(
            "\n".join(breakable(f"{e.version_name or e.file_name} — {e.path}") for e in others)
        )

    def set_allow_nsfw(self, allow: bool) -> None:
        self.allow_nsfw = allow
        if self.entry is not None:
            self._set_preview(self.entry)

    def _set_preview(self, entry: LibraryEntry) -> None:
        self._preview_key = None
        pixmap = None
        blurred = entry.nsfw and not self.allow_nsfw
        self.preview.setToolTip("NSFW (blurred: allow NSFW in Settings to see it)" if blurred
                                else "")  # fmt: skip
        if entry.preview:
            self._preview_key = thumbnail_key(entry.preview, DETAIL_PREVIEW, blurred=blurred)
            pixmap = self.thumbnails.pixmap(entry.preview, DETAIL_PREVIEW, blurred=blurred)
        if pixmap is not None:
            self.preview.setPixmap(pixmap)
        else:
            self.preview.clear()
            self.preview.setText("No preview" if not entry.preview else "Loading preview…")

    @Slot(str)
    def _thumbnail_ready(self, key: str) -> None:
        if key == self._preview_key:
            pixmap = self.thumbnails.cached(key)
            if pixmap is not None:
                self.preview.setPixmap(pixmap)

    def _copy_all_words(self) -> None:
        if self.entry is not None and self.entry.trained_words:
            self.copy_requested.emit(", ".join(self.entry.trained_words), "trigger words")


class _FlowRow:
    """Chips laid out in rows that wrap (a minimal flow layout on a vertical box)."""

    PER_ROW = 3

    def __init__(self, parent: QWidget) -> None:
        self.layout = QVBoxLayout(parent)
        self.layout.setContentsMargins(0, 0, 0, 0)
        self.layout.setSpacing(4)
        self._rows: list[QHBoxLayout] = []
        self._count = 0

    def clear(self) -> None:
        while self.layout.count():
            row = self.layout.takeAt(0).layout()
            while row is not None and row.count():
                widget = row.takeAt(0).widget()
                if widget is not None:
                    widget.setParent(None)  # gone from findChildren now, freed later
                    widget.deleteLater()
        self._rows.clear()
        self._count = 0

    def add(self, widget: QWidget) -> None:
        if self._count % self.PER_ROW == 0:
            row = QHBoxLayout()
            row.setSpacing(4)
            row.addStretch(1)
            self.layout.addLayout(row)
            self._rows.append(row)
        row = self._rows[-1]
        row.insertWidget(row.count() - 1, widget)
        self._count += 1


class _ProgressRelay(QObject):
    """Made on the GUI thread: emitting from a worker queues the call to the GUI thread."""

    progressed = Signal(int, int)


class LibraryPage(QWidget):
    """The Models page. ``scan_requested`` asks the window's scan controller to scan."""

    scan_requested = Signal()
    status_message = Signal(str)
    #: A fresh snapshot is on screen (tests and the window's status bar wait for it).
    snapshot_loaded = Signal(object)
    #: An action on a file failed; the message is one line for the user.
    action_failed = Signal(str)
    #: "Check for updates" is running: (models asked about so far, models to ask; 0 unknown).
    update_check_progressed = Signal(int, int)
    #: "Check for updates" ended: one line saying what it found (or why it failed).
    update_check_finished = Signal(str)

    def __init__(self, core: Any, thumbnails: ThumbnailLoader, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("libraryPage")
        self.core = core
        self.thumbnails = thumbnails
        self.opener = Opener(self)  # Show in folder, Open on Civitai
        self._downloads: Any = None
        self._loading: TaskHandle | None = None
        self._update_check: TaskHandle | None = None
        self._last_check: tuple[UpdateCheck, bool] | None = None  # and whether it was forced
        self._reload_again = False
        self._scan_running = False
        self._deleted_during_scan: list[str] = []

        self.model = LibraryModel(self)
        self.proxy = LibraryFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        self._build()
        self._connect()

    # -- construction -------------------------------------------------------------------------

    def _build(self) -> None:
        self.scan_button = QPushButton("Scan Library")
        self.scan_button.setObjectName("scanButton")
        self.scan_button.setToolTip("Hash new files in your library folders and identify them")
        self.updates_button = QPushButton("Check for updates")
        self.updates_button.setObjectName("checkUpdatesButton")
        self.updates_button.setToolTip(
            "Ask Civitai for the newest version of every identified model"
        )
        self.search = QLineEdit()
        self.search.setObjectName("librarySearch")
        self.search.setPlaceholderText("Search names, files, trigger words  (Ctrl+F)")
        self.search.setClearButtonEnabled(True)
        self.sort = QComboBox()
        self.sort.setObjectName("librarySort")
        for text, key, order in (
            ("Name", SortKey.NAME, Qt.SortOrder.AscendingOrder),
            ("Newest first", SortKey.DATE, Qt.SortOrder.DescendingOrder),
            ("Oldest first", SortKey.DATE, Qt.SortOrder.AscendingOrder),
            ("Largest first", SortKey.SIZE, Qt.SortOrder.DescendingOrder),
            ("Smallest first", SortKey.SIZE, Qt.SortOrder.AscendingOrder),
        ):
            self.sort.addItem(text, (key, order))
        self.base_model = QComboBox()
        self.base_model.setObjectName("libraryBaseModel")
        self.base_model.setToolTip("Only the models made for one base model: a LoRA or an "
                                   "embedding works with the checkpoints of its base")
        self.base_model.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.base_model.addItem(ALL_BASE_MODELS, None)
        toolbar = QHBoxLayout()
        toolbar.addWidget(self.scan_button)
        toolbar.addWidget(self.updates_button)
        toolbar.addWidget(self.search, 1)
        toolbar.addWidget(self.base_model)
        toolbar.addWidget(QLabel("Sort:"))
        toolbar.addWidget(self.sort)

        self.sidebar = TypeSidebar()
        self.grid = QListView()
        self.grid.setObjectName("libraryGrid")
        self.grid.setViewMode(QListView.ViewMode.IconMode)
        self.grid.setResizeMode(QListView.ResizeMode.Adjust)
        self.grid.setMovement(QListView.Movement.Static)
        self.grid.setUniformItemSizes(True)
        self.grid.setLayoutMode(QListView.LayoutMode.Batched)
        # The layout asks the model for an index per row: the proxy answers in C++ (see
        # LibraryFilterProxy), ~0.5 us a row, so a batch of 1,000 rows costs about 1 ms.
        self.grid.setBatchSize(LAYOUT_BATCH)
        self.grid.setGridSize(CardDelegate.card_size())
        self.grid.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.grid.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.grid.verticalScrollBar().setSingleStep(24)
        self.grid.setMouseTracking(True)
        self.grid.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        allow_nsfw = bool(getattr(self.core.settings, "allow_nsfw", False))
        self.delegate = CardDelegate(
            self.thumbnails, self.grid, allow_nsfw=allow_nsfw,
            snapshot=lambda: self.model.snapshot,  # badges without two more model calls a card
            # The proxy maps rows one to one: a view row is the model's row.
            entry=lambda index: self.model.entry_at(index.row()),
        )  # fmt: skip
        self.grid.setItemDelegate(self.delegate)
        self.grid.setModel(self.proxy)

        self.empty_hint = QLabel()
        self.empty_hint.setObjectName("emptyHint")
        self.empty_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_hint.setWordWrap(True)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.grid)
        self.stack.addWidget(self.empty_hint)

        self.detail = DetailPane(self.thumbnails, sites=lambda: self.core.sites)
        self.detail.allow_nsfw = allow_nsfw
        detail_scroll = QScrollArea()
        detail_scroll.setWidget(self.detail)
        detail_scroll.setWidgetResizable(True)
        detail_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        detail_scroll.setMinimumWidth(DETAIL_PREVIEW.width() + 48)

        self.splitter = QSplitter()
        self.splitter.setObjectName("librarySplitter")
        self.splitter.addWidget(self.sidebar)
        self.splitter.addWidget(self.stack)
        self.splitter.addWidget(detail_scroll)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([180, 820, DETAIL_PREVIEW.width() + 80])

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 0)
        layout.addLayout(toolbar)
        layout.addWidget(self.splitter, 1)

        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DELAY_MS)
        self._repaint_timer = QTimer(self)  # coalesces a burst of arriving thumbnails
        self._repaint_timer.setSingleShot(True)
        self._repaint_timer.setInterval(30)
        self._update_empty_hint()

    def _connect(self) -> None:
        self.scan_button.clicked.connect(self.scan_requested)
        self.updates_button.clicked.connect(self.check_all_updates)
        self.search.textChanged.connect(lambda _: self._search_timer.start())
        self.search.returnPressed.connect(self._apply_search)
        self._search_timer.timeout.connect(self._apply_search)
        self.sort.currentIndexChanged.connect(self._sort_changed)
        self.base_model.currentIndexChanged.connect(self._base_model_changed)
        self.sidebar.currentItemChanged.connect(self._sidebar_changed)
        self.grid.selectionModel().currentChanged.connect(self._current_changed)
        self.grid.customContextMenuRequested.connect(self._context_menu)
        self.grid.doubleClicked.connect(lambda index: self._open_folder(self._entry_at(index)))
        # A method, not a lambda: the loader outlives the page, and Qt disconnects a dead slot.
        self.thumbnails.thumbnail_ready.connect(self._thumbnail_arrived)
        self._repaint_timer.timeout.connect(self.grid.viewport().update)
        self.detail.copy_requested.connect(self._copy)
        self.detail.download_update_requested.connect(self.download_update)
        self.detail.link_requested.connect(self.link_to_civitai)
        self.proxy.rowsInserted.connect(self._update_empty_hint)
        self.proxy.rowsRemoved.connect(self._update_empty_hint)
        self.proxy.modelReset.connect(self._update_empty_hint)
        self.proxy.layoutChanged.connect(self._update_empty_hint)

        delete = QAction("Delete", self)
        delete.setShortcut(QKeySequence.StandardKey.Delete)
        delete.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        delete.triggered.connect(lambda: self.delete_entry(self.current_entry()))
        self.grid.addAction(delete)

    def set_allow_nsfw(self, allow: bool) -> None:
        """Show NSFW models' previews sharp (True) or blurred (the setting changed)."""
        if allow == self.delegate.allow_nsfw:
            return
        self.delegate.allow_nsfw = allow
        self.detail.set_allow_nsfw(allow)
        self.grid.viewport().update()

    def set_downloads(self, downloads: Any) -> None:
        """The download worker (``add(version_id, file_id=None, dest_dir=None)``) for updates."""
        self._downloads = downloads

    # -- loading ------------------------------------------------------------------------------

    @Slot()
    def refresh(self) -> None:
        """Read the library again in a worker; the grid keeps its filters and selection."""
        if self._loading is not None and not self._loading.done:
            self._reload_again = True  # something changed during the read: read once more
            return
        # Sorted, filtered and compared with the rows on screen in the worker too, for the
        # sort and filter of this moment: the GUI thread only applies the ranges that change.
        self._loading = run_task(
            load_change,
            self.core.library,
            self.model.rows,
            on_result=self._change_ready,
            on_error=self._load_failed,
            pool="db",
            name="load library",
            owner=self,
        )

    def _change_ready(self, change: RowChange) -> None:
        if self._reload_again:
            self._reload_again = False
            self._loading = None
            self.refresh()
            return
        current = self.current_entry()
        # Over a few event-loop turns when large; the page follows once all rows are in.
        self.model.apply_change(
            change, on_applied=lambda: self._rows_shown(change.rows.snapshot, current)
        )

    def _rows_shown(self, snapshot: LibrarySnapshot, current: LibraryEntry | None) -> None:
        self.sidebar.set_counts(snapshot)
        self._fill_base_models(snapshot)
        self._update_empty_hint()
        still_current = self.current_entry()
        if current is not None and still_current is not None and still_current.path == current.path:
            self.detail.show_entry(still_current, snapshot)  # fresh details, same place
        elif current is not None:
            self.select_path(current.path)
        else:
            self.detail.show_entry(None, snapshot)
        self.snapshot_loaded.emit(snapshot)

    @property
    def reloading(self) -> bool:
        """Whether a read of the library is under way or not all on screen yet."""
        loading = self._loading is not None and not self._loading.done
        return loading or self._reload_again or self.model.applying

    def _load_failed(self, exc: BaseException) -> None:
        self._reload_again = False
        self.status_message.emit(f"The library could not be read: {_user_message(exc)}")

    @property
    def snapshot(self) -> LibrarySnapshot:
        return self.model.snapshot

    # -- filters ------------------------------------------------------------------------------

    def focus_search(self) -> None:
        self.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search.selectAll()

    @Slot()
    def _apply_search(self) -> None:
        self._search_timer.stop()
        current = self.current_entry()
        self.proxy.set_search(self.search.text())
        self._keep_current(current)
        self._update_empty_hint()

    def _fill_base_models(self, snapshot: LibrarySnapshot) -> None:
        """The base models of the library, most files first; the choice is kept while any
        file of it is left, else the grid goes back to every base model."""
        chosen = self.base_model.currentData()
        counts = snapshot.base_model_counts()
        self.base_model.blockSignals(True)
        self.base_model.clear()
        self.base_model.addItem(ALL_BASE_MODELS, None)
        for base, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0].casefold())):
            self.base_model.addItem(f"{base} ({count:,})", base)
        row = self.base_model.findData(chosen) if chosen in counts else 0
        self.base_model.setCurrentIndex(row)
        self.base_model.blockSignals(False)
        if chosen is not None and row == 0:
            self._base_model_changed(0)

    @Slot(int)
    def _base_model_changed(self, row: int) -> None:
        current = self.current_entry()
        self.proxy.set_filter(base_model=self.base_model.itemData(row))
        self._keep_current(current)
        self._update_empty_hint()

    @Slot(int)
    def _sort_changed(self, row: int) -> None:
        key, order = self.sort.itemData(row)
        self.proxy.sort_by(key, order)

    def _sidebar_changed(self, current: QListWidgetItem | None, _previous: Any = None) -> None:
        kind = current.data(SIDEBAR_KIND) if current is not None else None
        if not kind:
            return
        what, value = kind
        current = self.current_entry()
        if what == "show":
            self.proxy.set_filter(model_type=None, show=value)
        else:
            self.proxy.set_filter(model_type=value, show=Show.ALL)
        self._keep_current(current)
        self._update_empty_hint()

    def _keep_current(self, entry: LibraryEntry | None) -> None:
        """After a filter change that rebuilt the rows, select ``entry`` again if shown."""
        if (
            entry is not None
            and self.current_entry() != entry
            and self.model.row_of(entry.path) is not None
        ):
            self.select_path(entry.path)

    def show_filter(self, kind: tuple[str, Any]) -> None:
        """Select a sidebar row: ``("type", "LORA")``, ``("show", Show.DUPLICATES)``…"""
        self.sidebar.select_filter(kind)

    def _update_empty_hint(self, *_: Any) -> None:
        if self.proxy.rowCount() > 0:
            self.stack.setCurrentWidget(self.grid)
            return
        if not self.model.total_count:
            text = (
                "No models in the library yet.\n\nAdd your model folders in Settings "
                "(Find folders looks where web UIs keep them), then press Scan Library."
            )
        elif self.proxy.show is Show.DUPLICATES:
            text = "No duplicate files: every file on disk is unique."
        elif self.proxy.show is Show.UPDATES:
            text = "Everything is up to date (as of the last update check)."
        elif self.proxy.show is Show.OFFLINE:
            text = "No offline files: every file in the library was on disk at the last scan."
        elif self.proxy.show is Show.REMOVED:
            text = "Nothing in the library was removed from Civitai (as far as civdesk has seen)."
        else:
            text = "Nothing matches this filter."
        self.empty_hint.setText(text)
        self.stack.setCurrentWidget(self.empty_hint)

    # -- selection ----------------------------------------------------------------------------

    def _entry_at(self, index: QModelIndex) -> LibraryEntry | None:
        return self.proxy.entry(index)

    def current_entry(self) -> LibraryEntry | None:
        return self._entry_at(self.grid.currentIndex())

    def reveal_version(self, version_id: int) -> bool:
        """Select a file of this version, clearing the filters that hide it; False when the
        library (as last read) has none."""
        entry = next((e for e in self.snapshot.entries if e.version_id == version_id), None)
        if entry is None:
            return False
        if self.select_path(entry.path):
            return True
        self.search.clear()
        self._apply_search()
        self.base_model.setCurrentIndex(0)
        self.sidebar.select_filter(("type", None))
        return self.select_path(entry.path)

    def select_path(self, path: str) -> bool:
        """Make the file the current card; False (and no current card) when it is not
        shown: a neighbour Qt made current when its row went must not stand in for it (a
        Delete would then act on the neighbour)."""
        row = self.model.row_of(path)
        index = self.proxy.mapFromSource(self.model.index(row, 0)) if row is not None else None
        if index is None or not index.isValid():
            selection = self.grid.selectionModel()
            selection.clearSelection()
            selection.clearCurrentIndex()
            self.detail.show_entry(None, self.snapshot)
            return False
        self.grid.setCurrentIndex(index)
        self.grid.scrollTo(index)
        self.detail.show_entry(self._entry_at(index), self.snapshot)
        return True

    @Slot(QModelIndex, QModelIndex)
    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self.detail.show_entry(self._entry_at(current), self.snapshot)

    # -- context menu and actions ---------------------------------------------------------

    def _context_menu(self, pos: QPoint) -> None:
        index = self.grid.indexAt(pos)
        entry = self._entry_at(index)
        if entry is None:
            return
        self.grid.setCurrentIndex(index)
        menu = self.build_context_menu(entry)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        # popup(), not exec(): no nested event loop while the menu is open.
        menu.popup(self.grid.viewport().mapToGlobal(pos))

    def build_context_menu(self, entry: LibraryEntry) -> QMenu:
        """The actions for one file (a method of its own so tests can trigger them)."""
        menu = QMenu(self)
        menu.setObjectName("libraryContextMenu")

        def add(text: str, slot: Callable[[], None], enabled: bool = True) -> QAction:
            action = menu.addAction(text)
            action.setEnabled(enabled)
            action.triggered.connect(slot)
            return action

        add("Open containing folder", lambda: self._open_folder(entry))
        add(
            "Copy trigger words",
            lambda: self._copy(", ".join(entry.trained_words), "trigger words"),
            bool(entry.trained_words),
        )
        add("Copy path", lambda: self._copy(entry.path, "path"))
        menu.addSeparator()
        add("Re-scan this file", lambda: self.rescan_file(entry))
        add("Check for update", lambda: self.check_update(entry), entry.model_id is not None)
        update = self.snapshot.updates.get(entry.model_id) if entry.model_id else None
        if update is not None:
            add("Download update", lambda: self.download_update(entry))
        if not entry.identified:
            add("Link to Civitai model…", lambda: self.link_to_civitai(entry))
        url = civitai_url(entry, self.core.sites)
        if url:
            add("Open on Civitai",
                lambda: self.opener.open(QUrl(url), "the model's page on Civitai"))
        menu.addSeparator()
        add("Delete file…", lambda: self.delete_entry(entry))
        return menu

    @Slot(str)
    def _thumbnail_arrived(self, _key: str) -> None:
        self._repaint_timer.start()  # coalesce a burst of thumbnails into one repaint

    def _open_folder(self, entry: LibraryEntry | None) -> None:
        if entry is not None:
            self.opener.open(QUrl.fromLocalFile(str(Path(entry.path).parent)), "the folder")

    @Slot(str, str)
    def _copy(self, text: str, what: str) -> None:
        QGuiApplication.clipboard().setText(text)
        self.status_message.emit(f"Copied {what} to the clipboard")

    def delete_entry(self, entry: LibraryEntry | None) -> None:
        """Ask, then delete the file and its companions in a worker."""
        if entry is None:
            return
        answer = QMessageBox.question(
            self,
            "Delete model file",
            f"Delete {entry.file_name} and its companion files (preview, info) from disk?\n\n"
            f"{entry.path}\n\nThis cannot be undone.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        if answer != QMessageBox.StandardButton.Yes:
            return
        if self._scan_running:  # the scan may store it and write its companions again
            self._deleted_during_scan.append(entry.path)

        def deleted(paths: list[str]) -> None:
            self.thumbnails.invalidate(entry.preview or "")
            self.model.remove_paths([entry.path])
            self.status_message.emit(
                f"Deleted {entry.file_name} and {len(paths) - 1} companion file(s)"
            )
            self.refresh()

        run_task(
            delete_with_companions,
            self.core.library,
            entry.path,
            on_result=deleted,
            on_error=self._action_failed,
            pool="disk",
            name="delete file",
            owner=self,
        )

    def scan_started(self) -> None:
        self._scan_running = True

    def scan_stopped(self) -> None:
        """Delete again what was deleted while the scan ran: it may have stored the file
        and written its companions after the delete."""
        self._scan_running = False
        paths, self._deleted_during_scan = self._deleted_during_scan, []
        if not paths:
            return
        run_task(delete_again, self.core.library, paths, on_result=lambda _: self.refresh(),
                 on_error=self._action_failed, pool="disk", name="delete again", owner=self)

    def rescan_file(self, entry: LibraryEntry) -> None:
        from civdesk.ui.scan import rescan_file

        self.status_message.emit(f"Re-scanning {entry.file_name}…")

        def done(_: Any) -> None:
            self.thumbnails.invalidate(entry.preview or "")
            self.status_message.emit(f"Re-scanned {entry.file_name}")
            self.refresh()

        run_task(
            rescan_file,
            self.core,
            entry.path,
            on_result=done,
            on_error=self._action_failed,
            pool="disk",
            name="re-scan file",
            owner=self,
        )

    def check_update(self, entry: LibraryEntry) -> None:
        if entry.model_id is None:
            return
        name = display_name(entry)
        self.status_message.emit(f"Checking {name} for updates…")

        def done(update: Any) -> None:
            if update is None:
                self.status_message.emit(f"{name} is up to date")
            else:
                latest = update.latest_name
                self.status_message.emit(f"Update available for {name}: {latest}")
            self.refresh()

        def work() -> Any:
            return check_model_update(self.core.library, self.core.client(), entry.model_id)

        run_task(
            work,
            on_result=done,
            on_error=self._action_failed,
            pool="network",
            name="check update",
            owner=self,
        )

    def check_all_updates(self) -> TaskHandle | None:
        """"Check for updates": ask Civitai about every identified model in a worker, report
        progress (``update_check_progressed``) and the outcome (``update_check_finished``),
        then read the library again so the Updates filter and badges show what it found."""
        return self._start_update_check(force=True, quiet=False)

    def check_updates_quietly(self) -> TaskHandle | None:
        """Ask Civitai only about models not asked about for a while (after a scan, at
        start-up), so the Update badges fill without the user asking.

        No dialog and no per-batch progress: ``update_check_progressed(0, 0)`` once, then
        ``update_check_finished`` with one line (a failure too: offline is no emergency).
        While any check runs, this returns the running one instead of starting another.
        """
        return self._start_update_check(force=False, quiet=True)

    @property
    def update_check_running(self) -> bool:
        return self._update_check is not None and not self._update_check.done

    def update_text_now(self) -> str | None:
        """The last update check's line, with the updates the library knows now (one was
        downloaded since, or a scan found one installed); None before any check."""
        if self._last_check is None:
            return None
        result, forced = self._last_check
        updates = list(self.snapshot.updates.values())
        return update_check_text(replace(result, updates=updates), forced=forced)

    def cancel_update_check(self) -> None:
        """Stop a running check between two batches (the window is closing)."""
        if self._update_check is not None:
            self._update_check.cancel()

    def _start_update_check(self, *, force: bool, quiet: bool) -> TaskHandle | None:
        if self.update_check_running:
            return self._update_check  # one at a time; the button is disabled meanwhile
        library, client = self.core.library, self.core.client()
        relay: _ProgressRelay | None = None
        if not quiet:
            relay = _ProgressRelay(self)
            relay.progressed.connect(self.update_check_progressed)
            self.status_message.emit("Checking the library for updates…")
        self.updates_button.setEnabled(False)
        self.update_check_progressed.emit(0, 0)

        def work(cancel: Any) -> UpdateCheck:
            return check_library_updates(
                library, client, force=force,
                progress=relay.progressed.emit if relay is not None else None, cancel=cancel,
            )  # fmt: skip

        def done(result: UpdateCheck) -> None:
            self._last_check = (result, force)
            text = update_check_text(result, forced=force)
            if not quiet:
                self.status_message.emit(text)
            self.update_check_finished.emit(text)
            self.refresh()

        def failed(exc: BaseException) -> None:
            text = f"Update check failed: {exc}" if isinstance(exc, CivdeskError) \
                else "Update check failed (see the log)"
            self.update_check_finished.emit(text)
            if quiet:
                self.status_message.emit(text)
            else:
                self._action_failed(exc)

        def finished() -> None:
            self.updates_button.setEnabled(True)
            if relay is not None:
                relay.deleteLater()

        self._update_check = run_task(
            work, on_result=done, on_error=failed, on_finished=finished, pool="network",
            name="check updates", cancellable=True, owner=self,
        )  # fmt: skip
        return self._update_check

    def download_update(self, entry: LibraryEntry) -> None:
        update = self.snapshot.updates.get(entry.model_id) if entry.model_id else None
        if update is None:
            return
        if self._downloads is None:
            self.status_message.emit("Downloads are not available")
            return
        # Next to the version already on disk: the user chose that folder.
        self._downloads.add(update.latest_version_id, None, str(Path(entry.path).parent))
        name = update.latest_name
        self.status_message.emit(f"Queued {update.model_name} {name} for download")

    def link_to_civitai(self, entry: LibraryEntry) -> None:
        text, ok = QInputDialog.getText(
            self,
            "Link to Civitai model",
            f"Which Civitai model is {entry.file_name}?\n"
            "Paste its page address (civitai.com/models/… or civitai.red/models/…), or a "
            "model or version id:",
        )
        if not ok or not text.strip():
            return
        from civdesk.ui.scan import link_file

        self.status_message.emit(f"Linking {entry.file_name}…")

        def done(_: Any) -> None:
            self.status_message.emit(f"Linked {entry.file_name} to Civitai")
            self.refresh()

        run_task(
            link_file,
            self.core,
            entry.path,
            text.strip(),
            on_result=done,
            on_error=self._action_failed,
            pool="network",
            name="link file",
            owner=self,
        )

    def _action_failed(self, exc: BaseException) -> None:
        message = _user_message(exc)
        self.status_message.emit(message)
        self.action_failed.emit(message)
        # open(), not exec(): window-modal without blocking the event loop.
        box = QMessageBox(
            QMessageBox.Icon.Warning, "civdesk", message, QMessageBox.StandardButton.Ok, self
        )
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
