"""The Settings page: values persist, the key is masked and tested against the double."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QLineEdit, QMessageBox
from tests.conftest import TEST_API_KEY
from tests.ui.conftest import open_core

from civdesk.core.context import Core
from civdesk.ui.settings_page import SettingsPage


@pytest.fixture
def settings_page(qtbot, core: Core) -> SettingsPage:
    page = SettingsPage(core)
    qtbot.addWidget(page)
    page.show()
    return page


def test_changes_are_saved_and_read_back_by_a_new_core(
    qtbot, settings_page, core, tmp_path, monkeypatch, civitai
):
    folder = tmp_path / "my models"
    folder.mkdir()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(folder))
    with qtbot.waitSignal(settings_page.saved, timeout=3000):
        qtbot.mouseClick(settings_page.add_folder, Qt.MouseButton.LeftButton)
    assert settings_page.folders.item(0).text() == str(folder.resolve())

    with qtbot.waitSignal(settings_page.saved, timeout=3000):
        qtbot.mouseClick(settings_page.allow_nsfw, Qt.MouseButton.LeftButton)
    lora_edit = settings_page._type_edits["LORA"]
    lora_edit.clear()
    qtbot.keyClicks(lora_edit, "loras")
    with qtbot.waitSignal(settings_page.saved, timeout=3000):
        lora_edit.editingFinished.emit()

    again = open_core(core.paths.data, civitai.base_url)
    try:
        assert again.settings.library_folders == [str(folder.resolve())]
        assert again.settings.allow_nsfw is True
        assert again.settings.type_folders["LORA"] == "loras"
        reopened = SettingsPage(again)
        qtbot.addWidget(reopened)
        assert reopened.allow_nsfw.isChecked()
        assert reopened.folders.count() == 1
    finally:
        again.close()


def test_api_key_is_masked_until_shown_and_stored_in_the_key_store(qtbot, settings_page, core):
    assert settings_page.key_edit.echoMode() == QLineEdit.EchoMode.Password
    qtbot.mouseClick(settings_page.show_key, Qt.MouseButton.LeftButton)
    assert settings_page.key_edit.echoMode() == QLineEdit.EchoMode.Normal
    qtbot.mouseClick(settings_page.show_key, Qt.MouseButton.LeftButton)
    assert settings_page.key_edit.echoMode() == QLineEdit.EchoMode.Password

    qtbot.keyClicks(settings_page.key_edit, TEST_API_KEY)
    with qtbot.waitSignal(settings_page.saved, timeout=3000):
        settings_page.key_edit.editingFinished.emit()
    assert core.keys.get() == TEST_API_KEY
    assert core.keys.source == "file"
    assert (core.keys.file.stat().st_mode & 0o777) == 0o600
    assert "Stored in" in settings_page.key_status.text()


@pytest.mark.parametrize(("key", "works"), [(TEST_API_KEY, True), ("wrong-key", False)])
def test_test_key_button_asks_civitai(qtbot, settings_page, key, works):
    settings_page.key_edit.setText(key)
    with qtbot.waitSignal(settings_page.key_tested, timeout=5000) as blocker:
        qtbot.mouseClick(settings_page.test_key, Qt.MouseButton.LeftButton)
    assert blocker.args[0] is works
    assert ("Civitai accepted the key" in settings_page.key_status.text()) is works
    assert settings_page.test_key.isEnabled()
    answer = blocker.args[1]
    # Leaving the field then stores the key: Civitai's answer stays beside where it went.
    settings_page._key_dirty = True
    with qtbot.waitSignal(settings_page.saved, timeout=3000):
        settings_page.key_edit.editingFinished.emit()
    assert settings_page.key_status.text().startswith(f"{answer} Stored in ")


@pytest.mark.parametrize(("key", "said"), [
    (TEST_API_KEY, "Civitai accepted the key."),
    ("revoked-key", "Civitai refused this key: it is mistyped, expired or revoked — create a "
                    "new one on civitai.com → Account settings → API keys."),
])
def test_a_key_entered_is_checked_with_civitai_once_stored(
    qtbot, settings_page, core, civitai, key, said
):
    qtbot.keyClicks(settings_page.key_edit, key)
    with qtbot.waitSignal(settings_page.key_tested, timeout=5000) as blocker:
        settings_page.key_edit.editingFinished.emit()
    assert blocker.args == [key == TEST_API_KEY, said]
    assert core.keys.get() == key  # stored either way: the field shows what was typed
    assert settings_page.key_status.text() == (
        f"{said} Stored in {core.keys.file} (readable only by you).")
    assert any(r.path == "/api/v1/models" and r.query.get("favorites") == "true"
               for r in civitai.requests)


def test_a_key_entered_while_civitai_is_unreachable_is_stored_unchecked(
    qtbot, settings_page, core
):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        core.session_api_base = f"http://127.0.0.1:{s.getsockname()[1]}"
    qtbot.keyClicks(settings_page.key_edit, TEST_API_KEY)
    with qtbot.waitSignal(settings_page.key_tested, timeout=10000) as blocker:
        settings_page.key_edit.editingFinished.emit()
    assert blocker.args[0] is False
    assert blocker.args[1].startswith("The key could not be checked (Cannot reach Civitai at")
    assert core.keys.get() == TEST_API_KEY
    assert settings_page.key_status.text().endswith(f"Stored in {core.keys.file} (readable "
                                                    "only by you).")


def test_an_invalid_api_base_is_refused(qtbot, settings_page, core):
    settings_page.advanced_group.setChecked(True)
    settings_page.api_base.setText("ftp://example.com")
    with qtbot.waitSignal(settings_page.status_message, timeout=1000) as blocker:
        settings_page.api_base.editingFinished.emit()
    assert "http" in blocker.args[0]
    assert core.settings.api_base.startswith("https://")


def test_the_api_address_pasted_for_the_site_is_its_root(qtbot, settings_page, core):
    settings_page.advanced_group.setChecked(True)
    settings_page.api_base.setText(" http://127.0.0.1:8765/api/v1/ ")
    settings_page.api_base.editingFinished.emit()
    assert core.settings.api_base == "http://127.0.0.1:8765"


def test_the_mature_site_is_saved_normalised_and_read_back(qtbot, settings_page, core,
                                                          civitai):
    settings_page.advanced_group.setChecked(True)
    assert settings_page.mature_api_base.placeholderText() == "https://civitai.red"
    settings_page.mature_api_base.setText(" https://red.example.org/api/v1/ ")
    with qtbot.waitSignal(settings_page.saved, timeout=3000):
        settings_page.mature_api_base.editingFinished.emit()
    again = open_core(core.paths.data, civitai.base_url)
    try:
        assert again.settings.mature_api_base == "https://red.example.org"
        assert again.mature_api_base == "https://red.example.org"
        reopened = SettingsPage(again)
        qtbot.addWidget(reopened)
        assert reopened.mature_api_base.text() == "https://red.example.org"
    finally:
        again.close()
    settings_page.mature_api_base.setText("ftp://example.com")
    with qtbot.waitSignal(settings_page.status_message, timeout=1000) as blocker:
        settings_page.mature_api_base.editingFinished.emit()
    assert "http" in blocker.args[0]
    assert core.settings.mature_api_base == "https://red.example.org"


def test_scan_button_asks_for_a_scan(qtbot, settings_page):
    with qtbot.waitSignal(settings_page.scan_requested, timeout=1000):
        qtbot.mouseClick(settings_page.scan_button, Qt.MouseButton.LeftButton)


def test_remove_folder(qtbot, settings_page, core, tmp_path: Path, monkeypatch):
    folder = tmp_path / "models"
    (folder / "Lora").mkdir(parents=True)
    model = folder / "Lora" / "style.safetensors"
    model.write_bytes(b"weights")
    core.library.register_file(model, size=7, mtime_ns=1, inode=1, sha256="A" * 64)
    settings_page.add_library_folder(str(folder))
    assert settings_page.download_root.placeholderText() == str(folder)  # the first folder
    settings_page.folders.setCurrentRow(0)
    answers = [QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes]
    asked: list[tuple] = []
    monkeypatch.setattr(QMessageBox, "question",
                        lambda *args: asked.append(args) or answers.pop(0))
    qtbot.mouseClick(settings_page.remove_folder, Qt.MouseButton.LeftButton)
    assert core.settings.library_folders == [str(folder)]  # No: nothing happens
    assert asked[0][-1] == QMessageBox.StandardButton.No  # the default: Enter keeps it
    with qtbot.waitSignals([settings_page.saved, settings_page.library_changed], timeout=3000):
        qtbot.mouseClick(settings_page.remove_folder, Qt.MouseButton.LeftButton)
    assert core.settings.library_folders == []
    assert settings_page.folders.count() == 0
    assert core.library.local_files() == [] and model.is_file()  # forgotten, not deleted
    assert settings_page.download_root.placeholderText() != str(folder)


def test_a_comfyui_models_folder_names_the_type_folders_as_comfyui_does(
    qtbot, settings_page, core, tmp_path: Path
):
    comfy = tmp_path / "ComfyUI" / "models"
    for name in ("checkpoints", "loras", "vae"):
        (comfy / name).mkdir(parents=True)
    lora_edit = settings_page._type_edits["LORA"]
    assert (lora_edit.text(), settings_page.layout_choice.currentText()) == (
        "Lora", "AUTOMATIC1111 / Forge")
    messages: list[str] = []
    settings_page.status_message.connect(messages.append)
    with qtbot.waitSignal(settings_page.saved, timeout=3000):
        settings_page.add_library_folder(str(comfy))
    qtbot.waitUntil(lambda: lora_edit.text() == "loras", timeout=3000)
    assert settings_page._type_edits["Checkpoint"].text() == "checkpoints"
    assert settings_page.layout_choice.currentText() == "ComfyUI"
    assert messages[-1].startswith(f"{comfy.resolve()} is a ComfyUI models folder")
    qtbot.waitUntil(lambda: core.folder_for_type("LORA") == comfy.resolve() / "loras")

    # Back to A1111's names by hand; an edited name makes them the user's own.
    settings_page.layout_choice.setCurrentIndex(settings_page.layout_choice.findData("a1111"))
    settings_page.layout_choice.activated.emit(settings_page.layout_choice.currentIndex())
    assert lora_edit.text() == "Lora" and core.settings.layout == "a1111"
    lora_edit.setText("styles")
    lora_edit.editingFinished.emit()
    assert settings_page.layout_choice.currentText() == "Your own (below)"


def test_find_folders_adds_the_usual_model_folders(qtbot, settings_page, core, private_home):
    comfy = private_home / "ComfyUI" / "models"
    for name in ("checkpoints", "loras"):
        (comfy / name).mkdir(parents=True)
    messages: list[str] = []
    settings_page.status_message.connect(messages.append)
    with qtbot.waitSignal(settings_page.saved, timeout=3000):
        qtbot.mouseClick(settings_page.find_folders, Qt.MouseButton.LeftButton)
    assert core.settings.library_folders == [str(comfy.resolve())]
    assert messages[0] == (f"Added 1 model folder: {comfy.resolve()}. Press Scan Library to "
                           "read them.")
    # The first folder is a ComfyUI one: the type folders follow, as when added by hand.
    qtbot.waitUntil(lambda: core.settings.layout == "comfyui", timeout=3000)
    qtbot.waitUntil(lambda: settings_page.find_folders.isEnabled(), timeout=3000)
    qtbot.mouseClick(settings_page.find_folders, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(messages) >= 3, timeout=3000)
    assert messages[-1] == "The model folders found are in the library already"
