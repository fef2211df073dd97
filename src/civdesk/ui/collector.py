"""Python's cyclic garbage collector, run from the GUI thread's event loop only.

CPython collects whenever an allocation crosses a threshold, wherever that allocation is:

- on a worker (a scan, a download, a library read), where a cycle it frees may hold Qt
  wrappers of the GUI thread (a timer, a pixmap, a widget's slot) whose C++ destructors
  then race the GUI thread for Qt's locks;
- inside a QObject's destructor, when PySide asks Python whether a virtual is overridden:
  Qt holds the object's signal-slot lock (one of a small shared pool) there, and a
  collection that deletes another QObject behind the same lock deadlocks the thread on
  itself. The test suite hung this way (``QObject::~QObject`` -> ``Sbk_GetPyOverride`` ->
  ``gc_collect_main`` -> ``QObject::~QObject`` -> ``QBasicMutex::lockInternal``).

The PyQt habit (pyqtgraph, Spyder) is to switch automatic collection off and collect from
a timer in the event loop, with CPython's own thresholds: there no Qt lock is held.
"""

from __future__ import annotations

import gc
import time

from PySide6.QtCore import QObject, QTimer, Slot

#: How often the GUI thread looks at the allocation counts. Short, so that each young
#: collection stays small while workers allocate fast (a scan parses thousands of objects).
CHECK_INTERVAL_MS = 100
#: A full collection walks every object not frozen: never more often than this.
MIN_FULL_INTERVAL_S = 10.0


class GuiGarbageCollector(QObject):
    """Owns the collector while started: :meth:`start` turns automatic collection off,
    :meth:`stop` gives it back as it was."""

    def __init__(self, parent: QObject | None = None,
                 interval_ms: int = CHECK_INTERVAL_MS) -> None:
        super().__init__(parent)
        self.setObjectName("civdesk-gc")
        self._thresholds = gc.get_threshold()
        self._was_enabled = False
        self._last_full = time.monotonic()
        self._timer = QTimer(self)
        self._timer.setObjectName("civdesk-gc")
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.collect_due)

    @property
    def running(self) -> bool:
        return self._timer.isActive()

    def start(self) -> None:
        if self.running:
            return
        self._was_enabled = gc.isenabled()
        gc.disable()
        self._timer.start()

    def stop(self) -> None:
        if not self.running:
            return
        self._timer.stop()
        if self._was_enabled:
            gc.enable()

    @Slot()
    def collect_due(self) -> int | None:
        """Collect the oldest generation whose count passed its threshold, as CPython
        would have; the generation collected, or None."""
        full_allowed = time.monotonic() - self._last_full >= MIN_FULL_INTERVAL_S
        generation = due_generation(self._thresholds, full_allowed=full_allowed)
        if generation is None:
            return None
        gc.collect(generation)
        if generation == 2:
            # What survived a full collection is the app's long-lived state (the library's
            # entries, caches, widgets): frozen, the next full collection walks only what
            # is newer (a full walk of the app mid-scan costs ~45 ms of GUI time). The
            # price: a cycle among frozen objects that dies later is never freed; a whole
            # bench_gui run (scan, download, reload) frees under a thousand objects by
            # collection at all, so that stays small.
            gc.freeze()
            self._last_full = time.monotonic()
        return generation


def due_generation(thresholds: tuple[int, int, int],
                   full_allowed: bool = True) -> int | None:
    """The generation CPython would collect now with these thresholds, or None."""
    young, middle, old = gc.get_count()
    t_young, t_middle, t_old = thresholds
    if young < t_young:
        return None
    if middle < t_middle:
        return 0
    return 2 if old >= t_old and full_allowed else 1
