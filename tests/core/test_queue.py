"""DownloadQueue on a real SQLite file, downloading from the loopback double."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from civdesk.core.civitai.client import CivitaiClient
from civdesk.core.civitai.connections import DOWNLOADS
from civdesk.core.downloads.downloader import Downloader
from civdesk.core.downloads.queue import (
    DownloadQueue,
    IllegalTransition,
    RegisterInLibrary,
    TaskSnapshot,
)
from civdesk.core.downloads.store import DOWNLOADING
from civdesk.core.library.db import Database
from civdesk.core.library.repository import Library
from civdesk.core.settings import Settings
from tests.double import CivitaiDouble, FakeVersion, SampleCatalog
from tests.sql_log import SqlLog

MiB = 1 << 20


class Events(list[tuple[str, Any]]):
    def __call__(self, event: str, payload: Any) -> None:
        self.append((event, payload))

    def of(self, event: str) -> list[Any]:
        return [p for e, p in self if e == event]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database.open(tmp_path / "library.sqlite3")
    yield database
    database.close()


def make_queue(d: CivitaiDouble, db: Database, **kw: Any) -> DownloadQueue:
    # The queue's own patience, as DownloadQueue.for_core gives it (it waits rate limits
    # out itself, visibly).
    client = CivitaiClient(d.base_url, max_retries=1, backoff=0.001, sleep=lambda s: None,
                           rate_limit_patience=DOWNLOADS.rate_limit_patience)
    downloader = Downloader(client, sleep=lambda s: None, retry_delay=0, progress_interval=0)
    return DownloadQueue(db, client, downloader=downloader, **kw)


def big_version(d: CivitaiDouble, name: str = "Big", size: int = 4 * MiB) -> FakeVersion:
    return d.add_version(d.add_model(name, "Checkpoint"), files=[d.file(size=size)])


def sha_of(path: str | None) -> str:
    assert path is not None
    return hashlib.sha256(Path(path).read_bytes()).hexdigest().upper()


def test_runs_in_order_and_records_the_history(
    civitai: CivitaiDouble, civitai_catalog: SampleCatalog, db: Database, tmp_path: Path
) -> None:
    queue = make_queue(civitai, db)
    events = Events()
    queue.add_listener(events)
    dest = tmp_path / "dl"
    versions = [civitai_catalog.lora_v1, civitai_catalog.vae_v1, civitai_catalog.embedding_v1]
    ids = [queue.add(v.id, dest_dir=dest) for v in versions]

    assert queue.run_until_empty() == 3
    tasks = queue.tasks()
    assert [t.id for t in tasks] == ids
    assert [t.state for t in tasks] == ["completed"] * 3
    for task, version in zip(tasks, versions, strict=True):
        assert sha_of(task.dest_path) == version.files[0].sha256
        assert task.model_name and task.file_name == version.files[0].name
        assert task.percent == 100.0 and task.part_path is None
    assert [s.id for s in events.of("finished")] == ids
    assert [s.id for s in events.of("added")] == ids
    assert events[-1] == ("idle", None)


def test_a_failure_is_reported_and_the_next_task_still_runs(
    civitai: CivitaiDouble, civitai_catalog: SampleCatalog, db: Database, tmp_path: Path
) -> None:
    civitai.archive(civitai_catalog.checkpoint)
    queue = make_queue(civitai, db)
    archived = queue.add(civitai_catalog.checkpoint_v1.id, dest_dir=tmp_path)
    missing = queue.add(777, dest_dir=tmp_path)
    good = queue.add(civitai_catalog.vae_v1.id, dest_dir=tmp_path)
    queue.run_until_empty()

    first, second, third = (queue.task(i) for i in (archived, missing, good))
    assert (first.state, first.error_kind) == ("failed", "archived")
    assert first.error == "This model was archived on Civitai and can no longer be downloaded"
    assert (second.state, second.error_kind) == ("failed", "not_found")
    assert "not found on Civitai" in (second.error or "")
    assert third.state == "completed"
    assert not list(tmp_path.glob("*.part"))


def test_move_reorders_waiting_tasks(
    civitai: CivitaiDouble, civitai_catalog: SampleCatalog, db: Database, tmp_path: Path
) -> None:
    queue = make_queue(civitai, db)
    a, b, c = (queue.add(v.id, dest_dir=tmp_path) for v in civitai_catalog.versions[:3])
    events = Events()
    queue.add_listener(events)
    queue.move(c, 0)
    assert [t.id for t in queue.tasks()] == [c, a, b]
    assert [t.id for t in events.of("reordered")[0]] == [c, a, b]
    queue.move(c, 99)
    assert [t.id for t in queue.tasks()] == [a, b, c]
    finished: list[int] = []
    queue.add_listener(lambda e, p: finished.append(p.id) if e == "finished" else None)
    queue.run_until_empty()
    assert finished == [a, b, c]
    with pytest.raises(IllegalTransition):
        queue.move(a, 0)


def with_history(queue: DownloadQueue, count: int) -> list[int]:
    """``count`` finished tasks (completed, failed, cancelled in turn), as months of use
    leave them; their ids."""
    ids = []
    for i in range(count):
        task_id = queue.add(10_000 + i)
        queue.store.update(task_id, state=("completed", "failed", "cancelled")[i % 3])
        ids.append(task_id)
    return ids


def test_moving_a_waiting_task_leaves_the_history_alone(
    civitai: CivitaiDouble, db: Database, tmp_path: Path
) -> None:
    queue = make_queue(civitai, db)
    history = with_history(queue, 300)
    a, b, c = (queue.add(v) for v in (1, 2, 3))
    positions = {t.id: t.position for t in queue.tasks() if t.id in history}

    with SqlLog(db, "download_tasks") as sql:
        queue.move(c, 0)

    assert [t.id for t in queue.tasks() if t.id not in history] == [c, a, b]
    # A few statements, not one per task of the history; the three waiting rows at most.
    assert len(sql.statements) <= 8, sql.statements
    assert sql.rows_of("UPDATE download_tasks") <= 3
    assert {t.id: t.position for t in queue.tasks() if t.id in history} == positions


def test_clear_finished_forgets_the_whole_history_at_once(
    civitai: CivitaiDouble, db: Database, tmp_path: Path
) -> None:
    queue = make_queue(civitai, db)
    history = with_history(queue, 250)
    waiting = queue.add(1)
    events = Events()
    queue.add_listener(events)

    with SqlLog(db, "download_tasks") as sql:
        assert queue.clear_finished() == 250

    assert len(sql.statements) <= 3, sql.statements  # not a transaction per task

    assert [t.id for t in queue.tasks()] == [waiting]
    # One event with every id: the list views drop the rows in ranges, not one by one.
    assert [sorted(ids) for ids in events.of("removed")] == [sorted(history)]
    assert queue.clear_finished() == 0


def test_cancel_a_waiting_and_a_running_task(
    civitai: CivitaiDouble, civitai_catalog: SampleCatalog, db: Database, tmp_path: Path
) -> None:
    version = big_version(civitai, size=8 * MiB)
    civitai.throttle_downloads(8 * MiB)
    queue = make_queue(civitai, db)
    dest = tmp_path / "dl"
    running = queue.add(version.id, dest_dir=dest)
    waiting = queue.add(civitai_catalog.vae_v1.id, dest_dir=dest)
    queue.cancel(waiting)
    assert queue.task(waiting).state == "cancelled"

    def cancel_midway(event: str, snap: Any) -> None:
        if event == "progress" and snap.id == running and snap.bytes_done >= MiB:
            queue.cancel(running)

    queue.add_listener(cancel_midway)
    result = queue.run_next()
    assert result is not None and result.state == "cancelled"
    assert result.error_kind == "cancelled"
    assert list(dest.iterdir()) == []  # the .part went with it
    assert queue.run_next() is None

    with pytest.raises(IllegalTransition):
        queue.cancel(running)  # already cancelled


def test_retry_requeues_failed_and_cancelled_tasks(
    civitai: CivitaiDouble, civitai_catalog: SampleCatalog, db: Database, tmp_path: Path
) -> None:
    civitai.archive(civitai_catalog.vae)
    queue = make_queue(civitai, db)
    failed = queue.add(civitai_catalog.vae_v1.id, dest_dir=tmp_path)
    cancelled = queue.add(civitai_catalog.lora_v1.id, dest_dir=tmp_path)
    queue.cancel(cancelled)
    queue.run_until_empty()
    assert queue.task(failed).state == "failed"

    civitai.reset_faults()
    queue.retry(failed)
    queue.retry(cancelled)
    assert queue.task(failed).error is None
    queue.run_until_empty()
    assert [queue.task(i).state for i in (failed, cancelled)] == ["completed", "completed"]
    with pytest.raises(IllegalTransition, match="already completed"):
        queue.retry(failed)


def test_the_client_is_prepared_once_the_task_is_claimed(
    civitai: CivitaiDouble, civitai_catalog: SampleCatalog, db: Database, tmp_path: Path
) -> None:
    # The window reads the key here: after the claim, so a Retry that re-queued the task
    # after the key was saved is downloaded with that key, never with one read before.
    queue = make_queue(civitai, db)
    task = queue.add(civitai_catalog.lora_v1.id, dest_dir=tmp_path)
    seen: list[str] = []
    queue.before_task = lambda: seen.append(queue.task(task).state)
    assert queue.run_next() is not None
    assert seen == ["downloading"]
    assert queue.run_next() is None and seen == ["downloading"]  # nothing claimed: not called


def test_pause_keeps_the_part_and_resume_continues_it(
    civitai: CivitaiDouble, db: Database, tmp_path: Path
) -> None:
    version = big_version(civitai, size=8 * MiB)
    civitai.throttle_downloads(8 * MiB)
    queue = make_queue(civitai, db)
    queue.add(version.id, dest_dir=tmp_path)
    events = Events()
    queue.add_listener(events)

    def pause_midway(event: str, snap: Any) -> None:
        if event == "progress" and snap.bytes_done >= MiB:
            queue.pause()

    queue.add_listener(pause_midway)
    snap = queue.run_next()
    assert snap is not None and snap.state == "queued"
    assert 0 < snap.bytes_done < version.files[0].size
    assert snap.part_path and Path(snap.part_path).stat().st_size == snap.bytes_done
    assert queue.paused and queue.run_next() is None
    assert ("paused", True) in events

    queue.remove_listener(pause_midway)
    civitai.throttle_downloads(None)
    civitai.clear_requests()
    queue.resume()
    done = queue.run_next()
    assert done is not None and done.state == "completed"
    assert sha_of(done.dest_path) == version.files[0].sha256
    assert civitai.storage_headers[0]["Range"] == f"bytes={snap.bytes_done}-"


def test_a_pause_outlives_a_restart_but_a_task_asked_for_by_id_still_runs(
    civitai: CivitaiDouble, civitai_catalog: SampleCatalog, db: Database, tmp_path: Path
) -> None:
    first = make_queue(civitai, db)
    task_id = first.add(civitai_catalog.vae_v1.id, dest_dir=tmp_path)
    first.pause()
    again = make_queue(civitai, db)  # the app started again
    assert again.paused and again.run_next() is None
    assert again.task(task_id).state == "queued"
    done = again.run_next(task_id)  # `civdesk download` in a terminal: that file, now
    assert done is not None and done.state == "completed"
    again.resume()
    assert not make_queue(civitai, db).paused


def test_tasks_survive_a_restart_and_an_interrupted_one_resumes(
    civitai: CivitaiDouble, civitai_catalog: SampleCatalog, db: Database, tmp_path: Path
) -> None:
    version = big_version(civitai)
    first = make_queue(civitai, db)
    interrupted = first.add(version.id, dest_dir=tmp_path)
    later = first.add(civitai_catalog.vae_v1.id, dest_dir=tmp_path)
    first.move(later, 0)
    # What a crash mid-download leaves: a .part on disk and the row still "downloading".
    f = version.files[0]
    part = tmp_path / (f.name + ".part")
    part.write_bytes(f.read_bytes()[: MiB + 3])
    first.store.update(interrupted, state=DOWNLOADING, part_path=str(part))
    db.close()

    reopened_db = Database.open(db.path)
    try:
        second = make_queue(civitai, reopened_db)
        tasks = second.tasks()
        assert [(t.id, t.state) for t in tasks] == [(later, "queued"), (interrupted, "queued")]
        second.run_until_empty()
        done = second.task(interrupted)
        assert done.state == "completed" and sha_of(done.dest_path) == f.sha256
        assert f"bytes={MiB + 3}-" in [h.get("Range") for h in civitai.storage_headers]
    finally:
        reopened_db.close()


def test_rate_limited_task_waits_and_retries(
    civitai: CivitaiDouble, civitai_catalog: SampleCatalog, db: Database, tmp_path: Path
) -> None:
    # Two 429s per open (the client retries once), three opens refused, then it gets through.
    civitai.rate_limit(n=6, retry_after=0.01, path_prefix="/api/download/")
    queue = make_queue(civitai, db, rate_limit_retries=3)
    events = Events()
    queue.add_listener(events)
    task_id = queue.add(civitai_catalog.vae_v1.id, dest_dir=tmp_path)
    queue.run_until_empty()
    assert queue.task(task_id).state == "completed"
    waits = [s for s in events.of("changed") if s.error_kind == "rate_limited"]
    assert len(waits) == 3
    assert waits[0].error == "Civitai is rate limiting requests; retrying in 0 s"


def test_rate_limited_beyond_the_retries_fails_with_its_kind(
    civitai: CivitaiDouble, civitai_catalog: SampleCatalog, db: Database, tmp_path: Path
) -> None:
    civitai.rate_limit(n=100, retry_after=0.01, path_prefix="/api/download/")
    queue = make_queue(civitai, db, rate_limit_retries=1)
    task_id = queue.add(civitai_catalog.vae_v1.id, dest_dir=tmp_path)
    queue.run_until_empty()
    task = queue.task(task_id)
    assert (task.state, task.error_kind) == ("failed", "rate_limited")
    assert task.retry_after == 0.01


def test_folder_by_type_and_registration_in_the_library(
    civitai: CivitaiDouble, civitai_catalog: SampleCatalog, db: Database, tmp_path: Path
) -> None:
    library = Library(db)
    settings = Settings(download_root=str(tmp_path / "models"))
    client = CivitaiClient(civitai.base_url, sleep=lambda s: None)
    queue = DownloadQueue(db, client, settings=settings,
                          post_download=RegisterInLibrary(library, client, lambda: False))
    task_id = queue.add(civitai_catalog.lora_v2.id)
    snap: TaskSnapshot | None = queue.run_next()
    assert snap is not None and snap.state == "completed", snap and snap.error
    path = Path(snap.dest_path or "")
    assert path.parent == (tmp_path / "models" / "Lora").resolve()
    assert queue.task(task_id).model_type == "LORA"

    local = library.local_file(path)
    assert local is not None
    assert local.version_id == civitai_catalog.lora_v2.id
    assert local.sha256 == civitai_catalog.lora_v2.files[0].sha256
    assert local.identified_by == "download"
    assert local.verified and queue.task(task_id).checked == "sha256"
    assert local.info_path and Path(local.info_path).is_file()
    assert library.version_json(civitai_catalog.lora_v2.id) is not None


def test_a_file_found_again_by_its_sha256_becomes_verified(
    civitai: CivitaiDouble, civitai_catalog: SampleCatalog, db: Database, tmp_path: Path
) -> None:
    version = civitai_catalog.lora_v2
    f = version.files[0]
    kept = tmp_path / "dl" / f.name
    place_scanned(db, kept, f.content.read(), version)  # e.g. identified by its companion
    Library(db).update_file(str(kept), verified=False)
    queue = library_queue(civitai, db, tmp_path / "models")
    queue.add(version.id, dest_dir=tmp_path / "dl")
    snap = queue.run_next()
    assert snap is not None and (snap.state, snap.already_present) == ("completed", True)
    assert downloads_served(civitai) == 0
    local = Library(db).local_file(kept)
    assert local is not None and local.verified


def test_the_vae_a_checkpoint_offers_goes_to_the_vae_folder(
    civitai: CivitaiDouble, civitai_catalog: SampleCatalog, db: Database, tmp_path: Path
) -> None:
    version = civitai_catalog.checkpoint_v1
    vae = next(f for f in version.files if f.type == "VAE")
    queue = library_queue(civitai, db, tmp_path / "models")
    queue.add(version.id, file_id=vae.id)
    snap = queue.run_next()
    assert snap is not None and snap.state == "completed", snap and snap.error
    assert Path(snap.dest_path or "").parent == (tmp_path / "models" / "VAE").resolve()
    queue.add(version.id)  # the checkpoint itself: its type's folder
    snap = queue.run_next()
    assert snap is not None and snap.state == "completed", snap and snap.error
    assert Path(snap.dest_path or "").parent == (
        tmp_path / "models" / "Stable-diffusion").resolve()


def library_queue(d: CivitaiDouble, db: Database, root: Path) -> DownloadQueue:
    """The queue as the app builds it: type folders under ``root``, files registered."""
    client = CivitaiClient(d.base_url, sleep=lambda s: None)
    return DownloadQueue(db, client, settings=Settings(download_root=str(root)),
                         post_download=RegisterInLibrary(Library(db), client, lambda: False))


def downloads_served(d: CivitaiDouble) -> int:
    """Model files the double's storage sent (previews come from there too)."""
    return sum(1 for r in d.requests if r.host == "storage" and r.path.startswith("/files/"))


