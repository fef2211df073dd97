"""Paints one download row: name, state, a progress bar, and speed/ETA or the failure reason."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QFontMetrics, QPainter, QPalette
from PySide6.QtWidgets import (
    QApplication,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionProgressBar,
    QStyleOptionViewItem,
)

from civdesk.core.downloads.queue import TaskSnapshot
from civdesk.core.units import human_duration
from civdesk.ui.downloads.messages import STATE_LABELS, size_text, task_title
from civdesk.ui.downloads.model import (
    DownloadListModel,
    TaskRole,
    has_reason,
    progress_percent,
    reason_text,
)
from civdesk.ui.theme import outcome_color

MARGIN = 6
BAR_HEIGHT = 12
LEFT = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
AnyIndex = QModelIndex | QPersistentModelIndex


def detail_text(task: TaskSnapshot) -> str:
    """The second line of a row: sizes, speed and ETA, or why it failed."""
    reason = reason_text(task) if has_reason(task) else None
    if reason:
        return reason
    state, done, total = task.state, task.bytes_done, task.bytes_total
    if state == "downloading":
        parts = [f"{size_text(done)} of {size_text(total)}"]
        if task.speed:
            parts.append(f"{size_text(task.speed)}/s")
        parts.append(f"{human_duration(task.eta)} left")
        return " · ".join(parts)
    if state == "completed":
        parts = [size_text(total or done)]
        if task.already_present:
            parts.insert(0, "Already in the library")
        if task.checked in ("size", "nothing"):
            # Never "verified" without a SHA256 to match (the library marks it Unverified).
            parts.append("Unverified: Civitai publishes no SHA256 for this file")
        return " · ".join(parts)
    if state == "queued" and done:
        return f"{size_text(done)} of {size_text(total)} · resumes where it stopped"
    return STATE_LABELS.get(state, str(state))


def title_layout(width: int, title_advance: int, state_advance: int) -> tuple[int, int]:
    """The widths of the first line's name and state label in a row ``width`` wide.

    The name comes first: the state label (also told by the bar and the second line) is
    dropped before the name would shrink under half the row, or under its own width when
    that is less; the name is elided into what it gets, never left out.
    """
    state_width = state_advance + MARGIN
    title_width = width - state_width
    if title_width < min(title_advance, width // 2):
        return max(width, 0), 0
    return title_width, state_width


def _task_at(index: AnyIndex) -> TaskSnapshot:
    """The row's task, read in Python from our model when the view shows it directly.

    A paint asked index.data() for half a dozen roles, and each call went through C++ back
    into the model's Python data(): a GIL hand-over each, which the downloader and a scan
    make slow to win back. One Python call instead.
    """
    model = index.model()
    if isinstance(model, DownloadListModel):
        return model.task(index.row())
    task = index.data(TaskRole.SNAPSHOT)
    assert isinstance(task, TaskSnapshot)
    return task


class DownloadDelegate(QStyledItemDelegate):
    """Two lines and, while active, a progress bar drawn by the platform style."""

    def sizeHint(self, option: QStyleOptionViewItem, index: AnyIndex) -> QSize:
        line = QFontMetrics(option.font).height()
        return QSize(240, MARGIN * 3 + line * 2 + BAR_HEIGHT)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: AnyIndex) -> None:
        # The style paints background and selection; the text is ours. No initStyleOption:
        # it asks the model for eight roles this model has no values for but the text.
        opt = QStyleOptionViewItem(option)
        opt.text = ""
        widget = opt.widget
        style = widget.style() if widget else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, widget)

        task = _task_at(index)
        state = task.state
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        text_color = option.palette.color(
            QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text)
        # One metrics object and plain ints: every Qt value object made here is freed from
        # Python, and PySide gives the GIL up to free one (slow to win back under load).
        metrics = QFontMetrics(option.font)
        line = metrics.height()
        r = option.rect
        left, top = r.left() + MARGIN, r.top() + MARGIN
        width = r.width() - 2 * MARGIN

        painter.save()
        painter.setPen(text_color)
        state_label = STATE_LABELS.get(state, str(state))
        name = task_title(task)
        title_width, state_width = title_layout(width, metrics.horizontalAdvance(name),
                                                metrics.horizontalAdvance(state_label))
        title = metrics.elidedText(name, Qt.TextElideMode.ElideMiddle, title_width)
        painter.drawText(QRect(left, top, title_width, line), LEFT, title)
        if state in ("failed", "completed") and not selected:
            # Red or green in the lightness that reads on this scheme's rows.
            painter.setPen(outcome_color(state, option.palette.color(QPalette.ColorRole.Base)))
        if state_width:
            painter.drawText(QRect(left + width - 1 - state_width, top, state_width, line),
                             RIGHT, state_label)

        bar_top = top + line + MARGIN // 2
        if state in ("queued", "downloading"):
            bar = QStyleOptionProgressBar()
            bar.rect = QRect(left, bar_top, width, BAR_HEIGHT)
            bar.state = QStyle.StateFlag.State_Enabled | QStyle.StateFlag.State_Horizontal
            bar.minimum = 0
            percent = progress_percent(task)
            # An unknown size shows a busy bar (max 0) while downloading, empty while queued.
            bar.maximum = 0 if percent < 0 and state == "downloading" else 100
            bar.progress = max(0, percent)
            bar.textVisible = False
            style.drawControl(QStyle.ControlElement.CE_ProgressBar, bar, painter, widget)

        detail_top = bar_top + BAR_HEIGHT - 1 + MARGIN // 2
        if not (state == "failed" and not selected):  # why it failed: in the failure's red
            painter.setPen(text_color)
        detail = metrics.elidedText(detail_text(task), Qt.TextElideMode.ElideRight, width)
        painter.drawText(QRect(left, detail_top, width, line), LEFT, detail)
        painter.restore()
