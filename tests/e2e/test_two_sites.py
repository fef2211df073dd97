"""Civitai's two sites from the command line: civitai.com leaves mature models out,
civitai.red serves everything, and the "allow mature content" setting picks the site."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_API_KEY
from tests.double import CivitaiDouble, FakeModel, FakeVersion
from tests.e2e.test_cli import Run, civdesk, put


@dataclass
class TwoSites:
    double: CivitaiDouble
    safe: FakeModel
    safe_v: FakeVersion
    mature: FakeModel  # not flagged nsfw: rated R by its version only
    mature_v: FakeVersion


@pytest.fixture
def sites() -> Iterator[TwoSites]:
    with CivitaiDouble(api_key=TEST_API_KEY, two_sites=True) as d:
        safe = d.add_model("Daylight Glow", "LORA")
        safe_v = d.add_version(safe, "v1", trained_words=["daylight"])
        mature = d.add_model("Night Glow", "LORA")
        mature_v = d.add_version(mature, "v1", trained_words=["night"], nsfw_level=4 | 8,
                                 images=[d.image(nsfw_level=4)])
        yield TwoSites(d, safe, safe_v, mature, mature_v)


def run(sites: TwoSites, data: Path, *args: str, **env: str) -> Run:
    """civdesk with both sites given on the command line."""
    return civdesk("--data-dir", str(data), "--api-base", sites.double.base_url,
                   "--mature-api-base", sites.double.mature_url, *args,
                   env={"HOME": str(data.parent), **env})


@pytest.fixture
def library(sites: TwoSites, tmp_path: Path) -> Path:
    root = tmp_path / "models"
    put(root / "Lora", sites.safe_v)
    put(root / "Lora", sites.mature_v)
    return root.resolve()


def entries(sites: TwoSites, data: Path) -> dict[int | None, dict[str, Any]]:
    listed = run(sites, data, "list", "--json")
    assert listed.code == 0, listed.stderr
    return {e["version_id"]: e for e in listed.json}


def test_a_scan_identifies_mature_models_on_the_mature_site_when_allowed(
    sites: TwoSites, library: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    assert run(sites, data, "config", "set-nsfw", "on").code == 0
    scanned = run(sites, data, "scan", str(library), "--json")
    assert scanned.code == 0, scanned.stderr
    assert (scanned.json["identified"], scanned.json["unknown"]) == (2, 0)
    found = entries(sites, data)
    assert set(found) == {sites.safe_v.id, sites.mature_v.id}
    night = found[sites.mature_v.id]
    assert (night["model_id"], night["model_name"]) == (sites.mature.id, "Night Glow")
    # Identified completely: companions beside it, as for any model.
    assert night["info"] and night["preview"]
    assert json.loads(Path(night["info"]).read_text())["id"] == sites.mature_v.id
    assert {r.host for r in sites.double.requests if r.path.startswith("/api/")} == {"mature"}


def test_without_mature_content_only_the_safe_site_is_asked(
    sites: TwoSites, library: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    scanned = run(sites, data, "scan", str(library), "--json")
    assert scanned.code == 0, scanned.stderr
    assert (scanned.json["identified"], scanned.json["unknown"]) == (1, 1)
    found = entries(sites, data)
    assert sites.safe_v.id in found and sites.mature_v.id not in found
    assert found[None]["sha256"] == sites.mature_v.files[0].sha256
    assert {r.host for r in sites.double.requests if r.path.startswith("/api/")} == {"api"}


def test_search_uses_the_site_that_has_mature_models_when_allowed(
    sites: TwoSites, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    hidden = run(sites, data, "search", "glow", "--json")
    assert hidden.code == 0, hidden.stderr
    assert [hit["id"] for hit in hidden.json] == [sites.safe.id]
    assert hidden.json[0]["url"] == f"{sites.double.base_url}/models/{sites.safe.id}"

    once = run(sites, data, "search", "glow", "--nsfw", "--json")  # this run only
    assert {hit["id"] for hit in once.json} == {sites.safe.id, sites.mature.id}
    assert run(sites, data, "config", "set-nsfw", "on").code == 0
    shown = run(sites, data, "search", "glow", "--json")
    urls = {hit["id"]: hit["url"] for hit in shown.json}
    # Each model's page on the site that shows it.
    assert urls == {sites.safe.id: f"{sites.double.base_url}/models/{sites.safe.id}",
                    sites.mature.id: f"{sites.double.mature_url}/models/{sites.mature.id}"}
    searches = [r.host for r in sites.double.requests if r.path == "/api/v1/models"]
    assert searches == ["api", "mature", "mature"]


def test_config_set_nsfw_switches_and_shows_both_sites(sites: TwoSites, tmp_path: Path) -> None:
    data = tmp_path / "data"
    d = sites.double
    before = run(sites, data, "config", "--json").json
    assert (before["allow_nsfw"], before["api_base"], before["mature_api_base"],
            before["site"]) == (False, d.base_url, d.mature_url, d.base_url)
    on = run(sites, data, "config", "set-nsfw", "on")
    assert on.code == 0, on.stderr
    assert f"use {d.mature_url} (then {d.base_url}" in on.stdout
    after = run(sites, data, "config", "set-nsfw", "on", "--json").json
    assert (after["allow_nsfw"], after["site"]) == (True, d.mature_url)
    text = run(sites, data, "config").stdout
    assert d.mature_url in text and "allowed" in text
    assert run(sites, data, "config", "set-nsfw", "off", "--json").json["allow_nsfw"] is False
    assert "hidden" in run(sites, data, "config").stdout
    assert run(sites, data, "config", "set-nsfw", "maybe").code == 2


def test_the_mature_site_comes_from_the_environment_and_is_checked(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    env = {"HOME": str(tmp_path), "CIVITAI_MATURE_API_BASE": "https://red.example.org/api/v1/"}
    shown = civdesk("--data-dir", data, "config", "--json", env=env)
    assert shown.code == 0, shown.stderr
    assert (shown.json["api_base"], shown.json["mature_api_base"]) == (
        "https://civitai.com", "https://red.example.org")
    # The defaults pair civitai.com with civitai.red.
    plain = civdesk("--data-dir", data, "config", "--json", env={"HOME": str(tmp_path)})
    assert plain.json["mature_api_base"] == "https://civitai.red"
    bad = civdesk("--data-dir", data, "config", env={**env, "CIVITAI_MATURE_API_BASE": "ftp://x"})
    assert bad.code == 2 and "CIVITAI_MATURE_API_BASE" in bad.stderr


def test_a_mature_link_says_how_to_allow_mature_content_then_works(
    sites: TwoSites, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    d = sites.double
    link = f"{d.mature_url}/models/{sites.mature.id}?modelVersionId={sites.mature_v.id}"
    refused = run(sites, data, "download", link, CIVITAI_API_KEY=TEST_API_KEY)
    assert refused.code == 1
    assert len(refused.error_lines) == 1
    assert "not found" in refused.stderr and "civdesk config set-nsfw on" in refused.stderr
    unknown = put(tmp_path / "loose", sites.mature_v)
    assert "set-nsfw on" in run(sites, data, "link", str(unknown), link).stderr

    assert run(sites, data, "config", "set-nsfw", "on").code == 0
    linked = run(sites, data, "link", str(unknown), link, "--json")
    assert linked.code == 0, linked.stderr
    assert entries(sites, data)[sites.mature_v.id]["model_name"] == "Night Glow"
    done = run(sites, data, "download", str(sites.mature_v.id), "--dest", str(tmp_path / "dl"),
               "--json", CIVITAI_API_KEY=TEST_API_KEY)
    assert done.code == 0, done.stderr
    downloads = [r.host for r in d.requests if r.path.startswith("/api/download/")]
    assert downloads == ["mature"]
