"""Paints one download row: name, state, a progress bar, and speed/ETA or the failure reason."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPalette
from PySide6.QtWidgets import (
    QApplication,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionProgressBar,
    QStyleOptionViewItem,
)

from civdesk.ui.downloads.messages import STATE_LABELS, human_duration, size_text
from civdesk.ui.downloads.model import TaskRole

MARGIN = 6
BAR_HEIGHT = 12
LEFT = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
AnyIndex = QModelIndex | QPersistentModelIndex
FAILED_COLOR = QColor("#c62828")
DONE_COLOR = QColor("#2e7d32")


def detail_text(index: AnyIndex) -> str:
    """The second line of a row: sizes, speed and ETA, or why it failed."""
    state = index.data(TaskRole.STATE)
    done = index.data(TaskRole.BYTES_DONE)
    total = index.data(TaskRole.BYTES_TOTAL)
    reason = index.data(TaskRole.REASON)
    if reason:
        return str(reason)
    if state == "downloading":
        speed = index.data(TaskRole.SPEED)
        parts = [f"{size_text(done)} of {size_text(total)}"]
        if speed:
            parts.append(f"{size_text(speed)}/s")
        parts.append(f"{human_duration(index.data(TaskRole.ETA))} left")
        return " · ".join(parts)
    if state == "completed":
        return size_text(total or done)
    if state == "queued" and done:
        return f"{size_text(done)} of {size_text(total)} · resumes where it stopped"
    return STATE_LABELS.get(state, str(state))


class DownloadDelegate(QStyledItemDelegate):
    """Two lines and, while active, a progress bar drawn by the platform style."""

    def sizeHint(self, option: QStyleOptionViewItem, index: AnyIndex) -> QSize:
        line = QFontMetrics(option.font).height()
        return QSize(240, MARGIN * 3 + line * 2 + BAR_HEIGHT)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: AnyIndex) -> None:
        # The base paints background and selection; the text is ours.
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        opt.text = ""
        style = opt.widget.style() if opt.widget else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, opt.widget)

        state = index.data(TaskRole.STATE)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        text_role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        line = QFontMetrics(option.font).height()
        rect = option.rect.adjusted(MARGIN, MARGIN, -MARGIN, -MARGIN)

        painter.save()
        painter.setPen(option.palette.color(text_role))
        state_label = STATE_LABELS.get(state, str(state))
        state_width = QFontMetrics(option.font).horizontalAdvance(state_label) + MARGIN
        title_rect = QRect(rect.left(), rect.top(), rect.width() - state_width, line)
        title = QFontMetrics(option.font).elidedText(
            str(index.data(Qt.ItemDataRole.DisplayRole)), Qt.TextElideMode.ElideMiddle,
            title_rect.width(),
        )  # fmt: skip
        painter.drawText(title_rect, LEFT, title)
        if state == "failed" and not selected:
            painter.setPen(FAILED_COLOR)
        elif state == "completed" and not selected:
            painter.setPen(DONE_COLOR)
        painter.drawText(
            QRect(rect.right() - state_width, rect.top(), state_width, line),
            RIGHT, state_label,
        )  # fmt: skip

        bar_rect = QRect(rect.left(), rect.top() + line + MARGIN // 2, rect.width(), BAR_HEIGHT)
        if state in ("queued", "downloading"):
            bar = QStyleOptionProgressBar()
            bar.rect = bar_rect
            bar.state = QStyle.StateFlag.State_Enabled | QStyle.StateFlag.State_Horizontal
            bar.minimum = 0
            percent = index.data(TaskRole.PROGRESS)
            # An unknown size shows a busy bar (max 0) while downloading, empty while queued.
            bar.maximum = 0 if percent < 0 and state == "downloading" else 100
            bar.progress = max(0, percent)
            bar.textVisible = False
            style.drawControl(QStyle.ControlElement.CE_ProgressBar, bar, painter, opt.widget)

        detail_rect = QRect(rect.left(), bar_rect.bottom() + MARGIN // 2, rect.width(), line)
        if not (state == "failed" and not selected):
            painter.setPen(option.palette.color(text_role))
        detail = QFontMetrics(option.font).elidedText(
            detail_text(index), Qt.TextElideMode.ElideRight, detail_rect.width()
        )
        painter.drawText(detail_rect, LEFT, detail)
        painter.restore()
