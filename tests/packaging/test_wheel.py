"""A plain wheel (not the frozen app, not an editable install) carries the artwork: built
from this checkout, installed into a fresh virtual environment and asked from outside the
repository, civdesk finds every resource file it ships."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

pytestmark = [pytest.mark.packaging, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]


def test_installed_wheel_finds_its_resources(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir",
         str(wheels), str(REPO)],
        check=True, cwd=tmp_path,
    )
    (wheel,) = wheels.glob("civdesk-*.whl")
    env_dir = tmp_path / "env"
    venv.create(env_dir, with_pip=True)
    python = env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    # No dependencies: only civdesk.resources is imported, which needs none of them.
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", str(wheel)],
                   check=True, cwd=tmp_path)
    shipped = sorted(p.relative_to(REPO / "resources").as_posix()
                     for p in (REPO / "resources").rglob("*") if p.is_file())
    probe = (
        "import sys\n"
        "from civdesk.resources import resource_path, resources_root\n"
        "print(resources_root())\n"
        "for name in sys.argv[1:]:\n"
        "    assert resource_path(*name.split('/')).is_file(), name\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "CIVDESK_RESOURCES"}
    out = subprocess.run([str(python), "-c", probe, *shipped], check=True, cwd=tmp_path,
                         capture_output=True, text=True, env=env).stdout
    root = Path(out.strip())
    assert root.is_relative_to(env_dir), root  # the installed copy, not this checkout's
    assert root.parts[-3:] == ("share", "civdesk", "resources")
