"""Requests it takes to identify 10,000 files by hash, most of them unknown to Civitai.

    .venv/bin/python bench/bench_lookups.py [--files 10000] [--known 0.01,0.1,0.5]

Against the loopback Civitai double (in this process: only requests are counted here).
"Before" is how the lookups went until now: the bulk by-hash route, 100 hashes per request,
full versions back. "After" asks ``POST /model-versions/by-hash/ids`` first which hashes
Civitai knows (10,000 per request, a few bytes per hash) and fetches full versions of only
those, in bulk: what the scanner does for a batch of more than 100 hashed files (a rescan
that rechecks unknown files, files already hashed).
"""

from __future__ import annotations

import argparse
import random

from _common import print_table

BEFORE, AFTER = "before: by-hash, 100 a request", "after: by-hash/ids, then known only"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=10_000, help="files in the library")
    ap.add_argument("--known", default="0.01,0.1,0.5",
                    help="fractions of the files Civitai knows (comma-separated)")
    args = ap.parse_args()

    from tests.double import CivitaiDouble

    from civdesk.core.civitai.client import BATCH_SIZE, CivitaiClient

    rows = []
    for fraction in (float(f) for f in args.known.split(",")):
        with CivitaiDouble() as double:
            known_count = round(args.files * fraction)
            known = [double.add_version(double.add_model(f"Model {i}"), images=[]).files[0]
                     .sha256 for i in range(known_count)]
            rng = random.Random(7)
            unknown = [f"{rng.getrandbits(256):064X}" for _ in range(args.files - known_count)]
            hashes = [*known, *unknown]
            rng.shuffle(hashes)
            client = CivitaiClient(double.base_url, max_retries=0)

            for label in (BEFORE, AFTER):
                double.clear_requests()
                found: dict[str, object] = {}
                if label == BEFORE:
                    for start in range(0, len(hashes), BATCH_SIZE):
                        found.update(client.versions_by_sha256(hashes[start:start + BATCH_SIZE]))
                else:
                    ids = client.known_sha256(hashes)
                    assert ids is not None
                    found.update(client.versions_by_sha256(list(ids)))
                assert len(found) == known_count, (label, len(found), known_count)
                requests = [r for r in double.requests if r.path.startswith("/api/")]
                per_10k = len(requests) * 10_000 / args.files
                rows.append((f"{fraction:.0%} known", label, len(requests), per_10k))
    print(f"Identifying {args.files:,} files by SHA256 against the double\n")
    print_table(rows, ("library", "lookup", "requests", "per 10,000 files"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
