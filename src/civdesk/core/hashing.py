"""Streamed SHA256 of model files, the short hashes derived from it, and parallel hashing.

SHA256 is the identity of a model file: Civitai, A1111, ComfyUI and every companion format
key on it. Files are read with ``readinto`` into one reused buffer, so memory stays flat
whatever the file size, and ``hashlib`` (OpenSSL) releases the GIL while it digests a
buffer, so worker threads hash several files on all cores at ``openssl dgst`` speed.

Measured on the 2-core build machine (1 GiB file, page cache warm): 256 KiB–2 MiB buffers
all give ~1070 MB/s (openssl dgst: ~1020 MB/s); 8–16 MiB buffers are ~6% slower because the
buffer no longer fits in the CPU cache. Hence 2 MiB, not 1: in a scan the interpreter is
busy with other files, and each buffer costs the hashing thread two waits for the GIL
(after the read, after the digest); halving them made a first scan ~4% faster.
"""

from __future__ import annotations

import hashlib
import os
import queue
import sys
import threading
from collections import deque
from collections.abc import Callable, Generator, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import NamedTuple, Protocol

from civdesk.core.errors import Cancelled, FileProblem
from civdesk.core.longpaths import os_path

DEFAULT_BUFFER_SIZE = 2 << 20
#: Reads of a big file on a device that hashes one file at a time (a hard disk, a share):
#: long sequential requests, so a disk's head and a share's link stream.
SEQUENTIAL_BUFFER_SIZE = 8 << 20

# A1111's legacy "AutoV1" model hash: 64 KiB at offset 1 MiB; Civitai omits it under 2 MiB.
AUTOV1_OFFSET = 0x100000
AUTOV1_LENGTH = 0x10000
AUTOV1_MIN_SIZE = 0x200000

StrPath = str | os.PathLike[str]
#: Called with the number of bytes hashed so far.
ProgressCallback = Callable[[int], None]
Hasher = Callable[..., str]
#: A big file's turn on a device that reads one file at a time: (device, position on it).
Turn = tuple[Hashable, tuple[int, int]]


class CancelFlag(Protocol):
    """What cancels a long operation: a ``threading.Event`` or anything with ``is_set()``."""

    def is_set(self) -> bool: ...


class FileChanged(FileProblem):
    """The file was modified, replaced or deleted while it was being hashed."""

    def __init__(self, path: StrPath, what: str = "changed") -> None:
        super().__init__(f"{os.fspath(path)} {what} while it was being hashed; scan again later")
        self.path = os.fspath(path)


class FileStat(NamedTuple):
    """What tells an unchanged file from a changed one without reading it.

    A named tuple, not a frozen dataclass: a first scan makes two per file on the hashing
    threads, and a frozen dataclass's ``__init__`` costs several times more (GIL time).
    """

    size: int
    mtime_ns: int
    inode: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileStat:
        return cls(st.st_size, st.st_mtime_ns, st.st_ino)


def _file_problem(path: StrPath, err: OSError) -> FileProblem:
    if isinstance(err, FileNotFoundError):
        return FileChanged(path, "disappeared")
    reason = err.strerror or type(err).__name__
    return FileProblem(f"Cannot read {os.fspath(path)}: {reason}")


