"""The Downloads page: the whole queue with its controls; each failure says why on its row.

A view of the :class:`~civdesk.ui.services.downloads.DownloadService`: it shows what the
service says and sends the buttons' commands to it; it owns no queue or thread.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QItemSelectionModel, QModelIndex, QUrl, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QListView,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from civdesk.core.downloads.queue import TaskSnapshot
from civdesk.ui.downloads.confirm import confirm_flagged
from civdesk.ui.downloads.delegate import DownloadDelegate
from civdesk.ui.downloads.messages import failure_reason, task_title
from civdesk.ui.downloads.model import DownloadListModel, TaskRole
from civdesk.ui.opener import Opener
from civdesk.ui.status_line import StatusLine

if TYPE_CHECKING:
    from civdesk.ui.services.downloads import DownloadService

log = logging.getLogger(__name__)



def queue_headline(tasks: list[TaskSnapshot], paused: bool = False) -> str:
    """What the list holds, counted by what it is: ``2 downloads in queue · 1 finished``,
    ``2 finished, 1 failed``, ``Nothing queued``; `` · paused`` when paused."""
    counts = Counter(t.state for t in tasks)
    active = counts["queued"] + counts["downloading"]
    ended = [f"{counts[state]} {word}" for state, word in
             (("completed", "finished"), ("failed", "failed"), ("cancelled", "cancelled"))
             if counts[state]]
    if active:
        text = f"{active} download{'s' if active != 1 else ''} in queue"
        text += f" · {', '.join(ended)}" if ended else ""
    else:
        text = ", ".join(ended) if ended else "Nothing queued"
    return text + (" · paused" if paused else "")


class DownloadsPage(QWidget):
    """The download list with progress and its buttons. Why a download failed is said once,
    on its row (whole in the row's tooltip)."""

    def __init__(self, downloads: DownloadService, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("downloadsPage")
        self.downloads = downloads
        #: Opens a folder in the file manager, or says nothing could (its ``open_url`` is
        #: replaced in tests).
        self.opener = Opener(self)
        #: Runs a retry once settings typed elsewhere are saved (the window hands in the
        #: Settings page's ``after_saving``): a key pasted just before Retry is used.
        self.before_retry: Callable[[Callable[[], object]], object] = lambda retry: retry()
        self.model = DownloadListModel(self)
        self._build()
        self._connect()
        self.model.set_tasks(downloads.tasks())
        self._set_paused_look(downloads.paused)

    # -- construction -------------------------------------------------------------------------

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 12, 12, 12)

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
        # Whole rows at the top: a row scrolled half out showed its sizes without its name.
        self.view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerItem)
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

        self.error_label = QLabel()
        self.error_label.setObjectName("queueError")
        self.error_label.setWordWrap(True)
        self.error_label.hide()
        layout.addWidget(self.error_label)
        self._update_controls()

    def _button(self, text: str, name: str, tip: str) -> QPushButton:
        button = QPushButton(text)
        button.setObjectName(name)
        button.setToolTip(tip)
        return button

    def _connect(self) -> None:
        downloads = self.downloads
        self.model.connect_worker(downloads)
        downloads.tasks_loaded.connect(self.model.set_tasks)
        downloads.paused_changed.connect(self._paused_changed)
        downloads.problem.connect(self._show_error)
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
            self.downloads.cancel(task.id)

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
        self.before_retry(lambda: self.downloads.retry(task.id, allow_flagged=allow))

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
            self.downloads.move(task.id, target)

    @Slot()
    def _clear_finished(self) -> None:
        self.downloads.clear_finished()
        self.error_label.hide()

    @Slot(bool)
    def _pause_toggled(self, paused: bool) -> None:
        if paused:
            self.downloads.pause()
        else:
            self.downloads.resume()
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
        self.count_label.setText(queue_headline(self.model.tasks(),
                                                self.pause_button.isChecked()))
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

    def failures(self) -> list[str]:
        """``name: why`` of each failed download listed, as its row says it."""
        return [f"{task_title(t)}: {failure_reason(t)}" for t in self.model.tasks()
                if t.state == "failed"]

    @Slot(str)
    def _show_error(self, text: str) -> None:
        self.error_label.setText(text)
        self.error_label.show()
