"""The ``civdesk`` command line end to end: a real subprocess, a real data folder, real files,
and the Civitai double on loopback instead of civitai.com."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from civdesk import __version__
from tests.conftest import TEST_API_KEY, signals_as_in_a_terminal
from tests.double import CivitaiDouble, SampleCatalog
from tests.double.catalog import FakeVersion

SRC = Path(__file__).resolve().parents[2] / "src"
ENTRY_FIELDS = {"path", "sha256", "model_id", "version_id", "model_name", "version_name", "type",
                "base_model", "size", "preview", "info", "offline", "verified", "removed",
                "removed_how", "removed_at", "user"}


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


def civdesk(*args: str, env: dict[str, str] | None = None, stdin: str | None = None,
            timeout: float = 60) -> Run:
    """Run ``python -m civdesk ARGS`` and capture everything (stdin/stdout are not a TTY)."""
    # The developer's own key must never leak into a test run.
    full_env = {k: v for k, v in os.environ.items() if k != "CIVITAI_API_KEY"}
    full_env.update(env or {})
    full_env["PYTHONPATH"] = os.pathsep.join([str(SRC), full_env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-m", "civdesk", *args], input=stdin or "", capture_output=True,
        text=True, env=full_env, timeout=timeout)
    return Run(done.returncode, done.stdout, done.stderr)


Cli = Callable[..., Run]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A private home folder: with no library folder set, downloads go to ~/civdesk-models."""
    folder = tmp_path / "home"
    folder.mkdir()
    return folder


@pytest.fixture
def cli_env(civitai: CivitaiDouble, tmp_data_dir: Path, home: Path) -> dict[str, str]:
    # With the key: Civitai asks one for every download (NO_KEY runs without it).
    return {"CIVITAI_API_BASE": civitai.base_url, "HOME": str(home),
            "CIVITAI_API_KEY": TEST_API_KEY}


#: ``env=NO_KEY``: the run has no API key (an empty variable is no key).
NO_KEY = {"CIVITAI_API_KEY": ""}


@pytest.fixture
def cli(cli_env: dict[str, str]) -> Cli:
    """``civdesk`` against the double, with a private data folder (from tmp_data_dir)."""
    def run(*args: str, **kw: Any) -> Run:
        return civdesk(*args, env={**cli_env, **kw.pop("env", {})}, **kw)
    return run


def put(folder: Path, version: FakeVersion, name: str | None = None) -> Path:
    """Write a version's primary file into ``folder``, as if downloaded long ago."""
    f = version.primary_file
    assert f is not None and f.name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (name or f.name)
    path.write_bytes(f.read_bytes())
    return path


