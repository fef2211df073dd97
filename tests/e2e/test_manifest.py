"""``civdesk export`` / ``civdesk restore`` end to end: a library exported on one machine
(data folder) comes back on another against the Civitai double."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_API_KEY
from tests.double import SampleCatalog
from tests.e2e.test_cli import Run, civdesk, put


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest().upper()


def files_by_hash(root: Path) -> dict[str, str]:
    """Relative path -> SHA256 of every model file below ``root`` (companions left out)."""
    return {p.relative_to(root).as_posix(): sha256_of(p) for p in sorted(root.rglob("*"))
            if p.is_file() and p.suffix in (".safetensors", ".pt", ".ckpt")}


def model_downloads(c: SampleCatalog) -> list[str]:
    """The model files the double served (previews left out)."""
    return [r.path for r in c.double.requests
            if r.host == "storage" and r.path.startswith("/files/")]


@pytest.fixture
def machine(civitai_catalog: SampleCatalog, tmp_path: Path) -> Any:
    """``machine(name)`` -> a function running civdesk with that machine's data folder."""
    def make(name: str) -> Any:
        env = {"CIVITAI_API_BASE": civitai_catalog.double.base_url,
               "CIVDESK_DATA_DIR": str(tmp_path / f"{name}-data"),
               "HOME": str(tmp_path / f"{name}-home"), "CIVITAI_API_KEY": TEST_API_KEY}
        (tmp_path / f"{name}-home").mkdir(exist_ok=True)

        def run(*args: str, env_extra: dict[str, str] | None = None, **kw: Any) -> Run:
            return civdesk(*args, env={**env, **(env_extra or {})}, **kw)
        return run
    return make


def test_export_then_restore_reproduces_the_library_on_an_empty_machine(
        civitai_catalog: SampleCatalog, machine: Any, tmp_path: Path) -> None:
    c = civitai_catalog
    old = machine("old")
    models = tmp_path / "models"
    put(models / "Lora", c.lora_v1)
    put(models / "Stable-diffusion" / "sdxl", c.checkpoint_v1)
    put(models / "embeddings", c.embedding_v1)
    put(models / "VAE", c.vae_v1)
    (models / "mystery.safetensors").write_bytes(b"\1" * 4096)  # Civitai never knew it
    converted = models / "Lora" / "paperfold-converted.safetensors"
    converted.write_bytes(os.urandom(8192))  # a converted copy: linked by hand
    assert old("scan", str(models), "--json").code == 0
    link = old("link", str(converted), str(c.lora_v2.id), "--json")
    assert link.code == 0, link.stderr
    manifest_path = tmp_path / "library.civdesk.json"
    exported = old("export", str(manifest_path), "--json")
    assert exported.code == 0, exported.stderr
    manifest = json.loads(manifest_path.read_text())
    assert (manifest["format"], manifest["version"]) == ("civdesk-manifest", 1)
    by_path = {f["path"]: f for f in manifest["files"]}
    assert by_path[f"Lora/{converted.name}"]["identified_by"] == "manual"
    assert by_path[f"Lora/{converted.name}"]["version_id"] == c.lora_v2.id
    lora = by_path[f"Lora/{c.lora_v1.primary_file.name}"]
    assert (lora["identified_by"], lora["version_id"], lora["model_id"], lora["type"]) == (
        "hash", c.lora_v1.id, c.lora.id, "LORA")
    assert by_path["mystery.safetensors"]["version_id"] is None
    before = files_by_hash(models)

    # The disk died. Meanwhile Civitai took one model down; the new disk already holds the
    # checkpoint (copied back by hand) and the converted file.
    c.double.remove(c.vae)
    new_models = tmp_path / "new-disk"
    put(new_models / "Stable-diffusion" / "sdxl", c.checkpoint_v1)
    (new_models / "Lora").mkdir(parents=True)
    (new_models / "Lora" / converted.name).write_bytes(converted.read_bytes())
    downloads_before = len(model_downloads(c))
    new = machine("new")
    run = new("restore", str(manifest_path), "--dest", str(new_models), "--json")
    assert run.code == 1, run.stderr  # not everything could come back
    assert run.error_lines == ["civdesk: error: 2 files could not be restored (listed above)"]
    outcome = run.json
    cannot = {Path(i["path"]).name: i["reason"] for i in outcome["cannot_restore"]}
    assert set(cannot) == {"mystery.safetensors", c.vae_v1.primary_file.name}
    assert "never knew" in cannot["mystery.safetensors"]
    assert "no longer on Civitai" in cannot[c.vae_v1.primary_file.name]
    assert {Path(i["path"]).name for i in outcome["queued"]} == {
        c.lora_v1.primary_file.name, c.embedding_v1.primary_file.name}
    assert [Path(i["path"]).name for i in outcome["linked"]] == [converted.name]
    assert outcome["failed"] == []

    after = files_by_hash(new_models)
    lost = {f"VAE/{c.vae_v1.primary_file.name}", "mystery.safetensors"}
    assert after == {p: h for p, h in before.items() if p not in lost}
    storage = model_downloads(c)[downloads_before:]
    assert not any(c.checkpoint_v1.primary_file.name in p for p in storage)  # it was there
    assert len(storage) == 2
    listed = {Path(e["path"]).relative_to(new_models).as_posix(): e
              for e in new("list", "--json").json}
    assert listed[f"Lora/{c.lora_v1.primary_file.name}"]["verified"] is True
    assert listed[f"embeddings/{c.embedding_v1.primary_file.name}"]["verified"] is True
    assert listed[f"Lora/{converted.name}"]["version_id"] == c.lora_v2.id
    # The manual link came back as a link (export again says so).
    again = new("export", "-")
    assert again.code == 0, again.stderr
    back = {f["path"]: f for f in json.loads(again.stdout)["files"]}
    assert back[f"Lora/{converted.name}"]["identified_by"] == "manual"

    # A second restore finds everything there: nothing downloaded, nothing queued.
    second = new("restore", str(manifest_path), "--dest", str(new_models), "--json")
    assert second.json["queued"] == [] and second.json["linked"] == []
    assert len(model_downloads(c)) == downloads_before + 2


