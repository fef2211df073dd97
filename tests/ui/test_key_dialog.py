"""The first download without a key asks for one: the key dialog and the gate before the queue."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from tests.conftest import TEST_API_KEY
from tests.double.sample import SampleCatalog
from tests.double.server import CivitaiDouble

from civdesk.core.context import Core
from civdesk.ui.key_dialog import KeyDialog, KeyGate
from civdesk.ui.main_window import MainWindow

WAIT_MS = 15_000


def downloads_asked(civitai: CivitaiDouble) -> list[str]:
    return [r.path for r in civitai.requests if r.path.startswith("/api/download/")]


def click_download(qtbot, window: MainWindow, version_id: int) -> KeyDialog | None:
    """A Download click on the Civitai page; the key dialog when the gate opened one."""
    gate: KeyGate = window.key_gate
    window.browser.download_requested.emit(version_id, None, False, None)
    rows = window.downloads_page.model.rowCount
    qtbot.waitUntil(lambda: gate._dialog is not None or bool(rows()), timeout=5000)
    return gate._dialog


@pytest.fixture
def dialog(qtbot, core: Core) -> KeyDialog:
    widget = KeyDialog(core)
    qtbot.addWidget(widget)
    widget.show()
    return widget


def test_the_dialog_says_where_to_create_a_key(dialog: KeyDialog):
    text = " ".join(label.text() for label in dialog.findChildren(type(dialog.status)))
    assert "requires an API key for every download" in text
    assert "civitai.com → Account settings → API keys" in text
    assert dialog.key_edit.echoMode() == dialog.key_edit.EchoMode.Password
    assert not dialog.test_button.isEnabled() and not dialog.save_button.isEnabled()


@pytest.mark.parametrize(("key", "accepted", "said"), [
    (TEST_API_KEY, True, "Civitai accepted the key."),
    ("revoked-key", False, "Civitai refused this key: it is mistyped, expired or revoked"),
])
def test_test_asks_civitai_off_the_gui_thread(qtbot, dialog, civitai, key, accepted, said):
    qtbot.keyClicks(dialog.key_edit, key)
    with qtbot.waitSignal(dialog.tested, timeout=5000) as blocker:
        qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    assert blocker.args[0] is accepted
    assert dialog.status.text().startswith(said)
    assert dialog.isVisible() and dialog.choice is None  # testing neither saves nor closes
    assert any(r.path == "/api/v1/models" and r.query.get("favorites") == "true"
               for r in civitai.requests)


def test_the_first_download_without_a_key_asks_then_proceeds_once_saved(
    qtbot, main_window: MainWindow, core: Core, civitai: CivitaiDouble,
    civitai_catalog: SampleCatalog,
):
    version = civitai_catalog.vae_v1
    dialog = click_download(qtbot, main_window, version.id)
    assert dialog is not None and dialog.isVisible()
    assert main_window.downloads_page.model.rowCount() == 0 and downloads_asked(civitai) == []

    qtbot.keyClicks(dialog.key_edit, TEST_API_KEY)
    with qtbot.waitSignal(main_window.downloads.task_finished, timeout=WAIT_MS) as done:
        qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert done.args[0].state == "completed" and done.args[0].version_id == version.id
    assert core.keys.get() == TEST_API_KEY
    download = next(r for r in civitai.requests if r.path.startswith("/api/download/"))
    assert download.headers.get("Authorization") == f"Bearer {TEST_API_KEY}"

    # A key is set now: the next download goes straight to the queue.
    assert click_download(qtbot, main_window, civitai_catalog.lora_v1.id) is None


def test_download_without_a_key_is_a_choice_that_holds_for_the_session(
    qtbot, main_window: MainWindow, core: Core, civitai: CivitaiDouble,
    civitai_catalog: SampleCatalog,
):
    dialog = click_download(qtbot, main_window, civitai_catalog.vae_v1.id)
    assert dialog is not None
    with qtbot.waitSignal(main_window.downloads.task_finished, timeout=WAIT_MS) as done:
        qtbot.mouseClick(dialog.without_button, Qt.MouseButton.LeftButton)
    assert done.args[0].state == "completed"
    assert core.keys.get() is None
    assert click_download(qtbot, main_window, civitai_catalog.lora_v1.id) is None


def test_cancel_queues_nothing(
    qtbot, main_window: MainWindow, civitai: CivitaiDouble, civitai_catalog: SampleCatalog
):
    dialog = click_download(qtbot, main_window, civitai_catalog.vae_v1.id)
    assert dialog is not None
    dialog.reject()
    qtbot.waitUntil(lambda: main_window.key_gate._dialog is None)
    qtbot.wait(200)
    assert main_window.downloads_page.model.rowCount() == 0 and downloads_asked(civitai) == []
    # Asked again next time: cancelling is not "without a key".
    again = click_download(qtbot, main_window, civitai_catalog.vae_v1.id)
    assert again is not None
    again.reject()
