"""The download row delegate reads each row's task in Python: a paint makes no model
data() call (each one is a GIL hand-over that a running download makes slow to win)."""

from __future__ import annotations

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPalette
from PySide6.QtWidgets import QApplication, QStyle, QStyleOptionViewItem
from tests.ui.test_download_model import snap

from civdesk.ui.downloads.delegate import DownloadDelegate, detail_text
from civdesk.ui.downloads.model import DownloadListModel
from civdesk.ui.theme import outcome_color


class _DataCountingModel(DownloadListModel):
    calls = 0

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):  # type: ignore[no-untyped-def]
        _DataCountingModel.calls += 1
        return super().data(index, role)


def _paint(model: DownloadListModel, row: int, selected: bool = False) -> QImage:
    image = QImage(420, 70, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.white)
    option = QStyleOptionViewItem()
    option.rect = QRect(0, 0, 420, 70)
    option.palette = QApplication.palette()
    option.font = QApplication.font()
    option.state = QStyle.StateFlag.State_Enabled
    if selected:
        option.state |= QStyle.StateFlag.State_Selected
    painter = QPainter(image)
    DownloadDelegate().paint(painter, option, model.index(row))
    painter.end()
    return image


def _has_colour(image: QImage, colour: QColor) -> bool:
    return any(image.pixelColor(x, y) == colour
               for y in range(image.height()) for x in range(image.width()))


def test_rows_paint_without_model_data_calls(qtbot):
    model = _DataCountingModel()
    model.set_tasks([
        snap(1),
        snap(2, "downloading", bytes_done=3_000_000, bytes_total=10_000_000),
        snap(3, "failed", error="HTTP 401", error_kind="auth"),
        snap(4, "completed", bytes_done=10_000_000, bytes_total=10_000_000),
    ])  # fmt: skip
    _DataCountingModel.calls = 0
    images = [_paint(model, row, selected) for row in range(4) for selected in (False, True)]
    assert _DataCountingModel.calls == 0
    assert all(image != images[0] for image in images[1:])  # each row drawn its own way
    failed_color = outcome_color("failed", QApplication.palette().color(QPalette.ColorRole.Base))
    assert _has_colour(images[4], failed_color)  # the failed row's state, unselected
    assert not _has_colour(images[5], failed_color)  # selected: the highlight's text colour


def test_second_line_words():
    assert detail_text(snap(1, "downloading", bytes_done=3_000_000, bytes_total=10_000_000)
                       ).startswith("3.0 MB of 10.0 MB · ")
    assert detail_text(snap(2, "queued", bytes_done=5_000_000, bytes_total=10_000_000)) == (
        "5.0 MB of 10.0 MB · resumes where it stopped")
    assert detail_text(snap(3, "completed", bytes_done=7_000_000, bytes_total=None)) == "7.0 MB"
    assert detail_text(snap(5, "completed", bytes_done=7_000_000, bytes_total=7_000_000,
                            already_present=True)) == "Already in the library · 7.0 MB"
    assert detail_text(snap(7, "completed", bytes_done=7_000_000, bytes_total=7_000_000,
                            checked="size")) == (
        "7.0 MB · Unverified: Civitai publishes no SHA256 for this file")
    assert detail_text(snap(8, "completed", bytes_done=7_000_000, bytes_total=7_000_000,
                            checked="sha256")) == "7.0 MB"
    assert "API key" in detail_text(snap(4, "failed", error="HTTP 401", error_kind="auth"))
    flagged = detail_text(snap(6, "failed", error_kind="flagged", error=(
        "Civitai's virus scan flagged old.ckpt as dangerous")))
    assert flagged == ("Civitai's virus scan flagged old.ckpt as dangerous. Retry asks whether "
                       "to download it anyway")


def test_a_narrow_row_keeps_the_name_first_and_drops_the_state_label():
    from civdesk.ui.downloads.delegate import MARGIN, title_layout

    # Room for both: the name takes what the state label leaves.
    assert title_layout(400, 150, 60) == (400 - 60 - MARGIN, 60 + MARGIN)
    # A long name in a narrow row: the state label goes, the name keeps the line.
    assert title_layout(140, 600, 90) == (140, 0)
    for width in range(0, 500, 7):
        title, state = title_layout(width, 300, 80)
        assert title >= min(300, width // 2) and title + state <= max(width, 0)
