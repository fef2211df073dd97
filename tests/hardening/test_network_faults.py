"""Network faults against the double: each ends in a retry that succeeds or one clear failure,
and the download queue goes on with the next task.

The client's read timeout is a constructor argument, so a stalled body costs half a second
here, not a minute.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from civdesk.core.civitai.client import CivitaiClient
from civdesk.core.civitai.errors import CivitaiError, NetworkError, RateLimited, ServerError
from civdesk.core.downloads.queue import DownloadQueue, TaskSnapshot
from civdesk.core.library.db import Database
from tests.double import CivitaiDouble, FakeVersion
from tests.hardening.helpers import MiB, quick_client, quick_downloader, sha256_of

FILE_SIZE = 3 * MiB + 321


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database.open(tmp_path / "library.sqlite3")
    try:
        yield database
    finally:
        database.close()


def two_versions(d: CivitaiDouble) -> tuple[FakeVersion, FakeVersion]:
    first = d.add_model("First", "Checkpoint")
    second = d.add_model("Second", "LORA")
    return (d.add_version(first, files=[d.file(size=FILE_SIZE)]),
            d.add_version(second, files=[d.file(size=FILE_SIZE)]))


def queue_for(client: CivitaiClient, db: Database) -> DownloadQueue:
    return DownloadQueue(db, client, downloader=quick_downloader(client),
                         rate_limit_retries=1, max_rate_limit_wait=0.05)


def run_both(d: CivitaiDouble, db: Database, tmp_path: Path, client: CivitaiClient | None = None
             ) -> tuple[TaskSnapshot, TaskSnapshot, list[FakeVersion]]:
    versions = list(two_versions(d))
    queue = queue_for(client or quick_client(d), db)
    ids = [queue.add(v.id, dest_dir=tmp_path / "dl") for v in versions]
    assert queue.run_until_empty() == 2
    return queue.task(ids[0]), queue.task(ids[1]), versions


def assert_completed(task: TaskSnapshot, version: FakeVersion) -> None:
    assert task.state == "completed", task.error
    assert task.dest_path is not None
    assert sha256_of(Path(task.dest_path)) == version.files[0].sha256


def assert_clear_failure(task: TaskSnapshot, *words: str) -> None:
    """Failed with one line a person can act on (not a bug's "Unexpected error")."""
    assert task.state == "failed"
    assert task.error and "\n" not in task.error
    assert not task.error.startswith("Unexpected error"), task.error
    for word in words:
        assert word.lower() in task.error.lower(), task.error


def storage_ranges(d: CivitaiDouble) -> list[str | None]:
    return [r.headers.get("Range") for r in d.requests
            if r.host == "storage" and r.path.startswith("/files/")]


# -- connection level ----------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_connection_refused_is_retried_then_one_clear_error(db: Database, tmp_path: Path) -> None:
    waits: list[float] = []
    client = CivitaiClient(f"http://127.0.0.1:{closed_port()}", "k", max_retries=2,
                           backoff=0.001, sleep=waits.append)
    with pytest.raises(NetworkError) as caught:
        client.get_version(1)
    assert len(waits) == 2  # tried three times
    assert "Cannot reach Civitai" in str(caught.value) and "refused" in str(caught.value)
    queue = queue_for(client, db)
    task_id = queue.add(1, dest_dir=tmp_path)
    queue.run_until_empty()  # never raises for a task's failure
    task = queue.task(task_id)
    assert_clear_failure(task, "cannot reach")
    assert task.error_kind == "network"


def test_reset_mid_body_resumes(civitai: CivitaiDouble, db: Database, tmp_path: Path) -> None:
    civitai.reset_downloads(after_bytes=MiB + 5)
    first, second, versions = run_both(civitai, db, tmp_path)
    assert_completed(first, versions[0])
    assert_completed(second, versions[1])
    # A reset discards what the kernel had buffered: the retry may start at 0 or resume.
    assert len(storage_ranges(civitai)) == 3


def test_stalled_body_times_out_and_resumes(
    civitai: CivitaiDouble, db: Database, tmp_path: Path
) -> None:
    civitai.stall_downloads(seconds=30)
    started = time.monotonic()
    first, second, versions = run_both(civitai, db, tmp_path,
                                       quick_client(civitai, timeout=(2.0, 0.5)))
    assert time.monotonic() - started < 10
    assert_completed(first, versions[0])
    assert_completed(second, versions[1])


def test_truncated_body_resumes_with_range(
    civitai: CivitaiDouble, db: Database, tmp_path: Path
) -> None:
    civitai.truncate_downloads(after_bytes=MiB + 99)
    first, second, versions = run_both(civitai, db, tmp_path)
    assert_completed(first, versions[0])
    assert_completed(second, versions[1])
    assert f"bytes={MiB + 99}-" in storage_ranges(civitai)


def test_content_length_too_long_resumes(
    civitai: CivitaiDouble, db: Database, tmp_path: Path
) -> None:
    civitai.wrong_content_length(delta=1000)
    first, second, versions = run_both(civitai, db, tmp_path)
    assert_completed(first, versions[0])
    assert_completed(second, versions[1])


def test_content_length_too_short_fails_verification_clearly(
    civitai: CivitaiDouble, db: Database, tmp_path: Path
) -> None:
    # The body matches the length announced: only the hash can tell the file is short.
    civitai.wrong_content_length(delta=-1000)
    first, second, versions = run_both(civitai, db, tmp_path)
    assert_clear_failure(first, "corrupt")
    assert first.error_kind == "hash_mismatch"
    assert not list((tmp_path / "dl").glob("First*"))  # nothing under a final name
    assert_completed(second, versions[1])


# -- status codes --------------------------------------------------------------------------


def test_a_burst_of_5xx_is_retried(civitai: CivitaiDouble, db: Database, tmp_path: Path) -> None:
    civitai.fail(n=3, status=503, path_prefix="/api/v1/model-versions/")
    civitai.fail(n=2, status=502, path_prefix="/files/")
    first, second, versions = run_both(civitai, db, tmp_path)
    assert_completed(first, versions[0])
    assert_completed(second, versions[1])


def test_endless_5xx_fails_that_task_only(
    civitai: CivitaiDouble, db: Database, tmp_path: Path
) -> None:
    versions = two_versions(civitai)
    civitai.fail(n=100, status=500, path_prefix=f"/api/download/models/{versions[0].id}")
    client = quick_client(civitai)
    with pytest.raises(ServerError, match="HTTP 500"):
        client.open_download(versions[0].id)
    queue = queue_for(client, db)
    ids = [queue.add(v.id, dest_dir=tmp_path / "dl") for v in versions]
    queue.run_until_empty()
    assert_clear_failure(queue.task(ids[0]), "trouble")
    assert_completed(queue.task(ids[1]), versions[1])


@pytest.mark.parametrize("retry_after", [0.25, None])
def test_429_waits_then_succeeds(civitai: CivitaiDouble, retry_after: float | None) -> None:
    model = civitai.add_model()
    version = civitai.add_version(model)
    civitai.rate_limit(n=2, retry_after=retry_after)
    waits: list[float] = []
    client = quick_client(civitai, sleep=waits.append, backoff=0.01)
    assert client.get_version(version.id).id == version.id
    assert len(waits) == 2
    if retry_after is None:
        assert all(0 < w <= 0.02 for w in waits)  # backoff, not a fixed guess
    else:
        assert waits == pytest.approx([retry_after, retry_after], abs=0.01)


def test_429_that_never_ends_fails_that_task_only(
    civitai: CivitaiDouble, db: Database, tmp_path: Path
) -> None:
    versions = two_versions(civitai)
    civitai.rate_limit(n=100, retry_after=30, path_prefix=f"/api/download/models/{versions[0].id}")
    client = quick_client(civitai)
    with pytest.raises(RateLimited) as caught:
        client.open_download(versions[0].id)
    assert caught.value.retry_after == 30
    queue = queue_for(client, db)
    ids = [queue.add(v.id, dest_dir=tmp_path / "dl") for v in versions]
    started = time.monotonic()
    queue.run_until_empty()
    assert time.monotonic() - started < 10  # the queue's wait is bounded too
    first = queue.task(ids[0])
    assert_clear_failure(first, "rate limit")
    assert first.error_kind == "rate_limited"
    assert_completed(queue.task(ids[1]), versions[1])


# -- redirects -----------------------------------------------------------------------------


def test_redirect_loop_is_a_clear_failure(
    civitai: CivitaiDouble, db: Database, tmp_path: Path
) -> None:
    versions = two_versions(civitai)
    civitai.redirect_loop(versions[0])
    client = quick_client(civitai)
    with pytest.raises(CivitaiError):
        client.open_download(versions[0].id)
    queue = queue_for(client, db)
    ids = [queue.add(v.id, dest_dir=tmp_path / "dl") for v in versions]
    queue.run_until_empty()
    assert_clear_failure(queue.task(ids[0]), "redirect")
    assert_completed(queue.task(ids[1]), versions[1])


@pytest.mark.parametrize("location", ["file:///etc/passwd", "ftp://127.0.0.1/model.bin",
                                      "javascript:alert(1)"])
def test_redirect_to_a_non_http_scheme_is_refused(
    civitai: CivitaiDouble, db: Database, tmp_path: Path, location: str
) -> None:
    versions = two_versions(civitai)
    civitai.redirect_download(versions[0], location)
    client = quick_client(civitai)
    with pytest.raises(CivitaiError):
        client.open_download(versions[0].id)
    queue = queue_for(client, db)
    ids = [queue.add(v.id, dest_dir=tmp_path / "dl") for v in versions]
    queue.run_until_empty()
    assert_clear_failure(queue.task(ids[0]))
    assert not (tmp_path / "dl" / "passwd").exists()
    assert_completed(queue.task(ids[1]), versions[1])
