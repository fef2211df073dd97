"""Downloader against curl, from the loopback Civitai double, on one big file.

    .venv/bin/python bench/bench_download.py [--size 2G] [--runs 3] [--dir /dev/shm]

The double (in its own process, bench/_double_proc.py: it must not share our GIL) serves
the file (sendfile, page cache warm) behind its API download URL and the 307 to its storage
host. Contenders, alternated so machine load hits them alike, best of
--runs each:

* ``curl -s -L -o file <api download url>``: the raw transfer;
* ``curl -s -L <url> | openssl dgst -sha256``: download + verify, the same work we do;
* civdesk ``Downloader.download`` (expected SHA256 verified, .part fsynced and renamed), run
  in a fresh child process so its peak RSS can be shown for 256 MiB and for --size.

Target: ours >= 0.9x curl. SHA256 runs ~1 GB/s on the build machine, so when curl alone is
faster than that, hashing bounds the ratio; the second reference shows what verifying costs.
Files land in --dir (default /dev/shm when it exists: fsync is free there, as curl does none).
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

from _common import MB, MiB, have, make_file, peak_rss_mib, print_table, warm
from _double_proc import DoubleProcess
from bench_hash import parse_size

TARGET = 0.9


def child(args: argparse.Namespace) -> None:
    """Download once in this fresh process; print seconds, digest and peak RSS as JSON."""
    from civdesk.core.civitai.client import CivitaiClient
    from civdesk.core.downloads.downloader import Downloader

    client = CivitaiClient(args.base_url, max_retries=0)
    baseline = peak_rss_mib()
    start = time.perf_counter()
    result = Downloader(client).download(args.version, args.file, args.dest,
                                         expected_sha256=args.sha256)
    seconds = time.perf_counter() - start
    result.path.unlink()
    print(json.dumps({"seconds": seconds, "digest": result.sha256, "rss_mib": peak_rss_mib(),
                      "baseline_mib": baseline}))


def run_ours(base_url: str, version: int, file_id: int, sha256: str, dest: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", "--base-url", base_url, "--version",
         str(version), "--file", str(file_id), "--sha256", sha256, "--dest", str(dest)],
        capture_output=True, text=True, check=True).stdout
    return json.loads(out)  # type: ignore[no-any-return]


def timed_shell(command: str) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run(command, shell=True, capture_output=True, text=True, check=True).stdout
    return time.perf_counter() - start, out


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
            curl_verify = f"curl -s -L '{url}' | openssl dgst -sha256 -r"

            best = {"curl": float("inf"), "curl | openssl dgst": float("inf"),
                    "civdesk Downloader": float("inf")}
            for _ in range(args.runs):
                t, _ = timed_shell(curl)
                best["curl"] = min(best["curl"], t)
                (out / "curl.bin").unlink()
                if have("openssl"):
                    t, digest = timed_shell(curl_verify)
                    assert digest.split()[0].upper() == expected, "curl | openssl: wrong hash"
                    best["curl | openssl dgst"] = min(best["curl | openssl dgst"], t)
                ours = run_ours(double.base_url, big["version_id"], big["file_id"], expected, out)
                assert ours["digest"] == expected
                best["civdesk Downloader"] = min(best["civdesk Downloader"], ours["seconds"])

            memory = []
            for label, f in served.items():
                r = run_ours(double.base_url, f["version_id"], f["file_id"], f["sha256"], out)
                memory.append([label, r["baseline_mib"], r["rss_mib"],
                               r["rss_mib"] - r["baseline_mib"]])

    rows = [[name, s, size / MB / s] for name, s in best.items() if s != float("inf")]
    print(f"File {size / MiB:,.0f} MiB from the loopback double, best of {args.runs} "
          f"(alternated), files in {args.dir or tempfile.gettempdir()}\n")
    print_table(rows, ["contender", "seconds", "MB/s"])
    ours_s = best["civdesk Downloader"]
    ratio = best["curl"] / ours_s
    verdict = "OK" if ratio >= TARGET else "BELOW TARGET"
    print(f"\nspeed ratio ours/curl: {ratio:.3f}x (target >= {TARGET}x) {verdict}")
    if best["curl | openssl dgst"] != float("inf"):
        print(f"speed ratio ours/(curl | openssl dgst), the same work: "
              f"{best['curl | openssl dgst'] / ours_s:.3f}x")
    print("\nPeak RSS of a fresh process downloading one file (hash verified):")
    print_table(memory, ["file", "RSS before (MiB)", "peak RSS (MiB)", "growth (MiB)"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