def sha256_file(
    path: StrPath,
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelFlag | None = None,
    buffer_size: int = DEFAULT_BUFFER_SIZE,
) -> str:
    """The SHA256 of a file's contents, as 64 UPPER-case hex characters.

    ``progress`` gets the bytes hashed so far after each buffer; setting ``cancel`` stops
    the read within one buffer and raises :class:`Cancelled`. Raises :class:`FileProblem`
    when the file cannot be read.
    """
    digest = hashlib.sha256()
    done = 0
    try:
        with open(os_path(path), "rb", buffering=0) as fh:
            # A small file gets a buffer of its size (+1: a file that grew still reads):
            # zeroing a 2 MiB buffer per 30 KB embedding would cost more than hashing it.
            size = os.fstat(fh.fileno()).st_size
            if size > buffer_size and hasattr(os, "posix_fadvise"):
                # Read ahead further: the whole file is read once, front to back.
                os.posix_fadvise(fh.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
            buf = bytearray(min(buffer_size, size + 1))
            view = memoryview(buf)
            while True:
                if cancel is not None and cancel.is_set():
                    raise Cancelled("Hashing")
                n = fh.readinto(buf)
                if not n:
                    break
                digest.update(view[:n])
                done += n
                if progress is not None:
                    progress(done)
    except OSError as err:
        raise _file_problem(path, err) from err
    return digest.hexdigest().upper()


def autov2(sha256: str) -> str:
    """A1111's short model hash (Civitai's AutoV2): the first 10 hex characters of SHA256."""
    if len(sha256) != 64:
        raise ValueError(f"not a SHA256 hex digest: {sha256!r}")
    return sha256[:10].upper()


def autov1(path: StrPath) -> str | None:
    """A1111's legacy model hash (Civitai's AutoV1), or None for files under 2 MiB.

    It hashes only 64 KiB at offset 1 MiB, so it is cheap but collides easily: use it to
    match old metadata, never as an identity.
    """
    try:
        with open(os_path(path), "rb") as fh:
            if os.fstat(fh.fileno()).st_size < AUTOV1_MIN_SIZE:
                return None
            fh.seek(AUTOV1_OFFSET)
            chunk = fh.read(AUTOV1_LENGTH)
    except OSError as err:
        raise _file_problem(path, err) from err
    return hashlib.sha256(chunk).hexdigest()[:8].upper()


@dataclass(frozen=True)
class HashResult:
    """One file of :func:`hash_many`: its digest, or why there is none.

    ``stat`` is the file's state when hashing finished (the same as when it started, or
    ``error`` is a :class:`FileChanged`), so the digest can be cached against it.
    """

    path: Path
    sha256: str | None
    error: FileProblem | None = None
    stat: FileStat | None = None

    @property
    def ok(self) -> bool:
        return self.sha256 is not None


def hash_checked(
    path: StrPath,
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelFlag | None = None,
    hasher: Hasher = sha256_file,
) -> HashResult:
    """Hash one file and verify it did not change meanwhile (stat before and after).

    Expected failures come back in the result; only :class:`Cancelled` is raised. The
    result carries ``path`` as given; the OS is given :func:`os_path` of it.
    """
    p = path if isinstance(path, Path) else Path(path)
    if hasher is sha256_file:
        small = _hash_small_checked(p, progress, cancel)
        if small is not None:
            return small
    on_disk = os_path(p)
    try:
        before = FileStat.of(os.stat(on_disk))
        digest = hasher(p, progress=progress, cancel=cancel)
        after = FileStat.of(os.stat(on_disk))
    except FileNotFoundError:
        return HashResult(p, None, FileChanged(p, "disappeared"))
    except OSError as err:
        return HashResult(p, None, _file_problem(p, err))
    except Cancelled:
        raise
    except FileProblem as err:
        return HashResult(p, None, err)
    if before != after:
        return HashResult(p, None, FileChanged(p), after)
    return HashResult(p, digest, None, after)


def _hash_small_checked(
    p: Path, progress: ProgressCallback | None, cancel: CancelFlag | None
) -> HashResult | None:
    """:func:`hash_checked` of a small file in one read and five system calls (not seven):
    each call hands the GIL over, which thousands of embeddings pay many times.

    None when the file is not small or the single read was short: the general path then
    decides.
    """
    if cancel is not None and cancel.is_set():
        raise Cancelled("Hashing")
    name = os_path(p)  # once: each Path to str conversion is a Python call
    try:
        fd = os.open(name, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        return HashResult(p, None, FileChanged(p, "disappeared"))
    except OSError as err:
        return HashResult(p, None, _file_problem(p, err))
    try:
        before = FileStat.of(os.fstat(fd))
        if before.size > SMALL_FILE:
            return None
        data = os.read(fd, before.size + 1)
    except OSError as err:
        return HashResult(p, None, _file_problem(p, err))
    finally:
        os.close(fd)
    if len(data) != before.size:
        return None  # grew, or a file system that reads short: let the loop handle it
    digest = hashlib.sha256(data).hexdigest().upper()
    try:
        after = FileStat.of(os.stat(name))
    except FileNotFoundError:
        return HashResult(p, None, FileChanged(p, "disappeared"))
    except OSError as err:
        return HashResult(p, None, _file_problem(p, err))
    if before != after:
        return HashResult(p, None, FileChanged(p), after)
    if progress is not None:
        progress(len(data))
    return HashResult(p, digest, None, after)


def default_workers() -> int:
    """One hashing thread per core: OpenSSL runs without the GIL, so each one is busy."""
    return max(1, os.cpu_count() or 1)


def hash_many(
    paths: Iterable[StrPath],
    workers: int | None = None,
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelFlag | None = None,
    hasher: Hasher = sha256_file,
    sizes: Sequence[int] | None = None,
    turns: Sequence[Turn | None] | None = None,
) -> Generator[HashResult, None, None]:
    """Hash files on worker threads, yielding each result as soon as it is ready.

    The files go in two lanes, each in the given order: big files one per task (put the
    biggest first so the workers end together), and small files several to a task. The
    first worker takes small files first, the others big files; a worker whose lane is
    empty helps the other. So the first results come at once, and a scan looks them up,
    writes their companions and stores them (interpreter work) while the big files hash
    without the GIL; with one queue, every worker hashed big files first and the scan sat
    idle for their first ~0.2 s.

    The workers run ahead of the consumer: results wait in a queue, so a slow consumer
    never holds the hashing back. ``sizes``: each path's size when the caller has just
    stat-ed them (a scan has), so they are not stat-ed again here before hashing starts
    (3,000 files: 4 ms on a local disk, one round trip each on a network share); a wrong
    size only changes how files are grouped. An unreadable or changing file yields a
    result with ``error`` set; it never stops the others. ``progress`` gets the total
    bytes hashed so far, from worker threads. Setting ``cancel`` stops the running files
    within one buffer, drops the queued ones and raises :class:`Cancelled` from the
    iterator; closing the iterator stops the workers without setting ``cancel``.

    ``turns``: for each path, None (hashed in parallel) or its :data:`Turn`: the big files
    of one device are then one task, hashed one at a time in the order of their position
    on it with long reads (a hard disk or a share thrashes between several readers),
    while the other workers hash small files and other devices' big ones.
    """
    pending_paths = list(paths)
    if not pending_paths:
        return
    for name, given in (("sizes", sizes), ("turns", turns)):
        if given is not None and len(given) != len(pending_paths):
            raise ValueError(f"{len(given)} {name} for {len(pending_paths)} paths")
    lanes = _Lanes(*_group_small_files(pending_paths, sizes, turns))
    count = min(workers or default_workers(), len(lanes))
    lock = threading.Lock()
    done_bytes = 0

    def file_progress() -> ProgressCallback | None:
        if progress is None:
            return None
        last = 0

        def report(n: int) -> None:
            nonlocal last, done_bytes
            with lock:
                done_bytes += n - last
                last = n
                total = done_bytes
            progress(total)

        return report

    # Our own flag, so that abandoning the iterator stops the workers without setting the
    # caller's event; the workers watch both.
    abandoned = threading.Event()
    stop = _AnyEvent(abandoned, cancel)
    # A list of results per task; an exception a worker did not expect; None: it ended.
    out: queue.SimpleQueue[list[HashResult] | BaseException | None] = queue.SimpleQueue()

    def work(small_first: bool) -> None:
        try:
            while (task := lanes.take(small_first)) is not None:
                results = []
                one_by_one = task.one_at_a_time
                how = (partial(sha256_file, buffer_size=SEQUENTIAL_BUFFER_SIZE)
                       if one_by_one and hasher is sha256_file else hasher)
                for path in task.paths:
                    if stop.is_set():
                        return
                    result = hash_checked(path, progress=file_progress(), cancel=stop,
                                          hasher=how)
                    if one_by_one:
                        out.put([result])  # each big file's result as soon as it is ready
                    else:
                        results.append(result)
                if results:
                    out.put(results)
        except Cancelled:
            pass  # the consumer sees the flag
        except BaseException as exc:  # a bug: raised in the consumer, not lost on a thread
            out.put(exc)
        finally:
            out.put(None)

    threads = [threading.Thread(target=work, args=(i == 0,), daemon=True,
                                name=f"civdesk-hash_{i}") for i in range(count)]
    for thread in threads:
        thread.start()
    _quick_handover.enter()
    try:
        running = count
        while running:
            item = out.get()
            if item is None:
                running -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                for result in item:
                    if stop.is_set():
                        raise Cancelled("Hashing")
                    yield result
        if stop.is_set():  # set while the last files ran: some were dropped
            raise Cancelled("Hashing")
    finally:
        # Cancelled, done, or the consumer stopped iterating: stop the workers now.
        abandoned.set()
        for thread in threads:
            thread.join()
        _quick_handover.leave()


class _QuickHandover:
    """A shorter interpreter switch interval while files are hashed.

    A hashing thread takes the GIL back twice per buffer (after the read, after the
    digest); while the scan's other threads run Python it waits up to the switch interval
    (5 ms) each time, for 1-2 ms of hashing. 0.5 ms made a first scan of 3 x 1 GiB +
    2,000 files ~6% faster on 2 cores (3 of 3 alternated rounds). Process-wide, so
    counted: the interval comes back when the last hash_many ends.
    """

    INTERVAL = 0.0005

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._before = 0.0

    def enter(self) -> None:
        with self._lock:
            if self._users == 0:
                self._before = sys.getswitchinterval()
                sys.setswitchinterval(min(self._before, self.INTERVAL))
            self._users += 1

    def leave(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0:
                sys.setswitchinterval(self._before)


_quick_handover = _QuickHandover()


#: Files up to this size are hashed several to a task: for a 30 KB embedding the
#: task's hand-over costs more than hashing it.
SMALL_FILE = 1 << 20
SMALL_GROUP_BYTES = 2 << 20
SMALL_GROUP_FILES = 8  # few enough that a cancel still drops most queued files


class _Task(NamedTuple):
    """Files one worker hashes in turn: a big file, a group of small ones, or a device's
    big files that take turns (``one_at_a_time``: each result is handed over at once)."""

    paths: list[StrPath]
    one_at_a_time: bool = False


def _group_small_files(
    paths: list[StrPath],
    sizes: Sequence[int] | None = None,
    turns: Sequence[Turn | None] | None = None,
) -> tuple[list[_Task], list[_Task]]:
    """The big files' tasks (one file each, or one per device whose files take turns,
    those first: they are the longest) and the small files' (several in a group), each in
    the given order."""
    big: list[_Task] = []
    small: list[_Task] = []
    by_device: dict[Hashable, list[tuple[tuple[int, int], int, StrPath]]] = {}
    group: list[StrPath] = []
    group_bytes = 0
    for i, path in enumerate(paths):
        if sizes is not None:
            size = sizes[i]
        else:
            try:
                size = os.stat(os_path(path)).st_size
            except OSError:
                size = SMALL_FILE + 1  # its own task, whose hash_checked reports the problem
        if size > SMALL_FILE:
            turn = turns[i] if turns is not None else None
            if turn is None:
                big.append(_Task([path]))
            else:
                by_device.setdefault(turn[0], []).append((turn[1], i, path))
            continue
        group.append(path)
        group_bytes += size
        if len(group) >= SMALL_GROUP_FILES or group_bytes >= SMALL_GROUP_BYTES:
            small.append(_Task(group))
            group, group_bytes = [], 0
    if group:
        small.append(_Task(group))
    in_turn = [_Task([path for _pos, _i, path in sorted(files)], True)
               for files in by_device.values()]
    return in_turn + big, small


class _Lanes:
    """The tasks of :func:`hash_many`: big files, and groups of small files.

    Workers take from both at once: ``deque.popleft`` is atomic, so no lock is needed.
    """

    def __init__(self, big: list[_Task], small: list[_Task]) -> None:
        self.big = deque(big)
        self.small = deque(small)

    def __len__(self) -> int:
        return len(self.big) + len(self.small)

    def take(self, small_first: bool) -> _Task | None:
        """The next task, from the preferred lane while it has any; None when both are empty."""
        first, second = (self.small, self.big) if small_first else (self.big, self.small)
        for lane in (first, second):
            try:
                return lane.popleft()
            except IndexError:
                continue
        return None


class _AnyEvent:
    """Looks like a set Event when any of its events is set."""

    def __init__(self, *events: CancelFlag | None) -> None:
        self._events = tuple(e for e in events if e is not None)

    def is_set(self) -> bool:
        # A loop, not any(generator): asked once per file and per buffer on the hashing
        # threads, where a generator's set-up is GIL time for nothing.
        for event in self._events:  # noqa: SIM110
            if event.is_set():
                return True
        return False


class HashCache:
    """Known digests keyed on (path, size, mtime_ns, inode): an unchanged file is not read.

    Built from what the library stored on the last scan; any difference in size, mtime or
    inode means the file may have changed and must be hashed again.
    """

    def __init__(self, entries: Mapping[str, tuple[FileStat, str]] | None = None) -> None:
        self._entries: dict[str, tuple[FileStat, str]] = dict(entries or {})

    def put(self, path: StrPath, stat: FileStat, sha256: str) -> None:
        self._entries[os.fspath(path)] = (stat, sha256)

    def get(self, path: StrPath, stat: FileStat) -> str | None:
        """The cached digest when the file is unchanged since it was hashed, else None."""
        entry = self._entries.get(os.fspath(path))
        if entry is None or entry[0] != stat:
            return None
        return entry[1]

    def __len__(self) -> int:
        return len(self._entries)
