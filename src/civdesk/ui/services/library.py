"""The library service: everything the window does to the local library, without a widget.

:class:`LibraryService` owns the scan (:class:`~civdesk.ui.scan.ScanController`), the
update checks, the file actions (delete, re-scan, link, forget a folder), the bookkeeping of
what changed while a scan ran, and the reads of the library into the one
:class:`~civdesk.ui.library.model.LibraryModel` the Models page shows. The pages are views
of it: they ask it to act and show what its signals say.

One read after each change: requests that arrive while a read is under way, or in the same
event-loop turn, are folded into one more read.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from civdesk.core.errors import CivdeskError
from civdesk.core.library.repository import LibraryEntry, LocalFile, UpdateInfo
from civdesk.core.scanner import Scanner
from civdesk.core.units import plural
from civdesk.core.updates import UpdateCheck
from civdesk.ui.library.model import LibraryModel
from civdesk.ui.library.operations import (
    check_library_updates,
    check_model_update,
    delete_again,
    delete_with_companions,
    update_check_text,
)
from civdesk.ui.library.rows import LibrarySnapshot, RowChange, load_change
from civdesk.ui.scan import ScanController, link_file, rescan_file
from civdesk.ui.tasks import TaskHandle, run_task

if TYPE_CHECKING:
    from civdesk.core.context import Core

log = logging.getLogger(__name__)


class Downloads(Protocol):
    """What the service needs of the download side: queue one version into a folder."""

    def add(self, version_id: int, file_id: int | None = None,
            dest_dir: str | None = None) -> object: ...


def user_message(exc: BaseException) -> str:
    """One line for the user about a failed action."""
    return str(exc) if isinstance(exc, CivdeskError) else f"Unexpected error: {exc!r}"


def update_map(updates: list[UpdateInfo] | dict[int, UpdateInfo]) -> dict[int, int]:
    """model id -> newest version id: what the Updates badges show, for comparing."""
    values = updates.values() if isinstance(updates, dict) else updates
    return {u.model_id: u.latest_version_id for u in values}


class _ProgressRelay(QObject):
    """Made on the GUI thread: emitting from a worker queues the call to the GUI thread."""

    progressed = Signal(int, int)


class LibraryService(QObject):
    """The local library as the window works on it (a plain QObject, no widget)."""

    #: One line for the status bar.
    status_message = Signal(str)
    #: An action on a file failed: one line for the user (the page shows it in a box).
    action_failed = Signal(str)
    #: A fresh snapshot is on screen in :attr:`model`.
    snapshot_loaded = Signal(object)
    #: A read of the library starts (tests count them).
    reload_started = Signal()
    #: A read is in: its rows are about to be applied to :attr:`model` (views note their
    #: current file, which Qt may move to a neighbour while rows go).
    rows_about_to_change = Signal()
    #: A file changed on disk or went (its preview path, to drop cached thumbnails).
    preview_changed = Signal(str)
    #: "Check for updates" is running: (models asked about so far, models to ask; 0 unknown).
    update_check_progressed = Signal(int, int)
    #: An update check ended: one line saying what it found (or why it failed).
    update_check_finished = Signal(str)
    #: Whether an update check runs (buttons follow it).
    update_check_running_changed = Signal(bool)
    #: A library folder was forgotten: (folder, files forgotten).
    folder_forgotten = Signal(str, int)

    def __init__(self, core: Core, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.core = core
        self.model = LibraryModel(self)
        self.scans = ScanController(core, self)
        self.downloads: Downloads | None = None
        self._loading: TaskHandle | None = None
        self._reload_again = False
        self._update_check: TaskHandle | None = None
        self._last_check: tuple[UpdateCheck, bool] | None = None  # and whether forced
        # An update check ended while a read was under way: compare once that read is in.
        self._check_to_compare: UpdateCheck | None = None
        # What changed while a scan ran: the scan's last stores may undo it (done again).
        self._deleted_during_scan: list[str] = []
        self._forgotten_during_scan: list[str] = []
        # Requests within one event-loop turn make one read.
        self._reload_timer = QTimer(self)
        self._reload_timer.setSingleShot(True)
        self._reload_timer.setInterval(0)
        self._reload_timer.timeout.connect(self._reload_now)
        # A quiet check waits for the read under way to be on screen (check_updates_quietly).
        self._quiet_check_waiting = False
        self._quiet_check_timer = QTimer(self)
        self._quiet_check_timer.setSingleShot(True)
        self._quiet_check_timer.setInterval(0)
        self._quiet_check_timer.timeout.connect(self._start_waiting_quiet_check)
        self.scans.stopped.connect(self._scan_stopped)

    # -- reads --------------------------------------------------------------------------------

    @property
    def snapshot(self) -> LibrarySnapshot:
        return self.model.snapshot

    @property
    def reloading(self) -> bool:
        """Whether a read is asked for, under way, or not all on screen yet."""
        loading = self._loading is not None and not self._loading.done
        return (loading or self._reload_again or self._reload_timer.isActive()
                or self.model.applying)

    @Slot()
    def refresh(self) -> None:
        """Read the library again (in a worker); folded with other requests of this turn."""
        if self._loading is not None and not self._loading.done:
            self._reload_again = True  # something changed during the read: read once more
            return
        self._reload_timer.start()

    @Slot()
    def _reload_now(self) -> None:
        if self._loading is not None and not self._loading.done:
            self._reload_again = True
            return
        self._reload_again = False
        self.reload_started.emit()
        # Sorted, filtered and compared with the rows on screen in the worker too, for the
        # sort and filter of this moment: the GUI thread only applies the ranges that change.
        self._loading = run_task(
            load_change, self.core.library, self.model.rows, on_result=self._change_ready,
            on_error=self._load_failed, pool="db", name="load library", owner=self,
        )  # fmt: skip

    def _change_ready(self, change: RowChange) -> None:
        if self._reload_again:
            self._reload_again = False
            self._loading = None
            self._reload_now()
            return
        self.rows_about_to_change.emit()
        self.model.apply_change(change, on_applied=lambda: self._rows_shown(change))

    def _rows_shown(self, change: RowChange) -> None:
        snapshot = change.rows.snapshot
        self.snapshot_loaded.emit(snapshot)
        check, self._check_to_compare = self._check_to_compare, None
        if check is not None:
            self._read_again_if_new(check)
        self._start_waiting_quiet_check()

    def _load_failed(self, exc: BaseException) -> None:
        self._reload_again = False
        self.status_message.emit(f"The library could not be read: {user_message(exc)}")
        self._start_waiting_quiet_check()

    # -- scans --------------------------------------------------------------------------------

    @property
    def scan_running(self) -> bool:
        return self.scans.running

    def start_scan(self, folders: list[str] | None = None) -> bool:
        """Start a scan; False when one runs already."""
        return self.scans.start(folders)

    @Slot()
    def _scan_stopped(self) -> None:
        """Redo what was deleted or forgotten while the scan ran (its last stores may have
        brought it back), then read the library: once."""
        deleted, self._deleted_during_scan = self._deleted_during_scan, []
        forgotten = [f for f in self._forgotten_during_scan
                     if f not in self.core.settings.library_folders]  # not added back since
        self._forgotten_during_scan = []
        if not deleted and not forgotten:
            self.refresh()
            return
        library, scanner = self.core.library, self._forgetting_scanner()

        def redo() -> None:
            delete_again(library, deleted)
            for folder in forgotten:
                scanner.forget_folder(folder)

        run_task(redo, on_error=self._action_failed, on_finished=self.refresh, pool="disk",
                 name="redo after scan", owner=self)

    # -- file actions -------------------------------------------------------------------------

    def delete(self, entry: LibraryEntry) -> TaskHandle:
        """Delete the file and its companions (in a worker); the page asked the user."""
        if self.scans.running:  # the scan may store it and write its companions again
            self._deleted_during_scan.append(entry.path)

        def deleted(paths: list[str]) -> None:
            self.preview_changed.emit(entry.preview or "")
            self.model.remove_paths([entry.path])
            self.status_message.emit(
                f"Deleted {entry.file_name} and {len(paths) - 1} companion file(s)")
            self.refresh()

        return run_task(delete_with_companions, self.core.library, entry.path,
                        on_result=deleted, on_error=self._action_failed, pool="disk",
                        name="delete file", owner=self)

    def rescan(self, entry: LibraryEntry) -> TaskHandle:
        self.status_message.emit(f"Re-scanning {entry.file_name}…")

        def done(_: LocalFile | None) -> None:
            self.preview_changed.emit(entry.preview or "")
            self.status_message.emit(f"Re-scanned {entry.file_name}")
            self.refresh()

        return run_task(rescan_file, self.core, entry.path, on_result=done,
                        on_error=self._action_failed, pool="disk", name="re-scan file",
                        owner=self)

    def link(self, entry: LibraryEntry, reference: str) -> TaskHandle:
        self.status_message.emit(f"Linking {entry.file_name}…")

        def done(_: LocalFile) -> None:
            self.status_message.emit(f"Linked {entry.file_name} to Civitai")
            self.refresh()

        return run_task(link_file, self.core, entry.path, reference, on_result=done,
                        on_error=self._action_failed, pool="network", name="link file",
                        owner=self)

    def forget_folder(self, folder: str) -> TaskHandle:
        """The library forgets the files of a folder no longer scanned (they stay on disk)."""
        if self.scans.running:  # the scan may still store files of it: forget them after
            self._forgotten_during_scan.append(folder)
        scanner = self._forgetting_scanner()

        def forgotten(count: int) -> None:
            if count:
                self.status_message.emit(
                    f"The library forgot the {plural(count, 'file')} of "
                    f"{folder} (they stay on disk)")
                self.refresh()
            self.folder_forgotten.emit(folder, count)

        return run_task(scanner.forget_folder, folder, on_result=forgotten,
                        on_error=self._action_failed, pool="db", name="forget a folder",
                        owner=self)

    def _forgetting_scanner(self) -> Scanner:
        # The worker reads a copy: the folders it keeps are those of this moment.
        return Scanner(self.core.library, None, copy.deepcopy(self.core.settings))

    def set_downloads(self, downloads: Downloads | None) -> None:
        """Where "Download update" queues (``add(version_id, file_id, dest_dir)``)."""
        self.downloads = downloads

    def download_update(self, entry: LibraryEntry) -> bool:
        """Queue the newest version next to the one on disk; False when there is none."""
        update = self.snapshot.updates.get(entry.model_id) if entry.model_id else None
        if update is None:
            return False
        if self.downloads is None:
            self.status_message.emit("Downloads are not available")
            return False
        # Next to the version already on disk: the user chose that folder.
        self.downloads.add(update.latest_version_id, None, str(Path(entry.path).parent))
        self.status_message.emit(f"Queued {update.model_name} {update.latest_name} for download")
        return True

    def _action_failed(self, exc: BaseException) -> None:
        message = user_message(exc)
        self.status_message.emit(message)
        self.action_failed.emit(message)

    # -- update checks ------------------------------------------------------------------------

    def check_update(self, entry: LibraryEntry) -> TaskHandle | None:
        """Ask Civitai about one file's model."""
        model_id = entry.model_id
        if model_id is None:
            return None
        name = entry.model_name or entry.file_name
        self.status_message.emit(f"Checking {name} for updates…")
        core = self.core

        def done(update: UpdateInfo | None) -> None:
            self.status_message.emit(
                f"{name} is up to date" if update is None
                else f"Update available for {name}: {update.latest_name}")
            self.refresh()

        def work() -> UpdateInfo | None:
            return check_model_update(core.library, core.client(), model_id)

        return run_task(work, on_result=done, on_error=self._action_failed, pool="network",
                        name="check update", owner=self)

    @property
    def update_check_running(self) -> bool:
        """A check runs, or a quiet one waits for the library's read to be on screen."""
        running = self._update_check is not None and not self._update_check.done
        return running or self._quiet_check_waiting

    def check_all_updates(self) -> TaskHandle | None:
        """"Check for updates": every identified model, with progress."""
        return self._start_update_check(force=True, quiet=False)

    def check_updates_quietly(self) -> TaskHandle | None:
        """Ask only about models not asked about for a while (after a scan, at start-up):
        no per-batch progress, one ``update_check_finished`` line (a failure too). While a
        check runs, the running one is returned.

        The check starts on the next event-loop turn, or once the library's read under
        way is on screen (a scan's end asks for both at once): its worker parses Civitai's
        answers and writes the database in Python, and would take the GIL in turns with
        the GUI thread while that applies and paints a screen of new cards (the longest
        stalls bench_gui saw after a scan). None until it starts."""
        if self.update_check_running:
            return self._update_check
        self._quiet_check_waiting = True
        self._quiet_check_timer.start()
        return None

    @Slot()
    def _start_waiting_quiet_check(self) -> None:
        if not self._quiet_check_waiting or self.reloading:
            return  # nothing waits, or the read's end starts it
        self._quiet_check_waiting = False
        self._start_update_check(force=False, quiet=True)

    def update_text_now(self) -> str | None:
        """The last check's line with the updates the library knows now (one downloaded
        since drops out); None before any check."""
        if self._last_check is None:
            return None
        result, forced = self._last_check
        updates = list(self.snapshot.updates.values())
        return update_check_text(replace(result, updates=updates), forced=forced)

    def cancel_update_check(self) -> None:
        """Stop a running check between two batches (the window is closing)."""
        self._quiet_check_waiting = False
        if self._update_check is not None:
            self._update_check.cancel()

    def _start_update_check(self, *, force: bool, quiet: bool) -> TaskHandle | None:
        if not quiet:
            self._quiet_check_waiting = False  # the check asked for covers the quiet one
        if self.update_check_running:
            return self._update_check  # one at a time
        core = self.core
        relay: _ProgressRelay | None = None
        if not quiet:
            relay = _ProgressRelay(self)
            relay.progressed.connect(self.update_check_progressed)
            self.status_message.emit("Checking the library for updates…")
        self.update_check_progressed.emit(0, 0)
        progress: Callable[[int, int], None] | None = (
            relay.progressed.emit if relay is not None else None)

        def work(cancel: threading.Event) -> UpdateCheck:
            # The client on the worker: making it reads the key (maybe the OS keychain).
            return check_library_updates(core.library, core.client(), force=force,
                                         progress=progress, cancel=cancel)

        def done(result: UpdateCheck) -> None:
            self._last_check = (result, force)
            # Said once, on the update line (never also in the status bar beside it).
            self.update_check_finished.emit(update_check_text(result, forced=force))
            if not quiet:  # asked for: the grid shows what the check stored, whatever it is
                self.refresh()
            elif self.reloading:  # that read may or may not see what the check stored
                self._check_to_compare = result
            else:
                self._read_again_if_new(result)

        def failed(exc: BaseException) -> None:
            text = (f"Update check failed: {exc}" if isinstance(exc, CivdeskError)
                    else "Update check failed (see the log)")
            self.update_check_finished.emit(text)
            if quiet:
                self.status_message.emit(text)
            else:
                self._action_failed(exc)

        def finished() -> None:
            self.update_check_running_changed.emit(False)
            if relay is not None:
                relay.deleteLater()

        self._update_check = run_task(
            work, on_result=done, on_error=failed, on_finished=finished, pool="network",
            name="check updates", cancellable=True, owner=self,
        )  # fmt: skip
        self.update_check_running_changed.emit(True)
        return self._update_check

    def _read_again_if_new(self, result: UpdateCheck) -> None:
        """Read the library after a check only when it found what the grid does not show:
        other updates, or models Civitai removed (a check that changed nothing costs no
        second read after a scan)."""
        if result.removed or update_map(result.updates) != update_map(self.snapshot.updates):
            self.refresh()

    # -- the end ------------------------------------------------------------------------------

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        """Stop a running update check and scan (the window is closing)."""
        self.cancel_update_check()
        return self.scans.shutdown(timeout_ms)
