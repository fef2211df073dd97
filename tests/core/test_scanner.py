"""The scanner on real files, a real SQLite library and the loopback Civitai double."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from civdesk.core import scanner as scanner_module
from civdesk.core.civitai.client import CivitaiClient
from civdesk.core.civitai.schema import ModelVersion
from civdesk.core.errors import Cancelled
from civdesk.core.hashing import sha256_file
from civdesk.core.library import Database, Library
from civdesk.core.scanner import LinkConflict, Scanner, ScanProgress
from civdesk.core.settings import Settings
from civdesk.core.sidecars import stem_of
from tests.double import CivitaiDouble, SampleCatalog
from tests.double.catalog import FakeFile, FakeVersion
from tests.sql_log import SqlLog


class CountingHasher:
    """The real sha256_file, counting the files it reads."""

    def __init__(self) -> None:
        self.paths: list[Path] = []
        self._lock = threading.Lock()

    def __call__(self, path: Path, **kw: Any) -> str:
        with self._lock:
            self.paths.append(Path(path))
        return sha256_file(path, **kw)


@pytest.fixture
def lib(tmp_path: Path) -> Library:
    return Library(Database.open(tmp_path / "library.sqlite3"))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    return folder


@pytest.fixture
def settings(root: Path) -> Settings:
    return Settings(library_folders=[str(root)], allow_nsfw=False, hash_workers=2)


@pytest.fixture
def client(civitai: CivitaiDouble) -> CivitaiClient:
    return CivitaiClient(civitai.base_url, max_retries=0, backoff=0)


@pytest.fixture
def hasher() -> CountingHasher:
    return CountingHasher()


@pytest.fixture
def scanner(
    lib: Library, client: CivitaiClient, settings: Settings, hasher: CountingHasher
) -> Scanner:
    return Scanner(lib, client, settings, hasher=hasher)


def place(folder: Path, f: FakeFile, name: str | None = None) -> Path:
    path = folder / (name or f.name or f"file{f.id}.safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(f.read_bytes())
    return path


def place_three(folder: Path, c: SampleCatalog) -> list[Path]:
    """Three identifiable model files (two versions of one LoRA and an embedding)."""
    return [place(folder, f) for f in (c.lora_v1.files[0], c.lora_v2.files[0],
                                       c.embedding_v1.files[0])]


def api_calls(d: CivitaiDouble, prefix: str = "/api/") -> list[str]:
    return [r.path for r in d.requests if r.host == "api" and r.path.startswith(prefix)]


def by_hash_calls(d: CivitaiDouble) -> list[str]:
    return api_calls(d, "/api/v1/model-versions/by-hash")


def test_first_scan_identifies_and_writes_companions(
    scanner: Scanner, lib: Library, root: Path, civitai_catalog: SampleCatalog
) -> None:
    cat = civitai_catalog
    lora = place(root / "Lora", cat.lora_v2.files[0])
    ckpt = place(root / "Stable-diffusion", cat.checkpoint_v1.primary_file)  # type: ignore[arg-type]
    stages: list[str] = []
    summary = scanner.scan(progress=lambda p: stages.append(p.phase))
    assert (summary.found, summary.identified, summary.unknown, summary.errors) == (2, 2, 0, [])
    assert summary.hashed == 2 and summary.removed == 0
    row = lib.local_file(lora)
    assert row is not None and row.version_id == cat.lora_v2.id
    assert row.identified_by == "hash" and row.lookup_state == "found"
    assert row.file_id == cat.lora_v2.files[0].id and row.library_root == str(root)
    info = json.loads(lora.with_name(lora.stem + ".civitai.info").read_text())
    assert info["id"] == cat.lora_v2.id and info["modelId"] == cat.lora.id
    # The LoRA's first image is a PNG served under a .jpeg URL; the checkpoint's a JPEG.
    assert row.preview_path == str(lora.with_name(lora.stem + ".preview.png"))
    assert Path(row.preview_path).read_bytes().startswith(b"\x89PNG")
    assert lib.local_file(ckpt).preview_path.endswith(".preview.jpeg")  # type: ignore[union-attr]
    assert lib.version_json(cat.checkpoint_v1.id) is not None
    assert stages[0] == "walking" and stages[-1] == "done" and "hashing" in stages
    assert len(by_hash_calls(civitai_catalog.double)) == 1


def test_unchanged_rescan_reads_no_model_bytes(
    scanner: Scanner, hasher: CountingHasher, root: Path, civitai_catalog: SampleCatalog,
    lib: Library,
) -> None:
    for f in civitai_catalog.files:
        place(root, f)
    big = root / "local-only.safetensors"
    big.write_bytes(os.urandom(4 << 20))
    first = scanner.scan()
    assert first.found == len(civitai_catalog.files) + 1 and first.unknown == 1
    civitai_catalog.double.clear_requests()
    hasher.paths.clear()
    rows_before = {lf.path: lf for lf in lib.local_files()}

    read_before = _bytes_read()
    with _opened_under(root) as opened:
        second = scanner.scan()
    read_after = _bytes_read()

    assert hasher.paths == []
    assert opened == []  # no model file, no companion: the listing and stat only
    if read_before is not None and read_after is not None:
        # Independent of the injected hasher: this process read less than the big file.
        assert read_after - read_before < 4 << 20
    assert civitai_catalog.double.requests == []
    assert (second.found, second.unchanged, second.hashed) == (first.found, first.found, 0)
    assert second.identified == first.identified and second.unknown == 1
    assert {lf.path: lf for lf in lib.local_files()} == rows_before


_WATCHED: list[tuple[str, list[str]]] = []


def _note_open(event: str, args: tuple[Any, ...]) -> None:
    if event == "open" and _WATCHED and isinstance(args[0], (str, bytes, os.PathLike)):
        path = os.fsdecode(args[0])
        for folder, opened in _WATCHED:
            if path.startswith(folder + os.sep):
                opened.append(path)


@contextlib.contextmanager
def _opened_under(folder: Path) -> Iterator[list[str]]:
    """The files under ``folder`` this process opens meanwhile (Python's open and
    os.open raise the "open" audit event; a hook cannot be removed, so it is added once)."""
    if not _AUDITING:
        sys.addaudithook(_note_open)
        _AUDITING.append(True)
    opened: list[str] = []
    _WATCHED.append((os.fspath(folder), opened))
    try:
        yield opened
    finally:
        _WATCHED.clear()


_AUDITING: list[bool] = []


def _bytes_read() -> int | None:
    try:
        with open("/proc/self/io") as fh:
            fields = dict(line.split(": ") for line in fh.read().splitlines())
        return int(fields["rchar"])
    except OSError:
        return None


def test_deleted_file_removes_exactly_its_entry(
    scanner: Scanner, lib: Library, root: Path, civitai_catalog: SampleCatalog
) -> None:
    paths = [place(root, f) for f in civitai_catalog.files[:3]]
    scanner.scan()
    paths[1].unlink()
    summary = scanner.scan()
    assert summary.removed == 1
    remaining = sorted(lf.path for lf in lib.local_files())
    assert remaining == sorted(str(p) for p in (paths[0], paths[2]))


def test_quick_scan_removes_nothing(
    scanner: Scanner, lib: Library, root: Path, civitai_catalog: SampleCatalog
) -> None:
    path = place(root, civitai_catalog.files[0])
    scanner.scan()
    path.unlink()
    assert scanner.scan(full=False).removed == 0
    assert len(lib.local_files()) == 1


def test_rename_and_move_keep_identity_without_rehashing(
    scanner: Scanner, hasher: CountingHasher, lib: Library, root: Path,
    civitai_catalog: SampleCatalog,
) -> None:
    path = place(root / "Lora", civitai_catalog.lora_v1.files[0])
    scanner.scan()
    before = lib.local_file(path)
    assert before is not None
    hasher.paths.clear()
    new_path = root / "Lora" / "sub" / "renamed.safetensors"
    new_path.parent.mkdir()
    path.rename(new_path)
    summary = scanner.scan()
    after = lib.local_file(new_path)
    assert summary.moved == 1 and summary.removed == 0 and hasher.paths == []
    assert after is not None and lib.local_file(path) is None
    assert (after.id, after.added_at, after.version_id) == (before.id, before.added_at,
                                                           before.version_id)
    # The companions stayed behind under the old name: new ones are written for the new one.
    assert after.info_path == str(new_path.with_name("renamed.civitai.info"))
    assert Path(after.info_path).is_file()


def test_a_renamed_folder_moves_every_file_in_one_go(
    scanner: Scanner, hasher: CountingHasher, lib: Library, root: Path,
    civitai_catalog: SampleCatalog,
) -> None:
    paths = place_three(root / "Mine", civitai_catalog)
    scanner.scan()
    before = {lib.local_file(p).id for p in paths}  # type: ignore[union-attr]
    hasher.paths.clear()
    (root / "Mine").rename(root / "Renamed")

    summary = scanner.scan()

    assert summary.moved == 3 and summary.removed == 0 and hasher.paths == []
    assert summary.identified == 3
    after = [lib.local_file(root / "Renamed" / p.name) for p in paths]
    assert {f.id for f in after if f is not None} == before
    # The companions moved along with the folder: the rows point at them.
    for f in after:
        assert f is not None and f.info_path is not None
        assert Path(f.info_path).parent == root / "Renamed" and Path(f.info_path).is_file()
    assert all(str(root / "Mine") not in f.path for f in lib.local_files())


def test_companions_left_behind_by_a_move_follow_their_model(
    scanner: Scanner, lib: Library, root: Path, civitai_catalog: SampleCatalog
) -> None:
    paths = place_three(root, civitai_catalog)
    scanner.scan()
    left = sorted(p.name for p in root.iterdir() if p.is_file() and p not in paths)
    assert left  # the .civitai.info and preview of each
    (root / "sorted").mkdir()
    for p in paths:  # the model files only, one of them renamed
        p.rename(root / "sorted" / ("renamed.safetensors" if p == paths[0] else p.name))
    civitai_catalog.double.clear_requests()

    summary = scanner.scan()

    assert summary.moved == 3 and summary.companions_written == 0 and not summary.errors
    assert [p for p in root.iterdir() if p.is_file()] == []  # no orphans left behind
    assert civitai_catalog.double.requests == []  # nothing fetched again
    for row in lib.local_files():
        assert row.info_path is not None and row.preview_path is not None
        info, preview = Path(row.info_path), Path(row.preview_path)
        assert info.parent == preview.parent == root / "sorted"
        assert info.name.startswith(stem_of(Path(row.path)) + ".")
        assert json.loads(info.read_text())["id"] == row.version_id and preview.is_file()


def test_companions_follow_a_model_moved_to_another_drive(
    lib: Library, client: CivitaiClient, root: Path, civitai_catalog: SampleCatalog
) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == root.stat().st_dev:
        pytest.skip("needs a second file system (/dev/shm)")
    other = Path(tempfile.mkdtemp(prefix="civdesk-test-drive-", dir=shm))
    try:
        settings = Settings(library_folders=[str(root), str(other)], hash_workers=2)
        scanner = Scanner(lib, client, settings)
        paths = place_three(root, civitai_catalog)
        scanner.scan()
        for p in paths:  # the model files only: a copy on the other drive, then a delete
            shutil.move(p, other / p.name)
        civitai_catalog.double.clear_requests()

        summary = scanner.scan()

        assert summary.moved == 3 and summary.companions_written == 0 and not summary.errors
        assert [p for p in root.iterdir() if p.is_file()] == []  # no orphans on the old drive
        assert [p.name for p in root.iterdir()] == []  # nor half copies
        assert civitai_catalog.double.requests == []  # nothing fetched again
        for row in lib.local_files():
            assert row.info_path and Path(row.info_path).parent == other
            assert json.loads(Path(row.info_path).read_text())["id"] == row.version_id
            assert row.preview_path and Path(row.preview_path).is_file()
        assert not [p for p in other.iterdir() if p.name.endswith(".tmp")]
    finally:
        shutil.rmtree(other)


def test_progress_tells_the_new_files_from_the_known_ones(
    scanner: Scanner, root: Path, civitai_catalog: SampleCatalog
) -> None:
    place_three(root, civitai_catalog)
    scanner.scan()
    place(root / "new", civitai_catalog.checkpoint_v1.primary_file)  # type: ignore[arg-type]
    seen: list[ScanProgress] = []
    scanner.scan(progress=seen.append)
    hashing = [p for p in seen if p.phase == scanner_module.PHASE_HASHING]
    assert hashing and {(p.files_found, p.files_to_hash) for p in hashing} == {(4, 1)}


def test_files_moved_without_any_companions_get_new_ones_in_one_go(
    scanner: Scanner, lib: Library, root: Path, civitai_catalog: SampleCatalog
) -> None:
    paths = place_three(root, civitai_catalog)
    scanner.scan()
    (root / "sorted").mkdir()
    for p in paths:  # the model files only; their companions deleted
        p.rename(root / "sorted" / p.name)
    for p in list(root.iterdir()):
        if p.is_file():
            p.unlink()
    version_queries = SqlLog(lib.db, "FROM model_versions")

    with version_queries:
        summary = scanner.scan()

    assert summary.moved == 3 and summary.companions_written >= 3 and not summary.errors
    for p in paths:
        row = lib.local_file(root / "sorted" / p.name)
        assert row is not None and row.info_path is not None
        info = Path(row.info_path)
        assert info.parent == root / "sorted" and info.is_file()
        assert json.loads(info.read_text())["id"] == row.version_id
    assert len(version_queries.statements) == 1  # one query for the three versions


def test_a_moved_file_with_a_new_hard_link_is_one_move_and_one_new_file(
    scanner: Scanner, lib: Library, root: Path, civitai_catalog: SampleCatalog
) -> None:
    path = place(root, civitai_catalog.embedding_v1.files[0])
    scanner.scan()
    before = lib.local_file(path)
    moved = root / "moved" / path.name
    moved.parent.mkdir()
    path.rename(moved)
    link = root / "linked.safetensors"
    os.link(moved, link)  # same size, mtime and inode as the vanished row: one can move

    summary = scanner.scan()

    assert summary.moved == 1 and summary.removed == 0 and not summary.errors
    rows = {f.path: f for f in lib.local_files()}
    assert set(rows) == {str(moved), str(link)}
    assert before is not None and before.id in {rows[str(moved)].id, rows[str(link)].id}
    assert rows[str(moved)].sha256 == rows[str(link)].sha256 == before.sha256
    assert summary.duplicates == 0  # two names of one file on disk: nothing to free


def test_copied_then_deleted_files_are_moves_by_hash_stored_in_one_go(
    scanner: Scanner, lib: Library, root: Path, civitai_catalog: SampleCatalog
) -> None:
    paths = place_three(root, civitai_catalog)
    scanner.scan()
    before = {p.name: lib.local_file(p) for p in paths}
    (root / "elsewhere").mkdir()
    for p in paths:  # new inodes (a copy to another drive): only the hash tells
        (root / "elsewhere" / p.name).write_bytes(p.read_bytes())
        p.unlink()

    with SqlLog(lib.db, "UPDATE local_files SET path") as moves:
        summary = scanner.scan()

    assert summary.moved == 3 and summary.removed == 0 and not summary.errors
    for p in paths:
        after, old = lib.local_file(root / "elsewhere" / p.name), before[p.name]
        assert after is not None and old is not None and after.id == old.id
    # One statement for the three (it was a transaction per file: 3,000 copied files took
    # 3.3 s to rescan instead of 0.6 s).
    assert moves.rows == [3]


def test_two_copies_of_a_deleted_file_are_one_move_and_one_new_file(
    scanner: Scanner, lib: Library, root: Path, civitai_catalog: SampleCatalog
) -> None:
    path = place(root, civitai_catalog.embedding_v1.files[0])
    scanner.scan()
    before = lib.local_file(path)
    copies = [root / "a" / path.name, root / "b" / path.name]
    for copy in copies:
        copy.parent.mkdir()
        copy.write_bytes(path.read_bytes())
    path.unlink()

    summary = scanner.scan()

    assert summary.moved == 1 and summary.removed == 0 and summary.duplicates == 1
    rows = [lib.local_file(copy) for copy in copies]
    assert before is not None and all(r is not None for r in rows)
    assert sorted(r.id == before.id for r in rows if r is not None) == [False, True]


def test_unplugged_library_folder_keeps_its_entries(
    scanner: Scanner, lib: Library, root: Path, civitai_catalog: SampleCatalog
) -> None:
    for f in civitai_catalog.files[:2]:
        place(root, f)
    scanner.scan()
    root.rename(root.with_name("unplugged"))
    summary = scanner.scan()
    assert summary.missing_roots == [str(root)] and summary.removed == 0
    assert len(lib.local_files()) == 2
    assert any("missing or unreadable" in e for e in summary.errors)


def test_empty_mount_point_keeps_its_entries(
    scanner: Scanner, lib: Library, root: Path, civitai_catalog: SampleCatalog
) -> None:
    place(root, civitai_catalog.files[0])
    scanner.scan()
    for p in root.iterdir():
        p.unlink()
    summary = scanner.scan()
    assert summary.missing_roots == [str(root)] and summary.removed == 0
    assert len(lib.local_files()) == 1


def test_unknown_hash_is_local_only_and_not_asked_again(
    lib: Library, client: CivitaiClient, settings: Settings, root: Path, civitai: CivitaiDouble
) -> None:
    path = root / "my-own-merge.safetensors"
    path.write_bytes(os.urandom(5000))
    scanner = Scanner(lib, client, settings)
    summary = scanner.scan()
    row = lib.local_file(path)
    assert summary.unknown == 1 and summary.identified == 0 and summary.errors == []
    assert row is not None and row.lookup_state == "unknown" and row.looked_up_at is not None
    assert row.version_id is None and not path.with_name("my-own-merge.civitai.info").exists()
    civitai.clear_requests()
    assert scanner.scan().unknown == 1 and by_hash_calls(civitai) == []
    scanner.scan(recheck_unknown=True)
    assert len(by_hash_calls(civitai)) == 1


def test_an_info_file_put_beside_an_unknown_file_identifies_it_on_the_next_scan(
    scanner: Scanner, hasher: CountingHasher, lib: Library, root: Path,
    civitai_catalog: SampleCatalog,
) -> None:
    c = civitai_catalog
    data = os.urandom(5000)  # a file Civitai does not know by its hash (a re-upload, say)
    path = root / "clear-vae.safetensors"
    path.write_bytes(data)
    assert scanner.scan().unknown == 1
    sha256 = hashlib.sha256(data).hexdigest().upper()
    version = c.double.version_json(c.vae_v1)
    version["files"][0]["hashes"]["SHA256"] = sha256  # the info file of these very bytes
    path.with_name("clear-vae.civitai.info").write_text(json.dumps(version))
    hasher.paths.clear()
    summary = scanner.scan()
    row = lib.local_file(path)
    assert (summary.identified, summary.unknown, hasher.paths) == (1, 0, [])
    assert row is not None and (row.version_id, row.identified_by) == (c.vae_v1.id, "sidecar")
    assert row.info_path == str(path.with_name("clear-vae.civitai.info"))


def test_an_info_file_of_other_bytes_is_weighed_once(
    scanner: Scanner, lib: Library, root: Path, civitai_catalog: SampleCatalog,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = root / "mine.safetensors"
    path.write_bytes(os.urandom(5000))
    scanner.scan()
    info = path.with_name("mine.civitai.info")
    info.write_text(json.dumps(civitai_catalog.double.version_json(civitai_catalog.vae_v1)))
    reads: list[Path] = []
    real = scanner_module.read_sidecars
    monkeypatch.setattr(scanner_module, "read_sidecars",
                        lambda p, *a: reads.append(p) or real(p, *a))
    assert scanner.scan().unknown == 1  # it names another file: the hash wins
    assert scanner.scan().unknown == 1
    assert reads == [path]  # read when it was new, not on every rescan
    row = lib.local_file(path)
    assert row is not None and row.version_id is None and row.info_path == str(info)


def _sm_sidecar(path: Path, version: FakeVersion, sha256: str) -> None:
    path.with_name(path.name.rsplit(".", 1)[0] + ".cm-info.json").write_text(json.dumps({
        "ModelId": version.model_id, "VersionId": version.id, "ModelName": "x",
        "VersionName": version.name, "ModelType": "LORA", "Hashes": {"SHA256": sha256},
    }))


def test_stability_matrix_sidecar_identifies_without_a_hash_lookup(
    scanner: Scanner, lib: Library, root: Path, civitai_catalog: SampleCatalog
) -> None:
    f = civitai_catalog.lora_v1.files[0]
    path = place(root, f)
    _sm_sidecar(path, civitai_catalog.lora_v1, f.sha256)
    summary = scanner.scan()
    row = lib.local_file(path)
    assert summary.identified == 1
    assert row is not None and row.identified_by == "sidecar"
    assert row.version_id == civitai_catalog.lora_v1.id and row.sha256 == f.sha256
    assert by_hash_calls(civitai_catalog.double) == []


def test_lora_manager_sidecar_needs_no_api_call_at_all(
    scanner: Scanner, lib: Library, root: Path, civitai_catalog: SampleCatalog
) -> None:
    d = civitai_catalog.double
    f = civitai_catalog.embedding_v1.files[0]
    path = place(root, f)
    path.with_name(path.stem + ".metadata.json").write_text(json.dumps({
        "file_name": path.stem, "sha256": f.sha256.lower(), "from_civitai": True,
        "civitai": d.version_json(civitai_catalog.embedding_v1),
    }))
    scanner.scan()
    row = lib.local_file(path)
    assert row is not None and row.identified_by == "sidecar"
    assert row.version_id == civitai_catalog.embedding_v1.id
    assert api_calls(d) == []  # only the preview image came from the storage host


def test_lying_sidecar_loses_to_the_hash(
    scanner: Scanner, lib: Library, root: Path, civitai_catalog: SampleCatalog
) -> None:
    real = civitai_catalog.vae_v1.files[0]
    path = place(root, real)
    other = civitai_catalog.lora_v1
    _sm_sidecar(path, other, other.files[0].sha256)
    scanner.scan()
    row = lib.local_file(path)
    assert row is not None and row.version_id == civitai_catalog.vae_v1.id
    assert row.identified_by == "hash"


def test_duplicates_are_counted(
    scanner: Scanner, root: Path, civitai_catalog: SampleCatalog
) -> None:
    f = civitai_catalog.lora_v1.files[0]
    place(root / "a", f)
    place(root / "b", f)
    place(root / "c", f, "third.safetensors")
    place(root, civitai_catalog.vae_v1.files[0])
    assert scanner.scan().duplicates == 2
    assert scanner.scan().duplicates == 2  # unchanged files count too


def test_hard_links_are_one_file_not_duplicates(
    scanner: Scanner, lib: Library, root: Path, civitai_catalog: SampleCatalog
) -> None:
    # A1111 and ComfyUI sharing one LoRA through a hard link: no space to free, and
    # deleting "the copy" must not be suggested.
    f = civitai_catalog.lora_v1.files[0]
    a1111 = place(root / "a1111" / "Lora", f)
    comfy = root / "comfy" / "loras" / a1111.name
    comfy.parent.mkdir(parents=True)
    os.link(a1111, comfy)
    assert scanner.scan().duplicates == 0
    assert lib.duplicates() == []
    copy = place(root / "backup", f)  # a real copy: its own bytes on disk
    assert scanner.scan().duplicates == 1
    [group] = lib.duplicates()
    assert [Path(x.path) for x in group] == [a1111, copy]  # the linked pair counts once


def test_network_down_still_registers_and_retries_next_scan(
    scanner: Scanner, lib: Library, root: Path, civitai_catalog: SampleCatalog
) -> None:
    paths = [place(root, f) for f in civitai_catalog.files[:3]]
    civitai_catalog.double.fail(status=503, n=100, path_prefix="/api/")
    summary = scanner.scan()
    assert summary.found == 3 and summary.identified == 0
    assert len(summary.errors) == 1 and "next scan" in summary.errors[0]
    assert all(lib.local_file(p).lookup_state == "error" for p in paths)  # type: ignore[union-attr]
    civitai_catalog.double.reset_faults()
    assert scanner.scan().identified == 3


def test_offline_scan_registers_pending(
    lib: Library, settings: Settings, root: Path, civitai_catalog: SampleCatalog
) -> None:
    path = place(root, civitai_catalog.files[0])
    summary = Scanner(lib, None, settings).scan()
    assert summary.found == 1 and lib.local_file(path).lookup_state == "pending"  # type: ignore[union-attr]


def test_failed_lookup_of_a_pending_file_is_not_a_duplicate(
    lib: Library, settings: Settings, scanner: Scanner, root: Path,
    civitai_catalog: SampleCatalog,
) -> None:
    path = place(root, civitai_catalog.files[0])
    Scanner(lib, None, settings).scan()  # offline: registered as "pending"
    civitai_catalog.double.fail(n=100, path_prefix="/api/v1/model-versions")
    summary = scanner.scan()  # online, but the lookup fails again
    assert (summary.found, summary.duplicates, summary.identified) == (1, 0, 0)
    assert lib.local_file(path).lookup_state == "error"  # type: ignore[union-attr]
    assert lib.duplicates() == []


def test_the_folders_downloads_go_to_are_scanned_too(
    lib: Library, client: CivitaiClient, tmp_path: Path
) -> None:
    library, downloads, vae = tmp_path / "library", tmp_path / "downloads", tmp_path / "vae"
    settings = Settings(library_folders=[str(library)], download_root=str(downloads))
    settings.type_folders["VAE"] = str(vae)
    scanner = Scanner(lib, client, settings)
    assert scanner.default_folders() == [str(library)]  # nothing downloaded yet
    (downloads / "Lora").mkdir(parents=True)
    vae.mkdir()
    assert scanner.default_folders() == [str(library), str(downloads), str(vae)]
    settings.download_root = str(library / "incoming")  # inside a library folder: covered
    (library / "incoming").mkdir(parents=True)
    assert scanner.default_folders() == [str(library), str(vae)]


def test_walk_rules_symlink_loop_hidden_and_extensions(
    scanner: Scanner, lib: Library, root: Path
) -> None:
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "loop").symlink_to(root / "a")  # would recurse forever
    (root / "a" / "up").symlink_to(root)
    (root / "a" / "b" / "m.SafeTensors").write_bytes(b"1")
    (root / "x.ckpt").write_bytes(b"2")
    (root / "y.safetensors.part").write_bytes(b"3")
    (root / "notes.txt").write_bytes(b"4")
    (root / "._x.ckpt").write_bytes(b"6")  # macOS's resource-fork side file on a FAT drive
    (root / ".git").mkdir()
    (root / ".git" / "z.safetensors").write_bytes(b"5")
    (root / "dangling.safetensors").symlink_to(root / "nowhere")
    summary = scanner.scan()
    assert summary.found == 2
    assert sorted(Path(lf.path).name for lf in lib.local_files()) == ["m.SafeTensors", "x.ckpt"]


def test_files_reached_twice_through_links_are_counted_once(
    scanner: Scanner, lib: Library, root: Path, tmp_path: Path
) -> None:
    real = root / "Lora"
    real.mkdir()
    for i in range(3):
        (real / f"m{i}.safetensors").write_bytes(b"x" * (i + 1))
    (root / "aaa-link").symlink_to(real)  # a folder linked into the library (listed first)
    (root / "file-link.safetensors").symlink_to(real / "m0.safetensors")
    other = tmp_path / "comfy"  # a second library folder linking into the first
    other.mkdir()
    (other / "loras").symlink_to(real)
    (other / "own.safetensors").write_bytes(b"own")
    alias = tmp_path / "alias"  # the first folder again under another name
    alias.symlink_to(root)
    (real / "hard.safetensors").hardlink_to(real / "m1.safetensors")  # a real second path

    summary = scanner.scan([root, other, alias, real])
    # m0-m2, hard (a second path of m1: registered, but no copy taking space), own
    assert (summary.found, summary.duplicates) == (5, 0)
    assert sorted(lf.path for lf in lib.local_files()) == sorted(
        str(p) for p in [*(real / f"m{i}.safetensors" for i in range(3)),
                         real / "hard.safetensors", other / "own.safetensors"]
    )
    assert scanner.scan([root, other]).removed == 0


def test_changed_content_is_rehashed(
    scanner: Scanner, hasher: CountingHasher, lib: Library, root: Path,
    civitai_catalog: SampleCatalog,
) -> None:
    path = place(root, civitai_catalog.lora_v1.files[0], "m.safetensors")
    scanner.scan()
    before = lib.local_file(path)
    path.write_bytes(civitai_catalog.lora_v2.files[0].read_bytes())
    hasher.paths.clear()
    scanner.scan()
    after = lib.local_file(path)
    assert hasher.paths == [path]
    assert after is not None and before is not None and after.id == before.id
    assert after.version_id == civitai_catalog.lora_v2.id


def test_touched_files_are_rehashed_and_only_their_stat_is_stored(
    scanner: Scanner, hasher: CountingHasher, lib: Library, root: Path,
    civitai_catalog: SampleCatalog,
) -> None:
    d = civitai_catalog.double
    paths = [place(root, f) for f in (civitai_catalog.lora_v1.files[0],
                                      civitai_catalog.embedding_v1.files[0])]
    scanner.scan()
    before = {p: lib.local_file(p) for p in paths}
    for p in paths:  # the same bytes with new times: a restore, a copy without -p
        os.utime(p, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    hasher.paths.clear()
    d.clear_requests()

    summary = scanner.scan()

    assert sorted(hasher.paths) == sorted(paths)  # the bytes are checked, not trusted
    assert (summary.hashed, summary.identified, summary.errors) == (2, 2, [])
    assert d.requests == []  # no lookup, no preview: the database knew them
    for p in paths:
        old, new = before[p], lib.local_file(p)
        assert old is not None and new is not None
        assert new.mtime_ns == 1_600_000_000_000_000_000
        assert (new.id, new.version_id, new.identified_by, new.info_path, new.preview_path) == (
            old.id, old.version_id, old.identified_by, old.info_path, old.preview_path)
    hasher.paths.clear()
    scanner.scan()
    assert hasher.paths == []  # the new stat was stored


def test_replaced_content_is_identified_by_its_new_sidecar(
    scanner: Scanner, hasher: CountingHasher, lib: Library, root: Path,
    civitai_catalog: SampleCatalog,
) -> None:
    c = civitai_catalog
    path = place(root, c.lora_v1.files[0], "style.safetensors")
    scanner.scan()
    # Another tool (an A1111 extension) replaced the file by v2, and its .civitai.info too.
    path.write_bytes(c.lora_v2.files[0].read_bytes())
    path.with_name("style.civitai.info").write_text(json.dumps(c.double.version_json(c.lora_v2)))
    c.double.clear_requests()
    hasher.paths.clear()
    summary = scanner.scan()
    row = lib.local_file(path)
    assert hasher.paths == [path] and summary.identified == 1
    assert row is not None and row.sha256 == c.lora_v2.files[0].sha256
    assert (row.version_id, row.identified_by) == (c.lora_v2.id, "sidecar")
    assert api_calls(c.double) == []  # the sidecar was read once the bytes had changed


def test_settled_batches_are_stored_several_to_a_transaction(
    lib: Library, client: CivitaiClient, settings: Settings, root: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import civdesk.core.scanner as scanner_module

    monkeypatch.setattr(scanner_module, "SETTLE_BATCH", 2)
    monkeypatch.setattr(scanner_module, "STORE_BATCH", 4)
    for i in range(7):
        (root / f"f{i}.safetensors").write_bytes(os.urandom(1000 + i))
    with SqlLog(lib.db, "INSERT INTO local_files") as inserts:
        summary = Scanner(lib, client, settings, workers=1).scan()
    assert summary.found == 7 and len(lib.local_files()) == 7
    # Batches of 2 settled; stored once 4 waited, then the last 3 at the end.
    assert len(inserts.statements) == 2


def test_cancel_keeps_what_was_hashed(
    lib: Library, client: CivitaiClient, settings: Settings, root: Path
) -> None:
    for i in range(30):
        (root / f"f{i:02}.safetensors").write_bytes(os.urandom(2000 + i))
    cancel = threading.Event()
    hashed = 0

    def progress(p: ScanProgress) -> None:
        nonlocal hashed
        hashed = p.files_hashed
        if p.files_hashed >= 5:
            cancel.set()

    slow = _slowed(sha256_file)
    scanner = Scanner(lib, client, settings, workers=1, hasher=slow)
    with pytest.raises(Cancelled):
        scanner.scan(progress=progress, cancel=cancel)
    kept = lib.local_files()
    assert 5 <= len(kept) < 30
    assert all(lf.sha256 and lf.lookup_state == "pending" for lf in kept)


def _slowed(fn: Callable[..., str]) -> Callable[..., str]:
    import time

    def slow(path: Path, **kw: Any) -> str:
        time.sleep(0.01)
        return fn(path, **kw)

    return slow


def test_manual_link(
    scanner: Scanner, lib: Library, root: Path, civitai_catalog: SampleCatalog,
    client: CivitaiClient,
) -> None:
    path = root / "mystery.safetensors"
    path.write_bytes(os.urandom(3000))
    scanner.scan()
    version = client.get_version(civitai_catalog.lora_v1.id)
    row = scanner.link(path, version)
    assert row.identified_by == "manual" and row.version_id == version.id
    assert row.info_path and Path(row.info_path).is_file()
    assert row.preview_path and Path(row.preview_path).is_file()
    summary = scanner.scan()  # a rescan keeps the manual link
    assert summary.identified == 1
    assert lib.local_file(path).identified_by == "manual"  # type: ignore[union-attr]
    assert isinstance(lib.version(version.id), ModelVersion)


def test_rescan_rewrites_a_deleted_info_but_does_not_chase_a_forbidden_preview(
    scanner: Scanner, lib: Library, root: Path, civitai: CivitaiDouble
) -> None:
    version = civitai.add_version(civitai.add_model(), images=[civitai.image(nsfw_level=16)])
    path = place(root, version.files[0])
    scanner.scan()
    row = lib.local_file(path)
    assert row is not None and row.preview_path is None and row.info_path
    civitai.clear_requests()
    scanner.scan()
    assert civitai.requests == []  # no image the setting allows: nothing to ask for
    Path(row.info_path).unlink()
    scanner.scan()
    assert Path(row.info_path).is_file() and civitai.requests == []


def test_previews_are_fetched_by_threads_with_a_client_each(
    lib: Library, settings: Settings, root: Path, civitai: CivitaiDouble
) -> None:
    model = civitai.add_model("Many Previews", "TextualInversion")
    for i in range(12):
        version = civitai.add_version(model, name=f"v{i}")
        place(root, version.files[0], f"emb{i}.safetensors")
    made: list[CivitaiClient] = []
    lock = threading.Lock()

    def factory() -> CivitaiClient:
        client = CivitaiClient(civitai.base_url, max_retries=0)
        with lock:
            made.append(client)
        return client

    lookups = CivitaiClient(civitai.base_url, max_retries=0)
    summary = Scanner(lib, lookups, settings, client_factory=factory,
                      companion_workers=3).scan()
    assert (summary.identified, summary.errors, summary.companions_written) == (12, [], 24)
    assert all(f.preview_path and Path(f.preview_path).exists() for f in lib.local_files())
    assert 1 <= len(made) <= 3  # one client per companion thread, never per file
    image_fetches = [r for r in civitai.requests if r.host == "storage"]
    assert len(image_fetches) == 12


def test_old_constructor_clones_a_real_client_for_the_companion_threads(
    lib: Library, client: CivitaiClient, settings: Settings
) -> None:
    scanner = Scanner(lib, client, settings)
    assert scanner.client_factory is not None
    clone = scanner.client_factory()
    assert isinstance(clone, CivitaiClient) and clone.session is not client.session
    assert (clone.base_url, clone.api_key, clone.max_retries) == (
        client.base_url, client.api_key, client.max_retries)
    assert Scanner(lib, None, settings).client_factory is None


def test_lookups_of_several_batches_wait_on_civitai_together(
    lib: Library, client: CivitaiClient, settings: Settings, root: Path, civitai: CivitaiDouble
) -> None:
    """Real Civitai takes hundreds of ms per by-hash request: a first scan of thousands of
    small files must not wait for them one after another, nor flood the server."""
    from civdesk.core.scanner import LOOKUP_BATCH, LOOKUP_CONCURRENCY, SETTLE_BATCH

    count = SETTLE_BATCH * (LOOKUP_CONCURRENCY + 2) + 7
    paths = []
    for i in range(count):
        model = civitai.add_model(f"Embedding {i}", "TextualInversion")
        f = civitai.file(f"embedding {i}".encode() * 40, name=f"emb{i:04}.safetensors")
        civitai.add_version(model, files=[f], images=[])
        paths.append(place(root / f"set{i % 3}", f))
    civitai.api_latency(0.2)
    civitai.clear_requests()
    summary = Scanner(lib, client, settings).scan()
    assert (summary.found, summary.identified, summary.errors) == (count, count, [])
    assert len(by_hash_calls(civitai)) == -(-count // LOOKUP_BATCH)
    assert 2 <= civitai.peak_concurrency["api"] <= LOOKUP_CONCURRENCY  # together, no more
    for path in paths[:: count // 10]:
        row = lib.local_file(path)
        assert row is not None and row.lookup_state == "found"
        assert path.with_name(path.stem + ".civitai.info").is_file()


def test_one_lookup_at_a_time_when_asked(
    lib: Library, client: CivitaiClient, settings: Settings, root: Path, civitai: CivitaiDouble
) -> None:
    from civdesk.core.scanner import SETTLE_BATCH

    for i in range(SETTLE_BATCH * 3):
        model = civitai.add_model(f"Embedding {i}", "TextualInversion")
        f = civitai.file(f"one at a time {i}".encode() * 40, name=f"e{i:04}.safetensors")
        civitai.add_version(model, files=[f], images=[])
        place(root, f)
    civitai.api_latency(0.05)
    civitai.clear_requests()
    summary = Scanner(lib, client, settings, lookup_concurrency=1).scan()
    assert summary.identified == SETTLE_BATCH * 3
    assert civitai.peak_concurrency["api"] == 1


def test_previews_are_fetched_several_at_once(
    lib: Library, client: CivitaiClient, settings: Settings, root: Path, civitai: CivitaiDouble
) -> None:
    """Each preview waits on the image host's round trip: a first scan fetches a few at
    once (as a browser does), never one after another, nor all at once."""
    from civdesk.core.scanner import COMPANION_WORKERS

    count = COMPANION_WORKERS * 3
    paths = []
    for i in range(count):
        model = civitai.add_model(f"Style {i}", "LORA")
        f = civitai.file(f"style {i}".encode() * 40, name=f"style{i:03}.safetensors")
        civitai.add_version(model, files=[f])  # with the double's default preview images
        paths.append(place(root, f))
    civitai.storage_latency(0.1)
    civitai.clear_requests()
    summary = Scanner(lib, client, settings).scan()
    assert (summary.identified, summary.companions_written, summary.errors) == (
        count, 2 * count, [])
    assert 2 <= civitai.peak_concurrency["storage"] <= COMPANION_WORKERS
    assert all(lib.local_file(p).preview_path for p in paths)  # type: ignore[union-attr]


def test_a_manual_link_of_a_file_the_scan_identified_as_another_version_is_refused(
    scanner: Scanner, lib: Library, root: Path, civitai: CivitaiDouble,
    civitai_catalog: SampleCatalog, client: CivitaiClient,
) -> None:
    cat = civitai_catalog
    lora = place(root / "Lora", cat.lora_v2.files[0])
    scanner.scan()
    info = lora.with_name(lora.stem + ".civitai.info")
    before = info.read_bytes()
    civitai.clear_requests()
    vae = client.get_version(cat.vae_v1.id)
    with pytest.raises(LinkConflict) as refused:
        scanner.link(lora, vae)
    assert refused.value.known.id == cat.lora_v2.id
    assert by_hash_calls(civitai) == []  # the scan's record answered, not Civitai
    assert info.read_bytes() == before  # its companions were left alone
    row = lib.local_file(lora)
    assert row is not None and (row.version_id, row.identified_by) == (cat.lora_v2.id, "hash")

    forced = scanner.link(lora, vae, force=True)
    assert (forced.version_id, forced.identified_by) == (cat.vae_v1.id, "manual")
    assert json.loads(info.read_text())["id"] == cat.vae_v1.id


@pytest.mark.skipif(os.name == "nt" or sys.platform == "darwin",
                    reason="names are UTF-16 on Windows and always UTF-8 on macOS")
def test_a_name_that_is_not_text_is_skipped_and_told_not_fatal(
    scanner: Scanner, lib: Library, root: Path, civitai_catalog: SampleCatalog
) -> None:
    place_three(root, civitai_catalog)
    odd = os.path.join(os.fsencode(root), b"caf\xe9.safetensors")  # Latin-1, from an old zip
    with open(odd, "wb") as fh:
        fh.write(os.urandom(2000))
    os.mkdir(os.path.join(os.fsencode(root), b"d\xe9j\xe0"))

    summary = scanner.scan()

    assert summary.identified == 3 and len(lib.local_files()) == 3
    told = [e for e in summary.errors if "not valid text" in e]
    assert len(told) == 2 and any("caf\\xe9.safetensors" in e for e in told)
    assert scanner.scan().identified == 3  # and again: nothing stuck half-way


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_under_a_companion_name_does_not_hang_the_scan(
    scanner: Scanner, root: Path, civitai_catalog: SampleCatalog
) -> None:
    model = place(root, civitai_catalog.lora_v1.files[0], "m.safetensors")
    for suffix in (".json", ".cm-info.json", ".metadata.json"):
        os.mkfifo(root / f"m{suffix}")
    done: list[Any] = []
    thread = threading.Thread(target=lambda: done.append(scanner.scan()), daemon=True)
    thread.start()
    thread.join(20)
    assert done, "the scan blocked on a FIFO"
    assert done[0].identified == 1 and model.with_name("m.civitai.info").is_file()


def test_a_file_kept_outside_the_library_folders_leaves_once_deleted(
    scanner: Scanner, lib: Library, root: Path, tmp_path: Path,
    civitai_catalog: SampleCatalog,
) -> None:
    place_three(root, civitai_catalog)
    scanner.scan()
    elsewhere = place(tmp_path / "elsewhere", civitai_catalog.vae_v1.files[0])  # --dest
    (tmp_path / "usb").mkdir()
    (tmp_path / "drive").symlink_to(tmp_path / "usb", target_is_directory=True)
    unplugged = place(tmp_path / "drive" / "x", civitai_catalog.embedding_v1.files[0])
    for path, version in ((elsewhere, civitai_catalog.vae_v1),
                          (unplugged, civitai_catalog.embedding_v1)):
        scanner.link(path, scanner.client.get_version(version.id))
    elsewhere.unlink()
    shutil.rmtree(tmp_path / "usb")  # the drive its folder links to is unplugged

    assert scanner.scan([root]).removed == 0  # a scan of some folders looks at those only
    summary = scanner.scan()

    assert summary.removed == 1 and lib.local_file(elsewhere) is None
    kept = lib.local_file(unplugged)
    assert kept is not None and kept.offline and summary.offline == 1