def exported_lora(c: SampleCatalog, machine: Any, tmp_path: Path) -> Path:
    """The manifest of an "old" machine whose library is one LoRA."""
    old = machine("old")
    models = tmp_path / "models"
    put(models / "Lora", c.lora_v1)
    assert old("scan", str(models)).code == 0
    manifest_path = tmp_path / "m.json"
    assert old("export", str(manifest_path)).code == 0
    return manifest_path


def test_a_dry_run_changes_nothing(civitai_catalog: SampleCatalog, machine: Any,
                                   tmp_path: Path) -> None:
    manifest_path = exported_lora(civitai_catalog, machine, tmp_path)
    new = machine("new")
    dest = tmp_path / "dest"
    run = new("restore", str(manifest_path), "--dest", str(dest), "--dry-run")
    assert run.code == 0, run.stderr
    assert "1 file would be downloaded" in run.stdout
    assert not dest.exists()
    assert new("queue", "--json").json == []
    assert new("config", "--json").json["library_folders"] == []


def test_a_restore_without_a_key_asks_for_one_before_anything_is_fetched(
        civitai_catalog: SampleCatalog, machine: Any, tmp_path: Path) -> None:
    c = civitai_catalog
    manifest_path = exported_lora(c, machine, tmp_path)
    new = machine("new")
    c.double.clear_requests()
    run = new("restore", str(manifest_path), "--dest", str(tmp_path / "dest"),
              env_extra={"CIVITAI_API_KEY": ""})
    assert run.code == 1 and "requires an API key for every download" in run.stderr
    assert "--without-key" in run.stderr
    assert c.double.requests == [] and not (tmp_path / "dest").exists()


def hostile(tmp_path: Path, **changes: Any) -> Path:
    document: dict[str, Any] = {
        "format": "civdesk-manifest", "version": 1, "roots": [{"name": "models"}],
        "files": [{"root": 0, "path": "Lora/a.safetensors", "size": 10, "sha256": "A" * 64,
                   "version_id": 50_000, "file_id": 90_000, "identified_by": "hash"}]}
    for key, value in changes.items():
        if key.startswith("file_"):
            document["files"][0][key[5:]] = value
        else:
            document[key] = value
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps(document))
    return path


