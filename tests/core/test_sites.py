"""Civitai's two sites: where things go, which site shows a model, lookups on both."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from civdesk.core.civitai.client import CivitaiClient
from civdesk.core.civitai.errors import NotFound
from civdesk.core.civitai.schema import Model
from civdesk.core.civitai.sites import (
    CIVITAI_SITES,
    SiteLookups,
    Sites,
    is_mature,
    paired_mature_site,
)
from civdesk.core.context import Core
from tests.double import CivitaiDouble

SAFE, RED = "https://civitai.com", "https://civitai.red"


@pytest.mark.parametrize(("level", "nsfw", "mature"), [
    (0, False, False), (1, False, False), (2, False, False), (3, False, False),
    (4, False, True), (8, False, True), (16, False, True), (31, False, True),
    (32, False, True), (None, False, False), (1, True, True),
])
def test_r_and_above_or_flagged_is_mature(level: int | None, nsfw: bool, mature: bool) -> None:
    assert is_mature(level, nsfw) is mature


def test_a_model_page_is_on_the_site_that_shows_it() -> None:
    sites = Sites(SAFE, RED + "/", allow_mature=False)
    assert sites.model_page(7) == f"{SAFE}/models/7"
    assert sites.model_page(7, 70, nsfw_level=3) == f"{SAFE}/models/7?modelVersionId=70"
    assert sites.model_page(7, 70, nsfw_level=4) == f"{RED}/models/7?modelVersionId=70"
    assert sites.model_page(7, nsfw=True) == f"{RED}/models/7"
    # The page is where the model is, whatever the setting.
    assert sites.allowing(True).model_page(7, nsfw_level=1) == f"{SAFE}/models/7"


def test_a_browsed_model_is_mature_by_itself_or_by_any_version() -> None:
    def model(level: int, version_levels: list[int]) -> Model:
        return Model.from_json({"id": 5, "name": "m", "type": "LORA", "nsfwLevel": level,
                                "modelVersions": [{"id": 50 + i, "name": "v", "nsfwLevel": v}
                                                  for i, v in enumerate(version_levels)]})

    assert CIVITAI_SITES.page_of(model(1, [1, 2])) == f"{SAFE}/models/5"
    assert CIVITAI_SITES.page_of(model(1, [1, 8])) == f"{RED}/models/5"
    assert CIVITAI_SITES.page_of(model(28, [])) == f"{RED}/models/5"


def test_the_setting_picks_the_site_and_the_lookup_order() -> None:
    hidden, allowed = Sites(SAFE, RED, False), Sites(SAFE, RED, True)
    assert (hidden.content, hidden.lookup_order) == (SAFE, (SAFE,))
    assert (allowed.content, allowed.lookup_order) == (RED, (RED, SAFE))
    assert hidden.both == allowed.both == (SAFE, RED)
    same = Sites("http://127.0.0.1:9", "http://127.0.0.1:9", True)
    assert same.lookup_order == ("http://127.0.0.1:9",)  # one server: asked once


def test_civitai_red_pairs_with_civitai_com_only() -> None:
    assert paired_mature_site(SAFE, RED) == RED
    # A mirror or a local server with no mature site of its own serves both.
    assert paired_mature_site("http://127.0.0.1:9", RED) == "http://127.0.0.1:9"
    assert paired_mature_site("http://127.0.0.1:9", "http://127.0.0.1:8") == "http://127.0.0.1:8"


@pytest.fixture
def two_sites() -> Iterator[CivitaiDouble]:
    with CivitaiDouble(two_sites=True) as double:
        yield double


def test_a_hash_the_first_site_does_not_know_is_asked_of_the_next(
    two_sites: CivitaiDouble,
) -> None:
    d = two_sites
    safe_v = d.add_version(d.add_model("Day"))
    mature_v = d.add_version(d.add_model("Night"), nsfw_level=16)
    safe_sha, mature_sha = safe_v.files[0].sha256, mature_v.files[0].sha256
    lookups = SiteLookups([CivitaiClient(d.base_url), CivitaiClient(d.mature_url)])
    try:
        found = lookups.versions_by_sha256([safe_sha, mature_sha.lower(), "0" * 64])
        assert {sha: v.id for sha, v in found.items()} == {
            safe_sha: safe_v.id, mature_sha: mature_v.id}
        # The second site was asked only for what the first did not know.
        [asked] = [r for r in d.requests if r.host == "mature"]
        assert sorted(json.loads(asked.body)) == sorted([mature_sha, "0" * 64])
        assert lookups.version_by_hash(mature_sha).id == mature_v.id
        assert lookups.get_version(mature_v.id).id == mature_v.id
        with pytest.raises(NotFound):
            lookups.version_by_hash("0" * 64)
        only_safe = SiteLookups([CivitaiClient(d.base_url)])
        assert only_safe.versions_by_sha256([mature_sha]) == {}
        clone = lookups.clone()
        assert [c.base_url for c in clone.clients] == [d.base_url, d.mature_url]
        stop = threading.Event()
        clone.stop = stop
        assert all(c.stop is stop for c in clone.clients)
        clone.close()
    finally:
        lookups.close()


def test_core_builds_clients_for_the_allowed_site(tmp_path: Path) -> None:
    core = Core.open(tmp_path / "data", api_base="http://127.0.0.1:1",
                     mature_api_base="http://127.0.0.1:2")
    try:
        assert core.client().base_url == "http://127.0.0.1:1"
        assert [c.base_url for c in core.lookup_client().clients] == ["http://127.0.0.1:1"]
        core.settings.allow_nsfw = True
        assert core.client().base_url == "http://127.0.0.1:2"
        assert core.client(mature=False).base_url == "http://127.0.0.1:1"
        assert [c.base_url for c in core.lookup_client().clients] == [
            "http://127.0.0.1:2", "http://127.0.0.1:1"]
    finally:
        core.close()
