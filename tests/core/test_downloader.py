"""Downloader against the loopback double, with real files hashed for real."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import namedtuple
from pathlib import Path

import pytest

from civdesk.core.civitai.client import CivitaiClient
from civdesk.core.civitai.errors import NetworkError
from civdesk.core.downloads import downloader as downloader_module
from civdesk.core.downloads.downloader import (
    Downloader,
    DownloadProgress,
    _Flusher,
    human_size,
)
from civdesk.core.downloads.locks import PartLock
from civdesk.core.errors import Cancelled, DiskFull, FileProblem, HashMismatch, PartInUse
from tests.double import CivitaiDouble, FakeFile, FakeVersion

MiB = 1 << 20
Usage = namedtuple("Usage", "total used free")


def client_for(d: CivitaiDouble) -> CivitaiClient:
    return CivitaiClient(d.base_url, backoff=0.001, max_backoff=0.01, sleep=lambda s: None)


def downloader_for(d: CivitaiDouble, **kw: object) -> Downloader:
    options: dict[str, object] = {"sleep": lambda s: None, "retry_delay": 0}
    options.update(kw)
    return Downloader(client_for(d), **options)  # type: ignore[arg-type]


def one_file_version(d: CivitaiDouble, size: int = 3 * MiB + 123, **file_kw: object) -> FakeVersion:
    model = d.add_model("Big Model", "Checkpoint")
    return d.add_version(model, files=[d.file(size=size, **file_kw)])  # type: ignore[arg-type]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest().upper()


def test_download_verifies_and_places_the_file(civitai: CivitaiDouble, tmp_path: Path) -> None:
    version = one_file_version(civitai)
    f = version.files[0]
    seen: list[DownloadProgress] = []
    result = downloader_for(civitai).download(
        version.id, f.id, tmp_path, expected_sha256=f.sha256.lower(), progress=seen.append
    )
    assert result.path == tmp_path.resolve() / f.name
    assert result.sha256 == f.sha256 and result.size == f.size
    assert result.path.read_bytes() == f.read_bytes()
    assert not result.already_present
    assert list(tmp_path.iterdir()) == [result.path]  # no .part left behind
    assert seen[-1].bytes_done == f.size and seen[-1].bytes_total == f.size
    assert seen[-1].fraction == 1.0
    assert [p.bytes_done for p in seen] == sorted(p.bytes_done for p in seen)


def test_resumes_after_a_truncated_body(civitai: CivitaiDouble, tmp_path: Path) -> None:
    version = one_file_version(civitai)
    f = version.files[0]
    civitai.truncate_downloads(after_bytes=MiB + 17, n=2)
    result = downloader_for(civitai).download(
        version.id, f.id, tmp_path, expected_sha256=f.sha256
    )
    assert result.path.read_bytes() == f.read_bytes()
    ranges = [h.get("Range") for h in civitai.storage_headers]
    assert ranges == [None, f"bytes={MiB + 17}-", f"bytes={2 * (MiB + 17)}-"]


def test_gives_up_after_repeated_interruptions_and_keeps_the_part(
    civitai: CivitaiDouble, tmp_path: Path
) -> None:
    version = one_file_version(civitai)
    f = version.files[0]
    civitai.truncate_downloads(after_bytes=1000, n=10)
    parts: list[Path] = []
    with pytest.raises(NetworkError) as info:
        downloader_for(civitai, max_attempts=3).download(
            version.id, f.id, tmp_path, expected_sha256=f.sha256, on_part=parts.append
        )
    assert info.value.transient
    # The command has ended: the message says what is kept, not that it is resuming.
    assert "resuming" not in str(info.value) and "kept" in str(info.value)
    assert parts and parts[0].name == f.name + ".part"
    assert parts[0].stat().st_size == 3000
    assert not (tmp_path / f.name).exists()


def test_resumes_a_part_left_by_a_previous_run(civitai: CivitaiDouble, tmp_path: Path) -> None:
    version = one_file_version(civitai)
    f = version.files[0]
    data = f.read_bytes()
    part = tmp_path / (f.name + ".part")
    part.write_bytes(data[: 2 * MiB + 5])  # what an earlier Downloader (or process) kept

    fresh = downloader_for(civitai)
    result = fresh.download(version.id, f.id, tmp_path, expected_sha256=f.sha256, part_path=part)
    assert result.path.read_bytes() == data
    assert not part.exists()
    assert [h.get("Range") for h in civitai.storage_headers] == [f"bytes={2 * MiB + 5}-"]


def test_finds_its_part_by_file_name_too(civitai: CivitaiDouble, tmp_path: Path) -> None:
    version = one_file_version(civitai)
    f = version.files[0]
    data = f.read_bytes()
    (tmp_path / (f.name + ".part")).write_bytes(data[:MiB])
    result = downloader_for(civitai).download(
        version.id, f.id, tmp_path, expected_sha256=f.sha256, file_name=f.name
    )
    assert result.path.read_bytes() == data
    assert [h.get("Range") for h in civitai.storage_headers] == [f"bytes={MiB}-"]


@pytest.mark.parametrize("kind", ["link", "folder"])
def test_a_part_that_is_no_file_is_refused_and_nothing_is_written_through_it(
    civitai: CivitaiDouble, tmp_path: Path, kind: str
) -> None:
    version = one_file_version(civitai)
    f = version.files[0]
    folder = tmp_path / "Lora"
    folder.mkdir()
    precious = tmp_path / "precious.txt"
    precious.write_bytes(b"keep me")
    part = folder / (f.name + ".part")
    if kind == "link":
        part.symlink_to(precious)
    else:
        part.mkdir()
    with pytest.raises(FileProblem, match="is not a file"):
        downloader_for(civitai).download(version.id, f.id, folder, expected_sha256=f.sha256,
                                         file_name=f.name)
    assert precious.read_bytes() == b"keep me"
    assert sorted(p.name for p in folder.iterdir()) == [part.name]


def test_a_foreign_part_is_discarded_and_the_download_restarts(
    civitai: CivitaiDouble, tmp_path: Path
) -> None:
    version = one_file_version(civitai)
    f = version.files[0]
    part = tmp_path / (f.name + ".part")
    part.write_bytes(b"x" * MiB)  # same name, other bytes
    result = downloader_for(civitai).download(
        version.id, f.id, tmp_path, expected_sha256=f.sha256, part_path=part
    )
    assert result.path.read_bytes() == f.read_bytes()
    assert [h.get("Range") for h in civitai.storage_headers] == [f"bytes={MiB}-", None]


def test_hash_mismatch_discards_the_part(civitai: CivitaiDouble, tmp_path: Path) -> None:
    version = one_file_version(civitai)
    f = version.files[0]
    with pytest.raises(HashMismatch) as info:
        downloader_for(civitai).download(version.id, f.id, tmp_path, expected_sha256="AB" * 32)
    assert info.value.actual == f.sha256
    assert "corrupt" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_hostile_content_disposition_lands_inside(civitai: CivitaiDouble, tmp_path: Path) -> None:
    version = one_file_version(civitai, size=MiB)
    f = version.files[0]
    civitai.content_disposition(f, "../../evil.safetensors")
    dest = tmp_path / "deep" / "dest"
    result = downloader_for(civitai).download(version.id, f.id, dest, expected_sha256=f.sha256)
    assert result.path.parent == dest.resolve()
    assert result.path.name == "_.._evil.safetensors"
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [result.path.name]


def test_disk_full_before_starting(civitai: CivitaiDouble, tmp_path: Path) -> None:
    version = one_file_version(civitai)
    f = version.files[0]
    usage = Usage(10**12, 10**12 - 2_100_000, 2_100_000)
    tiny = downloader_for(civitai, disk_usage=lambda p: usage)
    with pytest.raises(DiskFull) as info:
        tiny.download(version.id, f.id, tmp_path, expected_sha256=f.sha256)
    assert str(info.value) == (
        f"Not enough free space in {tmp_path}: needs {human_size(f.size)}, 2.1 MB free"
    )
    assert not any(p.stat().st_size for p in tmp_path.iterdir())


def test_human_sizes() -> None:
    assert human_size(6.3e9) == "6.3 GB"
    assert human_size(2_100_000_000) == "2.1 GB"
    assert human_size(512) == "512 B"
    assert human_size(250e6) == "250 MB"


def test_cancel_keeps_the_part_for_a_later_resume(civitai: CivitaiDouble, tmp_path: Path) -> None:
    version = one_file_version(civitai, size=8 * MiB)
    f = version.files[0]
    civitai.throttle_downloads(4 * MiB)
    cancel = threading.Event()

    def stop_midway(p: DownloadProgress) -> None:
        if p.bytes_done >= MiB:
            cancel.set()

    downloader = downloader_for(civitai, chunk_size=MiB, progress_interval=0)
    parts: list[Path] = []
    with pytest.raises(Cancelled):
        downloader.download(version.id, f.id, tmp_path, expected_sha256=f.sha256,
                            progress=stop_midway, cancel=cancel, on_part=parts.append)
    kept = parts[0].stat().st_size
    assert 0 < kept < f.size
    assert not (tmp_path / f.name).exists()

    civitai.throttle_downloads(None)
    result = downloader.download(version.id, f.id, tmp_path, expected_sha256=f.sha256,
                                 part_path=parts[0])
    assert result.path.read_bytes() == f.read_bytes()


def test_cancel_answers_within_a_second_on_a_slow_link(
    civitai: CivitaiDouble, tmp_path: Path
) -> None:
    # 500 kB/s: a blocking read of a whole 4 MiB buffer would hold the cancel ~8 s.
    version = one_file_version(civitai, size=8 * MiB)
    f = version.files[0]
    civitai.throttle_downloads(500_000)
    cancel = threading.Event()
    asked: list[float] = []

    def cancel_once_started(p: DownloadProgress) -> None:
        if p.bytes_done >= 200_000 and not asked:
            asked.append(time.monotonic())
            cancel.set()

    downloader = downloader_for(civitai, chunk_size=4 * MiB, progress_interval=0)
    parts: list[Path] = []
    with pytest.raises(Cancelled):
        downloader.download(version.id, f.id, tmp_path, expected_sha256=f.sha256,
                            progress=cancel_once_started, cancel=cancel, on_part=parts.append)
    assert asked and time.monotonic() - asked[0] < 1.0
    assert 0 < parts[0].stat().st_size < f.size
    civitai.throttle_downloads(None)
    result = downloader.download(version.id, f.id, tmp_path, expected_sha256=f.sha256,
                                 part_path=parts[0])
    assert result.path.read_bytes() == f.read_bytes()


def test_an_identical_file_is_not_downloaded_again(civitai: CivitaiDouble, tmp_path: Path) -> None:
    version = one_file_version(civitai, size=MiB)
    f = version.files[0]
    (tmp_path / f.name).write_bytes(f.read_bytes())
    result = downloader_for(civitai).download(
        version.id, f.id, tmp_path, expected_sha256=f.sha256, file_name=f.name
    )
    assert result.already_present and result.path == tmp_path.resolve() / f.name
    assert civitai.storage_headers == []


def test_a_part_another_program_holds_is_never_written(
    civitai: CivitaiDouble, tmp_path: Path
) -> None:
    version = one_file_version(civitai, size=MiB)
    f = version.files[0]
    part = tmp_path / (f.name + ".part")
    part.write_bytes(b"another program's bytes")
    holder = PartLock.try_acquire(part)  # as another process would, whatever its data folder
    assert holder is not None
    try:
        with pytest.raises(PartInUse) as info:
            downloader_for(civitai).download(version.id, f.id, tmp_path,
                                             expected_sha256=f.sha256, file_name=f.name)
    finally:
        holder.release()
    assert str(info.value) == (f"Another program is downloading {f.name} into {tmp_path} "
                               "right now; try again when it has finished")
    assert part.read_bytes() == b"another program's bytes"
    assert civitai.storage_headers == []
    assert not (tmp_path / f.name).exists()


def test_bytes_another_program_adds_to_the_part_are_never_called_verified(
    civitai: CivitaiDouble, tmp_path: Path
) -> None:
    version = one_file_version(civitai, size=6 * MiB)
    f = version.files[0]
    part = tmp_path / (f.name + ".part")
    meddled: list[int] = []

    def meddle(progress: DownloadProgress) -> None:
        if not meddled and progress.bytes_done >= MiB:
            with part.open("ab") as fh:  # a writer that ignores the lock
                fh.write(b"interleaved")
            meddled.append(progress.bytes_done)

    civitai.throttle_downloads(8 * MiB)
    with pytest.raises(FileProblem, match="changed by another program"):
        downloader_for(civitai, progress_interval=0).download(
            version.id, f.id, tmp_path, expected_sha256=f.sha256, file_name=f.name,
            progress=meddle)
    assert meddled
    assert not (tmp_path / f.name).exists()
    assert not part.exists()


def test_a_finished_file_left_by_a_crash_after_the_rename_is_not_downloaded_again(
    civitai: CivitaiDouble, tmp_path: Path
) -> None:
    version = one_file_version(civitai, size=MiB)
    f = version.files[0]
    (tmp_path / f.name).write_bytes(f.read_bytes())  # renamed, then killed: no .part left
    result = downloader_for(civitai).download(
        version.id, f.id, tmp_path, expected_sha256=f.sha256,
        part_path=tmp_path / (f.name + ".part"), expected_size=f.size)
    assert result.already_present and result.verified
    assert civitai.storage_headers == []
    assert sorted(p.name for p in tmp_path.iterdir()) == [f.name]


def test_without_a_published_sha256_nothing_is_called_verified_or_trusted(
    civitai: CivitaiDouble, tmp_path: Path
) -> None:
    version = one_file_version(civitai, size=MiB)
    f = version.files[0]
    (tmp_path / f.name).write_bytes(f.read_bytes())
    result = downloader_for(civitai).download(
        version.id, f.id, tmp_path, expected_sha256=None,
        part_path=tmp_path / (f.name + ".part"))
    assert not result.verified
    assert len(civitai.storage_headers) == 1  # a file under the name proves nothing
    fresh = downloader_for(civitai).download(version.id, f.id, tmp_path / "new",
                                             expected_sha256=None, file_name=f.name)
    assert not fresh.verified and fresh.sha256 == f.sha256


def test_a_different_file_with_the_name_is_never_overwritten(
    civitai: CivitaiDouble, tmp_path: Path
) -> None:
    version = one_file_version(civitai, size=MiB)
    f = version.files[0]
    mine = tmp_path / f.name
    mine.write_bytes(b"my own precious model")
    result = downloader_for(civitai).download(version.id, f.id, tmp_path, expected_sha256=f.sha256)
    assert mine.read_bytes() == b"my own precious model"
    stem, ext = os.path.splitext(f.name)
    assert result.path.name == f"{stem} (1){ext}"
    assert sha(result.path.read_bytes()) == f.sha256


def test_a_server_ignoring_range_restarts_the_part(civitai: CivitaiDouble, tmp_path: Path) -> None:
    # A part longer than the file can't be continued: the client asks again from 0.
    version = one_file_version(civitai, size=MiB)
    f: FakeFile = version.files[0]
    part = tmp_path / (f.name + ".part")
    part.write_bytes(b"y" * (f.size + 10))
    result = downloader_for(civitai).download(
        version.id, f.id, tmp_path, expected_sha256=f.sha256, part_path=part
    )
    assert result.path.read_bytes() == f.read_bytes()


def test_download_with_background_flushes_is_complete_and_verified(
    civitai: CivitaiDouble, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(downloader_module, "FLUSH_STEP", MiB)  # a flush every buffer or so
    version = one_file_version(civitai, size=12 * MiB + 5)
    f = version.files[0]
    result = downloader_for(civitai).download(version.id, f.id, tmp_path,
                                              expected_sha256=f.sha256)
    assert result.path.read_bytes() == f.read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == [result.path.name]
    assert not [t for t in threading.enumerate() if t.name == "civdesk-download-flusher"]


def test_flusher_syncs_in_the_background_and_stops_on_close(tmp_path: Path) -> None:
    fd = os.open(tmp_path / "f.part", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        flusher = _Flusher(fd, step=MiB)
        for _ in range(4):
            os.write(fd, bytes(MiB // 2))
            flusher.wrote(MiB // 2)
        thread = flusher._thread
        flusher.close()
        assert flusher.error is None
        assert thread is not None and not thread.is_alive()
    finally:
        os.close(fd)


def test_flusher_keeps_a_sync_failure_for_the_caller() -> None:
    read_end, write_end = os.pipe()  # fdatasync on a pipe fails (EINVAL): a real failure
    try:
        flusher = _Flusher(write_end, step=10)
        flusher.wrote(4)
        flusher.wrote(6)  # the step is reached: the thread syncs, and fails
        assert flusher._thread is not None
        flusher._thread.join(timeout=10)
        flusher.close()
        assert isinstance(flusher.error, OSError)
    finally:
        os.close(read_end)
        os.close(write_end)


def test_flusher_without_a_step_starts_no_thread_and_never_syncs() -> None:
    read_end, write_end = os.pipe()  # a sync here would fail, so none may happen
    try:
        flusher = _Flusher(write_end, step=None)
        flusher.wrote(1 << 40)
        flusher.close()
        assert flusher._thread is None and flusher.error is None
    finally:
        os.close(read_end)
        os.close(write_end)


class _StallingBody:
    """A download whose body gives one buffer's worth, then waits for more until it is
    closed (a stalled connection: only closing the response ends the read)."""

    filename = "stalled.safetensors"
    first = downloader_module.CHUNK_SIZE
    total_size = 4 * first
    start = 0
    body_size = 4 * first
    url = "http://storage.invalid/stalled"

    def __init__(self) -> None:
        self.closed = threading.Event()
        self.sent = 0

    def readinto(self, buffer: bytearray | memoryview) -> int:
        if self.sent < self.first:
            n = min(len(buffer), self.first - self.sent)
            buffer[:n] = b"x" * n
            self.sent += n
            return n
        self.closed.wait()
        raise NetworkError("closed")

    def close(self) -> None:
        self.closed.set()

    def __enter__(self) -> _StallingBody:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _FullDisk:
    """The ``os`` the downloader sees, with a disk that is full for the .part's writes."""

    def __getattr__(self, name: str) -> object:
        return getattr(os, name)

    @staticmethod
    def write(fd: int, data: object) -> int:
        raise OSError(28, "No space left on device")


def test_a_disk_filling_up_fails_at_once_even_while_the_link_stalls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = _StallingBody()

    class Source:
        def open_download(self, version_id: int, file_id: int | None = None,
                          start: int = 0) -> _StallingBody:
            return body

    monkeypatch.setattr(downloader_module, "os", _FullDisk())
    outcome: list[BaseException] = []

    def download() -> None:
        try:
            Downloader(Source(), max_attempts=1).download(1, None, tmp_path,
                                                          expected_sha256=None)
        except BaseException as exc:  # handed to the test thread
            outcome.append(exc)

    thread = threading.Thread(target=download, daemon=True)
    thread.start()
    thread.join(10)
    body.close()  # let a reader still waiting go, whatever happened
    assert not thread.is_alive(), "the full disk waited for the stalled connection"
    assert len(outcome) == 1 and isinstance(outcome[0], DiskFull), outcome
    assert "is full" in str(outcome[0])
