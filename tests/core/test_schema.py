"""The parsers accept the documented shapes, tolerate drift and reject wrong types clearly."""

from __future__ import annotations

import contextlib
import copy
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from civdesk.core.civitai.errors import MalformedResponse
from civdesk.core.civitai.schema import (
    Model,
    ModelFile,
    ModelVersion,
    SearchPage,
    SearchQuery,
    early_access_until,
)

SHA = "E6836A42A778988F2579A748712ADDD65CFB88DA87D7D1EABFBB78F88E096013"

VERSION = {
    "id": 731204,
    "modelId": 650118,
    "name": "v1.0",
    "description": "<p>First release.</p>",
    "baseModel": "SDXL 1.0",
    "createdAt": "2024-08-02T14:05:11.381Z",
    "trainedWords": ["paperfold style", "origami"],
    "earlyAccessEndsAt": None,
    "stats": {"downloadCount": 4821},
    "model": {"name": "Paperfold Style", "type": "LORA", "nsfw": False, "poi": False},
    "files": [
        {
            "id": 640977,
            "name": "paperfoldStyle_v10.safetensors",
            "sizeKB": 223098.4140625,
            "type": "Model",
            "primary": True,
            "metadata": {"format": "SafeTensor", "size": None, "fp": "fp16"},
            "hashes": {"AutoV2": "E6836A42A7", "SHA256": SHA, "Blake3": "ab" * 32},
            "downloadUrl": "https://civitai.com/api/download/models/731204",
        }
    ],
    "images": [
        {"url": "https://image.civitai.com/a/b/width=450/1.jpeg", "nsfwLevel": 8, "type": "image"},
        {"url": "https://image.civitai.com/a/c/width=450/2.jpeg", "nsfwLevel": 1, "type": "image"},
    ],
    "downloadUrl": "https://civitai.com/api/download/models/731204",
    "someFutureField": {"anything": [1, 2, 3]},
}


def test_version_parses_documented_fields() -> None:
    v = ModelVersion.from_json(VERSION)
    assert (v.id, v.model_id, v.base_model) == (731204, 650118, "SDXL 1.0")
    assert v.trained_words == ["paperfold style", "origami"]
    assert v.model is not None and v.model.type == "LORA"
    f = v.primary_file
    assert f is not None and f.sha256 == SHA and f.metadata.fp == "fp16"
    assert f.size_bytes == round(223098.4140625 * 1024)
    assert f.hashes["BLAKE3"] == "AB" * 32  # the scanner's spelling is normalised
    assert v.file_with_hash(SHA.lower()) is f
    assert v.raw["someFutureField"] == {"anything": [1, 2, 3]}  # kept verbatim for sidecars


def file_scanned(pickle: str | None, virus: str | None, message: str | None = None) -> ModelFile:
    data = copy.deepcopy(VERSION["files"][0])  # type: ignore[index]
    data.update({"name": "old.ckpt", "pickleScanResult": pickle, "virusScanResult": virus,
                 "pickleScanMessage": message})
    return ModelFile.from_json(data)


def test_a_file_civitai_flagged_says_why() -> None:
    assert file_scanned("Success", "Success", "No Pickle imports").danger is None
    assert file_scanned("Pending", "Pending").danger is None  # not scanned yet: no verdict
    assert file_scanned(None, None).danger is None  # older answers carry no scan fields
    pickle = file_scanned("Danger", "Success", "Dangerous import detected: os.system")
    assert pickle.pickle_scan_message == "Dangerous import detected: os.system"
    assert pickle.danger == ("Civitai's pickle scan found code in old.ckpt that would run "
                             "when it is loaded: Dangerous import detected: os.system")
    assert file_scanned("Success", "Danger").danger == (
        "Civitai's virus scan flagged old.ckpt as dangerous")


def test_early_access_until_is_a_date_only_while_it_lasts() -> None:
    now = datetime(2026, 12, 5, 12, 0, tzinfo=timezone.utc)
    assert early_access_until("2026-12-10T08:30:00.000Z", now) == "2026-12-10"
    assert early_access_until("2026-12-10T08:30:00", now) == "2026-12-10"  # no zone: UTC
    assert early_access_until("2026-12-05T11:59:59.000Z", now) is None  # just over
    assert early_access_until(None, now) is None
    assert early_access_until("soon", now) is None
    version = ModelVersion(id=1, model_id=2, name="v1",
                           early_access_ends_at="2026-12-10T08:30:00.000Z")
    assert version.early_access_until(now) == "2026-12-10"