def place_scanned(db: Database, path: Path, data: bytes, version: FakeVersion | None) -> None:
    """A file as a scan leaves it: on disk, registered with its hash and version (None: the
    scan could not ask Civitai)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    st = path.stat()
    Library(db).register_file(
        path, size=st.st_size, mtime_ns=st.st_mtime_ns, inode=st.st_ino,
        sha256=hashlib.sha256(data).hexdigest().upper(),
        version_id=version.id if version else None, identified_by="hash")


def test_a_file_the_library_holds_elsewhere_is_not_downloaded_again(
    civitai: CivitaiDouble, civitai_catalog: SampleCatalog, db: Database, tmp_path: Path
) -> None:
    version = civitai_catalog.lora_v2
    kept = tmp_path / "models" / "Lora" / "styles" / "renamed by me.safetensors"
    place_scanned(db, kept, version.files[0].content.read(), version)
    queue = library_queue(civitai, db, tmp_path / "models")
    task_id = queue.add(version.id)
    snap = queue.run_next()

    assert snap is not None and (snap.state, snap.already_present) == ("completed", True)
    assert snap.dest_path == str(kept) and snap.bytes_done == kept.stat().st_size
    assert downloads_served(civitai) == 0
    assert list((tmp_path / "models" / "Lora").iterdir()) == [kept.parent]  # no second copy
    assert queue.task(task_id).already_present  # in the history after a restart too
    local = Library(db).local_file(kept)
    assert local is not None and local.identified_by == "hash"  # the scan's record stays


def test_a_held_file_the_scan_could_not_identify_learns_its_version(
    civitai: CivitaiDouble, civitai_catalog: SampleCatalog, db: Database, tmp_path: Path
) -> None:
    version = civitai_catalog.lora_v2
    kept = tmp_path / "models" / "Lora" / "offline.safetensors"
    place_scanned(db, kept, version.files[0].content.read(), None)  # scanned offline
    queue = library_queue(civitai, db, tmp_path / "models")
    queue.add(version.id)
    snap = queue.run_next()
    assert snap is not None and snap.already_present and snap.dest_path == str(kept)
    local = Library(db).local_file(kept)
    assert local is not None and local.version_id == version.id
    assert downloads_served(civitai) == 0


def test_a_folder_of_its_own_or_a_changed_copy_still_downloads(
    civitai: CivitaiDouble, civitai_catalog: SampleCatalog, db: Database, tmp_path: Path
) -> None:
    version = civitai_catalog.lora_v2
    data = version.files[0].content.read()
    kept = tmp_path / "elsewhere" / "lora.safetensors"
    place_scanned(db, kept, data, version)
    queue = library_queue(civitai, db, tmp_path / "models")

    # Asked for a copy in a folder: the copy is made.
    explicit = queue.add(version.id, dest_dir=tmp_path / "for-comfyui")
    assert queue.run_next() is not None
    task = queue.task(explicit)
    assert (task.state, task.already_present) == ("completed", False)
    assert Path(task.dest_path or "").parent == tmp_path / "for-comfyui"
    assert downloads_served(civitai) == 1

    # The library's copy was edited since it was hashed: it no longer counts.
    (tmp_path / "for-comfyui" / version.files[0].name).unlink()
    Library(db).remove_files([task.dest_path or ""])
    kept.write_bytes(data[:-1] + b"!")
    typed = queue.add(version.id)
    assert queue.run_next() is not None
    task = queue.task(typed)
    assert (task.state, task.already_present) == ("completed", False)
    assert Path(task.dest_path or "").parent == (tmp_path / "models" / "Lora").resolve()
    assert downloads_served(civitai) == 2


def flagged_version(d: CivitaiDouble) -> FakeVersion:
    model = d.add_model("Old Checkpoint", "Checkpoint")
    return d.add_version(model, files=[d.file(
        name="old.ckpt", format="PickleTensor", pickle_scan="Danger",
        pickle_message="Dangerous import detected: os.system")])


def test_a_file_civitai_flagged_is_fetched_only_when_the_user_chose_it(
    civitai: CivitaiDouble, db: Database, tmp_path: Path
) -> None:
    version = flagged_version(civitai)
    queue = make_queue(civitai, db)
    dest = tmp_path / "dl"
    refused = queue.add(version.id, dest_dir=dest)
    queue.run_until_empty()
    task = queue.task(refused)
    assert (task.state, task.error_kind) == ("failed", "flagged")
    assert task.error == ("Civitai's pickle scan found code in old.ckpt that would run when it "
                          "is loaded: Dangerous import detected: os.system")
    assert task.file_name == "old.ckpt"  # named in the history all the same
    assert downloads_served(civitai) == 0 and not dest.exists()

    queue.retry(refused, allow_flagged=True)  # the user read the warning and chose it
    queue.run_until_empty()
    assert queue.task(refused).state == "completed"
    assert (dest / "old.ckpt").is_file()

    chosen = queue.add(version.id, dest_dir=tmp_path / "again", allow_flagged=True)
    queued = queue.add(version.id, dest_dir=tmp_path / "later")
    queue.allow_flagged_file(queued)
    queue.run_until_empty()
    assert [queue.task(t).state for t in (chosen, queued)] == ["completed", "completed"]
    with pytest.raises(IllegalTransition, match="is completed; it cannot be changed"):
        queue.allow_flagged_file(queued)


def test_a_listener_that_raises_does_not_stop_the_queue(
    civitai: CivitaiDouble, civitai_catalog: SampleCatalog, db: Database, tmp_path: Path
) -> None:
    queue = make_queue(civitai, db)

    def broken(event: str, payload: Any) -> None:
        raise RuntimeError("listener bug")

    queue.add_listener(broken)
    task_id = queue.add(civitai_catalog.vae_v1.id, dest_dir=tmp_path)
    queue.run_until_empty()
    assert queue.task(task_id).state == "completed"


def test_commands_from_another_thread_while_running(
    civitai: CivitaiDouble, civitai_catalog: SampleCatalog, db: Database, tmp_path: Path
) -> None:
    version = big_version(civitai, size=8 * MiB)
    civitai.throttle_downloads(4 * MiB)
    queue = make_queue(civitai, db)
    running = queue.add(version.id, dest_dir=tmp_path)
    started = threading.Event()
    queue.add_listener(lambda e, p: started.set() if e == "progress" else None)
    worker = threading.Thread(target=queue.run_until_empty)
    worker.start()
    assert started.wait(10)
    added = queue.add(civitai_catalog.vae_v1.id, dest_dir=tmp_path)
    queue.cancel(running)
    worker.join(20)
    assert not worker.is_alive()
    assert queue.task(running).state == "cancelled"
    assert queue.task(added).state == "completed"
