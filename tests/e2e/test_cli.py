"""The ``civdesk`` command line end to end: a real subprocess, a real data folder, real files,
and the Civitai double on loopback instead of civitai.com."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from civdesk import __version__

SRC = Path(__file__).resolve().parents[2] / "src"


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


def civdesk(*args: str, env: dict[str, str] | None = None, stdin: str | None = None,
            timeout: float = 60) -> Run:
    """Run ``python -m civdesk ARGS`` and capture everything (stdin/stdout are not a TTY)."""
    # The developer's own key must never leak into a test run.
    full_env = {k: v for k, v in os.environ.items() if k != "CIVITAI_API_KEY"}
    full_env.update(env or {})
    full_env["PYTHONPATH"] = os.pathsep.join([str(SRC), full_env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-m", "civdesk", *args], input=stdin or "", capture_output=True,
        text=True, env=full_env, timeout=timeout)
    return Run(done.returncode, done.stdout, done.stderr)


def test_version_prints_the_package_version() -> None:
    run = civdesk("--version")
    assert run.code == 0
    assert run.stdout.strip() == f"civdesk {__version__}"


def test_an_unknown_command_is_a_usage_error(tmp_data_dir: Path) -> None:
    run = civdesk("frobnicate")
    assert run.code == 2
    assert "invalid choice: 'frobnicate'" in run.stderr
    assert run.stdout == ""
