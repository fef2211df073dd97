"""sha256_file against `openssl dgst -sha256` on one big file, and its memory use.

    .venv/bin/python bench/bench_hash.py [--size 2G] [--runs 3] [--dir /tmp]
    sudo .venv/bin/python bench/bench_hash.py --throttled bps=100M [--files 3] [--size 256M]

``--throttled`` (root, Linux): big files hashed in parallel against one at a time on a
device made slow here: an ext4 file system on a loop device (its image in /dev/shm), the
bench process in a cgroup whose reads of that device are throttled (cgroup v2 ``io.max``
where the io controller is enabled, else v1 ``blkio.throttle``): ``bps=100M`` (bytes per
second) or ``iops=150`` (requests per second, a hard disk's order). Each run starts with
the files out of the page cache. A throttle limits throughput or requests; it cannot make
a seek cost anything, so it shows what one-at-a-time costs on a slow device, not what it
saves on a spinning one.

Both contenders hash the same file with the page cache warm (it is read once first); each
runs --runs times and the best time counts. Target: ours >= 0.95x openssl's MB/s. Peak RSS is
measured in a fresh child process per file size (256 MiB and --size), so a flat line means
memory does not grow with the file.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import MB, MiB, best_of, have, make_file, peak_rss_mib, print_table, run_reference

TARGET = 0.95


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().rstrip("IB")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def child(path: str) -> None:
    """Hash one file in this fresh process; print the time and the peak RSS as JSON."""
    from civdesk.core.hashing import sha256_file

    baseline = peak_rss_mib()
    start = time.perf_counter()
    digest = sha256_file(path)
    print(json.dumps({"seconds": time.perf_counter() - start, "digest": digest,
                      "rss_mib": peak_rss_mib(), "baseline_mib": baseline}))


def measure_child(path: Path) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--child", str(path)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)  # type: ignore[no-any-return]


def _drop_cached(paths: list[Path]) -> None:
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


class _Throttle:
    """This process in a cgroup whose reads of one block device are throttled."""

    V2 = Path("/sys/fs/cgroup/unified")
    V1 = Path("/sys/fs/cgroup/blkio")

    def __init__(self, device: str, limit: str) -> None:
        kind, _sep, value = limit.partition("=")
        if kind not in ("bps", "iops") or not value:
            raise SystemExit("--throttled takes bps=N[KMG] or iops=N")
        amount = parse_size(value)
        v2 = (self.V2 / "cgroup.controllers").exists() and "io" in (
            self.V2 / "cgroup.controllers").read_text().split()
        base = self.V2 if v2 else self.V1
        self.back = base / "cgroup.procs"
        self.group = base / f"civdesk-bench-{os.getpid()}"
        self.group.mkdir()
        if v2:
            (self.group / "io.max").write_text(f"{device} r{kind}={amount}\n")
        else:
            (self.group / f"blkio.throttle.read_{kind}_device").write_text(f"{device} {amount}\n")
        self.how = f"cgroup {'v2 io.max' if v2 else 'v1 blkio.throttle'}: {limit} on {device}"
        (self.group / "cgroup.procs").write_text(str(os.getpid()))

    def close(self) -> None:
        self.back.write_text(str(os.getpid()))
        self.group.rmdir()


def throttled(limit: str, files: int, size: int, runs: int) -> int:
    """Parallel against one-at-a-time hashing on a throttled loop device."""
    from civdesk.core.hashing import hash_many

    if os.geteuid() != 0 or not sys.platform.startswith("linux"):
        print("--throttled needs root on Linux (losetup, mount, cgroups)")
        return 1
    with tempfile.TemporaryDirectory(dir="/dev/shm", prefix="civdesk-bench-disk-") as tmp:
        image, mnt = Path(tmp) / "disk.img", Path(tmp) / "mnt"
        mnt.mkdir()
        with open(image, "wb") as fh:
            fh.truncate(files * size + (files * size) // 5 + (64 << 20))
        loop = subprocess.run(["losetup", "-f", "--show", str(image)], check=True,
                              capture_output=True, text=True).stdout.strip()
        throttle = None
        try:
            subprocess.run(["mkfs.ext4", "-q", loop], check=True)
            subprocess.run(["mount", loop, str(mnt)], check=True)
            paths = [make_file(mnt / f"big{i}.safetensors", size) for i in range(files)]
            st = os.stat(loop)
            device = f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
            rows: list[list[object]] = []
            throttle = _Throttle(device, limit)
            print(f"{files} files of {size / MiB:,.0f} MiB on {loop} (ext4, image in "
                  f"/dev/shm), {throttle.how}; page cache dropped before each run\n")
            for n in range(runs):
                order = ("parallel", "one at a time") if n % 2 == 0 else (
                    "one at a time", "parallel")
                for how in order:
                    _drop_cached(paths)
                    turns = None if how == "parallel" else [
                        ("loop", (0, os.stat(p).st_ino)) for p in paths]
                    start = time.perf_counter()
                    results = list(hash_many(paths, 2, turns=turns))
                    took = time.perf_counter() - start
                    assert all(r.ok for r in results)
                    rows.append([f"run {n + 1}: {how}", took, files * size / MB / took])
            print_table(rows, ["hashing", "seconds", "MB/s"])
        finally:
            if throttle is not None:
                throttle.close()
            subprocess.run(["umount", str(mnt)], check=False)
            subprocess.run(["losetup", "-d", loop], check=False)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="2G", help="size of the big file (default 2G)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", default=None, help="where to put the temp files")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--throttled", metavar="bps=N|iops=N",
                    help="parallel against one-at-a-time on a throttled loop device (root)")
    ap.add_argument("--files", type=int, default=3, help="big files for --throttled")
    args = ap.parse_args()
    if args.child:
        child(args.child)
        return 0
    if args.throttled:
        return throttled(args.throttled, args.files, parse_size(args.size), args.runs)

    from civdesk.core.hashing import DEFAULT_BUFFER_SIZE, sha256_file

    size = parse_size(args.size)
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="civdesk-bench-hash-") as tmp:
        big = make_file(Path(tmp) / "big.safetensors", size)
        small = make_file(Path(tmp) / "small.safetensors", 256 * MiB)
        sha256_file(big)  # warms the page cache too

        # Alternate the contenders so a busy neighbour on the machine hurts both alike.
        ours_s, ref_s = float("inf"), float("inf")
        for _ in range(args.runs):
            t, digest = best_of(1, lambda: sha256_file(big))
            ours_s = min(ours_s, t)
            if have("openssl"):
                ref_s = min(ref_s, run_reference(["openssl", "dgst", "-sha256", str(big)]))
        rows: list[list[object]] = [["civdesk sha256_file", ours_s, size / MB / ours_s, ""]]
        ratio = None
        if have("openssl"):
            check = subprocess.run(["openssl", "dgst", "-sha256", "-r", str(big)],
                                   capture_output=True, text=True, check=True).stdout
            assert check.split()[0].upper() == digest, "digests differ from openssl's"
            ratio = ref_s / ours_s
            rows.append(["openssl dgst -sha256", ref_s, size / MB / ref_s, ""])
        print(f"File {size / MiB:,.0f} MiB, page cache warm, best of {args.runs}, "
              f"buffer {DEFAULT_BUFFER_SIZE // 1024} KiB\n")
        print_table(rows, ["contender", "seconds", "MB/s", ""])
        if ratio is not None:
            verdict = "OK" if ratio >= TARGET else "BELOW TARGET"
            print(f"\nspeed ratio ours/openssl: {ratio:.3f}x (target >= {TARGET}x) {verdict}")

        print("\nPeak RSS of a fresh process hashing one file:")
        mem = []
        for label, path in (("256 MiB", small), (f"{size / MiB:,.0f} MiB", big)):
            r = measure_child(path)
            mem.append([label, r["baseline_mib"], r["rss_mib"], r["rss_mib"] - r["baseline_mib"]])
        print_table(mem, ["file", "RSS before (MiB)", "peak RSS (MiB)", "growth (MiB)"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
