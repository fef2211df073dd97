"""Bad data from the API, through the client, the download queue and the scanner.

The parser's own property tests live in tests/core/test_schema.py; here the junk arrives over
real HTTP and must end in a clear error or a tolerant result, never a crash or a half-done
library.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from civdesk.core.civitai.errors import MalformedResponse
from civdesk.core.downloads.queue import DownloadQueue
from civdesk.core.library.repository import Library
from civdesk.core.scanner import Scanner
from civdesk.core.settings import Settings
from tests.double import CivitaiDouble, FakeVersion
from tests.hardening.helpers import quick_client, quick_downloader, sha256_of

HTML_NAME = '<script>alert("x")</script><img src=x onerror=alert(1)> Évolution "v2" / ..\\'
HUGE = "A" * 1_000_000

Edit = Callable[[Any], Any]


def set_path(*keys: str | int, value: Any) -> Edit:
    def edit(data: Any) -> Any:
        target = data
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
        return data
    return edit


def drop(*keys: str | int) -> Edit:
    def edit(data: Any) -> Any:
        target = data
        for key in keys[:-1]:
            target = target[key]
        del target[keys[-1]]
        return data
    return edit


def each_version(edit: Edit) -> Edit:
    """The edit for a version answer, applied to each item of a by-hash list too."""
    def apply(data: Any) -> Any:
        return [edit(item) for item in data] if isinstance(data, list) else edit(data)
    return apply


def versions(d: CivitaiDouble, n: int = 2) -> list[FakeVersion]:
    model = d.add_model("Junk Test", "LORA")
    return [d.add_version(model, name=f"v{i}") for i in range(n)]


def run_queue(d: CivitaiDouble, library: Library, tmp_path: Path, vs: list[FakeVersion]
              ) -> list[Any]:
    client = quick_client(d)
    queue = DownloadQueue(library.db, client, downloader=quick_downloader(client))
    ids = [queue.add(v.id, dest_dir=tmp_path / "dl") for v in vs]
    queue.run_until_empty()
    return [queue.task(i) for i in ids]


def assert_clear(error: str | None) -> None:
    assert error and "\n" not in error and len(error) < 500, error
    assert not error.startswith("Unexpected error"), error


# -- through the client and the queue ------------------------------------------------------

JUNK: dict[str, Edit] = {
    "id is a string": set_path("id", value="12"),
    "files is an object": set_path("files", value={"0": {}}),
    "file size is text": set_path("files", 0, "sizeKB", value="big"),
    "file id missing": drop("files", 0, "id"),
    "file name is a number": set_path("files", 0, "name", value=12345),
    "hashes is a list": set_path("files", 0, "hashes", value=["SHA256"]),
    "answer is a list": lambda data: [data],
    "answer is null": lambda data: None,
}


@pytest.mark.parametrize("junk", list(JUNK), ids=list(JUNK))
def test_junk_version_fails_its_task_clearly_and_the_queue_goes_on(
    civitai: CivitaiDouble, library: Library, tmp_path: Path, junk: str
) -> None:
    bad, good = versions(civitai)
    civitai.edit_json(f"/api/v1/model-versions/{bad.id}", JUNK[junk])
    with pytest.raises(MalformedResponse) as caught:
        quick_client(civitai).get_version(bad.id)
    assert_clear(str(caught.value))
    assert "unexpected answer" in str(caught.value)
    first, second = run_queue(civitai, library, tmp_path, [bad, good])
    assert first.state == "failed" and first.error_kind == "other"
    assert_clear(first.error)
    assert second.state == "completed"


def test_malformed_json_fails_clearly_and_the_queue_goes_on(
    civitai: CivitaiDouble, library: Library, tmp_path: Path
) -> None:
    bad, good = versions(civitai)
    civitai.malformed_json(n=10, path_prefix=f"/api/v1/model-versions/{bad.id}")
    first, second = run_queue(civitai, library, tmp_path, [bad, good])
    assert first.state == "failed"
    assert_clear(first.error)
    assert "not json" in (first.error or "").lower()
    assert second.state == "completed"


TOLERATED: dict[str, Edit] = {
    "a model type from the future": set_path("model", "type", value="Hologram"),
    "an unknown base model": set_path("baseModel", value="SD 9 Turbo"),
    "a file type never seen": set_path("files", 0, "type", value="Quantum Weights"),
    "html in every name": lambda d: {**d, "name": HTML_NAME,
                                     "model": {**d["model"], "name": HTML_NAME}},
    "a huge description": set_path("description", value=HUGE),
    "unknown extra fields": lambda d: {**d, "futureField": {"x": [1, 2]}, "nsfwLevel": 999},
    "trained words are objects": set_path("trainedWords", value=[{"name": "fox"}]),
}


@pytest.mark.parametrize("drift", list(TOLERATED), ids=list(TOLERATED))
def test_drift_is_tolerated_end_to_end(
    civitai: CivitaiDouble, library: Library, tmp_path: Path, drift: str
) -> None:
    version, _ = versions(civitai)
    civitai.edit_json("/api/v1/model-versions/", each_version(TOLERATED[drift]))
    (task,) = run_queue(civitai, library, tmp_path, [version])
    assert task.state == "completed", task.error
    assert task.dest_path and sha256_of(Path(task.dest_path)) == version.files[0].sha256
    # The scanner identifies the same file with the same drifted answer, and the
    # library lists it.
    settings = Settings(library_folders=[str(tmp_path / "dl")])
    summary = Scanner(library, quick_client(civitai), settings).scan()
    assert summary.found == 1 and not summary.errors, summary
    (entry,) = library.entries()
    assert entry.version_id == version.id
    info = json.loads(Path(task.dest_path).with_suffix(".civitai.info").read_text("utf-8"))
    assert info["id"] == version.id


def test_hostile_file_names_stay_in_the_folder(
    civitai: CivitaiDouble, library: Library, tmp_path: Path
) -> None:
    model = civitai.add_model("Names", "LORA")
    hostile = ["../../escape.safetensors", "C:\\Windows\\evil.safetensors", "CON.safetensors",
               "a:b.safetensors", "\\\\server\\share\\x.safetensors", "trailing. ",
               "x" * 5000 + ".safetensors", HTML_NAME + ".safetensors"]
    vs = []
    for name in hostile:
        version = civitai.add_version(model, name=f"n{len(vs)}")
        civitai.edit_json(f"/api/v1/model-versions/{version.id}",
                          set_path("files", 0, "name", value=name))
        civitai.content_disposition(version.files[0], name)
        vs.append(version)
    tasks = run_queue(civitai, library, tmp_path, vs)
    dl = (tmp_path / "dl").resolve()
    for task, name in zip(tasks, hostile, strict=True):
        if task.state == "failed":
            assert_clear(task.error)
            continue
        assert task.state == "completed", (name, task.error)
        placed = Path(task.dest_path or "")
        assert placed.parent == dl, (name, placed)
        assert len(placed.name.encode()) <= 255
    # Nothing escaped; besides the downloads, only the open library's own files.
    in_use = tmp_path / "locks" / "database"
    assert {p.parent for p in tmp_path.rglob("*") if p.is_file()} <= {dl, tmp_path, in_use}


# -- through the scanner -------------------------------------------------------------------


def write_copies(folder: Path, vs: list[FakeVersion]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, v in enumerate(vs):
        path = folder / f"file-{i}.safetensors"
        path.write_bytes(v.files[0].read_bytes())
        paths.append(path)
    return paths


@pytest.mark.parametrize("junk", ["malformed", "not a list", "junk item"])
def test_scan_survives_a_bad_lookup_answer(
    civitai: CivitaiDouble, library: Library, tmp_path: Path, junk: str
) -> None:
    vs = versions(civitai, 3)
    paths = write_copies(tmp_path / "models", vs)
    lookup = "/api/v1/model-versions/by-hash"
    if junk == "malformed":
        civitai.malformed_json(n=100, path_prefix=lookup)
    elif junk == "not a list":
        civitai.edit_json(lookup, lambda data: {"items": data})
    else:
        civitai.edit_json(lookup, lambda data: [*data, {"id": "x", "files": 7}])
    settings = Settings(library_folders=[str(tmp_path / "models")])
    summary = Scanner(library, quick_client(civitai), settings).scan()
    assert summary.found == 3
    for error in summary.errors:
        assert_clear(error)
    # Every file is registered with its hash, identified or waiting for a later lookup.
    rows = {f.path: f for f in library.local_files()}
    assert set(rows) == {str(p) for p in paths}
    assert all(row.sha256 for row in rows.values())
    civitai.reset_faults()
    Scanner(library, quick_client(civitai), settings).scan(recheck_unknown=True)
    assert {e.version_id for e in library.entries()} == {v.id for v in vs}


def test_scan_tolerates_hostile_names_and_new_types(
    civitai: CivitaiDouble, library: Library, tmp_path: Path
) -> None:
    vs = versions(civitai, 2)
    write_copies(tmp_path / "models", vs)

    def hostile(data: Any) -> Any:
        for item in data if isinstance(data, list) else [data]:
            item["name"] = HTML_NAME
            item["model"]["name"] = HUGE
            item["model"]["type"] = "Hologram"
        return data

    civitai.edit_json("/api/v1/model-versions", hostile)
    settings = Settings(library_folders=[str(tmp_path / "models")])
    summary = Scanner(library, quick_client(civitai), settings).scan()
    assert summary.identified == 2 and not summary.errors, summary
    entries = library.entries()
    assert {e.type for e in entries} == {"Hologram"}
    assert all(e.version_name == HTML_NAME for e in entries)
    assert library.type_counts().get("Hologram") == 2
