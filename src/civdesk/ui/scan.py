"""Library scans from the window: one at a time, in a worker, cancellable.

:class:`ScanJob` runs :class:`civdesk.core.scanner.Scanner` in a thread pool and reports
through Qt signals; :class:`ScanController` owns the single running job (a second "Scan
Library" click while one runs is ignored) and relays its signals to the window, the dock
and the library page. :func:`rescan_file` and :func:`link_file` are the per-file actions of
the Models page, for worker threads.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QRunnable, Signal, Slot

from civdesk.core.civitai.refs import parse_ref, resolve_version
from civdesk.core.civitai.sites import mature_hint
from civdesk.core.errors import Cancelled, CivdeskError
from civdesk.core.library.repository import LocalFile
from civdesk.core.scanner import PHASE_HASHING, PHASE_WALKING, Scanner, ScanProgress, ScanSummary
from civdesk.ui.tasks import thread_pool

if TYPE_CHECKING:
    from civdesk.core.context import Core

log = logging.getLogger(__name__)

SCAN_POOL = "scan"


def summary_text(summary: ScanSummary) -> str:
    """What a scan found, in one line without a heading (the dock puts "Scan finished:"
    before it, a notification its title)."""
    parts = [
        f"{summary.found} files",
        f"{summary.identified} identified",
        f"{summary.unknown} unknown",
        f"{summary.removed} removed",
    ]
    if summary.moved:
        parts.append(f"{summary.moved} moved")
    if summary.duplicates:
        parts.append(f"{summary.duplicates} duplicate{'s' if summary.duplicates != 1 else ''}")
    if summary.offline:
        parts.append(f"{summary.offline} offline (drive or folder not there, kept)")
    text = ", ".join(parts)
    if summary.missing_roots:
        text += f". Not found: {', '.join(summary.missing_roots)}"
    if summary.errors:
        text += f". {len(summary.errors)} problem(s): {summary.errors[0]}"
    return text


def progress_counts(p: ScanProgress) -> tuple[int, int]:
    """(done, total) files for a progress bar; total 0 while the walk is still counting."""
    if p.phase == PHASE_WALKING:
        return p.files_found, 0
    if p.phase == PHASE_HASHING:  # the files not read again are done already
        return p.files_found - p.files_to_hash + p.files_hashed, p.files_found
    return p.files_found, p.files_found


class ScanSignals(QObject):
    """A QRunnable is no QObject: its signals live here (created on the GUI thread)."""

    progressed = Signal(object)  # ScanProgress
    finished = Signal(object)  # ScanSummary
    failed = Signal(str)  # one line for the user
    cancelled = Signal()


#: At most this many progress signals per second reach the GUI thread (phase changes always
#: go through): a scan reports per file, thousands of times a second on a warm cache.
PROGRESS_HZ = 10.0


class ProgressThrottle:
    """Passes a scan's progress on at most ``hz`` times a second, and every phase change."""

    def __init__(
        self, emit: Callable[[ScanProgress], object], hz: float = PROGRESS_HZ,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._emit = emit
        self._interval = 1.0 / hz
        self._clock = clock
        self._last = float("-inf")
        self._phase: str | None = None

    def __call__(self, progress: ScanProgress) -> None:
        now = self._clock()
        if progress.phase != self._phase or now - self._last >= self._interval:
            self._phase = progress.phase
            self._last = now
            self._emit(progress)


class ScanJob(QRunnable):
    """One scan of the library folders (or ``folders``) in a worker thread."""

    def __init__(self, core: Core, folders: list[str] | None = None) -> None:
        super().__init__()
        self.setAutoDelete(False)  # the controller keeps it until its outcome is in
        self.core = core
        self.folders = folders
        self.cancel_event = threading.Event()
        self.signals = ScanSignals()

    def cancel(self) -> None:
        self.cancel_event.set()

    def run(self) -> None:
        signals = self.signals
        try:
            client = self.core.lookup_client()
            scanner = Scanner(self.core.library, client, self.core.settings)
            summary = scanner.scan(
                self.folders, progress=ProgressThrottle(signals.progressed.emit),
                cancel=self.cancel_event,
            )  # fmt: skip
        except Cancelled:
            signals.cancelled.emit()
        except CivdeskError as exc:
            signals.failed.emit(str(exc))
        except Exception as exc:  # a worker must never swallow an exception
            log.exception("The library scan failed")
            signals.failed.emit(f"Unexpected error: {exc!r}")
        else:
            signals.finished.emit(summary)


class ScanController(QObject):
    """Starts scans, refuses a second one while one runs, and relays their outcome."""

    started = Signal()
    progressed = Signal(object)  # ScanProgress
    finished = Signal(object)  # ScanSummary
    failed = Signal(str)
    cancelled = Signal()
    #: The scan ended, whichever way (for buttons and refreshes).
    stopped = Signal()

    def __init__(self, core: Core, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.core = core
        self.job: ScanJob | None = None

    @property
    def running(self) -> bool:
        return self.job is not None

    @Slot()
    def start(self, folders: list[str] | None = None) -> bool:
        """Start a scan; False (and nothing happens) when one is already running."""
        if self.job is not None:
            return False
        job = ScanJob(self.core, folders)
        job.signals.progressed.connect(self.progressed)
        job.signals.finished.connect(self._finished)
        job.signals.failed.connect(self._failed)
        job.signals.cancelled.connect(self._cancelled)
        self.job = job
        self.started.emit()
        thread_pool(SCAN_POOL).start(job)
        return True

    @Slot()
    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        """Cancel a running scan and wait for its thread (the app is quitting)."""
        self.cancel()
        return thread_pool(SCAN_POOL).waitForDone(timeout_ms)

    @Slot(object)
    def _finished(self, summary: ScanSummary) -> None:
        self._end()
        self.finished.emit(summary)
        self.stopped.emit()

    @Slot(str)
    def _failed(self, message: str) -> None:
        self._end()
        self.failed.emit(message)
        self.stopped.emit()

    @Slot()
    def _cancelled(self) -> None:
        self._end()
        self.cancelled.emit()
        self.stopped.emit()

    def _end(self) -> None:
        job, self.job = self.job, None
        if job is not None:
            job.signals.deleteLater()


# -- per-file actions (worker threads) ------------------------------------------------------


def rescan_file(core: Core, path: str | os.PathLike[str]) -> LocalFile | None:
    """Hash one file again and ask Civitai about it; None when the file is gone.

    The library's stored mtime is cleared so the scanner sees the file as changed; the scan
    covers the file's folder without removing anything, and unchanged neighbours are not read.
    """
    file = Path(path)
    if not file.exists():
        core.library.remove_files([file])
        return None
    core.library.update_file(file, mtime_ns=0)
    scanner = Scanner(core.library, core.lookup_client(), core.settings)
    scanner.scan([file.parent], full=False, recheck_unknown=True)
    return core.library.local_file(file)


def link_file(core: Core, path: str | os.PathLike[str], reference: str) -> LocalFile:
    """Link a file to the Civitai model or version ``reference`` names (URL, id, AIR)."""
    client = core.client()
    with mature_hint(core.sites):
        version = resolve_version(client, parse_ref(reference, core.sites.both),
                                  fetched_model=core.library.upsert_model)
    return Scanner(core.library, client, core.settings).link(path, version)
