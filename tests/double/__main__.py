"""Run the Civitai double by hand, to try civdesk without Civitai (or a network).

    python -m tests.double [--library DIR] [--api-key KEY]      (or: make double)

Serves the sample catalogue (four models: a LoRA with an update, an SDXL checkpoint, an
embedding, a VAE) on loopback until Ctrl+C, and prints the commands that point civdesk at it.
``--library DIR`` first writes two of its model files into DIR, laid out as a web UI's models
folder (the LoRA's older version and the embedding), so that ``civdesk scan DIR`` has a
library to identify and ``civdesk updates`` an update to find. The checkpoint's download
needs the API key, as protected files on Civitai do: without it civdesk says to set one.

The first line printed is JSON (``base_url``, ``api_key`` and the sample's version ids) for
scripts and tests; the rest is for people.
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
import threading
from pathlib import Path

from civdesk.core.settings import DEFAULT_TYPE_FOLDERS
from tests.double.sample import SampleCatalog, build_sample_catalog
from tests.double.server import CivitaiDouble


def write_library(sample: SampleCatalog, library: Path) -> list[Path]:
    """The LoRA's older version and the embedding, as files already on disk."""
    written = []
    for model, version in ((sample.lora, sample.lora_v1), (sample.embedding, sample.embedding_v1)):
        f = version.files[0]
        folder = DEFAULT_TYPE_FOLDERS[model.type]  # as civdesk would download it
        path = library / folder / (f.name or f"{version.id}.safetensors")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f.read_bytes())
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.double", description=__doc__.split("\n")[0])
    ap.add_argument("--library", type=Path, help="write two of the sample's model files here")
    ap.add_argument("--api-key", default="demo-key", help="the key the double accepts")
    args = ap.parse_args(argv)

    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with CivitaiDouble(api_key=args.api_key) as double:
        sample = build_sample_catalog(double)
        double.login_required(sample.checkpoint_v1)
        library = args.library.resolve() if args.library else None
        written = write_library(sample, library) if library else []
        print(json.dumps({
            "base_url": double.base_url, "api_key": args.api_key,
            "versions": {"lora_v1": sample.lora_v1.id, "lora_v2": sample.lora_v2.id,
                         "checkpoint": sample.checkpoint_v1.id,
                         "embedding": sample.embedding_v1.id, "vae": sample.vae_v1.id},
            "library": [str(p) for p in written],
        }), flush=True)
        env = (f"CIVITAI_API_BASE={double.base_url} CIVITAI_API_KEY={args.api_key} "
               "CIVDESK_DATA_DIR=/tmp/civdesk-demo")
        scan = f"civdesk scan {shlex.quote(str(library))}" if library else "civdesk scan DIR"
        print(f"""
The Civitai double serves the sample catalogue at {double.base_url} (API key: {args.api_key}).
In another terminal, from this checkout:

  export {env}
  export PATH="$PWD/.venv/bin:$PATH"
  civdesk search paper                  # the catalogue, as Civitai's search shows it
  {scan}{'' if library else '      # a folder of your own: unknown files stay local-only'}
  civdesk download {sample.lora_v2.id}                # the LoRA's newer version, verified
  civdesk updates                       # what has a newer version than the one on disk
  civdesk list
  civdesk                               # the window, against the double

The checkpoint ({sample.checkpoint_v1.id}) needs the key: unset CIVITAI_API_KEY to see the
message. Ctrl+C stops the double.""", flush=True)
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