def test_early_access_text_has_the_date_or_says_early_access_without_one() -> None:
    now = datetime(2026, 12, 5, 12, 0, tzinfo=timezone.utc)
    dated = ModelVersion(id=1, model_id=2, name="v1", availability="EarlyAccess",
                         early_access_ends_at="2026-12-10T08:30:00.000Z")
    assert dated.early_access_text(now) == "early access until 2026-12-10"
    undated = ModelVersion(id=1, model_id=2, name="v1", availability="EarlyAccess")
    assert undated.early_access_text(now) == "early access"
    over = ModelVersion(id=1, model_id=2, name="v1", availability="EarlyAccess",
                        early_access_ends_at="2026-12-01T00:00:00.000Z")
    assert over.early_access_text(now) is None  # the date rules: it is over
    assert ModelVersion(id=1, model_id=2, name="v1", availability="Public"
                        ).early_access_text(now) is None


def test_preview_respects_nsfw_setting() -> None:
    v = ModelVersion.from_json(VERSION)
    assert v.preview_image(allow_nsfw=False).url.endswith("/2.jpeg")
    assert v.preview_image(allow_nsfw=True).url.endswith("/1.jpeg")


def test_missing_optional_fields_are_tolerated() -> None:
    v = ModelVersion.from_json({"id": 1})
    assert v.files == [] and v.images == [] and v.model is None and v.primary_file is None


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("id",), "731204", "modelVersion.id"),
        (("files", 0, "sizeKB"), "big", "modelVersion.files[0].sizeKB"),
        (("files", 0, "id"), True, "modelVersion.files[0].id"),
        (("trainedWords",), "not a list", "modelVersion.trainedWords"),
        (("images", 0, "url"), None, "modelVersion.images[0].url"),
    ],
)
def test_wrong_types_name_the_field(path: tuple, value: object, field: str) -> None:
    data = copy.deepcopy(VERSION)
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(MalformedResponse, match=field.replace("[", r"\[").replace("]", r"\]")):
        ModelVersion.from_json(data)


def test_primary_file_falls_back_to_type_preference() -> None:
    data = copy.deepcopy(VERSION)
    data["files"] = [
        {"id": 1, "name": "a.zip", "type": "Training Data"},
        {"id": 2, "name": "b.safetensors", "type": "Pruned Model"},
    ]
    assert ModelVersion.from_json(data).primary_file.id == 2


def test_search_page_and_unknown_model_type() -> None:
    page = SearchPage.from_json(
        {
            "items": [
                {
                    "id": 412233,
                    "name": "Harbor Light XL",
                    "type": "SomeNewType",
                    "tags": ["a", {"name": "legacy"}],
                    "creator": {"username": "harborworks", "image": None},
                    "stats": {"downloadCount": 98231},
                    "modelVersions": [dict(VERSION, model=None)],
                }
            ],
            "metadata": {"nextCursor": "98231|412233", "nextPage": "https://x/?cursor=1"},
        }
    )
    model = page.items[0]
    assert model.type == "SomeNewType" and model.tags == ["a", "legacy"]
    assert page.has_more and page.next_cursor == "98231|412233"
    v = model.with_version_model(model.latest_version)
    assert v.model.name == "Harbor Light XL" and v.model_id == 650118


def test_end_of_paging() -> None:
    assert not SearchPage.from_json({"items": [], "metadata": {}}).has_more


def test_query_params_repeat_types_and_send_nsfw() -> None:
    params = SearchQuery(query="fox", types=("LORA", "LoCon"), base_models=("SDXL 1.0",)).params()
    assert ("types", "LORA") in params and ("types", "LoCon") in params
    assert ("baseModels", "SDXL 1.0") in params and ("nsfw", "false") in params


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)


# The machine may be busy; these checks are about correctness, not speed.
relaxed = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _leaf_paths(value: object, prefix: tuple = ()) -> list[tuple]:
    if isinstance(value, dict):
        return [prefix] + [p for k, v in value.items() for p in _leaf_paths(v, (*prefix, k))]
    if isinstance(value, list):
        return [prefix] + [p for i, v in enumerate(value) for p in _leaf_paths(v, (*prefix, i))]
    return [prefix]


VERSION_PATHS = [p for p in _leaf_paths(VERSION) if p]


@relaxed
@given(st.sampled_from(VERSION_PATHS), json_values)
def test_any_field_replaced_by_junk_parses_or_fails_clearly(path: tuple, junk: object) -> None:
    """Whatever the server puts in any field, the parser returns a version or raises
    MalformedResponse; never a KeyError or TypeError from deep inside."""
    data = copy.deepcopy(VERSION)
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = junk
    with contextlib.suppress(MalformedResponse):
        ModelVersion.from_json(data)


@relaxed
@given(json_values)
def test_random_model_json_never_crashes(data: object) -> None:
    with contextlib.suppress(MalformedResponse):
        Model.from_json(data)
