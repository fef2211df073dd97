"""The library scan of a model deep in a folder past Windows' MAX_PATH (issue 18).

Run here against :class:`~tests.core.windows_sim.SimulatedLongPaths`: every path of
``LONG_FROM`` characters or more that the scan (walk, hashing, companions, the offline
checks, clean-up) gives the OS without :func:`~civdesk.core.longpaths.os_path` fails as
Windows fails it, and a folder listed by its extended path gives entries whose ``.path``
carries the ``\\\\?\\`` prefix, as Windows' does. The library must record the normal path.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from civdesk.core import companion_formats, drives, hashing, longpaths, scanner, sidecars
from civdesk.core.civitai.client import CivitaiClient
from civdesk.core.drives import DriveAway, Presence, check_download_folder
from civdesk.core.library import Library, repository
from civdesk.core.longpaths import LONG_FROM
from civdesk.core.scanner import Scanner
from civdesk.core.settings import Settings
from tests.core.test_downloader import one_file_version
from tests.core.windows_sim import EXTENDED_PREFIX, SimulatedLongPaths
from tests.double import CivitaiDouble, SampleCatalog


@pytest.fixture
def windows_paths(monkeypatch: pytest.MonkeyPatch) -> SimulatedLongPaths:
    sim = SimulatedLongPaths(LONG_FROM)
    sim.patch(monkeypatch, scanner, hashing, sidecars, drives, companion_formats, repository)
    monkeypatch.setattr(longpaths, "os_path", sim.os_path)
    return sim


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "library-folder"
    folder.mkdir()
    return folder


@pytest.fixture
def scan_with(library: Library, root: Path, civitai: CivitaiDouble) -> Scanner:
    settings = Settings(library_folders=[str(root)], allow_nsfw=False, hash_workers=2,
                        companion_formats=["civitai-info", "cm-info", "metadata-json"])
    return Scanner(library, CivitaiClient(civitai.base_url, max_retries=0, backoff=0), settings)


def deep(root: Path, *names: str) -> Path:
    """A folder whose path is past the limit (made with this test's own os: no rule)."""
    folder = root.joinpath(("d" * 120), ("e" * 120), *names)
    os.makedirs(folder, exist_ok=True)
    assert len(str(folder)) >= LONG_FROM
    return folder


def put(folder: Path, name: str, data: bytes) -> Path:
    """A file written with this test's own ``open`` (no rule)."""
    path = folder / name
    with open(path, "wb") as fh:
        fh.write(data)
    return path


def assert_normal_paths(library: Library) -> None:
    """Nothing the library records carries the extended-length prefix."""
    for row in library.local_files():
        for recorded in (row.path, row.info_path, row.preview_path, row.library_root):
            assert recorded is None or not recorded.startswith(EXTENDED_PREFIX), recorded
    for entry in library.entries():
        assert not str(entry.path).startswith(EXTENDED_PREFIX)


def test_a_first_scan_finds_hashes_and_identifies_models_past_max_path(
        scan_with: Scanner, library: Library, root: Path, civitai_catalog: SampleCatalog,
        windows_paths: SimulatedLongPaths) -> None:
    cat = civitai_catalog
    folder = deep(root, "Lora")
    small = put(folder, "paperfold.safetensors", cat.lora_v2.files[0].read_bytes())
    big_version = one_file_version(cat.double, size=3 << 20)  # hashed in a read loop
    big = put(folder, "big.safetensors", big_version.files[0].read_bytes())

    summary = scan_with.scan()

    assert (summary.found, summary.hashed, summary.identified, summary.errors) == (2, 2, 2, [])
    assert windows_paths.refused == []
    windows_paths.active = False
    row = library.local_file(small)
    assert row is not None and row.path == str(small) and row.version_id == cat.lora_v2.id
    assert row.sha256 == cat.lora_v2.files[0].sha256
    big_row = library.local_file(big)
    assert big_row is not None and big_row.version_id == big_version.id
    info = small.with_name("paperfold.civitai.info")
    assert row.info_path == str(info) and json.loads(info.read_text())["id"] == cat.lora_v2.id
    assert row.preview_path == str(small.with_name("paperfold.preview.png"))
    assert folder.joinpath("paperfold.metadata.json").is_file()  # another tool's, too
    assert folder.joinpath("paperfold.cm-info.json").is_file()
    assert_normal_paths(library)


def test_a_companion_beside_a_model_past_max_path_is_read(
        scan_with: Scanner, library: Library, root: Path, civitai_catalog: SampleCatalog,
        windows_paths: SimulatedLongPaths) -> None:
    """Civitai cannot be asked (it does not list this file): the .civitai.info another
    tool left beside it identifies it, and A1111's .json gives what the user wrote."""
    version = civitai_catalog.lora_v1
    folder = deep(root)
    model = put(folder, "mine.safetensors", b"bytes Civitai does not know")
    info = civitai_catalog.double.version_json(version)
    digest = hashlib.sha256(b"bytes Civitai does not know").hexdigest().upper()
    info["files"] = [{**info["files"][0], "hashes": {"SHA256": digest}}]
    put(folder, "mine.civitai.info", json.dumps(info).encode())
    put(folder, "mine.json", json.dumps({"activation text": "paperfold"}).encode())

    summary = scan_with.scan()

    assert (summary.found, summary.identified, summary.errors) == (1, 1, [])
    row = library.local_file(model)
    assert row is not None and row.version_id == version.id and row.identified_by == "sidecar"
    assert row.user_meta == {"activation_text": "paperfold"}
    assert windows_paths.refused == []


def test_an_unchanged_rescan_keeps_a_model_past_max_path_without_reading_it(
        scan_with: Scanner, library: Library, root: Path, civitai_catalog: SampleCatalog,
        windows_paths: SimulatedLongPaths) -> None:
    model = put(deep(root), "paperfold.safetensors",
                civitai_catalog.lora_v2.files[0].read_bytes())
    assert scan_with.scan().identified == 1
    before = library.local_file(model)
    civitai_catalog.double.clear_requests()

    summary = scan_with.scan()

    assert (summary.found, summary.unchanged, summary.hashed) == (1, 1, 0)
    assert (summary.identified, summary.removed, summary.offline) == (1, 0, 0)
    assert civitai_catalog.double.requests == []
    assert library.local_file(model) == before and windows_paths.refused == []


def test_a_deleted_model_past_max_path_is_gone(
        scan_with: Scanner, library: Library, root: Path, civitai_catalog: SampleCatalog,
        windows_paths: SimulatedLongPaths) -> None:
    folder = deep(root)
    model = put(folder, "paperfold.safetensors", civitai_catalog.lora_v2.files[0].read_bytes())
    kept = put(folder, "harbor.safetensors", civitai_catalog.checkpoint_v1.files[0].read_bytes())
    assert scan_with.scan().found == 2
    windows_paths.active = False
    model.unlink()
    windows_paths.active = True

    summary = scan_with.scan()

    assert (summary.removed, summary.offline) == (1, 0)
    assert library.local_file(model) is None and library.local_file(kept) is not None


def test_a_folder_past_max_path_on_an_unplugged_drive_is_offline(
        scan_with: Scanner, library: Library, root: Path, tmp_path: Path,
        civitai_catalog: SampleCatalog, windows_paths: SimulatedLongPaths) -> None:
    """The drive is linked in deep below the library folder; unplugged, the link dangles.
    Looked at without os_path every folder on the way would seem missing, down to one
    on the library's own drive: the model would be taken for deleted."""
    usb = tmp_path / "usb"
    usb.mkdir()
    put(usb, "paperfold.safetensors", civitai_catalog.lora_v2.files[0].read_bytes())
    drive = deep(root) / "drive"
    drive.symlink_to(usb, target_is_directory=True)
    model = drive / "paperfold.safetensors"
    assert scan_with.scan().identified == 1 and library.local_file(model) is not None
    shutil.rmtree(usb)  # unplugged

    summary = scan_with.scan()

    assert (summary.removed, summary.offline) == (0, 1)
    row = library.local_file(model)
    assert row is not None and row.offline
    assert windows_paths.refused == []


def test_presence_and_download_folder_checks_see_a_drive_away_past_max_path(
        tmp_path: Path, library: Library, windows_paths: SimulatedLongPaths) -> None:
    drive = deep(tmp_path) / "drive"
    drive.symlink_to(tmp_path / "unplugged", target_is_directory=True)  # dangles
    model = str(drive / "Lora" / "m.safetensors")
    verdict = Presence().verdict(model, os.stat(tmp_path).st_dev)
    assert not verdict.gone and verdict.where == str(drive)
    with pytest.raises(DriveAway):
        check_download_folder(drive / "Lora", library)
    assert windows_paths.refused == []


def test_a_model_moved_between_folders_past_max_path_takes_its_companion_along(
        scan_with: Scanner, library: Library, root: Path, civitai_catalog: SampleCatalog,
        windows_paths: SimulatedLongPaths) -> None:
    old = put(deep(root, "old"), "paperfold.safetensors",
              civitai_catalog.lora_v2.files[0].read_bytes())
    assert scan_with.scan().identified == 1
    windows_paths.active = False
    new = deep(root, "new") / old.name
    old.rename(new)  # the companions stay behind
    windows_paths.active = True

    summary = scan_with.scan()

    assert (summary.moved, summary.removed, summary.errors) == (1, 0, [])
    row = library.local_file(new)
    windows_paths.active = False
    assert row is not None and row.info_path == str(new.with_name("paperfold.civitai.info"))
    assert Path(row.info_path).is_file()
    assert not old.with_name("paperfold.civitai.info").exists()
    assert_normal_paths(library)


def test_a_model_past_max_path_is_linked_by_hand(
        scan_with: Scanner, library: Library, root: Path, civitai_catalog: SampleCatalog,
        windows_paths: SimulatedLongPaths) -> None:
    model = put(deep(root), "mine.safetensors", b"bytes Civitai does not know")
    version = CivitaiClient(civitai_catalog.double.base_url).get_version(
        civitai_catalog.lora_v1.id)

    row = scan_with.link(model, version)

    assert row.path == str(model) and row.identified_by == "manual"
    assert row.info_path == str(model.with_name("mine.civitai.info"))
    assert windows_paths.refused == []


def test_copies_past_max_path_are_duplicates_and_present(
        scan_with: Scanner, library: Library, root: Path, civitai_catalog: SampleCatalog,
        windows_paths: SimulatedLongPaths) -> None:
    """The library's own looks at the disk (duplicates, a download's file already there)."""
    f = civitai_catalog.lora_v2.files[0]
    copies = [put(deep(root, where), "paperfold.safetensors", f.read_bytes())
              for where in ("a", "b")]
    assert scan_with.scan().duplicates == 1

    assert [sorted(c.path for c in group) for group in library.duplicates()] == [
        sorted(map(str, copies))]
    present = library.unchanged_file(f.sha256)
    assert present is not None and present.path in map(str, copies)
