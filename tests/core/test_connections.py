"""The one connection policy: the per-host rate governor, offline failures, deadlines,
and cheap identification of large libraries, against the loopback Civitai double."""

from __future__ import annotations

import gzip
import os
import random
import time
from collections import Counter
from pathlib import Path

import pytest

from civdesk.core.civitai.client import CivitaiClient
from civdesk.core.civitai.connections import Connections
from civdesk.core.civitai.errors import MalformedResponse, NetworkError
from civdesk.core.civitai.governor import Governor, Governors, RatePolicy
from civdesk.core.civitai.schema import SearchQuery
from civdesk.core.library import Database, Library
from civdesk.core.scanner import Scanner
from civdesk.core.settings import Settings
from tests.double import CivitaiDouble, SampleCatalog

NO_SUCH_HOST = "http://civdesk-no-such-host.invalid"


class FakeClock:
    """A clock the test moves; its ``sleep`` moves it too."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


# -- the governor ------------------------------------------------------------------------------


def test_a_429_without_retry_after_backs_off_from_1_s_doubling_up_to_30_s() -> None:
    clock = FakeClock()
    governor = Governor("civitai.com", RatePolicy(), clock=clock)
    pauses = []
    for _ in range(7):
        pause = governor.rate_limited(sent_at=clock())
        assert governor.delay() == pytest.approx(pause)  # nobody may send meanwhile
        pauses.append(pause)
        clock.sleep(pause)
    for pause, level in zip(pauses, (1, 2, 4, 8, 16, 30, 30), strict=True):
        assert level / 2 <= pause <= level  # jittered on the upper half


def test_retry_after_is_the_pause_and_the_state_says_when_work_resumes() -> None:
    clock = FakeClock()
    governor = Governor("civitai.com", clock=clock)
    assert governor.state().message() == "" and not governor.state().slowed
    assert governor.rate_limited(sent_at=clock(), retry_after=12) == 12
    assert governor.state().message() == (
        "Civitai is rate limiting: slowed down, resuming in 12 s")
    clock.sleep(11.5)
    assert governor.state().message().endswith("resuming in 1 s")
    assert governor.rate_limited(clock(), retry_after=3600) == 60  # not believed further


def test_429s_of_requests_in_flight_together_back_off_once() -> None:
    clock = FakeClock()
    governor = Governor("civitai.com", clock=clock)
    sent = clock()
    clock.sleep(0.1)
    for _ in range(5):  # five requests sent before the first 429 came back
        assert governor.rate_limited(sent_at=sent) <= 1
    assert governor.rate_limits == 5


def test_after_a_pause_requests_are_spaced_and_speed_up_gradually() -> None:
    clock = FakeClock()
    governor = Governor("civitai.com", clock=clock)
    governor.rate_limited(clock(), retry_after=2)
    clock.sleep(2)
    assert governor.delay() == 0  # the first one goes ...
    assert governor.delay() == pytest.approx(1.0)  # ... the next one a second later
    spacings = []
    while governor.state().spacing > 0:
        governor.answered()
        spacings.append(governor.state().spacing)
    assert len(spacings) > 5 and spacings == sorted(spacings, reverse=True)
    assert governor.state().message() == ""
    assert [governor.delay() for _ in range(3)] == [0, 0, 0]  # full speed again


def test_wait_turn_waits_out_the_pause_in_short_steps_and_stops_on_a_cancel() -> None:
    clock = FakeClock()
    governor = Governor("civitai.com", clock=clock)
    governor.rate_limited(clock(), retry_after=3)
    assert governor.wait_turn(clock.sleep) == pytest.approx(3)
    assert max(clock.slept) <= 0.5
    governor.rate_limited(clock(), retry_after=3)
    assert governor.wait_turn(clock.sleep, stop=lambda: True) == 0


def test_one_governor_per_host_for_every_client_of_a_connections() -> None:
    governors = Governors()
    assert governors("civitai.com") is governors("civitai.com")
    assert governors("civitai.com") is not governors("civitai.red")
    connections = Connections()
    a = connections.client("https://civitai.com", None)
    b = connections.thread_client("https://civitai.com", "key")
    assert a.governors is b.governors is a.clone().governors is connections.governors


# -- the client under the policy ---------------------------------------------------------------


def test_a_host_name_that_does_not_resolve_fails_at_once_in_one_line() -> None:
    slept: list[float] = []
    client = CivitaiClient(NO_SUCH_HOST, "secret-key", max_retries=4, sleep=slept.append)
    with pytest.raises(NetworkError) as info:
        client.search(SearchQuery(query="anything"))
    assert slept == []  # no retries: without a network they only make the user wait
    assert str(info.value) == (
        "Cannot reach Civitai at civdesk-no-such-host.invalid: the host name could not be "
        "resolved. Check your network connection")


def test_503_with_retry_after_is_retried_after_it(
    civitai: CivitaiDouble, civitai_catalog: SampleCatalog
) -> None:
    civitai.fail(2, status=503, retry_after=2, path_prefix="/api/v1/models")
    slept: list[float] = []
    client = CivitaiClient(civitai.base_url, sleep=slept.append)
    assert client.search(SearchQuery(query="Clear")).items
    assert slept == [2, 2]


def test_an_answer_slower_than_the_whole_request_deadline_is_given_up_and_retried(
    civitai: CivitaiDouble, civitai_catalog: SampleCatalog
) -> None:
    # Each byte comes well within the read timeout; the whole answer would take minutes.
    civitai.drip_json(0.05, n=1, path_prefix="/api/v1/models/")
    client = CivitaiClient(civitai.base_url, timeout=(5, 5), deadline=0.5, backoff=0.01,
                           sleep=lambda _s: None)
    started = time.monotonic()
    assert client.get_model(civitai_catalog.vae.id).name == "Clear VAE"
    assert time.monotonic() - started < 30
    asked = [r for r in civitai.requests if r.path == f"/api/v1/models/{civitai_catalog.vae.id}"]
    assert len(asked) == 2  # the dripping one given up, then a good one


# -- answers too big or too deep are refused, not held in memory ----------------------------------


def _answer_cap_client(civitai: CivitaiDouble) -> CivitaiClient:
    return CivitaiClient(civitai.base_url, max_answer_bytes=1 << 20, backoff=0.01,
                         sleep=lambda _s: None)


def test_an_answer_larger_than_the_cap_is_refused_once_without_retrying(
    civitai: CivitaiDouble, civitai_catalog: SampleCatalog
) -> None:
    path = f"/api/v1/models/{civitai_catalog.vae.id}"
    civitai.replace_json(b'{"id": 1, "name": "' + b"x" * (2 << 20) + b'"}', path_prefix=path)
    with pytest.raises(MalformedResponse) as info:
        _answer_cap_client(civitai).get_model(civitai_catalog.vae.id)
    assert "larger than 1 MB" in str(info.value)
    assert len([r for r in civitai.requests if r.path == path]) == 1


def test_a_compressed_answer_is_capped_by_its_size_once_unpacked(
    civitai: CivitaiDouble, civitai_catalog: SampleCatalog
) -> None:
    # 64 MiB of spaces inside valid JSON, a few KB on the wire: a compression bomb.
    bomb = gzip.compress(b'{"id": 1, "name": "x"' + b" " * (64 << 20) + b"}", 9)
    assert len(bomb) < 1 << 20
    path = f"/api/v1/models/{civitai_catalog.vae.id}"
    civitai.replace_json(bomb, path_prefix=path, headers={"Content-Encoding": "gzip"})
    with pytest.raises(MalformedResponse, match="larger than 1 MB"):
        _answer_cap_client(civitai).get_model(civitai_catalog.vae.id)


def test_an_answer_nested_deeper_than_python_parses_is_a_malformed_answer(
    civitai: CivitaiDouble, civitai_catalog: SampleCatalog
) -> None:
    path = f"/api/v1/models/{civitai_catalog.vae.id}"
    civitai.replace_json(b"[" * 200_000 + b"]" * 200_000, path_prefix=path)
    with pytest.raises(MalformedResponse, match="not JSON"):
        _answer_cap_client(civitai).get_model(civitai_catalog.vae.id)


def test_hash_ids_tells_which_of_many_hashes_civitai_knows(
    civitai: CivitaiDouble, civitai_catalog: SampleCatalog
) -> None:
    c = civitai_catalog
    known = {f.sha256: v.id for v in (c.lora_v1, c.checkpoint_v1) for f in v.files}
    unknown = [f"{random.Random(i).getrandbits(256):064X}" for i in range(3000)]
    client = CivitaiClient(civitai.base_url)
    assert client.known_sha256([*unknown, *known]) == known
    assert len([r for r in civitai.requests if r.path.endswith("/by-hash/ids")]) == 1
    civitai.disable_bulk_hash()
    assert CivitaiClient(civitai.base_url).known_sha256(known) is None  # the caller asks each


# -- a scan through a burst of 429s -------------------------------------------------------------


def test_a_burst_of_429s_during_a_2000_file_scan_slows_it_and_loses_no_lookup(
    civitai: CivitaiDouble, tmp_path: Path
) -> None:
    root = tmp_path / "models"
    (root / "Lora").mkdir(parents=True)
    known = []
    for i in range(40):
        version = civitai.add_version(civitai.add_model(f"Known {i}"), images=[])
        f = version.files[0]
        (root / "Lora" / f"known{i}.safetensors").write_bytes(f.read_bytes())
        known.append(f.sha256)
    for i in range(1960):  # files Civitai never saw
        (root / "Lora" / f"own{i}.safetensors").write_bytes(os.urandom(64))
    # No Retry-After: Civitai's edge limit. More 429s than any fixed retry count.
    civitai.rate_limit(n=30, path_prefix="/api/v1/model-versions/by-hash")
    clock_sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        clock_sleeps.append(seconds)
        time.sleep(seconds)

    connections = Connections(RatePolicy(base=0.02, ceiling=0.1), sleep=sleep)
    lib = Library(Database.open(tmp_path / "library.sqlite3"))
    settings = Settings(library_folders=[str(root)], allow_nsfw=False, hash_workers=2)
    client = connections.client(civitai.base_url, None)
    civitai.clear_requests()

    summary = Scanner(lib, client, settings).scan()

    assert summary.errors == []
    assert (summary.found, summary.identified, summary.unknown) == (2000, 40, 1960)
    states = Counter(row.lookup_state for row in lib.local_files())
    assert states == {"found": 40, "unknown": 1960}  # not one left "error" or "pending"
    governor = connections.governors(client.api_host)
    assert governor.rate_limits == 30
    assert sum(clock_sleeps) > 0.02  # every caller waited its turn after the 429s
    lookups = Counter(r.path for r in civitai.requests
                      if r.path.startswith("/api/v1/model-versions/by-hash"))
    # 20 settle batches of 100: one lookup request each, plus one per 429 answered.
    assert sum(lookups.values()) == 20 + 30


def test_rechecking_a_large_library_of_unknown_files_costs_a_request_or_two(
    civitai: CivitaiDouble, civitai_catalog: SampleCatalog, tmp_path: Path
) -> None:
    root = tmp_path / "models"
    (root / "Lora").mkdir(parents=True)
    for i in range(1500):
        (root / "Lora" / f"own{i}.safetensors").write_bytes(os.urandom(64))
    known = civitai_catalog.lora_v1.files[0]
    (root / "Lora" / "known.safetensors").write_bytes(known.read_bytes())
    lib = Library(Database.open(tmp_path / "library.sqlite3"))
    settings = Settings(library_folders=[str(root)], allow_nsfw=False, hash_workers=2)
    scanner = Scanner(lib, CivitaiClient(civitai.base_url, max_retries=0), settings)
    scanner.scan(full=True, cancel=None)  # the first scan: all hashed, looked up by 100s
    civitai.add_version(civitai.add_model("Published later"), images=[],
                        files=[civitai.file(content=(root / "Lora" / "own7.safetensors")
                                            .read_bytes())])
    civitai.clear_requests()

    summary = scanner.scan(recheck_unknown=True)

    assert (summary.identified, summary.unknown) == (2, 1499)
    asked = Counter(r.path for r in civitai.requests if r.path.startswith("/api/"))
    # One "which of these do you know" for all 1,500, then the full version of the one.
    assert asked == {"/api/v1/model-versions/by-hash/ids": 1, "/api/v1/model-versions/by-hash": 1}
