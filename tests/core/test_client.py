"""CivitaiClient against the loopback Civitai double: real HTTP, no mocks."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import socket

import pytest

from civdesk.core.civitai.client import CivitaiClient, redact_url
from civdesk.core.civitai.errors import (
    Archived,
    AuthRequired,
    EarlyAccess,
    KeyRefused,
    MalformedResponse,
    NetworkError,
    NotFound,
    RateLimited,
    ServerError,
)
from civdesk.core.civitai.schema import SearchQuery
from tests.conftest import TEST_API_KEY
from tests.double import CivitaiDouble, SampleCatalog


class Sleeps(list[float]):
    """An injectable sleep that records the delays instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def make_client(
    d: CivitaiDouble, sleeps: Sleeps, api_key: str | None = None, **kw: object
) -> CivitaiClient:
    options: dict[str, object] = {"backoff": 0.01, "max_backoff": 0.05, "sleep": sleeps}
    options.update(kw)
    return CivitaiClient(d.base_url, api_key, **options)  # type: ignore[arg-type]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- queries ---------------------------------------------------------------------------------


def test_search_sends_filters_and_follows_the_cursor(
    civitai: CivitaiDouble, sleeps: Sleeps
) -> None:
    loras = [civitai.add_model(f"Style {i}", "LORA", thumbs_up=i) for i in range(5)]
    for model in loras:
        civitai.add_version(model, base_model="SDXL 1.0")
    civitai.add_version(civitai.add_model("Some Checkpoint", "Checkpoint"), base_model="SDXL 1.0")
    client = make_client(civitai, sleeps)

    query = SearchQuery(types=("LORA",), base_models=("SDXL 1.0",), sort="Highest Rated", limit=2)
    names: list[str] = []
    page = client.search(query)
    pages = 1
    names += [m.name for m in page.items]
    while page.has_more:
        page = client.search(dataclasses.replace(query, cursor=page.next_cursor))
        names += [m.name for m in page.items]
        pages += 1

    assert pages == 3
    assert names == [f"Style {i}" for i in reversed(range(5))]
    sent = [r for r in civitai.requests if r.path == "/api/v1/models"]
    assert sent[0].query["types"] == "LORA"
    assert sent[0].query["baseModels"] == "SDXL 1.0"
    assert sent[0].query["limit"] == "2"
    assert "cursor" in sent[1].query
    assert all(r.headers["Accept"] == "application/json" for r in sent)


def test_get_model_version_and_many_models(
    civitai: CivitaiDouble, civitai_catalog: SampleCatalog, sleeps: Sleeps
) -> None:
    client = make_client(civitai, sleeps)
    model = client.get_model(civitai_catalog.lora.id)
    assert model.name == "Paperfold Style"
    newest_first = [civitai_catalog.lora_v2.id, civitai_catalog.lora_v1.id]
    assert [v.id for v in model.versions] == newest_first

    version = client.get_version(civitai_catalog.lora_v1.id)
    assert version.model_id == civitai_catalog.lora.id
    assert version.model is not None and version.model.type == "LORA"
    assert version.raw["id"] == civitai_catalog.lora_v1.id

    real = [m.id for m in civitai_catalog.models]
    wanted = [*real, *range(900_000, 900_150)]  # 154 ids: two chunks, unknown ids skipped
    models = client.get_models(wanted)
    assert sorted(m.id for m in models) == sorted(real)
    by_ids = [r for r in civitai.requests if r.path == "/api/v1/models"]
    assert len(by_ids) == 2
    assert all(len(r.query["ids"].split(",")) <= 100 for r in by_ids)
    assert all(r.query["limit"] == "100" for r in by_ids)


def test_unknown_ids_are_not_found_with_a_plain_message(
    civitai: CivitaiDouble, sleeps: Sleeps
) -> None:
    client = make_client(civitai, sleeps)
    with pytest.raises(NotFound, match=r"not found on Civitai \(removed or never published\)"):
        client.get_version(123)
    with pytest.raises(NotFound):
        client.get_model(123)
    assert sleeps == []  # a 404 is never retried


def test_hash_lookups_single_and_bulk(
    civitai: CivitaiDouble, civitai_catalog: SampleCatalog, sleeps: Sleeps
) -> None:
    client = make_client(civitai, sleeps)
    target = civitai_catalog.checkpoint_v1.files[0]
    assert client.version_by_hash(target.sha256.lower()).id == civitai_catalog.checkpoint_v1.id
    with pytest.raises(NotFound):
        client.version_by_hash("AB" * 32)

    digests = [f.sha256 for f in civitai_catalog.files] + ["CD" * 32]
    civitai.clear_requests()
    found = client.versions_by_sha256(d.lower() for d in digests)
    assert set(found) == {f.sha256 for f in civitai_catalog.files}
    for f in civitai_catalog.files:
        assert found[f.sha256].id == f.version_id
    assert [(r.method, r.path) for r in civitai.requests] == [
        ("POST", "/api/v1/model-versions/by-hash")
    ]


