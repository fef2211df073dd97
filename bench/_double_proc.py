"""The Civitai double in a child process, so the benches measure civdesk alone.

In the bench's own process the double's server threads would share civdesk's interpreter
lock (GIL): every reply it renders and every file it sends would be time taken from the code
under test, a cost curl and openssl never pay. Here it has its own interpreter.

Protocol (see :class:`DoubleProcess`): the parent writes a JSON spec of the catalogue (model
files already on disk) to the child's stdin as one line; the child builds the catalogue
(hashing the files), starts the double and prints one JSON line: ``base_url``,
``storage_url`` and, per file of the spec, ``version_id``, ``file_id``, ``sha256`` and
``download_url``. It serves until its stdin closes, then prints ``{"requests": N}`` (the
HTTP requests it answered) and exits.

    spec = {"files": [{"path": "/x/a.safetensors", "model": "A", "type": "Checkpoint",
                       "images": false}, ...], "latency": 0.0}
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from _common import REPO


class DoubleProcess:
    """Runs the double in a child process for the duration of a ``with`` block."""

    def __init__(self, files: list[dict[str, Any]], latency: float = 0.0) -> None:
        """``latency``: seconds every answer waits, API and storage alike (a far-away
        Civitai and its CDN)."""
        self.spec = {"files": files, "latency": latency}
        self.proc: subprocess.Popen[str] | None = None
        self.base_url = ""
        self.storage_url = ""
        self.served: list[dict[str, Any]] = []
        self.requests: int | None = None  # known after the block

    def __enter__(self) -> DoubleProcess:
        self.proc = subprocess.Popen([sys.executable, __file__], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, cwd=REPO)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(self.spec) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the double's process ended before it started serving")
        ready = json.loads(line)
        self.base_url, self.storage_url = ready["base_url"], ready["storage_url"]
        self.served = ready["files"]
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.close()
        assert self.proc.stdout is not None
        tail = self.proc.stdout.read()
        self.proc.wait(timeout=30)
        if tail.strip():
            self.requests = json.loads(tail.strip().splitlines()[-1]).get("requests")


def _serve() -> int:
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from tests.double import CivitaiDouble

    spec = json.loads(sys.stdin.readline())
    with CivitaiDouble() as double:
        out = []
        for item in spec["files"]:
            path = Path(item["path"])
            model = double.add_model(item.get("model") or path.stem, item.get("type", "LORA"))
            f = double.file(path=path, name=item.get("name") or path.name)
            version = double.add_version(model, name=item.get("version", "v1.0"), files=[f],
                                         images=None if item.get("images") else [])
            out.append({"version_id": version.id, "file_id": f.id, "sha256": f.sha256.upper(),
                        "download_url": double.download_url(version, f)})
        double.catalog.file_by_hash("0" * 64)  # builds the hash index before serving
        double.api_latency(spec.get("latency", 0.0))
        double.storage_latency(spec.get("latency", 0.0))
        print(json.dumps({"base_url": double.base_url, "storage_url": double.storage_url,
                          "files": out}), flush=True)
        sys.stdin.read()  # serve until the parent closes our stdin
        print(json.dumps({"requests": len(double.requests)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_serve())
