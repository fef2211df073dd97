"""Companion files: every ecosystem format read from real files, ours written atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from civdesk.core.civitai.client import CivitaiClient
from civdesk.core.civitai.schema import ModelVersion
from civdesk.core.sidecars import (
    SOURCE_A1111,
    SOURCE_CIVITAI_INFO,
    SOURCE_LORA_MANAGER,
    SOURCE_STABILITY_MATRIX,
    PreviewProblem,
    find_preview,
    info_json,
    read_sidecars,
    sniff_image,
    stem_of,
    write_companions,
    write_info,
    write_preview,
)
from tests.double import CivitaiDouble
from tests.double.catalog import FakeImage
from tests.double.images import encode_image, png_bytes

SHA = "E6836A42A778988F2579A748712ADDD65CFB88DA87D7D1EABFBB78F88E096013"
OTHER_SHA = "52F3CE42669553D0573DF3C10958E26514BDE0EF8153C7B65FD1156E47D05641"
GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,"


def version_json(version_id: int = 731204, sha: str = SHA, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": version_id,
        "modelId": 650118,
        "name": "v1.0",
        "baseModel": "SDXL 1.0",
        "trainedWords": ["paperfold style", "origami"],
        "model": {"name": "Paperfold Style", "type": "LORA", "nsfw": False, "poi": False},
        "files": [
            {
                "id": 640977,
                "name": "paperfoldStyle_v10.safetensors",
                "sizeKB": 1.5,
                "type": "Model",
                "primary": True,
                "hashes": {"SHA256": sha, "AutoV2": sha[:10]},
            }
        ],
        "images": [
            {"url": "https://image.civitai.com/x/y/width=450/1.jpeg", "nsfwLevel": 8},
            {"url": "https://image.civitai.com/x/z/width=450/2.jpeg", "nsfwLevel": 1},
        ],
    }
    data.update(extra)
    return data


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "paperfold.v1.safetensors"
    path.write_bytes(b"\0" * 128)
    return path


def put(path: Path, data: Any) -> None:
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")


def test_stem_drops_only_the_last_extension() -> None:
    assert stem_of(Path("a/paperfold.v1.safetensors")) == "paperfold.v1"
    assert stem_of(Path("noext")) == "noext"


def test_no_companions(model: Path) -> None:
    found = read_sidecars(model)
    assert found.infos == [] and found.preview is None and found.notes == []
    assert found.identifying() is None


def test_civitai_info_gives_the_version(model: Path) -> None:
    put(model.with_name("paperfold.v1.civitai.info"), version_json())
    found = read_sidecars(model)
    info = found.identifying()
    assert info is not None and info.source == SOURCE_CIVITAI_INFO
    assert (info.version_id, info.model_id) == (731204, 650118)
    assert info.model_name == "Paperfold Style" and info.model_type == "LORA"
    assert info.trained_words == ("paperfold style", "origami")
    assert info.version_json is not None and info.version_json["baseModel"] == "SDXL 1.0"
    assert info.agrees_with(SHA.lower()) and not info.agrees_with(OTHER_SHA)
    version = info.version()
    assert isinstance(version, ModelVersion) and version.id == 731204


def test_empty_civitai_info_is_the_not_on_civitai_marker(model: Path) -> None:
    put(model.with_name("paperfold.v1.civitai.info"), "{}")
    found = read_sidecars(model)
    assert found.not_on_civitai and found.identifying() is None and not found.notes


def test_stability_matrix_cm_info(model: Path) -> None:
    put(
        model.with_name("paperfold.v1.cm-info.json"),
        {
            "ModelId": 650118,
            "ModelName": "Paperfold Style",
            "ModelDescription": "<p>x</p>",
            "Nsfw": False,
            "Tags": ["style"],
            "ModelType": "LORA",
            "VersionId": 731204,
            "VersionName": "v1.0",
            "BaseModel": "SDXL 1.0",
            "ImportedAt": "2024-08-03T10:00:00+00:00",
            "Hashes": {"SHA256": SHA.lower(), "BLAKE3": None, "CRC32": None},
            "TrainedWords": ["paperfold style"],
        },
    )
    info = read_sidecars(model).identifying()
    assert info is not None and info.source == SOURCE_STABILITY_MATRIX
    assert (info.version_id, info.model_id, info.sha256) == (731204, 650118, SHA)
    assert info.trained_words == ("paperfold style",) and info.model_type == "LORA"
    assert info.version_json is None


def test_old_stability_matrix_without_optional_fields(model: Path) -> None:
    put(model.with_name("paperfold.v1.cm-info.json"), {"ModelId": 1, "VersionId": 2})
    info = read_sidecars(model).identifying()
    assert info is not None and (info.model_id, info.version_id, info.sha256) == (1, 2, None)


def test_lora_manager_metadata(model: Path) -> None:
    put(
        model.with_name("paperfold.v1.metadata.json"),
        {
            "file_name": "paperfold.v1",
            "model_name": "Paperfold Style",
            "file_path": str(model).replace("\\", "/"),
            "size": 128,
            "modified": 1722600000.5,
            "sha256": SHA.lower(),
            "base_model": "SDXL 1.0",
            "from_civitai": True,
            "civitai": version_json(),
            "tags": ["style"],
            "usage_tips": '{"strength":0.8}',
        },
    )
    info = read_sidecars(model).identifying(SHA)
    assert info is not None and info.source == SOURCE_LORA_MANAGER
    assert info.sha256 == SHA and info.version_id == 731204 and info.version_json is not None


def test_lora_manager_without_civitai_gives_only_the_hash(model: Path) -> None:
    put(
        model.with_name("paperfold.v1.metadata.json"),
        {"sha256": SHA.lower(), "from_civitai": False, "db_checked": True, "civitai": {}},
    )
    found = read_sidecars(model)
    assert found.identifying() is None
    assert found.infos[0].sha256 == SHA and found.not_on_civitai


def test_a1111_user_metadata_gives_trigger_words_only(model: Path) -> None:
    put(
        model.with_name("paperfold.v1.json"),
        {"description": "", "activation text": "paperfold style, origami ,", "sd version": "SDXL",
         "preferred weight": 0.8, "negative text": "", "notes": ""},
    )
    found = read_sidecars(model)
    assert found.identifying() is None
    assert found.infos[0].source == SOURCE_A1111 and found.infos[0].base_model == "SDXL"
    assert found.trained_words == ("paperfold style", "origami")


def test_unrelated_json_with_the_model_stem_is_not_a_sidecar(model: Path) -> None:
    put(model.with_name("paperfold.v1.json"), {"_class_name": "UNet2DConditionModel"})
    found = read_sidecars(model)
    assert found.infos == [] and found.notes == []


@pytest.mark.parametrize(
    ("suffix", "content"),
    [
        (".civitai.info", "{not json"),
        (".civitai.info", "[1, 2]"),
        (".civitai.info", '{"id": "seven"}'),
        (".cm-info.json", "\x00\x01garbage"),
        (".metadata.json", '{"civitai": {"id": 5, "files": "nope"}}'),
        (".json", "null"),
    ],
)
def test_malformed_sidecars_are_ignored_with_a_note(model: Path, suffix: str, content: str) -> None:
    put(model.with_name("paperfold.v1" + suffix), content)
    found = read_sidecars(model)
    assert found.identifying() is None
    assert len(found.notes) == 1 and "paperfold.v1" + suffix in found.notes[0]


def test_strongest_agreeing_sidecar_wins(model: Path) -> None:
    put(model.with_name("paperfold.v1.civitai.info"), version_json(999, sha=OTHER_SHA))
    put(model.with_name("paperfold.v1.cm-info.json"), {"ModelId": 1, "VersionId": 731204,
                                                        "Hashes": {"SHA256": SHA}})
    found = read_sidecars(model)
    assert found.identifying().version_id == 999  # type: ignore[union-attr]
    # Given the real hash, the civitai.info lies (it lists another file) and loses.
    assert found.identifying(SHA).version_id == 731204  # type: ignore[union-attr]
    assert found.identifying("0" * 64) is None


def test_a_bom_is_tolerated(model: Path) -> None:
    model.with_name("paperfold.v1.civitai.info").write_bytes(
        b"\xef\xbb\xbf" + json.dumps(version_json()).encode()
    )
    assert read_sidecars(model).identifying() is not None


def test_preview_lookup_order(model: Path) -> None:
    assert find_preview(model) is None
    for suffix in (".gif", ".png", ".preview.jpeg", ".preview.png", ".webp"):
        model.with_name("paperfold.v1" + suffix).write_bytes(b"x")
        assert find_preview(model) == model.with_name("paperfold.v1" + suffix)


def test_preview_lookup_from_a_listing_needs_no_disk(tmp_path: Path) -> None:
    model = tmp_path / "absent" / "m.safetensors"
    siblings = ["m.safetensors", "m.PREVIEW.PNG", "m.civitai.info"]
    assert find_preview(model, siblings) == model.with_name("m.PREVIEW.PNG")


@pytest.mark.parametrize("kind", ["png", "jpeg", "webp"])
def test_sniff_real_images(kind: str) -> None:
    assert sniff_image(encode_image(kind).data) == kind


def test_sniff_gif_and_non_images() -> None:
    assert sniff_image(GIF) == "gif"
    assert sniff_image(b"<html>") is None
    assert sniff_image(b"") is None


def test_write_info_is_pretty_and_leaves_no_temp_file(model: Path) -> None:
    path = write_info(model, version_json())
    assert path == model.with_name("paperfold.v1.civitai.info")
    text = path.read_text(encoding="utf-8")
    assert json.loads(text)["id"] == 731204 and "\n  " in text
    assert sorted(p.name for p in model.parent.iterdir()) == sorted(
        [model.name, path.name]
    )


def test_write_preview_uses_the_sniffed_extension(model: Path) -> None:
    webp = encode_image("webp").data
    path = write_preview(model, webp)
    assert path.name == "paperfold.v1.preview.webp" and path.read_bytes() == webp
    with pytest.raises(PreviewProblem):
        write_preview(model, b"<html>not an image</html>")


@pytest.fixture
def client(civitai: CivitaiDouble) -> CivitaiClient:
    return CivitaiClient(civitai.base_url, max_retries=0, backoff=0)


def served_version(d: CivitaiDouble, images: list[FakeImage]) -> ModelVersion:
    fake = d.add_version(d.add_model(), images=images)
    return ModelVersion.from_json(d.version_json(fake))


def image_fetches(d: CivitaiDouble) -> list[str]:
    return [r.path for r in d.requests if r.host == "storage"]


def test_write_companions_picks_the_allowed_image_by_its_real_format(
    model: Path, civitai: CivitaiDouble, client: CivitaiClient
) -> None:
    nsfw, sfw = civitai.image("png", nsfw_level=8), civitai.image("webp", served_as="jpeg")
    version = served_version(civitai, [nsfw, sfw])
    done = write_companions(model, version, client, allow_nsfw=False)
    assert image_fetches(civitai) == [sfw.path()]
    assert done.wrote_info and done.wrote_preview and not done.problems
    assert done.preview_path == model.with_name("paperfold.v1.preview.webp")
    assert done.preview_path.read_bytes() == sfw.data  # type: ignore[union-attr]
    assert json.loads(done.info_path.read_text()) == dict(version.raw)  # type: ignore[union-attr]


def test_write_companions_only_writes_what_is_missing(
    model: Path, civitai: CivitaiDouble, client: CivitaiClient
) -> None:
    version = served_version(civitai, [civitai.image("png")])
    write_info(model, version.raw)
    model.with_name("paperfold.v1.png").write_bytes(png_bytes())
    done = write_companions(model, version, client, allow_nsfw=True)
    assert not done.wrote_info and not done.wrote_preview and image_fetches(civitai) == []
    assert done.preview_path == model.with_name("paperfold.v1.png")


def test_write_companions_replaces_a_marker_or_stale_info(model: Path) -> None:
    put(model.with_name("paperfold.v1.civitai.info"), "{}")
    version = ModelVersion.from_json(version_json())
    assert write_companions(model, version, None, allow_nsfw=False).wrote_info
    put(model.with_name("paperfold.v1.civitai.info"), version_json(5))
    assert write_companions(model, version, None, allow_nsfw=False).wrote_info
    assert json.loads(model.with_name("paperfold.v1.civitai.info").read_text())["id"] == 731204


def test_failed_image_fetch_still_writes_the_info(
    model: Path, civitai: CivitaiDouble, client: CivitaiClient
) -> None:
    version = served_version(civitai, [civitai.image("png")])
    civitai.fail(status=404, n=5)
    done = write_companions(model, version, client, allow_nsfw=True)
    assert done.wrote_info and done.preview_path is None and not done.wrote_preview
    assert len(done.problems) == 1 and "paperfold.v1.safetensors" in done.problems[0]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX fork")
def test_temp_names_follow_a_fork(tmp_path: Path) -> None:
    """The process id in companion temp names is kept, not asked per file; a forked child
    must not reuse its parent's (two processes would race for one temp name)."""
    from civdesk.core.sidecars import _atomic_write, _Pid

    assert _Pid.value == os.getpid()
    pid = os.fork()
    if pid == 0:  # the child: report through the exit code only
        ok = _Pid.value == os.getpid()
        try:
            _atomic_write(tmp_path / "child.civitai.info", b"{}")
        except BaseException:
            ok = False
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert (tmp_path / "child.civitai.info").read_bytes() == b"{}"
    assert [p.name for p in tmp_path.iterdir()] == ["child.civitai.info"]  # no temp left