def test_bulk_hash_falls_back_to_single_lookups_and_remembers(
    civitai: CivitaiDouble, civitai_catalog: SampleCatalog, sleeps: Sleeps
) -> None:
    civitai.disable_bulk_hash()
    client = make_client(civitai, sleeps)
    digests = [f.sha256 for f in civitai_catalog.files[:3]] + ["EF" * 32]
    found = client.versions_by_sha256(digests)
    assert set(found) == set(digests[:3])
    posts = [r for r in civitai.requests if r.method == "POST"]
    gets = [r for r in civitai.requests if r.path.startswith("/api/v1/model-versions/by-hash/")]
    assert len(posts) == 1 and len(gets) == 4

    civitai.clear_requests()
    assert client.versions_by_sha256(digests[:1]).keys() == {digests[0]}
    assert [r.method for r in civitai.requests] == ["GET"]  # no second POST this session


def test_bad_digests_are_refused_before_any_request(civitai: CivitaiDouble, sleeps: Sleeps) -> None:
    client = make_client(civitai, sleeps)
    with pytest.raises(ValueError):
        client.versions_by_sha256(["1234"])
    with pytest.raises(ValueError):
        client.version_by_hash("../../etc")
    assert civitai.requests == []


# -- auth ------------------------------------------------------------------------------------


def test_check_api_key_says_accepted_refused_or_unchecked(civitai: CivitaiDouble) -> None:
    from civdesk.core.civitai.keycheck import check_api_key

    assert check_api_key(civitai.base_url, TEST_API_KEY).accepted is True
    refused = check_api_key(civitai.base_url, "revoked")
    assert refused.accepted is False and "expired or revoked" in refused.message
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    offline = check_api_key(dead, TEST_API_KEY, timeout=(2, 2))
    assert offline.accepted is None
    assert offline.message.startswith("The key could not be checked (Cannot reach Civitai at")


def test_check_key(civitai: CivitaiDouble, sleeps: Sleeps) -> None:
    assert make_client(civitai, sleeps, TEST_API_KEY).check_key() is True
    assert make_client(civitai, sleeps, "wrong").check_key() is False
    assert make_client(civitai, sleeps, None).check_key() is False


def test_the_key_goes_to_the_api_host_only(
    civitai: CivitaiDouble, civitai_catalog: SampleCatalog, sleeps: Sleeps
) -> None:
    client = make_client(civitai, sleeps, TEST_API_KEY)
    version = civitai_catalog.lora_v2
    with client.open_download(version.id) as body:
        assert body.filename == version.files[0].name
        assert body.total_size == version.files[0].size
        data = b"".join(body.iter_chunks(4096))
    assert len(data) == version.files[0].size
    api = [r for r in civitai.requests if r.host == "api"]
    assert api[0].headers["Authorization"] == f"Bearer {TEST_API_KEY}"
    assert api[0].headers["Content-Type"] == "application/json"
    assert civitai.storage_headers, "the storage host was never asked"
    for headers in civitai.storage_headers:
        assert "Authorization" not in headers
        assert TEST_API_KEY not in str(dict(headers))

    # Images are public and live on the storage host too: no key there either.
    image = civitai_catalog.lora_v2.images[0]
    data, ctype = client.fetch_image(civitai.image_url(image))
    assert data == image.data and ctype == image.content_type
    assert all("Authorization" not in h for h in civitai.storage_headers)


def test_download_from_an_offset_and_past_the_end(
    civitai: CivitaiDouble, civitai_catalog: SampleCatalog, sleeps: Sleeps
) -> None:
    client = make_client(civitai, sleeps)
    f = civitai_catalog.checkpoint_v1.files[0]
    full = f.read_bytes()
    with client.open_download(civitai_catalog.checkpoint_v1.id, start=1000) as body:
        assert (body.start, body.total_size, body.body_size) == (1000, f.size, f.size - 1000)
        assert b"".join(body.iter_chunks()) == full[1000:]
    with client.open_download(civitai_catalog.checkpoint_v1.id, start=f.size) as body:
        assert (body.start, body.total_size, body.body_size) == (f.size, f.size, 0)
        assert list(body.iter_chunks()) == []
    vae = civitai_catalog.checkpoint_v1.files[1]
    with client.open_download(civitai_catalog.checkpoint_v1.id, file_id=vae.id) as body:
        assert body.filename == "sdxl_vae_fixed.safetensors"
        assert b"".join(body.iter_chunks()) == vae.read_bytes()


