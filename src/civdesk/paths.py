"""Every path civdesk writes to, in one place.

User data lives in the platform's directories (platformdirs). ``CIVDESK_DATA_DIR`` (or
``--data-dir``) moves all of it under one folder, which is how tests and portable installs
keep the real home folder untouched.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from civdesk import APP_NAME

ENV_DATA_DIR = "CIVDESK_DATA_DIR"


@dataclass(frozen=True)
class AppPaths:
    data: Path  # database, downloads state
    config: Path  # settings file, the API key fallback file
    cache: Path  # thumbnails, API responses
    logs: Path

    @property
    def database(self) -> Path:
        return self.data / "library.sqlite3"

    @property
    def settings_file(self) -> Path:
        return self.config / "settings.json"

    @property
    def thumbnails(self) -> Path:
        return self.cache / "thumbnails"

    def ensure(self) -> AppPaths:
        for folder in (self.data, self.config, self.cache, self.logs):
            folder.mkdir(parents=True, exist_ok=True)
        return self


def app_paths(data_dir: str | os.PathLike[str] | None = None) -> AppPaths:
    """The paths for this run: an explicit folder, then ``$CIVDESK_DATA_DIR``, then the OS's."""
    root = data_dir or os.environ.get(ENV_DATA_DIR)
    if root:
        base = Path(root).expanduser().resolve()
        return AppPaths(data=base, config=base, cache=base / "cache", logs=base / "logs")
    dirs = platformdirs.PlatformDirs(APP_NAME, appauthor=False)
    return AppPaths(
        data=Path(dirs.user_data_dir),
        config=Path(dirs.user_config_dir),
        cache=Path(dirs.user_cache_dir),
        logs=Path(dirs.user_log_dir),
    )