@pytest.fixture
def models_dir(civitai_catalog: SampleCatalog, tmp_path: Path) -> Path:
    """A model folder: the outdated LORA, the checkpoint, and a file Civitai doesn't know."""
    root = tmp_path / "models"
    put(root / "Lora", civitai_catalog.lora_v1)
    put(root / "Stable-diffusion", civitai_catalog.checkpoint_v1)
    (root / "mystery.safetensors").write_bytes(b"\0" * 4096)
    return root.resolve()


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def tree(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns
            for p in sorted(folder.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------ basics


def test_version_prints_the_package_version() -> None:
    run = civdesk("--version")
    assert run.code == 0
    assert run.stdout.strip() == f"civdesk {__version__}"


def test_the_command_line_starts_without_the_heavy_libraries() -> None:
    """Parsing and --help must not pay for SQLAlchemy, requests or Qt (~0.2 s here): each
    command imports what it uses. A settings import once made every start 5x slower."""
    code = ("import sys, civdesk.__main__ as m; "
            "print(sorted(n for n in ('sqlalchemy', 'requests', 'PySide6') if n in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(SRC)}, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_an_unknown_command_is_a_usage_error(tmp_data_dir: Path) -> None:
    run = civdesk("frobnicate")
    assert run.code == 2
    assert "invalid choice: 'frobnicate'" in run.stderr
    assert run.stdout == ""


def test_an_unusable_data_folder_is_one_clear_line(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "data"
    not_a_folder.write_text("I am a file")
    run = civdesk("--data-dir", str(not_a_folder), "list")
    assert run.code == 1
    assert len(run.error_lines) == 1
    assert run.error_lines[0].startswith(
        f"civdesk: error: Cannot use the civdesk data folder {not_a_folder}")


# -------------------------------------------------------------------------------- scan


def test_scan_identifies_known_files_and_writes_companions(
    cli: Cli, civitai_catalog: SampleCatalog, models_dir: Path
) -> None:
    c = civitai_catalog
    run = cli("scan", str(models_dir), "--json")

    assert run.code == 0, run.stderr
    assert run.stderr == ""
    result = run.json
    assert (result["found"], result["identified"], result["unknown"], result["removed"]) == (
        3, 2, 1, 0)
    by_name = {Path(m["path"]).name: m for m in result["models"]}
    lora_file = c.lora_v1.primary_file
    assert lora_file is not None and lora_file.name
    lora = by_name[lora_file.name]
    assert lora == {
        "path": str(models_dir / "Lora" / lora_file.name),
        "sha256": lora_file.sha256,
        "model_id": c.lora.id,
        "version_id": c.lora_v1.id,
        "name": "Paperfold Style",
        "type": "LORA",
        "offline": False,
    }
    mystery = by_name["mystery.safetensors"]
    assert (mystery["model_id"], mystery["version_id"]) == (None, None)
    assert len(mystery["sha256"]) == 64
    # Companion files beside the identified ones, none beside the unknown one.
    stem = Path(lora_file.name).stem
    info = json.loads((models_dir / "Lora" / f"{stem}.civitai.info").read_text())
    assert info["id"] == c.lora_v1.id
    assert list((models_dir / "Lora").glob(f"{stem}.preview.*"))
    assert not list(models_dir.glob("mystery.*.*"))


def test_a_second_scan_changes_nothing(
    cli: Cli, civitai: CivitaiDouble, civitai_catalog: SampleCatalog, models_dir: Path
) -> None:
    first = cli("scan", str(models_dir), "--json")
    assert first.code == 0, first.stderr
    before = tree(models_dir)
    listed = cli("list", "--json").json
    civitai.clear_requests()

    # No folder given: the remembered one is scanned.
    second = cli("scan", "--json")

    assert second.code == 0, second.stderr
    assert second.json["models"] == first.json["models"]
    assert second.json["removed"] == 0
    assert tree(models_dir) == before  # no file rewritten, none added
    assert cli("list", "--json").json == listed
    assert not [r for r in civitai.requests if "by-hash" in r.path]  # nothing asked again


def test_an_offline_scan_registers_files_and_a_later_scan_identifies_them(
    cli: Cli, models_dir: Path
) -> None:
    offline = cli("--api-base", closed_port_url(), "--retries", "0", "scan", str(models_dir),
                  "--json")
    assert offline.code == 0
    assert offline.json["found"] == 3 and offline.json["identified"] == 0
    assert all(m["version_id"] is None and m["sha256"] for m in offline.json["models"])
    [warning] = offline.error_lines
    assert warning.startswith("civdesk: warning: Civitai could not be asked about 3 file")
    assert "Cannot reach Civitai" in warning

    online = cli("scan", "--json")
    assert online.code == 0 and online.stderr == ""
    assert online.json["identified"] == 2


def test_scan_without_any_folder_says_how_to_start(cli: Cli) -> None:
    run = cli("scan")
    assert run.code == 2
    assert run.error_lines == [
        "civdesk: error: No library folders yet: name one, e.g. `civdesk scan ~/models`"]


def test_scan_of_a_missing_folder_is_refused(cli: Cli, tmp_path: Path) -> None:
    run = cli("scan", str(tmp_path / "nowhere"))
    assert run.code == 2
    assert run.error_lines == [f"civdesk: error: No such folder: {tmp_path / 'nowhere'}"]


def test_scan_of_a_file_says_which_folder_to_scan(cli: Cli, models_dir: Path,
                                                  tmp_path: Path) -> None:
    stray = tmp_path / "My Downloads" / "new lora.safetensors"
    stray.parent.mkdir()
    stray.write_bytes(b"not hashed")
    run = cli("scan", str(stray))
    assert run.code == 2
    assert run.error_lines == [
        f"civdesk: error: {stray} is a file, and scan takes folders: `civdesk scan "
        f"'{stray.parent}'` adds its folder to the library"]
    assert cli("scan", str(models_dir)).code == 0
    inside = next(models_dir.rglob("*.safetensors"))
    run = cli("scan", str(inside))
    assert run.code == 2
    assert run.error_lines == [
        f"civdesk: error: {inside} is a file, and scan takes folders; it is in a library "
        "folder, so `civdesk scan` finds it (files already hashed are not read again)"]


def test_scan_of_an_empty_name_is_refused(cli: Cli) -> None:
    # An unset variable (`civdesk scan "$MODELS"`) must not make the current folder, or
    # the home folder, a library folder.
    before = cli("config", "--json").json
    run = cli("scan", "")
    assert (run.code, run.error_lines) == (
        2, ["civdesk: error: An empty folder name was given to scan"])
    for action in ("add-folder", "set-download-root"):
        run = cli("config", action, "")
        assert (run.code, run.error_lines) == (
            2, ["civdesk: error: An empty folder name was given (an unset variable?)"])
    assert cli("config", "--json").json == before  # nothing changed
    run = cli("--data-dir", "", "list")
    assert run.code == 2 and "an empty folder name" in run.stderr


def test_scanning_a_parent_folder_says_where_downloads_go_now(
    cli: Cli, models_dir: Path
) -> None:
    assert cli("scan", str(models_dir / "Lora")).code == 0
    assert cli("config", "--json").json["download_root"] == str(models_dir / "Lora")
    run = cli("scan", str(models_dir))
    assert run.code == 0, run.stderr
    assert run.stdout.splitlines()[-1] == (
        f"Downloads now go to {models_dir}, the first library folder (`civdesk config "
        "set-download-root DIR` chooses another).")


def test_a_missing_library_folder_is_reported_once(cli: Cli, models_dir: Path) -> None:
    assert cli("scan", str(models_dir)).code == 0
    models_dir.rename(models_dir.with_name("unplugged"))
    run = cli("scan")
    assert run.code == 0
    assert len(run.error_lines) == 1
    assert run.error_lines[0].startswith(f"civdesk: warning: Library folder {models_dir} is ")


def test_scan_summary_for_people(cli: Cli, models_dir: Path) -> None:
    run = cli("scan", str(models_dir))
    assert run.code == 0, run.stderr
    assert run.stdout.splitlines()[0] == (
        f"Scanned {models_dir}: 3 model files, 2 identified on Civitai, 1 unknown.")
    assert run.stderr == ""  # no progress bar without a terminal


# -------------------------------------------------------------------------------- list


def test_list_json_has_every_field(
    cli: Cli, civitai_catalog: SampleCatalog, models_dir: Path
) -> None:
    assert cli("scan", str(models_dir)).code == 0
    entries = cli("list", "--json").json
    assert len(entries) == 3
    assert all(set(e) == ENTRY_FIELDS for e in entries)
    checkpoint = next(e for e in entries if e["model_id"] == civitai_catalog.checkpoint.id)
    assert checkpoint["type"] == "Checkpoint"
    assert checkpoint["version_name"] == "v2.1"
    assert checkpoint["base_model"] == "SDXL 1.0"
    assert Path(checkpoint["info"]).is_file() and Path(checkpoint["preview"]).is_file()
    assert checkpoint["size"] == Path(checkpoint["path"]).stat().st_size
    assert checkpoint["verified"] is True  # found by the SHA256 of its bytes
    assert checkpoint["removed"] is False and checkpoint["removed_at"] is None
    unknown = next(e for e in entries if e["model_id"] is None)
    assert (unknown["type"], unknown["preview"], unknown["info"]) == (None, None, None)
    assert unknown["verified"] is False
    assert unknown["user"] == {}

    loras = cli("list", "--type", "lora", "--json").json
    assert [e["model_name"] for e in loras] == ["Paperfold Style"]
    assert len(cli("list", "--type", "unknown", "--json").json) == 1
    table = cli("list").stdout.splitlines()
    assert table[0].split() == ["TYPE", "MODEL", "VERSION", "BASE", "SIZE", "VERIFIED", "PATH"]
    assert len(table) == 4


def test_list_json_shows_what_users_wrote_in_other_tools(cli: Cli, tmp_path: Path) -> None:
    root = tmp_path / "models" / "Lora"
    root.mkdir(parents=True)
    (root / "ink.safetensors").write_bytes(b"ink" * 100)
    # A1111's user metadata and Stability Matrix's title, in their own formats.
    (root / "ink.json").write_text(json.dumps({
        "description": "Ink wash", "sd version": "SDXL", "activation text": "inkwash",
        "preferred weight": 0.65, "negative text": "", "notes": "with hires fix"}))
    (root / "ink.cm-info.json").write_text(json.dumps({
        "ModelId": 5, "VersionId": 50, "ModelName": "Ink", "VersionName": "v1",
        "ModelType": "LORA", "Hashes": {"SHA256": None}, "UserTitle": "Ink (mine)"}))
    assert cli("scan", str(tmp_path / "models")).code == 0
    [entry] = cli("list", "--json").json
    assert entry["user"] == {
        "title": "Ink (mine)", "notes": "with hires fix", "activation_text": "inkwash",
        "preferred_weight": 0.65, "description": "Ink wash", "sd_version": "SDXL"}


# ------------------------------------------------------------------- link, duplicates


def test_link_ties_an_unknown_file_to_a_version(
    cli: Cli, civitai_catalog: SampleCatalog, models_dir: Path
) -> None:
    c = civitai_catalog
    assert cli("scan", str(models_dir)).code == 0
    mystery = models_dir / "mystery.safetensors"

    run = cli("link", str(mystery), f"https://civitai.red/models/{c.embedding.id}/bad-hands")

    assert run.code == 0, run.stderr
    assert run.stdout.strip() == (
        f"Linked {mystery} to Bad Hands Negative v1 (version {c.embedding_v1.id}).")
    entry = next(e for e in cli("list", "--json").json if e["path"] == str(mystery))
    assert (entry["model_id"], entry["version_id"], entry["type"]) == (
        c.embedding.id, c.embedding_v1.id, "TextualInversion")
    assert (models_dir / "mystery.civitai.info").is_file()
    # Linked by hand, it stays linked through the next scan.
    rescan = cli("scan", "--json").json
    assert rescan["unknown"] == 0 and rescan["identified"] == 3


@pytest.mark.parametrize("given", ["drive", "real library folder"])
def test_link_through_a_linked_folder_keeps_the_path_the_library_knows(
    cli: Cli, civitai_catalog: SampleCatalog, tmp_path: Path, given: str
) -> None:
    # models/Lora is a link to an external drive; the user links the file by the path the
    # file manager shows there, or through a link to the whole library folder.
    drive = tmp_path / "usb" / "Lora"
    drive.mkdir(parents=True)
    (drive / "mystery.safetensors").write_bytes(b"\1" * 4096)
    models = tmp_path / "models"
    models.mkdir()
    (models / "Lora").symlink_to(drive, target_is_directory=True)
    (tmp_path / "shortcut").symlink_to(models, target_is_directory=True)
    assert cli("scan", str(models)).code == 0
    known = models.resolve() / "Lora" / "mystery.safetensors"
    by = {"drive": drive / "mystery.safetensors",
          "real library folder": tmp_path / "shortcut" / "Lora" / "mystery.safetensors"}

    run = cli("link", str(by[given]), str(civitai_catalog.embedding_v1.id), "--json")

    assert run.code == 0, run.stderr
    assert run.json["path"] == str(known)
    entries = cli("list", "--json").json
    assert [e["path"] for e in entries] == [str(known)]  # one entry, not two
    assert entries[0]["version_id"] == civitai_catalog.embedding_v1.id


def test_link_refuses_a_file_civitai_knows_as_another_version(
    cli: Cli, civitai_catalog: SampleCatalog, tmp_path: Path
) -> None:
    c = civitai_catalog
    # Never scanned: only Civitai can tell what it is.
    lora = put(tmp_path / "unscanned", c.lora_v1, "which-one.safetensors")
    info = lora.with_name("which-one.civitai.info")
    wrong = cli("link", str(lora), str(c.vae_v1.id))
    assert wrong.code == 1 and wrong.stdout == ""
    assert wrong.error_lines == [
        f"civdesk: error: which-one.safetensors is Paperfold Style v1.0 (version "
        f"{c.lora_v1.id}) on Civitai (its SHA256 is that file's), not Clear VAE v1.0 (version "
        f"{c.vae_v1.id}): it was not linked (a scan identifies it by itself; to link it "
        "anyway: --force)"]
    assert not info.exists()
    assert cli("list", "--json").json == []

    forced = cli("link", str(lora), str(c.vae_v1.id), "--force", "--json")
    assert forced.code == 0, forced.stderr
    assert (forced.json["version_id"], forced.json["type"]) == (c.vae_v1.id, "VAE")
    # The right version needs no --force, whatever the library said before.
    right = cli("link", str(lora), str(c.lora_v1.id), "--json")
    assert right.code == 0 and right.json["version_id"] == c.lora_v1.id


def test_link_refuses_a_missing_file_and_a_bad_reference(cli: Cli, tmp_path: Path) -> None:
    missing = cli("link", str(tmp_path / "nope.safetensors"), "123")
    assert (missing.code, missing.error_lines) == (
        2, [f"civdesk: error: No such file: {tmp_path / 'nope.safetensors'}"])
    real = tmp_path / "x.safetensors"
    real.write_bytes(b"x")
    bad = cli("link", str(real), "https://example.com/models/5")
    assert bad.code == 2 and len(bad.error_lines) == 1
    assert "model:<id>" in bad.stderr
    folder = cli("link", str(tmp_path), "123")
    assert (folder.code, folder.error_lines) == (
        2, [f"civdesk: error: {tmp_path} is a folder: link takes one model file"])
    notes = tmp_path / "notes.txt"
    notes.write_text("not a model")
    text = cli("link", str(notes), "123")
    assert text.code == 2
    assert text.error_lines[0].startswith("civdesk: error: notes.txt is not a model file (")
    assert not (tmp_path / "notes.civitai.info").exists()


def test_duplicates_lists_identical_files(
    cli: Cli, civitai_catalog: SampleCatalog, models_dir: Path
) -> None:
    copy = put(models_dir / "backup", civitai_catalog.lora_v1, "paperfold-copy.safetensors")
    assert cli("scan", str(models_dir)).code == 0

    groups = cli("duplicates", "--json").json

    lora_file = civitai_catalog.lora_v1.primary_file
    assert lora_file is not None and lora_file.name
    assert groups == [{
        "sha256": lora_file.sha256,
        "size": lora_file.size,
        "paths": sorted([str(copy), str(models_dir / "Lora" / lora_file.name)]),
    }]
    text = cli("duplicates").stdout
    assert "2 copies" in text and str(copy) in text


# ----------------------------------------------------------------------------- updates


def test_updates_lists_the_model_with_a_newer_version(
    cli: Cli, civitai: CivitaiDouble, civitai_catalog: SampleCatalog, models_dir: Path
) -> None:
    c = civitai_catalog
    assert cli("scan", str(models_dir)).code == 0
    civitai.clear_requests()

    run = cli("updates", "--json")

    assert run.code == 0, run.stderr
    assert run.json == [{
        "model_id": c.lora.id,
        "model_name": "Paperfold Style",
        "type": "LORA",
        "installed_version_ids": [c.lora_v1.id],
        "installed_version_names": ["v1.0"],
        "latest_version_id": c.lora_v2.id,
        "latest_version_name": "v2.0",
        "early_access_until": None,
        "paths": [str(models_dir / "Lora" / (c.lora_v1.primary_file.name or ""))],
    }]
    asked = [r for r in civitai.requests if r.path == "/api/v1/models"]
    assert len(asked) == 1  # both models in one request
    assert sorted(asked[0].query["ids"].split(",")) == sorted(
        [str(c.lora.id), str(c.checkpoint.id)])
    # Checked moments ago: the next run answers from the library without asking again.
    civitai.clear_requests()
    again = cli("updates")
    assert again.code == 0 and "v2.0" in again.stdout
    assert not [r for r in civitai.requests if r.path == "/api/v1/models"]


def test_an_update_in_early_access_says_until_when(
    cli: Cli, civitai: CivitaiDouble, civitai_catalog: SampleCatalog, models_dir: Path
) -> None:
    c = civitai_catalog
    until = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=5)  # whatever today is
    civitai.early_access(c.lora_v2, deadline=until.strftime("%Y-%m-%dT%H:%M:%S.000Z"))
    assert cli("scan", str(models_dir)).code == 0
    run = cli("updates")
    assert run.code == 0, run.stderr
    assert f"v2.0 (early access until {until.date().isoformat()})" in run.stdout
    assert cli("updates", "--json").json[0]["early_access_until"] == until.date().isoformat()


def test_updates_says_how_to_get_the_update_next_to_the_version_on_disk(
    cli: Cli, civitai_catalog: SampleCatalog, models_dir: Path
) -> None:
    c = civitai_catalog
    assert cli("scan", str(models_dir)).code == 0
    plain = cli("updates")
    assert plain.code == 0
    assert plain.stdout.splitlines()[1].endswith(f"civdesk download {c.lora_v2.id}")

    sorted_away = models_dir / "Lora" / "my styles"
    sorted_away.mkdir()
    old = models_dir / "Lora" / (c.lora_v1.primary_file.name or "")
    old.rename(sorted_away / old.name)
    assert cli("scan").code == 0
    moved = cli("updates")
    assert moved.code == 0
    hint = f"civdesk download {c.lora_v2.id} --dest '{sorted_away}'"
    assert moved.stdout.splitlines()[1].endswith(hint)
    # The hint works as printed: the update lands beside the old version.
    got = cli("download", str(c.lora_v2.id), "--dest", str(sorted_away), "--json")
    assert got.code == 0 and Path(got.json["path"]).parent == sorted_away


def test_updates_keeps_what_it_knows_and_reports_what_it_could_not_check(
    cli: Cli, civitai: CivitaiDouble, models_dir: Path
) -> None:
    assert cli("scan", str(models_dir)).code == 0
    civitai.rate_limit(n=5, retry_after=0.05, path_prefix="/api/v1/models")

    run = cli("--retries", "1", "updates", "--json")

    assert run.code == 1
    assert run.json == []
    assert run.error_lines == [
        "civdesk: error: 2 of 2 models could not be checked for updates: Civitai is rate "
        "limiting requests; wait a while and try again; run `civdesk updates` again later"]


# ------------------------------------------------------------------------------ search


def test_search_finds_models_by_name(cli: Cli, civitai_catalog: SampleCatalog) -> None:
    run = cli("search", "paperfold", "--json")
    assert run.code == 0, run.stderr
    [hit] = run.json
    assert (hit["id"], hit["name"], hit["type"]) == (
        civitai_catalog.lora.id, "Paperfold Style", "LORA")
    assert hit["latest_version_id"] == civitai_catalog.lora_v2.id
    assert cli("search", "paperfold", "--type", "Checkpoint", "--json").json == []
    text = cli("search", "harbor").stdout
    assert "Harbor Light" in text and f"v2.1 ({civitai_catalog.checkpoint_v1.id})" in text


def test_network_down_is_one_line_saying_civitai_cannot_be_reached(cli: Cli) -> None:
    run = cli("--api-base", closed_port_url(), "--retries", "0", "search", "anything")
    assert run.code == 1
    assert len(run.error_lines) == 1
    assert run.error_lines[0].startswith("civdesk: error: Cannot reach Civitai at 127.0.0.1:")
    assert "Traceback" not in run.stderr


def test_no_network_at_all_fails_at_once_in_one_line(
    cli: Cli, caplog: pytest.LogCaptureFixture
) -> None:
    # The default retries: none of them is spent on a name that does not resolve.
    with caplog.at_level(logging.WARNING, logger="civdesk.core.civitai.client"):
        run = cli("--api-base", "http://civdesk-no-such-host.invalid", "search", "anything")
    assert run.code == 1
    assert run.error_lines == [
        "civdesk: error: Cannot reach Civitai at civdesk-no-such-host.invalid: the host name "
        "could not be resolved. Check your network connection"]
    assert "retrying" not in caplog.text


# ------------------------------------------------------------------------------ config


def test_config_stores_the_key_from_stdin_without_echoing_it(cli: Cli) -> None:
    stored = cli("config", "set-key", stdin=TEST_API_KEY + "\n")
    assert stored.code == 0, stored.stderr
    assert TEST_API_KEY not in stored.stdout + stored.stderr

    shown = cli("config", "--json", env=NO_KEY)
    assert shown.code == 0
    key = shown.json["api_key"]
    assert key["set"] is True and key["source"] in ("keychain", "file")
    assert TEST_API_KEY not in shown.stdout

    assert cli("config", "clear-key").code == 0
    assert cli("config", "--json", env=NO_KEY).json["api_key"]["set"] is False


def test_config_find_folders_lists_then_adds_the_usual_model_folders(
    cli: Cli, home: Path
) -> None:
    env = {"XDG_CONFIG_HOME": str(home / ".config")}  # only this test's home is looked at
    assert cli("config", "find-folders", env=env).stdout.startswith(
        "No web UI model folders in the usual places")
    webui = home / "stable-diffusion-webui" / "models"
    (webui / "Lora").mkdir(parents=True)
    listed = cli("config", "find-folders", env=env)
    assert listed.code == 0
    assert listed.stdout.splitlines() == [
        str(webui), "(`civdesk config find-folders --add` adds them to the library folders)"]
    added = cli("config", "find-folders", "--add", env=env)
    assert added.stdout.splitlines() == [f"Added {webui}", "`civdesk scan` reads them."]
    assert cli("config", "--json").json["library_folders"] == [str(webui)]
    again = cli("config", "find-folders", "--add", env=env)
    assert again.stdout.splitlines() == [f"{webui} is in the library folders already"]


def test_config_sets_the_download_root_and_removes_a_library_folder(
    cli: Cli, models_dir: Path, tmp_path: Path
) -> None:
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    chosen = cli("config", "set-download-root", str(downloads))
    assert chosen.code == 0, chosen.stderr
    assert chosen.stdout.splitlines() == [
        f"Downloads go to {downloads} from now on (LoRAs to {downloads / 'Lora'}, and so on)."]
    assert cli("config", "--json").json["download_root"] == str(downloads)
    assert cli("scan", str(models_dir)).code == 0
    removed = cli("config", "remove-folder", str(models_dir))
    assert removed.stdout.splitlines() == [
        f"Removed {models_dir} from the library folders; the library forgot its 3 files "
        "(they stay on disk)."]
    assert cli("config", "--json").json["library_folders"] == []
    assert cli("list", "--json").json == []
    again = cli("config", "remove-folder", str(models_dir))
    assert (again.code, again.error_lines) == (2, [
        f"civdesk: error: {models_dir} is not a library folder (they are: none)"])


def test_set_companions_chooses_the_other_tools_companion_files(cli: Cli) -> None:
    assert cli("config", "--json").json["companion_formats"] == ["civitai-info"]
    run = cli("config", "set-companions", "cm-info,metadata-json", "--json")
    assert run.code == 0, run.stderr
    # .civitai.info is civdesk's own: always written.
    assert run.json["companion_formats"] == ["civitai-info", "cm-info", "metadata-json"]
    bad = cli("config", "set-companions", "civitai-info,nmkr")
    assert bad.code == 2 and "unknown companion format nmkr" in bad.stderr
    assert cli("config", "--json").json["companion_formats"] == [
        "civitai-info", "cm-info", "metadata-json"]


def test_config_actions_print_the_settings_they_leave_with_json(
    cli: Cli, models_dir: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    after = cli("config", "add-folder", str(models_dir), "--json")
    assert after.code == 0 and after.json["library_folders"] == [str(models_dir)]
    before_action = cli("config", "--json", "add-folder", str(other))  # either place
    assert before_action.json["library_folders"] == [str(models_dir), str(other)]
    assert cli("config", "set-layout", "comfyui", "--json").json["layout"] == "comfyui"
    assert cli("config", "remove-folder", str(other), "--json").json["library_folders"] == [
        str(models_dir)]
    assert cli("config", "find-folders", "--json").json == {"found": [], "added": []}


def test_config_add_folder_is_then_scanned(cli: Cli, models_dir: Path) -> None:
    added = cli("config", "add-folder", str(models_dir))
    assert added.code == 0 and str(models_dir) in added.stdout
    assert cli("config", "--json").json["library_folders"] == [str(models_dir)]
    assert cli("scan", "--json").json["found"] == 3


# ---------------------------------------------------------------------------- download


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest().upper()


def download_root(home: Path) -> Path:
    return home / "civdesk-models"


def assert_downloaded(run: Run, version: FakeVersion, folder: Path, cli: Cli) -> Path:
    """The JSON of a download names the verified file in ``folder``, and the library has it."""
    assert run.code == 0, run.stderr
    assert run.stderr == ""
    f = version.primary_file
    assert f is not None and f.name
    result = run.json
    path = folder / f.name
    assert result == {"path": str(path), "sha256": f.sha256, "version_id": version.id,
                      "state": "completed", "already_present": False,
                      "checked": "sha256", "verified": True}
    assert sha256_of(path) == f.sha256
    assert not list(folder.glob("*.part"))
    entry = next(e for e in cli("list", "--json").json if e["path"] == str(path))
    assert (entry["version_id"], entry["sha256"]) == (version.id, f.sha256)
    assert entry["info"] and Path(entry["info"]).is_file()
    return path


NO_SHA256 = {"no hashes": {}, "an empty SHA256": {"SHA256": ""},
             "a number": {"SHA256": 12345, "AutoV2": "ABCDEF0123"}, "null": {"SHA256": None}}


@pytest.mark.parametrize("hashes", list(NO_SHA256), ids=list(NO_SHA256))
def test_a_file_civitai_publishes_no_sha256_for_is_never_called_verified(
    cli: Cli, civitai: CivitaiDouble, tmp_path: Path, hashes: str
) -> None:
    model = civitai.add_model("Hashless", "LORA")
    version = civitai.add_version(model, "v1")
    f = version.files[0]

    def without_sha256(answer: Any) -> Any:
        for each in answer["files"] if isinstance(answer, dict) else []:
            each["hashes"] = dict(NO_SHA256[hashes])
        return answer

    civitai.edit_json("/api/v1/model-versions/", without_sha256)
    dest = tmp_path / "hashless"
    run = cli("download", str(version.id), "--dest", str(dest))
    assert run.code == 0, run.stderr
    assert "verified" not in run.stdout.replace("unverified", "")
    assert "only its size checked: Civitai publishes no SHA256 for this file" in run.stdout
    assert sha256_of(dest / f.name) == f.sha256  # the hash of its bytes is still recorded
    as_json = cli("download", str(version.id), "--dest", str(dest), "--json").json
    assert (as_json["verified"], as_json["sha256"]) == (False, f.sha256)
    [entry] = cli("list", "--json").json
    assert (entry["path"], entry["verified"]) == (str(dest / f.name), False)
    # A scan looks the bytes up by hash: Civitai still publishes no SHA256 to match.
    assert cli("scan", str(dest)).code == 0
    [entry] = cli("list", "--json").json
    assert entry["verified"] is False and entry["version_id"] == version.id
    row = next(line for line in cli("list").stdout.splitlines() if "Hashless" in line)
    assert " no " in row


def test_download_by_version_id_goes_to_the_type_folder(
    cli: Cli, civitai_catalog: SampleCatalog, home: Path
) -> None:
    c = civitai_catalog
    run = cli("download", str(c.lora_v1.id), "--json")
    assert_downloaded(run, c.lora_v1, download_root(home) / "Lora", cli)


def test_download_by_model_id_takes_the_latest_version(
    cli: Cli, civitai_catalog: SampleCatalog, home: Path
) -> None:
    c = civitai_catalog
    run = cli("download", f"model:{c.lora.id}", "--json")
    assert_downloaded(run, c.lora_v2, download_root(home) / "Lora", cli)


@pytest.mark.parametrize("site", [
    "https://civitai.com",
    "https://civitai.red",  # where mature models' links point since April 2026
    None,  # the configured server's own pages, as `civdesk search --json` links them
])
def test_download_by_model_page_url_with_a_version(
    cli: Cli, civitai_catalog: SampleCatalog, home: Path, site: str | None
) -> None:
    c = civitai_catalog
    url = (f"{site or c.double.base_url}/models/{c.lora.id}/paperfold-style"
           f"?modelVersionId={c.lora_v1.id}")
    run = cli("download", url, "--json")
    assert_downloaded(run, c.lora_v1, download_root(home) / "Lora", cli)


def test_a_deleted_download_leaves_the_library_on_the_next_scan(
    cli: Cli, civitai_catalog: SampleCatalog, home: Path
) -> None:
    # Someone who only downloads has no library folder: the download folder is scanned.
    c = civitai_catalog
    run = cli("download", str(c.lora_v1.id), "--json")
    assert run.code == 0, run.stderr
    Path(run.json["path"]).unlink()
    scan = cli("scan", "--json")
    assert scan.code == 0, scan.stderr
    assert (scan.json["found"], scan.json["removed"]) == (0, 1)
    assert cli("list", "--json").json == []
    assert cli("config", "--json").json["library_folders"] == []  # nothing added for it


def test_a_link_whose_version_is_of_another_model_is_refused(
    cli: Cli, civitai_catalog: SampleCatalog, home: Path
) -> None:
    c = civitai_catalog
    url = f"https://civitai.com/models/{c.lora.id}?modelVersionId={c.vae_v1.id}"
    run = cli("download", url)
    assert (run.code, run.error_lines) == (1, [
        f"civdesk: error: The link is to model {c.lora.id}, but its modelVersionId "
        f"{c.vae_v1.id} is a version of model {c.vae.id}: copy the link again, or give the "
        "version id alone"])
    assert not download_root(home).exists()


def test_download_into_a_chosen_folder(
    cli: Cli, civitai_catalog: SampleCatalog, tmp_path: Path
) -> None:
    dest = tmp_path / "chosen" / "sub"
    run = cli("download", str(civitai_catalog.checkpoint_v1.id), "--dest", str(dest), "--json")
    assert_downloaded(run, civitai_catalog.checkpoint_v1, dest, cli)
    text = cli("download", str(civitai_catalog.embedding_v1.id), "--dest", str(dest))
    assert text.code == 0
    assert text.stdout.startswith("Downloaded Bad Hands Negative v1 (")
    assert "SHA256 verified" in text.stdout and str(dest / "badhands.safetensors") in text.stdout


def test_a_download_the_library_already_holds_points_at_it(
    cli: Cli, civitai: CivitaiDouble, civitai_catalog: SampleCatalog, home: Path
) -> None:
    c = civitai_catalog
    lora = download_root(home) / "Lora"
    path = assert_downloaded(cli("download", str(c.lora_v1.id), "--json"), c.lora_v1, lora, cli)
    # Sorted into a folder of the user's own, with its companions; the scan follows the move.
    moved = lora / "styles" / path.name
    moved.parent.mkdir()
    for f in lora.glob(f"{path.stem}.*"):
        f.rename(moved.parent / f.name)
    assert cli("scan", str(download_root(home))).code == 0
    served = len(civitai.requests)

    again = cli("download", str(c.lora_v1.id))
    assert again.code == 0, again.stderr
    assert again.stdout == (f"Paperfold Style v1.0 is already in the library, nothing "
                            f"downloaded: {moved} (--dest DIR downloads a copy elsewhere)\n")
    result = cli("download", str(c.lora_v1.id), "--json").json
    assert result == {"path": str(moved), "sha256": c.lora_v1.files[0].sha256,
                      "version_id": c.lora_v1.id, "state": "completed",
                      "already_present": True, "checked": "sha256", "verified": True}
    assert not any(r.path.startswith("/files/") for r in civitai.requests[served:])
    assert sorted(p.name for p in lora.iterdir()) == ["styles"]


def test_a_file_civitai_flagged_downloads_only_with_allow_flagged(
    cli: Cli, civitai: CivitaiDouble, tmp_path: Path
) -> None:
    model = civitai.add_model("Old Checkpoint", "Checkpoint")
    version = civitai.add_version(model, files=[civitai.file(
        name="old.ckpt", format="PickleTensor", pickle_scan="Danger",
        pickle_message="Dangerous import detected: os.system")])
    dest = tmp_path / "dl"
    refused = cli("download", str(version.id), "--dest", str(dest))
    assert refused.code == 1 and refused.stdout == ""
    assert refused.error_lines == [
        "civdesk: error: Civitai's pickle scan found code in old.ckpt that would run when it "
        "is loaded: Dangerous import detected: os.system. Only if you trust its creator: run "
        "the same command with --allow-flagged"]
    assert not dest.exists()

    chosen = cli("download", str(version.id), "--dest", str(dest), "--allow-flagged", "--json")
    assert chosen.code == 0, chosen.stderr
    assert chosen.json["path"] == str(dest / "old.ckpt") and (dest / "old.ckpt").is_file()


def test_a_comfyui_models_folder_gets_downloads_in_comfyuis_folders(
    cli: Cli, civitai_catalog: SampleCatalog, tmp_path: Path
) -> None:
    c = civitai_catalog
    comfy = tmp_path / "ComfyUI" / "models"
    for name in ("checkpoints", "loras", "vae"):
        (comfy / name).mkdir(parents=True)
    scan = cli("scan", str(comfy))
    assert scan.code == 0, scan.stderr
    assert scan.stdout.splitlines()[-1] == (
        f"{comfy} is a ComfyUI models folder: downloads go to its folders (LoRAs to "
        f"{comfy / 'loras'}, and so on; `civdesk config set-layout a1111` to change).")
    got = cli("download", str(c.lora_v1.id), "--json")
    assert got.code == 0 and Path(got.json["path"]).parent == comfy / "loras"
    assert "Folders per model type (named as ComfyUI does):" in cli("config").stdout

    back = cli("config", "set-layout", "a1111")
    assert back.stdout.strip() == (
        f"Type folders named as AUTOMATIC1111 / Forge does: LoRAs go to {comfy / 'Lora'}, "
        "and so on (`civdesk config` lists them).")
    # ComfyUI's "vae" is A1111's "VAE" spelled otherwise: the folder that is there.
    assert cli("config", "--json").json["type_folders"]["VAE"] == str(comfy / "vae")


def test_the_first_download_without_a_key_asks_for_one_before_any_request(
    cli: Cli, civitai: CivitaiDouble, civitai_catalog: SampleCatalog, home: Path
) -> None:
    asked = len(civitai.requests)
    refused = cli("download", str(civitai_catalog.lora_v1.id), env=NO_KEY)

    assert refused.code == 1
    assert refused.error_lines == [
        "civdesk: error: Civitai requires an API key for every download — create one on "
        "civitai.com → Account settings → API keys, then pass it with --api-key KEY, set "
        "CIVITAI_API_KEY or store it with `civdesk config set-key` (--without-key tries "
        "without one)"]
    assert len(civitai.requests) == asked  # asked before the first request, not after a 401
    assert not download_root(home).exists()

    tried = cli("download", str(civitai_catalog.lora_v1.id), "--without-key", "--json",
                env=NO_KEY)
    assert_downloaded(tried, civitai_catalog.lora_v1, download_root(home) / "Lora", cli)


def test_a_login_required_download_needs_the_api_key(
    cli: Cli, civitai: CivitaiDouble, civitai_catalog: SampleCatalog, home: Path
) -> None:
    c = civitai_catalog
    civitai.login_required(c.embedding_v1)

    refused = cli("download", str(c.embedding_v1.id), "--without-key", env=NO_KEY)

    assert refused.code == 1
    assert len(refused.error_lines) == 1
    line = refused.error_lines[0]
    assert line.startswith("civdesk: error: Civitai refused the download")
    assert "API key" in line and "--api-key" in line
    assert not list((download_root(home) / "embeddings").glob("*"))

    run = cli("download", str(c.embedding_v1.id), "--api-key", TEST_API_KEY, "--json",
              env=NO_KEY)
    assert_downloaded(run, c.embedding_v1, download_root(home) / "embeddings", cli)
    assert TEST_API_KEY not in run.stdout + run.stderr


def test_queue_lists_cancels_and_clears_downloads(
    cli: Cli, civitai: CivitaiDouble, civitai_catalog: SampleCatalog, tmp_data_dir: Path
) -> None:
    from civdesk.core.context import Core
    from civdesk.core.downloads.queue import DownloadQueue

    c = civitai_catalog
    assert cli("queue").stdout.splitlines() == ["No downloads: `civdesk download REF` starts one."]
    assert cli("download", str(c.lora_v1.id)).code == 0
    civitai.login_required(c.embedding_v1)
    assert cli("download", str(c.embedding_v1.id), "--without-key", env=NO_KEY).code == 1
    core = Core.open(tmp_data_dir, api_base=civitai.base_url)
    try:  # a download left waiting, as a Ctrl+C'd `civdesk download` leaves one
        waiting = DownloadQueue.for_core(core).add(c.vae_v1.id)
    finally:
        core.close()

    tasks = {t["id"]: t for t in cli("queue", "--json").json}
    assert [t["state"] for t in tasks.values()] == ["completed", "failed", "queued"]
    done, failed = (t for t in tasks.values() if t["state"] != "queued")
    assert Path(done["path"]).is_file() and done["file_name"] == Path(done["path"]).name
    assert failed["error_kind"] == "auth" and "API key" in failed["error"]
    listing = cli("queue").stdout.splitlines()
    assert listing[0].split() == ["ID", "STATE", "DONE", "FILE", "WHERE", "/", "WHY"]
    assert any(f"#{waiting}" in line and "queued" in line for line in listing)

    cancelled = cli("queue", "cancel", str(waiting))
    assert cancelled.code == 0 and cancelled.stdout.startswith(f"Cancelled download #{waiting}")
    assert cli("queue", "cancel", str(waiting)).code == 1  # already cancelled: one line
    gone = cli("queue", "cancel", "999")
    assert (gone.code, gone.error_lines) == (
        1, ["civdesk: error: Download #999 is no longer in the list"])
    assert cli("queue", "clear").stdout == (
        "Forgot 3 finished downloads; the files stay on disk.\n")
    assert cli("queue", "--json").json == [] and Path(done["path"]).is_file()


def test_a_paused_queue_still_downloads_what_the_command_line_asks_for(
    cli: Cli, civitai: CivitaiDouble, civitai_catalog: SampleCatalog, tmp_data_dir: Path
) -> None:
    from civdesk.core.context import Core
    from civdesk.core.downloads.queue import DownloadQueue

    c = civitai_catalog
    core = Core.open(tmp_data_dir, api_base=civitai.base_url)
    try:  # the window paused its queue with a download waiting, and quit
        queue = DownloadQueue.for_core(core)
        waiting = queue.add(c.vae_v1.id)
        queue.pause()
    finally:
        core.close()
    listing = cli("queue").stdout.splitlines()
    assert listing[-1].startswith("The window's queue is paused (Resume all)")
    run = cli("download", str(c.lora_v1.id), "--json")
    assert run.code == 0 and run.json["state"] == "completed"
    states = {t["id"]: t["state"] for t in cli("queue", "--json").json}
    assert states[waiting] == "queued"


def test_the_key_can_come_from_the_environment(
    cli: Cli, civitai: CivitaiDouble, civitai_catalog: SampleCatalog, home: Path
) -> None:
    civitai.login_required(civitai_catalog.embedding_v1)
    env = {"CIVITAI_API_KEY": TEST_API_KEY}
    assert cli("config", "--json", env=env).json["api_key"]["source"] == "environment"
    run = cli("download", str(civitai_catalog.embedding_v1.id), "--json", env=env)
    assert_downloaded(run, civitai_catalog.embedding_v1, download_root(home) / "embeddings", cli)


def test_a_wrong_api_key_is_told_apart_from_a_missing_one(
    cli: Cli, civitai: CivitaiDouble, civitai_catalog: SampleCatalog
) -> None:
    civitai.login_required(civitai_catalog.embedding_v1)
    run = cli("download", str(civitai_catalog.embedding_v1.id), "--api-key", "wrong-key")
    assert run.code == 1 and len(run.error_lines) == 1
    line = run.error_lines[0]
    assert line.startswith("civdesk: error: Civitai refused the API key (401): it has "
                           "probably expired or been revoked — create a new one on civitai.com")
    assert "set your" not in line and "wrong-key" not in run.stderr
    assert "civdesk config set-key" in line  # how to give the new one here


def test_set_key_checks_the_key_with_civitai(cli: Cli, civitai: CivitaiDouble) -> None:
    accepted = cli("config", "set-key", stdin=TEST_API_KEY + "\n")
    assert accepted.code == 0, accepted.stderr
    assert accepted.stdout.endswith("Civitai accepted the key.\n")
    assert any(r.path == "/api/v1/models" and r.query.get("favorites") == "true"
               for r in civitai.requests)

    refused = cli("config", "set-key", stdin="a-revoked-key\n")
    assert refused.code == 1 and len(refused.error_lines) == 1
    assert refused.error_lines[0].startswith("civdesk: error: Civitai refused this key: it is "
                                             "mistyped, expired or revoked")
    assert refused.error_lines[0].endswith("Nothing was stored")
    assert "a-revoked-key" not in refused.stdout + refused.stderr
    shown = cli("config", "--json", env=NO_KEY).json["api_key"]
    assert shown["set"] is True and shown["source"] in ("keychain", "file")  # the first kept


def test_set_key_stores_the_key_when_civitai_cannot_be_reached(cli: Cli) -> None:
    offline = cli("--api-base", closed_port_url(), "config", "set-key",
                  stdin=TEST_API_KEY + "\n", env=NO_KEY)
    assert offline.code == 0, offline.stderr
    assert "The key could not be checked (Cannot reach Civitai at 127.0.0.1:" in offline.stdout
    assert offline.stdout.endswith("; stored anyway.\n")
    assert cli("config", "--json", env=NO_KEY).json["api_key"]["set"] is True


def test_early_access_says_until_when(
    cli: Cli, civitai: CivitaiDouble, civitai_catalog: SampleCatalog
) -> None:
    civitai.early_access(civitai_catalog.vae_v1, deadline="2031-05-06T00:00:00.000Z")
    run = cli("download", str(civitai_catalog.vae_v1.id))
    assert run.code == 1
    assert len(run.error_lines) == 1
    assert "early access until 2031-05-06" in run.error_lines[0]


def test_a_removed_model_says_removed(
    cli: Cli, civitai: CivitaiDouble, civitai_catalog: SampleCatalog
) -> None:
    civitai.remove(civitai_catalog.lora)
    for ref in (str(civitai_catalog.lora_v1.id), f"model:{civitai_catalog.lora.id}"):
        run = cli("download", ref)
        assert run.code == 1
        assert len(run.error_lines) == 1 and "removed" in run.error_lines[0]


def test_an_archived_model_says_archived(
    cli: Cli, civitai: CivitaiDouble, civitai_catalog: SampleCatalog
) -> None:
    civitai.archive(civitai_catalog.vae)
    run = cli("download", str(civitai_catalog.vae_v1.id))
    assert run.code == 1 and len(run.error_lines) == 1
    assert "archived" in run.error_lines[0]


def test_a_download_with_the_network_down_cannot_reach_civitai(cli: Cli) -> None:
    run = cli("--api-base", closed_port_url(), "--retries", "0", "download", "123")
    assert run.code == 1
    assert len(run.error_lines) == 1
    assert run.error_lines[0].startswith("civdesk: error: Cannot reach Civitai")


def test_a_rate_limited_download_waits_and_succeeds(
    cli: Cli, civitai: CivitaiDouble, civitai_catalog: SampleCatalog, home: Path
) -> None:
    c = civitai_catalog
    civitai.rate_limit(n=1, retry_after=0.2, path_prefix="/api/download/")

    run = cli("download", str(c.lora_v1.id), "--json")

    assert_downloaded(run, c.lora_v1, download_root(home) / "Lora", cli)
    asked = [r for r in civitai.requests if r.path.startswith("/api/download/")]
    assert len(asked) >= 2  # the 429, then the one that went through


def test_a_download_still_rate_limited_after_the_retries_says_so(
    cli: Cli, civitai: CivitaiDouble, civitai_catalog: SampleCatalog, home: Path
) -> None:
    civitai.rate_limit(n=50, retry_after=0.05, path_prefix="/api/download/")
    run = cli("--retries", "0", "download", str(civitai_catalog.lora_v1.id))
    assert run.code == 1
    assert run.error_lines == [
        "civdesk: error: Civitai is rate limiting requests; wait a while and try again"]
    assert not (download_root(home) / "Lora").exists() or not list(
        (download_root(home) / "Lora").iterdir())


def test_bad_references_and_files_are_usage_errors(
    cli: Cli, civitai_catalog: SampleCatalog
) -> None:
    junk = cli("download", "not-a-model")
    assert junk.code == 2 and len(junk.error_lines) == 1 and "model:<id>" in junk.stderr
    wrong_file = cli("download", str(civitai_catalog.lora_v1.id), "--file-id", "1")
    assert wrong_file.code == 1 and len(wrong_file.error_lines) == 1
    assert "File 1 of model version" in wrong_file.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_a_terminal_gets_a_progress_bar_on_stderr(
    cli_env: dict[str, str], civitai_catalog: SampleCatalog
) -> None:
    import pty
    import threading

    env = {k: v for k, v in os.environ.items() if k != "CIVITAI_API_KEY"}
    env.update(cli_env)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")])
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "civdesk", "download", str(civitai_catalog.lora_v1.id)],
        stdout=subprocess.PIPE, stderr=slave, text=True, env=env)
    os.close(slave)
    seen = bytearray()

    def read() -> None:
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the terminal closed with the process
                return
            if not chunk:
                return
            seen.extend(chunk)

    reader = threading.Thread(target=read)
    reader.start()
    out, _ = process.communicate(timeout=60)
    reader.join(5)
    os.close(master)
    terminal = seen.decode()
    assert process.returncode == 0, terminal
    assert out.startswith("Downloaded Paperfold Style v1.0")  # the result stays on stdout
    assert "%" in terminal and "KB" in terminal and "ETA" in terminal
    assert terminal.endswith("\r\x1b[K")  # the bar is wiped before the summary


BIG = 8 * 1024 * 1024  # two of the downloader's 4 MiB writes: the .part gets bytes midway


def start_download(cli_env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "CIVITAI_API_KEY"}
    env.update(cli_env)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")])
    return subprocess.Popen([sys.executable, "-m", "civdesk", "download", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=signals_as_in_a_terminal)


def wait_for_part(folder: Path, process: subprocess.Popen[str], timeout: float = 30) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        parts = [p for p in folder.glob("*.part") if p.stat().st_size > 0] if folder.is_dir() \
            else []
        if parts:
            return parts[0]
        assert process.poll() is None, process.communicate()
        time.sleep(0.01)
    raise AssertionError("no .part with bytes appeared")


@pytest.fixture
def big_version(civitai: CivitaiDouble) -> FakeVersion:
    model = civitai.add_model("Huge Checkpoint", "Checkpoint")
    return civitai.add_version(model, "v1", files=[civitai.file(size=BIG)])


def test_a_killed_download_resumes_from_its_part_file(
    cli: Cli, cli_env: dict[str, str], civitai: CivitaiDouble, big_version: FakeVersion,
    home: Path,
) -> None:
    folder = download_root(home) / "Stable-diffusion"
    civitai.throttle_downloads(4 * 1024 * 1024)
    first = start_download(cli_env, str(big_version.id))
    try:
        part = wait_for_part(folder, first)
    finally:
        first.kill()  # SIGKILL: no chance to clean up or record anything
        first.communicate()
    kept = part.stat().st_size
    assert 0 < kept < BIG
    civitai.throttle_downloads(None)
    civitai.clear_requests()

    run = cli("download", str(big_version.id), "--json")

    path = assert_downloaded(run, big_version, folder, cli)
    assert path.stat().st_size == BIG
    ranges = [r.headers.get("Range") for r in civitai.requests if r.host == "storage"
              and r.path.startswith("/files/")]
    assert ranges == [f"bytes={kept}-"]


def test_ctrl_c_stops_a_download_keeping_the_part_for_later(
    cli: Cli, cli_env: dict[str, str], civitai: CivitaiDouble, big_version: FakeVersion,
    home: Path,
) -> None:
    folder = download_root(home) / "Stable-diffusion"
    civitai.throttle_downloads(4 * 1024 * 1024)
    process = start_download(cli_env, str(big_version.id))
    try:
        wait_for_part(folder, process)
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130
    assert err.strip().splitlines() == [
        "civdesk: download interrupted; the partial file is kept: run the same command "
        "again to resume"]
    assert list(folder.glob("*.part"))
    civitai.throttle_downloads(None)
    assert_downloaded(cli("download", str(big_version.id), "--json"), big_version, folder, cli)


def test_ctrl_c_while_civitai_does_not_answer_ends_the_scan_at_once(
    cli_env: dict[str, str], civitai: CivitaiDouble, tmp_path: Path
) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    for n in range(3):
        (folder / f"new{n}.safetensors").write_bytes(os.urandom(5000))
    civitai.api_latency(60)  # a server that takes every request and never answers
    env = {k: v for k, v in os.environ.items() if k != "CIVITAI_API_KEY"}
    env.update(cli_env)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")])
    process = subprocess.Popen([sys.executable, "-m", "civdesk", "scan", str(folder)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env, preexec_fn=signals_as_in_a_terminal)
    try:
        deadline = time.monotonic() + 30
        while not any("by-hash" in r.path for r in civitai.requests):
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.05)
        asked = time.monotonic()
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=30)
        took = time.monotonic() - asked
    finally:
        if process.poll() is None:
            process.kill()
        civitai.api_latency(0)
    assert process.returncode == 130, err
    assert took < 10  # not the request's 60 s timeout, nor its retries'


def test_config_sets_how_big_files_are_hashed(cli: Cli) -> None:
    assert cli("config", "--json").json["hashing"] == "auto"
    run = cli("config", "set-hashing", "one-at-a-time")
    assert run.code == 0 and run.stdout.strip() == "Big files are hashed: one-at-a-time."
    assert "one-at-a-time" in next(line for line in cli("config").stdout.splitlines()
                                   if line.startswith("Big files hashed"))
    assert cli("config", "set-hashing", "sometimes").code == 2
    assert cli("config", "--json").json["hashing"] == "one-at-a-time"
