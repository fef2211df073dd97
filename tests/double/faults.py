"""Fault switches: per-item moderation states and counted transient failures.

Everything here is cleared by `reset()`, so a test can flip states without rebuilding the catalog.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class CountedFault:
    """A fault that hits the next `remaining` requests whose path starts with `path_prefix`."""

    # "status" | "malformed_json" | "truncate" | "reset" | "stall" | "wrong_length" | "drip"
    # | "json_body"
    kind: str
    remaining: int
    path_prefix: str | None
    status: int = 0
    retry_after: float | None = None
    amount: float = 0  # bytes for truncate/reset/wrong_length, seconds for stall
    body: bytes = b""  # json_body: the bytes sent instead of the answer
    headers: dict[str, str] = field(default_factory=dict)  # json_body: headers added

    def matches(self, path: str) -> bool:
        return self.remaining > 0 and (
            self.path_prefix is None or path.startswith(self.path_prefix)
        )


@dataclass
class FaultBook:
    login_required: set[int] = field(default_factory=set)  # version ids
    early_access: dict[int, str] = field(default_factory=dict)  # version id -> deadline
    early_access_key_unlocks: set[int] = field(default_factory=set)
    archived: set[int] = field(default_factory=set)  # model ids
    removed: set[int] = field(default_factory=set)  # model ids
    taken_down: set[int] = field(default_factory=set)  # model ids: mode TakenDown
    unpublished: set[int] = field(default_factory=set)  # version ids: 404, left out of lists
    # model ids whose download answers 410 while their JSON (edge-cached) still lists files
    gone_downloads: set[int] = field(default_factory=set)
    redirect_loops: set[int] = field(default_factory=set)  # version ids
    redirect_targets: dict[int, str] = field(default_factory=dict)  # version id -> Location
    served_names: dict[int, str] = field(default_factory=dict)  # file id -> Content-Disposition
    bulk_hash_disabled: bool = False
    throttle_bps: int | None = None
    api_latency: float = 0.0  # seconds every API answer waits: a far-away server
    storage_latency: float = 0.0  # the same for the storage host (images, file bodies)
    # (path prefix, edit): a successful JSON answer under the prefix is passed through edit
    json_edits: list[tuple[str, Callable[[Any], Any]]] = field(default_factory=list)
    counted: list[CountedFault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def reset(self) -> None:
        with self._lock:
            fresh = FaultBook()
            for name in self.__dataclass_fields__:
                if name != "_lock":
                    setattr(self, name, getattr(fresh, name))

    def add(self, fault: CountedFault) -> None:
        with self._lock:
            self.counted.append(fault)

    def take(self, kinds: tuple[str, ...], path: str) -> CountedFault | None:
        """Consume one use of the first pending fault of these kinds that matches `path`."""
        with self._lock:
            for fault in self.counted:
                if fault.kind in kinds and fault.matches(path):
                    fault.remaining -= 1
                    return fault
            return None
