"""Where civdesk keeps its data on each system: what the README promises, simulated here.

``civdesk.paths`` asks platformdirs; these tests hand it the Windows and macOS rules (the
Windows one reading its folders from the environment, as it does without the registry).
"""

from __future__ import annotations

import sys
from pathlib import Path, PureWindowsPath

import platformdirs.macos
import platformdirs.windows
import pytest

from civdesk import paths


def test_windows_keeps_everything_under_local_app_data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCALAPPDATA", r"C:\Users\ann\AppData\Local")
    monkeypatch.setenv("APPDATA", r"C:\Users\ann\AppData\Roaming")
    monkeypatch.delenv(paths.ENV_DATA_DIR, raising=False)
    monkeypatch.setattr(platformdirs.windows, "get_win_folder",
                        platformdirs.windows.get_win_folder_from_env_vars)
    monkeypatch.setattr(paths.platformdirs, "PlatformDirs", platformdirs.windows.Windows)
    found = paths.app_paths()
    local = PureWindowsPath(r"C:\Users\ann\AppData\Local\civdesk")
    as_windows = {name: PureWindowsPath(str(getattr(found, name)).replace("/", "\\"))
                  for name in ("data", "config", "cache", "logs")}
    # Not roaming: a library of many GB of metadata must not follow the user between PCs.
    assert as_windows == {"data": local, "config": local, "cache": local / "Cache",
                          "logs": local / "Logs"}


@pytest.mark.skipif(sys.platform == "win32", reason="a POSIX home folder")
def test_macos_uses_application_support_caches_and_logs(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv(paths.ENV_DATA_DIR, raising=False)
    monkeypatch.setattr(paths.platformdirs, "PlatformDirs", platformdirs.macos.MacOS)
    found = paths.app_paths()
    library = tmp_path / "Library"
    assert (found.data, found.config, found.cache, found.logs) == (
        library / "Application Support" / "civdesk", library / "Application Support" / "civdesk",
        library / "Caches" / "civdesk", library / "Logs" / "civdesk")
    assert found.database == library / "Application Support" / "civdesk" / "library.sqlite3"


def test_a_data_folder_given_keeps_all_of_it_in_one_place(tmp_path: Path) -> None:
    found = paths.app_paths(tmp_path / "portable")
    root = (tmp_path / "portable").resolve()
    assert (found.data, found.config, found.cache, found.logs) == (
        root, root, root / "cache", root / "logs")
