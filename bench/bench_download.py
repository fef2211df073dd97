"""``civdesk download`` against curl, from the loopback Civitai double, on one big file.

    .venv/bin/python bench/bench_download.py [--size 1G] [--runs 3] [--dir /dev/shm]

The double (in its own process, bench/_double_proc.py: it must not share our GIL) serves
the file (sendfile, page cache warm) behind its API download URL and the 307 to its storage
host. Contenders, alternated so machine load hits them alike (every other round in reverse
order: writing a GiB to tmpfs here costs 0.3 s one time and 0.9 s the next, whoever writes),
--runs each:

* ``curl -s -L -o file <api download url>``: the raw transfer;
* ``curl -s -L <url> | openssl dgst -sha256``: download + verify, the same work we do;
* ``curl -s -L -o file <url>; sync file``: the raw transfer made as durable as ours (on a
  real disk the fsync is most of the cost; on /dev/shm it is free);
* ``curl -s -L <url> | tee file | openssl dgst -sha256; sync file``: the same work and
  durability as civdesk's (the CPU reference);
* ``civdesk download VERSION --dest DIR`` as a user runs it: a fresh process (start-up,
  library, queue, key, the request, SHA256 checked in-stream, .part fsynced and renamed,
  the file registered and its .civitai.info written), against a data folder that already
  holds a library;
* civdesk ``Downloader.download`` alone (no start-up, no queue), in a fresh child process,
  also run once for 256 MiB and for --size to show its peak RSS.

Target: civdesk download >= 0.9x ``curl; sync file`` (time ratio curl / ours, median runs),
its CPU per MB within 10% of ``curl | tee | openssl dgst; sync``. SHA256 runs ~1.2 GB/s on
the build machine, so when curl alone is faster than that, hashing bounds the ratio.
Files land in --dir (default /dev/shm when it exists: fsync is free there; --dir on a disk
folder measures the fsync too).

Other benches share the 2 cores, so wall times swing: every run is listed as a range, and
the CPU each contender used per MB (user + system, of its process tree, start-up included;
for the Downloader alone, around the download call only) is the steadier figure. civdesk's
floor is SHA256's own cost.
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

Figures of session 19 (1 GiB to /dev/shm, 5 alternated rounds, load average 4-8 from other
work on the 2 cores): civdesk download median 2.43 s (best 1.45) against curl -o f && sync f
1.58 s (best 1.19): 0.65x by medians, 0.71x per round (target 0.9x, not met); CPU 1.78 ms/MB
against curl | tee | openssl dgst; sync 3.19 ms/MB (0.56x, met); peak RSS 88 MiB for 256 MiB
and for 1 GiB (flat). Where civdesk's time goes (py-spy, per-phase marks): 0.35-0.45 s from
process start to the first byte of the file (SQLAlchemy's import ~0.2 s, requests' ~0.07 s,
civdesk's own modules, the library and queue ~0.1 s; the version request now overlaps them),
then the stream, where the hashing thread is the busiest (SHA256 0.57 ms/MB of the
1.2-1.4 ms/MB the transfer costs in all; receiving and writing have threads of their own
and wait on it), then ~20-60 ms to register the file and write its .civitai.info; the
process's exit is ~20 ms (finalisation's collections once took 0.2-0.4 s). The Downloader
alone runs at 0.75-0.86x raw curl here (its best run beat curl's), so on this machine the
start-up curl does not have is what stands between civdesk and the target.
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

from _common import (
    MB,
    REPO,
    MiB,
    cpu_seconds,
    have,
    make_file,
    peak_rss_mib,
    print_table,
    warm,
)
from _double_proc import DoubleProcess
from bench_hash import parse_size

TARGET = 0.9
CPU_TARGET = 1.1
BENCH_KEY = "bench-key"


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


def run_cli(base_url: str, version: int, dest: Path, data: Path) -> tuple[float, float, float]:
    """``civdesk download`` in a fresh process: wall seconds, CPU seconds (its own and its
    children's) and peak RSS in MiB, from ``wait4``."""
    env = {**os.environ, "CIVITAI_API_KEY": BENCH_KEY,
           "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    argv = [sys.executable, "-m", "civdesk", "--data-dir", str(data), "--api-base", base_url,
            "download", str(version), "--dest", str(dest), "--json"]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"civdesk download failed: {err.read().decode(errors='replace')}")
        record = json.loads(out.read())
    assert record["verified"] and not record["already_present"], record
    placed = Path(record["path"])
    for path in placed.parent.glob(placed.stem + "*"):  # the file and its companions
        path.unlink()
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


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
    ap.add_argument("--size", default="1G", help="size of the file (default 1G)")
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
    big_label = f"{size / MiB:,.0f} MiB"
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="civdesk-bench-dl-") as tmp:
        work = Path(tmp)
        sources = {"256 MiB": make_file(work / "small.safetensors", 256 * MiB),
                   big_label: make_file(work / "big.safetensors", size)}
        warm(list(sources.values()))
        out = work / "out"
        out.mkdir()
        data = work / "data"  # a data folder that holds a library, as a user's does
        labels = list(sources)
        spec = [{"path": str(path), "model": "Bench", "type": "Checkpoint", "version": label,
                 "name": f"{path.stem}_dl.safetensors"} for label, path in sources.items()]
        with DoubleProcess(spec) as double:
            served = dict(zip(labels, double.served, strict=True))
            big = served[big_label]
            url = big["download_url"]
            expected = big["sha256"]
            curl = f"curl -s -L -o {out / 'curl.bin'} '{url}'"
            curl_sync = f"{curl} && sync {out / 'curl.bin'}"
            same_work = (f"curl -s -L '{url}' | tee {out / 'curl.bin'} | openssl dgst -sha256 -r"
                         f" && sync {out / 'curl.bin'}")
            run_cli(double.base_url, served["256 MiB"]["version_id"], out, data)  # warm-up

            names = ("curl", "curl; sync file", "curl | tee | openssl; sync",
                     "civdesk download", "civdesk Downloader (API)")
            runs = {name: Runs() for name in names}
            served_cpu: dict[str, list[float]] = {"curl; sync file": [], "civdesk download": []}
            paired: list[float] = []  # curl; sync / ours of the same round, back to back
            round_s: dict[str, float] = {}
            cli_rss: list[float] = []

            def run_curl(name: str, command: str) -> None:
                before = cpu_seconds(double.proc.pid)
                t, cpu, output = timed_shell(command)
                if name in served_cpu:
                    served_cpu[name].append(cpu_seconds(double.proc.pid) - before)
                if "openssl" in command:
                    assert output.split()[0].upper() == expected, "curl | openssl: wrong hash"
                runs[name].add(t, cpu)
                round_s[name] = t
                (out / "curl.bin").unlink()

            def run_civdesk() -> None:
                before = cpu_seconds(double.proc.pid)
                t, cpu, rss = run_cli(double.base_url, big["version_id"], out, data)
                served_cpu["civdesk download"].append(cpu_seconds(double.proc.pid) - before)
                runs["civdesk download"].add(t, cpu)
                cli_rss.append(rss)
                round_s["ours"] = t

            def run_api() -> None:
                ours = run_ours(double.base_url, big["version_id"], big["file_id"], expected, out)
                assert ours["digest"] == expected
                runs["civdesk Downloader (API)"].add(ours["seconds"], ours["cpu"])

            steps: list[Callable[[], None]] = [
                lambda: run_curl("curl; sync file", curl_sync), run_civdesk,
                lambda: run_curl("curl", curl), run_api]
            if have("openssl"):
                steps.append(lambda: run_curl("curl | tee | openssl; sync", same_work))
            for i in range(args.runs):
                # Every other round in reverse: the cost of a write to tmpfs swings ~3x from
                # one file to the next here, in a pattern a fixed order would pin on one side.
                for step in steps if i % 2 == 0 else reversed(steps):
                    step()
                paired.append(round_s["curl; sync file"] / round_s["ours"])

            memory = []
            for label, f in served.items():
                r = run_ours(double.base_url, f["version_id"], f["file_id"], f["sha256"], out)
                cli = run_cli(double.base_url, f["version_id"], out, data)
                memory.append([label, r["baseline_mib"], r["rss_mib"],
                               r["rss_mib"] - r["baseline_mib"], cli[2]])

    mb = size / MB
    cores = os.cpu_count() or 1
    rows = [r.row(name, mb) for name, r in runs.items() if r.seconds]
    print(f"File {big_label} from the loopback double, {args.runs} runs each (alternated), "
          f"files in {args.dir or tempfile.gettempdir()}; every wall time includes starting "
          "the process\n")
    print_table(rows, ["contender", "best s", "best MB/s", "median MB/s", "MB/s range",
                       "CPU ms/MB"])
    ours = runs["civdesk download"]
    reference = runs["curl; sync file"]
    median_ratio = reference.median() / ours.median()
    verdict = "OK" if median_ratio >= TARGET else "BELOW TARGET"
    print(f"\nspeed: (curl -o f && sync f) / civdesk download, median runs: "
          f"{median_ratio:.3f}x (target >= {TARGET}x) {verdict}; median "
          f"{reference.median():.2f} s against {ours.median():.2f} s")
    paired.sort()
    print(f"the same per round (back to back, order alternated), sorted: "
          f"{', '.join(f'{r:.2f}x' for r in paired)}; median {statistics.median(paired):.3f}x")
    print(f"against raw curl (no sync), median runs: "
          f"{runs['curl'].median() / ours.median():.3f}x; the Downloader alone (no start-up, "
          f"no queue): {runs['curl'].median() / runs['civdesk Downloader (API)'].median():.3f}x")
    sha_cpu = sha256_cpu_ms_per_mb()
    ours_cpu = statistics.median(ours.cpu) / mb * 1000
    curl_cpu = statistics.median(runs["curl"].cpu) / mb * 1000
    serve_cpu = statistics.median(served_cpu["curl; sync file"]) / mb * 1000
    if runs["curl | tee | openssl; sync"].cpu:
        same_cpu = statistics.median(runs["curl | tee | openssl; sync"].cpu) / mb * 1000
        verdict = "OK" if ours_cpu <= same_cpu * CPU_TARGET else "ABOVE TARGET"
        print(f"CPU per MB (medians): civdesk download {ours_cpu:.2f} ms against "
              f"curl | tee | openssl dgst; sync {same_cpu:.2f} ms: {ours_cpu / same_cpu:.2f}x "
              f"(target <= {CPU_TARGET}x) {verdict}")
    print(f"CPU per MB (medians): SHA256 alone {sha_cpu:.2f} ms; curl's whole cost "
          f"{curl_cpu:.2f} ms; the double serving it {serve_cpu:.2f} ms (curl's runs), "
          f"{statistics.median(served_cpu['civdesk download']) / mb * 1000:.2f} ms (ours)")
    print(f"ceiling on this machine ({cores} cores, the double on them too): "
          f"{download_ceiling(cores, serve_cpu, curl_cpu, sha_cpu):.2f}x curl, were civdesk's "
          "transfer as cheap as curl's and its hashing perfectly overlapped")
    print("\nPeak RSS downloading one file (hash verified), a fresh process each:")
    print_table(memory, ["file", "Downloader: RSS before (MiB)", "peak (MiB)", "growth (MiB)",
                         "civdesk download: peak (MiB)"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
