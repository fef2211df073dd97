"""Big files on a hard disk or a share are hashed one at a time, in on-disk order; on
solid-state storage several at once (the device classifier injected)."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest

from civdesk.core.disks import NETWORK, ROTATIONAL, SOLID, Disk
from civdesk.core.hashing import sha256_file
from civdesk.core.library import Database, Library
from civdesk.core.scanner import Scanner
from civdesk.core.settings import Settings

MiB = 1 << 20


class WatchingHasher:
    """sha256_file, noting how many big files are being read at once and in which order.

    With ``meet`` it also waits (bounded) until two big files are read together: hashing
    in parallel passes the meeting, one at a time never reaches it.
    """

    def __init__(self, meet: bool = False) -> None:
        self.lock = threading.Lock()
        self.active = 0
        self.most = 0
        self.order: list[str] = []
        self.meeting = threading.Barrier(2, timeout=30) if meet else None
        self.met = False

    def __call__(self, path: Path, **kw: Any) -> str:
        with self.lock:
            self.active += 1
            self.most = max(self.most, self.active)
            self.order.append(Path(path).name)
        try:
            if self.meeting is not None and not self.met:
                try:
                    self.meeting.wait()
                    self.met = True
                except threading.BrokenBarrierError:
                    pass
            return sha256_file(path, **kw)
        finally:
            with self.lock:
                self.active -= 1


def big_files(folder: Path) -> list[Path]:
    """Three sparse big files whose on-disk (inode) order is not their size order, which is
    the order a parallel scan starts them in (biggest first): sizes are given after the
    files exist, by their inode order (a file system may reuse a freed lower inode)."""
    paths = [folder / f"{name}.safetensors" for name in ("a", "b", "c")]
    for path in paths:
        path.touch()
    by_inode = sorted(paths, key=lambda p: os.stat(p).st_ino)
    for path, mib in zip(by_inode, (2, 4, 3), strict=True):
        with open(path, "r+b") as fh:
            fh.truncate(mib * MiB)
    return paths


def scan_with(tmp_path: Path, disk: Disk, hasher: WatchingHasher, hashing: str = "auto"
              ) -> list[str]:
    root = tmp_path / "models"
    root.mkdir()
    paths = big_files(root)
    lib = Library(Database.open(tmp_path / "library.sqlite3"))
    settings = Settings(library_folders=[str(root)], hash_workers=2, hashing=hashing)
    asked: list[int] = []

    def classify(st_dev: int, path: str) -> Disk:
        asked.append(st_dev)
        return disk

    summary = Scanner(lib, None, settings, hasher=hasher, disks=classify).scan()
    assert summary.hashed == 3 and not summary.errors
    assert asked == [os.stat(root).st_dev]  # once per device, not per file
    by_inode = [p.name for p in sorted(paths, key=lambda p: os.stat(p).st_ino)]
    by_size = [p.name for p in sorted(paths, key=lambda p: -os.stat(p).st_size)]
    assert by_inode != by_size, "the test needs them to differ"
    return by_inode


@pytest.mark.parametrize("disk", [Disk(ROTATIONAL, "sda"), Disk(NETWORK, "nfs4:nas:/m")])
def test_a_hard_disk_or_share_hashes_one_big_file_at_a_time_in_disk_order(
        tmp_path: Path, disk: Disk) -> None:
    hasher = WatchingHasher()
    by_inode = scan_with(tmp_path, disk, hasher)
    assert hasher.most == 1
    assert hasher.order == by_inode


def test_one_at_a_time_setting_applies_to_any_disk(tmp_path: Path) -> None:
    hasher = WatchingHasher()
    by_inode = scan_with(tmp_path, Disk(SOLID, "nvme0n1"), hasher, "one-at-a-time")
    assert hasher.most == 1 and hasher.order == by_inode


@pytest.mark.parametrize(("disk", "hashing"), [(Disk(SOLID, "nvme0n1"), "auto"),
                                                (Disk(ROTATIONAL, "sda"), "parallel")])
def test_solid_state_hashes_big_files_on_both_workers(tmp_path: Path, disk: Disk,
                                                      hashing: str) -> None:
    hasher = WatchingHasher(meet=True)
    scan_with(tmp_path, disk, hasher, hashing)
    assert hasher.met and hasher.most == 2
