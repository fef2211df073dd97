"""The Library's queries, against a real SQLite file (and the Civitai double's real JSON)."""

from __future__ import annotations

import dataclasses
import os
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import insert, select

from civdesk.core.civitai.schema import Model, ModelVersion
from civdesk.core.library import UNKNOWN_TYPE, Database, Library, LocalFile, UpdateInfo
from civdesk.core.library.tables import LocalFileRow
from tests.sql_log import SqlLog

SHA_A = "A" * 64
SHA_B = "B" * 64
SHA_C = "C" * 64


def file_json(file_id: int, sha: str, name: str, primary: bool = True) -> dict[str, Any]:
    return {
        "id": file_id, "name": name, "sizeKB": 2048.5, "type": "Model", "primary": primary,
        "metadata": {"format": "SafeTensor", "fp": "fp16", "size": "pruned"},
        "hashes": {"SHA256": sha.lower(), "AutoV2": sha[:10], "BLAKE3": "DEAD"},
    }


def version_json(version_id: int, name: str, files: list[dict[str, Any]],
                 words: list[str] | None = None, base: str = "SDXL 1.0") -> dict[str, Any]:
    return {
        "id": version_id, "name": name, "baseModel": base, "trainedWords": words or [],
        "publishedAt": "2024-05-01T00:00:00.000Z", "files": files, "images": [],
        "stats": {"downloadCount": 3},
    }


def model_json(model_id: int, name: str, kind: str, versions: list[dict[str, Any]],
               **extra: Any) -> dict[str, Any]:
    return {
        "id": model_id, "name": name, "type": kind, "nsfw": False, "description": "<p>hi</p>",
        "tags": ["style", "paper"], "creator": {"username": "foldworks"},
        "modelVersions": versions, **extra,
    }


@pytest.fixture
def lib(tmp_path: Path):
    db = Database.open(tmp_path / "library.sqlite3")
    yield Library(db)
    db.close()


@pytest.fixture
def paper_lora() -> Model:
    """A LORA with two versions (v2 newest), the shape /models/{id} has."""
    return Model.from_json(model_json(10, "Paperfold Style", "LORA", [
        version_json(22, "v2.0", [file_json(222, SHA_B, "paperfold_v2.safetensors")],
                     ["paperfold", "origami"]),
        version_json(21, "v1.0", [file_json(211, SHA_A, "paperfold_v1.safetensors")],
                     ["paperfold"]),
    ]))


def register(lib: Library, path: str, sha: str | None = None, version_id: int | None = None,
             size: int = 100, inode: int | None = 1, **kw: Any) -> LocalFile:
    return lib.register_file(path, size=size, mtime_ns=5, inode=inode, sha256=sha,
                             version_id=version_id, **kw)


# ------------------------------------------------------------------------- Civitai data


def test_upsert_model_stores_versions_and_files(lib: Library, paper_lora: Model) -> None:
    lib.upsert_model(paper_lora)
    v1 = lib.version(21)
    assert v1 is not None
    assert (v1.model_id, v1.name, v1.base_model) == (10, "v1.0", "SDXL 1.0")
    # Stored in the /model-versions form, with the model summary the list form lacks.
    assert v1.model is not None and (v1.model.name, v1.model.type) == ("Paperfold Style", "LORA")
    assert v1.files[0].sha256 == SHA_A and v1.files[0].hashes["BLAKE3"] == "DEAD"
    assert lib.version_json(21)["stats"] == {"downloadCount": 3}
    assert lib.version(999) is None and lib.version_json(999) is None
    assert lib.version_by_sha256(SHA_B.lower()).id == 22


def test_upsert_model_twice_updates_in_place(lib: Library, paper_lora: Model) -> None:
    lib.upsert_model(paper_lora)
    renamed = Model.from_json(model_json(10, "Paperfold Style XL", "LORA", [
        version_json(23, "v3.0", [file_json(233, SHA_C, "paperfold_v3.safetensors")]),
    ]))
    lib.upsert_model(renamed)
    register(lib, "/lib/p1.safetensors", SHA_A, 21)
    [entry] = lib.entries()
    assert entry.model_name == "Paperfold Style XL"
    assert lib.version(21) is not None  # versions Civitai stopped listing are kept
    assert lib.version(23).name == "v3.0" and not entry.removed


def test_upsert_version_keeps_model_fields_it_lacks(lib: Library, paper_lora: Model) -> None:
    lib.upsert_model(paper_lora)
    newer = ModelVersion.from_json({
        **version_json(24, "v4.0", [file_json(244, SHA_C, "p4.safetensors")]),
        "modelId": 10, "model": {"name": "Paperfold Renamed", "type": "LORA", "nsfw": False},
    })
    lib.upsert_version(newer)
    register(lib, "/lib/p4.safetensors", SHA_C, 24)
    [entry] = lib.entries()
    assert (entry.model_name, entry.version_name) == ("Paperfold Renamed", "v4.0")
    with lib.db.session(write=False) as s:
        from civdesk.core.library.tables import ModelRow

        row = s.get(ModelRow, 10)
        assert row.tags == ["style", "paper"] and row.creator == "foldworks"
        assert row.description == "<p>hi</p>"
        assert row.latest_version_id == 22


def test_upsert_version_creates_an_unknown_model(lib: Library) -> None:
    version = ModelVersion.from_json({
        **version_json(31, "v1", [file_json(311, SHA_A, "x.safetensors")]),
        "modelId": 30, "model": {"name": "Lonely VAE", "type": "VAE"},
    })
    lib.upsert_version(version)
    assert lib.version(31).model.name == "Lonely VAE"
    with pytest.raises(ValueError):
        lib.upsert_version(dataclasses.replace(version, model_id=None))


# --------------------------------------------------------------------------- local files


