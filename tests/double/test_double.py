"""Tests of the Civitai double itself: endpoints, field shapes, downloads and fault switches."""

from __future__ import annotations

import hashlib
import http.client
import time
import zlib
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.double import CivitaiDouble, SampleCatalog, make_safetensors

KEY = "test-key"


def api(d: CivitaiDouble, path: str, **kwargs: object) -> requests.Response:
    return requests.get(d.base_url + "/api/v1" + path, timeout=5, **kwargs)  # type: ignore[arg-type]


def download(d: CivitaiDouble, version_id: int, query: str = "", **kwargs: object):
    url = f"{d.base_url}/api/download/models/{version_id}{query}"
    kwargs.setdefault("timeout", 5)
    return requests.get(url, **kwargs)  # type: ignore[arg-type]


# -- /models --------------------------------------------------------------------------------


def test_models_list_shape_and_headers(civitai_catalog: SampleCatalog) -> None:
    d = civitai_catalog.double
    r = api(d, "/models")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json; charset=utf-8"
    body = r.json()
    assert {m["id"] for m in body["items"]} == {m.id for m in civitai_catalog.models}
    lora = next(m for m in body["items"] if m["id"] == civitai_catalog.lora.id)
    assert lora == d.model_json(civitai_catalog.lora)
    assert [v["name"] for v in lora["modelVersions"]] == ["v2.0", "v1.0"]  # newest first
    assert lora["creator"]["username"] == "foldworks"
    assert "model" not in lora["modelVersions"][0]


def test_list_form_primary_flag_and_original_images(civitai_catalog: SampleCatalog) -> None:
    d = civitai_catalog.double
    (item,) = api(d, "/models", params={"ids": str(civitai_catalog.checkpoint.id)}).json()["items"]
    files = item["modelVersions"][0]["files"]
    assert files[0]["primary"] is True
    assert "primary" not in files[1]  # /models omits the key for non-primary files
    image = item["modelVersions"][0]["images"][0]
    assert "/original=true/" in image["url"] and "id" in image
    assert image["url"].startswith(d.storage_url)
    only_primary = api(d, "/models", params={"ids": item["id"], "primaryFileOnly": "true"})
    assert len(only_primary.json()["items"][0]["modelVersions"][0]["files"]) == 1


def test_models_filters(civitai_catalog: SampleCatalog) -> None:
    d = civitai_catalog.double
    c = civitai_catalog

    def ids(**params: object) -> set[int]:
        r = api(d, "/models", params=params)
        assert r.status_code == 200, r.text
        return {m["id"] for m in r.json()["items"]}

    assert ids(query="paperFOLD") == {c.lora.id}
    assert ids(tag="ORIGAMI") == {c.lora.id}
    assert ids(username="harborworks") == {c.checkpoint.id, c.vae.id}
    assert ids(types=["LORA", "VAE"]) == {c.lora.id, c.vae.id}
    assert ids(types="LORA,TextualInversion") == {c.lora.id, c.embedding.id}
    assert ids(baseModels="SDXL 1.0") == {c.checkpoint.id}
    assert ids(ids=f"{c.vae.id},{c.lora.id}") == {c.lora.id, c.vae.id}
    assert api(d, "/models", params={"types": "Lora"}).status_code == 400  # casing is exact


def test_nsfw_models_hidden_unless_asked(civitai: CivitaiDouble) -> None:
    safe = civitai.add_model("Safe One")
    civitai.add_version(safe)
    spicy = civitai.add_model("Spicy One", nsfw=True)
    civitai.add_version(spicy)
    default = {m["id"] for m in api(civitai, "/models").json()["items"]}
    assert default == {safe.id}
    with_nsfw = api(civitai, "/models", params={"nsfw": "true"}).json()["items"]
    assert {m["id"] for m in with_nsfw} == {safe.id, spicy.id}


