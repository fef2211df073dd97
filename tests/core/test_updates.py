"""The batched update check against the Civitai double and a real library file."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

from civdesk.core.civitai.client import CivitaiClient
from civdesk.core.civitai.schema import ModelVersion
from civdesk.core.library import Library
from civdesk.core.updates import UpdateChecker
from tests.double import CivitaiDouble, SampleCatalog
from tests.double.catalog import FakeVersion

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def client_for(d: CivitaiDouble, **kw: object) -> CivitaiClient:
    return CivitaiClient(d.base_url, None, sleep=lambda _s: None, **kw)  # type: ignore[arg-type]


def install(library: Library, d: CivitaiDouble, version: FakeVersion, folder: Path) -> None:
    """Put a version's primary file in the library as a scan would have found it."""
    parsed = ModelVersion.from_json(d.version_json(version))
    library.upsert_version(parsed)
    f = version.primary_file
    assert f is not None
    library.register_file(folder / (f.name or "x"), size=f.size, mtime_ns=1, inode=None,
                          sha256=f.sha256, version_id=version.id, file_id=f.id)


def api_model_requests(d: CivitaiDouble) -> list[list[str]]:
    return [r.query.get("ids", "").split(",") for r in d.requests
            if r.host == "api" and r.path == "/api/v1/models"]


def checker_of_lora_and_checkpoint(
    c: SampleCatalog, library: Library, tmp_path: Path
) -> tuple[UpdateChecker, Clock]:
    """A library holding the LoRA's v1 (v2 is out) and the checkpoint, and its checker."""
    install(library, c.double, c.lora_v1, tmp_path)
    install(library, c.double, c.checkpoint_v1, tmp_path)
    clock = Clock()
    return UpdateChecker(library, client_for(c.double), clock=clock), clock


def test_finds_the_newer_version_and_remembers_the_check(
    civitai_catalog: SampleCatalog, library: Library, tmp_path: Path
) -> None:
    d, c = civitai_catalog.double, civitai_catalog
    checker, clock = checker_of_lora_and_checkpoint(civitai_catalog, library, tmp_path)

    result = checker.check()

    assert result.complete and result.problem() is None
    assert (result.due, result.checked) == (2, 2)
    assert [(u.model_id, u.latest_version_id) for u in result.updates] == [
        (c.lora.id, c.lora_v2.id)]
    assert result.updates[0].latest_version_name == "v2.0"
    assert result.updates[0].installed_version_ids == (c.lora_v1.id,)
    # Both models went in one request.
    assert len(api_model_requests(d)) == 1

    d.clear_requests()
    clock.now = T0 + timedelta(minutes=5)
    again = checker.check()
    assert (again.due, again.checked) == (0, 0)
    assert api_model_requests(d) == []
    assert [u.model_id for u in again.updates] == [c.lora.id]  # still known, not re-asked

    clock.now = T0 + timedelta(minutes=6)
    assert checker.check(force=True).checked == 2


def test_asks_in_batches_and_keeps_partial_results_when_one_batch_fails(
    civitai: CivitaiDouble, library: Library, tmp_path: Path
) -> None:
    outdated = []
    for n in range(5):
        model = civitai.add_model(f"Model {n}", "LORA")
        old = civitai.add_version(model, "v1")
        civitai.add_version(model, "v2")
        install(library, civitai, old, tmp_path)
        outdated.append(model.id)
    # One request at a time, so the failure injected after the first batch hits the second.
    checker = UpdateChecker(library, client_for(civitai, max_retries=0), batch_size=2,
                            concurrency=1)
    progress: list[tuple[int, int]] = []

    def on_progress(done: int, total: int) -> None:
        progress.append((done, total))
        if len(progress) == 1:
            civitai.fail(n=1, status=500)  # the next request, the second batch, fails

    result = checker.check(progress=on_progress)

    assert [len(ids) for ids in api_model_requests(civitai)] == [2, 2, 1]
    assert result.due == 5 and result.checked == 3
    assert result.unchecked == outdated[2:4]
    assert "HTTP 500" in result.errors[0]
    assert "2 of 5 models could not be checked" in (result.problem() or "")
    assert sorted(u.model_id for u in result.updates) == sorted(outdated[:2] + outdated[4:])
    assert progress == [(2, 5), (4, 5), (5, 5)]
    # The next check asks only about what was left.
    civitai.clear_requests()
    retry = checker.check()
    assert retry.due == 2 and retry.complete
    assert len(retry.updates) == 5


