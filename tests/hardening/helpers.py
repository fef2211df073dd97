"""Shared pieces of the hardening tests: the CLI in a subprocess, database checks, clients."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from civdesk.core.civitai.client import CivitaiClient
from civdesk.core.downloads.downloader import Downloader
from tests.conftest import TEST_API_KEY
from tests.double import CivitaiDouble

MiB = 1 << 20
REPO = Path(__file__).resolve().parents[2]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(MiB):
            digest.update(block)
    return digest.hexdigest().upper()


def quick_client(
    double: CivitaiDouble, api_key: str | None = TEST_API_KEY, **options: object
) -> CivitaiClient:
    """A real client on the double that retries without sleeping and times out fast."""
    settings: dict[str, object] = {
        "timeout": (2.0, 2.0),
        "max_retries": 3,
        "backoff": 0.001,
        "max_backoff": 0.01,
        "max_retry_after": 0.5,
        "sleep": lambda seconds: None,
        "rate_limit_patience": 0.0,  # a 429 gets the retries above, not minutes of them
    }
    settings.update(options)
    return CivitaiClient(double.base_url, api_key, **settings)  # type: ignore[arg-type]


def quick_downloader(client: CivitaiClient, **options: object) -> Downloader:
    settings: dict[str, object] = {"retry_delay": 0, "sleep": lambda seconds: None}
    settings.update(options)
    return Downloader(client, **settings)  # type: ignore[arg-type]


def integrity(database: Path) -> str:
    """``PRAGMA integrity_check`` of the file, opened the way SQLite recovers it (WAL replay)."""
    connection = sqlite3.connect(database, timeout=10)
    try:
        return ", ".join(row[0] for row in connection.execute("PRAGMA integrity_check"))
    finally:
        connection.close()


def fill_settings(database: Path, rows: int) -> None:
    """``rows`` settings rows of 200 bytes each: a library many pages long."""
    from civdesk.core.library import Database
    from civdesk.core.library.tables import SettingRow

    if not rows:
        return
    with Database.open(database) as db, db.session() as s:
        for i in range(rows):
            s.add(SettingRow(key=f"row-{i:05}", value="x" * 200))


def wreck_the_middle(database: Path) -> None:
    """Garbage over the middle third of the file; the header and the schema stay readable."""
    data = bytearray(database.read_bytes())
    third = len(data) // 3
    data[third:2 * third] = bytes((i * 37 + 11) % 251 for i in range(third))
    database.write_bytes(bytes(data))


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a CLI subprocess: this checkout, no real keychain, no real home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CIVITAI_", "CIVDESK_"))}
    env.update(
        PYTHONPATH=str(REPO / "src") + os.pathsep + str(REPO),
        # Never the developer's keychain: the key comes from --api-key only.
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.update(extra)
    return env


@dataclass
class Cli:
    """``python -m civdesk`` against the double with a private data folder."""

    data_dir: Path
    api_base: str
    api_key: str | None = TEST_API_KEY

    def argv(self, *args: str) -> list[str]:
        argv = [sys.executable, "-m", "civdesk", "--data-dir", str(self.data_dir),
                "--api-base", self.api_base]
        if self.api_key:
            argv += ["--api-key", self.api_key]
        return argv + list(args)

    def start(self, *args: str, preexec_fn: object = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv(*args), env=cli_env(), cwd=self.data_dir.parent, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            preexec_fn=preexec_fn,  # type: ignore[arg-type]
        )

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(*args), env=cli_env(), cwd=self.data_dir.parent,
                              text=True, capture_output=True, timeout=timeout, check=False)

    @property
    def database(self) -> Path:
        return self.data_dir / "library.sqlite3"


def kill_after(process: subprocess.Popen[str], seconds: float) -> bool:
    """SIGKILL ``process`` after ``seconds`` unless it ended first; whether it was killed."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            process.communicate()
            return False
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    return True


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def first_line(text: str) -> str:
    return next((line for line in text.splitlines() if line.strip()), "")


def assert_one_line_error(result: subprocess.CompletedProcess[str],
                          words: Sequence[str] = ()) -> None:
    """The CLI failed the civdesk way: exit 1, one ``civdesk: error:`` line, no traceback."""
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("civdesk: error:")]
    assert len(errors) == 1, result.stderr
    assert "unexpected failure" not in errors[0], result.stderr
    for word in words:
        assert word.lower() in errors[0].lower(), result.stderr
