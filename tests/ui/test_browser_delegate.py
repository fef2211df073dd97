"""The browser's card delegate: cards rendered once from one read of the row, redrawn on change."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import QApplication, QStyle, QStyleOptionViewItem

from civdesk.core.civitai.schema import Model
from civdesk.ui.browser.delegate import CardDelegate
from civdesk.ui.browser.model import SearchResultsModel
from civdesk.ui.thumbnails import ThumbnailLoader


class CountingModel(SearchResultsModel):
    """Search results that count the role calls a paint makes."""

    calls = 0

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):  # type: ignore[no-untyped-def]
        self.calls += 1
        return super().data(index, role)


@pytest.fixture
def loader(qtbot, tmp_path: Path):
    thumbnails = ThumbnailLoader(tmp_path / "cache")
    yield thumbnails
    thumbnails.cancel_pending()


def paint(delegate: CardDelegate, model: SearchResultsModel, row: int) -> QImage:
    option = QStyleOptionViewItem()
    option.font = QApplication.font()
    size = delegate.sizeHint(option, model.index(row))
    option.rect = QRect(0, 0, size.width(), size.height())
    option.palette = QApplication.palette()
    option.state = QStyle.StateFlag.State_Enabled
    image = QImage(size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.black)
    painter = QPainter(image)
    delegate.paint(painter, option, model.index(row))
    painter.end()
    return image


def results(*models: Model) -> CountingModel:
    model = CountingModel()
    model.append_page(models)
    return model


def test_a_result_card_is_read_with_four_model_calls_and_rendered_once(loader):
    model = results(Model(id=1, name="Harbor Light", type="LORA", download_count=4821))
    delegate = CardDelegate(loader)
    first = paint(delegate, model, 0)
    model.calls = 0
    again = paint(delegate, model, 0)
    assert model.calls <= 4, "one row object and the three values the item model decides"
    assert len(delegate.cards) == 1 and again == first


def test_a_changed_library_state_redraws_the_card_with_its_badge(loader):
    model = results(Model(id=1, name="Harbor Light", type="LORA"))
    delegate = CardDelegate(loader)
    plain = paint(delegate, model, 0)
    model.set_installed({1: {99}})  # a version on disk: Downloaded (no newer one known)
    badged = paint(delegate, model, 0)
    assert badged != plain and len(delegate.cards) == 2
    model.set_installed({})
    assert paint(delegate, model, 0) == plain and len(delegate.cards) == 2


def test_cards_of_different_models_differ(loader):
    model = results(
        Model(id=1, name="Harbor Light", type="LORA"), Model(id=2, name="Dune", type="VAE")
    )
    delegate = CardDelegate(loader)
    assert paint(delegate, model, 0) != paint(delegate, model, 1)
