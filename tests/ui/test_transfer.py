"""File → Export library… and Restore from manifest…: the dialogs are patched, the work runs
off the GUI thread, the downloads go through the downloads service's queue, a summary says
what happened."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMessageBox
from tests.conftest import TEST_API_KEY
from tests.ui.conftest import register, write_model_file

from civdesk.ui.main_window import MainWindow


def choose_in_dialogs(monkeypatch, manifest: Path, folder: Path) -> None:
    """Restore's file dialogs answer ``manifest`` and ``folder`` (no real dialog opens)."""
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        staticmethod(lambda *a, **k: (str(manifest), "")))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        staticmethod(lambda *a, **k: str(folder)))


def test_export_then_restore_from_the_file_menu(qtbot, main_window: MainWindow, civitai_catalog,
                                                tmp_path: Path, monkeypatch) -> None:
    c = civitai_catalog
    w = main_window
    w.core.keys.set(TEST_API_KEY)
    models = tmp_path / "models"
    lora = write_model_file(models / "Lora", c.lora_v1.files[0])
    mystery = models / "mystery.safetensors"
    mystery.write_bytes(b"\2" * 2048)
    register(w.core.library, lora, double=c.double, model=c.lora, version=c.lora_v1)
    register(w.core.library, mystery, sha256=hashlib.sha256(mystery.read_bytes()).hexdigest())
    w.core.settings.library_folders = [str(models)]
    manifest = tmp_path / "library.json"
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        staticmethod(lambda *a, **k: (str(manifest), "")))
    assert w.export_action.text() == "Export library…"
    w.export_action.trigger()
    qtbot.waitUntil(lambda: w.transfer.summary is not None, timeout=10_000)
    assert w.transfer.summary.windowTitle() == "Library exported"
    paths = [f["path"] for f in json.loads(manifest.read_text())["files"]]
    assert sorted(paths) == [f"Lora/{lora.name}", "mystery.safetensors"]
    w.transfer.summary.close()
    w.transfer.summary = None

    # The disk died: restore onto a new one.
    lora.unlink()
    mystery.unlink()
    dest = tmp_path / "new-disk"
    dest.mkdir()
    choose_in_dialogs(monkeypatch, manifest, dest)
    w.restore_action.trigger()
    qtbot.waitUntil(lambda: w.transfer.summary is not None, timeout=15_000)
    box = w.transfer.summary
    assert box.windowTitle() == "Library restored"
    assert box.icon() == QMessageBox.Icon.Warning
    assert "1 file(s) queued for download" in box.text()
    assert "mystery.safetensors: Civitai never knew this file" in box.text()
    restored = dest / "Lora" / lora.name
    qtbot.waitUntil(restored.is_file, timeout=15_000)
    assert restored.read_bytes() == c.lora_v1.files[0].read_bytes()
    qtbot.waitUntil(lambda: w.core.library.local_file(restored) is not None, timeout=5000)
    assert w.core.library.local_file(restored).verified
    box.close()


def test_a_refused_manifest_says_why(qtbot, main_window: MainWindow, tmp_path: Path,
                                     monkeypatch) -> None:
    w = main_window
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "civdesk-manifest", "version": 9, "files": []}))
    choose_in_dialogs(monkeypatch, bad, tmp_path)
    w.restore_action.trigger()
    qtbot.waitUntil(lambda: w.transfer.summary is not None, timeout=10_000)
    assert "newer than this civdesk reads" in w.transfer.summary.text()
    assert not w.transfer.busy
    w.transfer.summary.close()
