"""A library another tool built, adopted as it is: identity from any sidecar that names the
file's hash (offline too), and what users wrote in those tools kept.

The sidecars are written here in each tool's own public format (field names and casing as
the tools write them), never with civdesk's writer:

- Stability Matrix ``<stem>.cm-info.json``: ``ConnectedModelInfo`` serialised by
  System.Text.Json (PascalCase; ``ModelType`` an enum written by name; ``Hashes`` with
  ``SHA256``/``CRC32``/``BLAKE3``; ``UserTitle``, ``ThumbnailImageUrl``).
- ComfyUI-Lora-Manager ``<stem>.metadata.json``: snake_case keys, ``sha256`` lower-case,
  the version JSON under ``civitai``, ``notes``, ``tags``, ``favorite``, ``usage_tips``.
- A1111 ``<stem>.json``: keys with spaces (``activation text``, ``preferred weight``…).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from civdesk.core.civitai.client import CivitaiClient
from civdesk.core.library import Database, Library
from civdesk.core.scanner import Scanner
from civdesk.core.settings import Settings
from tests.double import CivitaiDouble, SampleCatalog
from tests.double.catalog import FakeVersion


@pytest.fixture
def lib(tmp_path: Path) -> Library:
    return Library(Database.open(tmp_path / "library.sqlite3"))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "Data" / "Models"
    folder.mkdir(parents=True)
    return folder


@pytest.fixture
def settings(root: Path) -> Settings:
    return Settings(library_folders=[str(root)], allow_nsfw=False, hash_workers=2)


def unreachable_client() -> CivitaiClient:
    """A client whose Civitai is not there (nothing listens on port 9 of loopback)."""
    return CivitaiClient("http://127.0.0.1:9", max_retries=0, backoff=0)


def model_file(folder: Path, name: str, content: bytes) -> tuple[Path, str]:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(content)
    return path, hashlib.sha256(content).hexdigest().upper()


def cm_info(path: Path, **fields: Any) -> Path:
    """A Stability Matrix ConnectedModelInfo, as its System.Text.Json writes it."""
    data = {
        "ModelId": None, "ModelName": "", "ModelDescription": "", "Nsfw": False,
        "Tags": [], "ModelType": "LORA", "VersionId": None, "VersionName": "",
        "VersionDescription": None, "BaseModel": None, "FileMetadata": None,
        "ImportedAt": "2024-05-01T10:00:00+02:00",
        "Hashes": {"SHA256": None, "CRC32": None, "BLAKE3": None},
        "TrainedWords": None, "Stats": None, "UserTitle": None, "ThumbnailImageUrl": None,
        "InferenceDefaults": None, "Source": "Civitai",
    }
    data.update(fields)
    side = path.with_name(path.name.rsplit(".", 1)[0] + ".cm-info.json")
    side.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return side


def sm_fields(version: FakeVersion, sha256: str, model_name: str, model_type: str
              ) -> dict[str, Any]:
    return {
        "ModelId": version.model_id, "VersionId": version.id, "ModelName": model_name,
        "VersionName": version.name, "ModelType": model_type,
        "BaseModel": version.base_model, "TrainedWords": list(version.trained_words),
        "Hashes": {"SHA256": sha256, "CRC32": "1A2B3C4D", "BLAKE3": None},
    }


def sm_lora(root: Path, c: SampleCatalog) -> tuple[Path, str]:
    """The catalog's LoRA (v1) in Stability Matrix's Lora folder with its .cm-info.json."""
    lora = c.lora_v1.files[0]
    path, sha = model_file(root / "Lora", lora.name, lora.read_bytes())
    cm_info(path, **sm_fields(c.lora_v1, sha, "Sample LoRA", "LORA"))
    return path, sha


def test_an_offline_scan_identifies_every_file_with_an_identifying_sidecar(
    lib: Library, settings: Settings, root: Path, civitai_catalog: SampleCatalog
) -> None:
    c, d = civitai_catalog, civitai_catalog.double
    lora_path, _ = sm_lora(root, c)
    emb = c.embedding_v1.files[0]
    emb_path, emb_sha = model_file(root / "TextualInversion", emb.name, emb.read_bytes())
    emb_path.with_name(emb_path.stem + ".metadata.json").write_text(json.dumps({
        "file_name": emb_path.stem, "model_name": "Sample embedding",
        "file_path": emb_path.as_posix(), "size": emb_path.stat().st_size,
        "modified": 1714550400.0, "sha256": emb_sha.lower(), "base_model": "SD 1.5",
        "preview_url": "", "preview_nsfw_level": 0, "notes": "", "from_civitai": True,
        "civitai": d.version_json(c.embedding_v1), "tags": [], "modelDescription": "",
        "civitai_deleted": False, "favorite": False, "exclude": False, "db_checked": False,
        "last_checked_at": 0, "model_type": "embedding",
    }))
    # A model Civitai has since removed: only its sidecar knows it.
    gone_path, gone_sha = model_file(root / "Lora", "removed.safetensors", b"removed lora")
    cm_info(gone_path, ModelId=777, VersionId=7770, ModelName="Removed LoRA",
            VersionName="v2", ModelType="LORA", BaseModel="SDXL 1.0",
            TrainedWords=["gone style"], Hashes={"SHA256": gone_sha.lower()})
    # A sidecar whose hash is another file's identifies nothing.
    liar_path, _ = model_file(root / "Lora", "liar.safetensors", b"some other bytes")
    cm_info(liar_path, **sm_fields(c.lora_v2, c.lora_v2.files[0].sha256, "x", "LORA"))

    summary = Scanner(lib, unreachable_client(), settings).scan()

    assert summary.identified == 3
    for path in (lora_path, emb_path, gone_path):
        row = lib.local_file(path)
        assert row is not None and row.identified_by == "sidecar", path
    assert lib.local_file(liar_path).version_id is None  # type: ignore[union-attr]
    entries = {e.file_name: e for e in lib.entries()}
    lora_entry = entries[lora_path.name]
    assert (lora_entry.model_name, lora_entry.version_id, lora_entry.type) == (
        "Sample LoRA", c.lora_v1.id, "LORA")
    assert lora_entry.base_model == c.lora_v1.base_model
    assert list(lora_entry.trained_words) == list(c.lora_v1.trained_words)
    assert not lora_entry.verified  # only Civitai's published hash verifies
    gone = entries["removed.safetensors"]
    assert (gone.model_id, gone.version_id, gone.model_name, gone.version_name) == (
        777, 7770, "Removed LoRA", "v2")
    assert (gone.type, gone.base_model, gone.trained_words) == (
        "LORA", "SDXL 1.0", ("gone style",))
    assert entries[emb_path.name].verified  # its sidecar carried Civitai's version JSON
    # A sidecar-only version gets no .civitai.info (the full JSON of the embedding does).
    assert [p.name for p in root.rglob("*.civitai.info")] == [emb_path.stem + ".civitai.info"]


def test_civitai_fills_in_a_sidecar_identity_and_never_replaces_it_by_less(
    lib: Library, settings: Settings, root: Path, civitai_catalog: SampleCatalog
) -> None:
    c = civitai_catalog
    path, _ = sm_lora(root, c)
    gone_path, gone_sha = model_file(root / "Lora", "removed.safetensors", b"removed lora")
    cm_info(gone_path, ModelId=777, VersionId=7770, ModelName="Removed LoRA",
            VersionName="v2", Hashes={"SHA256": gone_sha})
    Scanner(lib, unreachable_client(), settings).scan()
    assert lib.local_file(path).lookup_state == "sidecar"  # type: ignore[union-attr]

    online = Scanner(lib, CivitaiClient(c.double.base_url, max_retries=0, backoff=0),
                     settings)
    summary = online.scan()
    assert summary.identified == 2 and summary.unknown == 0
    row = lib.local_file(path)
    assert row is not None and (row.lookup_state, row.verified) == ("found", True)
    full = lib.version(c.lora_v1.id)
    assert full is not None and full.files and full.images and not full.from_sidecar_only
    assert path.with_name(path.stem + ".civitai.info").is_file()
    # Civitai no longer knows the removed one: its sidecar identity stays.
    gone = lib.local_file(gone_path)
    assert gone is not None and gone.version_id == 7770 and gone.lookup_state == "unknown"
    assert not gone_path.with_name("removed.civitai.info").exists()

    # A sidecar-only version never replaces what the library holds.
    from civdesk.core.sidecars import read_sidecars
    partial = read_sidecars(path).infos[0].sidecar_only_version()
    assert partial is not None and partial.from_sidecar_only
    lib.upsert_versions([partial])
    kept = lib.version(c.lora_v1.id)
    assert kept is not None and kept.files == full.files
    assert online.scan().identified == 2  # and rescans ask nothing more


def test_rate_limited_civitai_still_identifies_by_the_sidecar(
    lib: Library, settings: Settings, root: Path, civitai_catalog: SampleCatalog
) -> None:
    c, d = civitai_catalog, civitai_catalog.double
    path, _ = sm_lora(root, c)
    d.fail(status=429, n=100, path_prefix="/api/")
    Scanner(lib, CivitaiClient(d.base_url, max_retries=0, backoff=0), settings).scan()
    row = lib.local_file(path)
    assert row is not None and row.version_id == c.lora_v1.id
    assert row.lookup_state == "sidecar"


A1111_JSON = {  # what the Extra Networks edit dialog saves
    "description": "Soft watercolour look", "sd version": "SD1",
    "activation text": "wtrcolor, soft light", "preferred weight": 0.7,
    "negative text": "", "notes": "Best below 0.8 with hires fix",
}


def test_what_users_wrote_in_other_tools_is_kept_and_the_files_left_alone(
    lib: Library, settings: Settings, root: Path
) -> None:
    a1111, _ = model_file(root / "Lora", "watercolor.safetensors", b"watercolor lora")
    side = a1111.with_name("watercolor.json")
    side.write_text(json.dumps(A1111_JSON, indent=4), encoding="utf-8")
    lm, lm_sha = model_file(root / "loras", "ink.safetensors", b"ink lora")
    lm_side = lm.with_name("ink.metadata.json")
    lm_side.write_text(json.dumps({
        "file_name": "ink", "model_name": "Ink", "file_path": lm.as_posix(), "size": 8,
        "modified": 1714550400.0, "sha256": lm_sha.lower(), "base_model": "SDXL 1.0",
        "preview_url": "", "notes": "My favourite ink", "from_civitai": False,
        "civitai": {}, "tags": ["ink", "style"], "favorite": True, "exclude": False,
        "db_checked": False, "usage_tips": "{\"strength\": 0.6}",
    }))
    sm, sm_sha = model_file(root / "StableDiffusion", "base.safetensors", b"a checkpoint")
    sm_side = cm_info(sm, ModelId=12, VersionId=120, ModelName="Base", VersionName="v1",
                      ModelType="Checkpoint", Hashes={"SHA256": sm_sha},
                      UserTitle="My everyday base")
    before = {p: p.read_bytes() for p in (side, lm_side, sm_side)}

    Scanner(lib, None, settings).scan()

    users = {e.file_name: e.user for e in lib.entries()}
    assert users["watercolor.safetensors"] == {
        "notes": "Best below 0.8 with hires fix", "activation_text": "wtrcolor, soft light",
        "preferred_weight": 0.7, "description": "Soft watercolour look", "sd_version": "SD1"}
    assert users["ink.safetensors"] == {"notes": "My favourite ink", "tags": ["ink", "style"],
                                        "favorite": True, "preferred_weight": 0.6}
    assert users["base.safetensors"] == {"title": "My everyday base"}
    assert {p: p.read_bytes() for p in before} == before  # never written over
    assert [e.file_name for e in lib.entries(search="hires")] == ["watercolor.safetensors"]


def test_an_upgraded_library_reads_the_notes_once(
    lib: Library, settings: Settings, root: Path
) -> None:
    path, _ = model_file(root / "Lora", "watercolor.safetensors", b"watercolor lora")
    Scanner(lib, None, settings).scan()  # registered before the notes were there
    lib.update_file(path, user_meta=None)  # as a library from before schema 8 has it
    path.with_name("watercolor.json").write_text(json.dumps(A1111_JSON))
    Scanner(lib, None, settings).scan()
    row = lib.local_file(path)
    assert row is not None and row.user_meta is not None
    assert row.user_meta["activation_text"] == "wtrcolor, soft light"
    # Notes edited in A1111 since: read again when the user asks to look again.
    path.with_name("watercolor.json").write_text(json.dumps({**A1111_JSON, "notes": "new"}))
    Scanner(lib, None, settings).scan()
    assert lib.local_file(path).user_meta["notes"] != "new"  # type: ignore[index,union-attr]
    Scanner(lib, None, settings).scan(recheck_unknown=True)
    assert lib.local_file(path).user_meta["notes"] == "new"  # type: ignore[index,union-attr]


def test_user_text_is_bounded(lib: Library, settings: Settings, root: Path) -> None:
    path, _ = model_file(root, "big.safetensors", b"big")
    path.with_name("big.json").write_text(json.dumps({
        "notes": "x" * 1_000_000, "preferred weight": 1e308, "activation text": 5}))
    Scanner(lib, None, settings).scan()
    [entry] = lib.entries()
    assert len(entry.user["notes"]) == 20_000
    assert "preferred_weight" not in entry.user and "activation_text" not in entry.user


def test_double_is_not_needed_offline(civitai: CivitaiDouble) -> None:
    """The unreachable client really reaches nothing (guards the offline tests)."""
    from civdesk.core.civitai.errors import CivitaiError

    with pytest.raises(CivitaiError):
        unreachable_client().versions_by_sha256(["0" * 64])


# ------------------------------------------------------------ a library organised by hand


def hand_organised(root: Path) -> Path:
    """LoRAs sorted by hand under ``My LoRAs/sdxl`` (and one elsewhere), identified by
    their Stability Matrix sidecars alone."""
    folder = root / "My LoRAs" / "sdxl"
    for i, where in enumerate([folder, folder, folder, root / "My LoRAs" / "sd15"]):
        path, sha = model_file(where, f"mine{i}.safetensors", f"lora {i}".encode())
        cm_info(path, ModelId=800 + i, VersionId=8000 + i, ModelName=f"Mine {i}",
                VersionName="v1", ModelType="LORA", Hashes={"SHA256": sha})
    return folder


def queue_for(d: CivitaiDouble, lib: Library, settings: Settings) -> Any:
    from civdesk.core.downloads.queue import DownloadQueue, RegisterInLibrary

    client = CivitaiClient(d.base_url, sleep=lambda s: None)
    return DownloadQueue(lib.db, client, settings=settings,
                         post_download=RegisterInLibrary(lib, client, lambda: False))


def test_downloads_go_where_the_library_keeps_their_type(
    lib: Library, settings: Settings, root: Path, civitai_catalog: SampleCatalog
) -> None:
    c = civitai_catalog
    sdxl = hand_organised(root)
    Scanner(lib, None, settings).scan()
    queue = queue_for(c.double, lib, settings)
    queue.add(c.lora_v2.id)
    snap = queue.run_next()
    assert snap is not None and snap.state == "completed", snap and snap.error
    assert Path(snap.dest_path).parent == sdxl.resolve()
    queue.add(c.checkpoint_v1.id)  # none in the library yet: the layout's folder
    snap = queue.run_next()
    assert snap is not None and snap.state == "completed", snap and snap.error
    assert Path(snap.dest_path).parent == (root / "Stable-diffusion").resolve()


def test_a_type_folder_the_user_named_wins_over_the_library(
    lib: Library, settings: Settings, root: Path, civitai_catalog: SampleCatalog
) -> None:
    c = civitai_catalog
    hand_organised(root)
    Scanner(lib, None, settings).scan()
    settings.type_folders["LORA"] = "Chosen"
    queue = queue_for(c.double, lib, settings)
    queue.add(c.lora_v2.id)
    snap = queue.run_next()
    assert snap is not None and snap.state == "completed", snap and snap.error
    assert Path(snap.dest_path).parent == (root / "Chosen").resolve()


def test_the_folder_that_holds_most_of_a_type(tmp_path: Path) -> None:
    from civdesk.core.placement import most_common_folder

    r = str(tmp_path)
    for sub in ("LORA/style", "LORA/people", "loras/sdxl"):
        (tmp_path / sub).mkdir(parents=True)

    def at(*folders: str) -> list[tuple[str, str]]:
        return [(os.path.join(r, f, "x.safetensors"), r) for f in folders]

    assert most_common_folder(at("LORA/style", "LORA/people", "LORA")) == tmp_path / "LORA"
    assert most_common_folder(at("loras/sdxl", "loras/sdxl", "LORA")) == tmp_path / "loras/sdxl"
    assert most_common_folder(at("LORA/style")) is None  # one file tells nothing
    assert most_common_folder(at("LORA", "loras/sdxl")) is None  # no folder holds most
    assert most_common_folder(at("gone", "gone")) is None  # not there any more
    assert most_common_folder(at(".", ".")) == tmp_path  # kept in the library folder itself


# ------------------------------------------------------------------ previews left behind


@pytest.mark.parametrize("name", ["{stem}.webp", "{stem}.preview.jpeg", "{stem}.mp4",
                                  "{stem}.preview.webm"])
def test_a_preview_another_tool_left_is_used_before_anything_is_fetched(
    lib: Library, settings: Settings, root: Path, civitai_catalog: SampleCatalog, name: str
) -> None:
    c, d = civitai_catalog, civitai_catalog.double
    lora = c.lora_v1.files[0]
    path, _ = model_file(root / "Lora", lora.name, lora.read_bytes())
    preview = path.with_name(name.format(stem=path.stem))
    preview.write_bytes(b"left by another tool")
    Scanner(lib, CivitaiClient(d.base_url, max_retries=0, backoff=0), settings).scan()
    row = lib.local_file(path)
    assert row is not None and row.version_id == c.lora_v1.id
    assert row.preview_path == str(preview)
    assert not [r for r in d.requests if r.host == "storage"]  # no image fetched
    assert preview.read_bytes() == b"left by another tool"


# ------------------------------------------------------- companions for the other tools

#: The properties of Stability Matrix's ConnectedModelInfo (StabilityMatrix.Core/Models/
#: ConnectedModelInfo.cs), as System.Text.Json names them by default.
SM_PROPERTIES = {"ModelId", "ModelName", "ModelDescription", "Nsfw", "Tags", "ModelType",
                 "VersionId", "VersionName", "VersionDescription", "BaseModel",
                 "FileMetadata", "ImportedAt", "Hashes", "TrainedWords", "Stats",
                 "UserTitle", "ThumbnailImageUrl", "InferenceDefaults", "Source"}
#: The fields of ComfyUI-Lora-Manager's BaseModelMetadata and LoraMetadata (py/utils/
#: models.py), written by dataclasses.asdict.
LM_FIELDS = {"file_name", "model_name", "file_path", "size", "modified", "sha256",
             "base_model", "preview_url", "preview_nsfw_level", "notes", "from_civitai",
             "civitai", "tags", "modelDescription", "civitai_deleted", "favorite", "exclude",
             "db_checked", "skip_metadata_refresh", "metadata_source", "last_checked_at",
             "hash_status", "autov3", "usage_tips", "sub_type"}


def test_companions_for_the_other_tools_use_their_field_names(
    lib: Library, settings: Settings, root: Path, civitai_catalog: SampleCatalog
) -> None:
    c = civitai_catalog
    settings.companion_formats = ["civitai-info", "cm-info", "metadata-json"]
    lora = c.lora_v1.files[0]
    path, sha = model_file(root / "Lora", lora.name, lora.read_bytes())
    Scanner(lib, CivitaiClient(c.double.base_url, max_retries=0, backoff=0), settings).scan()

    sm = json.loads(path.with_name(path.stem + ".cm-info.json").read_text("utf-8"))
    assert set(sm) <= SM_PROPERTIES
    assert (sm["ModelId"], sm["VersionId"], sm["VersionName"]) == (
        c.lora_v1.model_id, c.lora_v1.id, c.lora_v1.name)
    assert sm["ModelType"] == "LORA" and sm["Hashes"]["SHA256"] == sha
    assert sm["TrainedWords"] == list(c.lora_v1.trained_words)
    assert set(sm["FileMetadata"]) <= {"fp", "size", "format"}  # JsonPropertyName'd
    assert "+" in sm["ImportedAt"] or sm["ImportedAt"].endswith("Z")  # a DateTimeOffset
    lm = json.loads(path.with_name(path.stem + ".metadata.json").read_text("utf-8"))
    assert set(lm) <= LM_FIELDS
    assert lm["sha256"] == sha.lower() and lm["file_path"] == path.as_posix()
    assert lm["civitai"]["id"] == c.lora_v1.id and lm["usage_tips"] == "{}"
    assert lm["file_name"] == path.stem and lm["size"] == path.stat().st_size
    # Read back as those tools' files, each identifies the model by its hash.
    from civdesk.core.sidecars import read_sidecars
    infos = {i.source: i for i in read_sidecars(path).infos}
    for source in ("stability-matrix", "lora-manager"):
        assert infos[source].sha256 == sha and infos[source].version_id == c.lora_v1.id


def test_companions_for_the_other_tools_are_off_by_default_and_never_overwrite(
    lib: Library, settings: Settings, root: Path, civitai_catalog: SampleCatalog
) -> None:
    c = civitai_catalog
    lora, emb = c.lora_v1.files[0], c.embedding_v1.files[0]
    path, _ = model_file(root / "Lora", lora.name, lora.read_bytes())
    other, _ = model_file(root / "TI", emb.name, emb.read_bytes())
    theirs = other.with_name(other.stem + ".metadata.json")
    theirs.write_text('{"file_name": "x", "notes": "mine", "sha256": ""}')
    client = CivitaiClient(c.double.base_url, max_retries=0, backoff=0)
    Scanner(lib, client, settings).scan()
    assert not list(root.rglob("*.cm-info.json"))
    assert [p.name for p in root.rglob("*.metadata.json")] == [theirs.name]

    settings.companion_formats = ["civitai-info", "cm-info", "metadata-json"]
    fresh = Library(Database.open(root.parent / "fresh.sqlite3"))  # identified anew
    Scanner(fresh, client, settings).scan()
    assert path.with_name(path.stem + ".metadata.json").is_file()
    assert other.with_name(other.stem + ".cm-info.json").is_file()
    assert theirs.read_text() == '{"file_name": "x", "notes": "mine", "sha256": ""}'


def test_a_download_writes_the_companions_asked_for(
    lib: Library, settings: Settings, root: Path, civitai_catalog: SampleCatalog
) -> None:
    from civdesk.core.downloads.queue import DownloadQueue, RegisterInLibrary

    c = civitai_catalog
    client = CivitaiClient(c.double.base_url, sleep=lambda s: None)
    queue = DownloadQueue(lib.db, client, settings=settings, post_download=RegisterInLibrary(
        lib, client, lambda: False, lambda: ["civitai-info", "cm-info"]))
    queue.add(c.checkpoint_v1.id)
    snap = queue.run_next()
    assert snap is not None and snap.state == "completed", snap and snap.error
    path = Path(snap.dest_path)
    sm = json.loads(path.with_name(path.stem + ".cm-info.json").read_text("utf-8"))
    assert sm["ModelType"] == "Checkpoint" and sm["VersionId"] == c.checkpoint_v1.id
    assert not path.with_name(path.stem + ".metadata.json").exists()
