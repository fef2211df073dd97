"""The library card delegate: cards rendered once, repainted from the cache, redrawn on change."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QListView, QStyle
from tests.ui.library_cards import paint_card

from civdesk.core.library.repository import LibraryEntry, UpdateInfo
from civdesk.ui.library.delegate import CardCache, CardDelegate
from civdesk.ui.library.model import LibraryFilterProxy, LibraryModel, LibrarySnapshot
from civdesk.ui.theme import badge_color
from civdesk.ui.thumbnails import ThumbnailLoader, thumbnail_key


def entry(
    tmp_path: Path, n: int, *, preview: Path | None = None, model_type: str = "LORA"
) -> LibraryEntry:
    return LibraryEntry(
        path=str(tmp_path / f"model_{n}.safetensors"), file_name=f"model_{n}.safetensors",
        size=2_000_000, sha256=f"{n:064X}", model_id=n, version_id=100 + n,
        model_name=f"Model {n}", version_name="v1", type=model_type, base_model="SD 1.5",
        trained_words=(), preview=str(preview) if preview else None, info=None,
        added_at=datetime(2024, 1, 1, tzinfo=timezone.utc), identified=True,
    )  # fmt: skip


@pytest.fixture
def loader(qtbot, tmp_path: Path):
    thumbnails = ThumbnailLoader(tmp_path / "cache")
    yield thumbnails
    thumbnails.cancel_pending()


@pytest.fixture
def preview(tmp_path: Path) -> Path:
    image = QImage(192, 240, QImage.Format.Format_RGB32)
    image.fill(QColor("#2a9d8f"))
    path = tmp_path / "preview.png"
    assert image.save(str(path))
    return path


class Grid:
    """A model behind the page's proxy, and a delegate painting its cards into images."""

    def __init__(self, thumbnails: ThumbnailLoader, entries: list[LibraryEntry]) -> None:
        self.model = LibraryModel()
        self.model.set_snapshot(LibrarySnapshot(tuple(entries)))
        self.proxy = LibraryFilterProxy()
        self.proxy.setSourceModel(self.model)
        self.delegate = CardDelegate(thumbnails, snapshot=lambda: self.model.snapshot)

    def paint(self, row: int, state: QStyle.StateFlag = QStyle.StateFlag.State_Enabled) -> QImage:
        return paint_card(self.delegate, self.proxy.index(row, 0), state)


def test_a_card_is_rendered_once_and_repainted_from_the_cache(loader, tmp_path):
    grid = Grid(loader, [entry(tmp_path, 1), entry(tmp_path, 2)])
    first = grid.paint(0)
    assert len(grid.delegate.cards) == 1
    again = grid.paint(0)
    assert len(grid.delegate.cards) == 1, "the second paint drew no new card"
    assert again == first
    assert grid.paint(1) != first and len(grid.delegate.cards) == 2


def test_selection_and_hover_are_drawn_on_their_own_cards(loader, tmp_path):
    grid = Grid(loader, [entry(tmp_path, 1)])
    plain = grid.paint(0)
    selected = grid.paint(0, QStyle.StateFlag.State_Enabled | QStyle.StateFlag.State_Selected)
    hovered = grid.paint(0, QStyle.StateFlag.State_Enabled | QStyle.StateFlag.State_MouseOver)
    assert len({plain.cacheKey(), selected.cacheKey(), hovered.cacheKey()}) == 3
    assert plain != selected and plain != hovered and selected != hovered
    assert grid.paint(0) == plain


def test_an_arriving_thumbnail_redraws_the_card(qtbot, loader, tmp_path, preview):
    grid = Grid(loader, [entry(tmp_path, 1, preview=preview)])
    loading = grid.paint(0)
    key = thumbnail_key(str(preview), CardDelegate.thumb_size())
    with qtbot.waitSignal(loader.thumbnail_ready, timeout=5000):
        pass
    assert loader.cached(key) is not None
    ready = grid.paint(0)
    assert ready != loading
    teal = QColor("#2a9d8f").rgb()
    assert ready.pixel(100, 150) == teal, "the decoded preview is on the card"


def test_changed_row_data_is_redrawn(loader, tmp_path):
    old = entry(tmp_path, 1)
    grid = Grid(loader, [old])
    before = grid.paint(0)
    renamed = dataclasses.replace(old, version_name="v2 renamed")
    update = UpdateInfo(1, "Model 1", "LORA", (101,), ("v1",), 999, "v3")
    grid.model.set_snapshot(LibrarySnapshot((renamed,), updates={1: update}))
    after = grid.paint(0)
    assert after != before
    reference = Grid(loader, [renamed])
    reference.model.set_snapshot(LibrarySnapshot((renamed,), updates={1: update}))
    assert reference.paint(0) == after, "the cached card is what a fresh render draws"


def test_without_a_snapshot_getter_badges_come_from_the_roles(loader, tmp_path):
    e = entry(tmp_path, 1)
    update = UpdateInfo(1, "Model 1", "LORA", (101,), ("v1",), 999, "v3")
    with_getter = Grid(loader, [e])
    with_getter.model.set_snapshot(LibrarySnapshot((e,), updates={1: update}))
    by_roles = Grid(loader, [e])
    by_roles.model.set_snapshot(LibrarySnapshot((e,), updates={1: update}))
    by_roles.delegate = CardDelegate(loader)
    assert by_roles.paint(0) == with_getter.paint(0)


def test_the_card_cache_is_bounded_in_bytes(loader, tmp_path):
    entries = [entry(tmp_path, n) for n in range(12)]
    grid = Grid(loader, entries)
    size = CardDelegate.card_size()
    grid.delegate.cards = CardCache(limit_bytes=5 * size.width() * size.height() * 4)
    for row in range(len(entries)):
        grid.paint(row)
    assert len(grid.delegate.cards) == 5
    assert grid.delegate.cards.size_bytes <= grid.delegate.cards.limit_bytes


