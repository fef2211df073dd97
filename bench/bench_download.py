"""Downloader against curl, from the loopback Civitai double, on one big file.

    .venv/bin/python bench/bench_download.py [--size 2G] [--runs 3] [--dir /dev/shm]

The double (in its own process, bench/_double_proc.py: it must not share our GIL) serves
the file (sendfile, page cache warm) behind its API download URL and the 307 to its storage
host. Contenders, alternated so machine load hits them alike (every other round in reverse
order: writing a GiB to tmpfs here costs 0.3 s one time and 0.9 s the next, whoever writes),
--runs each:

* ``curl -s -L -o file <api download url>``: the raw transfer;
* ``curl -s -L <url> | openssl dgst -sha256``: download + verify, the same work we do;
* ``curl -s -L -o file <url>; sync file``: the raw transfer made as durable as ours (on a
  real disk the fsync is most of the cost; on /dev/shm it is free);
* civdesk ``Downloader.download`` (expected SHA256 verified, .part fsynced and renamed), run
  in a fresh child process so its peak RSS can be shown for 256 MiB and for --size.

Target: ours >= 0.9x curl. SHA256 runs ~1.2 GB/s on the build machine, so when curl alone is
faster than that, hashing bounds the ratio; the second reference shows what verifying costs.
Files land in --dir (default /dev/shm when it exists: fsync is free there, as curl does none).

Other benches share the 2 cores, so wall times swing: every run is listed as a range, and
the CPU each contender used per MB (user + system, of its process tree; for civdesk around
the download call only) is the steadier figure. civdesk's floor is SHA256's own cost.
Why the writes swing: in a slow curl run perf puts 55% of the samples in the kernel's copy
into the new tmpfs page (copy_folio_from_iter_atomic), against 6% in a fast one: the first
touch of guest pages this VM's balloon (virtio_balloon) handed back to the host. Writing
and deleting a scratch file of the same size just before a run helps only partly (curl's
median over 10 runs 540 -> 850 MB/s; the scratch write itself swings 0.3-1.4 s), so the
bench does not pretend to control it: it alternates, and reads medians.
The verdict compares the median run of each side: the best-of ratio leans on one lucky run
of either side (here curl's runs swing 300-1,850 MB/s with the cost of its tmpfs writes,
while ours, whose writes have their own thread, stay within ~15%). Each round's ratio (curl
and ours back to back) and their median are printed too. The ceiling line puts the CPU
figures together (see :func:`download_ceiling`): the ratio no verifying download can pass
on this machine, the double's serving included.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _common import MB, MiB, cpu_seconds, have, make_file, peak_rss_mib, print_table, warm
from _double_proc import DoubleProcess
from bench_hash import parse_size

TARGET = 0.9


def child(args: argparse.Namespace) -> None:
    """Download once in this fresh process; print seconds, digest and peak RSS as JSON."""
    from civdesk.core.civitai.client import CivitaiClient
    from civdesk.core.downloads.downloader import Downloader

    client = CivitaiClient(args.base_url, max_retries=0)
    baseline = peak_rss_mib()
    cpu_before = os.times()
    start = time.perf_counter()
    result = Downloader(client).download(args.version, args.file, args.dest,
                                         expected_sha256=args.sha256)
    seconds = time.perf_counter() - start
    cpu_after = os.times()
    result.path.unlink()
    cpu = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
    print(json.dumps({"seconds": seconds, "cpu": cpu, "digest": result.sha256,
                      "rss_mib": peak_rss_mib(), "baseline_mib": baseline}))


def run_ours(base_url: str, version: int, file_id: int, sha256: str, dest: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", "--base-url", base_url, "--version",
         str(version), "--file", str(file_id), "--sha256", sha256, "--dest", str(dest)],
        capture_output=True, text=True, check=True).stdout
    return json.loads(out)  # type: ignore[no-any-return]


def sha256_cpu_ms_per_mb(mib: int = 256) -> float:
    """CPU that hashlib's SHA256 alone takes per MB here: the part of civdesk's CPU that
    curl does not do (curl | openssl dgst does)."""
    block = os.urandom(MiB)
    hasher = hashlib.sha256()
    start = time.thread_time()
    for _ in range(mib):
        hasher.update(block)
    return (time.thread_time() - start) / (mib * MiB / MB) * 1000


def download_ceiling(cores: int, serve: float, transfer: float, sha: float) -> float:
    """The best ratio to curl a download that hashes as it streams can reach, from CPU
    costs per MB (ms): the double's ``serve``, curl's whole ``transfer``, ``sha`` alone.

    Neither can beat its busiest thread (one stream's SHA256 cannot be split), nor the
    cores' combined time for all the work, the double's included: on 2 cores SHA256 is
    not free even when it runs beside the transfer.
    """
    curl_floor = max(transfer, (serve + transfer) / cores)
    ours_floor = max(transfer, sha, (serve + transfer + sha) / cores)
    return curl_floor / ours_floor


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_shell(command: str) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds of the command's processes, and its output."""
    cpu = children_cpu()
    start = time.perf_counter()
    out = subprocess.run(command, shell=True, capture_output=True, text=True, check=True).stdout
    return time.perf_counter() - start, children_cpu() - cpu, out


class Runs:
    """Wall and CPU seconds of each run of one contender."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self.cpu: list[float] = []

    def add(self, seconds: float, cpu: float) -> None:
        self.seconds.append(seconds)
        self.cpu.append(cpu)

    def median(self) -> float:
        return statistics.median(self.seconds)

    def row(self, name: str, mb: float) -> list[object]:
        rates = sorted(mb / s for s in self.seconds)
        cpu = sorted(c / mb * 1000 for c in self.cpu)
        return [name, min(self.seconds), rates[-1], mb / self.median(),
                f"{rates[0]:,.0f}-{rates[-1]:,.0f}", f"{cpu[0]:.2f}-{cpu[-1]:.2f}"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="2G", help="size of the file (default 2G)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", default="/dev/shm" if os.path.isdir("/dev/shm") else None)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--base-url", help=argparse.SUPPRESS)
    ap.add_argument("--version", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--file", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--sha256", help=argparse.SUPPRESS)
    ap.add_argument("--dest", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return 0
    if not have("curl"):
        print("curl is needed as the reference")
        return 1

    size = parse_size(args.size)
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="civdesk-bench-dl-") as tmp:
        work = Path(tmp)
        sources = {"256 MiB": make_file(work / "small.safetensors", 256 * MiB),
                   f"{size / MiB:,.0f} MiB": make_file(work / "big.safetensors", size)}
        warm(list(sources.values()))
        out = work / "out"
        out.mkdir()
        labels = list(sources)
        spec = [{"path": str(path), "model": "Bench", "type": "Checkpoint", "version": label,
                 "name": f"{path.stem}_dl.safetensors"} for label, path in sources.items()]
        with DoubleProcess(spec) as double:
            served = dict(zip(labels, double.served, strict=True))
            big = served[f"{size / MiB:,.0f} MiB"]
            url = big["download_url"]
            expected = big["sha256"]
            curl = f"curl -s -L -o {out / 'curl.bin'} '{url}'"
            curl_sync = f"{curl} && sync {out / 'curl.bin'}"
            curl_verify = f"curl -s -L '{url}' | openssl dgst -sha256 -r"

            runs = {name: Runs() for name in
                    ("curl", "curl; sync file", "curl | openssl dgst", "civdesk Downloader")}
            served_cpu: dict[str, list[float]] = {"curl": [], "civdesk Downloader": []}
            paired: list[float] = []  # ours / curl of the same round, run back to back
            round_s: dict[str, float] = {}  # this round's seconds: "curl", "ours"

            def run_curl(name: str, command: str) -> None:
                before = cpu_seconds(double.proc.pid)
                t, cpu, _ = timed_shell(command)
                if name == "curl":
                    served_cpu[name].append(cpu_seconds(double.proc.pid) - before)
                    round_s[name] = t
                runs[name].add(t, cpu)
                (out / "curl.bin").unlink()

            def run_verify() -> None:
                t, cpu, digest = timed_shell(curl_verify)
                assert digest.split()[0].upper() == expected, "curl | openssl: wrong hash"
                runs["curl | openssl dgst"].add(t, cpu)

            def run_civdesk() -> None:
                before = cpu_seconds(double.proc.pid)
                ours = run_ours(double.base_url, big["version_id"], big["file_id"], expected, out)
                served_cpu["civdesk Downloader"].append(cpu_seconds(double.proc.pid) - before)
                assert ours["digest"] == expected
                runs["civdesk Downloader"].add(ours["seconds"], ours["cpu"])
                round_s["ours"] = ours["seconds"]

            steps: list[Callable[[], None]] = [
                lambda: run_curl("curl", curl), run_civdesk,
                lambda: run_curl("curl; sync file", curl_sync)]
            if have("openssl"):
                steps.append(run_verify)
            for i in range(args.runs):
                # Every other round in reverse: the cost of a write to tmpfs swings ~3x from
                # one file to the next here, in a pattern a fixed order would pin on one side.
                for step in steps if i % 2 == 0 else reversed(steps):
                    step()
                paired.append(round_s["curl"] / round_s["ours"])

            memory = []
            for label, f in served.items():
                r = run_ours(double.base_url, f["version_id"], f["file_id"], f["sha256"], out)
                memory.append([label, r["baseline_mib"], r["rss_mib"],
                               r["rss_mib"] - r["baseline_mib"]])

    mb = size / MB
    cores = os.cpu_count() or 1
    rows = [r.row(name, mb) for name, r in runs.items() if r.seconds]
    print(f"File {size / MiB:,.0f} MiB from the loopback double, {args.runs} runs each "
          f"(alternated), files in {args.dir or tempfile.gettempdir()}\n")
    print_table(rows, ["contender", "best s", "best MB/s", "median MB/s", "MB/s range",
                       "CPU ms/MB"])
    best = {name: min(r.seconds) for name, r in runs.items() if r.seconds}
    ours_s = best["civdesk Downloader"]
    ratio = best["curl"] / ours_s
    median_ratio = runs["curl"].median() / runs["civdesk Downloader"].median()
    verdict = "OK" if median_ratio >= TARGET else "BELOW TARGET"
    print(f"\nspeed ratio ours/curl (median runs): {median_ratio:.3f}x (target >= {TARGET}x) "
          f"{verdict}")
    print(f"speed ratio ours/curl (best runs): {ratio:.3f}x")
    print(f"speed ratio ours/(curl; sync file), as durable: "
          f"{best['curl; sync file'] / ours_s:.3f}x")
    paired.sort()
    print(f"speed ratio ours/curl per round (back to back, order alternated), sorted: "
          f"{', '.join(f'{r:.2f}x' for r in paired)}; median {paired[len(paired) // 2]:.3f}x")
    sha_cpu = sha256_cpu_ms_per_mb()
    ours_cpu = min(runs["civdesk Downloader"].cpu) / mb * 1000
    curl_cpu = min(runs["curl"].cpu) / mb * 1000
    serve_cpu = min(served_cpu["curl"]) / mb * 1000
    print(f"CPU per MB (least of the runs): SHA256 alone {sha_cpu:.2f} ms; civdesk "
          f"{ours_cpu:.2f} ms, which leaves {ours_cpu - sha_cpu:.2f} ms for the transfer; "
          f"curl's whole cost {curl_cpu:.2f} ms; the double serving it "
          f"{serve_cpu:.2f} ms (curl's runs), "
          f"{min(served_cpu['civdesk Downloader']) / mb * 1000:.2f} ms (ours)")
    print(f"ceiling on this machine ({cores} cores, the double on them too): "
          f"{download_ceiling(cores, serve_cpu, curl_cpu, sha_cpu):.2f}x curl, were civdesk's "
          "transfer as cheap as curl's and its hashing perfectly overlapped")
    if "curl | openssl dgst" in best:
        print(f"speed ratio ours/(curl | openssl dgst), the same work: "
              f"{best['curl | openssl dgst'] / ours_s:.3f}x")
    print("\nPeak RSS of a fresh process downloading one file (hash verified):")
    print_table(memory, ["file", "RSS before (MiB)", "peak RSS (MiB)", "growth (MiB)"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
