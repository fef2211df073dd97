"""File → Export library… / Restore from manifest…: the window's face of
:mod:`civdesk.core.manifest` and :mod:`civdesk.core.restore`.

A file dialog picks the file (and a folder to restore into); the work (reading the library,
hashing the destination, asking Civitai about versions) runs through :func:`run_task`, and a
non-modal summary says what was queued and what cannot come back. The downloads themselves
are the downloads service's: they are added to its queue, whose worker is woken.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from civdesk.core.restore import RestoreOutcome
from civdesk.ui.tasks import run_task

if TYPE_CHECKING:
    from civdesk.core.context import Core
    from civdesk.core.downloads.queue import DownloadQueue

MANIFEST_FILTER = "civdesk manifest (*.json);;All files (*)"
DEFAULT_NAME = "civdesk-library.json"
MAX_LISTED = 50  # lines of "cannot come back" in the summary's text (all in the details)


def export_library(core: Core, path: str) -> int:
    """Write the library's manifest to ``path``; how many files it lists (worker thread)."""
    from civdesk.core.manifest import build_manifest, write_manifest

    manifest = build_manifest(core.library, core.settings)
    write_manifest(manifest, path)
    return len(manifest.files)


def restore_from(core: Core, queue: DownloadQueue, manifest_path: str, dest: str) -> RestoreOutcome:
    """Restore ``manifest_path`` into ``dest``, queueing on ``queue`` (worker thread)."""
    from civdesk.core.manifest import read_manifest
    from civdesk.core.restore import restore_library

    manifest = read_manifest(manifest_path)
    return restore_library(core, manifest, Path(dest), client=core.lookup_client(),
                           lookup=core.lookup_client(), queue=queue)


def outcome_text(outcome: RestoreOutcome) -> tuple[str, str]:
    """The summary and its details (every file that cannot come back, with the reason)."""
    lines = [f"{len(outcome.present)} file(s) already there",
             f"{len(outcome.queued)} file(s) queued for download (see the downloads below)",
             f"{len(outcome.linked)} manual link(s) re-applied"]
    if outcome.cannot:
        lines.append(f"{len(outcome.cannot)} file(s) cannot come back:")
        lines += [f"• {i.name}: {i.reason}" for i in outcome.cannot[:MAX_LISTED]]
        if len(outcome.cannot) > MAX_LISTED:
            lines.append(f"… and {len(outcome.cannot) - MAX_LISTED} more (see the details)")
    details = "\n".join(f"{i.name} ({i.path}): {i.reason}" for i in outcome.cannot)
    return "\n".join(lines), details


class LibraryTransfer(QObject):
    """The two File-menu actions of a window (``parent``)."""

    #: A short line for the status bar.
    status_message = Signal(str)
    #: A restore ended (the library page reloads).
    restored = Signal(object)  # RestoreOutcome

    def __init__(self, core: Core, downloads: Any, parent: QWidget,
                 scanning: Callable[[], bool] = lambda: False) -> None:
        """``downloads``: the window's DownloadService (its queue gets the downloads);
        ``scanning``: whether the window's scan runs (a restore scans too: not both)."""
        super().__init__(parent)
        self.core = core
        self.downloads = downloads
        self.scanning = scanning
        self.window = parent
        self.busy = False
        self.summary: QMessageBox | None = None  # the last one shown (tests read it)

    def export(self) -> None:
        start = os.path.join(str(Path.home()), DEFAULT_NAME)
        path, _ = QFileDialog.getSaveFileName(self.window, "Export library", start,
                                              MANIFEST_FILTER)
        if not path or not self._start():
            return
        self.status_message.emit("Exporting the library…")
        run_task(export_library, self.core, path, pool="transfer", name="export",
                 on_result=lambda count: self._exported(path, count),
                 on_error=self._failed, owner=self)

    def restore(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Restore from manifest",
                                              str(Path.home()), MANIFEST_FILTER)
        if not path:
            return
        folders = self.core.settings.library_folders
        dest = QFileDialog.getExistingDirectory(
            self.window, "Restore the library into", folders[0] if folders else str(Path.home()))
        if not dest:
            return
        if self.scanning():
            self.status_message.emit("A scan is running: restore once it has finished")
            return
        queue = self.downloads.queue
        if queue is None:
            self.status_message.emit("Downloads are still starting: restore in a moment")
            return
        if not self._start():
            return
        self.status_message.emit("Restoring the library: looking for the files already there…")
        run_task(restore_from, self.core, queue, path, dest, pool="transfer",
                 name="restore", on_result=self._restored, on_error=self._failed, owner=self)

    def _start(self) -> bool:
        if self.busy:
            self.status_message.emit("An export or restore is already running")
            return False
        self.busy = True
        return True

    def _exported(self, path: str, count: int) -> None:
        self.busy = False
        self.status_message.emit(f"Exported {count} file(s) to {path}")
        self._show(QMessageBox.Icon.Information, "Library exported",
                   f"The manifest of {count} file(s) was written to\n{path}")

    def _restored(self, outcome: RestoreOutcome) -> None:
        self.busy = False
        self.downloads.wake()
        text, details = outcome_text(outcome)
        icon = QMessageBox.Icon.Warning if outcome.cannot else QMessageBox.Icon.Information
        self._show(icon, "Library restored", text, details)
        self.status_message.emit(f"Restore: {len(outcome.queued)} download(s) queued, "
                                 f"{len(outcome.cannot)} file(s) cannot come back")
        self.restored.emit(outcome)

    def _failed(self, error: BaseException) -> None:
        self.busy = False
        self._show(QMessageBox.Icon.Warning, "Export or restore failed", str(error))

    def _show(self, icon: QMessageBox.Icon, title: str, text: str, details: str = "") -> None:
        # Non-modal (open(), not exec()): the window and its downloads go on meanwhile.
        box = QMessageBox(icon, title, text, QMessageBox.StandardButton.Ok, self.window)
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        if details:
            box.setDetailedText(details)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.summary = box
        box.open()
