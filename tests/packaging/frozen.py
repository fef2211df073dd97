"""The frozen app under test: built once per run from build.spec, as `make app` does.

Set ``CIVDESK_FROZEN_APP`` to an existing one-folder build (``dist/civdesk``) to test that
instead, e.g. a release artifact.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ENV_PREBUILT = "CIVDESK_FROZEN_APP"
EXE_SUFFIX = ".exe" if sys.platform == "win32" else ""

PROBE_PREFIX = "civdesk-startup-probe:"
RUN_TIMEOUT = 90  # seconds; a cold first start of a frozen Qt app can be slow on CI


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str
    started_at: float  # time.time() just before the process was started

    def check(self) -> Run:
        """Exit code 0 and no Python traceback: the standard for every run here."""
        assert self.returncode == 0, f"exit code {self.returncode}\n{self.stderr[-3000:]}"
        assert "Traceback" not in self.stderr, self.stderr[-3000:]
        return self

    def first_window_seconds(self) -> float:
        for line in self.stdout.splitlines():
            if line.startswith(PROBE_PREFIX):
                return float(line.split()[2]) - self.started_at
        raise AssertionError(f"no start-up probe line in stdout:\n{self.stdout[-2000:]}")


@dataclass(frozen=True)
class FrozenApp:
    folder: Path  # the one-folder build: the executables and _internal/
    gui: Path  # the windowed executable (double-click)
    cli: Path  # the executable for the command line (the same one outside Windows)
    build_seconds: float | None

    def manifest(self) -> dict[str, tuple[int, int]]:
        """Every file in the build with its size and mtime, to notice anything written."""
        return {
            str(p.relative_to(self.folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in self.folder.rglob("*")
            if p.is_file()
        }


def _build(tmp: Path) -> FrozenApp:
    dist, work = tmp / "dist", tmp / "work"
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean",
         "--distpath", str(dist), "--workpath", str(work), str(REPO / "build.spec")],
        cwd=REPO, capture_output=True, text=True, timeout=1100,
        env={k: v for k, v in os.environ.items() if k != "CIVDESK_ONEFILE"},
    )
    assert result.returncode == 0, f"PyInstaller failed:\n{result.stderr[-5000:]}"
    return locate(dist / "civdesk", time.monotonic() - started)


def locate(folder: Path, build_seconds: float | None) -> FrozenApp:
    gui = folder / f"civdesk{EXE_SUFFIX}"
    cli = folder / "civdesk-cli.exe" if sys.platform == "win32" else gui
    assert gui.is_file(), f"no executable at {gui}"
    assert cli.is_file(), f"no command-line executable at {cli}"
    return FrozenApp(folder, gui, cli, build_seconds)


def frozen_app_for_tests(tmp: Path) -> FrozenApp:
    """The prebuilt app ``CIVDESK_FROZEN_APP`` names, else a new build in ``tmp``."""
    prebuilt = os.environ.get(ENV_PREBUILT)
    if prebuilt:
        return locate(Path(prebuilt).resolve(), None)
    return _build(tmp)


def run_env(home: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("CIVDESK_", "CIVITAI_", "XDG_", "PYTHON"))
    }
    env.update(
        HOME=str(home),
        USERPROFILE=str(home),
        XDG_DATA_HOME=str(home / "xdg-data"),
        XDG_CONFIG_HOME=str(home / "xdg-config"),
        XDG_CACHE_HOME=str(home / "xdg-cache"),
        XDG_STATE_HOME=str(home / "xdg-state"),
        QT_QPA_PLATFORM="offscreen",
        # Never touch a real keychain; also proves the keyring backends are bundled, since
        # keyring imports this one by name.
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
    )
    env.update(extra)
    return env


def run(argv: list[str | Path], env: dict[str, str], cwd: Path) -> Run:
    started = time.time()
    result = subprocess.run(
        [str(a) for a in argv], env=env, cwd=cwd, capture_output=True, text=True,
        timeout=RUN_TIMEOUT,
    )
    return Run(result.returncode, result.stdout, result.stderr, started)
