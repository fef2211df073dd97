"""What the Models page's actions do, as plain functions for worker threads.

Each one touches the disk, the database or the network, so the page runs it through
:func:`civdesk.ui.tasks.run_task` and never on the GUI thread. They import no Qt.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from civdesk.core.civitai.client import CivitaiClient
from civdesk.core.errors import FileProblem
from civdesk.core.library.repository import Library, UpdateInfo
from civdesk.core.sidecars import companion_files
from civdesk.core.units import plural
from civdesk.core.updates import UpdateCheck, UpdateChecker

log = logging.getLogger(__name__)


def companion_paths(model_path: str | os.PathLike[str], sha256: str | None = None) -> list[Path]:
    """The companion files of a model that exist (info JSONs, previews); not those of
    another model file sharing its stem (``sha256``: the model's, to tell them apart)."""
    return [path for path in companion_files(Path(model_path), sha256) if path.is_file()]


def delete_with_companions(library: Library, model_path: str | os.PathLike[str]) -> list[str]:
    """Delete a model file and its companions, and forget it in the library.

    Returns the paths deleted. The model goes first: if it cannot be deleted nothing else
    is touched. A companion that cannot be deleted is left (and logged), since the model is
    already gone and a stray preview harms nothing.
    """
    model = Path(model_path)
    known = library.local_file(model)
    companions = companion_paths(model, known.sha256 if known else None)
    try:
        model.unlink()
    except FileNotFoundError:
        pass  # already gone: still clean up its companions and the library row
    except OSError as exc:
        raise FileProblem(f"{model.name} could not be deleted: {exc.strerror}") from exc
    deleted = [str(model)]
    for path in companions:
        try:
            path.unlink()
            deleted.append(str(path))
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("Companion %s could not be deleted: %s", path, exc)
    library.remove_files([model])
    return deleted


def delete_again(library: Library, model_paths: list[str]) -> None:
    """Finish deletes a scan raced with: for each model no longer on disk, the companions
    and the library row the scan may have written after the delete."""
    for path in model_paths:
        if not os.path.lexists(path):
            delete_with_companions(library, path)


def check_model_update(library: Library, client: CivitaiClient, model_id: int) -> UpdateInfo | None:
    """Ask Civitai for one model's latest version; the update now available, if any."""
    model = client.get_model(model_id)
    library.upsert_model(model)
    latest = model.latest_version
    library.record_update_check(model.id, latest.id if latest else None)
    return next((u for u in library.available_updates() if u.model_id == model_id), None)


def check_library_updates(
    library: Library,
    client: CivitaiClient,
    *,
    force: bool = True,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> UpdateCheck:
    """Ask Civitai about the library's identified models.

    ``force`` (the toolbar's "Check for updates": the user asked now) asks about every
    model, also those checked recently; without it (after a scan, at start-up) only models
    not asked about within the checker's ``max_age`` (6 h), so a quiet check costs nothing
    when nothing is due.
    """
    return UpdateChecker(library, client).check(force=force, progress=progress, cancel=cancel)


def update_check_text(result: UpdateCheck, *, forced: bool = True) -> str:
    """One line for the status bar and the dock: what the check found, and what went wrong.

    ``updates`` holds every known update, so a check that had nothing due (everything was
    asked about recently) still reports the updates found earlier.
    """
    count = len(result.updates)
    if count:
        text = f"{plural(count, 'update')} available"
    elif result.due == 0:
        text = "No identified models to check for updates" if forced else "No updates available"
    else:
        text = f"Checked {plural(result.checked, 'model')}: all up to date"
    if result.removed:
        text += f"; {result.removed} removed from Civitai (not checked)"
    problem = result.problem()
    return f"{text} ({problem})" if problem else text
