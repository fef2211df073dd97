"""Hashing on real files: digests against hashlib, the short hashes, cancel, parallel runs."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from civdesk.core.errors import Cancelled, FileProblem
from civdesk.core.hashing import (
    AUTOV1_MIN_SIZE,
    SMALL_FILE,
    SMALL_GROUP_FILES,
    FileChanged,
    FileStat,
    HashCache,
    autov1,
    autov2,
    hash_checked,
    hash_many,
    sha256_file,
)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("size", [0, 1, 4095, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, 3_333_333])
def test_sha256_matches_hashlib_across_buffer_boundaries(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    path = write(tmp_path / "m.safetensors", data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest().upper()
    # A tiny buffer exercises many partial reads.
    assert sha256_file(path, buffer_size=777) == hashlib.sha256(data).hexdigest().upper()


def test_known_vector(tmp_path: Path) -> None:
    path = write(tmp_path / "abc.bin", b"abc")
    assert sha256_file(path) == (
        "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"
    )
    assert autov2(sha256_file(path)) == "BA7816BF8F"


def test_autov2_rejects_non_digest() -> None:
    with pytest.raises(ValueError):
        autov2("abc")


def test_autov1_follows_a1111_definition(tmp_path: Path) -> None:
    data = os.urandom(AUTOV1_MIN_SIZE + 12345)
    path = write(tmp_path / "big.ckpt", data)
    expected = hashlib.sha256(data[0x100000 : 0x100000 + 0x10000]).hexdigest()[:8].upper()
    assert autov1(path) == expected


def test_autov1_is_none_under_two_mib(tmp_path: Path) -> None:
    path = write(tmp_path / "small.pt", os.urandom(AUTOV1_MIN_SIZE - 1))
    assert autov1(path) is None


def test_progress_reports_bytes_so_far(tmp_path: Path) -> None:
    path = write(tmp_path / "m.bin", os.urandom(10_000))
    seen: list[int] = []
    sha256_file(path, progress=seen.append, buffer_size=4096)
    assert seen == [4096, 8192, 10_000]


def test_cancel_stops_within_a_buffer(tmp_path: Path) -> None:
    path = write(tmp_path / "m.bin", os.urandom(64 * 1024))
    cancel = threading.Event()
    seen: list[int] = []

    def progress(n: int) -> None:
        seen.append(n)
        if n >= 8192:
            cancel.set()

    with pytest.raises(Cancelled):
        sha256_file(path, progress=progress, cancel=cancel, buffer_size=4096)
    assert seen == [4096, 8192]


def test_missing_and_unreadable_files_are_file_problems(tmp_path: Path) -> None:
    with pytest.raises(FileProblem, match="disappeared"):
        sha256_file(tmp_path / "nope.safetensors")
    with pytest.raises(FileProblem, match="Cannot read"):
        sha256_file(tmp_path)  # a directory cannot be read as a file


def test_hash_checked_detects_a_file_changing_while_hashed(tmp_path: Path) -> None:
    path = write(tmp_path / "m.bin", os.urandom(20_000))

    def appending_hasher(p: Path, **kw: object) -> str:
        digest = sha256_file(p)
        with open(p, "ab") as fh:  # another program writes to it meanwhile
            fh.write(b"more")
        return digest

    result = hash_checked(path, hasher=appending_hasher)
    assert not result.ok
    assert isinstance(result.error, FileChanged)
    assert "changed while it was being hashed" in str(result.error)


def test_hash_checked_detects_a_file_vanishing(tmp_path: Path) -> None:
    path = write(tmp_path / "m.bin", b"x")

    def deleting_hasher(p: Path, **kw: object) -> str:
        digest = sha256_file(p)
        p.unlink()
        return digest

    result = hash_checked(path, hasher=deleting_hasher)
    assert isinstance(result.error, FileChanged)
    assert "disappeared" in str(result.error)


def test_hash_many_yields_every_file_with_errors_per_file(tmp_path: Path) -> None:
    blobs = {tmp_path / f"f{i}.safetensors": os.urandom(1000 * i) for i in range(1, 12)}
    for path, data in blobs.items():
        path.write_bytes(data)
    missing = tmp_path / "gone.safetensors"
    totals: list[int] = []
    results = list(hash_many([*blobs, missing], workers=3, progress=totals.append))
    by_path = {r.path: r for r in results}
    assert len(results) == len(blobs) + 1
    for path, data in blobs.items():
        assert by_path[path].sha256 == hashlib.sha256(data).hexdigest().upper()
        assert by_path[path].stat == FileStat.of(path.stat())
    assert isinstance(by_path[missing].error, FileProblem)
    assert max(totals) == sum(len(d) for d in blobs.values())


def test_hash_many_takes_the_callers_sizes_and_a_wrong_one_only_regroups(
    tmp_path: Path,
) -> None:
    blobs = {tmp_path / "big.bin": os.urandom(3 << 20),
             **{tmp_path / f"s{i}.bin": os.urandom(5000) for i in range(20)}}
    for path, data in blobs.items():
        path.write_bytes(data)
    paths = list(blobs)
    # The big file claimed small, a small one claimed big: grouped wrongly, hashed right.
    sizes = [0] + [len(blobs[p]) for p in paths[1:-1]] + [SMALL_FILE + 1]
    results = {r.path: r for r in hash_many(paths, workers=2, sizes=sizes)}
    assert {p: r.sha256 for p, r in results.items()} == {
        p: hashlib.sha256(d).hexdigest().upper() for p, d in blobs.items()}
    with pytest.raises(ValueError, match="2 sizes for 21 paths"):
        list(hash_many(paths, sizes=[1, 2]))


def test_hash_many_hashes_small_files_while_the_big_ones_run(tmp_path: Path) -> None:
    # The big files wait until every small file is hashed: were the small files queued
    # behind them (one queue, big files first), both workers would sit on a big file.
    big = [write(tmp_path / f"big{i}.bin", os.urandom(SMALL_FILE + 1)) for i in range(3)]
    small = [write(tmp_path / f"s{i:02}.bin", os.urandom(3000)) for i in range(30)]
    small_done = threading.Event()
    hashed_small: list[Path] = []

    def hasher(p: Path, **kw: object) -> str:
        if p in big:
            assert small_done.wait(10), "a big file held the small ones back"
        else:
            hashed_small.append(p)
            if len(hashed_small) == len(small):
                small_done.set()
        return sha256_file(p, **kw)  # type: ignore[arg-type]

    order = [r.path for r in hash_many([*big, *small], workers=2, hasher=hasher)]
    assert [p for p in order if p in small] == small  # in the given order
    assert sorted(p for p in order if p in big) == big


def test_hash_many_with_one_worker_hashes_the_small_files_first(tmp_path: Path) -> None:
    big = write(tmp_path / "big.bin", os.urandom(SMALL_FILE + 1))
    small = [write(tmp_path / f"s{i}.bin", os.urandom(100)) for i in range(3)]
    started: list[Path] = []

    def hasher(p: Path, **kw: object) -> str:
        started.append(p)
        return sha256_file(p, **kw)  # type: ignore[arg-type]

    results = list(hash_many([big, *small], workers=1, hasher=hasher))
    assert started == [*small, big]
    assert all(r.ok for r in results)


def test_hash_many_cancel_raises_and_stops_queued_files(tmp_path: Path) -> None:
    paths = [write(tmp_path / f"f{i}.bin", os.urandom(50_000)) for i in range(40)]
    cancel = threading.Event()
    calls: list[Path] = []

    def counting(p: Path, **kw: object) -> str:
        calls.append(p)
        if paths.index(p) >= SMALL_GROUP_FILES:  # past the first task: a slow disk, so the
            cancel.wait(5)  # workers cannot have hashed everything before the cancel
        return sha256_file(p, **kw)  # type: ignore[arg-type]

    got = []
    with pytest.raises(Cancelled):
        for result in hash_many(paths, workers=2, cancel=cancel, hasher=counting):
            got.append(result)
            if len(got) == 3:
                cancel.set()
    assert len(calls) < len(paths) / 2


def test_abandoning_hash_many_does_not_set_the_callers_event(tmp_path: Path) -> None:
    paths = [write(tmp_path / f"f{i}.bin", os.urandom(1000)) for i in range(10)]
    cancel = threading.Event()
    gen = hash_many(paths, workers=2, cancel=cancel)
    next(gen)
    gen.close()
    assert not cancel.is_set()


def test_hash_cache_hits_only_for_identical_stat(tmp_path: Path) -> None:
    path = write(tmp_path / "m.bin", b"abc")
    stat = FileStat.of(path.stat())
    cache = HashCache()
    cache.put(path, stat, "D" * 64)
    assert cache.get(path, stat) == "D" * 64
    assert cache.get(path, FileStat(stat.size + 1, stat.mtime_ns, stat.inode)) is None
    assert cache.get(path, FileStat(stat.size, stat.mtime_ns + 1, stat.inode)) is None
    assert cache.get(tmp_path / "other.bin", stat) is None


def test_hashing_switches_threads_quickly_and_restores_the_interval(tmp_path: Path) -> None:
    """While hash_many runs, the interpreter hands the GIL over every 0.5 ms (hashing
    threads wait for it twice per buffer); afterwards, and after an abandoned run, the
    interval is what it was."""
    import sys

    paths = [tmp_path / f"f{i}" for i in range(3)]
    for p in paths:
        p.write_bytes(os.urandom(1024))
    before = sys.getswitchinterval()
    seen = []
    for _result in hash_many(paths, 2):
        seen.append(sys.getswitchinterval())
    assert seen and all(s <= 0.0005 + 1e-9 for s in seen)
    assert sys.getswitchinterval() == before
    abandoned = hash_many(paths, 2)
    next(abandoned)
    abandoned.close()
    assert sys.getswitchinterval() == before