# -- retries ---------------------------------------------------------------------------------


def test_429_waits_retry_after_then_succeeds(
    civitai: CivitaiDouble, civitai_catalog: SampleCatalog, sleeps: Sleeps,
    caplog: pytest.LogCaptureFixture,
) -> None:
    civitai.rate_limit(2, retry_after=5, path_prefix="/api/v1/model-versions/")
    client = make_client(civitai, sleeps)
    with caplog.at_level(logging.WARNING, logger="civdesk.core.civitai.client"):
        assert client.get_version(civitai_catalog.vae_v1.id).id == civitai_catalog.vae_v1.id
    # The governor waits in short steps (a cancel is seen soon): 5 s, twice.
    assert sum(sleeps) == pytest.approx(10, abs=0.05)
    assert "Civitai is rate limiting requests; retrying in 5 s" in caplog.text


def test_retry_after_is_bounded_and_429_without_it_backs_off(
    civitai: CivitaiDouble, civitai_catalog: SampleCatalog, sleeps: Sleeps
) -> None:
    civitai.rate_limit(1, retry_after=3600)
    civitai.rate_limit(1)
    client = make_client(civitai, sleeps, max_retry_after=60)
    client.get_model(civitai_catalog.vae.id)
    assert 60 < sum(sleeps) <= 60.05


def test_429_forever_ends_in_rate_limited(
    civitai: CivitaiDouble, civitai_catalog: SampleCatalog, sleeps: Sleeps
) -> None:
    civitai.rate_limit(100, retry_after=7)
    client = make_client(civitai, sleeps, max_retries=3, rate_limit_patience=0)
    with pytest.raises(RateLimited) as info:
        client.get_model(civitai_catalog.vae.id)
    assert info.value.retry_after == 7
    assert info.value.transient
    assert sum(sleeps) == pytest.approx(21, abs=0.05)  # three waits of 7 s
    assert "rate limiting" in str(info.value)


def test_5xx_burst_is_retried_with_growing_backoff(
    civitai: CivitaiDouble, civitai_catalog: SampleCatalog, sleeps: Sleeps
) -> None:
    civitai.fail(3, status=502)
    client = make_client(civitai, sleeps, backoff=1.0, max_backoff=30.0)
    assert client.get_model(civitai_catalog.vae.id).name == "Clear VAE"
    assert len(sleeps) == 3
    # Exponential with jitter: attempt n waits between 2**n / 2 and 2**n seconds.
    for n, delay in enumerate(sleeps):
        assert 2**n / 2 <= delay <= 2**n


def test_5xx_forever_is_a_server_error(
    civitai: CivitaiDouble, civitai_catalog: SampleCatalog, sleeps: Sleeps
) -> None:
    civitai.fail(100, status=500)
    client = make_client(civitai, sleeps, max_retries=2)
    with pytest.raises(ServerError, match=r"HTTP 500"):
        client.get_model(civitai_catalog.vae.id)
    assert len(sleeps) == 2


def test_other_4xx_is_not_retried(civitai: CivitaiDouble, sleeps: Sleeps) -> None:
    client = make_client(civitai, sleeps)
    with pytest.raises(Exception, match=r"HTTP 400"):
        client.search(SearchQuery(types=("NotAType",)))
    assert sleeps == []


def test_malformed_json_names_the_endpoint(
    civitai: CivitaiDouble, civitai_catalog: SampleCatalog, sleeps: Sleeps
) -> None:
    civitai.malformed_json(1)
    client = make_client(civitai, sleeps)
    with pytest.raises(MalformedResponse) as info:
        client.get_version(civitai_catalog.vae_v1.id)
    assert f"GET /api/v1/model-versions/{civitai_catalog.vae_v1.id}" in str(info.value)
    assert "not JSON" in str(info.value)


def test_a_wrong_field_type_names_the_field(civitai: CivitaiDouble, sleeps: Sleeps) -> None:
    # A model whose name is not a string: the parser must say which field is wrong.
    model = civitai.add_model("Odd")
    civitai.add_version(model)
    model.name = 12345  # type: ignore[assignment]
    with pytest.raises(MalformedResponse) as info:
        make_client(civitai, sleeps).get_model(model.id)
    assert "GET /api/v1/models/" in str(info.value)
    assert "model.name" in str(info.value)


