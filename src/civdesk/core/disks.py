"""What kind of storage a file is on, so a scan hashes big files the way it likes.

A spinning disk reads one stream at full speed but thrashes between several: InvokeAI
measured hashing several big files at once on one about 100x slower than one at a time
(their PR 6020). A network share is the same over a shared link. Solid-state storage
(and the page cache) serve several readers at once, and then every core can hash.

:func:`classify` answers per ``st_dev``: the :class:`Disk` kind and the physical device it
is on (two partitions of one disk share it, so they take turns). The scan's setting
``hashing`` decides what to do with it (:func:`one_at_a_time_key`):

- ``parallel``: every big file in parallel (the behaviour before this setting);
- ``one-at-a-time``: one big file at a time per physical device, everywhere;
- ``auto`` (default): one at a time on network shares and on disks that report a seek
  penalty, parallel elsewhere. On Linux a virtual machine's paravirtual disk (virtio,
  Xen) reports ``rotational=1`` whatever the host has underneath (this build machine's
  ``vda`` is SSD-backed): ``auto`` does not trust that flag there, since one big file at
  a time halves hashing on 2 cores when the bytes come fast (measured: bench_scan.py,
  ``--hashing``). Set ``one-at-a-time`` for a VM whose disk is a real hard disk. macOS
  reports no seek penalty cheaply: ``auto`` treats its local disks as solid-state (the
  setting is the way there).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

SOLID = "solid-state"
ROTATIONAL = "rotational"
VIRTUAL = "virtual"  # a hypervisor's disk: its rotational flag says nothing of the host's
NETWORK = "network"
UNKNOWN = "unknown"

HASHING_AUTO = "auto"
HASHING_PARALLEL = "parallel"
HASHING_ONE_AT_A_TIME = "one-at-a-time"
HASHING_CHOICES = (HASHING_AUTO, HASHING_PARALLEL, HASHING_ONE_AT_A_TIME)

#: File system types whose bytes come over a network (/proc/self/mountinfo's type field;
#: "fuse.sshfs" and the like are matched by their subtype).
NETWORK_FS = frozenset({
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "ncpfs", "9p", "afs", "coda", "ceph",
    "glusterfs", "lustre", "beegfs", "davfs", "fuse.sshfs", "sshfs", "fuse.rclone",
    "fuse.davfs2", "fuse.glusterfs", "fuse.s3fs", "fuse.gcsfuse", "fuse.smbnetfs",
    "fuse.cephfs", "fuse.juicefs", "afpfs", "webdav",
})
#: Parts of a disk's sysfs device path that mark a hypervisor's paravirtual disk.
VIRTUAL_BUSES = ("/virtio", "/xen", "/vbd-", "/hv_", "/VMBUS")
_LINK_DEPTH = 8  # loop → file on dm → disk: bounded, a loop device can back onto itself


@dataclass(frozen=True)
class Disk:
    """The storage a file is on: its kind and the physical device (a stable key)."""

    kind: str
    physical: Hashable


Classifier = Callable[[int, str], Disk]  # (st_dev, a path on it) -> Disk


def one_at_a_time_key(disk: Disk, policy: str) -> Hashable | None:
    """The device a big file on ``disk`` takes turns on under ``policy``; None: parallel."""
    if policy == HASHING_PARALLEL:
        return None
    if policy == HASHING_ONE_AT_A_TIME or disk.kind in (ROTATIONAL, NETWORK):
        return disk.physical
    return None


def classify(st_dev: int, path: str) -> Disk:
    """The disk ``path`` (on device ``st_dev``) is on, for this platform."""
    try:
        if sys.platform.startswith("linux"):
            return LinuxDisks().classify(st_dev, path)
        if sys.platform == "win32":
            return windows_disk(path)
    except (OSError, ValueError) as err:  # a sysfs that looks unusual: parallel, as before
        log.info("Cannot tell what disk %s is on: %s", path, err)
    return Disk(UNKNOWN, st_dev)


class LinuxDisks:
    """:func:`classify` from /proc/self/mountinfo and /sys (roots injectable for tests)."""

    def __init__(self, sys_root: str = "/sys", mountinfo: str = "/proc/self/mountinfo",
                 stat: Callable[[str], os.stat_result] = os.stat) -> None:
        self.sys_root = Path(sys_root)
        self.mountinfo = mountinfo
        self.stat = stat
        self._types: dict[tuple[int, int], tuple[str, str]] | None = None

    def classify(self, st_dev: int, path: str, depth: int = 0) -> Disk:
        major, minor = os.major(st_dev), os.minor(st_dev)
        fstype, source = self._mount_types().get((major, minor), ("", ""))
        if fstype in NETWORK_FS or fstype.split(".")[-1] in NETWORK_FS:
            return Disk(NETWORK, f"{fstype}:{source}")
        block = self.sys_root / "dev" / "block" / f"{major}:{minor}"
        if not block.exists():
            return Disk(UNKNOWN, st_dev)  # tmpfs, overlay, btrfs' anonymous device…
        return self._block(block.resolve(), depth)

    def _block(self, device: Path, depth: int) -> Disk:
        if (device / "partition").exists():
            device = device.parent  # a partition's folder sits in its disk's
        loop_file = device / "loop" / "backing_file"
        if loop_file.exists() and depth < _LINK_DEPTH:
            backing = loop_file.read_text().strip()
            return self.classify(self.stat(backing).st_dev, backing, depth + 1)
        slaves = sorted((device / "slaves").glob("*")) if (device / "slaves").is_dir() else []
        if slaves and depth < _LINK_DEPTH:  # device mapper, md: what lies beneath
            below = [self._block(s.resolve(), depth + 1) for s in slaves]
            for kind in (NETWORK, ROTATIONAL, VIRTUAL):
                if any(d.kind == kind for d in below):
                    return Disk(kind, tuple(d.physical for d in below))
            return Disk(SOLID, tuple(d.physical for d in below))
        try:
            rotational = (device / "queue" / "rotational").read_text().strip() == "1"
        except OSError:
            return Disk(UNKNOWN, device.name)
        if not rotational:
            return Disk(SOLID, device.name)
        if any(bus in os.fspath(device) for bus in VIRTUAL_BUSES):
            return Disk(VIRTUAL, device.name)
        return Disk(ROTATIONAL, device.name)

    def _mount_types(self) -> dict[tuple[int, int], tuple[str, str]]:
        """(major, minor) -> (file system type, source) of every mount, read once."""
        if self._types is None:
            self._types = {}
            with open(self.mountinfo, encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    left, _sep, right = line.partition(" - ")
                    fields, tail = left.split(), right.split()
                    if len(fields) < 3 or len(tail) < 2 or ":" not in fields[2]:
                        continue
                    major, _c, minor = fields[2].partition(":")
                    self._types[(int(major), int(minor))] = (tail[0], tail[1])
        return self._types


# --------------------------------------------------------------------------- Windows

_DRIVE_REMOTE = 4
_IOCTL_STORAGE_QUERY_PROPERTY = 0x2D1400
_STORAGE_DEVICE_SEEK_PENALTY_PROPERTY = 7


class SeekPenaltyQuery:
    """``IOCTL_STORAGE_QUERY_PROPERTY`` for ``StorageDeviceSeekPenaltyProperty`` on a
    volume (``\\\\.\\C:``): True, False, or None when the volume cannot tell."""

    def __call__(self, volume: str) -> bool | None:  # pragma: no cover - Windows only
        import ctypes
        from ctypes import wintypes

        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
        handle = kernel32.CreateFileW(volume, 0, 3, None, 3, 0, None)  # no access: query
        if handle in (-1, 0xFFFFFFFF, ctypes.c_void_p(-1).value):
            return None
        try:
            query = (ctypes.c_uint32 * 3)(_STORAGE_DEVICE_SEEK_PENALTY_PROPERTY, 0, 0)
            out = ctypes.create_string_buffer(12)
            returned = wintypes.DWORD()
            ok = kernel32.DeviceIoControl(handle, _IOCTL_STORAGE_QUERY_PROPERTY, query,
                                          ctypes.sizeof(query), out, 12,
                                          ctypes.byref(returned), None)
            return seek_penalty_from(out.raw[: returned.value]) if ok else None
        finally:
            kernel32.CloseHandle(handle)


def seek_penalty_from(descriptor: bytes) -> bool | None:
    """DEVICE_SEEK_PENALTY_DESCRIPTOR (Version, Size: DWORD; IncursSeekPenalty: BOOLEAN)."""
    if len(descriptor) < 9:
        return None
    return descriptor[8] != 0


def windows_disk(path: str, *, drive_type: Callable[[str], int] | None = None,
                 seek_penalty: Callable[[str], bool | None] | None = None) -> Disk:
    """A Windows path's disk: a UNC path or a mapped network drive is a share; else the
    volume's seek penalty tells a hard disk (the queries injectable to test elsewhere)."""
    import ntpath  # Windows' path rules, whatever runs this (the tests)

    drive, _rest = ntpath.splitdrive(ntpath.abspath(path))
    if drive.startswith(("\\\\", "//")):
        return Disk(NETWORK, drive.lower())
    drive = drive.upper()
    root = drive + "\\"
    if drive_type is None:  # pragma: no cover - Windows only
        import ctypes

        drive_type = ctypes.windll.kernel32.GetDriveTypeW  # type: ignore[attr-defined]
    if drive_type(root) == _DRIVE_REMOTE:
        return Disk(NETWORK, drive)
    penalty = (seek_penalty or SeekPenaltyQuery())(f"\\\\.\\{drive}")
    if penalty is None:
        return Disk(UNKNOWN, drive)
    return Disk(ROTATIONAL if penalty else SOLID, drive)


