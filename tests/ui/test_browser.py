"""The Civitai browser page against the loopback double: search, paging, detail, errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QGuiApplication, QTextDocument
from PySide6.QtWidgets import QApplication, QMessageBox
from tests.double import CivitaiDouble, SampleCatalog
from tests.ui.conftest import detailed_png, high_frequency, register, write_model_file

from civdesk.core.civitai.schema import Model
from civdesk.core.context import Core
from civdesk.ui import tasks
from civdesk.ui.browser.delegate import THUMB_SIZE
from civdesk.ui.browser.detail import FLAG_MARK, SafeTextBrowser
from civdesk.ui.browser.model import (
    DOWNLOADED,
    NOT_OWNED,
    UPDATE,
    CardPreview,
    ResultRole,
    SearchResultsModel,
    card_preview,
    library_state,
    preview_url,
)
from civdesk.ui.browser.page import BrowserPage, OwnedFilter
from civdesk.ui.browser.versions import VersionRole
from civdesk.ui.thumbnails import ThumbnailLoader, thumbnail_key

WAIT_MS = 10_000


def stop_tasks() -> None:
    """Let finished tasks deliver, then cancel the rest (before the database closes).

    Waiting first sidesteps a ui.tasks race: cancelling a handle whose runnable already ran
    (and was auto-deleted) but whose outcome is still queued raises in ``tryTake``.
    """
    tasks.wait_for_pools()
    QApplication.processEvents()
    tasks.shutdown()


@pytest.fixture
def app_core(tmp_data_dir: Path, civitai: CivitaiDouble) -> Iterator[Core]:
    core = Core.open(tmp_data_dir, api_base=civitai.base_url)
    try:
        yield core
    finally:
        stop_tasks()
        core.close()


@pytest.fixture
def page(qtbot, app_core: Core) -> BrowserPage:
    thumbnails = ThumbnailLoader.for_core(app_core)
    widget = BrowserPage(app_core, thumbnails)
    thumbnails.setParent(widget)
    qtbot.addWidget(widget)
    widget.resize(900, 700)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def search(qtbot, page: BrowserPage, text: str) -> None:
    page.search_box.clear()
    qtbot.keyClicks(page.search_box, text)
    with qtbot.waitSignal(page.page_loaded, timeout=WAIT_MS):
        qtbot.keyClick(page.search_box, Qt.Key.Key_Return)


def card_names(page: BrowserPage) -> list[str]:
    model = page.view.model()
    return [model.index(r, 0).data() for r in range(model.rowCount())]


def model_of(double: CivitaiDouble, fake) -> Model:
    return Model.from_json(double.model_json(fake))


# -- the results model, without widgets ----------------------------------------------------


def test_results_model_passes_the_model_tester(qtmodeltester, civitai_catalog: SampleCatalog):
    d = civitai_catalog.double
    results = SearchResultsModel()
    results.append_page([model_of(d, m) for m in civitai_catalog.models[:2]])
    # A repeated model (cursor pages can overlap) is not shown twice.
    assert results.append_page([model_of(d, m) for m in civitai_catalog.models[1:]]) == 2
    results.set_installed({civitai_catalog.lora.id: {civitai_catalog.lora_v1.id}})
    qtmodeltester.check(results)
    assert results.rowCount() == 4
    lora = results.index(0)
    assert lora.data() == "Paperfold Style"
    assert lora.data(ResultRole.TYPE) == "LORA"
    assert lora.data(ResultRole.BASE_MODEL) == "SD 1.5"
    assert lora.data(ResultRole.LIBRARY_STATE) == UPDATE
    assert results.index(1).data(ResultRole.LIBRARY_STATE) == NOT_OWNED


def test_library_state_is_downloaded_or_update_by_the_newest_version(
    civitai_catalog: SampleCatalog,
):
    lora = model_of(civitai_catalog.double, civitai_catalog.lora)
    v1, v2 = civitai_catalog.lora_v1.id, civitai_catalog.lora_v2.id
    assert library_state(lora, {}) == NOT_OWNED
    assert library_state(lora, {lora.id: {v1}}) == UPDATE
    assert library_state(lora, {lora.id: {v2}}) == DOWNLOADED
    assert library_state(lora, {lora.id: {v1, v2}}) == DOWNLOADED


def test_a_card_tooltip_says_what_its_badge_means(civitai_catalog: SampleCatalog):
    d = civitai_catalog.double
    v1, v2 = civitai_catalog.lora_v1, civitai_catalog.lora_v2
    results = SearchResultsModel()
    results.append_page([model_of(d, civitai_catalog.lora)])
    assert results.index(0).data(Qt.ItemDataRole.ToolTipRole) == "Paperfold Style"
    results.set_installed({civitai_catalog.lora.id: {v1.id}})
    assert results.index(0).data(Qt.ItemDataRole.ToolTipRole) == (
        f"Paperfold Style\nUpdate available: {v2.name}")
    d.early_access(v2, deadline="2099-01-31T12:00:00.000Z")
    results.clear()
    results.append_page([model_of(d, civitai_catalog.lora)])
    assert results.index(0).data(Qt.ItemDataRole.ToolTipRole) == (
        f"Paperfold Style\nUpdate available: {v2.name} (early access until 2099-01-31)")
    results.set_installed({civitai_catalog.lora.id: {v2.id}})
    assert results.index(0).data(Qt.ItemDataRole.ToolTipRole) == (
        "Paperfold Style\nThe newest version is in your library")


def test_nsfw_previews_are_held_back_unless_allowed(civitai: CivitaiDouble):
    fake = civitai.add_model("Night Scenes", "LORA")
    mature, safe = civitai.image("png", nsfw_level=8), civitai.image("png", nsfw_level=1)
    civitai.add_version(fake, "v1", images=[mature, safe])
    model = model_of(civitai, fake)
    assert preview_url(model, allow_nsfw=True) == civitai.image_url(mature)
    assert preview_url(model, allow_nsfw=False) == civitai.image_url(safe)
    only_mature = civitai.add_model("Only Mature", "LORA")
    civitai.add_version(only_mature, "v1", images=[civitai.image("png", nsfw_level=16)])
    # Every image is mature: the card still shows one, blurred (not nothing).
    assert preview_url(model_of(civitai, only_mature), allow_nsfw=False) is not None


def test_the_description_browser_never_loads_remote_resources(qtbot, civitai: CivitaiDouble):
    browser = SafeTextBrowser()
    qtbot.addWidget(browser)
    image_url = f"{civitai.storage_url}/tracker.png"
    assert browser.loadResource(QTextDocument.ResourceType.ImageResource, QUrl(image_url)) is None
    browser.setHtml(f'<p>Hi</p><img src="{image_url}"><a href="https://civitai.com">x</a>')
    browser.show()
    qtbot.waitExposed(browser)
    assert browser.openExternalLinks()
    assert not [r for r in civitai.requests if r.path.endswith("tracker.png")]


# -- the page, with real key presses ------------------------------------------------------


def test_the_search_box_keeps_its_width_in_a_narrow_window(qtbot, page: BrowserPage):
    page.resize(page.minimumSizeHint().width(), 400)  # as narrow as the page goes
    qtbot.waitUntil(lambda: page.width() == page.minimumSizeHint().width())
    qtbot.wait(10)
    assert page.search_box.width() >= 150


def test_typing_a_query_and_enter_shows_cards(qtbot, page: BrowserPage, civitai_catalog):
    search(qtbot, page, "Paperfold")
    assert card_names(page) == ["Paperfold Style"]
    assert "1 model" in page.status.text()
    sent = [r for r in civitai_catalog.double.requests if r.path == "/api/v1/models"]
    assert sent[-1].query["query"] == "Paperfold"
    assert sent[-1].query["nsfw"] == "false"


def test_type_filter_narrows_the_search(qtbot, page: BrowserPage, civitai_catalog):
    search(qtbot, page, "")
    assert len(card_names(page)) == 4
    with qtbot.waitSignal(page.page_loaded, timeout=WAIT_MS):
        page.type_combo.setCurrentText("Checkpoint")
    assert card_names(page) == ["Harbor Light"]
    sent = [r for r in civitai_catalog.double.requests if r.path == "/api/v1/models"]
    assert sent[-1].query_all["types"] == ["Checkpoint"]


def search_many(qtbot, page: BrowserPage, civitai: CivitaiDouble) -> None:
    """40 models on Civitai, searched 12 to a page: more than one screen to scroll."""
    for i in range(40):
        civitai.add_version(civitai.add_model(f"Sample Model {i:02d}", "LORA"), "v1")
    page.page_size = 12
    search(qtbot, page, "Sample")


def test_scrolling_to_the_bottom_loads_the_next_page_by_cursor(
    qtbot, page: BrowserPage, civitai: CivitaiDouble
):
    search_many(qtbot, page, civitai)
    # The grid fills the view (loading more while nothing can scroll), then waits.
    scroll = page.view.verticalScrollBar()
    qtbot.waitUntil(lambda: scroll.maximum() > 0 and not page.loading, timeout=WAIT_MS)
    qtbot.wait(200)
    first = len(card_names(page))
    assert 12 <= first < 40
    with qtbot.waitSignal(page.page_loaded, timeout=WAIT_MS):
        page.view.setFocus()
        qtbot.keyClick(page.view, Qt.Key.Key_End)
    qtbot.waitUntil(lambda: not page.loading, timeout=WAIT_MS)
    assert len(card_names(page)) > first
    sent = [r for r in civitai.requests if r.path == "/api/v1/models"]
    assert sent[0].query.get("cursor") is None
    assert all(r.query.get("cursor") for r in sent[1:])
    assert len(set(card_names(page))) == len(card_names(page))


def test_a_model_pages_failure_leaves_with_it_and_scrolling_goes_on(
    qtbot, page: BrowserPage, civitai: CivitaiDouble
):
    search_many(qtbot, page, civitai)
    qtbot.waitUntil(lambda: not page.loading, timeout=WAIT_MS)
    model = page.results.model_at(0)
    civitai.fail(n=5, status=500, path_prefix=f"/api/v1/models/{model.id}")
    page.open_model(model)
    qtbot.waitUntil(page.banner.isVisible, timeout=WAIT_MS)
    assert "Could not load all details" in page.banner.label.text()
    page.activateWindow()  # shortcuts need the active window
    qtbot.waitUntil(page.isActiveWindow, timeout=WAIT_MS)
    page.detail.versions.setFocus()
    qtbot.keyClick(page.detail.versions, Qt.Key.Key_Escape)  # back to the results
    assert page.stack.currentIndex() == 0 and not page.banner.isVisible()
    first = len(card_names(page))
    with qtbot.waitSignal(page.page_loaded, timeout=WAIT_MS):
        page.load_more()
    assert len(card_names(page)) > first


def test_opening_a_model_shows_versions_files_and_trigger_words(
    qtbot, page: BrowserPage, civitai_catalog
):
    search(qtbot, page, "Harbor")
    index = page.view.model().index(0, 0)
    qtbot.waitUntil(lambda: page.view.visualRect(index).isValid())
    rect = page.view.visualRect(index)
    with qtbot.waitSignal(page.model_opened, timeout=WAIT_MS) as opened:
        qtbot.mouseClick(page.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        qtbot.mouseDClick(page.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert opened.args == [civitai_catalog.checkpoint.id]
    detail = page.detail
    assert page.stack.currentWidget() is detail
    assert detail.title.text() == "Harbor Light"
    version = civitai_catalog.checkpoint_v1
    assert detail.current_version().id == version.id
    names = [detail.files.item(r, 0).text() for r in range(detail.files.rowCount())]
    assert names == [f.name for f in version.files]
    assert detail.files.rowCount() == 2  # the model file and the non-primary VAE
    assert not detail.files.tabKeyNavigation()  # Tab moves on, not from cell to cell
    assert detail.files.item(0, 2).text() == "SafeTensor"
    assert version.trained_words == []
    assert detail.trigger_words.text() == "None"
    assert not detail.copy_words_button.isEnabled()
    assert f"/models/{civitai_catalog.checkpoint.id}" in detail.link.text()
    qtbot.mouseClick(detail.back_button, Qt.MouseButton.LeftButton)
    assert page.stack.currentIndex() == 0


def test_switching_versions_shows_that_versions_files_and_words(
    qtbot, page: BrowserPage, civitai_catalog
):
    search(qtbot, page, "Paperfold")
    page.open_model(page.results.model_at(0))
    detail = page.detail
    assert detail.versions.versions.rowCount() == 2
    assert detail.current_version().id == civitai_catalog.lora_v2.id
    assert detail.trigger_words.text() == "paperfold style, origami"
    QGuiApplication.clipboard().clear()
    qtbot.mouseClick(detail.copy_words_button, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == "paperfold style, origami"
    detail.versions.select_version(civitai_catalog.lora_v1.id)
    assert detail.current_version().id == civitai_catalog.lora_v1.id
    assert "origami" not in detail.trigger_words.text()
    assert detail.files.item(0, 0).text() == civitai_catalog.lora_v1.files[0].name


def test_a_version_in_early_access_says_until_when(qtbot, page: BrowserPage, civitai_catalog):
    v1, v2 = civitai_catalog.lora_v1, civitai_catalog.lora_v2
    civitai_catalog.double.early_access(v2, deadline="2099-01-31T12:00:00.000Z")
    civitai_catalog.double.early_access(v1, deadline="2020-01-01T00:00:00.000Z")  # over
    search(qtbot, page, "Paperfold")
    page.open_model(page.results.model_at(0))
    detail = page.detail
    rows = detail.versions.versions
    assert rows.index(0).data() == v2.name
    assert rows.index(0).data(VersionRole.EARLY_ACCESS) == "early access until 2099-01-31"
    assert rows.index(1).data(VersionRole.EARLY_ACCESS) is None
    assert detail.info["Published"].text().endswith(" · early access until 2099-01-31")
    assert detail.download_version_button.text() == "Download (early access until 2099-01-31)"
    assert detail.download_version_button.toolTip().startswith(
        "In early access until 2099-01-31: ")
    assert "early access until 2099-01-31" in detail.files.cellWidget(0, 4).toolTip()
    assert detail.download_version_button.isEnabled()  # those who unlocked it may download
    detail.versions.select_version(v1.id)
    assert "early access" not in detail.info["Published"].text()
    assert detail.download_version_button.text() == "Download"
    assert detail.download_version_button.toolTip() == "Download this version's primary file"


def test_a_card_in_early_access_has_a_badge_with_the_date(
    qtbot, page: BrowserPage, civitai_catalog
):
    from PySide6.QtGui import QColor, QImage

    from civdesk.ui.browser.delegate import EARLY_ACCESS_BADGE, THUMB_SIZE, ResultCard
    from civdesk.ui.browser.model import ResultRole

    civitai_catalog.double.early_access(civitai_catalog.lora_v2,
                                        deadline="2099-01-31T12:00:00.000Z")
    search(qtbot, page, "")
    rows = {page.results.model_at(r).id: r for r in range(page.results.rowCount())}
    early = page.results.index(rows[civitai_catalog.lora.id], 0)
    plain = page.results.index(rows[civitai_catalog.checkpoint.id], 0)
    card = ResultCard.of(early)
    assert card is not None and card.early_access == "early access until 2099-01-31"
    assert ResultCard.of(plain).early_access is None  # type: ignore[union-attr]
    assert early.data(Qt.ItemDataRole.ToolTipRole) == (
        "Paperfold Style\nIn early access until 2099-01-31: Civitai lets only those who "
        "unlocked it download it")

    def bottom_left(index) -> QColor:
        shown, model_id = page.view.model(), index.data(ResultRole.MODEL_ID)
        row = next(r for r in range(shown.rowCount())
                   if shown.index(r, 0).data(ResultRole.MODEL_ID) == model_id)
        page.view.scrollTo(shown.index(row, 0))
        rect = page.view.visualRect(shown.index(row, 0))
        image: QImage = page.view.viewport().grab(rect).toImage()
        # Inside the badge, left of its words: the preview starts at (6, 6), the badge 6 px
        # in from its bottom-left corner.
        return image.pixelColor(6 + 6 + 3, 6 + THUMB_SIZE.height() - 1 - 6 - 4)

    assert bottom_left(early) == EARLY_ACCESS_BADGE[0]
    assert bottom_left(plain) != EARLY_ACCESS_BADGE[0]


def test_download_buttons_ask_for_the_version_or_the_file(
    qtbot, page: BrowserPage, civitai_catalog
):
    search(qtbot, page, "Harbor")
    page.open_model(page.results.model_at(0))
    version = civitai_catalog.checkpoint_v1
    with qtbot.waitSignal(page.download_requested) as asked:
        qtbot.mouseClick(page.detail.download_version_button, Qt.MouseButton.LeftButton)
    assert asked.args == [version.id, None, False, None]
    vae = version.files[1]
    button = page.detail.files.cellWidget(1, 4)
    with qtbot.waitSignal(page.download_requested) as asked:
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert asked.args == [version.id, vae.id, False, None]


def test_a_file_civitai_flagged_is_marked_and_asked_about_first(
    qtbot, page: BrowserPage, civitai: CivitaiDouble, monkeypatch: pytest.MonkeyPatch
):
    model = civitai.add_model("Rusty Checkpoint", "Checkpoint")
    version = civitai.add_version(model, files=[civitai.file(
        name="rusty.ckpt", format="PickleTensor", pickle_scan="Danger",
        pickle_message="Dangerous import detected: os.system")])
    search(qtbot, page, "Rusty")
    page.open_model(page.results.model_at(0))
    name = page.detail.files.item(0, 0)
    assert name.text() == f"{FLAG_MARK} rusty.ckpt"
    assert name.toolTip().startswith("Civitai's pickle scan found code in rusty.ckpt")

    asked: list[str] = []
    answer = [QMessageBox.StandardButton.No]

    def warning(parent, title, text, buttons, default):
        asked.append(text)
        assert default == QMessageBox.StandardButton.No  # Enter must not download it
        return answer[0]

    monkeypatch.setattr(QMessageBox, "warning", staticmethod(warning))
    requests: list[list[object]] = []
    page.download_requested.connect(lambda *args: requests.append(list(args)))
    qtbot.mouseClick(page.detail.download_version_button, Qt.MouseButton.LeftButton)
    assert requests == [] and "Dangerous import detected: os.system" in asked[0]
    answer[0] = QMessageBox.StandardButton.Yes
    qtbot.mouseClick(page.detail.files.cellWidget(0, 4), Qt.MouseButton.LeftButton)
    assert requests == [[version.id, version.files[0].id, True, None]]


def test_owned_models_get_badges_and_can_be_hidden(
    qtbot, app_core: Core, page: BrowserPage, civitai_catalog, tmp_path: Path
):
    d = civitai_catalog.double
    path = write_model_file(tmp_path / "models", civitai_catalog.lora_v1.files[0])
    register(
        app_core.library,
        path,
        double=d,
        model=civitai_catalog.lora,
        version=civitai_catalog.lora_v1,
    )
    vae = write_model_file(tmp_path / "models", civitai_catalog.vae_v1.files[0])
    register(app_core.library, vae, double=d, model=civitai_catalog.vae)
    page.refresh_library_state()
    search(qtbot, page, "")
    qtbot.waitUntil(lambda: page.results.installed != {}, timeout=WAIT_MS)
    states = {
        page.results.index(r).data(): page.results.index(r).data(ResultRole.LIBRARY_STATE)
        for r in range(page.results.rowCount())
    }
    assert states["Paperfold Style"] == UPDATE
    assert states[civitai_catalog.vae.name] == DOWNLOADED
    assert states["Harbor Light"] == NOT_OWNED
    qtbot.mouseClick(page.hide_owned_box, Qt.MouseButton.LeftButton)
    # The LORA has a newer version than the one on disk: it is not really "had", it stays.
    assert sorted(card_names(page)) == sorted(
        m.name for m in civitai_catalog.models if m is not civitai_catalog.vae
    )
    assert "Paperfold Style" in card_names(page)
    total = len(civitai_catalog.models)
    assert page.status.text().startswith(f"{total - 1} of {total} models shown, 1 you have hidden")
    qtbot.mouseClick(page.hide_owned_box, Qt.MouseButton.LeftButton)
    assert sorted(card_names(page)) == sorted(m.name for m in civitai_catalog.models)
    assert page.status.text().startswith(f"{total} models")


def test_hide_owned_keeps_only_models_without_the_newest_version_on_disk(qtbot, civitai_catalog):
    d = civitai_catalog.double
    results = SearchResultsModel()
    results.append_page([model_of(d, m) for m in civitai_catalog.models])
    owned = OwnedFilter()
    owned.setSourceModel(results)
    owned.set_hide_owned(True)
    lora, v1, v2 = civitai_catalog.lora, civitai_catalog.lora_v1.id, civitai_catalog.lora_v2.id

    def shown() -> set[str]:
        return {owned.index(r, 0).data() for r in range(owned.rowCount())}

    results.set_installed({lora.id: {v1}})
    owned.refilter()
    assert lora.name in shown()  # an update waits: kept
    results.set_installed({lora.id: {v2}})
    owned.refilter()
    assert lora.name not in shown()  # the newest is on disk: hidden
    assert len(shown()) == len(civitai_catalog.models) - 1


# -- failures stay in the view ------------------------------------------------------------


def test_rate_limited_search_shows_a_banner_and_retry_works(
    qtbot, page: BrowserPage, civitai_catalog
):
    civitai_catalog.double.rate_limit(n=5, retry_after=1, path_prefix="/api/v1/models")
    with qtbot.waitSignal(page.search_failed, timeout=WAIT_MS) as failed:
        qtbot.keyClicks(page.search_box, "Paperfold")
        qtbot.keyClick(page.search_box, Qt.Key.Key_Return)
        # The window keeps answering while the request waits for Civitai.
        qtbot.keyClicks(page.search_box, " x")
        assert page.search_box.text() == "Paperfold x"
    assert "rate limiting" in failed.args[0]
    assert page.banner.isVisible()
    assert "rate limiting" in page.banner.label.text()
    civitai_catalog.double.reset_faults()
    with qtbot.waitSignal(page.page_loaded, timeout=WAIT_MS):
        qtbot.mouseClick(page.banner.retry_button, Qt.MouseButton.LeftButton)
    assert not page.banner.isVisible()
    assert card_names(page) == ["Paperfold Style"]


def test_offline_search_says_so(qtbot, tmp_path: Path, monkeypatch):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    core = Core.open(tmp_path / "data", api_base=dead)
    try:
        widget = BrowserPage(core, ThumbnailLoader.for_core(core))
        qtbot.addWidget(widget)
        widget.show()
        with qtbot.waitSignal(widget.search_failed, timeout=WAIT_MS) as failed:
            qtbot.keyClick(widget.search_box, Qt.Key.Key_Return)
        assert "Cannot reach Civitai" in failed.args[0]
        assert widget.banner.retry_button.isVisible()
    finally:
        stop_tasks()
        core.close()


def test_unauthorized_search_asks_for_the_api_key(qtbot, page: BrowserPage, civitai_catalog):
    civitai_catalog.double.fail(n=3, status=401, path_prefix="/api/v1/models")
    with qtbot.waitSignal(page.search_failed, timeout=WAIT_MS) as failed:
        qtbot.keyClick(page.search_box, Qt.Key.Key_Return)
    assert "API key" in failed.args[0]


def test_a_refused_key_says_so_instead_of_asking_for_one(
    qtbot, page: BrowserPage, app_core: Core, civitai_catalog
):
    app_core.session_api_key = "revoked-key"  # set, but Civitai no longer accepts it
    civitai_catalog.double.fail(n=3, status=401, path_prefix="/api/v1/models")
    with qtbot.waitSignal(page.search_failed, timeout=WAIT_MS) as failed:
        qtbot.keyClick(page.search_box, Qt.Key.Key_Return)
    assert failed.args[0] == (
        "Civitai refused the API key (401): it has probably expired or been revoked — create "
        "a new one on civitai.com → Account settings → API keys and enter it in Settings, then "
        "retry.")


def test_card_opens_with_enter_too(qtbot, page: BrowserPage, civitai_catalog):
    search(qtbot, page, "Paperfold")
    page.view.setFocus()
    page.view.setCurrentIndex(page.view.model().index(0, 0))
    with qtbot.waitSignal(page.model_opened, timeout=WAIT_MS):
        qtbot.keyClick(page.view, Qt.Key.Key_Return)
    assert page.detail.model is not None and page.detail.model.id == civitai_catalog.lora.id


def test_nsfw_previews_are_blurred_with_a_label_unless_allowed(
    qtbot, page: BrowserPage, civitai: CivitaiDouble
):
    fake = civitai.add_model("Only Mature", "LORA")
    mature = civitai.image("png", nsfw_level=16)
    mature.data, mature.content_type = detailed_png(), "image/png"
    civitai.add_version(fake, "v1", images=[mature])
    url = civitai.image_url(mature)
    search(qtbot, page, "")
    row = next(r for r in range(page.results.rowCount())
               if page.results.index(r).data() == "Only Mature")  # fmt: skip
    card = page.results.index(row)
    assert card.data(ResultRole.THUMBNAIL_URL) == url
    assert card.data(ResultRole.PREVIEW_BLURRED) is True

    def shown_on_card(blurred: bool):
        key = thumbnail_key(url, THUMB_SIZE, blurred=blurred)
        page.view.viewport().repaint()  # the delegate asks the loader while painting
        qtbot.waitUntil(lambda: page.thumbnails.cached(key) is not None, timeout=WAIT_MS)
        return page.thumbnails.cached(key)

    blurred = shown_on_card(blurred=True)
    sharp_key = page.thumbnails.request(url, THUMB_SIZE)
    qtbot.waitUntil(lambda: page.thumbnails.cached(sharp_key) is not None, timeout=WAIT_MS)
    sharp = page.thumbnails.cached(sharp_key)
    assert blurred.toImage() != sharp.toImage()
    assert high_frequency(blurred) < 3 < 20 < high_frequency(sharp)

    with qtbot.waitSignal(page.page_loaded, timeout=WAIT_MS):
        page.nsfw_box.setChecked(True)  # what "allow NSFW" in Settings sets
    assert card.data(ResultRole.PREVIEW_BLURRED) is False
    assert shown_on_card(blurred=False).toImage() == sharp.toImage()


def test_card_preview_prefers_a_safe_image_and_blurs_only_when_all_are_nsfw(
    civitai: CivitaiDouble,
):
    mixed = civitai.add_model("Mixed", "LORA")
    mature, safe = civitai.image("png", nsfw_level=8), civitai.image("png", nsfw_level=1)
    civitai.add_version(mixed, "v1", images=[mature, safe])
    assert card_preview(model_of(civitai, mixed), False) == CardPreview(civitai.image_url(safe))
    assert card_preview(model_of(civitai, mixed), True) == CardPreview(civitai.image_url(mature))
    none = civitai.add_model("No Images", "LORA")
    civitai.add_version(none, "v1", images=[])
    assert card_preview(model_of(civitai, none), False) is None


def test_filters_say_words_but_ask_the_api_its_values(page: BrowserPage):
    assert page.period_combo.currentText() == "All time"
    assert page.type_combo.currentText() == "All types"
    query = page.current_query()
    assert (query.period, query.types, query.base_models) == ("AllTime", (), ())
    page.period_combo.setCurrentText("Past week")
    page.base_combo.setCurrentText("Pony")
    query = page.current_query()
    assert (query.period, query.base_models) == ("Week", ("Pony",))


def test_mature_models_are_browsed_on_the_site_with_all_content(qtbot, tmp_data_dir: Path):
    with CivitaiDouble(two_sites=True) as d:
        day = d.add_model("Glow Day")
        d.add_version(day)
        night = d.add_model("Glow Night")  # not flagged: its version is rated X
        d.add_version(night, nsfw_level=8)
        core = Core.open(tmp_data_dir, api_base=d.base_url, mature_api_base=d.mature_url)
        try:
            thumbnails = ThumbnailLoader.for_core(core)
            page = BrowserPage(core, thumbnails)
            thumbnails.setParent(page)
            qtbot.addWidget(page)
            page.show()
            assert not page.nsfw_box.isChecked()  # the setting's default
            search(qtbot, page, "glow")
            assert card_names(page) == ["Glow Day"]
            with qtbot.waitSignal(page.page_loaded, timeout=WAIT_MS):
                page.nsfw_box.setChecked(True)
            assert sorted(card_names(page)) == ["Glow Day", "Glow Night"]
            assert [r.host for r in d.requests if r.path == "/api/v1/models"] == [
                "api", "mature"]
            shown = next(page.results.model_at(r) for r in range(2)
                         if page.results.model_at(r).id == night.id)
            page.open_model(shown)
            assert f"{d.mature_url}/models/{night.id}" in page.detail.link.text()
            qtbot.waitUntil(lambda: any(
                r.host == "mature" and r.path == f"/api/v1/models/{night.id}"
                for r in d.requests), timeout=WAIT_MS)
        finally:
            stop_tasks()
            core.close()


def test_every_filter_shows_its_longest_entry_in_a_small_window(qtbot, page: BrowserPage):
    # "All base models" and "Highest Rated" were cut to a few letters at 900 px wide.
    page.resize(900, 600)
    page.show()
    qtbot.waitExposed(page)
    for combo in (page.type_combo, page.base_combo, page.sort_combo, page.period_combo):
        longest = max((combo.itemText(i) for i in range(combo.count())),
                      key=combo.fontMetrics().horizontalAdvance)
        assert combo.width() >= combo.fontMetrics().horizontalAdvance(longest), longest
    assert page.search_box.width() >= 300  # the box one types into keeps its room
