"""The library service: one owner of scans, reads and the scan-race bookkeeping."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox
from tests.ui.conftest import register, write_model_file

from civdesk.core.context import Core
from civdesk.ui.library.page import LibraryPage
from civdesk.ui.scan import ScanJob
from civdesk.ui.services.library import LibraryService
from civdesk.ui.settings_page import SettingsPage
from civdesk.ui.thumbnails import ThumbnailLoader


def settled(service: LibraryService) -> bool:
    return not service.scan_running and not service.update_check_running \
        and not service.reloading


def test_a_scan_reads_the_library_once(qtbot, main_window, tmp_path, civitai_catalog):
    """The scan's end and the quiet update check after it make one read, not two, when
    the check finds nothing the grid does not show already."""
    cat = civitai_catalog
    folder = tmp_path / "models"
    for sub, version in (("Stable-diffusion", cat.checkpoint_v1), ("VAE", cat.vae_v1)):
        write_model_file(folder / sub, version.files[0])
    service = main_window.library_service
    main_window.core.settings.library_folders = [str(folder)]
    qtbot.waitUntil(lambda: settled(service), timeout=5000)  # the first read
    reads: list[int] = []
    service.reload_started.connect(lambda: reads.append(1))
    with qtbot.waitSignal(main_window.notifier.notified, timeout=15_000):
        qtbot.mouseClick(main_window.library.scan_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: settled(service) and len(service.snapshot.entries) == 2,
                    timeout=10_000)
    assert service._last_check is not None and service._last_check[0].checked == 2
    assert len(reads) == 1


def test_a_check_that_finds_an_update_reads_again(qtbot, main_window, model_folder):
    service = main_window.library_service
    main_window.core.settings.library_folders = [str(model_folder)]
    qtbot.waitUntil(lambda: settled(service), timeout=5000)
    with qtbot.waitSignal(main_window.notifier.notified, timeout=15_000):
        qtbot.mouseClick(main_window.library.scan_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: settled(service) and service.snapshot.update_count == 1,
                    timeout=10_000)


def _pretend_a_scan_runs(service: LibraryService, core: Core) -> None:
    service.scans.job = ScanJob(core)  # running, as far as the service can tell


def test_what_changed_during_a_scan_is_redone_once_by_the_service(
    qtbot, core: Core, tmp_path: Path, monkeypatch
):
    """Both pages hand their file changes to the one service: a folder removed in Settings
    and a file deleted on the Models page while a scan runs are done again when it stops
    (its last stores may have brought them back), followed by one read."""
    kept, dropped = tmp_path / "kept", tmp_path / "dropped"
    kept.mkdir(), dropped.mkdir()
    victim, other = kept / "victim.safetensors", dropped / "other.safetensors"
    victim.write_bytes(b"v"), other.write_bytes(b"o")
    for path in (victim, other):
        register(core.library, path, sha256=path.name[0].upper() * 64)
    core.settings.library_folders = [str(kept), str(dropped)]
    service = LibraryService(core)
    settings = SettingsPage(core, library=service)
    page = LibraryPage(core, ThumbnailLoader.for_core(core), service=service)
    qtbot.addWidget(settings), qtbot.addWidget(page)
    with qtbot.waitSignal(service.snapshot_loaded, timeout=5000):
        service.refresh()
    _pretend_a_scan_runs(service, core)

    monkeypatch.setattr(QMessageBox, "question", lambda *a: QMessageBox.StandardButton.Yes)
    settings.folders.setCurrentRow(1)
    with qtbot.waitSignal(service.folder_forgotten, timeout=5000):
        qtbot.mouseClick(settings.remove_folder, Qt.MouseButton.LeftButton)
    entry = next(e for e in service.snapshot.entries if e.path == str(victim))
    # Until the deletion's own outcome is in, a read it asks for is still to come (the
    # folder's read may already show the file gone): wait for that outcome, not the file.
    with qtbot.waitSignal(service.status_message, timeout=5000,
                          check_params_cb=lambda text: text.startswith("Deleted ")):
        page.delete_entry(entry)
    qtbot.waitUntil(lambda: not victim.exists() and not service.reloading
                    and service.snapshot.entries == (), timeout=5000)
    assert core.library.local_files() == []
    # The scan's last stores, after the user's changes:
    for path in (victim, other):
        core.library.register_file(path, size=1, mtime_ns=1, inode=1,
                                   sha256=path.name[0].upper() * 64, library_root=path.parent)
    qtbot.waitUntil(lambda: not service.reloading, timeout=5000)
    reads: list[int] = []
    service.reload_started.connect(lambda: reads.append(1))
    with qtbot.waitSignal(service.snapshot_loaded, timeout=5000):
        service.scans._cancelled()  # the scan ends
    qtbot.waitUntil(lambda: settled(service), timeout=5000)
    assert service.snapshot.entries == ()
    assert len(reads) == 1
    assert core.library.local_files() == []


def test_an_update_check_says_its_count_once(qtbot, core: Core, model_folder, civitai_catalog):
    """"1 update available" reaches the window once (the update line), not also as a
    status-bar message beside it."""
    cat = civitai_catalog
    register(core.library, write_model_file(model_folder / "Lora", cat.lora_v1.files[0]),
             double=cat.double, model=cat.lora, version=cat.lora_v1)
    service = LibraryService(core)
    said: list[str] = []
    service.status_message.connect(said.append)
    service.update_check_finished.connect(said.append)
    with qtbot.waitSignal(service.update_check_finished, timeout=10_000):
        service.check_all_updates()
    qtbot.waitUntil(lambda: settled(service), timeout=5000)
    assert [text for text in said if "update available" in text] == ["1 update available"]
    assert service.update_text_now() == "1 update available"
    # The update is downloaded (the file of v2 in the library): the count drops.
    register(core.library, write_model_file(model_folder / "Lora", cat.lora_v2.files[0]),
             double=cat.double, model=cat.lora, version=cat.lora_v2)
    with qtbot.waitSignal(service.snapshot_loaded, timeout=5000):
        service.refresh()
    assert "update available" not in (service.update_text_now() or "")


@pytest.mark.parametrize("running", [False, True])
def test_reads_asked_for_together_make_one_read(qtbot, core: Core, running: bool):
    service = LibraryService(core)
    reads: list[int] = []
    service.reload_started.connect(lambda: reads.append(1))
    with qtbot.waitSignal(service.snapshot_loaded, timeout=5000):
        service.refresh()
        if running:
            qtbot.waitUntil(lambda: bool(reads), timeout=5000)  # the first read is under way
        service.refresh()
        service.refresh()
    qtbot.waitUntil(lambda: not service.reloading, timeout=5000)
    assert len(reads) == (2 if running else 1)


def test_a_quiet_check_waits_for_the_read_to_be_on_screen(
    qtbot, core: Core, model_folder, civitai_catalog
):
    """A scan's end asks for a read and a quiet update check at once: the check's worker
    starts only once the read's rows are applied (it would otherwise take the GIL in turns
    with the GUI thread painting them), and counts as running meanwhile."""
    cat = civitai_catalog
    register(core.library, write_model_file(model_folder / "Lora", cat.lora_v1.files[0]),
             double=cat.double, model=cat.lora, version=cat.lora_v1)
    service = LibraryService(core)
    order: list[str] = []
    service.snapshot_loaded.connect(lambda _: order.append("rows shown"))
    service.update_check_running_changed.connect(
        lambda running: order.append("check started" if running else "check ended"))
    service.check_updates_quietly()
    service.refresh()
    assert service.update_check_running
    qtbot.waitUntil(lambda: settled(service), timeout=10_000)
    assert order[:2] == ["rows shown", "check started"]
    # The button's check does not wait behind a quiet one, nor is it dropped for it.
    service.check_updates_quietly()
    service.refresh()
    assert service.check_all_updates() is not None
    qtbot.waitUntil(lambda: settled(service), timeout=10_000)
    assert order.count("check started") == 2
