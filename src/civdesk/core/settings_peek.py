"""The stored settings read with the standard library's ``sqlite3``, without SQLAlchemy.

``civdesk download`` sends its first request to Civitai while SQLAlchemy loads and the
library opens (importing SQLAlchemy alone takes longer than the request): which site to ask
is a setting. This reads only the ``settings`` table, read-only; anything unexpected gives
None, and the caller waits for the library to open as before. What the library says once
open stays the truth: the caller checks that it agrees. (Outside ``core/library``, whose
package import loads SQLAlchemy; this one query is the only SQL outside it.)
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

#: A settings table is a few KB; more is not one this peek should read.
MAX_VALUE_BYTES = 1 << 20


def stored_settings(database: Path) -> dict[str, Any] | None:
    """key -> value of the settings stored in ``database``; ``{}`` when there is no
    library yet; None when it cannot be read this way (the caller opens the library)."""
    if not database.exists():
        return {}
    try:
        uri = database.resolve().as_uri() + "?mode=ro"
        connection = sqlite3.connect(uri, uri=True, timeout=0.1)
    except (sqlite3.Error, OSError, ValueError):
        return None
    try:
        rows = connection.execute("SELECT key, value FROM settings").fetchall()
        values: dict[str, Any] = {}
        for key, value in rows:
            if not isinstance(key, str) or not isinstance(value, str | bytes) or (
                    len(value) > MAX_VALUE_BYTES):
                return None
            values[key] = json.loads(value)
        return values
    except (sqlite3.Error, ValueError):
        return None
    finally:
        connection.close()
