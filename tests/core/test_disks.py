"""What storage a file is on: Linux's sysfs and mount table, Windows' answers (simulated)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from civdesk.core.disks import (
    HASHING_AUTO,
    HASHING_ONE_AT_A_TIME,
    HASHING_PARALLEL,
    NETWORK,
    ROTATIONAL,
    SOLID,
    VIRTUAL,
    Disk,
    LinuxDisks,
    one_at_a_time_key,
    seek_penalty_from,
    windows_disk,
)


def _disk(sys_root: Path, devpath: str, rotational: str) -> Path:
    disk = sys_root / "devices" / devpath
    (disk / "queue").mkdir(parents=True)
    (disk / "queue" / "rotational").write_text(rotational + "\n")
    return disk


def _dev(sys_root: Path, majmin: str, target: Path) -> None:
    link = sys_root / "dev" / "block" / majmin
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)


@pytest.fixture
def fake_sys(tmp_path: Path) -> tuple[LinuxDisks, Path]:
    """A sysfs with a hard disk's partition (8:1), an NVMe disk (259:0), a virtio disk
    (254:0), a device-mapper volume over the hard disk (253:0), a loop device backed by a
    file on the NVMe disk (7:0), and an NFS mount (0:50)."""
    sys_root = tmp_path / "sys"
    sda = _disk(sys_root, "pci0000:00/ata1/host0/block/sda", "1")
    (sda / "sda1").mkdir()
    (sda / "sda1" / "partition").write_text("1\n")
    _dev(sys_root, "8:1", sda / "sda1")
    _dev(sys_root, "259:0", _disk(sys_root, "pci0000:00/nvme/nvme0/block/nvme0n1", "0"))
    _dev(sys_root, "254:0", _disk(sys_root, "pci0000:00/0000:00:02.0/virtio1/block/vda", "1"))
    dm = _disk(sys_root, "virtual/block/dm-0", "0")  # dm reports 0 whatever lies beneath
    (dm / "slaves").mkdir()
    (dm / "slaves" / "sda1").symlink_to(sda / "sda1")
    _dev(sys_root, "253:0", dm)
    loop = _disk(sys_root, "virtual/block/loop0", "1")
    (loop / "loop").mkdir()
    (loop / "loop" / "backing_file").write_text("/images/disk.img\n")
    _dev(sys_root, "7:0", loop)
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        "27 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n"
        "40 27 0:50 / /mnt/nas rw,relatime shared:5 - nfs4 nas:/models rw,vers=4.2\n"
        "41 27 0:51 / /mnt/ssh rw - fuse.sshfs me@box:/m rw\n")

    def stat(path: str) -> os.stat_result:
        assert path == "/images/disk.img"
        return os.stat_result((0o100644, 1, os.makedev(259, 0), 1, 0, 0, 0, 0, 0, 0))

    return LinuxDisks(str(sys_root), str(mountinfo), stat=stat), sys_root


@pytest.mark.skipif(not hasattr(os, "makedev"), reason="POSIX device numbers")
@pytest.mark.parametrize(("major", "minor", "kind", "physical"), [
    (8, 1, ROTATIONAL, "sda"),  # a partition is its disk
    (259, 0, SOLID, "nvme0n1"),
    (254, 0, VIRTUAL, "vda"),  # rotational=1, but a hypervisor's disk
    (253, 0, ROTATIONAL, ("sda",)),  # device mapper: what lies beneath
    (7, 0, SOLID, "nvme0n1"),  # a loop device: the disk its file is on
    (0, 50, NETWORK, "nfs4:nas:/models"),
    (0, 51, NETWORK, "fuse.sshfs:me@box:/m"),
])
def test_linux_disks_are_classified_through_partitions_dm_loop_and_mounts(
    fake_sys: tuple[LinuxDisks, Path], major: int, minor: int, kind: str, physical: object
) -> None:
    disks, _root = fake_sys
    assert disks.classify(os.makedev(major, minor), "/x") == Disk(kind, physical)


@pytest.mark.parametrize(("kind", "policy", "in_turn"), [
    (ROTATIONAL, HASHING_AUTO, True),
    (NETWORK, HASHING_AUTO, True),
    (SOLID, HASHING_AUTO, False),
    (VIRTUAL, HASHING_AUTO, False),
    (ROTATIONAL, HASHING_PARALLEL, False),
    (NETWORK, HASHING_PARALLEL, False),
    (SOLID, HASHING_ONE_AT_A_TIME, True),
    (VIRTUAL, HASHING_ONE_AT_A_TIME, True),
])
def test_the_setting_decides_which_disks_take_turns(kind: str, policy: str,
                                                     in_turn: bool) -> None:
    key = one_at_a_time_key(Disk(kind, "d"), policy)
    assert (key == "d") if in_turn else key is None


def test_windows_seek_penalty_and_network_drives_simulated() -> None:
    penalty = {"\\\\.\\D:": True, "\\\\.\\C:": False, "\\\\.\\E:": None}

    def disk(path: str, drive_type: int = 3) -> Disk:
        return windows_disk(path, drive_type=lambda root: drive_type,
                            seek_penalty=penalty.__getitem__)

    assert disk("D:\\models\\a.safetensors") == Disk(ROTATIONAL, "D:")
    assert disk("c:\\models\\a.safetensors") == Disk(SOLID, "C:")
    assert disk("E:\\models").kind == "unknown"
    assert disk("Z:\\models", drive_type=4) == Disk(NETWORK, "Z:")
    assert disk("\\\\nas\\share\\models\\a.safetensors").kind == NETWORK
    # DEVICE_SEEK_PENALTY_DESCRIPTOR: Version 12, Size 12, IncursSeekPenalty
    assert seek_penalty_from(bytes([12, 0, 0, 0, 12, 0, 0, 0, 1, 0, 0, 0])) is True
    assert seek_penalty_from(bytes([12, 0, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0])) is False
    assert seek_penalty_from(b"") is None