def test_stops_at_a_rate_limit_and_reports_the_rest(
    civitai_catalog: SampleCatalog, library: Library, tmp_path: Path
) -> None:
    d, c = civitai_catalog.double, civitai_catalog
    for version in (c.lora_v1, c.checkpoint_v1, c.embedding_v1):
        install(library, d, version, tmp_path)
    d.rate_limit(n=10, retry_after=0.01, path_prefix="/api/v1/models")
    # No patience left for waiting out the limit: the retry count decides.
    checker = UpdateChecker(library, client_for(d, max_retries=2, rate_limit_patience=0),
                            batch_size=1, concurrency=1)

    result = checker.check()

    # One batch tried (1 + 2 retries), then the check stopped instead of hammering on.
    assert len(api_model_requests(d)) == 3
    assert result.checked == 0 and len(result.unchecked) == 3
    assert "rate limiting" in (result.problem() or "")


def test_models_civitai_no_longer_lists_are_not_asked_about_again(
    civitai_catalog: SampleCatalog, library: Library, tmp_path: Path
) -> None:
    d, c = civitai_catalog.double, civitai_catalog
    install(library, d, c.vae_v1, tmp_path)
    d.remove(c.vae)
    clock = Clock()
    checker = UpdateChecker(library, client_for(d), clock=clock)

    result = checker.check()
    assert result.complete and result.not_listed == [c.vae.id] and result.updates == []
    clock.now = T0 + timedelta(minutes=1)
    assert checker.check().due == 0


def test_a_set_cancel_event_leaves_everything_unchecked(
    civitai_catalog: SampleCatalog, library: Library, tmp_path: Path
) -> None:
    d, c = civitai_catalog.double, civitai_catalog
    install(library, d, c.lora_v1, tmp_path)
    cancel = threading.Event()
    cancel.set()
    result = UpdateChecker(library, client_for(d)).check(cancel=cancel)
    assert result.unchecked == [c.lora.id] and api_model_requests(d) == []


def outdated_models(
    civitai: CivitaiDouble, library: Library, folder: Path, count: int
) -> list[int]:
    """``count`` models with v1 in the library and a v2 on Civitai; their ids."""
    ids = []
    for n in range(count):
        model = civitai.add_model(f"Model {n}", "LORA")
        old = civitai.add_version(model, "v1")
        civitai.add_version(model, "v2")
        install(library, civitai, old, folder)
        ids.append(model.id)
    return ids


def test_asks_a_few_batches_at_once_and_stores_them_in_order(
    civitai: CivitaiDouble, library: Library, tmp_path: Path
) -> None:
    from civdesk.core.updates import CONCURRENCY

    outdated = outdated_models(civitai, library, tmp_path, 7)
    civitai.api_latency(0.2)  # Civitai is far away: answers are waited on together
    progress: list[tuple[int, int]] = []
    checker = UpdateChecker(library, client_for(civitai), batch_size=1)
    result = checker.check(progress=lambda done, total: progress.append((done, total)))

    assert 2 <= civitai.peak_concurrency["api"] <= CONCURRENCY  # together, and no more
    assert result.complete and result.checked == 7
    assert sorted(u.model_id for u in result.updates) == sorted(outdated)
    assert progress == [(n, 7) for n in range(1, 8)]  # in batch order, whatever came first
    assert sorted(int(ids[0]) for ids in api_model_requests(civitai)) == sorted(outdated)


def test_with_batches_in_flight_a_failed_one_is_left_for_next_time(
    civitai: CivitaiDouble, library: Library, tmp_path: Path
) -> None:
    outdated = outdated_models(civitai, library, tmp_path, 5)
    civitai.fail(n=1, status=500)  # whichever request comes first
    checker = UpdateChecker(library, client_for(civitai, max_retries=0), batch_size=1)

    result = checker.check()

    assert result.checked == 4 and len(result.unchecked) == 1
    assert "HTTP 500" in result.errors[0]
    civitai.clear_requests()
    retry = checker.check()
    assert retry.due == 1 and retry.complete
    assert api_model_requests(civitai) == [[str(result.unchecked[0])]]
    assert sorted(u.model_id for u in retry.updates) == sorted(outdated)