def test_models_sorting(civitai_catalog: SampleCatalog) -> None:
    d = civitai_catalog.double
    downloaded = api(d, "/models", params={"sort": "Most Downloaded"}).json()["items"]
    assert downloaded[0]["id"] == civitai_catalog.checkpoint.id
    newest = api(d, "/models", params={"sort": "Newest"}).json()["items"]
    assert newest[0]["id"] == civitai_catalog.checkpoint.id
    assert newest[-1]["id"] == civitai_catalog.vae.id
    assert api(d, "/models", params={"sort": "Best"}).status_code == 400


def test_query_with_page_is_400_and_deep_pages_are_429(civitai_catalog: SampleCatalog) -> None:
    d = civitai_catalog.double
    r = api(d, "/models", params={"query": "x", "page": 1})
    assert r.status_code == 400
    assert "cursor" in r.json()["error"]
    r = api(d, "/models", params={"page": 11, "limit": 100})
    assert r.status_code == 429
    assert r.json() == {"error": "You've requested too many pages, please use cursors instead"}
    assert api(d, "/models", params={"page": 10, "limit": 100}).status_code == 200


def test_cursor_paging_walks_everything(civitai: CivitaiDouble) -> None:
    made = set()
    for i in range(7):
        m = civitai.add_model(f"Model {i}")
        civitai.add_version(m)
        made.add(m.id)
    seen: list[int] = []
    params: dict[str, object] = {"limit": 3}
    while True:
        body = api(civitai, "/models", params=params).json()
        seen += [m["id"] for m in body["items"]]
        cursor = body["metadata"].get("nextCursor")
        if not cursor:
            break
        params = {"limit": 3, "cursor": cursor}
    assert sorted(seen) == sorted(made) and len(seen) == 7


def test_next_page_url_and_search_cursor(civitai: CivitaiDouble) -> None:
    for i in range(5):
        civitai.add_version(civitai.add_model(f"Fox {i}"))
    first = api(civitai, "/models", params={"limit": 2, "query": "fox"}).json()
    assert first["metadata"]["nextCursor"] == "2"  # query search: integer offset cursor
    second = requests.get(first["metadata"]["nextPage"], timeout=5).json()
    assert len(second["items"]) == 2
    assert not {m["id"] for m in first["items"]} & {m["id"] for m in second["items"]}
    paged = api(civitai, "/models", params={"limit": 2, "page": 1}).json()["metadata"]
    assert paged["currentPage"] == 1 and paged["pageSize"] == 2
    assert "page=2" in paged["nextPage"]


def test_get_model_and_404(civitai_catalog: SampleCatalog) -> None:
    d = civitai_catalog.double
    r = api(d, f"/models/{civitai_catalog.vae.id}")
    assert r.json() == d.model_json(civitai_catalog.vae)
    assert api(d, "/models/999999").status_code == 404
    # Id ranges are distinct: a version id is never a model id.
    assert api(d, f"/models/{civitai_catalog.vae_v1.id}").status_code == 404


# -- /model-versions -------------------------------------------------------------------------


def test_model_version_full_form(civitai_catalog: SampleCatalog) -> None:
    d = civitai_catalog.double
    v = civitai_catalog.checkpoint_v1
    body = api(d, f"/model-versions/{v.id}").json()
    assert body == d.version_json(v)
    assert body["modelId"] == civitai_catalog.checkpoint.id
    assert body["model"] == {
        "name": "Harbor Light",
        "type": "Checkpoint",
        "nsfw": False,
        "poi": False,
    }
    assert [f["primary"] for f in body["files"]] == [True, False]
    assert body["downloadUrl"] == f"{d.base_url}/api/download/models/{v.id}"
    vae_file = body["files"][1]
    assert vae_file["downloadUrl"].endswith("?type=VAE&format=SafeTensor")
    assert "/width=450/" in body["images"][0]["url"]
    hashes = body["files"][0]["hashes"]
    assert hashes["SHA256"] == v.files[0].sha256 == hashes["SHA256"].upper()
    assert hashes["AutoV2"] == hashes["SHA256"][:10]
    assert len(hashes["AutoV3"]) == 12
    assert body["files"][0]["sizeKB"] == v.files[0].size / 1024
    assert api(d, "/model-versions/999999").json() == {"error": "Model not found"}


