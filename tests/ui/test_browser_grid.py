"""The Civitai grid from the keyboard and the mouse: moving between cards, opening one, the
card's context menu (Download latest, Open on Civitai, Copy link), hover and focus."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QRect, Qt, QUrl
from PySide6.QtGui import QContextMenuEvent, QGuiApplication, QImage, QPainter
from PySide6.QtWidgets import QApplication, QMenu, QStyle, QStyleOptionViewItem
from tests.double import CivitaiDouble
from tests.ui.test_browser import app_core, page, search  # noqa: F401  (fixtures)

from civdesk.core.civitai.schema import Model
from civdesk.ui.browser.delegate import CardDelegate
from civdesk.ui.browser.model import SearchResultsModel
from civdesk.ui.browser.page import BrowserPage
from civdesk.ui.thumbnails import ThumbnailLoader

WAIT_MS = 10_000


@pytest.fixture
def grid(qtbot, page: BrowserPage, civitai: CivitaiDouble) -> BrowserPage:  # noqa: F811
    for i in range(12):
        civitai.add_version(civitai.add_model(f"Grid Model {i:02d}", "LORA"), "v1")
    search(qtbot, page, "Grid Model")
    qtbot.waitUntil(lambda: page.results.rowCount() == 12, timeout=WAIT_MS)
    page.view.setFocus()
    qtbot.waitUntil(page.view.hasFocus)
    return page


def current_row(grid: BrowserPage) -> int:
    return grid.view.currentIndex().row()


def open_menu(qtbot) -> QMenu:
    qtbot.waitUntil(lambda: isinstance(QApplication.activePopupWidget(), QMenu),
                    timeout=WAIT_MS)
    menu = QApplication.activePopupWidget()
    assert isinstance(menu, QMenu) and menu.objectName() == "cardMenu"
    return menu


def action(menu: QMenu, name: str):  # type: ignore[no-untyped-def]
    return next(a for a in menu.actions() if a.objectName() == name)


# -- keyboard ---------------------------------------------------------------------------------


def test_the_keyboard_moves_between_cards_and_enter_opens_one(qtbot, grid: BrowserPage):
    view = grid.view
    assert current_row(grid) == 0  # focus lands on the first card
    qtbot.keyClick(view, Qt.Key.Key_Right)
    assert current_row(grid) == 1
    qtbot.keyClick(view, Qt.Key.Key_End)
    assert current_row(grid) == 11
    qtbot.keyClick(view, Qt.Key.Key_Home)
    assert current_row(grid) == 0
    qtbot.keyClick(view, Qt.Key.Key_PageDown)
    assert current_row(grid) > 0
    qtbot.keyClick(view, Qt.Key.Key_PageUp)
    assert current_row(grid) == 0
    qtbot.keyClick(view, Qt.Key.Key_Down)
    below = current_row(grid)
    assert below > 0  # the next row of cards
    with qtbot.waitSignal(grid.model_opened, timeout=WAIT_MS) as opened:
        qtbot.keyClick(view, Qt.Key.Key_Return)
    assert opened.args == [grid.results.model_at(below).id]
    assert grid.stack.currentWidget() is grid.detail


# -- the card's menu --------------------------------------------------------------------------


@pytest.mark.parametrize("keys", [(Qt.Key.Key_F10, Qt.KeyboardModifier.ShiftModifier),
                                  (Qt.Key.Key_Menu, Qt.KeyboardModifier.NoModifier)])
def test_the_keyboard_opens_the_menu_of_the_current_card(qtbot, grid: BrowserPage, keys):
    qtbot.keyClick(grid.view, Qt.Key.Key_Right)
    qtbot.keyClick(grid.view, keys[0], keys[1])
    menu = open_menu(qtbot)
    assert [a.text() for a in menu.actions()] == [
        "Download latest", "Open on Civitai", "Copy link"]
    model = grid.results.model_at(1)
    url = grid.core.sites.page_of(model)
    action(menu, "menuCopyLink").trigger()
    assert QGuiApplication.clipboard().text() == url
    menu.close()


def test_the_menu_downloads_the_latest_version_and_opens_the_page(qtbot, grid: BrowserPage):
    model = grid.results.model_at(2)
    index = grid.view.model().index(2, 0)
    rect = grid.view.visualRect(index)
    QApplication.sendEvent(grid.view.viewport(), QContextMenuEvent(
        QContextMenuEvent.Reason.Mouse, rect.center(), grid.view.viewport().mapToGlobal(
            rect.center())))
    menu = open_menu(qtbot)
    assert current_row(grid) == 2  # the menu is the clicked card's
    with qtbot.waitSignal(grid.download_requested) as asked:
        action(menu, "menuDownloadLatest").trigger()
    assert asked.args == [model.latest_version.id, None, False, None]

    opened: list[str] = []
    grid.opener.open_url = lambda url: opened.append(url.toString()) or True
    action(menu, "menuOpenOnCivitai").trigger()
    assert opened == [grid.core.sites.page_of(model)]
    menu.close()


def test_open_on_civitai_says_so_when_nothing_could_open_it(qtbot, grid: BrowserPage):
    grid.opener.open_url = lambda url: False
    menu = grid.card_menu(grid.results.model_at(0))
    with qtbot.waitSignal(grid.opener.failed) as failed:
        action(menu, "menuOpenOnCivitai").trigger()
    assert failed.args == [grid.core.sites.page_of(grid.results.model_at(0))]
    for box in QApplication.topLevelWidgets():
        if box.objectName() == "openFailed":
            box.close()


def test_the_detail_link_goes_through_the_opener(qtbot, grid: BrowserPage):
    grid.open_model(grid.results.model_at(0))
    opened: list[QUrl] = []
    grid.opener.open_url = lambda url: opened.append(url) or True
    grid.detail.link.linkActivated.emit(grid.core.sites.page_of(grid.results.model_at(0)))
    assert [u.toString() for u in opened] == [grid.core.sites.page_of(grid.results.model_at(0))]


# -- hover and focus --------------------------------------------------------------------------


def render(delegate: CardDelegate, model: SearchResultsModel, state: QStyle.StateFlag) -> QImage:
    option = QStyleOptionViewItem()
    option.font = QApplication.font()
    size = delegate.sizeHint(option, model.index(0))
    option.rect = QRect(QPoint(0, 0), size)
    option.palette = QApplication.palette()
    option.state = QStyle.StateFlag.State_Enabled | state
    image = QImage(size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.black)
    painter = QPainter(image)
    delegate.paint(painter, option, model.index(0))
    painter.end()
    return image


def test_hovered_and_focused_cards_look_different(qtbot, tmp_path: Path):
    loader = ThumbnailLoader(tmp_path / "cache")
    model = SearchResultsModel()
    model.append_page([Model(id=1, name="Harbor Light", type="LORA")])
    delegate = CardDelegate(loader)
    plain = render(delegate, model, QStyle.StateFlag.State_None)
    hovered = render(delegate, model, QStyle.StateFlag.State_MouseOver)
    focused = render(delegate, model, QStyle.StateFlag.State_HasFocus)
    assert plain != hovered and plain != focused and hovered != focused
    assert plain == render(delegate, model, QStyle.StateFlag.State_None)  # cache keyed right
    loader.cancel_pending()


# -- the filters ------------------------------------------------------------------------------


@pytest.mark.parametrize("width", [900, 1280])
def test_each_filter_is_wide_enough_for_its_longest_entry(
    qtbot, page: BrowserPage, width: int  # noqa: F811
):
    from PySide6.QtWidgets import QStyleOptionComboBox

    from civdesk.ui.icons import stylesheet

    page.setStyleSheet(stylesheet())  # the app's own padding and drop-down arrow
    page.resize(width, 700)
    qtbot.waitUntil(lambda: page.width() == width)
    QApplication.processEvents()
    for combo in (page.type_combo, page.base_combo, page.sort_combo, page.period_combo):
        option = QStyleOptionComboBox()
        combo.initStyleOption(option)
        field = combo.style().subControlRect(
            QStyle.ComplexControl.CC_ComboBox, option,
            QStyle.SubControl.SC_ComboBoxEditField, combo)
        longest = max((combo.itemText(i) for i in range(combo.count())),
                      key=combo.fontMetrics().horizontalAdvance)
        assert field.width() >= combo.fontMetrics().horizontalAdvance(longest), (
            combo.objectName(), longest, field.width())
