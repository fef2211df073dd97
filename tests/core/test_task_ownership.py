"""Who owns a download: process locks, two queues on one database, the v1 → v2 migration.

Two ``DownloadQueue`` objects in one process exclude each other exactly as two processes do
(``flock`` locks belong to an open file, not to a process), so most of this runs in one
process; the locks' death with a killed process is checked with a real child process.
"""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from civdesk.core.civitai.client import CivitaiClient
from civdesk.core.downloads.downloader import Downloader
from civdesk.core.downloads.locks import LockFolder, Owner, ProcessLock, is_held, read_owner
from civdesk.core.downloads.queue import DownloadingElsewhere, DownloadQueue, IllegalTransition
from civdesk.core.library.db import Database
from civdesk.core.library.migrations import SCHEMA_VERSION
from tests.core.test_db import make_v1_database, schema_of, user_version
from tests.double import CivitaiDouble, FakeVersion

MiB = 1 << 20


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database.open(tmp_path / "library.sqlite3")
    yield database
    database.close()


def make_queue(d: CivitaiDouble, db: Database) -> DownloadQueue:
    client = CivitaiClient(d.base_url, max_retries=1, backoff=0.001, sleep=lambda s: None)
    downloader = Downloader(client, sleep=lambda s: None, retry_delay=0, progress_interval=0)
    return DownloadQueue(db, client, downloader=downloader)


def big_version(d: CivitaiDouble, size: int = 8 * MiB) -> FakeVersion:
    return d.add_version(d.add_model("Big", "Checkpoint"), files=[d.file(size=size)])


def sha_of(path: str | None) -> str:
    assert path is not None
    return hashlib.sha256(Path(path).read_bytes()).hexdigest().upper()


class Running:
    """``queue.run_next()`` on a thread, started once a byte of the task has arrived."""

    def __init__(self, queue: DownloadQueue, task_id: int) -> None:
        self.queue = queue
        self.result: Any = None
        self._started = threading.Event()
        queue.add_listener(self._on_event)
        self._thread = threading.Thread(target=self._run)
        self._thread.start()
        assert self._started.wait(10), "the download did not start"

    def _on_event(self, event: str, snap: Any) -> None:
        if event == "progress" and snap.bytes_done > 0:
            self._started.set()

    def _run(self) -> None:
        self.result = self.queue.run_next()
        self._started.set()

    def join(self) -> Any:
        self._thread.join(30)
        assert not self._thread.is_alive()
        return self.result


# -- the locks ---------------------------------------------------------------------------------


def test_a_lock_excludes_every_other_taker_and_is_deleted_on_release(tmp_path: Path) -> None:
    path = tmp_path / "locks" / "task-1.lock"
    first = ProcessLock.try_acquire(path, Owner(4242, "box"))
    assert first is not None and path.exists()
    assert ProcessLock.try_acquire(path) is None  # another open file, same process: excluded
    assert is_held(path)
    assert read_owner(path) == Owner(4242, "box")
    first.release()
    assert not path.exists() and not is_held(path)
    with ProcessLock.try_acquire(path) as second:
        assert second is not None and second.held
    assert not path.exists()


def test_a_lock_released_while_another_taker_opened_it_is_never_shared(tmp_path: Path) -> None:
    # The release deletes the file while holding it: whoever opened the old file meanwhile
    # must notice and lock the new one instead, never hold the deleted one.
    path = tmp_path / "task-1.lock"

    def take(into: list[ProcessLock | None]) -> None:
        into.append(ProcessLock.acquire(path, timeout=5, poll=0.001))

    for _ in range(50):
        holder = ProcessLock.try_acquire(path)
        assert holder is not None
        taken: list[ProcessLock | None] = []
        taker = threading.Thread(target=take, args=(taken,))
        taker.start()
        holder.release()
        taker.join()
        lock = taken[0]
        assert lock is not None
        assert ProcessLock.try_acquire(path) is None  # the file at the path is the one held
        lock.release()


def test_the_lock_of_a_killed_process_is_free(tmp_path: Path) -> None:
    path = tmp_path / "task-7.lock"
    code = ("import sys, time; from pathlib import Path; "
            "from civdesk.core.downloads.locks import Owner, ProcessLock; "
            "lock = ProcessLock.try_acquire(Path(sys.argv[1]), Owner.this_process()); "
            "print('held' if lock else 'busy', flush=True); time.sleep(60)")
    child = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE,
                             text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        assert is_held(path)
        assert read_owner(path) == Owner(child.pid, Owner.this_process().host)
    finally:
        child.kill()
        child.communicate()
    assert not is_held(path)  # SIGKILL released it; the file left behind means nothing


def test_file_locks_are_keyed_by_the_part_path(tmp_path: Path) -> None:
    locks = LockFolder(tmp_path / "locks")
    part = tmp_path / "dl" / "a.safetensors.part"
    assert locks.file(part) == locks.file(tmp_path / "dl" / "x" / ".." / "a.safetensors.part")
    assert locks.file(part) != locks.file(tmp_path / "dl" / "b.safetensors.part")
    assert locks.task(3) != locks.task(4)


# -- two queues on one database ---------------------------------------------------------------