def test_sample_catalog_names_and_ids(civitai_catalog: SampleCatalog) -> None:
    c = civitai_catalog
    assert c.lora_v1.files[0].name == "paperfoldStyle_v10.safetensors"
    assert c.embedding_v1.files[0].name == "badhands.safetensors"
    assert c.checkpoint_v1.files[1].name == "sdxl_vae_fixed.safetensors"
    assert all(1000 <= m.id < 50_000 for m in c.models)
    assert all(50_000 <= v.id < 90_000 for v in c.versions)
    assert all(f.id >= 90_000 for f in c.files)
    assert len({f.sha256 for f in c.files}) == len(c.files)


# -- by-hash ---------------------------------------------------------------------------------


def test_by_hash_all_kinds_case_insensitive(civitai: CivitaiDouble) -> None:
    big = civitai.file(size=3 * 1024 * 1024)  # >= 2 MiB so AutoV1 exists
    v = civitai.add_version(civitai.add_model("Big One"), files=[big])
    h = big.hashes
    crc = zlib.crc32(big.read_bytes()) & 0xFFFFFFFF
    assert h.crc32 == f"{crc:08X}"
    assert h.autov1 is not None and h.autov3 is not None
    keys = [
        h.sha256,
        h.sha256.lower(),
        h.autov2.lower(),
        h.autov1,
        h.autov3,
        h.autov3[:12].lower(),
        h.crc32,
        h.crc32_reversed,
    ]
    for key in keys:
        r = api(civitai, f"/model-versions/by-hash/{key}")
        assert r.status_code == 200, key
        assert r.json()["id"] == v.id
    miss = api(civitai, "/model-versions/by-hash/" + "0" * 64)
    assert miss.status_code == 404
    assert miss.json() == {"error": "Model not found"}


def test_small_files_have_no_autov1(civitai_catalog: SampleCatalog) -> None:
    hashes = civitai_catalog.double.version_json(civitai_catalog.lora_v1)["files"][0]["hashes"]
    assert set(hashes) >= {"AutoV2", "AutoV3", "SHA256", "CRC32"}
    assert "AutoV1" not in hashes


def test_autov3_is_the_safetensors_payload_hash(civitai: CivitaiDouble) -> None:
    payload = b"\x01\x02" * 500
    f = civitai.file(make_safetensors(payload, {"ss_output_name": "x"}))
    civitai.add_version(civitai.add_model(), files=[f])
    assert f.hashes.autov3 == hashlib.sha256(payload).hexdigest().upper()
    not_st = civitai.file(b"plain bytes", format="PickleTensor")
    civitai.add_version(civitai.add_model("Pickle"), files=[not_st])
    assert not_st.hashes.autov3 is None


def test_bulk_by_hash(civitai_catalog: SampleCatalog) -> None:
    d = civitai_catalog.double
    url = d.base_url + "/api/v1/model-versions/by-hash"
    wanted = [
        civitai_catalog.lora_v2.files[0].sha256.lower(),
        civitai_catalog.vae_v1.files[0].sha256,
    ]
    r = requests.post(url, json=[*wanted, "F" * 64], timeout=5)
    assert r.status_code == 200
    assert [v["id"] for v in r.json()] == [civitai_catalog.lora_v2.id, civitai_catalog.vae_v1.id]
    assert requests.post(url, json=["ABC"], timeout=5).status_code == 400
    assert requests.post(url, json=["A" * 64] * 101, timeout=5).status_code == 400
    assert requests.post(url, json={"hashes": []}, timeout=5).status_code == 400
    assert requests.post(url, data=b"not json", timeout=5).status_code == 400
    d.disable_bulk_hash()
    assert requests.post(url, json=wanted, timeout=5).status_code == 404


# -- tags, enums, me, methods ----------------------------------------------------------------


def test_tags_paging(civitai_catalog: SampleCatalog) -> None:
    d = civitai_catalog.double
    body = api(d, "/tags", params={"limit": 3}).json()
    assert len(body["items"]) == 3
    assert set(body["items"][0]) == {"name", "link", "modelCount"}
    assert body["metadata"]["currentPage"] == 1 and "nextPage" in body["metadata"]
    names = {t["name"] for t in api(d, "/tags", params={"limit": 200}).json()["items"]}
    assert {"origami", "vae", "hands"} <= names
    assert [t["name"] for t in api(d, "/tags", params={"query": "orig"}).json()["items"]] == [
        "origami"
    ]


