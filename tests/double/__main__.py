"""Run the Civitai double by hand, to try civdesk without Civitai (or a network).

    python -m tests.double [--demo DIR] [--api-key KEY] [--json]      (or: make double)

Serves the sample catalogue (four models: a LoRA with an update, an SDXL checkpoint, an
embedding, a VAE) on loopback until Ctrl+C, and prints, before anything else, the commands
that point civdesk at it. Each run starts afresh in a new folder (``--demo DIR`` names it;
by default a new one under the system's temporary folder): ``library/`` holds two of the
sample's model files laid out as a web UI's models folder (the LoRA's older version and the
embedding), so that ``civdesk scan`` has a library to identify and ``civdesk updates`` an
update to find, and ``data/`` is civdesk's data folder for the walkthrough. The
checkpoint's download needs the API key, as protected files on Civitai do: without it
civdesk says to set one.

``--json`` prints one JSON line first (``base_url``, ``api_key``, the sample's version ids,
the folders) for scripts and tests.
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
import tempfile
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
    ap.add_argument("--demo", type=Path,
                    help="the walkthrough's folder (default: a new temporary one each run)")
    ap.add_argument("--api-key", default="demo-key", help="the key the double accepts")
    ap.add_argument("--json", action="store_true", help="print one JSON line first")
    args = ap.parse_args(argv)

    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    demo = (args.demo or Path(tempfile.mkdtemp(prefix="civdesk-demo-"))).resolve()
    library, data = demo / "library", demo / "data"
    with CivitaiDouble(api_key=args.api_key) as double:
        sample = build_sample_catalog(double)
        double.login_required(sample.checkpoint_v1)
        written = write_library(sample, library)
        if args.json:
            print(json.dumps({
                "base_url": double.base_url, "api_key": args.api_key,
                "versions": {"lora_v1": sample.lora_v1.id, "lora_v2": sample.lora_v2.id,
                             "checkpoint": sample.checkpoint_v1.id,
                             "embedding": sample.embedding_v1.id, "vae": sample.vae_v1.id},
                "library": [str(p) for p in written], "data_dir": str(data),
            }), flush=True)
        env = (f"CIVITAI_API_BASE={double.base_url} CIVITAI_API_KEY={args.api_key} "
               f"CIVDESK_DATA_DIR={shlex.quote(str(data))}")
        print(f"""
The Civitai double serves the sample catalogue at {double.base_url} (API key: {args.api_key}).
This run's folders are new: {demo}
In another terminal, from this checkout:

  export {env}
  export PATH="$PWD/.venv/bin:$PATH"
  civdesk search paper                  # the catalogue, as Civitai's search shows it
  civdesk scan {shlex.quote(str(library))}
                                        # identifies the two model files there
  civdesk updates                       # the LoRA on disk has a newer version
  civdesk download {sample.lora_v2.id}                # that newer version, SHA256 checked
  civdesk list
  civdesk                               # the window, against the double

The checkpoint ({sample.checkpoint_v1.id}) needs the key: unset CIVITAI_API_KEY to see the
message. Ctrl+C stops the double.""", flush=True)
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
