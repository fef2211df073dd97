"""Two model files sharing a stem: each keeps its own companions, none is written over.

``foo.safetensors`` with ``foo.civitai.info`` (naming its SHA256; perhaps the only record of
a model gone from Civitai) and ``foo.preview.png``; then ``foo.pt`` arrives in the same
folder, by a download, a scan or a move. Its companions take its whole name.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from civdesk.core.civitai.client import CivitaiClient
from civdesk.core.civitai.schema import ModelVersion
from civdesk.core.downloads.queue import DownloadQueue, RegisterInLibrary
from civdesk.core.library import Database, Library
from civdesk.core.scanner import Scanner
from civdesk.core.settings import Settings
from civdesk.core.sidecars import read_sidecars, write_companions
from civdesk.ui.library.operations import delete_with_companions
from tests.double import CivitaiDouble, FakeVersion
from tests.double.images import png_bytes

TWIN_BYTES = b"a model since removed from Civitai" * 64
TWIN_SHA = hashlib.sha256(TWIN_BYTES).hexdigest().upper()


def removed_version_json() -> dict[str, Any]:
    """The twin's ``.civitai.info``: a version Civitai no longer serves."""
    return {
        "id": 990001, "modelId": 880001, "name": "v1", "baseModel": "SD 1.5",
        "model": {"name": "Gone Model", "type": "LORA", "nsfw": False, "poi": False},
        "files": [{"id": 770001, "name": "foo.safetensors", "sizeKB": 2.1, "type": "Model",
                   "primary": True, "hashes": {"SHA256": TWIN_SHA}}],
        "images": [], "trainedWords": ["gone"],
    }


class Twin:
    """``foo.safetensors`` and the companions another tool wrote for it."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.model = folder / "foo.safetensors"
        self.info = folder / "foo.civitai.info"
        self.preview = folder / "foo.preview.png"
        self.model.write_bytes(TWIN_BYTES)
        self.info.write_text(json.dumps(removed_version_json(), indent=2), encoding="utf-8")
        self.preview.write_bytes(png_bytes(seed=7))
        self.before = {p: p.read_bytes() for p in (self.info, self.preview)}

    def assert_untouched(self) -> None:
        for path, data in self.before.items():
            assert path.read_bytes() == data, f"{path.name} was written over"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database.open(tmp_path / "library.sqlite3")
    yield database
    database.close()


def pt_version(d: CivitaiDouble) -> FakeVersion:
    """A version whose file Civitai names ``foo.pt``, with a PNG preview."""
    return d.add_version(d.add_model("Foo", "LORA"),
                         files=[d.file(name="foo.pt", format="PickleTensor", size=3000)],
                         images=[d.image("png")])


def info_id(path: Path) -> int:
    return int(json.loads(path.read_text(encoding="utf-8"))["id"])


def assert_own_companions(folder: Path, version: FakeVersion) -> None:
    assert info_id(folder / "foo.pt.civitai.info") == version.id
    assert (folder / "foo.pt.preview.png").read_bytes() == version.images[0].data


def scan(db: Database, d: CivitaiDouble, root: Path) -> Library:
    lib = Library(db)
    client = CivitaiClient(d.base_url, max_retries=0, backoff=0)
    Scanner(lib, client, Settings(library_folders=[str(root)], allow_nsfw=False)).scan()
    return lib


def assert_scanned_apart(lib: Library, folder: Path, version: FakeVersion) -> None:
    """Each model's entry names its own version and companions."""
    entries = {Path(e.path).name: e for e in lib.entries()}
    twin, pt = entries["foo.safetensors"], entries["foo.pt"]
    assert (twin.version_id, twin.info, twin.preview) == (
        990001, str(folder / "foo.civitai.info"), str(folder / "foo.preview.png"))
    assert (pt.version_id, pt.info, pt.preview) == (
        version.id, str(folder / "foo.pt.civitai.info"), str(folder / "foo.pt.preview.png"))


def test_a_download_beside_a_model_of_the_same_stem_keeps_its_companions(
    civitai: CivitaiDouble, db: Database, tmp_path: Path
) -> None:
    root = tmp_path / "models"
    folder = root / "Lora"
    twin = Twin(folder)
    version = pt_version(civitai)
    client = CivitaiClient(civitai.base_url, sleep=lambda s: None)
    queue = DownloadQueue(db, client, settings=Settings(download_root=str(root)),
                          post_download=RegisterInLibrary(Library(db), client, lambda: True))
    queue.add(version.id)
    snap = queue.run_next()
    assert snap is not None and snap.state == "completed", snap and snap.error
    assert Path(snap.dest_path or "") == folder.resolve() / "foo.pt"

    twin.assert_untouched()
    assert_own_companions(folder, version)
    local = Library(db).local_file(folder.resolve() / "foo.pt")
    assert local is not None and local.info_path == str(folder.resolve() / "foo.pt.civitai.info")
    assert local.preview_path == str(folder.resolve() / "foo.pt.preview.png")

    lib = scan(db, civitai, root.resolve())  # and a scan reads both apart
    twin.assert_untouched()
    assert_scanned_apart(lib, folder.resolve(), version)


