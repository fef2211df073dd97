"""One download, done the way a multi-GB file deserves.

The bytes stream into ``<final name>.part`` and are hashed as they arrive, so the file is
never read a second time. A reader thread takes the body off the socket into a few reused
buffers, a writer thread appends each to the ``.part``, and this thread hashes the ones
before: socket reads, os.write and hashlib all release the GIL, so the download runs at the
speed of its slowest stage instead of the sum of all three, and a write that stalls (a busy
disk) does not stall the socket. Per GiB on the 2-core build machine: receiving 0.23-0.37 s
of CPU, writing 0.37-2.8 s (tmpfs page allocation swings from one file to the next), hashing
0.72-0.83 s. Another thread pushes the written bytes to disk as they accumulate
(:class:`_Flusher`), so the fsync that makes the file durable overlaps the download instead
of following it.

A failure keeps the ``.part``; the next attempt (now, or after a restart) asks for the rest
with Range, re-hashing the kept bytes first. Only a complete, verified, fsynced file is
renamed (atomically) to its final name, so a half file never sits under a name another tool
would load. An existing file is never overwritten.

The ``.part`` is written only under its own OS lock (:class:`~.locks.PartLock`), held from
before the first byte until the file has its final name: another process writing into the
same folder, whatever its data folder, fails at once with :class:`PartInUse` instead of
appending to the same file. Before the rename the file must still be the one locked and
hold exactly the bytes hashed, so the hash checked is the hash of the bytes in the file.

A task whose file already sits under its final name with Civitai's size and SHA256 (a
process killed after the rename, before it recorded the task as done) completes without a
download. A file Civitai publishes no SHA256 for is only checked for its size: the result
says so (``verified`` False), and such a file found under the final name is not trusted.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import queue
import shutil
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from civdesk.core.civitai.client import DownloadResponse
from civdesk.core.civitai.errors import NetworkError
from civdesk.core.downloads.filenames import free_name, safe_join, sanitize_filename
from civdesk.core.downloads.locks import PartLock
from civdesk.core.errors import (
    Cancelled,
    CivdeskError,
    DiskFull,
    FileProblem,
    HashMismatch,
    PartInUse,
)
from civdesk.core.longpaths import os_path
from civdesk.core.units import human_size

log = logging.getLogger(__name__)

PART_SUFFIX = ".part"
#: Buffer size. Each buffer passes through three threads (read, write, hash), and every
#: hand-over waits for the GIL: from the loopback double a GiB cost 1.31-1.35 ms of CPU per
#: MB with 1 MiB buffers and 1.04-1.10 with 4 MiB (median 1,100 against 1,230-1,300 MB/s).
#: The window asks for less (``ui.services.downloads.WINDOW_BUFFER``): beside a scan, a
#: download that fast made it stall.
CHUNK_SIZE = 4 << 20
REHASH_BUFFER = 4 << 20
#: Buffers in flight between the socket reader/writer and the hasher: memory stays
#: ``PIPELINE_BUFFERS * chunk_size`` whatever the file size.
PIPELINE_BUFFERS = 8
#: Each blocking read of the body takes about this long at most (its size adapts to the
#: link's speed), so Cancel and Pause answer within it even on a slow link.
READ_STEP_SECONDS = 0.25
READ_STEP_MIN = 64 << 10
READ_STEP_START = 256 << 10
READ_STEP_MAX = CHUNK_SIZE
#: Written bytes pushed to disk in the background once this many are dirty, so the fsync
#: before the rename has only the tail left to write instead of the whole file (on a real
#: disk that final fsync took ~2 s per GiB, after the download, on the build machine).
FLUSH_STEP = 32 << 20
#: Not on Windows: its cache manager already writes dirty pages within about a second, and
#: its C runtime serializes write() and _commit() on one descriptor, so a flush there would
#: stall the reader instead of overlapping it.
BACKGROUND_FLUSH = os.name != "nt"
NO_SPACE = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
CHECKED_SHA256, CHECKED_SIZE, CHECKED_NOTHING = "sha256", "size", "nothing"


class DownloadSource(Protocol):
    """What the downloader needs from :class:`~civdesk.core.civitai.client.CivitaiClient`."""

    def open_download(
        self, version_id: int, file_id: int | None = None, start: int = 0
    ) -> DownloadResponse: ...


@dataclass(frozen=True)
class DownloadProgress:
    bytes_done: int
    bytes_total: int | None
    speed: float  # bytes per second, smoothed
    eta: float | None  # seconds, None while unknown

    @property
    def fraction(self) -> float | None:
        if not self.bytes_total:
            return None
        return min(1.0, self.bytes_done / self.bytes_total)


@dataclass(frozen=True)
class DownloadResult:
    path: Path
    sha256: str  # UPPER hex
    size: int
    #: True when an identical file was already there and nothing was downloaded.
    already_present: bool = False
    #: What the file was checked against: ``"sha256"`` (its bytes' hash matched the SHA256
    #: Civitai publishes), ``"size"`` (Civitai published no SHA256) or ``"nothing"`` (nor
    #: a size, from the API or the server).
    checked: str = "sha256"

    @property
    def verified(self) -> bool:
        return self.checked == CHECKED_SHA256


ProgressCallback = Callable[[DownloadProgress], None]


class _Interrupted(NetworkError):
    """The body broke off or ended before Content-Length said it would: resume.

    ``str()`` says what happened, not what comes next: the caller words that (another
    attempt, or the end of this download with its ``.part`` kept).
    """


class _Meter:
    """Smoothed speed and ETA, reported at most every ``interval`` seconds."""

    def __init__(self, callback: ProgressCallback | None, total: int | None,
                 interval: float = 0.1, clock: Callable[[], float] = time.monotonic) -> None:
        self.callback = callback
        self.total = total
        self.interval = interval
        self.clock = clock
        self.speed = 0.0
        self._last_time = clock()
        self._last_bytes = 0
        self._last_report = float("-inf")

    def start_at(self, done: int) -> None:
        """Bytes already on disk count as done, not as speed."""
        self._last_bytes = done
        self._last_time = self.clock()

    def update(self, done: int, *, force: bool = False) -> None:
        if self.callback is None:
            return
        now = self.clock()
        elapsed = now - self._last_time
        if elapsed >= 0.05:
            instant = (done - self._last_bytes) / elapsed
            # Exponential smoothing: steady numbers without hiding a real change for long.
            self.speed = instant if self.speed == 0 else 0.7 * self.speed + 0.3 * instant
            self._last_time, self._last_bytes = now, done
        if not force and now - self._last_report < self.interval:
            return
        self._last_report = now
        eta = None
        if self.total is not None and self.speed > 0:
            eta = max(0.0, (self.total - done) / self.speed)
        self.callback(DownloadProgress(done, self.total, self.speed, eta))


class Downloader:
    """Downloads one file of a model version into a folder. See :meth:`download`."""

    def __init__(
        self,
        client: DownloadSource,
        *,
        chunk_size: int = CHUNK_SIZE,
        max_attempts: int = 4,
        retry_delay: float = 2.0,
        disk_usage: Callable[[str], Any] = shutil.disk_usage,
        sleep: Callable[[float], None] = time.sleep,
        progress_interval: float = 0.1,
    ) -> None:
        if chunk_size < 1 << 20:
            raise ValueError("chunk_size below 1 MiB makes large downloads CPU-bound")
        self.client = client
        self.chunk_size = chunk_size
        self.max_attempts = max_attempts
        self.retry_delay = retry_delay
        self.disk_usage = disk_usage
        self.sleep = sleep
        self.progress_interval = progress_interval

    def buffer(self) -> bytearray:
        """One read buffer (created per download: downloads may run in parallel)."""
        return bytearray(self.chunk_size)

    def download(
        self,
        version_id: int,
        file_id: int | None,
        dest_dir: str | os.PathLike[str],
        *,
        expected_sha256: str | None,
        progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
        part_path: str | os.PathLike[str] | None = None,
        file_name: str | None = None,
        expected_size: int | None = None,
        on_part: Callable[[Path], None] | None = None,
    ) -> DownloadResult:
        """Download, verify and place the file; return where it landed.

        ``part_path`` resumes a ``.part`` left by an earlier attempt. ``file_name`` (the
        API's ``files[].name``) lets an existing identical file be recognised before any
        byte is fetched; without it the server's Content-Disposition names the file.
        ``on_part`` is told the ``.part`` path as soon as it is known, so a caller can
        persist it for a resume after a restart.

        Raises :class:`Cancelled` (``.part`` kept), :class:`DiskFull` (``.part`` kept),
        :class:`HashMismatch` (``.part`` deleted), the client's typed errors, and
        :class:`NetworkError` when the connection kept failing (``.part`` kept).
        """
        folder = Path(dest_dir)
        try:
            os.makedirs(os_path(folder), exist_ok=True)
        except OSError as exc:
            raise FileProblem(f"Cannot create the folder {folder}: {exc.strerror}") from None
        expected = expected_sha256.upper() if expected_sha256 else None
        cancel = cancel or threading.Event()

        part: Path | None = Path(part_path) if part_path else None
        if part is None and file_name:
            final = safe_join(folder, sanitize_filename(file_name))
            part = final.with_name(final.name + PART_SUFFIX)
        if part is not None and on_part:
            on_part(part)
        job = _Job(self, version_id, file_id, folder, expected, part, progress, cancel,
                   expected_size, on_part)
        try:
            return job.run()
        finally:
            job.unlock()


class _Job:
    """The state of one :meth:`Downloader.download` call across its attempts."""

    def __init__(
        self,
        owner: Downloader,
        version_id: int,
        file_id: int | None,
        folder: Path,
        expected: str | None,
        part: Path | None,
        progress: ProgressCallback | None,
        cancel: threading.Event,
        expected_size: int | None,
        on_part: Callable[[Path], None] | None,
    ) -> None:
        self.o = owner
        self.version_id = version_id
        self.file_id = file_id
        self.folder = folder
        self.expected = expected
        self.part = part
        self.cancel = cancel
        self.meter = _Meter(progress, expected_size, owner.progress_interval)
        self.on_part = on_part
        self.hasher: Any = None  # sha256 of exactly the bytes now in self.part
        self.hashed = 0
        self.resumed_foreign_bytes = False  # bytes we did not fetch in this call
        self.lock: PartLock | None = None  # of self.part, while this job may write it

    def run(self) -> DownloadResult:
        if self.part is not None:
            self._lock_part()
            finished = self._finished_already()
            if finished is not None:
                return finished
        attempt = 0
        restarted_after_mismatch = False
        while True:
            self._check_cancel()
            try:
                size = self._attempt()
            except _Interrupted as exc:
                # Opening the download is retried by the client; a body that breaks off
                # midway is ours to resume.
                attempt += 1
                if attempt >= self.o.max_attempts:
                    raise NetworkError(f"{exc}, {attempt} times; the partial download is "
                                       "kept and continues when you retry") from exc
                log.warning("Download of version %s interrupted (%s); resuming (attempt %d)",
                            self.version_id, exc, attempt + 1)
                self.o.sleep(self.o.retry_delay * attempt)
                continue
            assert self.part is not None
            self._check_part_holds(size)
            digest = self.hasher.hexdigest().upper()
            if self.expected and digest != self.expected:
                if self.resumed_foreign_bytes and not restarted_after_mismatch:
                    # The kept .part may not have been ours (or the file changed): once, from 0.
                    log.warning("Resumed download of version %s failed verification; "
                                "starting over", self.version_id)
                    restarted_after_mismatch = True
                    self._prepare_part(0)
                    self.resumed_foreign_bytes = False
                    continue
                self._discard_part()
                raise HashMismatch(str(self.part), self.expected, digest)
            return self._place(digest, size)

    def unlock(self) -> None:
        """Give the ``.part``'s lock up; an empty one (nothing arrived) goes too."""
        lock, self.lock = self.lock, None
        if lock is None:
            return
        try:
            empty = lock.is_empty_file_at_path()
        except OSError:
            empty = False
        if empty:
            lock.delete()
        else:
            lock.release()

    def _lock_part(self) -> None:
        """Take the lock of ``self.part`` before anything is written to it."""
        assert self.part is not None
        self._check_part_is_a_file()
        try:
            lock = PartLock.try_acquire(self.part)
        except OSError as exc:
            raise self._write_error(exc) from None
        if lock is None:
            raise PartInUse(str(self.part), self._final().name, str(self.part.parent))
        self.lock = lock

    def _final(self) -> Path:
        assert self.part is not None
        return self.part.with_name(self.part.name[: -len(PART_SUFFIX)])

    def _finished_already(self) -> DownloadResult | None:
        """The file under the final name when it is the very file wanted: Civitai's SHA256
        (and size, when known). Then the ``.part`` goes. Without a SHA256 to check, a file
        there proves nothing: it is downloaded again (and kept if it differs)."""
        final = self._final()
        if self.expected is None or not _is_file(final):
            return None
        size = os.stat(os_path(final)).st_size
        if self.meter.total is not None and size != self.meter.total:
            return None
        if _hash_file(final, size, self.cancel).hexdigest().upper() != self.expected:
            return None
        log.info("%s is already downloaded", final)
        self._discard_part()
        return DownloadResult(final, self.expected, size, already_present=True)

    def _check_part_holds(self, size: int) -> None:
        """The locked ``.part`` is still the file at its path and holds exactly the
        ``size`` bytes hashed: else another program wrote into it, and the hash is not
        the hash of what is in the file."""
        assert self.part is not None and self.lock is not None
        try:
            st = os.stat(os_path(self.part))
            mine = os.fstat(self.lock.fileno())
        except OSError as exc:
            raise self._write_error(exc) from None
        if (st.st_dev, st.st_ino, st.st_size) != (mine.st_dev, mine.st_ino, size):
            self._discard_part()
            raise FileProblem(f"{self.part} was changed by another program during the "
                              "download; it was deleted, retry the download")

    # -- one attempt ----------------------------------------------------------------------

    def _attempt(self) -> int:
        """Fetch what the .part lacks; return the complete size. Raises on any shortfall."""
        have = self._part_size()
        response = self.o.client.open_download(self.version_id, self.file_id, start=have)
        with response:
            if self.part is None:
                self._name_part(response)
                have = self._part_size()
                if have:
                    # A .part of that name was already there: continue it from where it ends.
                    response.close()
                    return self._attempt()
            assert self.part is not None
            total = response.total_size if response.total_size is not None else self.meter.total
            self.meter.total = total
            start = response.start
            if start > have:
                raise NetworkError(f"The server resumed at byte {start}, after the "
                                   f"{have} bytes kept; retrying")
            if start < have or self.hasher is None or self.hashed != start:
                self._prepare_part(start)
            self._check_space(total, start)
            self.meter.start_at(start)
            self.meter.update(start, force=True)
            received = self._stream(response, start)
        expected_body = response.body_size
        if expected_body is not None and received < expected_body:
            raise _Interrupted(f"The download broke off after {human_size(start + received)}"
                               f" of {human_size(start + expected_body)}")
        size = start + received
        if total is not None and size != total:
            raise _Interrupted(f"The download has {size} bytes, Civitai announced {total}")
        self.meter.update(size, force=True)
        return size

    def _name_part(self, response: DownloadResponse) -> None:
        name = sanitize_filename(response.filename or f"civitai-{self.version_id}.bin")
        final = safe_join(self.folder, name)
        self.part = final.with_name(final.name + PART_SUFFIX)
        if self.on_part:
            self.on_part(self.part)
        self._lock_part()

    def _part_size(self) -> int:
        if self.part is None:
            return 0
        try:
            return os.stat(os_path(self.part)).st_size
        except FileNotFoundError:
            return 0

    def _prepare_part(self, start: int) -> None:
        """Make the .part hold exactly ``start`` bytes and the hasher cover them."""
        assert self.part is not None
        self._check_part_is_a_file()
        try:
            if start == 0:
                os.close(self._open_append())
                os.truncate(os_path(self.part), 0)
                self.hasher, self.hashed = hashlib.sha256(), 0
                return
            if self._part_size() > start:
                os.truncate(os_path(self.part), start)
        except OSError as exc:
            raise self._write_error(exc) from None
        # Bytes kept from before this call: hash them once, streamed, then append.
        self.hasher = _hash_file(self.part, start, self.cancel)
        self.hashed = start
        self.resumed_foreign_bytes = True

    def _check_space(self, total: int | None, start: int) -> None:
        if total is None:
            return
        needed = total - start
        free = self.o.disk_usage(os_path(self.folder)).free
        if needed > free:
            raise DiskFull(f"Not enough free space in {self.folder}: needs "
                           f"{human_size(needed)}, {human_size(free)} free")

    def _stream(self, response: DownloadResponse, start: int) -> int:
        """Append the body to the .part, hashing as it goes; return the bytes received.

        The reader's threads receive each buffer and append it to the .part; this thread
        hashes it. Every byte written is hashed before this returns or raises (a
        break in the body, a full disk, a cancel), so the .part and the hasher always agree
        for the resume.
        """
        assert self.part is not None
        received = 0
        update = self.hasher.update
        fd = self._open_append()
        flusher = _Flusher(fd, FLUSH_STEP if BACKGROUND_FLUSH else None)
        reader = _BodyReader(response, [self.o.buffer() for _ in range(PIPELINE_BUFFERS)],
                             self.cancel, fd, flusher.wrote)
        finished = False
        try:
            while True:
                buffer, n = reader.next_filled()
                if not n:
                    break
                update(memoryview(buffer)[:n])
                reader.recycle(buffer)
                received += n
                self.hashed = start + received
                self.meter.update(self.hashed)
                if self.cancel.is_set():
                    break  # now, not after the buffers still to come
            finished = not self.cancel.is_set() and reader.write_error is None
        finally:
            # After a failure here the reader may sit in a read: closing the response (our
            # caller does) ends it, no need to wait; it writes nothing once stopped.
            reader.stop(wait=finished)
            for buffer, n in reader.written_unhashed():  # written before the stop
                update(memoryview(buffer)[:n])
                received += n
                self.hashed = start + received
            try:
                flusher.close()
                if flusher.error is not None:
                    raise flusher.error
                os.fsync(fd)  # on disk before it is renamed into place (or kept to resume)
            except OSError as exc:
                if reader.write_error is None:
                    reader.write_error = exc
            finally:
                os.close(fd)
        if reader.write_error is not None:
            raise self._write_error(reader.write_error) from None
        self._check_cancel()
        if reader.error is not None:
            raise _Interrupted(str(reader.error), url=reader.error.url) from reader.error
        return received

    def _check_part_is_a_file(self) -> None:
        """A ``.part`` that is a link or a folder is not ours to write through: a link could
        make the download append to any file it points at."""
        assert self.part is not None
        try:
            st = os.lstat(os_path(self.part))
        except FileNotFoundError:
            return
        except OSError as exc:
            raise self._write_error(exc) from None
        if not stat.S_ISREG(st.st_mode):
            raise FileProblem(f"{self.part} is not a file (a link or a folder): remove it and "
                              "retry")

    def _open_append(self) -> int:
        assert self.part is not None
        # O_NOFOLLOW: a link put there since the check is refused too.
        flags = (os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0)
                 | getattr(os, "O_NOFOLLOW", 0))
        try:
            return os.open(os_path(self.part), flags, 0o644)
        except OSError as exc:
            raise self._write_error(exc) from None

    def _write_error(self, exc: OSError) -> CivdeskError:
        assert self.part is not None
        if exc.errno in NO_SPACE:
            return DiskFull(f"The disk holding {self.folder} is full; free some space and "
                            "retry — the partial download was kept")
        return FileProblem(f"Cannot write {self.part}: {exc.strerror or exc}")

    def _check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Cancelled("Download")

    def _discard_part(self) -> None:
        """Delete the .part (still holding its lock, so no one takes a file going away)."""
        if self.lock is not None:
            self.lock.delete()
            self.lock = None
        elif self.part is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os_path(self.part))

    # -- placing the verified file --------------------------------------------------------

    def _place(self, digest: str, size: int) -> DownloadResult:
        """Rename the .part to its final name; never over a different file."""
        assert self.part is not None
        checked = (CHECKED_SHA256 if self.expected is not None
                   else CHECKED_SIZE if self.meter.total is not None else CHECKED_NOTHING)
        final = self._final()
        if os.path.lexists(os_path(final)):
            if _is_file(final) and os.stat(os_path(final)).st_size == size and (
                _hash_file(final, size, self.cancel).hexdigest().upper() == digest
            ):
                self._discard_part()
                return DownloadResult(final, digest, size, already_present=True,
                                      checked=checked)
            final = final.with_name(free_name(final.parent, final.name))
        if os.name == "nt":  # pragma: no cover - an open file can't be renamed there
            self.unlock()
        os.replace(os_path(self.part), os_path(final))
        _fsync_dir(final.parent)
        _test_pause("after_rename")
        log.info("Downloaded %s (%s, checked: %s)", final, human_size(size), checked)
        return DownloadResult(final, digest, size, checked=checked)


