"""Start-up of the command line against importing its two main dependencies.

    .venv/bin/python bench/bench_startup.py [--rounds 7]

Each round times, back to back and in alternated order, three fresh processes:
``civdesk list --json`` on an empty data folder, ``civdesk --version``, and the reference
``python -c "import requests, sqlalchemy.orm"``. The verdict is the median of the rounds'
ratios (this shared machine's speed drifts between minutes). Target: list within 1.25x the
reference: civdesk should cost little beyond the libraries it stands on.

And ``civdesk download`` against a timestamped loopback listener (it answers 404, so the run
ends there): the time from starting the process to its first request arriving, against the
same reference. Target: the request arrives before the reference process has finished
(ratio < 1): the command imports what it needs when it needs it and opens the database
while the request is under way.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import REPO

TARGET = 1.25
FIRST_REQUEST_TARGET = 1.0
NOT_FOUND = (b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
             b"Content-Length: 2\r\nConnection: close\r\n\r\n{}")


class FirstRequestListener:
    """A loopback HTTP listener that notes when each request's head has arrived
    (``time.perf_counter``) and answers 404."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.arrivals: list[float] = []
        self._arrived = threading.Condition()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            conn, _ = self.sock.accept()
            with conn:
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    head += chunk
                with self._arrived:
                    self.arrivals.append(time.perf_counter())
                    self._arrived.notify_all()
                conn.sendall(NOT_FOUND)

    def first_request_after(self, argv: list[str], env: dict[str, str]) -> float:
        """Seconds from starting ``argv`` to its first request's arrival."""
        seen = len(self.arrivals)
        start = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.arrivals) > seen, timeout=5):
                raise RuntimeError("civdesk download sent no request")
            return self.arrivals[seen] - start


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
        listener = FirstRequestListener()
        download = [sys.executable, "-m", "civdesk", "--data-dir", data, "--api-base",
                    listener.url, "--retries", "0", "download", "123"]
        download_env = {**env, "CIVITAI_API_KEY": "bench-key"}
        names = [*contenders, "download: first request"]

        def run(name: str) -> float:
            if name in contenders:
                return timed(contenders[name], env)
            return listener.first_request_after(download, download_env)

        for name in names:  # warm the disk cache and the bytecode
            run(name)
        times: dict[str, list[float]] = {name: [] for name in names}
        for round_ in range(args.rounds):
            for name in names if round_ % 2 == 0 else reversed(names):
                times[name].append(run(name))
    ratios = [t / r for t, r in zip(times["list"], times["reference"], strict=True)]
    first = [t / r for t, r in zip(times["download: first request"], times["reference"],
                                    strict=True)]
    for name, values in times.items():
        print(f"{name:>10}: median {statistics.median(values) * 1000:6.0f} ms "
              f"(min {min(values) * 1000:.0f}, max {max(values) * 1000:.0f})")
    ratio = statistics.median(ratios)
    verdict = "meets" if ratio <= TARGET else "misses"
    print(f"civdesk list --json / import requests, sqlalchemy.orm: {ratio:.2f}x "
          f"(median of {args.rounds} rounds; target <= {TARGET}x: {verdict})")
    ratio = statistics.median(first)
    verdict = "meets" if ratio < FIRST_REQUEST_TARGET else "misses"
    print(f"civdesk download's first request / import requests, sqlalchemy.orm: {ratio:.2f}x "
          f"(median of {args.rounds} rounds; target < {FIRST_REQUEST_TARGET}x: {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
