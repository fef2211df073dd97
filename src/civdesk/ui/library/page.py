"""The Models page: the local library as a grid of cards, with a type sidebar and details.

The page is a view of :class:`~civdesk.ui.services.library.LibraryService`: the service
reads the library, scans, checks updates and acts on files (in workers); the page shows its
model, asks the user what needs asking, and passes the answers on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import (
    QModelIndex,
    QPersistentModelIndex,
    QPoint,
    QSettings,
    QSize,
    Qt,
    QTimer,
    QUrl,
    Signal,
    Slot,
)
from PySide6.QtGui import QAction, QGuiApplication, QKeyEvent, QKeySequence, QResizeEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListView,
    QListWidgetItem,
    QMenu,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSlider,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from civdesk.core.library.repository import LibraryEntry
from civdesk.ui.grid_layout import justify
from civdesk.ui.library.delegate import CardDelegate
from civdesk.ui.library.detail import DETAIL_PREVIEW, DetailPane, civitai_url
from civdesk.ui.library.model import LibraryFilterProxy, LibraryModel
from civdesk.ui.library.rows import LibrarySnapshot, Show, SortKey
from civdesk.ui.library.sidebar import SIDEBAR_KIND, SidebarKind, TypeSidebar
from civdesk.ui.opener import Opener
from civdesk.ui.services.library import Downloads, LibraryService
from civdesk.ui.tasks import TaskHandle
from civdesk.ui.thumbnails import ThumbnailLoader

if TYPE_CHECKING:
    from civdesk.core.context import Core

log = logging.getLogger(__name__)

SEARCH_DELAY_MS = 150
LAYOUT_BATCH = 1000  # rows the grid lays out per event-loop turn
#: The base-model filter's first choice: no filter.
ALL_BASE_MODELS = "All base models"
#: The card-size slider: per cent of the cards' natural size (persisted in window.ini).
CARD_SCALE_MIN, CARD_SCALE_MAX, CARD_SCALE_DEFAULT = 60, 160, 100
CARD_SCALE_KEY = "library/card_scale"
#: The grid keeps at least this many columns of cards (at their natural size): in a narrow
#: window the type sidebar gives way first, then the detail pane takes its least width.
MIN_COLUMNS = 2


def count_text(shown: int, total: int) -> str:
    """What the grid shows, saying what it counts: files, and how many of them."""
    noun = "model file" if total == 1 else "model files"
    if shown == total:
        return f"{total:,} {noun}"
    return f"{shown:,} of {total:,} {noun} shown"


class LibraryGrid(QListView):
    """The card grid: cards spread over the whole width, and the keyboard of a file manager
    (arrows, Home/End, Page Up/Down move; Enter opens the details; the Menu key or
    Shift+F10 opens the context menu)."""

    open_requested = Signal(QModelIndex)
    menu_requested = Signal(QPoint)  # in viewport coordinates, like customContextMenuRequested

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.card = CardDelegate.card_size()

    def set_card_size(self, card: QSize) -> None:
        self.card = card
        self._justify()

    def resizeEvent(self, event: QResizeEvent) -> None:
        self._justify()
        super().resizeEvent(event)

    def width_for(self, columns: int) -> int:
        """The grid's width (frame and scroll bar included) that fits ``columns`` cards."""
        return (columns * self.card.width() + self.verticalScrollBar().sizeHint().width()
                + 2 * self.frameWidth() + 1)

    def columns(self) -> int:
        """How many cards a row holds now."""
        return max(1, self.viewport().width() // max(1, self.gridSize().width()))

    def _justify(self) -> None:
        justify(self, self.card)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key, mods = event.key(), event.modifiers()
        current = self.currentIndex()
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and current.isValid():
            self.open_requested.emit(current)
            return
        shift_f10 = key == Qt.Key.Key_F10 and mods & Qt.KeyboardModifier.ShiftModifier
        if (key == Qt.Key.Key_Menu or shift_f10) and current.isValid():
            self.scrollTo(current)
            self.menu_requested.emit(self.visualRect(current).center())
            return
        super().keyPressEvent(event)


class EmptyLibrary(QWidget):
    """What the page shows before the library has any file: what to do, and the buttons."""

    find_folders_requested = Signal()
    add_folder_requested = Signal()
    scan_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("emptyLibrary")
        title = QLabel("Your model library is empty")
        title.setObjectName("emptyTitle")
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        font = title.font()
        font.setPointSizeF(font.pointSizeF() * 1.4)
        font.setBold(True)
        title.setFont(font)
        # Lines broken by hand: a word-wrapped label in a stacked page gets too little
        # height from its layout and is cut.
        self.text = QLabel(
            "civdesk shows the models you keep on disk. Tell it where they are:\n"
            "it can look where A1111, Forge, ComfyUI and Stability Matrix keep them,\n"
            "or you pick a folder. Then a scan identifies each file on Civitai.")
        self.text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.find_button = QPushButton("Find model folders")
        self.find_button.setObjectName("emptyFindFolders")
        self.find_button.setToolTip("Look where A1111, Forge, ComfyUI and Stability Matrix "
                                    "keep their models, and add the folders found")
        self.add_button = QPushButton("Add a folder…")
        self.add_button.setObjectName("emptyAddFolder")
        self.scan_button = QPushButton("Scan Library")
        self.scan_button.setObjectName("emptyScan")
        self.folders = QLabel()
        self.folders.setObjectName("emptyFolders")
        self.folders.setWordWrap(True)
        self.folders.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.find_button.clicked.connect(self.find_folders_requested)
        self.add_button.clicked.connect(self.add_folder_requested)
        self.scan_button.clicked.connect(self.scan_requested)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for button in (self.find_button, self.add_button, self.scan_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        layout.addWidget(title)
        layout.addWidget(self.text, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addLayout(buttons)
        layout.addWidget(self.folders)
        layout.addStretch(2)

    def show_folders(self, folders: list[str]) -> None:
        """The scan button is the default once folders are set; they are listed."""
        self.scan_button.setEnabled(bool(folders))
        self.scan_button.setDefault(bool(folders))
        self.find_button.setDefault(not folders)
        self.folders.setText("Folders to scan: " + ", ".join(folders) if folders else
                             "No folders to scan yet.")


class LibraryPage(QWidget):
    """The Models page, a view of a :class:`LibraryService` (made here when none is given).
    ``scan_requested`` asks the window to scan (it checks the folders first)."""

    scan_requested = Signal()
    find_folders_requested = Signal()
    add_folder_requested = Signal()
    status_message = Signal(str)
    #: A fresh snapshot is on screen (tests and the window's status bar wait for it).
    snapshot_loaded = Signal(object)
    #: An action on a file failed; the message is one line for the user.
    action_failed = Signal(str)
    #: "Check for updates" is running: (models asked about so far, models to ask; 0 unknown).
    update_check_progressed = Signal(int, int)
    #: An update check ended: one line saying what it found (or why it failed).
    update_check_finished = Signal(str)
    #: The count line changed ("120 of 340 model files shown").
    count_changed = Signal(str)

    def __init__(self, core: Core, thumbnails: ThumbnailLoader, parent: QWidget | None = None,
                 *, service: LibraryService | None = None,
                 state: QSettings | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("libraryPage")
        self.core = core
        self.thumbnails = thumbnails
        self.service = service if service is not None else LibraryService(core, self)
        self.state = state  # where the card size is kept (the window's INI file)
        self.opener = Opener(self)  # Show in folder, Open on Civitai
        self._current_before_change: LibraryEntry | None = None
        self.model: LibraryModel = self.service.model
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
        self.sort.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
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
        self.card_scale = QSlider(Qt.Orientation.Horizontal)
        self.card_scale.setObjectName("cardSize")
        self.card_scale.setToolTip("Card size")
        self.card_scale.setAccessibleName("Card size")
        self.card_scale.setRange(CARD_SCALE_MIN, CARD_SCALE_MAX)
        self.card_scale.setSingleStep(10)
        self.card_scale.setPageStep(20)
        self.card_scale.setFixedWidth(96)
        self.count_label = QLabel()
        self.count_label.setObjectName("libraryShownCount")
        toolbar = QHBoxLayout()
        toolbar.addWidget(self.scan_button)
        toolbar.addWidget(self.updates_button)
        toolbar.addWidget(self.search, 1)
        toolbar.addWidget(self.base_model)
        toolbar.addWidget(QLabel("Sort:"))
        toolbar.addWidget(self.sort)
        toolbar.addWidget(self.card_scale)

        self.sidebar = TypeSidebar()
        self.grid = LibraryGrid()
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
        allow_nsfw = bool(self.core.settings.allow_nsfw)
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
        self.empty_library = EmptyLibrary()
        self.stack = QStackedWidget()
        self.stack.addWidget(self.grid)
        self.stack.addWidget(self.empty_hint)
        self.stack.addWidget(self.empty_library)
        centre = QWidget()
        centre_layout = QVBoxLayout(centre)
        centre_layout.setContentsMargins(0, 0, 0, 0)
        centre_layout.addWidget(self.stack, 1)
        centre_layout.addWidget(self.count_label)

        self.detail = DetailPane(self.thumbnails, sites=lambda: self.core.sites)
        self.detail.allow_nsfw = allow_nsfw
        self.detail_scroll = QScrollArea()
        self.detail_scroll.setObjectName("detailScroll")
        self.detail_scroll.setWidget(self.detail)
        self.detail_scroll.setWidgetResizable(True)
        self.detail_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.detail_scroll.setMinimumWidth(DETAIL_PREVIEW.width() + 48)
        self.detail_scroll.hide()  # collapsed until a card is selected
        self.detail_scroll.setMaximumWidth(DETAIL_PREVIEW.width() + 160)

        self.splitter = QSplitter()
        self.splitter.setObjectName("librarySplitter")
        self.splitter.addWidget(self.sidebar)
        self.splitter.addWidget(centre)
        self.splitter.addWidget(self.detail_scroll)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setCollapsible(1, False)
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
        scale = CARD_SCALE_DEFAULT
        if self.state is not None:
            try:
                scale = int(str(self.state.value(CARD_SCALE_KEY, CARD_SCALE_DEFAULT)))
            except (TypeError, ValueError):
                scale = CARD_SCALE_DEFAULT
        self.card_scale.setValue(scale)
        self._apply_card_scale(self.card_scale.value())
        self._update_empty_hint()

    def _connect(self) -> None:
        service = self.service
        service.status_message.connect(self.status_message)
        service.action_failed.connect(self._show_failure)
        service.rows_about_to_change.connect(self._note_current)
        service.snapshot_loaded.connect(self._rows_shown)
        service.update_check_progressed.connect(self.update_check_progressed)
        service.update_check_finished.connect(self.update_check_finished)
        service.update_check_running_changed.connect(
            lambda running: self.updates_button.setEnabled(not running))
        service.preview_changed.connect(self.thumbnails.invalidate)
        service.scans.started.connect(self._scan_running_changed)
        service.scans.stopped.connect(self._scan_running_changed)
        self.scan_button.clicked.connect(self.scan_requested)
        self.updates_button.clicked.connect(self.check_all_updates)
        self.empty_library.scan_requested.connect(self.scan_requested)
        self.empty_library.find_folders_requested.connect(self.find_folders_requested)
        self.empty_library.add_folder_requested.connect(self.add_folder_requested)
        self.search.textChanged.connect(lambda _: self._search_timer.start())
        self.search.returnPressed.connect(self._apply_search)
        self._search_timer.timeout.connect(self._apply_search)
        self.sort.currentIndexChanged.connect(self._sort_changed)
        self.base_model.currentIndexChanged.connect(self._base_model_changed)
        self.card_scale.valueChanged.connect(self._card_scale_changed)
        self.sidebar.currentItemChanged.connect(self._sidebar_changed)
        self.grid.selectionModel().currentChanged.connect(self._current_changed)
        self.grid.customContextMenuRequested.connect(self._context_menu)
        self.grid.menu_requested.connect(self._context_menu)
        self.grid.open_requested.connect(self.open_detail)
        self.grid.doubleClicked.connect(lambda index: self._open_folder(self._entry_at(index)))
        # A method, not a lambda: the loader outlives the page, and Qt disconnects a dead slot.
        self.thumbnails.thumbnail_ready.connect(self._thumbnail_arrived)
        self._repaint_timer.timeout.connect(self.grid.viewport().update)
        self.detail.copy_requested.connect(self._copy)
        self.detail.download_update_requested.connect(self.download_update)
        self.detail.link_requested.connect(self.link_to_civitai)
        for signal in (self.proxy.rowsInserted, self.proxy.rowsRemoved, self.proxy.modelReset,
                       self.proxy.layoutChanged):
            signal.connect(self._update_empty_hint)

        delete = QAction("Delete", self)
        delete.setShortcut(QKeySequence.StandardKey.Delete)
        delete.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        delete.triggered.connect(lambda: self.delete_entry(self.current_entry()))
        self.grid.addAction(delete)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit_panes()

    def minimumSizeHint(self) -> QSize:
        """Without the type sidebar, which folds away when the page gets narrow: it must
        not hold the window wider than the grid and details need."""
        hint = super().minimumSizeHint()
        if self.sidebar.isVisibleTo(self):
            hint.setWidth(hint.width() - self.sidebar.minimumWidth()
                          - self.splitter.handleWidth())
        return hint

    def _fit_panes(self) -> None:
        """Keep :data:`MIN_COLUMNS` columns of cards: the type sidebar folds away when the
        grid would get fewer beside it (and the detail pane), and comes back with room."""
        total = self.splitter.width()
        handle = self.splitter.handleWidth()
        detail = self.detail_scroll.isVisibleTo(self)
        detail_width = self.detail_scroll.minimumWidth() + handle if detail else 0
        sidebar_width = self.sidebar.minimumWidth() + handle
        room = total - detail_width - sidebar_width
        need = self.grid.width_for(MIN_COLUMNS)
        # An empty library has nothing to filter: its first steps get the whole page.
        show_sidebar = room >= need and bool(self.model.total_count)
        if show_sidebar != self.sidebar.isVisibleTo(self):
            self.sidebar.setVisible(show_sidebar)
        if detail and self.grid.width() < need:
            # The detail pane at its least width: the room it gave up goes to the grid.
            sizes = self.splitter.sizes()
            sizes[2] = self.detail_scroll.minimumWidth()
            sizes[1] = max(0, total - sizes[2] - (sizes[0] + handle if show_sidebar else 0)
                           - handle)
            self.splitter.setSizes(sizes)

    def set_allow_nsfw(self, allow: bool) -> None:
        """Show NSFW models' previews sharp (True) or blurred (the setting changed)."""
        if allow == self.delegate.allow_nsfw:
            return
        self.delegate.allow_nsfw = allow
        self.detail.set_allow_nsfw(allow)
        self.grid.viewport().update()

    def set_downloads(self, downloads: Downloads | None) -> None:
        """The download queue (``add(version_id, file_id=None, dest_dir=None)``) for updates."""
        self.service.set_downloads(downloads)

    # -- card size ----------------------------------------------------------------------------

    @Slot(int)
    def _card_scale_changed(self, scale: int) -> None:
        self._apply_card_scale(scale)
        if self.state is not None:
            self.state.setValue(CARD_SCALE_KEY, scale)

    def _apply_card_scale(self, scale: int) -> None:
        self.delegate.set_scale(scale / 100)
        self.grid.set_card_size(self.delegate.scaled_card_size())
        self.grid.viewport().update()

    # -- loading ------------------------------------------------------------------------------

    @Slot()
    def refresh(self) -> None:
        """Read the library again (the service does, in a worker); filters and selection
        stay."""
        self.service.refresh()

    @property
    def reloading(self) -> bool:
        """Whether a read of the library is under way or not all on screen yet."""
        return self.service.reloading

    @property
    def snapshot(self) -> LibrarySnapshot:
        return self.model.snapshot

    @Slot()
    def _note_current(self) -> None:
        self._current_before_change = self.current_entry()

    def _rows_shown(self, snapshot: LibrarySnapshot) -> None:
        current, self._current_before_change = self._current_before_change, None
        self.sidebar.set_counts(snapshot)
        self._fill_base_models(snapshot)
        self._update_empty_hint()
        still_current = self.current_entry()
        if current is not None and still_current is not None and still_current.path == current.path:
            self.detail.show_entry(still_current, snapshot)  # fresh details, same place
        elif current is not None:
            self.select_path(current.path)
        else:
            self._show_detail(None)
        self.snapshot_loaded.emit(snapshot)

    def count_text(self) -> str:
        return count_text(self.proxy.rowCount(), self.model.total_count)

    @Slot()
    def folders_changed(self) -> None:
        """The library folders changed (Settings, Find folders): the empty state lists them."""
        self._update_empty_hint()

    @Slot()
    def _scan_running_changed(self) -> None:
        self.scan_button.setEnabled(not self.service.scan_running)
        self.empty_library.scan_button.setEnabled(not self.service.scan_running)

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

    def _sidebar_changed(self, item: QListWidgetItem | None, _previous: Any = None) -> None:
        kind = item.data(SIDEBAR_KIND) if item is not None else None
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

    def show_filter(self, kind: SidebarKind) -> None:
        """Select a sidebar row: ``("type", "LORA")``, ``("show", Show.DUPLICATES)``…"""
        self.sidebar.select_filter(kind)

    def _update_empty_hint(self, *_: Any) -> None:
        text = self.count_text()
        if text != self.count_label.text():
            self.count_label.setText(text)
            self.count_changed.emit(text)
        # Under the grid only while a filter hides some (the status bar has the total).
        self.count_label.setVisible(self.proxy.rowCount() != self.model.total_count)
        # Filters, sort and card size act on files: nothing to act on before the first
        # (the search box stays: Ctrl+F goes there on any page).
        for control in (self.updates_button, self.base_model, self.sort, self.card_scale):
            control.setEnabled(bool(self.model.total_count)
                               and (control is not self.updates_button
                                    or not self.service.update_check_running))
        if self.proxy.rowCount() > 0:
            self.stack.setCurrentWidget(self.grid)
            self._fit_panes()
            return
        if not self.model.total_count:
            self.empty_library.show_folders(list(self.core.settings.library_folders))
            self.stack.setCurrentWidget(self.empty_library)
            self._fit_panes()
            return
        if self.proxy.show is Show.DUPLICATES:
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

    def _entry_at(self, index: QModelIndex | QPersistentModelIndex) -> LibraryEntry | None:
        return self.proxy.entry(index)

    def current_entry(self) -> LibraryEntry | None:
        return self._entry_at(self.grid.currentIndex())

    def _show_detail(self, entry: LibraryEntry | None) -> None:
        """The detail pane shows the selected file, and folds away when there is none."""
        self.detail.show_entry(entry, self.snapshot)
        if self.detail_scroll.isVisibleTo(self) != (entry is not None):
            self.detail_scroll.setVisible(entry is not None)
            self._fit_panes()

    def open_detail(self, index: QModelIndex) -> None:
        """Enter on a card: its details, with the keyboard focus in the pane."""
        entry = self._entry_at(index)
        if entry is not None:
            self._show_detail(entry)
            self.detail_scroll.setFocus(Qt.FocusReason.OtherFocusReason)

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
            self._show_detail(None)
            return False
        self.grid.setCurrentIndex(index)
        self.grid.scrollTo(index)
        self._show_detail(self._entry_at(index))
        return True

    @Slot(QModelIndex, QModelIndex)
    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self._show_detail(self._entry_at(current))

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

        def add(text: str, slot: Callable[[], object], enabled: bool = True) -> QAction:
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
        self.service.delete(entry)

    def rescan_file(self, entry: LibraryEntry) -> TaskHandle:
        return self.service.rescan(entry)

    def check_update(self, entry: LibraryEntry) -> TaskHandle | None:
        return self.service.check_update(entry)

    def check_all_updates(self) -> TaskHandle | None:
        """"Check for updates": ask Civitai about every identified model (the service)."""
        return self.service.check_all_updates()

    def check_updates_quietly(self) -> TaskHandle | None:
        return self.service.check_updates_quietly()

    @property
    def update_check_running(self) -> bool:
        return self.service.update_check_running

    def update_text_now(self) -> str | None:
        return self.service.update_text_now()

    def cancel_update_check(self) -> None:
        self.service.cancel_update_check()

    def download_update(self, entry: LibraryEntry) -> None:
        self.service.download_update(entry)

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
        self.service.link(entry, text.strip())

    def _show_failure(self, message: str) -> None:
        self.action_failed.emit(message)
        # open(), not exec(): window-modal without blocking the event loop.
        box = QMessageBox(
            QMessageBox.Icon.Warning, "civdesk", message, QMessageBox.StandardButton.Ok, self
        )
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