def test_shared_pieces_are_drawn_once_for_many_cards(loader, tmp_path, preview):
    entries = [entry(tmp_path, n, preview=preview if n % 2 else None) for n in range(10)]
    grid = Grid(loader, entries)
    grid.model.set_snapshot(
        LibrarySnapshot(tuple(entries), updates={1: UpdateInfo(1, "M", "LORA", (), (), 9, "v")})
    )
    grid.paint(0)
    grid.paint(1)
    parts = len(grid.delegate.parts)  # type badge, loading art, update badge
    for row in range(2, 10):
        grid.paint(row)
    assert len(grid.delegate.cards) == 10
    assert len(grid.delegate.parts) == parts, "eight more cards drew no new piece"
    grid.delegate.cards.clear()
    assert grid.paint(1) == grid.paint(1)


def test_types_get_their_own_badge_and_loading_art(loader, tmp_path, preview):
    lora = Grid(loader, [entry(tmp_path, 1, preview=preview)])
    vae = Grid(loader, [entry(tmp_path, 1, preview=preview, model_type="VAE")])
    vae.delegate.parts = lora.delegate.parts
    first = lora.paint(0)
    count = len(lora.delegate.parts)
    assert vae.paint(0) != first
    assert len(lora.delegate.parts) == count + 2


class View:
    """A real QListView in icon mode showing ``count`` cards, like the library grid."""

    def __init__(self, qtbot, thumbnails, tmp_path, count, render_budget_s):
        self.model = LibraryModel()
        self.model.set_snapshot(LibrarySnapshot(tuple(entry(tmp_path, n) for n in range(count))))
        self.view = QListView()
        qtbot.addWidget(self.view)
        self.view.setViewMode(QListView.ViewMode.IconMode)
        self.view.setUniformItemSizes(True)
        self.view.setGridSize(CardDelegate.card_size())
        self.view.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)  # same size
        self.delegate = CardDelegate(
            thumbnails, self.view, snapshot=lambda: self.model.snapshot,
            render_budget_s=render_budget_s,
        )  # fmt: skip
        self.view.setItemDelegate(self.delegate)
        self.view.resize(4 * CardDelegate.card_size().width() + 40, 700)
        with qtbot.waitExposed(self.view):
            self.view.show()
        self.view.setModel(self.model)  # shown first: the test decides when cards are painted
        self.view.doItemsLayout()


def test_a_paint_renders_new_cards_only_within_its_budget_then_finishes_later(
    qtbot, loader, tmp_path
):
    bounded = View(qtbot, loader, tmp_path, 24, render_budget_s=0.0)  # one new card a turn
    bounded.view.viewport().repaint()
    assert len(bounded.delegate.cards) == 1
    assert bounded.delegate.has_deferred_cards, "the other visible cards are stand-ins"
    qtbot.waitUntil(lambda: not bounded.delegate.has_deferred_cards, timeout=5000)
    visible = len(bounded.delegate.cards)
    assert visible >= 8, "every card on screen was rendered for real, one turn each"

    unbounded = View(qtbot, loader, tmp_path, 24, render_budget_s=None)
    unbounded.view.viewport().repaint()
    assert not unbounded.delegate.has_deferred_cards
    assert len(unbounded.delegate.cards) == visible
    assert bounded.view.viewport().grab().toImage() == unbounded.view.viewport().grab().toImage()


def test_stand_ins_scrolled_before_their_turn_are_still_replaced(qtbot, loader, tmp_path):
    bounded = View(qtbot, loader, tmp_path, 40, render_budget_s=0.0)
    bounded.view.viewport().repaint()
    assert bounded.delegate.has_deferred_cards
    bounded.view.verticalScrollBar().setValue(CardDelegate.card_size().height() // 2)
    qtbot.waitUntil(lambda: not bounded.delegate.has_deferred_cards, timeout=5000)

    unbounded = View(qtbot, loader, tmp_path, 40, render_budget_s=None)
    unbounded.view.verticalScrollBar().setValue(CardDelegate.card_size().height() // 2)
    unbounded.view.viewport().repaint()
    assert bounded.view.viewport().grab().toImage() == unbounded.view.viewport().grab().toImage()


def test_a_hidpi_screen_keeps_as_many_cards_as_a_1x_screen() -> None:
    """Budget counted in 1x bytes: at pixel ratio 2 the cache must not shrink to a quarter
    (on a HiDPI screen that meant re-rendering the visible cards on every scroll)."""
    from PySide6.QtGui import QPixmap

    def card(ratio: float) -> QPixmap:
        pixmap = QPixmap(int(100 * ratio), int(100 * ratio))
        pixmap.setDevicePixelRatio(ratio)
        return pixmap

    for ratio in (1.0, 2.0):
        cache = CardCache(limit_bytes=5 * 100 * 100 * 4)
        for n in range(8):
            cache.put(n, card(ratio))
        assert len(cache) == 5, ratio


def test_an_identified_file_never_matched_to_civitais_sha256_is_marked_unverified(
    loader, tmp_path
):
    checked = dataclasses.replace(entry(tmp_path, 1), verified=True)
    unchecked = dataclasses.replace(checked, verified=False)
    unknown = dataclasses.replace(unchecked, identified=False, model_id=None, version_id=None)
    grid = Grid(loader, [checked, unchecked, unknown])
    mark = badge_color("unverified").rgb()

    def has_mark(image: QImage) -> bool:
        return any(image.pixel(x, y) == mark
                   for y in range(0, image.height(), 2) for x in range(image.width()))

    assert [has_mark(grid.paint(row)) for row in range(3)] == [False, True, False]