def test_connection_refused_is_a_network_error(sleeps: Sleeps) -> None:
    port = closed_port()
    client = CivitaiClient(f"http://127.0.0.1:{port}", "secret-key", max_retries=2,
                           backoff=0.01, sleep=sleeps)
    with pytest.raises(NetworkError) as info:
        client.get_model(1)
    message = str(info.value)
    assert message.startswith(f"Cannot reach Civitai at 127.0.0.1:{port}: ")
    assert "refused" in message.lower()
    assert message.endswith("Check your network connection")
    assert "secret-key" not in message
    assert len(sleeps) == 2


def test_proxy_from_the_environment_is_used_and_read_once_per_host(
    civitai: CivitaiDouble, sleeps: Sleeps, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port()}")
    client = CivitaiClient(civitai.base_url, max_retries=0, sleep=sleeps)
    with pytest.raises(NetworkError):  # sent to the (dead) proxy, not to the double
        client.get_model(1)
    monkeypatch.delenv("HTTP_PROXY")
    with pytest.raises(NetworkError):  # the environment was read once for this host
        client.get_model(1)
    fresh = CivitaiClient(civitai.base_url, max_retries=0, sleep=sleeps)
    with pytest.raises(NotFound):  # a new client reads it again: no proxy now
        fresh.get_model(1)


def test_redact_url_drops_the_token() -> None:
    assert redact_url("https://civitai.com/api/download/models/1?type=VAE&token=abc") == (
        "https://civitai.com/api/download/models/1?type=VAE"
    )
    assert redact_url("https://civitai.com/x?TOKEN=abc") == "https://civitai.com/x"
    assert redact_url("https://civitai.com/x?a=1") == "https://civitai.com/x?a=1"


def test_archived_and_missing_files_are_told_apart(
    civitai: CivitaiDouble, civitai_catalog: SampleCatalog, sleeps: Sleeps
) -> None:
    client = make_client(civitai, sleeps, TEST_API_KEY)
    civitai.archive(civitai_catalog.checkpoint)
    with pytest.raises(Archived) as archived:
        client.open_download(civitai_catalog.checkpoint_v1.id)
    assert str(archived.value) == (
        "This model was archived on Civitai and can no longer be downloaded"
    )
    with pytest.raises(NotFound, match="not found on Civitai"):
        client.open_download(civitai_catalog.embedding_v1.id, file_id=1)
    assert sleeps == []


def test_login_required_without_and_with_a_bad_key(
    civitai: CivitaiDouble, civitai_catalog: SampleCatalog, sleeps: Sleeps
) -> None:
    version = civitai_catalog.lora_v1
    civitai.login_required(version)
    with pytest.raises(AuthRequired) as anonymous:
        make_client(civitai, sleeps).open_download(version.id)
    assert str(anonymous.value) == (
        "Civitai refused the download: this file requires an API key — set your Civitai API "
        "key in Settings"
    )
    with pytest.raises(KeyRefused) as bad_key:
        make_client(civitai, sleeps, "not-the-key").open_download(version.id)
    # A key was sent: it is the key that was refused, not one missing.
    assert str(bad_key.value) == (
        "Civitai refused the API key (401): it has probably expired or been revoked — create "
        "a new one on civitai.com → Account settings → API keys and enter it in Settings")
    assert "not-the-key" not in str(bad_key.value)

    with make_client(civitai, sleeps, TEST_API_KEY).open_download(version.id) as body:
        data = b"".join(body.iter_chunks())
    assert hashlib.sha256(data).hexdigest().upper() == version.files[0].sha256


def test_early_access_names_its_deadline(
    civitai: CivitaiDouble, civitai_catalog: SampleCatalog, sleeps: Sleeps
) -> None:
    client = make_client(civitai, sleeps, TEST_API_KEY)
    civitai.early_access(civitai_catalog.lora_v1, deadline="2026-12-31T00:00:00.000Z")
    with pytest.raises(EarlyAccess, match="in early access until 2026-12-31; ") as early:
        client.open_download(civitai_catalog.lora_v1.id)
    assert early.value.deadline == "2026-12-31T00:00:00.000Z"



def test_the_key_is_never_in_messages_logs_or_repr(
    civitai: CivitaiDouble, civitai_catalog: SampleCatalog, sleeps: Sleeps,
    caplog: pytest.LogCaptureFixture,
) -> None:
    key = "super-secret-key-123"
    client = make_client(civitai, sleeps, key)
    civitai.fail(1, status=503)
    civitai.login_required(civitai_catalog.lora_v1)
    with caplog.at_level(logging.DEBUG):
        client.get_model(civitai_catalog.lora.id)
        with pytest.raises(AuthRequired) as info:
            client.open_download(civitai_catalog.lora_v1.id)
    assert key not in str(info.value) and key not in (info.value.url or "")
    assert key not in caplog.text
    assert key not in repr(client)
