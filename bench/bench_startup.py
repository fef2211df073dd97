"""Start-up of the command line against importing its two main dependencies.

    .venv/bin/python bench/bench_startup.py [--rounds 7]

Each round times, back to back and in alternated order, three fresh processes:
``civdesk list --json`` on an empty data folder, ``civdesk --version``, and the reference
``python -c "import requests, sqlalchemy.orm"``. The verdict is the median of the rounds'
ratios (this shared machine's speed drifts between minutes). Target: list within 1.25x the
reference: civdesk should cost little beyond the libraries it stands on.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO

TARGET = 1.25


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="civdesk-bench-startup-") as tmp:
        env = {"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin", "HOME": tmp,
               "PYTHONDONTWRITEBYTECODE": "0"}
        data = str(Path(tmp) / "data")
        contenders = {
            "list": [sys.executable, "-m", "civdesk", "--data-dir", data, "list", "--json"],
            "version": [sys.executable, "-m", "civdesk", "--version"],
            "reference": [sys.executable, "-c", "import requests, sqlalchemy.orm"],
        }
        for argv in contenders.values():  # warm the disk cache and the bytecode
            timed(argv, env)
        times: dict[str, list[float]] = {name: [] for name in contenders}
        for round_ in range(args.rounds):
            order = list(contenders) if round_ % 2 == 0 else list(reversed(contenders))
            for name in order:
                times[name].append(timed(contenders[name], env))
    ratios = [t / r for t, r in zip(times["list"], times["reference"], strict=True)]
    for name, values in times.items():
        print(f"{name:>10}: median {statistics.median(values) * 1000:6.0f} ms "
              f"(min {min(values) * 1000:.0f}, max {max(values) * 1000:.0f})")
    ratio = statistics.median(ratios)
    verdict = "meets" if ratio <= TARGET else "misses"
    print(f"civdesk list --json / import requests, sqlalchemy.orm: {ratio:.2f}x "
          f"(median of {args.rounds} rounds; target <= {TARGET}x: {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