@pytest.mark.parametrize(("changes", "says"), [
    ({"file_path": "../../etc/passwd"}, "leaves its folder"),
    ({"file_path": "Lora/../../x.safetensors"}, "leaves its folder"),
    ({"file_path": "/etc/x.safetensors"}, "not a relative path"),
    ({"file_path": "C:/Windows/x.safetensors"}, "not a relative path"),
    ({"file_path": "Lora\\..\\x.safetensors"}, "not a relative path"),
    ({"file_size": "10"}, "files[0].size is not a whole number"),
    ({"file_version_id": 1 << 63}, "files[0].version_id is out of range"),
    ({"file_version_id": True}, "files[0].version_id is not a whole number"),
    ({"file_sha256": "xyz"}, "not a SHA256"),
    ({"file_root": 3}, "files[0].root is out of range"),
    ({"files": {"a": 1}}, "files is not a list"),
    ({"version": 2}, "newer than this civdesk reads (1): update civdesk"),
    ({"format": "something"}, '"format" is not "civdesk-manifest"'),
    ({"settings": {"type_folders": {"LORA": "/etc"}}}, "not a relative path"),
])
def test_a_hostile_manifest_is_refused_in_one_line(
        civitai_catalog: SampleCatalog, machine: Any, tmp_path: Path,
        changes: dict[str, Any], says: str) -> None:
    path = hostile(tmp_path, **changes)
    run = machine("new")("restore", str(path), "--dest", str(tmp_path / "dest"))
    assert run.code == 1
    assert len(run.error_lines) == 1, run.stderr
    assert "is not a usable civdesk manifest" in run.stderr and says in run.stderr
    assert not (tmp_path / "dest").exists()


def test_unknown_fields_are_ignored(civitai_catalog: SampleCatalog, machine: Any,
                                   tmp_path: Path) -> None:
    path = hostile(tmp_path, extra={"nested": [1, 2]}, file_comment="from the future")
    run = machine("new")("restore", str(path), "--dest", str(tmp_path / "d"), "--dry-run",
                         "--json")
    assert run.code == 1  # the double knows no version 50000 file with that hash
    assert len(run.json["cannot_restore"]) == 1


def test_a_huge_or_deeply_nested_manifest_is_refused(machine: Any, tmp_path: Path,
                                                     civitai_catalog: SampleCatalog) -> None:
    huge = tmp_path / "huge.json"
    with huge.open("wb") as out:
        out.truncate(64 * 1024 * 1024 + 1)
    run = machine("new")("restore", str(huge), "--dest", str(tmp_path / "d"))
    assert run.code == 1 and len(run.error_lines) == 1
    assert "larger than 64 MB" in run.stderr
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    run = machine("new")("restore", str(deep), "--dest", str(tmp_path / "d"))
    assert run.code == 1 and len(run.error_lines) == 1, run.stderr
    assert "not a civdesk manifest" in run.stderr


def test_export_is_atomic_and_writes_stdout(civitai_catalog: SampleCatalog, machine: Any,
                                            tmp_path: Path) -> None:
    c = civitai_catalog
    old = machine("old")
    put(tmp_path / "models" / "Lora", c.lora_v1)
    assert old("scan", str(tmp_path / "models")).code == 0
    target = tmp_path / "out.json"
    target.write_text("previous")
    assert old("export", str(target)).code == 0
    assert json.loads(target.read_text())["files"][0]["sha256"] == c.lora_v1.primary_file.sha256
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.json")] == []
    run = old("export", "-")
    assert json.loads(run.stdout) == json.loads(target.read_text()) | {
        "exported_at": json.loads(run.stdout)["exported_at"]}


