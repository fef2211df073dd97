# ruff: noqa: F811  (the downloads fixtures are imported from test_downloads_page)
"""The folder a download from the Civitai page goes to: shown first, changeable, honoured.

End to end against the double: the detail pane says where the file will go, and the real
queue puts it exactly there (or in the folder the user chose instead).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMessageBox
from tests.double import SampleCatalog
from tests.ui.test_browser import search
from tests.ui.test_downloads_page import (  # noqa: F401  (fixtures)
    app_core,
    make_page,
    models_dir,
    wait_finished,
)

from civdesk.core.civitai.schema import Model
from civdesk.core.context import Core
from civdesk.ui.browser.page import BrowserPage, display_folder
from civdesk.ui.downloads.page import DownloadsPage
from civdesk.ui.thumbnails import ThumbnailLoader

WAIT_MS = 15_000


class StraightToTheQueue:
    """Download clicks go to the downloads service as the key gate passes them on."""

    def __init__(self, downloads: DownloadsPage) -> None:
        self.service = downloads.downloads

    @property
    def task_finished(self):
        return self.service.task_finished

    def add(self, version_id: int, file_id: int | None = None, dest_dir: str | None = None,
            **kw) -> None:
        self.service.enqueue(version_id, file_id, dest_dir, **kw)


@pytest.fixture
def downloads(make_page) -> DownloadsPage:
    return make_page()


@pytest.fixture
def page(
    qtbot, app_core: Core, downloads: DownloadsPage, models_dir: Path,
    civitai_catalog: SampleCatalog,
) -> BrowserPage:  # fmt: skip
    # A library kept by hand: its LoRAs live in LORA/, not in the layout's Lora/.
    (models_dir / "LORA").mkdir(parents=True)
    app_core.settings.library_folders = [str(models_dir)]
    app_core.save_settings()
    widget = BrowserPage(app_core, ThumbnailLoader.for_core(app_core))
    qtbot.addWidget(widget)
    widget.resize(900, 700)
    widget.show()
    widget.connect_downloads(StraightToTheQueue(downloads))
    return widget


def open_lora(qtbot, page: BrowserPage) -> None:
    search(qtbot, page, "Paperfold")
    page.open_model(page.results.model_at(0))
    qtbot.waitUntil(lambda: page.shown_folder is not None, timeout=WAIT_MS)


def download(qtbot, page: BrowserPage, downloads: DownloadsPage, version_id: int) -> Path:
    qtbot.mouseClick(page.detail.download_version_button, Qt.MouseButton.LeftButton)
    task = wait_finished(qtbot, downloads, version_id)
    return Path(task.dest_path)


def test_the_folder_shown_is_the_one_the_file_lands_in(
    qtbot, page: BrowserPage, downloads: DownloadsPage, models_dir: Path,
    civitai_catalog: SampleCatalog,
):  # fmt: skip
    open_lora(qtbot, page)
    assert page.shown_folder == models_dir / "LORA"
    assert page.detail.target_label.full_text() == f"Saves to {display_folder(models_dir / 'LORA')}"
    shown = page.shown_folder
    landed = download(qtbot, page, downloads, civitai_catalog.lora_v2.id)
    assert landed.parent == shown
    assert not (models_dir / "Lora").exists()  # no second LoRA folder beside the user's


def test_a_folder_the_user_chose_is_where_the_file_goes(
    qtbot, page: BrowserPage, downloads: DownloadsPage, models_dir: Path,
    civitai_catalog: SampleCatalog,
):  # fmt: skip
    chosen = models_dir / "LORA" / "paper"
    chosen.mkdir()
    open_lora(qtbot, page)
    page.ask_folder = lambda start: str(chosen)
    qtbot.mouseClick(page.detail.change_target_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.chosen_folder is not None, timeout=WAIT_MS)
    assert page.detail.target_label.full_text() == f"Saves to {display_folder(chosen)}  (chosen)"
    landed = download(qtbot, page, downloads, civitai_catalog.lora_v2.id)
    assert landed.parent == chosen.resolve()
    # Another model is not downloaded there: the choice was for this one.
    page.open_model(Model.from_json(civitai_catalog.double.model_json(civitai_catalog.checkpoint)))
    assert page.chosen_folder is None


def test_a_folder_outside_the_library_is_refused_with_a_message(
    qtbot, page: BrowserPage, tmp_path: Path
):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    open_lora(qtbot, page)
    shown = page.detail.target_label.full_text()
    page.ask_folder = lambda start: str(outside)
    qtbot.mouseClick(page.detail.change_target_button, Qt.MouseButton.LeftButton)

    def refusal() -> QMessageBox | None:
        return next((w for w in QApplication.topLevelWidgets()
                     if isinstance(w, QMessageBox) and w.objectName() == "targetRefused"
                     and w.isVisible()), None)

    qtbot.waitUntil(lambda: refusal() is not None, timeout=WAIT_MS)
    box = refusal()
    assert box is not None
    assert "outside the folders civdesk manages" in box.text() and str(outside) in box.text()
    assert page.chosen_folder is None and page.detail.target_label.full_text() == shown
    box.close()


def test_a_folder_that_links_out_of_the_library_is_refused(
    qtbot, page: BrowserPage, models_dir: Path, tmp_path: Path
):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (models_dir / "LORA" / "sneaky").symlink_to(outside)
    open_lora(qtbot, page)
    page.ask_folder = lambda start: str(models_dir / "LORA" / "sneaky")
    qtbot.mouseClick(page.detail.change_target_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: any(w.objectName() == "targetRefused" and w.isVisible()
                                for w in QApplication.topLevelWidgets()), timeout=WAIT_MS)
    assert page.chosen_folder is None


def test_folders_under_home_are_shown_short() -> None:
    assert display_folder(Path.home() / "models" / "Lora") == "~/models/Lora/"
    assert display_folder(Path("/srv/models")) == "/srv/models/"
