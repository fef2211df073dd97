"""The always-visible download dock: the queue, its controls, recent failures, scan status."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QItemSelectionModel, QModelIndex, Qt, QUrl, Signal, Slot
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QDockWidget,
    QHBoxLayout,
    QLabel,
    QListView,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from civdesk.core.downloads.queue import DownloadQueue, TaskSnapshot
from civdesk.ui.downloads.confirm import confirm_flagged
from civdesk.ui.downloads.delegate import DownloadDelegate
from civdesk.ui.downloads.messages import failure_reason, task_title
from civdesk.ui.downloads.model import DownloadListModel, TaskRole
from civdesk.ui.downloads.worker import DownloadWorker
from civdesk.ui.opener import Opener
from civdesk.ui.status_line import StatusLine

if TYPE_CHECKING:
    from civdesk.core.context import Core

log = logging.getLogger(__name__)

#: How many failures the dock keeps in words under the list.
RECENT_FAILURES = 3
#: The window's download buffers: half the command line's. At loopback speed (over 1 GB/s)
#: 4 MiB buffers let a download beside a scan keep both cores so busy that the window
#: stalled over 50 ms in 3 of 8 bench_gui runs (2 MiB: none in 5); at Civitai's speeds
#: the two sizes do the same.
WINDOW_BUFFER = 2 << 20


class ScanStatus(QWidget):
    """One line for the library scan: what it is doing, a bar, and Cancel."""

    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = StatusLine()  # the current file changes ten times a second
        self.label.setObjectName("scanLabel")
        self.bar = QProgressBar()
        self.bar.setObjectName("scanProgress")
        self.bar.setMaximumHeight(14)
        self.bar.setTextVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("scanCancel")
        self.cancel_button.setToolTip("Stop the library scan (what was found so far is kept)")
        self.cancel_button.clicked.connect(self.cancel_requested)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(self.label, 1)
        row.addWidget(self.cancel_button)
        layout.addLayout(row)
        layout.addWidget(self.bar)
        self.hide()

    def show_progress(self, done: int, total: int, current_path: str = "") -> None:
        # total 0: not known yet (still walking folders): a busy bar.
        self._set_bar(done, total)
        counted = f"{done} of {total}" if total > 0 else f"{done}"
        name = current_path.replace("\\", "/").rsplit("/", 1)[-1]
        self.label.setText(f"Scanning library: {counted} files" + (f" · {name}" if name else ""))
        self.label.setToolTip(current_path)
        self.bar.show()
        self.cancel_button.show()
        self.cancel_button.setEnabled(True)
        self.show()

    def show_activity(self, text: str, done: int, total: int) -> None:
        """Another library job on this line (an update check): text and bar, no Cancel."""
        self._set_bar(done, total)
        self.label.setText(text)
        self.label.setToolTip("")
        self.bar.show()
        self.cancel_button.hide()
        self.show()

    def _set_bar(self, done: int, total: int) -> None:
        # QProgressBar.setValue repaints at once when the bar moves by a percent or more,
        # and an immediate repaint paints every pending region of the window with it (the
        # grid and the download list included: 10-40 ms while a scan keeps the GIL busy),
        # ten times a second. With updates off the value is only stored; turning them
        # back on schedules an ordinary update, painted with the rest of the next frame.
        self.bar.setUpdatesEnabled(False)
        try:
            self.bar.setRange(0, max(total, 0))
            self.bar.setValue(min(done, total) if total > 0 else 0)
        finally:
            self.bar.setUpdatesEnabled(True)

    def show_result(self, text: str) -> None:
        self.label.setText(text)
        self.label.setToolTip("")
        self.bar.hide()
        self.cancel_button.hide()
        self.show()


class DownloadDock(QDockWidget):
    """The download queue in a dock: list with progress, controls, failures, scan status.

    ``worker`` is the :class:`DownloadWorker` (use ``dock.worker.add(version_id, file_id)``
    from anywhere in the window). The dock cannot be closed by the user; the window calls
    :meth:`shutdown` (or closes the dock) when it quits, which stops the download thread.
    """

    scan_cancel_requested = Signal()

    def __init__(
        self, core: Core, parent: QWidget | None = None, *, queue: DownloadQueue | None = None
    ) -> None:
        super().__init__("Downloads", parent)
        self.setObjectName("downloadDock")
        # Always visible: movable and floatable, never closable.
        self.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
        )
        self.core = core
        #: Opens a folder in the file manager, or says nothing could (its ``open_url`` is
        #: replaced in tests).
        self.opener = Opener(self)
        #: Runs a retry once settings typed elsewhere are saved (the window hands in the
        #: Settings page's ``after_saving``): a key pasted just before Retry is used.
        self.before_retry: Callable[[Callable[[], object]], object] = lambda retry: retry()
        # The queue of this data directory: unfinished tasks come back from the database.
        self.worker = DownloadWorker(
            queue or DownloadQueue.for_core(core, chunk_size=WINDOW_BUFFER), self,
                                     api_key=core.api_key, site=lambda: core.site)
        self.model = DownloadListModel(self)
        # Task id -> why it failed, newest first: a task that later completes leaves it.
        self._failures: dict[int, str] = {}
        self._build()
        self._connect()
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)
        # Unfinished tasks come back from the database; the loop starts once they are shown.
        self.worker.load_tasks(self._tasks_loaded)

    # -- construction -------------------------------------------------------------------------

    def _build(self) -> None:
        body = QWidget(self)
        layout = QVBoxLayout(body)
        layout.setContentsMargins(6, 6, 6, 6)

        header = QHBoxLayout()
        # Changes with every queued, started and finished task: no window layout for it.
        self.count_label = StatusLine("Nothing queued")
        self.count_label.setObjectName("queueCount")
        self.pause_button = QPushButton("Pause all")
        self.pause_button.setObjectName("pauseQueue")
        self.pause_button.setCheckable(True)
        self.pause_button.setToolTip(
            "Pause the current download (what is downloaded is kept) and start no new one"
        )
        header.addWidget(self.count_label, 1)
        header.addWidget(self.pause_button)
        layout.addLayout(header)

        self.view = QListView()
        self.view.setObjectName("downloadList")
        self.view.setModel(self.model)
        self.view.setItemDelegate(DownloadDelegate(self.view))
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setUniformItemSizes(True)
        self.view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        layout.addWidget(self.view, 1)

        buttons = QHBoxLayout()
        self.cancel_button = self._button("Cancel", "cancelTask", "Stop and remove this download")
        self.retry_button = self._button("Retry", "retryTask", "Try this download again")
        self.up_button = self._button("Move up", "moveUp", "Download this one earlier")
        self.down_button = self._button("Move down", "moveDown", "Download this one later")
        self.show_button = self._button(
            "Show in folder", "showInFolder",
            "Open the folder holding the downloaded file (or double-click the download)")
        self.clear_button = self._button(
            "Clear finished", "clearFinished", "Remove completed, failed and cancelled downloads "
            "from the list (their files stay)",
        )  # fmt: skip
        for button in (self.cancel_button, self.retry_button, self.up_button, self.down_button,
                       self.show_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.clear_button)
        layout.addLayout(buttons)

        self.failures_label = QLabel()
        self.failures_label.setObjectName("recentFailures")
        self.failures_label.setWordWrap(True)
        self.failures_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.failures_label.hide()
        layout.addWidget(self.failures_label)

        self.error_label = QLabel()
        self.error_label.setObjectName("queueError")
        self.error_label.setWordWrap(True)
        self.error_label.hide()
        layout.addWidget(self.error_label)

        self.scan_status = ScanStatus()
        self.scan_status.setObjectName("scanStatus")
        layout.addWidget(self.scan_status)
        self.setWidget(body)
        self._update_controls()

    def _button(self, text: str, name: str, tip: str) -> QPushButton:
        button = QPushButton(text)
        button.setObjectName(name)
        button.setToolTip(tip)
        return button

    def _connect(self) -> None:
        self.model.connect_worker(self.worker)
        self.worker.task_finished.connect(self._task_finished)
        self.worker.paused_changed.connect(self._paused_changed)
        self.worker.crashed.connect(self._show_error)
        self.worker.command_failed.connect(self._show_error)
        self.model.rowsInserted.connect(self._show_added)
        for signal in (self.model.rowsInserted, self.model.rowsRemoved, self.model.rowsMoved,
                       self.model.modelReset, self.model.dataChanged, self.model.layoutChanged):
            signal.connect(self._update_controls)
        self.view.selectionModel().selectionChanged.connect(self._update_controls)
        self.cancel_button.clicked.connect(self._cancel_selected)
        self.retry_button.clicked.connect(self._retry_selected)
        self.up_button.clicked.connect(lambda: self._move_selected(-1))
        self.down_button.clicked.connect(lambda: self._move_selected(+1))
        self.clear_button.clicked.connect(self._clear_finished)
        self.show_button.clicked.connect(self._show_selected)
        self.view.doubleClicked.connect(lambda _index: self._show_selected())
        self.pause_button.toggled.connect(self._pause_toggled)
        self.scan_status.cancel_requested.connect(self._scan_cancel_clicked)

    @Slot(object)
    def _tasks_loaded(self, tasks: list[TaskSnapshot] | None) -> None:
        # None: the worker was stopped before the list was read (the window closed early);
        # the loop must not start then, and stop() made sure start() will not.
        if tasks is None or self.worker.closed:
            return
        self.model.set_tasks(tasks)
        self._set_paused_look(self.worker.paused)
        self.worker.start()

    # -- scan status (used by the library page) -----------------------------------------------

    def show_scan_progress(self, done: int, total: int, current_path: str = "") -> None:
        """Show a running scan: ``done`` of ``total`` files (``total`` 0 while unknown)."""
        self.scan_status.show_progress(done, total, current_path)

    def show_scan_result(self, text: str) -> None:
        """Replace the scan line with its outcome (no bar, no Cancel)."""
        self.scan_status.show_result(text)

    @Slot(int, int)
    def show_update_check_progress(self, done: int, total: int) -> None:
        """Show "Check for updates" running: ``done`` of ``total`` models (0: not known yet)."""
        counted = f": {done} of {total} models" if total > 0 else "…"
        self.scan_status.show_activity(f"Checking for updates{counted}", done, total)

    @Slot()
    def _scan_cancel_clicked(self) -> None:
        self.scan_status.cancel_button.setEnabled(False)
        self.scan_status.label.setText("Cancelling the scan…")
        self.scan_cancel_requested.emit()

    # -- controls -----------------------------------------------------------------------------

    def selected_task(self) -> TaskSnapshot | None:
        indexes = self.view.selectionModel().selectedIndexes()
        return indexes[0].data(TaskRole.SNAPSHOT) if indexes else None

    def select_task(self, task_id: int) -> None:
        row = self.model.row_of(task_id)
        if row is not None:
            self.view.selectionModel().select(
                self.model.index(row), QItemSelectionModel.SelectionFlag.ClearAndSelect
            )
            self.view.setCurrentIndex(self.model.index(row))

    @Slot()
    def _cancel_selected(self) -> None:
        task = self.selected_task()
        if task is not None:
            self.worker.cancel(task.id)

    @Slot()
    def _retry_selected(self) -> None:
        task = self.selected_task()
        if task is None:
            return
        # A file Civitai's scans flagged fails again unless the user chooses it, here.
        allow = task.error_kind == "flagged"
        if allow and not confirm_flagged(self, task.error or ""):
            return
        self.error_label.hide()
        self.before_retry(lambda: self.worker.retry(task.id, allow_flagged=allow))

    @Slot()
    def _show_selected(self) -> None:
        """The file manager at the completed download's folder (where an already present
        file was found, too)."""
        task = self.selected_task()
        if task is not None and task.state == "completed" and task.dest_path:
            self.opener.open(QUrl.fromLocalFile(os.path.dirname(task.dest_path)), "the folder")

    def _move_selected(self, step: int) -> None:
        task = self.selected_task()
        if task is None:
            return
        queued = [t.id for t in self.model.tasks() if t.state == "queued"]
        if task.id not in queued:
            return
        target = queued.index(task.id) + step
        if 0 <= target < len(queued):
            self.worker.move(task.id, target)

    @Slot()
    def _clear_finished(self) -> None:
        self.worker.clear_finished()
        self._failures.clear()
        self.failures_label.hide()
        self.error_label.hide()

    @Slot(bool)
    def _pause_toggled(self, paused: bool) -> None:
        if paused:
            self.worker.pause()
        else:
            self.worker.resume()
        self._set_paused_look(paused)

    @Slot(bool)
    def _paused_changed(self, paused: bool) -> None:
        self._set_paused_look(paused)

    def _set_paused_look(self, paused: bool) -> None:
        self.pause_button.blockSignals(True)
        self.pause_button.setChecked(paused)
        self.pause_button.blockSignals(False)
        self.pause_button.setText("Resume all" if paused else "Pause all")
        self._update_controls()

    @Slot()
    def _update_controls(self) -> None:
        active = self.model.active_count()
        paused = self.pause_button.isChecked()
        if active:
            text = f"{active} download{'s' if active != 1 else ''} in queue"
        else:
            text = "Nothing queued"
        self.count_label.setText(text + (" · paused" if paused else ""))
        task = self.selected_task()
        state = task.state if task is not None else None
        queued = [t.id for t in self.model.tasks() if t.state == "queued"]
        self.cancel_button.setEnabled(state in ("queued", "downloading"))
        self.retry_button.setEnabled(state in ("failed", "cancelled"))
        self.show_button.setEnabled(state == "completed" and bool(task and task.dest_path))
        position = queued.index(task.id) if task is not None and task.id in queued else -1
        self.up_button.setEnabled(position > 0)
        self.down_button.setEnabled(0 <= position < len(queued) - 1)
        self.clear_button.setEnabled(self.model.rowCount() > active)

    @Slot(QModelIndex, int, int)
    def _show_added(self, parent: QModelIndex, first: int, last: int) -> None:
        """A download just queued is scrolled into sight (new ones come last)."""
        self.view.scrollTo(self.model.index(last, 0, parent))

    @Slot(object)
    def _task_finished(self, task: TaskSnapshot) -> None:
        self._failures.pop(task.id, None)  # retried: its old failure is over
        if task.state == "failed":
            reason = f"{task_title(task)}: {failure_reason(task)}"
            newest = [(task.id, reason), *self._failures.items()][:RECENT_FAILURES]
            self._failures = dict(newest)
        self._show_failures()

    def _show_failures(self) -> None:
        self.failures_label.setText("Recent failures:\n" + "\n".join(self._failures.values()))
        self.failures_label.setVisible(bool(self._failures))

    def recent_failures(self) -> list[str]:
        return list(self._failures.values())

    @Slot(str)
    def _show_error(self, text: str) -> None:
        self.error_label.setText(text)
        self.error_label.show()

    # -- shutdown -----------------------------------------------------------------------------

    @Slot()
    def shutdown(self) -> None:
        """Stop the download thread; an interrupted download resumes on the next start."""
        if self.worker is not None:
            self.worker.stop()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.shutdown()
        super().closeEvent(event)
