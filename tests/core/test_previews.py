"""Previews are hostile input: a body too large is given up while it streams, and an image
whose header claims absurd dimensions is refused before anything would decode it."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest
import requests

from civdesk.core.civitai.client import CivitaiClient
from civdesk.core.civitai.errors import NotFound
from civdesk.core.civitai.schema import ModelVersion
from civdesk.core.images import MAX_IMAGE_BYTES, ImageRejected, check_image, image_dimensions
from civdesk.core.sidecars import write_companions, write_preview
from tests.double import CivitaiDouble
from tests.double.catalog import FakeImage
from tests.double.images import encode_image, png_claiming

HUGE = 200 << 20  # far over the cap; what an uncapped fetch would hold whole


@pytest.fixture(params=["direct", "requests"])
def client(request: pytest.FixtureRequest, civitai: CivitaiDouble) -> CivitaiClient:
    """Both ways fetch_image goes: its own urllib3 pool, and through requests (a session
    the caller gave, or a proxy)."""
    session = requests.Session() if request.param == "requests" else None
    return CivitaiClient(civitai.base_url, max_retries=0, backoff=0, session=session)


def version_with(d: CivitaiDouble, image: FakeImage) -> ModelVersion:
    return ModelVersion.from_json(d.version_json(d.add_version(d.add_model(), images=[image])))


@pytest.mark.parametrize("announced", [True, False], ids=["with-length", "without-length"])
def test_a_huge_preview_is_given_up_while_it_streams(
    civitai: CivitaiDouble, client: CivitaiClient, tmp_path: Path, announced: bool
) -> None:
    image = civitai.huge_image(HUGE, announce_length=announced)
    version = version_with(civitai, image)
    model = tmp_path / "big.safetensors"
    model.write_bytes(b"model")
    tracemalloc.start()
    try:
        done = write_companions(model, version, client, allow_nsfw=True)
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert not done.wrote_preview and done.preview_path is None
    assert len(done.problems) == 1 and "larger than 32 MB" in done.problems[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.civitai.info", "big.safetensors"]
    assert peak < 3 * MAX_IMAGE_BYTES  # the cap (and its one copy), never the body
    # The client stopped reading: the server sent the cap and what socket buffers hold.
    assert civitai.bytes_sent(image.path()) < MAX_IMAGE_BYTES + (16 << 20)


def test_a_huge_error_body_is_not_read_either(
    civitai: CivitaiDouble, client: CivitaiClient
) -> None:
    """A 404 whose body is 200 MB: its first bytes are enough to say what went wrong."""
    image = civitai.huge_image(HUGE, status=404)
    tracemalloc.start()
    try:
        with pytest.raises(NotFound):
            client.fetch_image(civitai.image_url(image))
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20
    assert civitai.bytes_sent(image.path()) < 16 << 20


def test_a_preview_claiming_absurd_dimensions_is_not_saved(
    civitai: CivitaiDouble, client: CivitaiClient, tmp_path: Path
) -> None:
    image = civitai.image("png")
    image.data = png_claiming(100_000, 100_000)  # 100 bytes that would decode to 10 GB
    version = version_with(civitai, image)
    model = tmp_path / "bomb.safetensors"
    model.write_bytes(b"model")
    with pytest.raises(ImageRejected, match="100000 x 100000"):
        client.fetch_image(civitai.image_url(image))
    done = write_companions(model, version, client, allow_nsfw=True)
    assert not done.wrote_preview and "100000 x 100000" in done.problems[0]
    assert not list(tmp_path.glob("bomb.preview.*"))


def test_saving_checks_what_it_is_given_too(tmp_path: Path) -> None:
    """write_preview does not trust whoever fetched the bytes."""
    model = tmp_path / "m.safetensors"
    with pytest.raises(ImageRejected, match="20000 x 20000"):
        write_preview(model, png_claiming(20_000, 20_000))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", ["png", "jpeg", "webp"])
def test_the_dimensions_of_each_format_civitai_serves_are_read(kind: str) -> None:
    encoded = encode_image(kind)
    assert image_dimensions(encoded.data) == (encoded.width, encoded.height)
    check_image(encoded.data, "it")  # a real preview passes


def test_headers_cut_short_or_no_image_state_no_dimensions() -> None:
    assert image_dimensions(png_claiming(10, 10)[:20]) is None
    assert image_dimensions(b"\xff\xd8\xff\xe0\x00\x10JFIF") is None
    assert image_dimensions(b"<html>") is None
    assert image_dimensions(png_claiming(7, 9)) == (7, 9)
