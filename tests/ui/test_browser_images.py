"""A model's images: the carousel in the detail pane and the viewer with the parameters."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QLabel, QPlainTextEdit
from tests.double import CivitaiDouble, SampleCatalog
from tests.ui.test_browser import app_core, page, search  # noqa: F401  (fixtures)

from civdesk.core.civitai.generation import MAX_PROMPT, GenerationParams
from civdesk.core.civitai.schema import Image
from civdesk.ui.browser.images import FOCUS_STYLE, VIEWER_BOX, ImageViewer, fitted
from civdesk.ui.browser.page import BrowserPage

WAIT_MS = 10_000


@pytest.fixture
def detail_page(qtbot, page: BrowserPage, civitai_catalog: SampleCatalog) -> BrowserPage:  # noqa: F811
    search(qtbot, page, "Paperfold")
    page.nsfw_box.setChecked(True)  # the second image is PG-13: shown sharp
    qtbot.waitUntil(lambda: page.results.rowCount() == 1, timeout=WAIT_MS)
    page.open_model(page.results.model_at(0))
    return page


def open_viewer(qtbot, shown: BrowserPage) -> ImageViewer:
    with qtbot.waitSignal(shown.detail.image_viewer_opened, timeout=WAIT_MS) as opened:
        qtbot.mouseClick(shown.detail.carousel.image, Qt.MouseButton.LeftButton)
    viewer = opened.args[0]
    assert isinstance(viewer, ImageViewer) and viewer.isVisible()
    return viewer


def field_texts(viewer: ImageViewer) -> dict[str, str]:
    texts = {}
    for row in range(viewer.fields.rowCount()):
        label = viewer.fields.itemAt(row, viewer.fields.ItemRole.LabelRole).widget()
        field = viewer.fields.itemAt(row, viewer.fields.ItemRole.FieldRole).widget()
        assert isinstance(label, QLabel)
        if isinstance(field, QLabel):
            assert field.textFormat() == Qt.TextFormat.PlainText  # never markup
            texts[label.text()] = field.text()
        else:
            assert isinstance(field, QPlainTextEdit)
            texts[label.text()] = field.toPlainText()
    return texts


def test_the_carousel_steps_through_the_images_with_a_counter(qtbot, detail_page: BrowserPage):
    carousel = detail_page.detail.carousel
    assert carousel.isVisible() and carousel.counter.text() == "1 / 2"
    qtbot.waitUntil(lambda: carousel.image.pixmap() is not None
                    and not carousel.image.pixmap().isNull(), timeout=WAIT_MS)
    carousel.setFocus()
    qtbot.waitUntil(carousel.hasFocus)
    assert carousel.image.styleSheet() == FOCUS_STYLE  # where the arrows act, marked
    qtbot.keyClick(carousel, Qt.Key.Key_Right)
    assert carousel.counter.text() == "2 / 2"
    qtbot.keyClick(carousel, Qt.Key.Key_Right)  # wraps around
    assert carousel.counter.text() == "1 / 2"
    qtbot.keyClick(carousel, Qt.Key.Key_Left)
    assert carousel.counter.text() == "2 / 2"
    qtbot.mouseClick(carousel.next_button, Qt.MouseButton.LeftButton)
    assert carousel.counter.text() == "1 / 2"
    detail_page.detail.versions.setFocus()
    qtbot.waitUntil(lambda: not carousel.hasFocus())
    assert carousel.image.styleSheet() == ""


def test_the_viewer_shows_the_parameters_and_copies_them_as_a1111_does(
    qtbot, detail_page: BrowserPage
):
    viewer = open_viewer(qtbot, detail_page)
    # The /models form has no meta: the viewer asks for the version's.
    qtbot.waitUntil(lambda: viewer.params is not None, timeout=WAIT_MS)
    assert field_texts(viewer) == {
        "Prompt:": "paperfold style, a fox made of folded paper, studio light",
        "Negative prompt:": "blurry, lowres",
        "Steps:": "30", "Sampler:": "DPM++ 2M Karras", "CFG scale:": "6",
        "Seed:": "1234567890", "Size:": "832x1216", "Model:": "harborLight_v21",
    }
    assert viewer.copy_button.isVisible()
    qtbot.mouseClick(viewer.copy_button, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == (
        "paperfold style, a fox made of folded paper, studio light\n"
        "Negative prompt: blurry, lowres\n"
        "Steps: 30, Sampler: DPM++ 2M Karras, CFG scale: 6, Seed: 1234567890, "
        "Size: 832x1216, Model: harborLight_v21"
    )
    qtbot.waitUntil(lambda: viewer.picture.pixmap() is not None
                    and not viewer.picture.pixmap().isNull(), timeout=WAIT_MS)
    size = viewer.picture.pixmap().size()
    assert size.width() <= VIEWER_BOX.width() and size.height() <= VIEWER_BOX.height()
    viewer.close()


def test_an_image_without_parameters_shows_none(qtbot, detail_page: BrowserPage):
    detail_page.detail.carousel.show_next()
    viewer = open_viewer(qtbot, detail_page)
    qtbot.waitUntil(lambda: viewer.status.text() == "", timeout=WAIT_MS)  # Civitai answered
    assert viewer.params is None and field_texts(viewer) == {}
    assert not viewer.params_box.isVisible() and not viewer.copy_button.isVisible()
    viewer.close()


def test_hostile_parameters_are_plain_text_and_bounded(
    qtbot, page: BrowserPage, civitai: CivitaiDouble  # noqa: F811
):
    model = civitai.add_model("Hostile Meta", "LORA")
    image = civitai.image("png")
    image.meta = {"prompt": "<b>bold</b><img src='http://tracker.invalid/x.png'>" + "x" * 50_000,
                  "sampler": {"nested": ["objects"]}, "steps": True, "seed": 7}
    civitai.add_version(model, "v1", images=[image])
    search(qtbot, page, "Hostile")
    page.open_model(page.results.model_at(0))
    viewer = open_viewer(qtbot, page)
    qtbot.waitUntil(lambda: viewer.params is not None, timeout=WAIT_MS)
    texts = field_texts(viewer)
    assert texts["Prompt:"].startswith("<b>bold</b><img src=")  # shown, not rendered
    assert len(texts["Prompt:"]) == MAX_PROMPT
    assert set(texts) == {"Prompt:", "Seed:"}  # the wrong shapes are dropped
    viewer.close()


def test_generation_params_read_hostile_meta() -> None:
    assert GenerationParams.from_meta(None) is None
    assert GenerationParams.from_meta("a string") is None
    assert GenerationParams.from_meta({"clipSkip": 2}) is None  # nothing shown: nothing kept
    params = GenerationParams.from_meta({"prompt": "  a fox  ", "cfgScale": 7.5,
                                         "sampler": "Euler\na\n" + "y" * 500})
    assert params is not None and params.prompt == "a fox" and params.cfg_scale == "7.5"
    assert params.sampler is not None and "\n" not in params.sampler
    assert len(params.sampler) == 200
    assert params.a1111_text() == f"a fox\nSampler: {params.sampler}, CFG scale: 7.5"
    image = Image.from_json({"url": "https://x/a.png", "meta": {"prompt": "p"}, "hasMeta": True})
    assert image.meta == GenerationParams(prompt="p") and image.has_meta is True


def test_the_viewer_asks_for_a_size_that_keeps_the_proportions() -> None:
    assert fitted(Image(url="u", width=832, height=1216), VIEWER_BOX) == QSize(701, 1024)
    assert fitted(Image(url="u"), VIEWER_BOX) == VIEWER_BOX
    assert fitted(Image(url="u", width=0, height=-5), VIEWER_BOX) == VIEWER_BOX


def test_a_viewer_closed_before_its_image_arrives_is_left_alone(
    qtbot, detail_page: BrowserPage
):
    viewer = open_viewer(qtbot, detail_page)
    key = viewer._loaded.key
    assert key is not None
    thumbnails = detail_page.detail.thumbnails
    with qtbot.waitSignal(viewer.destroyed, timeout=WAIT_MS):
        viewer.close()  # deleted on close
    # The image lands after the viewer went: nothing may touch its deleted label.
    qtbot.waitUntil(lambda: not thumbnails.is_pending(key), timeout=WAIT_MS)
    assert thumbnails.cached(key) is not None


def test_an_image_that_cannot_be_loaded_says_so(
    qtbot, page: BrowserPage, civitai: CivitaiDouble  # noqa: F811
):
    model = civitai.add_model("Broken Image", "LORA")
    image = civitai.huge_image(2_000, status=404)  # the CDN answers 404 for it
    civitai.add_version(model, "v1", images=[image])
    search(qtbot, page, "Broken")
    page.open_model(page.results.model_at(0))
    carousel = page.detail.carousel
    qtbot.waitUntil(lambda: carousel.image.text() == "This image could not be loaded",
                    timeout=WAIT_MS)
    assert carousel.image.image is None


def test_a_blurred_image_keeps_its_prompt_to_itself(
    qtbot, page: BrowserPage, civitai: CivitaiDouble  # noqa: F811
):
    model = civitai.add_model("Moody Portraits", "LORA")
    image = civitai.image("png", nsfw_level=4)  # R: blurred while NSFW is not allowed
    image.meta = {"prompt": "what the blur hides"}
    civitai.add_version(model, "v1", images=[image])
    search(qtbot, page, "Moody")
    page.open_model(page.results.model_at(0))
    assert page.detail.carousel.blurred == [True]
    viewer = open_viewer(qtbot, page)
    assert viewer.params is None and not viewer.params_box.isVisible()
    assert viewer.status.text() == "Allow NSFW in Settings to see its parameters"
    viewer.close()
