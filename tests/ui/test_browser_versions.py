"""A model's versions as a list: name, base model, date, size, badges, the chosen one."""

from __future__ import annotations

from PySide6.QtCore import Qt
from tests.double import SampleCatalog
from tests.ui.test_browser import app_core, model_of, page, search  # noqa: F401  (fixtures)

from civdesk.ui.browser.model import DOWNLOADED, NOT_OWNED, UPDATE
from civdesk.ui.browser.page import BrowserPage
from civdesk.ui.browser.versions import VersionListModel, VersionRole, version_states
from civdesk.ui.downloads.messages import size_text


def test_the_version_model_passes_the_model_tester(qtmodeltester, civitai_catalog: SampleCatalog):
    versions = VersionListModel()
    lora = model_of(civitai_catalog.double, civitai_catalog.lora)
    versions.set_versions(lora.versions, {civitai_catalog.lora_v1.id})
    qtmodeltester.check(versions)
    assert versions.rowCount() == 2


def test_each_row_says_base_model_date_size_and_what_the_library_holds(
    civitai_catalog: SampleCatalog,
):
    lora = model_of(civitai_catalog.double, civitai_catalog.lora)
    v2, v1 = lora.versions
    versions = VersionListModel()
    versions.set_versions(lora.versions, {v1.id})
    first = versions.index(0)
    assert first.data() == "v2.0"
    assert first.data(VersionRole.DETAILS) == (
        f"SD 1.5 · 2025-01-10 · {size_text(v2.primary_file.size_bytes)}")
    assert first.data(VersionRole.LIBRARY_STATE) == UPDATE  # newer than the one on disk
    assert versions.index(1).data(VersionRole.LIBRARY_STATE) == DOWNLOADED


def test_badges_of_versions_around_the_ones_on_disk(civitai_catalog: SampleCatalog):
    lora = model_of(civitai_catalog.double, civitai_catalog.lora)
    v2, v1 = lora.versions
    assert version_states([v2, v1], set()) == [NOT_OWNED, NOT_OWNED]  # nothing on disk
    assert version_states([v2, v1], {v2.id}) == [DOWNLOADED, NOT_OWNED]  # older: no update
    assert version_states([v2, v1], {v1.id, v2.id}) == [DOWNLOADED, DOWNLOADED]


def test_a_click_on_a_row_chooses_that_version(qtbot, page: BrowserPage,  # noqa: F811
                                               civitai_catalog: SampleCatalog):
    search(qtbot, page, "Paperfold")
    page.open_model(page.results.model_at(0))
    detail = page.detail
    rows = detail.versions
    assert rows.currentIndex().row() == 0 and rows.selectionModel().isSelected(rows.currentIndex())
    assert rows.height() >= 2 * rows.sizeHintForRow(0)  # both versions in view, no scrolling
    rect = rows.visualRect(rows.versions.index(1))
    qtbot.mouseClick(rows.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert detail.current_version().id == civitai_catalog.lora_v1.id
    assert detail.files.item(0, 0).text() == civitai_catalog.lora_v1.files[0].name
    qtbot.keyClick(rows, Qt.Key.Key_Up)  # the keyboard chooses too
    assert detail.current_version().id == civitai_catalog.lora_v2.id
