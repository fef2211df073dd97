"""The main window: a sidebar of pages (Civitai, Models, Downloads, Settings), the status
area (the library's work, the downloads' line and count), the tray.

The window only wires: the download queue is the :class:`DownloadService`'s, pages and the
status area are its views. It owns what outlives a page: the scan controller, the thumbnail
loader, the notifier. Geometry and the last page are kept in an INI file under the config
folder (not the registry), so a data dir carries its own window.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from PySide6.QtCore import QSettings, QSize, Qt, Signal, Slot
from PySide6.QtGui import QAction, QCloseEvent, QIcon, QKeySequence, QResizeEvent, QShortcut
from PySide6.QtWidgets import QHBoxLayout, QMainWindow, QStackedWidget, QVBoxLayout, QWidget

from civdesk.core.downloads.queue import TaskSnapshot
from civdesk.core.scanner import ScanProgress, ScanSummary
from civdesk.ui import icons
from civdesk.ui.browser.page import BrowserPage
from civdesk.ui.downloads.indicator import DownloadsIndicator
from civdesk.ui.downloads.messages import failure_reason, task_title
from civdesk.ui.downloads.page import DownloadsPage
from civdesk.ui.key_dialog import KeyGate
from civdesk.ui.library.page import LibraryPage
from civdesk.ui.navigation import NAV_PAGES, NavigationBar
from civdesk.ui.rate_status import RateLimitStatus
from civdesk.ui.scan import progress_counts, summary_text
from civdesk.ui.services.downloads import DownloadService
from civdesk.ui.services.library import LibraryService
from civdesk.ui.settings_page import SettingsPage
from civdesk.ui.status_line import ActivityLine, StatusLine, scan_progress_text
from civdesk.ui.thumbnails import ThumbnailLoader
from civdesk.ui.transfer import LibraryTransfer
from civdesk.ui.tray import Notifier, Tray, tray_available

if TYPE_CHECKING:
    from civdesk.core.context import Core
    from civdesk.ui.library.model import LibrarySnapshot

log = logging.getLogger(__name__)

PAGES = tuple(name for name, _label, _keys in NAV_PAGES)
DEFAULT_PAGE = "models"
STATUS_MS = 6000


def window_settings(core: Core) -> QSettings:
    """The window's own state (geometry, last page), in the data dir's config folder."""
    return QSettings(str(core.paths.config / "window.ini"), QSettings.Format.IniFormat)


class MainWindow(QMainWindow):
    """civdesk's one window. ``shutdown()`` stops its workers; ``close()`` calls it."""

    #: The window asked the application to quit (tray Quit, or close without the tray).
    quit_requested = Signal()

    def __init__(
        self,
        core: Core,
        *,
        thumbnails: ThumbnailLoader | None = None,
        icon: QIcon | None = None,
        tray_icon: QIcon | None = None,
        use_tray: bool | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("mainWindow")
        self.setWindowTitle("civdesk")
        if icon is not None:
            self.setWindowIcon(icon)
        self.core = core
        # No animated re-layouts: each animation's QObject, deleted afterwards on the
        # GUI thread, asks Python about its target under Qt's signal-slot lock, and a
        # worker holding the GIL while it waits for that lock deadlocks the pair (seen in
        # bench_gui: ~QPropertyAnimation -> Sbk_GetPyOverride -> GilState::acquire).
        self.setAnimated(False)
        self._quitting = False
        self._status_text = ""  # the status bar's message, whole
        self._shut_down = False
        self._startup_check_due = True  # one quiet update check once the library is read
        # The Civitai page's badges lag the library while that page is hidden (read again
        # when it is shown): a reload during a scan need not pay for a page off screen.
        self._browser_library_stale = False
        # The scan's outcome, kept for the activity line while the quiet check after it runs.
        self._scan_text: str | None = None
        self._update_line: str | None = None  # the update check line the activity shows
        #: The NSFW preference last passed to the pages: a save of any other setting must
        #: not reset the Civitai page's own NSFW box (and with it the results shown).
        self._allow_nsfw = bool(core.settings.allow_nsfw)
        self.thumbnails = thumbnails or ThumbnailLoader.for_core(core, self)
        self.notifier = Notifier(self)
        self.library_service = LibraryService(core, self)
        self.scans = self.library_service.scans

        self.browser = BrowserPage(core, self.thumbnails)
        self.library = LibraryPage(core, self.thumbnails, service=self.library_service,
                                   state=window_settings(core))
        self.settings_page = SettingsPage(core, library=self.library_service)
        #: The download queue and its thread; every view and caller goes through it.
        self.downloads = DownloadService(core, self)
        self.downloads_page = DownloadsPage(self.downloads)
        self.transfer = LibraryTransfer(core, self.downloads, self,
                                        scanning=lambda: self.scans.running)
        self._build()
        self._connect()

        self.tray: Tray | None = None
        if use_tray if use_tray is not None else tray_available():
            # The one-colour tray glyph (a mask on macOS), not the full-colour app icon.
            self.tray = Tray(tray_icon or icons.tray_icon(), self.notifier, self)
            self.tray.show_requested.connect(self.bring_to_front)
            self.tray.quit_requested.connect(self.quit)
            self.tray.pause_toggled.connect(self._tray_pause_toggled)
            self.tray.set_paused(self.downloads.paused)  # a pause outlives a restart

        self._restore_state()
        self.library.refresh()

    # -- construction -------------------------------------------------------------------------

    def _build(self) -> None:
        self.pages = QStackedWidget()
        self.pages.setObjectName("pages")
        self._page_widgets: dict[str, QWidget] = {
            "civitai": self.browser,
            "models": self.library,
            "downloads": self.downloads_page,
            "settings": self.settings_page,
        }
        for widget in self._page_widgets.values():
            self.pages.addWidget(widget)
        self.nav = NavigationBar()
        self.nav.page_chosen.connect(self.show_page)
        #: The scan's and update checks' line, under every page.
        self.activity = ActivityLine()
        body = QWidget()
        body.setObjectName("body")
        row = QHBoxLayout(body)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(0)
        row.addWidget(self.nav)
        column = QVBoxLayout()
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.pages, 1)
        column.addWidget(self.activity)
        row.addLayout(column, 1)
        self.setCentralWidget(body)

        # Ctrl+1..4 (window-wide, whichever widget has the focus).
        self.page_actions: dict[str, QAction] = {}
        for name, text, key in NAV_PAGES:
            action = QAction(text, self)
            action.setObjectName(f"show_{name}")
            action.setShortcut(QKeySequence(key))
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            action.triggered.connect(lambda _=False, n=name: self.show_page(n))
            self.addAction(action)
            self.page_actions[name] = action

        file_menu = self.menuBar().addMenu("&File")
        scan = file_menu.addAction("Scan Library")
        scan.triggered.connect(self.start_scan)
        file_menu.addSeparator()
        self.export_action = file_menu.addAction("Export library…")
        self.export_action.setObjectName("exportLibrary")
        self.export_action.triggered.connect(self.transfer.export)
        self.restore_action = file_menu.addAction("Restore from manifest…")
        self.restore_action.setObjectName("restoreLibrary")
        self.restore_action.triggered.connect(self.transfer.restore)
        file_menu.addSeparator()
        quit_action = file_menu.addAction("Quit")
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.setMenuRole(QAction.MenuRole.QuitRole)
        quit_action.triggered.connect(self.quit)
        help_menu = self.menuBar().addMenu("&Help")
        about = help_menu.addAction("About civdesk")
        about.setMenuRole(QAction.MenuRole.AboutRole)
        about.triggered.connect(self.show_about)

        # A new count after each reload must not re-lay out the window (see StatusLine);
        # wide enough for a library of a million files.
        self.count_label = StatusLine()
        self.count_label.setObjectName("libraryCount")
        # Flush right: a long message on its left is cut where the count begins.
        self.count_label.label.setAlignment(Qt.AlignmentFlag.AlignRight
                                            | Qt.AlignmentFlag.AlignVCenter)
        self.count_label.setFixedWidth(
            self.count_label.fontMetrics().horizontalAdvance("0,000,000 model files") + 8)
        self.statusBar().addPermanentWidget(self.count_label)
        # Shown only while Civitai rate limits civdesk (all its work then pauses).
        self.rate_label = StatusLine()
        self.rate_label.setObjectName("rateLimitStatus")
        self.rate_label.setFixedWidth(self.rate_label.fontMetrics().horizontalAdvance(
            "Civitai rate limit: speeding up again") + 8)
        self.rate_label.hide()
        self.statusBar().insertPermanentWidget(0, self.rate_label)
        self.rate_status = RateLimitStatus(self.core, self)
        self.rate_status.changed.connect(self._show_rate_status)
        # The downloads in one line and a count; a click opens the Downloads page.
        self.downloads_status = DownloadsIndicator()
        self.downloads_status.clicked.connect(lambda: self.show_page("downloads"))
        self.statusBar().addPermanentWidget(self.downloads_status)

        for keys, slot in (
            ("Ctrl+F", self.focus_search),
            ("Ctrl+K", self.focus_search),
            ("F5", self.refresh_current),
        ):
            QShortcut(QKeySequence(keys), self, slot)

    def _connect(self) -> None:
        scans = self.scans
        self.library.scan_requested.connect(self.start_scan)
        self.settings_page.scan_requested.connect(self.start_scan)
        scans.started.connect(self._scan_started)
        scans.progressed.connect(self._scan_progressed)
        scans.finished.connect(self._scan_finished)
        scans.failed.connect(self._scan_failed)
        scans.cancelled.connect(self._scan_cancelled)
        scans.stopped.connect(self._scan_stopped)
        self.activity.cancel_requested.connect(scans.cancel)

        for page in (self.library, self.settings_page):
            page.status_message.connect(self.show_status)
        self.library.snapshot_loaded.connect(self._library_loaded)
        self.library.update_check_progressed.connect(self._update_check_progressed)
        self.library.update_check_finished.connect(self._update_check_finished)
        self.settings_page.settings_changed.connect(self._settings_changed)
        self.library.find_folders_requested.connect(self.settings_page.look_for_model_folders)
        self.library.add_folder_requested.connect(self.settings_page.choose_folder)
        self.settings_page.folders_changed.connect(self.library.folders_changed)
        self.downloads_page.before_retry = self.settings_page.after_saving
        self.notifier.notified.connect(self._notified)
        self.notifier.activated.connect(self.bring_to_front)  # a click on a notification
        self.transfer.status_message.connect(self.show_status)
        self.transfer.restored.connect(self.library.refresh)
        self.transfer.restored.connect(self.settings_page.load)  # its new library folders

        downloads = self.downloads
        # Download clicks pass the key gate: with no key set, the first one asks for it.
        self.key_gate = KeyGate(self.core, downloads, self)
        self.key_gate.key_saved.connect(self.settings_page.load)
        self.browser.empty_state.key_saved.connect(self.settings_page.load)
        self.library.set_downloads(self.key_gate)
        self.browser.connect_downloads(self.key_gate)
        self.browser.show_in_library_requested.connect(self.show_in_library)
        downloads.task_finished.connect(self._download_finished)
        downloads.paused_changed.connect(self._paused_changed)
        downloads.counts_changed.connect(self.downloads_status.show_counts)
        downloads.problem.connect(self.show_status)  # the Downloads page says it too

    # -- pages --------------------------------------------------------------------------------

    @property
    def current_page(self) -> str:
        widget = self.pages.currentWidget()
        return next(name for name, w in self._page_widgets.items() if w is widget)

    @Slot(str)
    def show_page(self, name: str) -> None:
        """Show a page: "civitai", "models", "downloads" or "settings" (else the default)."""
        if name not in self._page_widgets:
            name = DEFAULT_PAGE
        self.pages.setCurrentWidget(self._page_widgets[name])
        self.nav.mark(name)
        if name == "civitai" and self._browser_library_stale:
            self._browser_library_stale = False
            self.browser.refresh_library_state()

    @Slot(int)
    def show_in_library(self, version_id: int) -> None:
        """The Models page with a file of this version selected."""
        self.show_page("models")
        if not self.library.reveal_version(version_id):
            self.show_status("That version is not in the library any more: scan to refresh it")

    @Slot()
    def focus_search(self) -> None:
        """Ctrl+F / Ctrl+K: the search field of the Civitai or Models page."""
        if self.current_page == "civitai":
            self.browser.search_box.setFocus(Qt.FocusReason.ShortcutFocusReason)
            self.browser.search_box.selectAll()
        else:
            self.show_page("models")
            self.library.focus_search()

    @Slot()
    def refresh_current(self) -> None:
        """F5: read the library again, or re-run the Civitai search."""
        if self.current_page == "civitai":
            self.browser.search()
        elif self.current_page == "settings":
            self.settings_page.load()
        else:
            self.library.refresh()

    @Slot(str)
    def _show_rate_status(self, text: str) -> None:
        # In short on the bar (a 900 px window keeps room for a message), whole as its tip.
        self.rate_label.setText(text.replace("Civitai is rate limiting: slowed down, ",
                                             "Civitai rate limit: "))
        self.rate_label.setToolTip(text)
        self.rate_label.setVisible(bool(text))

    @Slot(str)
    def show_status(self, text: str) -> None:
        """A passing message on the status bar's left, elided (never cut mid-word) to the
        room the count and the downloads' line leave it; whole in the bar's tooltip."""
        self._status_text = text
        self._show_status_elided()

    def _show_status_elided(self) -> None:
        bar, text = self.statusBar(), self._status_text
        shown = bar.fontMetrics().elidedText(text, Qt.TextElideMode.ElideRight,
                                             self.message_room())
        bar.showMessage(shown, STATUS_MS)
        bar.setToolTip(text if shown != text else "")

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self.statusBar().currentMessage() and self._status_text:
            self._show_status_elided()  # elided anew for the new width

    def status_text(self) -> str:
        """The message the status bar shows now, whole (it may show it elided)."""
        return self._status_text if self.statusBar().currentMessage() else ""

    def message_room(self) -> int:
        """The width left of the status bar's permanent widgets, for a message."""
        bar = self.statusBar()
        if not bar.isVisible():  # not laid out yet: nothing to measure against
            return 1 << 20
        shown = [w for w in (self.rate_label, self.count_label, self.downloads_status)
                 if w.isVisible()]
        left = min((w.geometry().left() for w in shown), default=bar.width())
        return max(0, left - 16)  # the bar's own padding before the text, and a gap

    @Slot()
    def _settings_changed(self) -> None:
        """A new NSFW choice reaches both grids (blurred or sharp previews) at once."""
        allow = bool(self.core.settings.allow_nsfw)
        if allow == self._allow_nsfw:
            return
        self._allow_nsfw = allow
        self.library.set_allow_nsfw(allow)
        self.browser.nsfw_box.setChecked(allow)

    def _library_loaded(self, snapshot: LibrarySnapshot) -> None:
        self._refresh_update_line()
        count = len(snapshot.entries)
        self.count_label.setText(f"{count} model file{'s' if count != 1 else ''}")
        # Which versions are on disk, for the Civitai page's badges: a read of every model
        # and a re-filter of its results, worth it only when that page is on screen.
        if self.current_page == "civitai":
            self.browser.refresh_library_state()
        else:
            self._browser_library_stale = True
        if self._startup_check_due:
            self._startup_check_due = False
            if count and not self._shut_down:
                self.library.check_updates_quietly()

    # -- the activity line (scan, update checks) ---------------------------------------------

    def show_activity(self, text: str, done: int, total: int, cancellable: bool = False,
                      tooltip: str = "") -> None:
        """Library work in progress on the line under the pages (``total`` 0: unknown)."""
        self.activity.show_activity(text, done, total, cancellable, tooltip)

    def show_result(self, text: str) -> None:
        """The outcome of the library's work on that line."""
        self.activity.show_result(text)

    def _update_check_progressed(self, done: int, total: int) -> None:
        if self.scans.running:
            return  # the line shows the scan (and its Cancel button) until it ends
        if self._scan_text is None:
            counted = f": {done} of {total} models" if total > 0 else "…"
            self.show_activity(f"Checking for updates{counted}", done, total)
        else:  # right after a scan: its outcome stays readable on the line
            self.show_activity(f"{self._scan_text}. Checking for updates…", 0, 0)

    def _update_check_finished(self, text: str) -> None:
        scan_text, self._scan_text = self._scan_text, None
        if self.scans.running:  # a check started before this scan: said beside it
            self.show_status(text)
            return
        self._update_line = text
        self.show_result(f"{scan_text}. {text}" if scan_text else text)

    def _refresh_update_line(self) -> None:
        """Keep "N updates available" true once an update was downloaded: the line shown
        is the last check's, recounted with the library's updates now."""
        if self._update_line is None or self.scans.running:
            return
        text = self.library.update_text_now()
        if text is not None and text != self._update_line:
            self._update_line = text
            self.show_result(text)

    # -- scans --------------------------------------------------------------------------------

    @Slot()
    def start_scan(self) -> bool:
        if not self.core.settings.library_folders:
            self.show_status("Add a library folder in Settings first")
            self.show_page("settings")
            return False
        self.settings_page.flush()
        if not self.scans.start():
            self.show_status("A scan is already running")
            return False
        return True

    def _scan_started(self) -> None:
        for button in (self.library.scan_button, self.settings_page.scan_button):
            button.setEnabled(False)
        self._show_scan_progress(0, 0, "")

    def _scan_progressed(self, progress: ScanProgress) -> None:
        done, total = progress_counts(progress)
        self._show_scan_progress(done, total, progress.current_path or "")

    def _show_scan_progress(self, done: int, total: int, current_path: str) -> None:
        self.show_activity(scan_progress_text(done, total, current_path), done, total,
                           cancellable=True, tooltip=current_path)

    def _notified(self, title: str, text: str) -> None:
        self.show_status(f"{title}: {text}")

    def _scan_finished(self, summary: ScanSummary) -> None:
        found = summary_text(summary)
        text = f"Scan finished: {found}"
        self._update_line = None
        self.show_result(text)
        self.notifier.notify("Library scan finished", found)
        # New files may be of models never asked about: badges without a manual check. The
        # check asks only about models not checked in the last hours; a running one is kept.
        if not self.library.update_check_running:
            self._scan_text = text
            self.library.check_updates_quietly()

    def _scan_failed(self, message: str) -> None:
        self._update_line = None
        self.show_result(f"Scan failed: {message}")
        self.notifier.notify("Library scan failed", message, warning=True)

    def _scan_cancelled(self) -> None:
        self._update_line = None
        self.show_result("Scan cancelled (files found so far are kept)")

    def _scan_stopped(self) -> None:
        for button in (self.library.scan_button, self.settings_page.scan_button):
            button.setEnabled(True)
        # The library service redoes what the scan's last stores undid, then reads it.

    # -- downloads ----------------------------------------------------------------------------

    def _download_finished(self, task: TaskSnapshot) -> None:
        if task.state == "completed" and task.already_present:
            # Nothing was fetched: say where the file already is, not "complete".
            self.notifier.notify("Already in your library", f"{task_title(task)}: {task.dest_path}")
        elif task.state == "completed":
            self.notifier.notify("Download complete", task_title(task))
            self.library.refresh()
        elif task.state == "failed":
            self.notifier.notify(
                "Download failed", f"{task_title(task)}: {failure_reason(task)}", warning=True
            )

    def _paused_changed(self, paused: bool) -> None:
        if self.tray is not None:
            self.tray.set_paused(paused)

    def _tray_pause_toggled(self, paused: bool) -> None:
        self.downloads.set_paused(paused)

    # -- window state -------------------------------------------------------------------------

    def _restore_state(self) -> None:
        state = window_settings(self.core)
        geometry = state.value("geometry")
        if geometry is None or not self.restoreGeometry(geometry):
            screen = self.screen()
            self.resize(first_size(screen.availableGeometry().size() if screen else None))
        self.show_page(str(state.value("page", DEFAULT_PAGE)))

    def save_state(self) -> None:
        state = window_settings(self.core)
        state.setValue("geometry", self.saveGeometry())
        state.setValue("page", self.current_page)
        state.sync()

    @Slot()
    def show_about(self) -> None:
        from civdesk.ui.about import AboutDialog

        dialog = AboutDialog(self, self.core.paths)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()

    @Slot()
    def bring_to_front(self) -> None:
        self.showNormal()
        self.raise_()
        self.activateWindow()

    @Slot()
    def quit(self) -> None:
        """Close for good (the tray's Quit): no hiding to the tray this time."""
        self._quitting = True
        self.close()

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self._quitting and self.tray is not None and self.core.settings.minimize_to_tray:
            # Keep downloads running in the background; the tray brings the window back.
            event.ignore()
            self.hide()
            self.notifier.notify("civdesk is still running", "Downloads continue in the tray")
            return
        # Nothing may escape closeEvent: PySide reports it from inside Qt's event dispatch,
        # and a half-run close would leave workers running past the database.
        for step in (self.save_state, self.shutdown):
            try:
                step()
            except Exception:
                log.exception("Closing the window: %s failed", step.__name__)
        event.accept()
        self.quit_requested.emit()

    def shutdown(self) -> None:
        """Stop every worker this window started (scan, downloads, thumbnails). Idempotent."""
        if self._shut_down:
            return
        self._shut_down = True
        # Every step runs even if one fails: a worker left running outlives the database.
        steps = (
            lambda: self.settings_page.flush(wait=True),
            self.rate_status.stop,
            self.thumbnails.cancel_pending,
            self.library_service.shutdown,
            self.downloads.stop,
            lambda: self.tray.hide() if self.tray is not None else None,
        )
        for step in steps:
            try:
                step()
            except Exception:
                log.exception("Shutting the window down: a step failed")


#: The window's size at its first start, on a screen large enough.
FIRST_SIZE = QSize(1280, 820)


def first_size(available: QSize | None) -> QSize:
    """:data:`FIRST_SIZE`, or what fits in nine tenths of the screen's free area (a
    1366×768 laptop has about 728 pixels of height for it)."""
    if available is None or not available.isValid():
        return FIRST_SIZE
    return FIRST_SIZE.boundedTo(QSize(available.width() * 9 // 10,
                                      available.height() * 9 // 10))