def test_register_and_reregister_keep_added_at(lib: Library) -> None:
    first = register(lib, "/lib/a.safetensors", SHA_A.lower(), library_root="/lib")
    assert first.sha256 == SHA_A and first.lookup_state == "pending"
    assert first.identified_by is None and not first.identified
    assert first.name == "a.safetensors"
    again = register(lib, "/lib/a.safetensors", SHA_A, 21, file_id=211, identified_by="sidecar")
    assert again.id == first.id and again.added_at == first.added_at
    assert (again.version_id, again.file_id, again.identified_by) == (21, 211, "sidecar")
    assert again.lookup_state == "found" and again.looked_up_at is not None
    assert lib.local_file("/lib/a.safetensors") == again
    assert lib.local_file(Path("/lib/a.safetensors")) == again
    assert lib.local_file("/lib/missing") is None
    assert again.added_at.tzinfo is not None
    with pytest.raises(ValueError):
        register(lib, "/lib/b", identified_by="guess")


def test_update_file_by_id_or_path(lib: Library) -> None:
    f = register(lib, "/lib/a.safetensors")
    updated = lib.update_file(f.id, lookup_state="unknown", preview_path=Path("/lib/a.png"))
    assert updated.lookup_state == "unknown" and updated.preview_path == "/lib/a.png"
    updated = lib.update_file("/lib/a.safetensors", sha256="abc")
    assert updated.sha256 == "ABC"
    assert lib.update_file("/nowhere", sha256="abc") is None
    with pytest.raises(TypeError, match="added_at"):
        lib.update_file(f.id, added_at=datetime.now(timezone.utc))


def test_move_keeps_identity_and_history(lib: Library) -> None:
    f = register(lib, "/lib/old/a.safetensors", SHA_A, 21, file_id=211)
    register(lib, "/lib/new/a.safetensors", SHA_A)  # registered before the move was seen
    moved = lib.move_file("/lib/old/a.safetensors", "/lib/new/a.safetensors",
                          size=100, mtime_ns=6, inode=7)
    assert moved.id == f.id and moved.added_at == f.added_at
    assert (moved.version_id, moved.file_id, moved.identified_by) == (21, 211, "hash")
    assert (moved.path, moved.mtime_ns, moved.inode) == ("/lib/new/a.safetensors", 6, 7)
    assert [x.path for x in lib.local_files()] == ["/lib/new/a.safetensors"]
    assert lib.move_file("/lib/gone", "/lib/x", size=1, mtime_ns=1, inode=1) is None


def test_offline_files_are_marked_kept_listed_and_back_when_seen(lib: Library) -> None:
    from civdesk.core.library.repository import FileMove, FileRecord

    a = lib.register_file("/usb/a.safetensors", size=1, mtime_ns=1, inode=1, sha256=SHA_A,
                          device=42)
    lib.register_file("/usb/b.safetensors", size=2, mtime_ns=2, inode=2, sha256=None,
                      device=42)
    assert a.device == 42 and not a.offline
    assert lib.set_offline(["/usb/a.safetensors", "/usb/b.safetensors", "/nowhere"]) == 2
    first = lib.local_file("/usb/a.safetensors")
    assert first is not None and first.offline and first.offline_since is not None
    assert lib.set_offline(["/usb/a.safetensors"]) == 0  # since the first scan that saw it
    assert lib.local_file("/usb/a.safetensors").offline_since == first.offline_since
    assert {e.path: e.offline for e in lib.entries()} == {
        "/usb/a.safetensors": True, "/usb/b.safetensors": True}
    # Seen again: re-registered (device kept when not told), moved, or set back online.
    lib.save_files([FileRecord("/usb/a.safetensors", 1, 1, 1, SHA_A)])
    again = lib.local_file("/usb/a.safetensors")
    assert again is not None and not again.offline and again.device == 42
    [moved] = lib.move_files([FileMove("/usb/b.safetensors", "/usb/c.safetensors", 2, 2, 2,
                                       device=43)])
    assert moved is not None and not moved.offline and moved.device == 43
    lib.set_offline(["/usb/c.safetensors"])
    assert lib.set_offline(["/usb/c.safetensors"], offline=False) == 1
    assert not lib.local_file("/usb/c.safetensors").offline


def test_move_files_equals_move_file_one_by_one(lib: Library, lib2: Library) -> None:
    from civdesk.core.library.repository import FileMove

    moves = [
        FileMove("/lib/old/a.safetensors", "/lib/new/a.safetensors", 100, 6, 7),
        FileMove("/lib/old/b.safetensors", "/lib2/b.safetensors", 200, 8, 9, "/lib2"),
        FileMove("/lib/gone.safetensors", "/lib/x.safetensors", 1, 1, 1),  # never registered
    ]
    for target in (lib, lib2):
        register(target, "/lib/old/a.safetensors", SHA_A, 21, file_id=211, library_root="/lib")
        register(target, "/lib/old/b.safetensors", SHA_B, library_root="/lib")
        register(target, "/lib/new/a.safetensors", SHA_A)  # registered before the move
        register(target, "/lib/stays.safetensors", SHA_C, library_root="/lib")
    before = {f.path: f for f in lib2.local_files()}
    one_by_one = [lib.move_file(m.old_path, m.new_path, size=m.size, mtime_ns=m.mtime_ns,
                                inode=m.inode, library_root=m.library_root) for m in moves]

    in_bulk = lib2.move_files(moves)

    assert library_state(lib) == library_state(lib2)
    a, b, gone = in_bulk
    assert gone is None and one_by_one[2] is None
    assert a is not None and b is not None
    assert a.id == before["/lib/old/a.safetensors"].id and a.file_id == 211
    assert (a.path, a.size, a.mtime_ns, a.inode, a.library_root) == (
        "/lib/new/a.safetensors", 100, 6, 7, "/lib")  # no new root: the old one stays
    assert (b.path, b.library_root) == ("/lib2/b.safetensors", "/lib2")
    assert a.last_seen >= before["/lib/old/a.safetensors"].last_seen
    assert lib2.move_files([]) == []