def test_type_folders_and_files_outside_the_library_come_back_in_their_type_folder(
        civitai_catalog: SampleCatalog, machine: Any, tmp_path: Path) -> None:
    c = civitai_catalog
    old = machine("old")
    assert old("config", "set-layout", "comfyui").code == 0
    elsewhere = tmp_path / "elsewhere"
    got = old("download", str(c.lora_v1.id), "--dest", str(elsewhere), "--json")
    assert got.code == 0, got.stderr
    manifest_path = tmp_path / "m.json"
    assert old("export", str(manifest_path)).code == 0
    manifest = json.loads(manifest_path.read_text())
    assert manifest["settings"]["layout"] == "comfyui"
    assert manifest["settings"]["type_folders"]["LORA"] == "loras"
    assert [(f["root"], f["path"]) for f in manifest["files"]] == [
        (None, c.lora_v1.primary_file.name)]

    new = machine("new")
    dest = tmp_path / "dest"
    run = new("restore", str(manifest_path), "--dest", str(dest), "--json")
    assert run.code == 0, run.stderr
    assert run.json["type_folders_applied"] is True
    restored = dest / "loras" / c.lora_v1.primary_file.name
    assert sha256_of(restored) == c.lora_v1.primary_file.sha256
    config = new("config", "--json").json
    assert config["layout"] == "comfyui"
    assert config["library_folders"] == [str(dest)]


def test_a_mature_model_comes_back_from_the_mature_site(tmp_path: Path) -> None:
    from tests.double import CivitaiDouble
    from tests.e2e.test_two_sites import TwoSites, run

    with CivitaiDouble(api_key=TEST_API_KEY, two_sites=True) as d:
        mature = d.add_model("Night Glow", "LORA")
        mature_v = d.add_version(mature, "v1", nsfw_level=4 | 8)
        sites = TwoSites(d, mature, mature_v, mature, mature_v)
        old, new = tmp_path / "old" / "data", tmp_path / "new" / "data"
        key = {"CIVITAI_API_KEY": TEST_API_KEY}
        assert run(sites, old, "config", "set-nsfw", "on").code == 0
        put(tmp_path / "models" / "Lora", mature_v)
        assert run(sites, old, "scan", str(tmp_path / "models")).code == 0
        manifest = tmp_path / "m.json"
        assert run(sites, old, "export", str(manifest)).code == 0
        dest = tmp_path / "dest"
        hidden = run(sites, new, "restore", str(manifest), "--dest", str(dest), "--json", **key)
        assert hidden.code == 1
        [reason] = [i["reason"] for i in hidden.json["cannot_restore"]]
        assert "allow mature content" in reason
        assert run(sites, new, "config", "set-nsfw", "on").code == 0
        allowed = run(sites, new, "restore", str(manifest), "--dest", str(dest), "--json", **key)
        assert allowed.code == 0, allowed.stderr
        restored = dest / "Lora" / mature_v.primary_file.name
        assert sha256_of(restored) == mature_v.primary_file.sha256


def test_a_model_archived_on_civitai_is_reported_by_name(
        civitai_catalog: SampleCatalog, machine: Any, tmp_path: Path) -> None:
    c = civitai_catalog
    old = machine("old")
    put(tmp_path / "models" / "Lora", c.lora_v1)
    assert old("scan", str(tmp_path / "models")).code == 0
    manifest = tmp_path / "m.json"
    assert old("export", str(manifest)).code == 0
    c.double.archive(c.lora)
    run = machine("new")("restore", str(manifest), "--dest", str(tmp_path / "d"), "--dry-run")
    assert run.code == 1
    assert "Cannot come back (1):" in run.stdout
    assert (f"  Paperfold Style v1.0 ({c.lora_v1.primary_file.name}): removed from Civitai "
            "(Archived)") in run.stdout.splitlines()


def test_restore_reads_the_manifest_from_stdin(civitai_catalog: SampleCatalog, machine: Any,
                                               tmp_path: Path) -> None:
    c = civitai_catalog
    old = machine("old")
    put(tmp_path / "models" / "Lora", c.lora_v1)
    assert old("scan", str(tmp_path / "models")).code == 0
    exported = old("export", "-")
    run = machine("new")("restore", "-", "--dest", str(tmp_path / "d"), "--dry-run", "--json",
                         stdin=exported.stdout)
    assert run.code == 0, run.stderr
    assert [Path(i["path"]).relative_to(tmp_path / "d").as_posix() for i in run.json["queued"]
            ] == [f"Lora/{c.lora_v1.primary_file.name}"]
