"""A command imports what it needs when it needs it: start-up is part of every command.

Counted in modules, not timed (bench/ has the figures): a command that never reaches
Civitai or the window must not pay for the HTTP stack, the keychain library (which probes
every platform's backend at import) or Qt.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"


def imported_by(tmp_path: Path, *args: str) -> set[str]:
    code = ("import sys, runpy; sys.argv = ['civdesk', *sys.argv[1:]];\n"
            "try:\n    runpy.run_module('civdesk', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "print('\\n'.join(sorted(sys.modules)), file=sys.stderr)")
    result = subprocess.run(
        [sys.executable, "-c", code, "--data-dir", str(tmp_path / "data"), *args],
        capture_output=True, text=True, timeout=60, check=False,
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr[-2000:]
    return set(result.stderr.split())


@pytest.mark.parametrize("command", [["list", "--json"], ["duplicates", "--json"]])
def test_offline_commands_load_neither_http_nor_the_keychain_nor_qt(
        tmp_path: Path, command: list[str]) -> None:
    modules = imported_by(tmp_path, *command)
    assert "civdesk.core.library.db" in modules  # it did the work
    assert not {m for m in modules
                if m.split(".")[0] in ("requests", "urllib3", "keyring", "PySide6")}