def test_move_files_takes_a_few_statements_whatever_the_count(lib: Library) -> None:
    from civdesk.core.library.repository import FileMove, FileRecord

    lib.register_files(FileRecord(f"/lib/old/{i}.st", 10, 1, i, f"{i:064X}")
                       for i in range(1200))
    with SqlLog(lib.db) as counter:
        moved = lib.move_files(FileMove(f"/lib/old/{i}.st", f"/lib/new/{i}.st", 10, 1, i)
                               for i in range(1200))
    # BEGIN, 3 DELETEs (500 paths each), one UPDATE run over every row, 3 SELECTs
    assert len(counter.statements) <= 8, counter.statements
    assert [m.path for m in moved if m is not None] == [f"/lib/new/{i}.st" for i in range(1200)]
    assert not any(f.path.startswith("/lib/old/") for f in lib.local_files())


def test_remove_files_counts_and_handles_many(lib: Library) -> None:
    for i in range(3):
        register(lib, f"/lib/{i}.safetensors")
    paths = [f"/lib/{i}.safetensors" for i in range(1200)]  # more than one chunk
    assert lib.remove_files(paths) == 3
    assert lib.local_files() == []
    assert lib.remove_files([]) == 0


def test_local_files_under_a_root(lib: Library) -> None:
    register(lib, "/lib/a.safetensors", library_root="/lib")
    register(lib, "/lib/sub/b.safetensors")
    register(lib, "/library2/c.safetensors")  # a sibling whose name starts the same
    register(lib, "/lib_x/d.safetensors")  # "_" must not act as a LIKE wildcard
    assert [f.path for f in lib.local_files("/lib")] == ["/lib/a.safetensors",
                                                         "/lib/sub/b.safetensors"]
    assert [f.path for f in lib.local_files(Path("/lib/"))] == ["/lib/a.safetensors",
                                                                "/lib/sub/b.safetensors"]
    assert len(lib.local_files()) == 4


def test_move_detection_lookups(lib: Library) -> None:
    register(lib, "/lib/a", SHA_A, size=10, inode=3)
    register(lib, "/lib/b", SHA_A, size=10, inode=4)
    register(lib, "/lib/c", SHA_B, size=10, inode=None)
    assert lib.file_by_identity(10, 5, 4).path == "/lib/b"
    assert lib.file_by_identity(10, 5, None).path == "/lib/c"
    assert lib.file_by_identity(11, 5, 4) is None
    assert [f.path for f in lib.files_by_sha256(SHA_A.lower())] == ["/lib/a", "/lib/b"]
    assert lib.files_by_sha256(SHA_C) == []


def test_file_by_identity_prefers_the_stalest_hard_link(lib: Library) -> None:
    register(lib, "/lib/link1", size=10, inode=9)
    register(lib, "/lib/link2", size=10, inode=9)
    register(lib, "/lib/link1", size=10, inode=9)  # seen again: still in place
    assert lib.file_by_identity(10, 5, 9).path == "/lib/link2"


# -------------------------------------------------------------------------- library view


@pytest.fixture
def populated(lib: Library, paper_lora: Model) -> Library:
    lib.upsert_model(paper_lora)
    lib.upsert_model(Model.from_json(model_json(40, "Crisp Realism", "Checkpoint", [
        version_json(41, "Final", [file_json(411, SHA_C, "crisp.safetensors")], base="SD 1.5"),
    ])))
    register(lib, "/lib/Lora/paperfold_v1.safetensors", SHA_A, 21, preview_path="/lib/p.png")
    register(lib, "/lib/Stable-diffusion/crisp.safetensors", SHA_C, 41)
    register(lib, "/lib/Stable-diffusion/copy of crisp.safetensors", SHA_C, 41, inode=2)
    register(lib, "/lib/Lora/mystery.safetensors", SHA_B.replace("B", "E"))
    return lib


