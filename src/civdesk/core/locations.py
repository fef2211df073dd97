"""Where the usual Stable Diffusion web UIs keep their models, to offer them as library folders.

Only places an installer or a guide puts them by default are looked at (a handful of
``stat`` calls, no walk): AUTOMATIC1111, Forge and SD.Next checkouts in the home folder,
ComfyUI (git checkout, Windows portable build, the desktop app's folder in Documents) and
Stability Matrix's shared models folder (installed or portable). Anything else is the
user's to add.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

#: Under the home folder, and under Documents and Desktop (portable builds are unpacked
#: there as often as anywhere).
RELATIVE_MODEL_FOLDERS = (
    "stable-diffusion-webui/models",
    "stable-diffusion-webui/embeddings",  # A1111 and Forge keep embeddings beside models
    "stable-diffusion-webui-forge/models",
    "stable-diffusion-webui-forge/embeddings",
    "automatic/models",  # SD.Next
    "ComfyUI/models",
    "ComfyUI_windows_portable/ComfyUI/models",
    "StabilityMatrix/Data/Models",  # the portable build
)
SEARCHED_UNDER_HOME = ("", "Documents", "Desktop")


def find_model_folders(
    home: Path | None = None,
    environ: Mapping[str, str] | None = None,
    platform: str | None = None,
) -> list[Path]:
    """The usual model folders that exist on this machine, in the order above, each once."""
    home = home if home is not None else Path.home()
    environ = environ if environ is not None else os.environ
    platform = platform or sys.platform
    candidates = [home / under / rel for under in SEARCHED_UNDER_HOME
                  for rel in RELATIVE_MODEL_FOLDERS]
    candidates.extend(_stability_matrix_folders(home, environ, platform))
    found: list[Path] = []
    for path in candidates:
        try:
            if path.is_dir() and path.resolve() not in found:
                found.append(path.resolve())
        except OSError:
            continue  # unreadable: not offered
    return found


def _stability_matrix_folders(
    home: Path, environ: Mapping[str, str], platform: str
) -> list[Path]:
    """Stability Matrix's shared models folder where its installer puts its data."""
    if platform.startswith("win"):
        appdata = environ.get("APPDATA")
        return [Path(appdata) / "StabilityMatrix" / "Models"] if appdata else []
    if platform == "darwin":
        return [home / "Library" / "Application Support" / "StabilityMatrix" / "Models"]
    config = environ.get("XDG_CONFIG_HOME") or str(home / ".config")
    return [Path(config) / "StabilityMatrix" / "Models"]
