"""Parsing what people paste into "Add download"."""

from __future__ import annotations

import pytest

from civdesk.core.civitai.refs import BadReference, ModelRef, parse_ref
from civdesk.core.errors import CivdeskError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12345", ModelRef(version_id=12345)),
        ("  12345\n", ModelRef(version_id=12345)),
        ("model:123", ModelRef(model_id=123)),
        ("Model: 123", ModelRef(model_id=123)),
        ("version:456", ModelRef(version_id=456)),
        ("https://civitai.com/models/123/some-slug?modelVersionId=456",
         ModelRef(model_id=123, version_id=456)),
        ("https://civitai.com/models/123", ModelRef(model_id=123)),
        ("https://civitai.com/models/123/slug", ModelRef(model_id=123)),
        ("http://www.civitai.com/models/123/?modelVersionId=9", ModelRef(123, 9)),
        ("https://civitai.green/models/77", ModelRef(model_id=77)),
        # Mature models live on civitai.red since April 2026: the links people copy.
        ("https://civitai.red/models/123/some-slug?modelVersionId=456", ModelRef(123, 456)),
        ("https://www.civitai.red/models/77", ModelRef(model_id=77)),
        ("civitai.red/models/77?modelVersionId=78", ModelRef(77, 78)),
        ("https://civitai.red/api/download/models/456", ModelRef(version_id=456)),
        ("civitai.com/api/download/models/456", ModelRef(version_id=456)),
        ("https://civitai.com/api/download/models/456?type=VAE&format=SafeTensor",
         ModelRef(version_id=456)),
        ("https://civitai.com/api/v1/model-versions/456", ModelRef(version_id=456)),
        ("https://civitai.com/api/v1/models/123", ModelRef(model_id=123)),
        ("urn:air:sdxl:lora:civitai:123@456", ModelRef(model_id=123, version_id=456)),
        ("urn:air:sd1:checkpoint:civitai:123", ModelRef(model_id=123)),
        ("urn:air:flux1:lora:civitai:123@456.safetensors", ModelRef(123, 456)),
    ],
)
def test_accepted_forms(text: str, expected: ModelRef) -> None:
    assert parse_ref(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "abc",
        "0",
        "-5",
        "12.5",
        "model:",
        "model:abc",
        "https://example.com/models/123",
        "https://civitai.com.evil.example/models/123",
        "https://civitai.red.evil.example/models/123",
        "https://notcivitai.red/models/123",
        "https://civitai.com/user/someone",
        "https://civitai.com/models/abc",
        "ftp://civitai.com/models/123",
        "urn:air:sdxl:lora:huggingface:123@456",
        "1" * 40,
    ],
)
def test_junk_is_refused_with_a_hint(text: str) -> None:
    with pytest.raises(BadReference) as info:
        parse_ref(text)
    assert isinstance(info.value, CivdeskError)
    message = str(info.value)
    assert "\n" not in message
    assert "model:<id>" in message


@pytest.mark.parametrize("version", ["x", "abc", "", "0", "-1", "12.5"])
def test_a_garbled_version_in_a_model_link_is_refused(version: str) -> None:
    # Not "the latest version": the link names a version, just not readably.
    with pytest.raises(BadReference, match=r"modelVersionId .* is not a version id"):
        parse_ref(f"https://civitai.com/models/1000?modelVersionId={version}")


def test_links_to_the_configured_site_are_accepted() -> None:
    site = "http://127.0.0.1:8765"
    assert parse_ref("http://127.0.0.1:8765/models/1002?modelVersionId=50003", site) == ModelRef(
        model_id=1002, version_id=50003)
    assert parse_ref("http://127.0.0.1:8765/api/download/models/7", site) == ModelRef(
        version_id=7)
    assert parse_ref("https://civitai.com/models/3", site) == ModelRef(model_id=3)


@pytest.mark.parametrize(("text", "site"), [
    ("http://127.0.0.1:8765/models/1002", None),
    ("http://127.0.0.1:8765/models/1002", "http://127.0.0.1:9999"),
    ("http://127.0.0.1/models/1002", "http://127.0.0.1:8765"),
    ("http://127.0.0.1:x/models/1002", "http://127.0.0.1:8765"),
    ("https://example.com/models/1002", "not a url"),
])
def test_links_to_other_sites_are_still_refused(text: str, site: str | None) -> None:
    with pytest.raises(BadReference, match="Not a Civitai model reference"):
        parse_ref(text, site)


def test_a_ref_needs_an_id() -> None:
    with pytest.raises(ValueError):
        ModelRef()
    assert ModelRef(version_id=3).is_version
    assert not ModelRef(model_id=3).is_version