def scanned_beside_a_twin(
    civitai: CivitaiDouble, db: Database, root: Path
) -> tuple[Twin, FakeVersion, Library]:
    """``foo.pt`` (known to Civitai) placed beside the twin, and the folder scanned."""
    twin = Twin(root)
    version = pt_version(civitai)
    (root / "foo.pt").write_bytes(version.files[0].content.read())
    return twin, version, scan(db, civitai, root)


def test_a_scan_gives_a_stem_twin_companions_of_its_own(
    civitai: CivitaiDouble, db: Database, tmp_path: Path
) -> None:
    root = tmp_path / "models"
    twin, version, lib = scanned_beside_a_twin(civitai, db, root)
    twin.assert_untouched()
    assert_own_companions(root, version)
    assert_scanned_apart(lib, root, version)


def test_a_model_moved_beside_its_stem_twin_brings_its_companions_under_its_whole_name(
    civitai: CivitaiDouble, db: Database, tmp_path: Path
) -> None:
    root = tmp_path / "models"
    version = pt_version(civitai)
    first = root / "first"
    first.mkdir(parents=True)
    (first / "foo.pt").write_bytes(version.files[0].content.read())
    scan(db, civitai, root)
    assert info_id(first / "foo.civitai.info") == version.id  # alone: the usual names

    twin = Twin(root / "second")
    (first / "foo.pt").rename(root / "second" / "foo.pt")
    fetched = len(civitai.requests)
    lib = scan(db, civitai, root)
    twin.assert_untouched()
    assert_own_companions(root / "second", version)
    assert not (first / "foo.civitai.info").exists()  # carried, not copied
    assert not any(r.host == "storage" for r in civitai.requests[fetched:])  # nor fetched
    assert_scanned_apart(lib, root / "second", version)


def test_deleting_a_model_leaves_its_stem_twins_companions(
    civitai: CivitaiDouble, db: Database, tmp_path: Path
) -> None:
    root = tmp_path / "models"
    twin, _version, lib = scanned_beside_a_twin(civitai, db, root)
    deleted = delete_with_companions(lib, root / "foo.pt")
    assert sorted(Path(p).name for p in deleted) == [
        "foo.pt", "foo.pt.civitai.info", "foo.pt.preview.png"]
    twin.assert_untouched()
    assert twin.model.exists()


# ------------------------------------------------------------- one folder, no twin


def served(d: CivitaiDouble) -> ModelVersion:
    return ModelVersion.from_json(d.version_json(pt_version(d)))


def beside_an_orphan(folder: Path) -> tuple[Path, Path]:
    """``foo.pt`` (new bytes) and a ``foo.civitai.info`` naming other bytes."""
    model = folder / "foo.pt"
    model.write_bytes(b"other bytes")
    orphan = folder / "foo.civitai.info"
    orphan.write_text(json.dumps(removed_version_json()), encoding="utf-8")
    return model, orphan


def test_an_info_naming_another_file_is_not_written_over(
    civitai: CivitaiDouble, tmp_path: Path
) -> None:
    """An orphan (its model moved away or deleted) is still the only record of it."""
    model, orphan = beside_an_orphan(tmp_path)
    version = served(civitai)
    done = write_companions(model, version, None, allow_nsfw=False, sha256="AB" * 32)
    assert done.wrote_info and done.info_path == tmp_path / "foo.pt.civitai.info"
    assert info_id(orphan) == 990001
    # The whole-name one is read first: the scan identifies the model by it.
    assert read_sidecars(model).identifying().version_id == version.id  # type: ignore[union-attr]


def test_the_info_the_library_recorded_for_a_file_replaced_in_place_is_updated(
    civitai: CivitaiDouble, tmp_path: Path
) -> None:
    model, info = beside_an_orphan(tmp_path)
    version = served(civitai)
    done = write_companions(model, version, None, allow_nsfw=False, sha256="AB" * 32,
                            recorded=(str(info),))
    assert done.info_path == info and info_id(info) == version.id


def test_a_preview_appearing_meanwhile_is_not_replaced(
    civitai: CivitaiDouble, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The preview is created, never renamed over a file that came between the look and
    the write (another tool saving its own)."""
    model = tmp_path / "foo.pt"
    model.write_bytes(b"bytes")
    version = served(civitai)
    client = CivitaiClient(civitai.base_url, max_retries=0)
    theirs = png_bytes(seed=3)
    fetch = client.fetch_image

    def fetch_and_race(url: str) -> tuple[bytes, str]:
        (tmp_path / "foo.preview.png").write_bytes(theirs)
        return fetch(url)

    monkeypatch.setattr(client, "fetch_image", fetch_and_race)
    done = write_companions(model, version, client, allow_nsfw=True)
    assert not done.wrote_preview and (tmp_path / "foo.preview.png").read_bytes() == theirs
    assert done.problems and "exists already" in done.problems[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "foo.civitai.info", "foo.preview.png", "foo.pt"]  # no temporary file left
