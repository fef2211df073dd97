"""What the dock says about a task: its state, its sizes, and why it failed, in plain words.

Pure functions of a task snapshot (no Qt), so the wording is tested without widgets.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from civdesk.core.civitai.errors import KEY_PAGE
from civdesk.core.units import human_size

if TYPE_CHECKING:
    from civdesk.core.downloads.queue import TaskSnapshot

STATE_LABELS = {
    "queued": "Queued",
    "downloading": "Downloading",
    "completed": "Completed",
    "failed": "Failed",
    "cancelled": "Cancelled",
}


def task_title(task: TaskSnapshot) -> str:
    """The name a person recognises: the file name, else model and version, else the id."""
    if task.file_name:
        return task.file_name
    if task.model_name:
        return f"{task.model_name} — {task.version_name}" if task.version_name else task.model_name
    return f"Model version {task.version_id}"


def size_text(size: float | None) -> str:
    """A size for people (``6.3 GB``); ``?`` while unknown."""
    return "?" if size is None else human_size(size)


def _short_date(text: str | None) -> str | None:
    match = re.search(r"\d{4}-\d{2}-\d{2}", text or "")
    return match.group(0) if match else None


_OWNER = re.compile(r"\((pid \d+(?: on [^)]+)?)\)")


def _in_use_reason(message: str) -> str:
    """Another civdesk process owns the task or its ``.part``; the core's message names it
    as ``(pid N)`` or ``(pid N on host)``."""
    match = _OWNER.search(message)
    who = f" ({match.group(1)})" if match else ""
    return f"Being downloaded by another civdesk window{who} — it will continue there"


def downloading_elsewhere(task: TaskSnapshot) -> str | None:
    """For a task another civdesk process is downloading right now: who, in words.

    (``elsewhere`` and ``owner`` arrived with task ownership in the core; read them
    defensively so a snapshot without them means "not elsewhere".)
    """
    if not getattr(task, "elsewhere", False):
        return None
    owner = getattr(task, "owner", None)
    who = f" ({owner.describe()})" if owner is not None else ""
    return f"Downloading in another civdesk window{who}"


def failure_reason(task: TaskSnapshot) -> str:
    """Why a task failed (or is waiting), as something the user can do something about.

    Keyed on the snapshot's ``error_kind`` (the core's classification); the core's own
    message (``error``, one line already) is the fallback and fills in details.
    """
    kind = task.error_kind or ""
    message = (task.error or "").strip()
    if kind == "auth":
        return "Civitai wants you logged in for this file: set your API key in Settings, then retry"
    if kind == "key_refused":
        return (f"Civitai refused your API key (expired or revoked): create a new one on "
                f"{KEY_PAGE}, enter it in Settings, then retry")
    if kind == "early_access":
        deadline = _short_date(task.deadline) or _short_date(message)
        until = f" until {deadline}" if deadline else ""
        return f"In early access{until}: retry then, or unlock it on Civitai with your account"
    if kind == "not_found":
        return "Removed from Civitai (or this file no longer exists there)"
    if kind == "archived":
        return "Archived on Civitai: the creator no longer offers it for download"
    if kind == "rate_limited":
        when = f"retrying in {round(task.retry_after)} s" if task.retry_after else "retry later"
        return f"Civitai is rate limiting downloads: {when}"
    if kind == "disk_full":
        return "The disk is full: free some space (or choose another download folder), then retry"
    if kind == "forbidden":
        return "Civitai refused this download for your account or network"
    if kind == "hash_mismatch":
        return "The downloaded file was corrupt and was discarded: retry the download"
    if kind == "unsafe_name":
        return f"Civitai sent a file name that is unsafe to write ({message})"
    if kind == "in_use":
        return _in_use_reason(message)
    if kind == "flagged":
        why = message or "Civitai's scans flagged this file as dangerous"
        return f"{why}. Retry asks whether to download it anyway"
    if kind == "network":
        return message or "No connection to Civitai: check your network, then retry"
    return message or "The download failed"