class _BodyReader:
    """Reads a response body into buffers on one thread and appends them to the .part on
    another, so receiving, writing and hashing (the caller's thread) each have a core.

    Receiving and writing are each a copy of every byte (socket to buffer, buffer to page
    cache); on one thread they cost 0.6-3 s of CPU per GiB against hashing's 0.7-0.8, so
    that thread set the pace whenever writing was slow. :meth:`next_filled` hands the
    written buffers out in order, to be hashed; :meth:`recycle` gives one back for reuse,
    so at most ``len(buffers)`` are in flight. The body is read in steps sized to take
    ~:data:`READ_STEP_SECONDS` each (64 KiB – one buffer), so a cancel or pause is seen quickly
    even on a slow link, while a fast one still fills a buffer in a few large reads. A
    :class:`NetworkError` (or a cancel) ends the body early: ``error`` keeps the first; a
    failed write ends it too: ``write_error``.
    """

    def __init__(self, response: DownloadResponse, buffers: list[bytearray],
                 cancel: threading.Event, fd: int, on_written: Callable[[int], None]) -> None:
        self.response = response
        self.cancel = cancel
        self.error: NetworkError | None = None
        self.write_error: OSError | None = None
        self._fd = fd
        self._on_written = on_written
        self._step = READ_STEP_START
        self._free: queue.SimpleQueue[bytearray | None] = queue.SimpleQueue()
        self._received: queue.SimpleQueue[tuple[bytearray, int]] = queue.SimpleQueue()
        self._filled: queue.SimpleQueue[tuple[bytearray, int]] = queue.SimpleQueue()
        for buffer in buffers:
            self._free.put(buffer)
        self._empty = bytearray(0)
        # Held while writing and handing over a buffer: once stop() has it, nothing more is
        # written, and every written buffer is in the queue.
        self._lock = threading.Lock()
        self._stopped = False
        self._reader = threading.Thread(target=self._read_body, daemon=True,
                                        name="civdesk-download-reader")
        self._writer = threading.Thread(target=self._write_received, daemon=True,
                                        name="civdesk-download-writer")
        self._reader.start()
        self._writer.start()

    def _read_body(self) -> None:
        try:
            while True:
                buffer = self._free.get()
                if (buffer is None or self.cancel.is_set() or self._stopped
                        or self.write_error is not None):
                    break
                n, more = self._fill(buffer)
                if n:
                    self._received.put((buffer, n))
                if not more:
                    break
        finally:
            self._received.put((self._empty, 0))

    def _fill(self, buffer: bytearray) -> tuple[int, bool]:
        """Read into ``buffer``; return its byte count and whether the body goes on."""
        view = memoryview(buffer)
        filled = 0
        began = time.monotonic()
        while filled < len(view):
            if self.cancel.is_set() or self._stopped:
                return filled, False
            step = self._step
            t0 = time.monotonic()
            try:
                n = self.response.readinto(view[filled : filled + step])
            except NetworkError as exc:
                self.error = exc
                return filled, False
            except BaseException as exc:  # a bug: end the body, never hang the consumer
                if not self._stopped:  # else: the response was closed under us
                    log.exception("Download reader failed")
                    self.error = NetworkError(f"The download stopped ({exc})")
                return filled, False
            if not n:
                return filled, False
            filled += n
            now = time.monotonic()
            took = now - t0
            if n == step and took < READ_STEP_SECONDS / 2 and step < READ_STEP_MAX:
                self._step = step * 2
            elif took > READ_STEP_SECONDS and step > READ_STEP_MIN:
                self._step = step // 2
            if now - began > READ_STEP_SECONDS:
                break  # a slow link: hand over what came, so progress keeps moving
        return filled, True

    def _write_received(self) -> None:
        """Append each received buffer, in order; after a failure or a stop, only give the
        buffers back (the reader may wait for one) until the reader's end arrives.

        A failed write ends the body for the hasher at once: the reader may sit in a read
        of a stalled connection, which only closing the response (after we raise) ends.
        """
        ended = False
        try:
            while True:
                buffer, n = self._received.get()
                if not n:
                    break
                if not self._write(buffer, n):
                    self._free.put(buffer)
                if self.write_error is not None and not ended:
                    self._filled.put((self._empty, 0))
                    ended = True
        finally:
            if not ended:
                self._filled.put((self._empty, 0))

    def _write(self, buffer: bytearray, n: int) -> bool:
        """Append ``buffer[:n]`` to the .part and hand it over; False when nothing was."""
        view = memoryview(buffer)[:n]
        written = 0
        with self._lock:
            if self._stopped or self.write_error is not None:
                return False
            try:
                while written < n:
                    written += os.write(self._fd, view[written:])
            except OSError as exc:
                self.write_error = exc
            if written:
                self._filled.put((buffer, written))
                self._on_written(written)
        return written > 0

    def next_filled(self) -> tuple[bytearray, int]:
        """The next written buffer and how many bytes it holds; 0 bytes at the end."""
        item = self._filled.get()
        if not item[1]:
            self._filled.put(item)  # the end stays the end
        return item

    def recycle(self, buffer: bytearray) -> None:
        self._free.put(buffer)

    def stop(self, *, wait: bool) -> None:
        """Stop reading and writing; ``wait`` for the threads (at the end they are done or
        about to be). After this, nothing more is written to the .part."""
        with self._lock:
            self._stopped = True
        self._free.put(None)
        if wait:
            self._reader.join()
            self._writer.join()

    def written_unhashed(self) -> list[tuple[bytearray, int]]:
        """After :meth:`stop`: the buffers written but not handed out by next_filled."""
        out: list[tuple[bytearray, int]] = []
        while True:
            try:
                item = self._filled.get_nowait()
            except queue.Empty:
                return out
            if item[1]:
                out.append(item)
            else:
                self._filled.put(item)  # the end stays the end
                return out


