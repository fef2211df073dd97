"""Models Civitai removed (archived, taken down, a version unpublished, a 410 download):
marked "removed from Civitai" in the library, which keeps everything it had of them.

Against the double with both sites: civitai.com leaves mature models out (404s), which
must never pass for a removal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_API_KEY
from tests.e2e.test_two_sites import TwoSites, entries, run, sites  # noqa: F401 (fixture)
from tests.e2e.test_two_sites import library as models_folder  # noqa: F401 (fixture)


def scanned(two: TwoSites, library: Path, data: Path) -> dict[int | None, dict[str, Any]]:
    """Both models scanned and identified (mature content allowed), with their companions."""
    assert run(two, data, "config", "set-nsfw", "on").code == 0
    done = run(two, data, "scan", str(library), "--json")
    assert done.code == 0, done.stderr
    assert (done.json["identified"], done.json["unknown"]) == (2, 0)
    found = entries(two, data)
    assert all(e["info"] and e["preview"] and not e["removed"] for e in found.values())
    return found


def companions(entry: dict[str, Any]) -> dict[str, bytes]:
    return {p: Path(p).read_bytes() for p in (entry["info"], entry["preview"])}


@pytest.mark.parametrize("how", ["archived", "taken down"])
def test_a_model_removed_after_the_scan_keeps_everything_and_is_marked(
    sites: TwoSites, models_folder: Path, tmp_path: Path, how: str  # noqa: F811
) -> None:
    data = tmp_path / "data"
    before = scanned(sites, models_folder, data)[sites.safe_v.id]
    kept = companions(before)
    if how == "archived":
        sites.double.archive(sites.safe)
    else:
        sites.double.take_down(sites.safe)

    # The update check is what learns of it: Civitai's answer lists no files any more.
    checked = run(sites, data, "updates", "--force")
    assert checked.code == 0, checked.stderr
    after = entries(sites, data)[sites.safe_v.id]
    assert after["removed"] is True and after["removed_how"] == how and after["removed_at"]
    same = {k: v for k, v in after.items() if not k.startswith("removed")}
    assert same == {k: v for k, v in before.items() if not k.startswith("removed")}
    assert companions(after) == kept  # byte for byte
    assert not entries(sites, data)[sites.mature_v.id]["removed"]

    # A rescan rewriting a lost .civitai.info writes what the library stored, with the
    # files and hashes Civitai no longer lists.
    Path(after["info"]).unlink()
    rescan = run(sites, data, "scan", "--json")
    assert rescan.code == 0, rescan.stderr
    info = json.loads(Path(after["info"]).read_text())
    assert info["files"] and info["files"][0]["hashes"]["SHA256"] == sites.safe_v.files[0].sha256
    assert info["images"] and info["trainedWords"] == ["daylight"]
    assert entries(sites, data)[sites.safe_v.id]["removed"]

    listed = run(sites, data, "list")
    line = next(x for x in listed.stdout.splitlines() if "Daylight" in x)
    assert line.endswith("[removed from Civitai]")
    assert "1 file removed from Civitai" in listed.stdout
    only = run(sites, data, "list", "--removed", "--json")
    assert [e["version_id"] for e in only.json] == [sites.safe_v.id]


def test_update_checks_skip_removed_models_until_civitai_puts_one_back(
    sites: TwoSites, models_folder: Path, tmp_path: Path  # noqa: F811
) -> None:
    data = tmp_path / "data"
    scanned(sites, models_folder, data)
    sites.double.archive(sites.safe)
    assert run(sites, data, "updates", "--force").code == 0
    sites.double.add_version(sites.safe, "v2")  # an "update" of a removed model
    sites.double.clear_requests()

    again = run(sites, data, "updates", "--force", "--json")
    assert again.code == 0, again.stderr
    asked = [r.query.get("ids", "") for r in sites.double.requests
             if r.path == "/api/v1/models"]
    assert asked == [str(sites.mature.id)]  # the removed one is not asked about
    assert again.json == []
    text = run(sites, data, "updates", "--force")
    assert "1 model removed from Civitai not checked" in text.stdout


def test_a_mature_model_the_safe_site_does_not_show_is_not_marked_removed(
    sites: TwoSites, models_folder: Path, tmp_path: Path  # noqa: F811
) -> None:
    data = tmp_path / "data"
    scanned(sites, models_folder, data)
    assert run(sites, data, "config", "set-nsfw", "off").code == 0

    # civitai.com leaves the mature model out of /models?ids= and answers 404 for it.
    assert run(sites, data, "updates", "--force").code == 0
    failed = run(sites, data, "download", str(sites.mature_v.id), "--dest",
                 str(tmp_path / "dl"), CIVITAI_API_KEY=TEST_API_KEY)
    assert failed.code != 0
    assert not any(e["removed"] for e in entries(sites, data).values())
    # It was asked of the site with all content, which has it.
    assert any(r.host == "mature" and r.path == f"/api/v1/model-versions/{sites.mature_v.id}"
               for r in sites.double.requests)


def test_a_version_civitai_no_longer_has_is_marked_unpublished(
    sites: TwoSites, models_folder: Path, tmp_path: Path  # noqa: F811
) -> None:
    data = tmp_path / "data"
    before = scanned(sites, models_folder, data)[sites.safe_v.id]
    kept = companions(before)
    assert run(sites, data, "config", "set-nsfw", "off").code == 0
    sites.double.unpublish(sites.safe_v)

    failed = run(sites, data, "download", str(sites.safe_v.id), "--dest",
                 str(tmp_path / "dl"), CIVITAI_API_KEY=TEST_API_KEY)
    assert failed.code != 0
    after = entries(sites, data)[sites.safe_v.id]
    assert after["removed"] and after["removed_how"] == "unpublished"
    assert companions(after) == kept
    assert not entries(sites, data)[sites.mature_v.id]["removed"]


def test_a_download_answered_410_fails_with_one_message_and_marks_the_model(
    sites: TwoSites, models_folder: Path, tmp_path: Path  # noqa: F811
) -> None:
    data = tmp_path / "data"
    scanned(sites, models_folder, data)
    sites.double.gone_download(sites.safe)  # its JSON still lists the file (edge cache)

    failed = run(sites, data, "download", str(sites.safe_v.id), "--dest",
                 str(tmp_path / "dl"), CIVITAI_API_KEY=TEST_API_KEY)
    assert failed.code != 0
    assert len(failed.error_lines) == 1, failed.stderr
    assert "archived on Civitai" in failed.stderr
    assert not list((tmp_path / "dl").glob("*.safetensors"))
    after = entries(sites, data)[sites.safe_v.id]
    assert after["removed"] and after["removed_how"] == "archived"