# ---------------------------------------------------------------------- on-disk order

_FS_IOC_FIEMAP = 0xC020660B  # _IOWR('f', 11, struct fiemap)
_FIEMAP_HEADER = 32  # fm_start, fm_length (u64); flags, mapped, count, reserved (u32)
_FIEMAP_EXTENT = 56  # fe_logical, fe_physical, fe_length, 2 reserved (u64); flags, 3 (u32)


def disk_position(path: str, inode: int) -> tuple[int, int]:
    """Where a file starts on its disk, to read files in that order: the physical offset
    of its first extent (FIEMAP, Linux) when the file system tells, else its inode (files
    written one after another get neighbouring inodes and blocks). Sorts FIEMAP answers
    before inode guesses; never raises."""
    if sys.platform.startswith("linux"):
        import fcntl
        import struct

        buf = bytearray(_FIEMAP_HEADER + _FIEMAP_EXTENT)
        struct.pack_into("=QQLLLL", buf, 0, 0, 0xFFFFFFFFFFFFFFFF, 0, 0, 1, 0)
        try:
            fd = os.open(path, os.O_RDONLY)
            try:
                fcntl.ioctl(fd, _FS_IOC_FIEMAP, buf)
            finally:
                os.close(fd)
        except OSError:
            return (1, inode)
        mapped = struct.unpack_from("=L", buf, 20)[0]
        if mapped:
            return (0, struct.unpack_from("=Q", buf, _FIEMAP_HEADER + 8)[0])
    return (1, inode)