class _Flusher:
    """Pushes the .part's dirty pages to disk on its own thread while the download goes on.

    Without it the kernel starts writing only when dirty memory reaches its threshold (10%
    of RAM by default: a whole model fits under it), so the fsync before the rename waited
    for the entire file after the last byte arrived. :meth:`wrote` counts appended bytes
    and wakes the thread every :data:`FLUSH_STEP`; each ``fdatasync`` writes whatever is
    dirty by then. A failure (a full disk shows up here when the file system allocates
    late) is kept in ``error`` for the caller, who owns the file and reports it. With no
    ``step`` it does nothing (the final fsync does it all).
    """

    def __init__(self, fd: int, step: int | None) -> None:
        self.error: OSError | None = None
        self._fd = fd
        self._step = step
        self._unflushed = 0
        self._wake = threading.Event()
        self._closing = False
        self._thread: threading.Thread | None = None
        if step is not None:
            self._thread = threading.Thread(target=self._run, name="civdesk-download-flusher",
                                            daemon=True)
            self._thread.start()

    def wrote(self, n: int) -> None:
        """``n`` more bytes were appended (called by the writer thread only)."""
        if self._step is None:
            return
        self._unflushed += n
        if self._unflushed >= self._step:
            self._unflushed = 0
            self._wake.set()

    def _run(self) -> None:
        sync = getattr(os, "fdatasync", os.fsync)  # the size changes: both write it out
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._closing:
                return
            try:
                sync(self._fd)
            except OSError as exc:
                self.error = exc
                return

    def close(self) -> None:
        """Stop, once a flush under way has ended (the fd must stay open until then)."""
        self._closing = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join()