def test_a_rate_limit_stops_new_requests_while_others_are_in_flight(
    civitai: CivitaiDouble, library: Library, tmp_path: Path
) -> None:
    from civdesk.core.updates import CONCURRENCY

    outdated = outdated_models(civitai, library, tmp_path, 8)
    civitai.rate_limit(n=100, retry_after=0.01, path_prefix="/api/v1/models")
    checker = UpdateChecker(library, client_for(civitai, max_retries=1, rate_limit_patience=0),
                            batch_size=1)

    result = checker.check()

    assert result.checked == 0 and sorted(result.unchecked) == sorted(outdated)
    assert "rate limiting" in (result.problem() or "")
    # Only the batches already asked for were tried (with their retry); none after them.
    asked = {int(ids[0]) for ids in api_model_requests(civitai)}
    assert asked and asked <= set(outdated[:CONCURRENCY])
    assert len(api_model_requests(civitai)) <= CONCURRENCY * 2


def test_removed_models_are_skipped_and_asked_again_after_a_week(
    civitai_catalog: SampleCatalog, library: Library, tmp_path: Path
) -> None:
    d, c = civitai_catalog.double, civitai_catalog
    checker, clock = checker_of_lora_and_checkpoint(civitai_catalog, library, tmp_path)
    d.archive(c.lora)
    first = checker.check()
    assert first.removed == 1
    assert first.updates == []  # a removed model offers no update (its v2 is gone too)
    [lora] = [e for e in library.entries() if e.model_id == c.lora.id]
    assert lora.removed and lora.removed_how == "archived"
    # The stored version keeps its files although Civitai lists none now.
    assert library.version(c.lora_v1.id).files  # type: ignore[union-attr]

    d.clear_requests()
    clock.now = T0 + timedelta(days=1)
    forced = checker.check(force=True)
    assert forced.due == 1 and api_model_requests(d) == [[str(c.checkpoint.id)]]

    d.reset_faults()  # Civitai put it back
    clock.now = T0 + timedelta(days=8)
    back = checker.check(force=True)
    assert back.due == 2 and back.removed == 0
    assert not [e for e in library.entries() if e.removed]
    assert [u.model_id for u in back.updates] == [c.lora.id]


def test_a_burst_of_429s_pauses_the_check_and_it_completes(
    civitai: CivitaiDouble, library: Library, tmp_path: Path
) -> None:
    outdated = outdated_models(civitai, library, tmp_path, 8)
    civitai.rate_limit(n=12, path_prefix="/api/v1/models")  # no Retry-After
    client = client_for(civitai, max_retries=1, backoff=0.01, max_backoff=0.05)
    checker = UpdateChecker(library, client, batch_size=1)

    result = checker.check()

    assert result.errors == [] and result.unchecked == []
    assert result.checked == len(outdated)
    governor = client.governors(client.api_host)
    assert governor.rate_limits == 12  # every 429 slowed the shared governor
    assert len(api_model_requests(civitai)) == len(outdated) + 12


def test_a_cancel_ends_a_check_waiting_out_a_rate_limit(
    civitai: CivitaiDouble, library: Library, tmp_path: Path
) -> None:
    outdated = outdated_models(civitai, library, tmp_path, 3)
    civitai.rate_limit(n=100, retry_after=3600, path_prefix="/api/v1/models")
    cancel = threading.Event()
    slept: list[float] = []

    def sleep(seconds: float) -> None:  # the first step of the wait: the window closes
        slept.append(seconds)
        cancel.set()

    client = CivitaiClient(civitai.base_url, None, sleep=sleep)
    result = UpdateChecker(library, client, batch_size=1).check(cancel=cancel)

    assert result.checked == 0 and sorted(result.unchecked) == sorted(outdated)
    assert len(slept) <= 3  # one step per thread, not an hour of them
