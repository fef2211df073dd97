"""The Models page against the double: scan, thumbnails, filters, file actions."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QInputDialog, QMenu, QMessageBox, QToolButton
from tests.ui.conftest import detailed_png, high_frequency, register, write_model_file

from civdesk.core.context import Core
from civdesk.ui.library.delegate import CardDelegate
from civdesk.ui.library.model import Show
from civdesk.ui.library.page import LibraryPage
from civdesk.ui.thumbnails import ThumbnailLoader, thumbnail_key


@pytest.fixture
def page(qtbot, core: Core) -> LibraryPage:
    """The page wired to a scan controller the way the window wires it."""
    widget = LibraryPage(core, ThumbnailLoader.for_core(core))
    widget.scan_requested.connect(widget.service.start_scan)
    widget.controller = widget.service.scans  # type: ignore[attr-defined]
    qtbot.addWidget(widget)
    widget.resize(1200, 800)
    widget.show()
    return widget


def scan_by_click(qtbot, page: LibraryPage, core: Core, folder: Path) -> None:
    core.settings.library_folders = [str(folder)]
    with (
        qtbot.waitSignal(page.snapshot_loaded, timeout=15_000),
        qtbot.waitSignal(page.controller.finished, timeout=15_000),
    ):
        qtbot.mouseClick(page.scan_button, Qt.MouseButton.LeftButton)


def visible_names(page: LibraryPage) -> list[str]:
    return [page.proxy.index(r, 0).data() for r in range(page.proxy.rowCount())]


def refreshed(qtbot, page: LibraryPage) -> None:
    with qtbot.waitSignal(page.snapshot_loaded, timeout=5000):
        page.refresh()


def test_scan_library_button_fills_the_grid_with_thumbnails(qtbot, page, core, model_folder):
    scan_by_click(qtbot, page, core, model_folder)
    assert sorted(visible_names(page)) == sorted(
        ["Paperfold Style", "Harbor Light", "Bad Hands Negative", "Clear VAE"]
    )
    previews = [e.preview for e in page.snapshot.entries]
    assert all(previews), "the scan writes a preview next to every identified file"
    # Painting the grid asks for the thumbnails; they arrive without blocking the GUI.
    size = CardDelegate.thumb_size()
    keys = {thumbnail_key(p, size) for p in previews}
    page.grid.viewport().repaint()
    qtbot.waitUntil(lambda: all(page.thumbnails.cached(k) is not None for k in keys), timeout=5000)
    assert page.stack.currentWidget() is page.grid


def test_sidebar_types_and_search_filter_the_grid(qtbot, page, core, model_folder):
    scan_by_click(qtbot, page, core, model_folder)
    labels = [page.sidebar.item(r).text() for r in range(page.sidebar.count())]
    assert "LoRA  (1)" in labels and "Checkpoint  (1)" in labels

    item = page.sidebar.item_for(("type", "Checkpoint"))
    rect = page.sidebar.visualItemRect(item)
    qtbot.mouseClick(page.sidebar.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert visible_names(page) == ["Harbor Light"]

    page.sidebar.select_filter(("type", None))
    qtbot.mouseClick(page.search, Qt.MouseButton.LeftButton)
    qtbot.keyClicks(page.search, "paperfold")
    qtbot.waitUntil(lambda: visible_names(page) == ["Paperfold Style"], timeout=2000)
    page.search.clear()
    qtbot.keyClicks(page.search, "nothing like this")
    qtbot.waitUntil(lambda: page.stack.currentWidget() is page.empty_hint, timeout=2000)
    assert "Nothing matches" in page.empty_hint.text()


def test_base_model_filter_and_search(qtbot, page, core, model_folder):
    scan_by_click(qtbot, page, core, model_folder)
    combo = page.base_model
    assert [combo.itemText(i) for i in range(combo.count())] == [
        "All base models", "SD 1.5 (3)", "SDXL 1.0 (1)"]
    combo.setCurrentIndex(combo.findData("SDXL 1.0"))
    assert visible_names(page) == ["Harbor Light"]
    page.sidebar.select_filter(("type", "LORA"))  # with the type: both apply
    assert page.stack.currentWidget() is page.empty_hint
    page.sidebar.select_filter(("type", None))
    combo.setCurrentIndex(0)
    qtbot.keyClicks(page.search, "sdxl")  # a search finds the base model too
    qtbot.waitUntil(lambda: visible_names(page) == ["Harbor Light"], timeout=2000)
    page.search.clear()
    qtbot.waitUntil(lambda: page.model.filter.terms == (), timeout=2000)

    # The last SDXL file gone: the choice goes back to every base model.
    combo.setCurrentIndex(combo.findData("SDXL 1.0"))
    for f in (model_folder / "Stable-diffusion").iterdir():
        f.unlink()
    scan_by_click(qtbot, page, core, model_folder)
    assert combo.currentData() is None and combo.count() == 2
    assert sorted(visible_names(page)) == ["Bad Hands Negative", "Clear VAE", "Paperfold Style"]


def test_duplicates_filter_shows_only_copies(qtbot, page, core, civitai_catalog, tmp_path):
    cat = civitai_catalog
    first = write_model_file(tmp_path / "a", cat.lora_v1.files[0])
    second = write_model_file(tmp_path / "b", cat.lora_v1.files[0], name="copy.safetensors")
    single = write_model_file(tmp_path / "a", cat.vae_v1.files[0])
    for path in (first, second):
        register(core.library, path, double=cat.double, model=cat.lora, version=cat.lora_v1)
    register(core.library, single, double=cat.double, model=cat.vae)
    refreshed(qtbot, page)
    page.show_filter(("show", Show.DUPLICATES))
    shown = sorted(page.proxy.entry(index).path for index in _indexes(page))
    assert shown == sorted([str(first), str(second)])
    # It says what it counts: the files that have a copy, and how many copies are extra.
    item = page.sidebar.currentItem()
    assert item.text() == "Duplicates  (2 files)"
    assert "1 extra copy could go" in item.toolTip()


def _indexes(page):
    return [page.proxy.index(r, 0) for r in range(page.proxy.rowCount())]


def test_delete_removes_the_file_its_companions_and_the_card(
    qtbot, page, core, model_folder, monkeypatch
):
    scan_by_click(qtbot, page, core, model_folder)
    page.select_path(next(e.path for e in page.snapshot.entries if e.type == "Checkpoint"))
    entry = page.current_entry()
    model = Path(entry.path)
    companions = [p for p in model.parent.iterdir() if p != model]
    assert companions, "the scan wrote a preview and an info file"
    asked: list[str] = []

    def yes(parent, title, text, *args):
        asked.append(text)
        return QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "question", yes)
    menu = page.build_context_menu(entry)
    delete = next(a for a in menu.actions() if a.text() == "Delete file…")
    with qtbot.waitSignal(page.snapshot_loaded, timeout=5000):
        delete.trigger()
    assert asked and entry.file_name in asked[0]
    assert not model.exists()
    assert not any(p.exists() for p in companions)
    assert "Harbor Light" not in visible_names(page)
    assert core.library.local_file(model) is None


def test_declining_the_delete_keeps_the_file(qtbot, page, core, model_folder, monkeypatch):
    scan_by_click(qtbot, page, core, model_folder)
    entry = page.snapshot.entries[0]
    monkeypatch.setattr(QMessageBox, "question", lambda *a: QMessageBox.StandardButton.No)
    page.delete_entry(entry)
    qtbot.wait(50)
    assert Path(entry.path).exists()


def test_detail_pane_copies_trigger_words_and_links_to_civitai(qtbot, page, core, model_folder):
    scan_by_click(qtbot, page, core, model_folder)
    lora = next(e for e in page.snapshot.entries if e.type == "LORA")
    assert page.select_path(lora.path)
    chips = page.detail.words_box.findChildren(QToolButton, "chip")
    assert [c.text() for c in chips] == ["paperfold style"]
    qtbot.mouseClick(chips[0], Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == "paperfold style"
    link = page.detail._values["Civitai"].text()
    assert f"/models/{lora.model_id}?modelVersionId={lora.version_id}" in link
    # Tab stops on the link, not on every value of the pane.
    focusable = [name for name, label in page.detail._values.items()
                 if label.focusPolicy().value & Qt.FocusPolicy.TabFocus.value]
    assert focusable == ["Civitai"]


def test_a_file_never_matched_to_civitais_sha256_is_marked_unverified(
    qtbot, page, core, model_folder
):
    scan_by_click(qtbot, page, core, model_folder)
    lora = next(e for e in page.snapshot.entries if e.type == "LORA")
    assert lora.verified  # the scan found it by the SHA256 of its bytes
    assert page.select_path(lora.path)
    assert not page.detail.unverified.isVisibleTo(page)
    assert page.detail._values["Verified"].text().startswith("Yes")
    # The same file as a download of a version Civitai published no SHA256 for stores it.
    known = core.library.local_file(lora.path)
    core.library.update_file(known.id, verified=False)
    refreshed(qtbot, page)
    assert page.select_path(lora.path)
    assert page.detail.unverified.isVisibleTo(page)
    assert page.detail.unverified.text() == "Unverified"
    assert page.detail._values["Verified"].text().startswith("No")


def test_notes_and_weights_from_other_tools_show_in_the_detail_pane(
    qtbot, page, core, model_folder
):
    import json

    model = model_folder / "Lora" / "watercolor.safetensors"
    model.write_bytes(os.urandom(2000))
    # A1111's Extra Networks edit dialog and Lora Manager, in their own formats.
    (model_folder / "Lora" / "watercolor.json").write_text(json.dumps({
        "description": "", "sd version": "SD1", "activation text": "wtrcolor",
        "preferred weight": 0.7, "notes": "<b>not markup</b> keep below 0.8"}))
    (model_folder / "Lora" / "watercolor.metadata.json").write_text(json.dumps({
        "file_name": "watercolor", "model_name": "watercolor", "sha256": "",
        "tags": ["paint"], "favorite": True, "notes": "", "civitai": {}}))
    scan_by_click(qtbot, page, core, model_folder)
    assert page.select_path(str(model))
    notes = page.detail.user_notes
    assert notes.isVisibleTo(page) and page.detail.user_title.isVisibleTo(page)
    assert notes.textFormat() == Qt.TextFormat.PlainText
    assert notes.text().splitlines() == [
        "Activation text: wtrcolor", "Preferred weight: 0.7", "Tags: paint",
        "Favourite: yes", "SD version: SD1", "Notes: <b>not markup</b> keep below 0.8"]
    other = next(e for e in page.snapshot.entries if e.path != str(model))
    assert page.select_path(other.path)
    assert not notes.isVisibleTo(page)


def test_a_long_file_name_wraps_in_the_detail_pane(qtbot, page, core, model_folder):
    name = "_".join(["my", "very", "long", "merged", "checkpoint"] * 6) + "-fp16.safetensors"
    (model_folder / "Stable-diffusion" / name).write_bytes(os.urandom(2000))
    scan_by_click(qtbot, page, core, model_folder)
    assert page.select_path(str(model_folder / "Stable-diffusion" / name))
    title = page.detail.title
    assert title.text().replace("\u200b", "") == name  # what is shown, with break points
    # The pane keeps to the window instead of growing to the width of the name.
    assert page.detail.minimumSizeHint().width() < 500
    assert page.detail.link_button.isVisibleTo(page)


def test_a_long_name_without_separators_wraps_too(qtbot, page, core, model_folder):
    name = "MyMergedCheckpoint" * 8 + ".safetensors"  # 144 letters, nowhere to break
    (model_folder / "Stable-diffusion" / name).write_bytes(os.urandom(2000))
    scan_by_click(qtbot, page, core, model_folder)
    assert page.select_path(str(model_folder / "Stable-diffusion" / name))
    title = page.detail.title
    assert title.text().replace("\u200b", "") == name and title.toolTip() == name
    line = title.fontMetrics().height()
    assert title.heightForWidth(280) >= 3 * line  # wrapped on several lines, not clipped


def test_check_for_update_then_updates_filter_and_one_click_download(
    qtbot, page, core, model_folder, civitai_catalog
):
    scan_by_click(qtbot, page, core, model_folder)
    lora = next(e for e in page.snapshot.entries if e.type == "LORA")
    queued: list[tuple] = []

    class Downloads:  # the key gate's interface: add(version, file, dest)
        def add(self, version_id, file_id=None, dest_dir=None, on_added=None):
            queued.append((version_id, file_id, dest_dir))

    page.set_downloads(Downloads())
    with qtbot.waitSignal(page.snapshot_loaded, timeout=5000):
        page.check_update(lora)
    page.show_filter(("show", Show.UPDATES))
    assert visible_names(page) == ["Paperfold Style"]
    page.select_path(lora.path)
    assert page.detail.update_button.isVisibleTo(page)
    assert page.detail.update_label.text() == "Update available: v2.0"
    qtbot.mouseClick(page.detail.update_button, Qt.MouseButton.LeftButton)
    assert queued == [(civitai_catalog.lora_v2.id, None, str(Path(lora.path).parent))]


def test_an_update_in_early_access_says_until_when(
    qtbot, page, core, model_folder, civitai, civitai_catalog
):
    until = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=3)
    civitai.early_access(civitai_catalog.lora_v2,
                         deadline=until.strftime("%Y-%m-%dT%H:%M:%S.000Z"))
    scan_by_click(qtbot, page, core, model_folder)
    lora = next(e for e in page.snapshot.entries if e.type == "LORA")
    with qtbot.waitSignal(page.snapshot_loaded, timeout=5000):
        page.check_update(lora)
    page.select_path(lora.path)
    assert page.detail.update_label.text() == (
        f"Update available: v2.0 (early access until {until.date().isoformat()})")
    assert page.detail.update_button.text() == (
        f"Download update (early access until {until.date().isoformat()})")


def unknown_file_entry(qtbot, page, core, tmp_path):
    """The entry of a model file Civitai does not know, scanned into the library."""
    folder = tmp_path / "lib"
    folder.mkdir()
    (folder / "mystery.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    scan_by_click(qtbot, page, core, folder)
    entry = page.snapshot.entries[0]
    assert not entry.identified
    return entry


def test_link_an_unknown_file_to_a_civitai_model(
    qtbot, page, core, civitai_catalog, tmp_path, monkeypatch
):
    entry = unknown_file_entry(qtbot, page, core, tmp_path)
    url = f"https://civitai.com/models/{civitai_catalog.vae.id}"
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: (url, True))
    page.select_path(entry.path)
    assert page.detail.link_button.isVisibleTo(page)
    with qtbot.waitSignal(page.snapshot_loaded, timeout=10_000):
        qtbot.mouseClick(page.detail.link_button, Qt.MouseButton.LeftButton)
    linked = page.snapshot.entries[0]
    assert linked.identified and linked.model_name == "Clear VAE"


def test_a_link_whose_version_is_of_another_model_is_refused(
    qtbot, page, core, civitai_catalog, tmp_path, monkeypatch
):
    entry = unknown_file_entry(qtbot, page, core, tmp_path)
    c = civitai_catalog
    url = f"https://civitai.com/models/{c.lora.id}?modelVersionId={c.vae_v1.id}"
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: (url, True))
    page.select_path(entry.path)
    with qtbot.waitSignal(page.action_failed, timeout=10_000) as failed:
        qtbot.mouseClick(page.detail.link_button, Qt.MouseButton.LeftButton)
    assert f"version of model {c.vae.id}" in failed.args[0]
    for box in page.findChildren(QMessageBox):
        box.close()
    assert not core.library.local_file(entry.path).version_id


def test_rescan_of_a_moved_away_file_drops_it(qtbot, page, core, model_folder, tmp_path):
    scan_by_click(qtbot, page, core, model_folder)
    entry = next(e for e in page.snapshot.entries if e.type == "VAE")
    shutil.move(entry.path, tmp_path / "elsewhere.safetensors")
    with qtbot.waitSignal(page.snapshot_loaded, timeout=10_000):
        page.rescan_file(entry)
    assert entry.path not in [e.path for e in page.snapshot.entries]


def test_a_selected_file_gone_after_a_rescan_leaves_no_card_current(
    qtbot, page, core, model_folder
):
    scan_by_click(qtbot, page, core, model_folder)
    entry = page.proxy.entry(page.proxy.index(0, 0))
    assert page.select_path(entry.path)
    Path(entry.path).unlink()
    scan_by_click(qtbot, page, core, model_folder)
    # Qt made a neighbour current when the row went: Delete would have asked about it.
    assert page.current_entry() is None and page.detail.entry is None
    assert not page.grid.selectionModel().selectedIndexes()


def test_right_click_on_a_card_opens_its_menu(qtbot, page, core, model_folder):
    scan_by_click(qtbot, page, core, model_folder)
    rect = page.grid.visualRect(page.proxy.index(0, 0))
    page.grid.customContextMenuRequested.emit(rect.center())
    menus = [m for m in page.findChildren(QMenu, "libraryContextMenu") if m.isVisible()]
    assert len(menus) == 1
    texts = [a.text() for a in menus[0].actions() if a.text()]
    assert "Open containing folder" in texts and "Delete file…" in texts
    menus[0].close()


def test_open_on_civitai_goes_to_the_site_that_shows_the_model(
    qtbot, page, core, civitai, tmp_path, monkeypatch
):
    """A model or version rated R or above lives on the mature site, others on the safe
    one, whatever the mature-content setting."""
    core.session_mature_api_base = "https://red.example"
    day = civitai.add_model("Day Scenes", "LORA")
    day_v = civitai.add_version(day, "v1", nsfw_level=2)
    night = civitai.add_model("Night Scenes", "LORA")  # not flagged: its version is rated R
    night_v = civitai.add_version(night, "v1", nsfw_level=4 | 1)
    for model, version in ((day, day_v), (night, night_v)):
        register(core.library, write_model_file(tmp_path / "models", version.files[0]),
                 double=civitai, model=model)
    refreshed(qtbot, page)
    opened: list[str] = []
    page.opener.open_url = lambda url: opened.append(url.toString()) or True
    expected = {day.id: f"{civitai.base_url}/models/{day.id}?modelVersionId={day_v.id}",
                night.id: f"https://red.example/models/{night.id}?modelVersionId={night_v.id}"}
    for allowed in (False, True):
        core.settings.allow_nsfw = allowed
        for entry in page.snapshot.entries:
            menu = page.build_context_menu(entry)
            next(a for a in menu.actions() if a.text() == "Open on Civitai").trigger()
            assert opened.pop() == expected[entry.model_id]
            assert page.select_path(entry.path)
            assert expected[entry.model_id] in page.detail._values["Civitai"].text()


def test_nsfw_models_previews_are_blurred_unless_allowed(qtbot, page, core, civitai, tmp_path):
    fake = civitai.add_model("Night Scenes", "LORA", nsfw=True)
    version = civitai.add_version(fake, "v1")
    path = write_model_file(tmp_path / "models", version.files[0])
    preview = tmp_path / "models" / "night.preview.png"
    preview.write_bytes(detailed_png())
    register(core.library, path, double=civitai, model=fake, preview=preview)
    refreshed(qtbot, page)
    size = CardDelegate.thumb_size()

    def painted(blurred: bool):
        key = thumbnail_key(str(preview), size, blurred=blurred)
        page.grid.viewport().repaint()
        qtbot.waitUntil(lambda: page.thumbnails.cached(key) is not None, timeout=5000)
        return page.thumbnails.cached(key)

    blurred = painted(blurred=True)  # the setting's default: NSFW not allowed
    assert high_frequency(blurred) < 3
    page.set_allow_nsfw(True)
    sharp = painted(blurred=False)
    assert high_frequency(sharp) > 20
    assert blurred.toImage() != sharp.toImage()


def test_check_for_updates_button_fills_the_updates_filter(
    qtbot, page, core, model_folder, civitai_catalog
):
    scan_by_click(qtbot, page, core, model_folder)
    # A scan identifies files by hash (/model-versions): it learns no newer versions.
    assert page.snapshot.updates == {}
    page.show_filter(("show", Show.UPDATES))
    assert visible_names(page) == []
    identified = {e.model_id for e in page.snapshot.entries if e.model_id is not None}

    progress: list[tuple[int, int]] = []
    page.update_check_progressed.connect(lambda done, total: progress.append((done, total)))
    with (
        qtbot.waitSignal(page.update_check_finished, timeout=10_000) as finished,
        qtbot.waitSignal(page.snapshot_loaded, timeout=10_000),
    ):
        qtbot.mouseClick(page.updates_button, Qt.MouseButton.LeftButton)
        assert not page.updates_button.isEnabled()  # one check at a time
    assert finished.args == ["1 update available"]
    assert progress[0] == (0, 0) and progress[-1] == (len(identified), len(identified))
    assert page.updates_button.isEnabled()
    assert visible_names(page) == ["Paperfold Style"]
    update = page.snapshot.updates[civitai_catalog.lora.id]
    assert update.latest_version_id == civitai_catalog.lora_v2.id


def test_update_check_that_civitai_refuses_says_so(qtbot, page, core, model_folder, civitai):
    scan_by_click(qtbot, page, core, model_folder)
    civitai.fail(n=1, status=400, path_prefix="/api/v1/models")  # 4xx: not retried
    with qtbot.waitSignal(page.update_check_finished, timeout=10_000) as finished:
        page.check_all_updates()
    assert "4 of 4 models could not be checked for updates" in finished.args[0], finished.args
    assert page.snapshot.updates == {}
