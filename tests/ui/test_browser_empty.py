"""The Civitai page before its first search: what to do, and the API key when none is set."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from tests.conftest import TEST_API_KEY
from tests.double import CivitaiDouble, SampleCatalog
from tests.ui.conftest import open_core
from tests.ui.test_browser import stop_tasks

from civdesk.core.context import Core
from civdesk.ui import tasks
from civdesk.ui.browser.page import BrowserPage
from civdesk.ui.key_dialog import KeyDialog
from civdesk.ui.thumbnails import ThumbnailLoader

WAIT_MS = 10_000


@pytest.fixture
def keyless_core(
    tmp_data_dir: Path, civitai: CivitaiDouble, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Core]:
    monkeypatch.delenv("CIVITAI_API_KEY", raising=False)
    core = open_core(tmp_data_dir, civitai.base_url)  # the key in a file there: none yet
    try:
        yield core
    finally:
        stop_tasks()
        core.close()


def make_page(qtbot, core: Core) -> BrowserPage:
    page = BrowserPage(core, ThumbnailLoader.for_core(core))
    qtbot.addWidget(page)
    page.resize(900, 700)
    page.show()
    qtbot.waitExposed(page)
    return page


def test_first_start_without_a_key_says_what_to_do_and_takes_a_tested_key(
    qtbot, keyless_core: Core
):
    page = make_page(qtbot, keyless_core)
    empty = page.empty_state
    qtbot.waitUntil(lambda: empty.key_button.isVisible(), timeout=WAIT_MS)
    assert empty.isVisible() and not page.view.isVisible()  # no blank grid
    assert "requires an API key for downloads" in empty.key_text.text()
    qtbot.mouseClick(empty.key_button, Qt.MouseButton.LeftButton)
    dialog = empty.dialog
    assert isinstance(dialog, KeyDialog) and dialog.isVisible()
    assert not dialog.without_button.isVisible()  # no download here to go without a key
    qtbot.keyClicks(dialog.key_edit, TEST_API_KEY)
    with qtbot.waitSignal(dialog.tested, timeout=WAIT_MS) as tested:
        qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    assert tested.args[0] is True
    with qtbot.waitSignal(empty.key_saved, timeout=WAIT_MS):
        qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert keyless_core.keys.get() == TEST_API_KEY
    assert not empty.key_button.isVisible() and not empty.key_text.isVisible()


def test_with_a_key_the_first_view_only_offers_the_search(qtbot, keyless_core: Core):
    keyless_core.keys.set(TEST_API_KEY)
    page = make_page(qtbot, keyless_core)
    empty = page.empty_state
    tasks.wait_for_pools()  # the key store has answered
    QApplication.processEvents()
    assert empty.isVisible() and not empty.key_button.isVisible()


def test_show_top_models_searches_and_replaces_the_empty_state(
    qtbot, keyless_core: Core, civitai_catalog: SampleCatalog
):
    page = make_page(qtbot, keyless_core)
    with qtbot.waitSignal(page.page_loaded, timeout=WAIT_MS):
        qtbot.mouseClick(page.empty_state.top_button, Qt.MouseButton.LeftButton)
    assert page.view.isVisible() and not page.empty_state.isVisible()
    assert page.results.rowCount() == len(civitai_catalog.models)



def test_a_key_set_elsewhere_meanwhile_drops_the_button(qtbot, keyless_core: Core):
    page = make_page(qtbot, keyless_core)
    qtbot.waitUntil(page.empty_state.key_button.isVisible, timeout=WAIT_MS)
    keyless_core.keys.set(TEST_API_KEY)  # as the Settings page does
    page.hide()
    page.show()
    qtbot.waitUntil(lambda: not page.empty_state.key_button.isVisible(), timeout=WAIT_MS)