def test_an_info_file_has_one_field_per_line_and_reads_back_the_same() -> None:
    version = {
        "id": 7, "name": "v1 — ünïcode", "nsfw": False, "poi": True, "air": None,
        "stats": {"rating": 4.75, "downloadCount": 12}, "trainedWords": ["a", "b \"q\""],
        "files": [{"hashes": {"SHA256": "AB"}, "sizeKB": 1.5, "metadata": {}}], "images": [],
    }
    text = info_json(version)
    assert json.loads(text) == version
    assert text.splitlines() == [
        "{",
        '  "id": 7,',
        '  "name": "v1 — ünïcode",',
        '  "nsfw": false,',
        '  "poi": true,',
        '  "air": null,',
        '  "stats": {"rating": 4.75, "downloadCount": 12},',
        '  "trainedWords": ["a", "b \\"q\\""],',
        '  "files": [{"hashes": {"SHA256": "AB"}, "sizeKB": 1.5, "metadata": {}}],',
        '  "images": []',
        "}",
    ]
    assert info_json({}) == "{}\n"


def test_the_companions_of_a_model_with_a_very_long_name_are_written(tmp_path: Path) -> None:
    stem = "é" * 116  # 232 bytes: the longest stem whose .civitai.info still fits 255
    model = tmp_path / f"{stem}.safetensors"
    model.write_bytes(b"x")
    path = write_info(model, {"id": 7, "name": "v1"})
    assert len(os.fsencode(path.name)) <= 255
    assert json.loads(path.read_text(encoding="utf-8"))["id"] == 7
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([model.name, path.name])
