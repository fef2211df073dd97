"""An update check of a library of thousands of models, one request at a time and several.

    .venv/bin/python bench/bench_updates.py [--models 3000] [--latency 0.3] [--runs 3]

The library is built the way a user's is: small model files, in the catalogue of the
loopback Civitai double (its own process, bench/_double_proc.py), identified by a first
scan. Then ``UpdateChecker.check(force=True)`` asks Civitai about every model, a hundred
per ``/models?ids=`` request: with one request in flight, and with the checker's default.
``--latency`` makes every answer of the double wait that long (real Civitai answers a page
of a hundred models in about a second, not on loopback); ``--latency 0`` shows the CPU the
check costs here, mostly storing the answers.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from _common import print_table
from _double_proc import DoubleProcess


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=3000, help="models in the library")
    ap.add_argument("--latency", type=float, default=0.3,
                    help="seconds each answer of the double waits (default 0.3)")
    ap.add_argument("--runs", type=int, default=3, help="checks per setting (best shown)")
    args = ap.parse_args()

    from civdesk.core.civitai.client import CivitaiClient
    from civdesk.core.library import Database, Library
    from civdesk.core.scanner import Scanner
    from civdesk.core.settings import Settings
    from civdesk.core.updates import BATCH_SIZE, CONCURRENCY, UpdateChecker

    with tempfile.TemporaryDirectory(prefix="civdesk-bench-updates-") as tmp:
        root = Path(tmp) / "models" / "Lora"
        root.mkdir(parents=True)
        paths = []
        for i in range(args.models):
            path = root / f"lora_{i:05}.safetensors"
            path.write_bytes(i.to_bytes(4, "big") * 256)  # distinct content, distinct hash
            paths.append(path)
        spec = [{"path": str(p), "model": f"Model {i}", "type": "LORA", "images": False}
                for i, p in enumerate(paths)]
        with DoubleProcess(spec, latency=args.latency) as double:
            db = Database.open(Path(tmp) / "library.sqlite3")
            lib = Library(db)
            client = CivitaiClient(double.base_url, max_retries=0)
            settings = Settings(library_folders=[str(root.parent)], allow_nsfw=False)
            scan = Scanner(lib, client, settings).scan()
            print(f"Library: {scan.identified:,} of {len(paths):,} models identified by a "
                  f"first scan; {args.latency * 1000:.0f} ms per answer, {BATCH_SIZE} models "
                  "per request\n")
            rows = []
            for concurrency in (1, CONCURRENCY):
                checker = UpdateChecker(lib, client, concurrency=concurrency)
                times, cpus = [], []
                for _ in range(args.runs):
                    before = os.times()
                    start = time.perf_counter()
                    result = checker.check(force=True)
                    times.append(time.perf_counter() - start)
                    after = os.times()
                    cpus.append(after.user - before.user + after.system - before.system)
                    assert result.complete and result.checked == len(paths), result.problem()
                requests = -(-len(paths) // BATCH_SIZE)
                rows.append([f"{concurrency} request(s) at once", min(times), min(cpus),
                             requests, len(paths) / min(times)])
            db.close()
    print_table(rows, ["update check", "best s", "CPU s", "requests", "models/s"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
