"""A library of many files: first scan, rescan, list and the window, as it grows.

    .venv/bin/python bench/bench_scale.py [--sizes 10000,100000] [--file-kb 4]

For each size, a library of that many small model files (all different, spread over type
folders as people keep them) is scanned by the real command line against the Civitai
double (in its own process; it knows none of the files, so every file is looked up), then
rescanned unchanged, then listed (``list --json``), then opened in the window offscreen
until the library is on screen. Each step is a fresh process: its wall time and its peak
memory (the process's own, from the kernel) are printed, with how each grows from one size
to the next (a growth near the size ratio is linear).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, print_table
from _double_proc import DoubleProcess

FOLDERS = ("Lora", "Lora/styles", "Lora/characters", "Stable-diffusion", "embeddings", "VAE")


def build(root: Path, count: int, file_kb: int) -> None:
    body = bytearray(os.urandom(file_kb * 1024))
    for folder in FOLDERS:
        (root / folder).mkdir(parents=True, exist_ok=True)
    for n in range(count):
        body[:8] = n.to_bytes(8, "little")  # every file its own hash
        folder = FOLDERS[n % len(FOLDERS)]
        (root / folder / f"model-{n:06d}.safetensors").write_bytes(body)


#: Runs one command and reports its peak RSS: a fresh parent per step, since a process's
#: RUSAGE_CHILDREN peak is the largest of all the children it ever waited for.
_PEAK_OF = ("import resource, subprocess, sys; "
            "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
            "r = resource.getrusage(resource.RUSAGE_CHILDREN); "
            "print(r.ru_utime + r.ru_stime, r.ru_maxrss)")


def run(argv: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system: steadier than wall time on a shared
    machine) and peak RSS (MiB) of one fresh process."""
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _PEAK_OF, *argv], env=env, check=True,
                         capture_output=True, text=True).stdout.split()
    return time.perf_counter() - start, float(out[-2]), int(out[-1]) / 1024


def window_argv(data: Path) -> list[str]:
    return [sys.executable, str(REPO / "packaging" / "civdesk_entry.py"), "--data-dir",
            str(data)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--file-kb", type=int, default=4)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows: list[list[object]] = []
    previous: dict[str, float] = {}
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="civdesk-bench-scale-") as tmp:
            root, data = Path(tmp) / "models", Path(tmp) / "data"
            build(root, size, args.file_kb)
            with DoubleProcess([]) as double:
                env = {"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin",
                       "HOME": tmp, "CIVITAI_API_BASE": double.base_url,
                       "CIVITAI_API_KEY": "test-key", "QT_QPA_PLATFORM": "offscreen"}
                civdesk = [sys.executable, "-m", "civdesk", "--data-dir", str(data)]
                steps = {
                    # Without --json: that prints every entry, which `list --json` times.
                    "first scan": [*civdesk, "scan", str(root)],
                    "rescan": [*civdesk, "scan"],
                    "list --json": [*civdesk, "list", "--json"],
                }
                for step, argv in steps.items():
                    took, cpu, peak = run(argv, env)
                    rows.append(_row(size, step, took, cpu, peak, previous))
                took, cpu, peak = run(window_argv(data),
                                      {**env, "CIVDESK_QUIT_AFTER_MS": "3000"})
                rows.append(_row(size, "window (3 s shown)", took, cpu, peak, previous))
            print(f"{size} files: {double.requests} requests to the double", flush=True)
    print_table(rows, ["files", "step", "seconds", "CPU s", "peak MiB", "time growth",
                       "CPU growth"])
    return 0


def _row(size: int, step: str, took: float, cpu: float, peak: float,
         previous: dict[str, float]) -> list[object]:
    growth = f"{took / previous[step]:.1f}x" if step in previous else ""
    cpu_growth = f"{cpu / previous[step + ' cpu']:.1f}x" if step in previous else ""
    previous[step], previous[step + " cpu"] = took, cpu
    return [size, step, f"{took:.2f}", f"{cpu:.2f}", f"{peak:.0f}", growth, cpu_growth]


if __name__ == "__main__":
    sys.exit(main())
