"""Downloads: safe file names, one resumable verified download, the persisted queue.

Names are exported lazily: the Civitai client imports ``downloads.filenames``, and an eager
import of the downloader here (which imports the client) would be circular.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Downloader": "downloader",
    "DownloadProgress": "downloader",
    "DownloadResult": "downloader",
    "human_size": "downloader",
    "free_name": "filenames",
    "safe_join": "filenames",
    "sanitize_filename": "filenames",
    "DownloadQueue": "queue",
    "IllegalTransition": "queue",
    "RegisterInLibrary": "queue",
    "TaskId": "queue",
    "TaskSnapshot": "queue",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