def test_enums_and_me(civitai: CivitaiDouble) -> None:
    assert "LORA" in api(civitai, "/enums").json()["ModelType"]
    assert api(civitai, "/me").status_code == 401
    assert api(civitai, "/me", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert api(civitai, "/me", params={"token": KEY}).status_code == 200


def test_wrong_method_is_405(civitai_catalog: SampleCatalog) -> None:
    d = civitai_catalog.double
    assert requests.post(d.base_url + "/api/v1/models", timeout=5).status_code == 405
    assert requests.get(d.base_url + "/api/v1/model-versions/by-hash", timeout=5).status_code == 405
    location = download(d, civitai_catalog.vae_v1.id, allow_redirects=False).headers["Location"]
    assert requests.delete(location, timeout=5).status_code == 405


def test_keep_alive_serves_several_requests_on_one_connection(civitai: CivitaiDouble) -> None:
    port = urlsplit(civitai.base_url).port
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        for _ in range(3):
            conn.request("GET", "/api/v1/models")
            resp = conn.getresponse()
            assert resp.status == 200
            assert len(resp.read()) == int(resp.headers["Content-Length"])
    finally:
        conn.close()


# -- downloads --------------------------------------------------------------------------------


def test_download_redirects_to_signed_storage_url(civitai_catalog: SampleCatalog) -> None:
    d = civitai_catalog.double
    f = civitai_catalog.lora_v1.files[0]
    r = download(d, civitai_catalog.lora_v1.id, allow_redirects=False)
    assert r.status_code == 307
    location = urlsplit(r.headers["Location"])
    assert f"{location.scheme}://{location.netloc}" == d.storage_url
    assert location.path == f"/files/{f.id}/{f.name}"
    assert {"X-Amz-Signature", "X-Amz-Expires"} <= set(parse_qs(location.query))


def test_followed_download_serves_bytes_without_authorization(
    civitai_catalog: SampleCatalog,
) -> None:
    d = civitai_catalog.double
    f = civitai_catalog.checkpoint_v1.files[0]
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    r = download(d, civitai_catalog.checkpoint_v1.id, headers=headers)
    assert r.status_code == 200
    assert r.content == f.read_bytes()
    assert hashlib.sha256(r.content).hexdigest().upper() == f.sha256
    assert r.headers["Content-Length"] == str(f.size)
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert r.headers["Accept-Ranges"] == "bytes"
    assert r.headers["Content-Disposition"] == (
        f"attachment; filename=\"{f.name}\"; filename*=UTF-8''{f.name}"
    )
    # requests drops Authorization on a cross-host (other port) redirect; the storage proves it.
    api_request = next(r for r in d.requests if r.host == "api")
    assert api_request.headers["authorization"] == f"Bearer {KEY}"
    assert d.storage_headers and all("Authorization" not in h for h in d.storage_headers)


def test_download_selectors(civitai_catalog: SampleCatalog) -> None:
    d = civitai_catalog.double
    v = civitai_catalog.checkpoint_v1
    vae = v.files[1]
    assert download(d, v.id, "?type=VAE&format=SafeTensor").content == vae.read_bytes()
    assert download(d, v.id, f"?fileId={vae.id}").content == vae.read_bytes()
    assert download(d, v.id, "?type=Config").json() == {"error": "File not found"}
    assert download(d, v.id, "?format=Zip", allow_redirects=False).status_code == 400
    assert download(d, 999_999, allow_redirects=False).status_code == 404


def test_range_requests(civitai_catalog: SampleCatalog) -> None:
    d = civitai_catalog.double
    f = civitai_catalog.lora_v1.files[0]
    location = download(d, civitai_catalog.lora_v1.id, allow_redirects=False).headers["Location"]
    r = requests.get(location, headers={"Range": "bytes=100-"}, timeout=5)
    assert r.status_code == 206
    assert r.content == f.read_bytes()[100:]
    assert r.headers["Content-Range"] == f"bytes 100-{f.size - 1}/{f.size}"
    assert r.headers["Content-Length"] == str(f.size - 100)
    r = requests.get(location, headers={"Range": "bytes=10-19"}, timeout=5)
    assert r.status_code == 206 and r.content == f.read_bytes()[10:20]
    r = requests.get(location, headers={"Range": f"bytes={f.size}-"}, timeout=5)
    assert r.status_code == 416
    assert r.headers["Content-Range"] == f"bytes */{f.size}"
    head = requests.head(location, timeout=5)
    assert head.status_code == 200 and head.headers["Content-Length"] == str(f.size)


def test_storage_rejects_unsigned_urls(civitai_catalog: SampleCatalog) -> None:
    d = civitai_catalog.double
    f = civitai_catalog.lora_v1.files[0]
    r = requests.get(f"{d.storage_url}/files/{f.id}/{f.name}", timeout=5)
    assert r.status_code == 403


def test_large_generated_and_disk_files_stream_correctly(
    civitai: CivitaiDouble, tmp_path: Path
) -> None:
    disk = tmp_path / "on_disk.safetensors"
    disk.write_bytes(make_safetensors(bytes(range(256)) * 8192))
    generated = civitai.file(size=5 * 1024 * 1024 + 7)
    from_disk = civitai.file(path=disk, type="Pruned Model")
    v = civitai.add_version(civitai.add_model("Streams"), files=[generated, from_disk])
    for f in (generated, from_disk):
        r = download(civitai, v.id, f"?fileId={f.id}", stream=True)
        digest = hashlib.sha256()
        for block in r.iter_content(1 << 16):
            digest.update(block)
        assert digest.hexdigest().upper() == f.sha256
    assert generated.size == 5 * 1024 * 1024 + 7
    assert from_disk.content.read(0, 8) == disk.read_bytes()[:8]
    ranged = requests.get(
        download(civitai, v.id, f"?fileId={generated.id}", allow_redirects=False).headers[
            "Location"
        ],
        headers={"Range": "bytes=1048570-"},
        timeout=5,
    )
    assert ranged.content == generated.content.read(1048570)


def test_preview_images_are_real_images(civitai: CivitaiDouble) -> None:
    from PySide6.QtGui import QImage  # the app decodes previews with Qt

    images = [civitai.image("png"), civitai.image("jpeg"), civitai.image("webp", served_as="jpeg")]
    civitai.add_version(civitai.add_model(), images=images)
    for image in images:
        url = civitai.image_url(image)
        assert url.endswith(f"/width=450/{image.id}.jpeg")
        r = requests.get(url, timeout=5)
        assert r.headers["Content-Type"] == f"image/{image.kind}"
        decoded = QImage.fromData(r.content)
        assert not decoded.isNull(), image.kind
        assert (decoded.width(), decoded.height()) == (image.width, image.height)
        thumb = url.replace("/width=450/", "/width=96/")
        assert requests.get(thumb, timeout=5).content == r.content
    assert requests.get(civitai.storage_url + "/nope/x.jpeg", timeout=5).status_code == 404


# -- fault switches ---------------------------------------------------------------------------


def test_login_required(civitai_catalog: SampleCatalog) -> None:
    d = civitai_catalog.double
    v = civitai_catalog.lora_v2
    d.login_required(v)
    anonymous = download(d, v.id)
    assert anonymous.status_code == 401
    assert anonymous.json() == {
        "error": "Unauthorized",
        "message": "The creator of this asset requires you to be logged in to download it",
    }
    assert download(d, v.id, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert download(d, v.id, "?token=nope").status_code == 401
    assert download(d, v.id, headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    assert download(d, v.id, f"?token={KEY}").status_code == 200
    assert "token" not in d.requests[-1].query  # storage URL doesn't carry the key
    d.reset_faults()
    assert download(d, v.id).status_code == 200


def test_early_access(civitai_catalog: SampleCatalog) -> None:
    d = civitai_catalog.double
    v = civitai_catalog.lora_v2
    d.early_access(v, deadline="2026-12-31T00:00:00.000Z")
    r = download(d, v.id, headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 403
    assert r.json()["error"] == "Early Access"
    assert r.json()["deadline"] == "2026-12-31T00:00:00.000Z"
    assert "message" in r.json()
    body = api(d, f"/model-versions/{v.id}").json()
    assert body["availability"] == "EarlyAccess"
    assert body["earlyAccessEndsAt"] == "2026-12-31T00:00:00.000Z"
    d.reset_faults()
    d.early_access(v, key_unlocks=True)
    assert download(d, v.id, f"?token={KEY}").status_code == 200


def test_archive(civitai_catalog: SampleCatalog) -> None:
    d = civitai_catalog.double
    d.archive(civitai_catalog.lora)
    version = api(d, f"/model-versions/{civitai_catalog.lora_v1.id}").json()
    assert version["files"] == [] and version["model"]["mode"] == "Archived"
    assert "downloadUrl" not in version
    assert api(d, f"/models/{civitai_catalog.lora.id}").json()["mode"] == "Archived"
    r = download(d, civitai_catalog.lora_v1.id)
    assert r.status_code == 410
    assert r.json() == {"error": "Model archived, not available for download"}
    # A local file of an archived model can still be identified.
    sha = civitai_catalog.lora_v1.files[0].sha256
    assert api(d, f"/model-versions/by-hash/{sha}").status_code == 200


def test_remove(civitai_catalog: SampleCatalog) -> None:
    d = civitai_catalog.double
    c = civitai_catalog
    location = download(d, c.lora_v1.id, allow_redirects=False).headers["Location"]
    d.remove(c.lora)
    assert api(d, f"/models/{c.lora.id}").status_code == 404
    assert api(d, f"/model-versions/{c.lora_v1.id}").status_code == 404
    assert api(d, f"/model-versions/by-hash/{c.lora_v1.files[0].sha256}").status_code == 404
    assert download(d, c.lora_v1.id).status_code == 404
    assert requests.get(location, timeout=5).status_code == 404
    assert c.lora.id not in {m["id"] for m in api(d, "/models").json()["items"]}


def test_rate_limit(civitai_catalog: SampleCatalog) -> None:
    d = civitai_catalog.double
    d.rate_limit(n=2, retry_after=2)
    for _ in range(2):
        r = api(d, "/models")
        assert r.status_code == 429 and r.headers["Retry-After"] == "2"
    assert api(d, "/models").status_code == 200
    d.rate_limit(n=1)
    assert "Retry-After" not in api(d, "/tags").headers
    d.rate_limit(n=1, path_prefix="/api/download/")
    assert api(d, "/models").status_code == 200  # not matching the prefix
    assert download(d, c_id := civitai_catalog.vae_v1.id).status_code == 429
    assert download(d, c_id).status_code == 200


def test_fail_bursts_then_recovers(civitai_catalog: SampleCatalog) -> None:
    d = civitai_catalog.double
    d.fail(n=2, status=503)
    assert [api(d, "/models").status_code for _ in range(3)] == [503, 503, 200]
    d.fail(n=1, status=500, path_prefix="/files/")
    assert download(d, civitai_catalog.vae_v1.id).status_code == 500
    d.fail(n=5)
    d.reset_faults()
    assert api(d, "/models").status_code == 200


def test_malformed_json(civitai_catalog: SampleCatalog) -> None:
    d = civitai_catalog.double
    d.malformed_json(n=1, path_prefix="/api/v1/model-versions/")
    assert api(d, "/models").json()  # not matching the prefix
    r = api(d, f"/model-versions/{civitai_catalog.vae_v1.id}")
    assert r.status_code == 200
    with pytest.raises(ValueError):
        r.json()
    assert api(d, f"/model-versions/{civitai_catalog.vae_v1.id}").json()["id"]


def test_truncated_download_then_resume(civitai_catalog: SampleCatalog) -> None:
    d = civitai_catalog.double
    f = civitai_catalog.checkpoint_v1.files[0]
    d.truncate_downloads(after_bytes=1000)
    location = download(d, civitai_catalog.checkpoint_v1.id, allow_redirects=False).headers[
        "Location"
    ]
    received = bytearray()
    r = requests.get(location, stream=True, timeout=5)
    assert r.headers["Content-Length"] == str(f.size)  # the full size is still announced
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        for block in r.iter_content(100):
            received += block
    assert len(received) == 1000
    rest = requests.get(location, headers={"Range": f"bytes={len(received)}-"}, timeout=5)
    assert rest.status_code == 206
    assert bytes(received) + rest.content == f.read_bytes()


def test_wrong_content_length(civitai_catalog: SampleCatalog) -> None:
    d = civitai_catalog.double
    d.wrong_content_length(delta=50)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        download(d, civitai_catalog.vae_v1.id)
    assert download(d, civitai_catalog.vae_v1.id).status_code == 200


def test_throttled_download_is_slow(civitai_catalog: SampleCatalog) -> None:
    d = civitai_catalog.double
    f = civitai_catalog.vae_v1.files[0]  # a few KB
    d.throttle_downloads(bytes_per_second=f.size * 4)  # about a quarter of a second
    started = time.monotonic()
    r = download(d, civitai_catalog.vae_v1.id)
    assert r.content == f.read_bytes()
    assert time.monotonic() - started >= 0.2


def test_stalled_download_times_out_client(civitai_catalog: SampleCatalog) -> None:
    d = civitai_catalog.double
    d.stall_downloads(seconds=2)
    r = download(d, civitai_catalog.vae_v1.id, stream=True, timeout=(2, 0.3))
    assert r.status_code == 200  # headers arrive, then nothing
    with pytest.raises(requests.exceptions.ConnectionError):  # requests' read-timeout form
        next(r.iter_content(10))
    r.close()


def test_hostile_content_disposition(civitai_catalog: SampleCatalog) -> None:
    d = civitai_catalog.double
    f = civitai_catalog.vae_v1.files[0]
    d.content_disposition(f, "../../evil.safetensors")
    r = download(d, civitai_catalog.vae_v1.id)
    assert 'filename="../../evil.safetensors"' in r.headers["Content-Disposition"]
    assert r.content == f.read_bytes()


def test_redirect_loop(civitai_catalog: SampleCatalog) -> None:
    d = civitai_catalog.double
    d.redirect_loop(civitai_catalog.vae_v1)
    with pytest.raises(requests.exceptions.TooManyRedirects):
        download(d, civitai_catalog.vae_v1.id)


def test_requests_are_recorded(civitai_catalog: SampleCatalog) -> None:
    d = civitai_catalog.double
    d.clear_requests()
    api(d, "/models", params={"types": ["LORA", "VAE"], "limit": 5})
    (rec,) = d.requests
    assert (rec.host, rec.method, rec.path) == ("api", "GET", "/api/v1/models")
    assert rec.query["limit"] == "5"
    assert rec.query_all["types"] == ["LORA", "VAE"]
    assert "user-agent" in rec.headers


def test_stop_is_quick_even_with_open_connections(civitai_catalog: SampleCatalog) -> None:
    d = civitai_catalog.double
    session = requests.Session()
    session.get(d.base_url + "/api/v1/models", timeout=5)  # leaves a keep-alive connection
    d.stall_downloads(seconds=30)
    r = download(d, civitai_catalog.vae_v1.id, stream=True, timeout=5)
    assert r.status_code == 200
    started = time.monotonic()
    d.stop()
    assert time.monotonic() - started < 2
    r.close()
    session.close()


def test_reset_download_aborts_with_a_tcp_reset(civitai_catalog: SampleCatalog) -> None:
    d = civitai_catalog.double
    f = civitai_catalog.checkpoint_v1.files[0]
    d.reset_downloads(after_bytes=1000)
    r = download(d, civitai_catalog.checkpoint_v1.id, stream=True)
    with pytest.raises(requests.exceptions.ChunkedEncodingError) as caught:
        for _ in r.iter_content(100):
            pass
    assert "reset" in str(caught.value).lower()  # an abort, not the clean EOF of truncate
    again = download(d, civitai_catalog.checkpoint_v1.id)
    assert again.content == f.read_bytes()  # counted: the next request is whole


def test_redirect_download_to_any_location(civitai_catalog: SampleCatalog) -> None:
    d = civitai_catalog.double
    d.redirect_download(civitai_catalog.checkpoint_v1, "file:///etc/passwd")
    r = download(d, civitai_catalog.checkpoint_v1.id, allow_redirects=False)
    assert r.status_code == 307 and r.headers["Location"] == "file:///etc/passwd"
    d.reset_faults()
    r = download(d, civitai_catalog.checkpoint_v1.id, allow_redirects=False)
    assert r.headers["Location"].startswith(d.storage_url)


def test_edit_json_changes_answers_under_a_prefix(civitai_catalog: SampleCatalog) -> None:
    d = civitai_catalog.double
    version = civitai_catalog.vae_v1

    def rename(data: dict) -> dict:  # type: ignore[type-arg]
        data["name"] = "<b>edited</b>"
        return data

    d.edit_json(f"/api/v1/model-versions/{version.id}", rename)
    assert api(d, f"/model-versions/{version.id}").json()["name"] == "<b>edited</b>"
    assert api(d, "/models", params={"limit": 1}).json()["items"]  # other paths untouched
    d.reset_faults()
    assert api(d, f"/model-versions/{version.id}").json()["name"] == version.name


def test_two_sites_safe_host_leaves_mature_models_out() -> None:
    """two_sites: civitai.com (base_url) answers as if mature models did not exist,
    civitai.red (mature_url) serves everything; one catalog, one storage host."""
    with CivitaiDouble(two_sites=True) as d:
        safe = d.add_model("Daylight", "LORA")
        safe_v = d.add_version(safe)
        flagged = d.add_model("Nightfall", "LORA", nsfw=True)
        flagged_v = d.add_version(flagged)
        rated = d.add_model("Dusk", "LORA")  # not flagged, but a version rated R
        rated_v = d.add_version(rated, nsfw_level=4 | 1)
        mature = [(flagged, flagged_v), (rated, rated_v)]
        assert d.mature_url != d.base_url
        for model, version in mature:
            sha = version.files[0].sha256
            assert requests.get(f"{d.base_url}/api/v1/models/{model.id}").status_code == 404
            assert requests.get(
                f"{d.base_url}/api/v1/model-versions/{version.id}").status_code == 404
            assert requests.get(
                f"{d.base_url}/api/v1/model-versions/by-hash/{sha}").status_code == 404
            assert requests.post(
                f"{d.base_url}/api/v1/model-versions/by-hash", json=[sha]).json() == []
            assert requests.get(f"{d.mature_url}/api/v1/models/{model.id}").ok
            by_hash = requests.get(f"{d.mature_url}/api/v1/model-versions/by-hash/{sha}")
            assert by_hash.json()["id"] == version.id
            assert by_hash.json()["downloadUrl"].startswith(d.mature_url)
        assert requests.get(f"{d.base_url}/api/v1/models/{safe.id}").ok
        listed = {
            site: {m["id"] for m in requests.get(f"{site}/api/v1/models",
                                                 params={"nsfw": "true"}).json()["items"]}
            for site in (d.base_url, d.mature_url)
        }
        assert listed == {d.base_url: {safe.id}, d.mature_url: {safe.id, flagged.id, rated.id}}
        assert requests.get(f"{d.mature_url}/api/download/models/{safe_v.id}",
                            allow_redirects=True).content == safe_v.files[0].read_bytes()
        assert {r.host for r in d.requests} == {"api", "mature", "storage"}


def test_one_site_by_default_serves_mature_models(civitai: CivitaiDouble) -> None:
    model = civitai.add_model("Nightfall", "LORA", nsfw=True)
    civitai.add_version(model, nsfw_level=16)
    assert civitai.mature_url == civitai.base_url
    assert requests.get(f"{civitai.base_url}/api/v1/models/{model.id}").ok