def test_a_second_queue_leaves_a_running_task_alone(
    civitai: CivitaiDouble, db: Database, tmp_path: Path
) -> None:
    version = big_version(civitai)
    civitai.throttle_downloads(4 * MiB)
    first = make_queue(civitai, db)
    task_id = first.add(version.id, dest_dir=tmp_path / "dl")
    run = Running(first, task_id)

    second = make_queue(civitai, db)  # its crash recovery must not touch a live task
    snap = second.task(task_id)
    assert snap.state == "downloading" and snap.elsewhere
    assert snap.owner == Owner.this_process()
    assert not first.task(task_id).elsewhere
    assert second.run_next() is None  # nothing it may run
    assert second.recover_stale() == []
    with pytest.raises(DownloadingElsewhere, match=r"already being downloaded by another "
                                                   r"civdesk \(pid \d+\)"):
        second.cancel(task_id)
    with pytest.raises(DownloadingElsewhere):
        second.retry(task_id)
    with pytest.raises(DownloadingElsewhere):
        second.run_next(task_id)

    civitai.throttle_downloads(None)
    done = run.join()
    assert done.state == "completed" and sha_of(done.dest_path) == version.files[0].sha256
    assert (done.owner_pid, done.owner_host) == (None, None)
    # The second queue's view was stale; its commands read the row as it is now.
    with pytest.raises(IllegalTransition, match="completed"):
        second.cancel(task_id)
    assert not list((tmp_path / "locks").glob("*.lock"))


def test_two_tasks_for_one_file_never_write_the_same_part(
    civitai: CivitaiDouble, db: Database, tmp_path: Path
) -> None:
    version = big_version(civitai)
    civitai.throttle_downloads(4 * MiB)
    dest = tmp_path / "dl"
    first = make_queue(civitai, db)
    second = make_queue(civitai, db)
    running = first.add(version.id, dest_dir=dest)
    run = Running(first, running)
    duplicate = second.add(version.id, dest_dir=dest)

    snap = second.run_next()
    assert snap is not None and snap.id == duplicate
    assert (snap.state, snap.error_kind) == ("failed", "in_use")
    assert f"already being downloaded by another civdesk (pid {Owner.this_process().pid})" \
        in (snap.error or "")
    assert snap.part_path is None  # never points at the other task's .part
    second.cancel(duplicate)  # deletes no .part (it has none of its own)

    civitai.throttle_downloads(None)
    done = run.join()
    assert done.state == "completed" and sha_of(done.dest_path) == version.files[0].sha256
    # Now free: the retry finds the verified file, downloading nothing.
    second.retry(duplicate)
    again = second.run_next()
    assert again is not None and again.state == "completed"
    assert again.dest_path == done.dest_path


def test_a_stale_downloading_task_is_recovered_and_resumed(
    civitai: CivitaiDouble, db: Database, tmp_path: Path
) -> None:
    version = big_version(civitai, size=4 * MiB)
    queue = make_queue(civitai, db)
    task_id = queue.add(version.id, dest_dir=tmp_path)
    f = version.files[0]
    part = tmp_path / (f.name + ".part")
    part.write_bytes(f.read_bytes()[: MiB + 5])
    # What a killed process leaves: "downloading", an owner, no lock.
    queue.store.update(task_id, state="downloading", part_path=str(part), owner_pid=999_999,
                       owner_host="elsewhere")

    later = make_queue(civitai, db)
    snap = later.task(task_id)
    assert (snap.state, snap.owner_pid, snap.bytes_done) == ("queued", None, MiB + 5)
    done = later.run_next()
    assert done is not None and done.state == "completed"
    assert sha_of(done.dest_path) == f.sha256
    assert civitai.storage_headers[-1]["Range"] == f"bytes={MiB + 5}-"


# -- the migration ------------------------------------------------------------------------------

V1_TASKS = """
INSERT INTO download_tasks VALUES (1, 8, 80, 7, 'Old Lora', 'v1', 'LORA', 'old.safetensors',
    '/dl', '/dl/old.safetensors', NULL, 'ABC123', 'completed', 1048576, 1048576, NULL, NULL,
    1, '2024-01-01 00:00:00.000000', '2024-01-01 00:00:01.000000', '2024-01-01 00:01:00.000000');
INSERT INTO download_tasks VALUES (2, 9, NULL, NULL, NULL, NULL, NULL, 'big.safetensors',
    '/dl', NULL, '/dl/big.safetensors.part', NULL, 'downloading', 500, 1000, NULL, NULL,
    2, '2024-01-02 00:00:00.000000', '2024-01-02 00:00:01.000000', NULL);
INSERT INTO download_tasks VALUES (3, 10, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
    NULL, 'failed', 0, NULL, 'No connection', 'network', 3, '2024-01-03 00:00:00.000000',
    NULL, '2024-01-03 00:00:05.000000');
"""


def test_a_v1_database_with_tasks_migrates_and_keeps_them(tmp_path: Path) -> None:
    path = tmp_path / "library.sqlite3"
    make_v1_database(path)
    with sqlite3.connect(path) as conn:
        conn.executescript(V1_TASKS)
    conn.close()

    with Database.open(path) as db:
        assert db.schema_version == SCHEMA_VERSION
        queue = DownloadQueue(db, CivitaiClient("http://127.0.0.1:9"))
        tasks = {t.id: t for t in queue.tasks()}
        assert [tasks[i].state for i in (1, 2, 3)] == ["completed", "queued", "failed"]
        assert tasks[1].dest_path == "/dl/old.safetensors" and tasks[1].bytes_done == MiB
        assert tasks[2].part_path == "/dl/big.safetensors.part"  # resumes from it
        assert (tasks[3].error, tasks[3].error_kind) == ("No connection", "network")
        assert all(t.owner_pid is None and t.owner_host is None for t in tasks.values())
        assert not any(t.already_present for t in tasks.values())  # v3: none of them was
        assert not any(t.allow_flagged for t in tasks.values())  # v4: nobody chose so
    assert user_version(path) == SCHEMA_VERSION
    assert user_version(tmp_path / "library.sqlite3.bak-v1") == 1
    fresh = tmp_path / "fresh.sqlite3"
    Database.open(fresh).close()
    assert schema_of(path) == schema_of(fresh)