def _hash_file(path: Path, length: int, cancel: threading.Event) -> Any:
    """A sha256 object fed the first ``length`` bytes of ``path``, streamed."""
    hasher = hashlib.sha256()
    buffer = bytearray(REHASH_BUFFER)
    view = memoryview(buffer)
    remaining = length
    with open(os_path(path), "rb", buffering=0) as fh:
        while remaining > 0:
            if cancel.is_set():
                raise Cancelled("Download")
            n = fh.readinto(view[: min(len(buffer), remaining)])
            if not n:
                break
            hasher.update(view[:n])
            remaining -= n
    return hasher


def _is_file(path: Path) -> bool:
    """``path.is_file()`` for a path of any length (:func:`os_path`)."""
    try:
        return stat.S_ISREG(os.stat(os_path(path)).st_mode)
    except (OSError, ValueError):
        return False


def _test_pause(point: str) -> None:
    """For the kill tests only: with ``CIVDESK_TEST_PAUSE_AT=<point>:<flag file>`` set, write
    the flag file and wait here to be killed (never set outside the test suite)."""
    wanted = os.environ.get("CIVDESK_TEST_PAUSE_AT")
    if not wanted or not wanted.startswith(point + ":"):
        return
    Path(wanted[len(point) + 1 :]).write_text(str(os.getpid()), encoding="utf-8")
    while True:
        time.sleep(1)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories can't be opened."""
    if os.name == "nt":
        return
    try:
        fd = os.open(os_path(folder), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
