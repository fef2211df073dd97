"""A guard against a reference-count bug in the Qt bindings, applied once at import.

PySide6 6.12.0 on CPython 3.11 drops a reference to ``None`` on every call of a Qt method
that returns nothing (``label.setText``, ``widget.update``, ``app.processEvents`` …): after
about 5,000 such calls from Python, ``None``'s count reaches zero and the interpreter aborts
with "Fatal Python error: none_dealloc". CPython 3.12 made ``None`` immortal, which hides
the bug there. On an affected interpreter we give ``None`` the same immortality by hand: a
reference count so high that no run can bring it to zero.

The check is made, not assumed: a binding that counts correctly is left alone.
"""

from __future__ import annotations

import ctypes
import logging
import sys

log = logging.getLogger(__name__)

#: References added to ``None``: 2**48 calls is centuries of a running app.
_BALLAST = 1 << 48
_PROBE_CALLS = 8


def void_calls_drop_none() -> bool:
    """True when a Qt method returning nothing takes a reference to ``None`` with it."""
    from PySide6.QtCore import QObject

    probe = QObject()
    before = sys.getrefcount(None)
    for _ in range(_PROBE_CALLS):
        probe.setObjectName("civdesk-refcount-probe")
    return sys.getrefcount(None) < before


def keep_none_alive() -> bool:
    """Apply the guard where it is needed; True when it was applied."""
    if sys.implementation.name != "cpython" or sys.version_info >= (3, 12):
        return False  # None is immortal there
    if not void_calls_drop_none():
        return False
    ctypes.c_ssize_t.from_address(id(None)).value += _BALLAST
    log.info("Qt bindings drop references to None; None made immortal to survive it")
    return True