def test_entries_join_model_and_version(populated: Library) -> None:
    entries = {e.file_name: e for e in populated.entries()}
    paper = entries["paperfold_v1.safetensors"]
    assert (paper.model_id, paper.version_id, paper.model_name, paper.version_name) == (
        10, 21, "Paperfold Style", "v1.0")
    assert (paper.type, paper.base_model, paper.trained_words) == ("LORA", "SDXL 1.0",
                                                                   ("paperfold",))
    assert paper.preview == "/lib/p.png" and paper.identified and paper.size == 100
    mystery = entries["mystery.safetensors"]
    assert (mystery.type, mystery.model_name, mystery.identified) == (UNKNOWN_TYPE, None, False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        paper.model_name = "x"  # type: ignore[misc]


def test_entries_filter_by_type_and_search(populated: Library) -> None:
    names = lambda **kw: sorted(e.file_name for e in populated.entries(**kw))  # noqa: E731
    assert names(model_type="Checkpoint") == ["copy of crisp.safetensors", "crisp.safetensors"]
    assert names(model_type=UNKNOWN_TYPE) == ["mystery.safetensors"]
    assert names(model_type="VAE") == []
    assert names(search="CRISP") == ["copy of crisp.safetensors", "crisp.safetensors"]
    assert names(search="v1.0") == ["paperfold_v1.safetensors"]  # version name
    assert names(search="paperfold") == ["paperfold_v1.safetensors"]
    assert names(search="myst") == ["mystery.safetensors"]  # file name of an unknown file
    assert names(search="copy crisp") == ["copy of crisp.safetensors"]  # every word
    assert names(search="realism", model_type="LORA") == []
    assert len(populated.entries(search="  ")) == 4


def test_search_matches_trigger_words(lib: Library, paper_lora: Model) -> None:
    lib.upsert_model(paper_lora)
    register(lib, "/lib/x.safetensors", SHA_B, 22)
    assert [e.version_id for e in lib.entries(search="Origami")] == [22]


def test_type_counts_and_installed_versions(populated: Library) -> None:
    assert populated.type_counts() == {"LORA": 1, "Checkpoint": 2, UNKNOWN_TYPE: 1}
    assert populated.installed_versions() == {10: {21}, 40: {41}}


def test_duplicates_are_copies_on_disk(lib: Library, tmp_path: Path) -> None:
    paths = {name: tmp_path / f"{name}.safetensors" for name in ("crisp", "copy", "moved")}
    for path in paths.values():
        path.write_bytes(b"same")
    register(lib, str(paths["crisp"]), SHA_C)
    register(lib, str(paths["copy"]), SHA_C, inode=2)
    [group] = lib.duplicates()
    assert [f.path for f in group] == [str(paths["copy"]), str(paths["crisp"])]
    # A hard link of the copy (the same inode, size and time) is not one more duplicate.
    register(lib, str(tmp_path / "crisp link.safetensors"), SHA_C, inode=2)
    [group] = lib.duplicates()
    assert [f.path for f in group] == [str(paths["copy"]), str(paths["crisp"])]
    # A row whose file was deleted where no scan looks is no copy: the other file is the
    # only one, and must not be offered for deletion.
    paths["copy"].unlink()
    assert lib.duplicates() == []


def test_a_version_whose_side_file_alone_is_on_disk_is_not_installed(lib: Library) -> None:
    vae = {**file_json(512, SHA_B, "baked_vae.safetensors", primary=False), "type": "VAE"}
    pruned = {**file_json(513, SHA_A, "crisp-pruned.safetensors", primary=False),
              "type": "Pruned Model"}
    lib.upsert_model(Model.from_json(model_json(50, "Crisp XL", "Checkpoint", [
        version_json(51, "v1", [file_json(511, SHA_C, "crisp.safetensors"), vae, pruned]),
    ])))
    register(lib, "/lib/VAE/baked_vae.safetensors", SHA_B, 51, file_id=512)
    assert lib.installed_versions() == {}  # the checkpoint itself was never fetched
    register(lib, "/lib/Stable-diffusion/crisp-pruned.safetensors", SHA_A, 51, file_id=513)
    assert lib.installed_versions() == {50: {51}}  # another variant of the model counts
    lib.remove_files(["/lib/Stable-diffusion/crisp-pruned.safetensors"])
    register(lib, "/lib/Stable-diffusion/crisp.safetensors", SHA_C, 51)  # which file: unknown
    assert lib.installed_versions() == {50: {51}}


def test_entries_of_ten_thousand_files_take_one_query(lib: Library, paper_lora: Model) -> None:
    lib.upsert_model(paper_lora)
    now = datetime.now(timezone.utc)
    rows = [
        {"path": f"/lib/Lora/file{i:05}.safetensors", "size": i, "mtime_ns": i, "inode": i,
         "sha256": f"{i:064X}", "version_id": (21, 22, None)[i % 3], "lookup_state": "found",
         "first_seen": now, "last_seen": now, "added_at": now}
        for i in range(10_000)
    ]
    with lib.db.session() as s:
        s.execute(insert(LocalFileRow), rows)
    with SqlLog(lib.db) as counter:
        entries = lib.entries()
        counts = lib.type_counts()
        dups = lib.duplicates()
    assert len(entries) == 10_000
    assert sum(e.identified for e in entries) == 6_667
    assert counts == {"LORA": 6_667, UNKNOWN_TYPE: 3_333}
    assert dups == []
    # BEGIN + one SELECT + COMMIT per call; anything per-row would be thousands.
    assert len(counter.statements) <= 9, counter.statements
    with SqlLog(lib.db) as counter:
        assert len(lib.entries(model_type="LORA", search="file0001")) == 7
    assert len(counter.statements) <= 3


# ------------------------------------------------------------------------- update checks


def test_update_check_cycle(lib: Library, paper_lora: Model) -> None:
    old_only = Model.from_json(model_json(10, "Paperfold Style", "LORA", [paper_lora.raw[
        "modelVersions"][1]]))
    lib.upsert_model(old_only)  # at the time, v1 was the latest
    register(lib, "/lib/p1.safetensors", SHA_A, 21)
    register(lib, "/lib/unknown.safetensors")
    assert lib.available_updates() == []

    t0 = datetime(2024, 6, 1, tzinfo=timezone.utc)
    assert lib.models_due_for_update_check(t0) == [10]
    lib.record_update_check(10, 22, t0)
    assert lib.models_due_for_update_check(t0) == []
    assert lib.models_due_for_update_check(t0 + timedelta(days=1)) == [10]
    lib.record_update_check(999, 5, t0)  # a model not in the library: ignored

    [update] = lib.available_updates()
    assert (update.model_id, update.model_name, update.model_type) == (10, "Paperfold Style",
                                                                       "LORA")
    assert (update.installed_version_ids, update.installed_version_names) == ((21,), ("v1.0",))
    assert (update.latest_version_id, update.latest_version_name) == (22, None)  # not fetched

    lib.upsert_model(paper_lora)  # details of v2 arrive
    assert lib.available_updates()[0].latest_version_name == "v2.0"
    register(lib, "/lib/p2.safetensors", SHA_B, 22)  # the update was installed
    assert lib.available_updates() == []
    assert lib.installed_versions() == {10: {21, 22}}


def test_real_api_json_from_the_double(lib: Library, civitai_catalog) -> None:
    """The shapes the (double of the) API really sends go in and come out intact."""
    cat = civitai_catalog
    base = cat.double.base_url
    model = Model.from_json(requests.get(f"{base}/api/v1/models/{cat.lora.id}", timeout=10).json())
    lib.upsert_model(model)
    version = ModelVersion.from_json(
        requests.get(f"{base}/api/v1/model-versions/{cat.checkpoint_v1.id}", timeout=10).json())
    lib.upsert_version(version)
    v1_file = cat.lora_v1.files[0]
    register(lib, "/lib/l.safetensors", v1_file.sha256, cat.lora_v1.id, file_id=v1_file.id)
    register(lib, "/lib/c.safetensors", cat.checkpoint_v1.files[0].sha256, cat.checkpoint_v1.id)
    assert lib.version(cat.checkpoint_v1.id) == version
    assert lib.version_by_sha256(v1_file.sha256).id == cat.lora_v1.id
    [update] = lib.available_updates()
    assert (update.model_id, update.latest_version_id) == (cat.lora.id, cat.lora_v2.id)
    assert lib.type_counts() == {"LORA": 1, "Checkpoint": 1}


# ------------------------------------------------------------------------------ settings


def test_settings_values_round_trip(lib: Library) -> None:
    lib.save_settings({"a": [1, "x"], "b": None, "c": {"k": True}})
    lib.save_settings({"a": 2}, remove=["c"])
    assert lib.settings_values() == {"a": 2, "b": None}


def test_snapshots_are_usable_from_other_threads(populated: Library) -> None:
    results: list[Any] = []
    t = threading.Thread(target=lambda: results.append(populated.entries()))
    t.start()
    t.join()
    assert len(results[0]) == 4 and results[0][0].model_name


# --------------------------------------------------------------------------- bulk writes


def lora_versions(count: int, first_id: int = 1000) -> list[ModelVersion]:
    """``count`` versions in the /model-versions form, two files each, over count/2 models."""
    versions = []
    for i in range(count):
        vid = first_id + i
        versions.append(ModelVersion.from_json({
            **version_json(vid, f"v{i}", [file_json(vid * 10, f"{vid:064X}", f"f{vid}.st"),
                                           file_json(vid * 10 + 1, f"{vid + 1:064X}", "c.st",
                                                     primary=False)],
                           [f"word{i}"]),
            "modelId": 500 + i // 2,
            "model": {"name": f"Model {i // 2}", "type": "LORA", "nsfw": i % 3 == 0},
        }))
    return versions


def _removals(lib: Library, table: Any) -> list[Any]:
    from sqlalchemy import select

    with lib.db.session(write=False) as s:
        return list(s.execute(select(table.id, table.removed_at).order_by(table.id)))


def library_state(lib: Library) -> dict[str, Any]:
    """Everything the bulk and single-item writes must agree on (times excluded)."""
    from civdesk.core.library.tables import ModelRow, VersionFileRow, VersionRow

    def rows(table: Any, skip: set[str]) -> list[dict[str, Any]]:
        cols = [c for c in table.__table__.columns if c.name not in skip]
        with lib.db.session(write=False) as s:
            return [dict(r._mapping) for r in s.execute(
                select(*cols).order_by(cols[0]))]

    from sqlalchemy import select

    return {
        "models": rows(ModelRow, {"updated_at", "removed_at"}),
        "removed": [(m.id, m.removed_at is not None) for m in _removals(lib, ModelRow)]
        + [(v.id, v.removed_at is not None) for v in _removals(lib, VersionRow)],
        "versions": rows(VersionRow, {"fetched_at", "removed_at"}),
        "files": rows(VersionFileRow, set()),
        "local": [dataclasses.replace(f, id=0, first_seen=None, last_seen=None, added_at=None,
                                      looked_up_at=f.looked_up_at is not None)
                  for f in lib.local_files()],
    }


@pytest.fixture
def lib2(tmp_path: Path):
    db = Database.open(tmp_path / "library2.sqlite3")
    yield Library(db)
    db.close()


def test_upsert_versions_equals_one_by_one(lib: Library, lib2: Library,
                                           paper_lora: Model) -> None:
    versions = lora_versions(6)
    orphan = dataclasses.replace(versions[5], id=2000, model=None, model_id=900)
    renamed = ModelVersion.from_json({**dict(versions[0].raw), "name": "v0 again",
                                      "model": {"name": "", "type": "LORA"}})
    for target in (lib, lib2):
        target.upsert_model(paper_lora)
    untyped_new = ModelVersion.from_json({**version_json(2100, "u", []), "modelId": 901,
                                          "model": {"name": "Untyped", "type": ""}})
    untyped_known = ModelVersion.from_json({**version_json(2101, "u", []), "modelId": 10,
                                            "model": {"name": "Paperfold Style", "type": ""}})
    later = [*versions, orphan, renamed, untyped_new, untyped_known, ModelVersion.from_json({
        **version_json(23, "v3.0", [file_json(233, SHA_C, "p3.safetensors")]),
        "modelId": 10, "model": {"name": "Paperfold Renamed", "type": "LORA", "nsfw": True},
    })]
    for version in later:
        lib.upsert_version(version)
    lib2.upsert_versions(later)
    assert library_state(lib) == library_state(lib2)
    state = library_state(lib2)
    names = {m["id"]: m["name"] for m in state["models"]}
    # An empty summary name keeps the known one; a model known only by id gets a bare row.
    assert names[500] == "Model 0" and names[900] == "" and names[10] == "Paperfold Renamed"
    paper = next(m for m in state["models"] if m["id"] == 10)
    assert paper["tags"] == ["style", "paper"] and paper["latest_version_id"] == 22
    # An empty summary type keeps the known one; a new model without one is "Other".
    types = {m["id"]: m["type"] for m in state["models"]}
    assert types[10] == "LORA" and types[901] == "Other" and types[500] == "LORA"
    assert lib2.version(1000).name == "v0 again"
    assert lib2.version(23).model.name == "Paperfold Renamed"
    with pytest.raises(ValueError, match="modelId"):
        lib2.upsert_versions([lora_versions(1, 3000)[0],
                              dataclasses.replace(versions[0], id=3001, model_id=None)])
    assert lib2.version(3000) is None  # nothing of a rejected batch is stored
    lib2.upsert_versions([])


def test_versions_reads_many_at_once(lib: Library) -> None:
    versions = lora_versions(1200)
    lib.upsert_versions(versions)
    wanted = [v.id for v in versions] + [999_999]  # an unknown id is left out
    with SqlLog(lib.db) as counter:
        found = lib.versions(wanted)
    assert len(counter.statements) <= 5  # chunks of 500, not one query per id
    assert set(found) == {v.id for v in versions}
    assert found[1500] == lib.version(1500)
    assert lib.versions([]) == {}


def test_upsert_versions_takes_a_few_statements_whatever_the_count(lib: Library) -> None:
    from civdesk.core.library.repository import _FILES, _MODEL_SUMMARIES, _VERSIONS

    versions = lora_versions(300)
    # BEGIN, COMMIT and multi-row statements of up to 999 parameters: 150 models, 300
    # versions, 600 files in 17 statements, never one per row (nor one executemany, which
    # steps once per row).
    inserts = sum(-(-rows // bulk.rows_per_statement)
                  for rows, bulk in ((150, _MODEL_SUMMARIES), (300, _VERSIONS), (600, _FILES)))
    assert inserts <= 20
    with SqlLog(lib.db) as counter:
        lib.upsert_versions(versions)
    assert len(counter.statements) <= inserts + 2, counter.statements
    assert len(lib.version(1299).files) == 2
    with SqlLog(lib.db) as counter:
        lib.upsert_versions(versions)  # all known now: the same few statements
    assert len(counter.statements) <= inserts + 2


def test_register_files_equals_register_file(lib: Library, lib2: Library) -> None:
    from civdesk.core.library.repository import FileRecord

    records = [
        FileRecord("/lib/a.safetensors", size=1, mtime_ns=2, inode=3, sha256=SHA_A.lower(),
                   library_root="/lib"),
        FileRecord(Path("/lib/b.safetensors"), size=4, mtime_ns=5, inode=None, sha256=SHA_B,
                   version_id=21, file_id=211, identified_by="sidecar",
                   preview_path=Path("/lib/b.preview.png"), info_path="/lib/b.civitai.info"),
        FileRecord("/lib/c.safetensors", size=7, mtime_ns=8, inode=9, sha256=SHA_C,
                   lookup_state="unknown", looked_up_at=datetime(2024, 1, 2, tzinfo=timezone.utc)),
    ]
    singles = [lib.register_file(r.path, **{f.name: getattr(r, f.name)
                                            for f in dataclasses.fields(r) if f.name != "path"})
               for r in records]
    bulk = lib2.register_files(records)
    assert [dataclasses.replace(f, id=0, first_seen=None, last_seen=None, added_at=None,
                                looked_up_at=None) for f in singles] == [
        dataclasses.replace(f, id=0, first_seen=None, last_seen=None, added_at=None,
                            looked_up_at=None) for f in bulk]
    assert library_state(lib) == library_state(lib2)
    a, b, c = bulk
    assert (a.sha256, a.lookup_state, a.looked_up_at, a.identified_by) == (SHA_A, "pending",
                                                                            None, None)
    assert b.looked_up_at is not None and b.lookup_state == "found"
    assert c.looked_up_at == datetime(2024, 1, 2, tzinfo=timezone.utc)
    assert c.lookup_state == "unknown"

    # Registering again refreshes in place: id, added_at and a past lookup time survive.
    again = lib2.register_files([dataclasses.replace(records[2], size=70, looked_up_at=None),
                                 dataclasses.replace(records[0], version_id=22)])
    assert [f.path for f in again] == ["/lib/c.safetensors", "/lib/a.safetensors"]
    assert (again[0].id, again[0].added_at, again[0].size) == (c.id, c.added_at, 70)
    assert again[0].looked_up_at == c.looked_up_at
    assert (again[1].id, again[1].identified_by, again[1].lookup_state) == (a.id, "hash",
                                                                            "found")
    assert lib2.local_file("/lib/a.safetensors") == again[1]
    with pytest.raises(ValueError):
        lib2.register_files([dataclasses.replace(records[0], path="/lib/new"),
                             dataclasses.replace(records[1], lookup_state="maybe")])
    assert lib2.local_file("/lib/new") is None
    assert lib2.register_files([]) == []


def test_register_files_takes_a_few_statements_whatever_the_count(lib: Library) -> None:
    from civdesk.core.library.repository import _REGISTER, FileRecord

    records = [FileRecord(f"/lib/{i:05}.safetensors", size=i, mtime_ns=i, inode=i,
                          sha256=f"{i:064X}", version_id=(21, None)[i % 2],
                          lookup_state=(None, "unknown")[i % 2]) for i in range(1200)]
    with SqlLog(lib.db) as counter:
        stored = lib.register_files(records)
    # BEGIN, COMMIT, multi-row inserts of up to 999 parameters, a read-back per 500 paths.
    inserts = -(-1200 // _REGISTER.rows_per_statement)
    assert inserts <= 1200 // 40  # ~20 columns a row
    assert len(counter.statements) <= 2 + inserts + 3, len(counter.statements)
    assert [f.path for f in stored] == [os.fspath(r.path) for r in records]
    assert sum(f.identified for f in lib.local_files()) == 600


def test_update_files_in_groups(lib: Library) -> None:
    files = [register(lib, f"/lib/{i}.safetensors", inode=i) for i in range(300)]
    updates: list[tuple[Any, dict[str, Any]]] = [
        (f.id, {"preview_path": Path(f"/lib/{i}.png"), "info_path": None})
        for i, f in enumerate(files[:200])
    ]
    updates += [(f.path, {"lookup_state": "unknown", "sha256": "abc"}) for f in files[200:]]
    updates += [(99_999, {"lookup_state": "error"}), ("/nowhere", {"sha256": "abc"}),
                (files[0].id, {})]
    with SqlLog(lib.db) as counter:
        assert lib.update_files(updates) == 300
    assert len(counter.statements) <= 2 + 4, counter.statements  # BEGIN, 4 groups, COMMIT
    by_path = {f.path: f for f in lib.local_files()}
    assert by_path["/lib/7.safetensors"].preview_path == "/lib/7.png"
    assert by_path["/lib/250.safetensors"].sha256 == "ABC"
    assert by_path["/lib/250.safetensors"].lookup_state == "unknown"
    single = register(lib, "/lib/x.safetensors")
    lib.update_file(single.id, preview_path=Path("/lib/x.png"))
    lib.update_files([("/lib/x.safetensors", {"preview_path": "/lib/y.png"})])
    assert lib.local_file("/lib/x.safetensors").preview_path == "/lib/y.png"
    with pytest.raises(TypeError, match="added_at"):
        lib.update_files([(files[1].id, {"lookup_state": "error"}),
                          (files[2].id, {"added_at": datetime.now(timezone.utc)})])
    assert lib.local_file(files[1].path).lookup_state == "pending"


def test_save_files_stores_what_register_files_does(lib: Library, lib2: Library) -> None:
    from civdesk.core.library.repository import FileRecord

    records = [FileRecord(f"/lib/{i}.safetensors", size=i, mtime_ns=i, inode=i,
                          sha256=f"{i:064x}", version_id=(21, None)[i % 2]) for i in range(7)]
    lib.register_files(records)
    assert lib2.save_files([*records, records[0]]) == 7  # a path given twice counts once
    assert library_state(lib) == library_state(lib2)
    with pytest.raises(ValueError):
        lib2.save_files([dataclasses.replace(records[0], path="/x", identified_by="guess")])
    assert lib2.local_file("/x") is None


def test_upsert_versions_stores_the_callers_encoding_as_is(lib: Library, lib2: Library) -> None:
    from civdesk.core.library.repository import version_form_json
    from civdesk.core.sidecars import info_json

    versions = lora_versions(3)
    encoded = {v.id: info_json(version_form_json(v)) for v in versions[:2]}
    lib.upsert_versions(versions)
    lib2.upsert_versions(versions, encoded=encoded)
    assert library_state(lib) == library_state(lib2)
    with lib2.db.session(write=False) as s:
        stored = s.connection().exec_driver_sql(
            "SELECT raw FROM model_versions WHERE id = ?", (versions[0].id,)).scalar()
    assert stored == encoded[versions[0].id]  # not re-encoded


def checked_models(count: int, first_id: int = 5000) -> list[Model]:
    """``count`` models in the /models form, two versions of one file each."""
    return [Model.from_json(model_json(mid, f"Model {mid}", "LORA", [
        version_json(mid * 10 + v, f"v{v}", [file_json(mid * 100 + v, f"{mid * 10 + v:064X}",
                                                       f"m{mid}v{v}.safetensors")])
        for v in (2, 1)]))  # newest first, as Civitai lists them
        for mid in range(first_id, first_id + count)]


def test_store_checked_models_equals_upsert_model_and_record_update_check(
    lib: Library, lib2: Library, paper_lora: Model
) -> None:
    t0 = datetime(2024, 6, 1, tzinfo=timezone.utc)
    gone = Model.from_json(model_json(30, "Gone Soon", "Checkpoint", [
        version_json(31, "v1", [file_json(311, SHA_C, "gone.safetensors")])]))
    archived = model_json(40, "Archived", "VAE", [
        version_json(41, "v1", [file_json(411, "E" * 64, "vae.safetensors")])])
    for target in (lib, lib2):
        target.upsert_model(paper_lora)
        target.upsert_model(gone)
        target.upsert_model(Model.from_json(archived))
        target.record_update_check(30, 31, t0 - timedelta(days=3))
    newer = {**paper_lora.raw, "name": "Paperfold Renamed", "tags": ["paper"],
             "modelVersions": [version_json(23, "v3.0", [file_json(233, "D" * 64, "p3.st")]),
                               *paper_lora.raw["modelVersions"]]}
    empty = {**archived, "modelVersions": [], "mode": "Archived"}  # no versions listed now
    answer = [Model.from_json(newer), Model.from_json(empty), *checked_models(3)]
    asked = [10, 30, 40, 5000, 5001, 5002, 999]  # 30 is no longer listed; 999 was never stored

    for model in answer:
        lib.upsert_model(model)
        latest = model.latest_version
        lib.record_update_check(model.id, latest.id if latest else None, t0)
    for model_id in (30, 999):
        lib.record_update_check(model_id, None, t0)
    lib2.store_checked_models(answer, asked, t0)

    assert library_state(lib) == library_state(lib2)
    models = {m["id"]: m for m in library_state(lib2)["models"]}
    assert models[10]["name"] == "Paperfold Renamed" and models[10]["latest_version_id"] == 23
    assert models[30]["latest_version_id"] == 31  # unlisted: the known latest stays
    assert models[40]["mode"] == "Archived" and models[40]["latest_version_id"] == 41
    assert (40, True) in library_state(lib2)["removed"]
    assert 999 not in models
    assert all(m["updates_checked_at"] == t0 for m in models.values())
    assert lib2.models_due_for_update_check(t0) == []
    assert lib2.version(5001 * 10 + 2).files[0].sha256 == f"{5001 * 10 + 2:064X}"


def test_store_checked_models_takes_a_few_statements_whatever_the_count(lib: Library) -> None:
    from civdesk.core.library.repository import _FILES, _MODELS, _VERSIONS

    models = checked_models(100)  # one full /models?ids= page
    # 100 models, 200 versions, 200 files, and 1,000 unlisted ids to stamp
    inserts = sum(-(-rows // bulk.rows_per_statement)
                  for rows, bulk in ((100, _MODELS), (200, _VERSIONS), (200, _FILES)))
    assert inserts <= 15
    asked = [m.id for m in models] + list(range(1, 1001))
    with SqlLog(lib.db) as counter:
        lib.store_checked_models(models, asked, datetime(2024, 6, 1, tzinfo=timezone.utc))
    # BEGIN, COMMIT, the inserts and two UPDATEs for the unlisted ids (998 per statement)
    assert len(counter.statements) <= inserts + 4, counter.statements
    assert lib.models_due_for_update_check(datetime(2024, 6, 1, tzinfo=timezone.utc)) == []


@pytest.mark.parametrize(("ends", "until"), [
    ("2030-01-02T03:04:05.678Z", "2030-01-02"),
    ("2030-01-02T03:04:05+00:00", "2030-01-02"),
    ("2020-01-02T03:04:05.678Z", None),  # over: anyone may download it now
    (None, None),
    ("next week", None),  # malformed: no claim
])
def test_early_access_of_an_update(ends: str | None, until: str | None) -> None:
    update = UpdateInfo(1, "M", "LORA", (10,), ("v1",), 11, "v2", ends)
    now = datetime(2026, 12, 5, tzinfo=timezone.utc)
    assert update.early_access_until(now) == until


# --------------------------------------------------------------- removed from Civitai


def _model_row(lib: Library, model_id: int) -> dict[str, Any]:
    with lib.db.session(write=False) as s:
        return dict(s.connection().exec_driver_sql(
            "SELECT name, description, tags, raw, mode, latest_version_id, removed_at "
            "FROM models WHERE id = ?", (model_id,)).mappings().one())


@pytest.mark.parametrize("mode", ["Archived", "TakenDown"])
def test_a_removed_answer_keeps_what_the_library_stored(
    lib: Library, paper_lora: Model, mode: str
) -> None:
    lib.upsert_model(paper_lora)
    register(lib, "/lib/p1.safetensors", SHA_A, 21)
    kept_version, kept_model = lib.version_json(21), _model_row(lib, 10)
    assert kept_version is not None and kept_version["files"]
    stripped = [{**v, "files": [], "images": []} for v in paper_lora.raw["modelVersions"]]
    lib.upsert_model(Model.from_json({**paper_lora.raw, "mode": mode, "description": None,
                                      "tags": [], "modelVersions": stripped}))
    assert lib.version_json(21) == kept_version
    now_row = _model_row(lib, 10)
    assert {k: now_row[k] for k in ("name", "description", "tags", "raw")} == {
        k: kept_model[k] for k in ("name", "description", "tags", "raw")}
    [entry] = lib.entries()
    assert entry.removed and entry.removed_how == ("archived" if mode == "Archived"
                                                   else "taken down")
    assert entry.trained_words == ("paperfold",)
    first_seen = entry.removed_at

    # The version form (a lookup by hash, a version id): kept as well.
    answer = {**kept_version, "files": [], "images": [],
              "model": {**kept_version["model"], "mode": mode}}
    lib.upsert_version(ModelVersion.from_json(answer))
    assert lib.version_json(21) == kept_version
    assert lib.richer_version(ModelVersion.from_json(answer)).files  # for companions
    # A summary that does not say so (an old .civitai.info) does not clear the mark, nor
    # does a second removed answer move its date.
    lib.upsert_version(ModelVersion.from_json(kept_version))
    lib.store_checked_models([Model.from_json({**paper_lora.raw, "mode": mode,
                                               "modelVersions": stripped})], [10])
    [entry] = lib.entries()
    assert entry.removed_at == first_seen
    assert lib.version_json(21) == kept_version and _model_row(lib, 10)["raw"] == kept_model["raw"]

    lib.upsert_model(paper_lora)  # Civitai put it back
    [entry] = lib.entries()
    assert not entry.removed and _model_row(lib, 10)["mode"] is None


def test_a_removed_model_first_seen_removed_is_stored_as_answered(lib: Library) -> None:
    gone = Model.from_json(model_json(40, "Gone", "VAE", [
        version_json(41, "v1", [file_json(411, "E" * 64, "vae.safetensors")])], mode="Archived"))
    lib.store_checked_models([gone], [40])
    assert _model_row(lib, 40)["name"] == "Gone" and _model_row(lib, 40)["removed_at"]
    assert lib.version(41).files[0].sha256 == "E" * 64  # type: ignore[union-attr]


def test_marks_from_a_410_and_a_404_and_models_that_list_the_version_again(
    lib: Library, paper_lora: Model
) -> None:
    lib.upsert_model(paper_lora)
    register(lib, "/lib/p1.safetensors", SHA_A, 21)
    register(lib, "/lib/p2.safetensors", SHA_B, 22)
    assert not lib.mark_version_removed(999) and not lib.mark_model_removed(999)
    assert lib.mark_version_removed(21)
    removed = {e.version_id: e.removed_how for e in lib.entries() if e.removed}
    assert removed == {21: "unpublished"} and lib.removed_count() == 1
    lib.store_checked_models([paper_lora], [10])  # the model lists v1 again
    assert lib.removed_count() == 0

    assert lib.mark_model_removed(22, "Archived")
    assert {e.removed_how for e in lib.entries()} == {"archived"}
    assert lib.removed_count() == 2 and lib.removed_models_on_disk() == 1
    assert lib.available_updates() == []
    assert lib.models_due_for_update_check(datetime(2100, 1, 1, tzinfo=timezone.utc)) == []


def test_rows_read_through_the_driver_equal_sqlalchemys(populated: Library) -> None:
    """local_files and entries convert times and JSON themselves (for speed): every field
    as SQLAlchemy's own types read it, removals, offline, user_meta and a time written
    with its own zone included."""
    from civdesk.core.library.repository import (
        _LOCAL_FILE_COLUMNS,
        _entries_query,
        _entry,
    )
    from civdesk.core.library.tables import LocalFileRow

    lib = populated
    lib.mark_model_removed(41, "Archived")
    lib.set_offline(["/lib/Lora/mystery.safetensors"])
    lib.update_file("/lib/Stable-diffusion/crisp.safetensors",
                    user_meta={"notes": "sharp", "tags": ["a"]}, verified=True)
    with lib.db.session(write=False) as s:
        orm_files = [LocalFile(*r) for r in s.execute(
            select(*_LOCAL_FILE_COLUMNS).order_by(LocalFileRow.path))]
        orm_entries = [_entry(r) for r in s.execute(_entries_query()).all()]
    assert lib.local_files() == orm_files
    key = lambda e: e.path  # noqa: E731
    assert sorted(lib.entries(), key=key) == sorted(orm_entries, key=key)
    assert any(e.removed for e in orm_entries) and any(e.offline for e in orm_entries)
    assert any(e.user for e in orm_entries) and any(e.trained_words for e in orm_entries)

    with lib.db.session() as s:  # a time written with its own zone (never by civdesk)
        s.connection().exec_driver_sql(
            "UPDATE local_files SET looked_up_at = '2026-01-02 03:04:05.000006+02:00'"
            " WHERE path = '/lib/Lora/paperfold_v1.safetensors'")
    assert lib.local_file("/lib/Lora/paperfold_v1.safetensors") is not None
    assert {f.looked_up_at for f in lib.local_files()} >= {
        datetime(2026, 1, 2, 1, 4, 5, 6, tzinfo=timezone.utc)}
