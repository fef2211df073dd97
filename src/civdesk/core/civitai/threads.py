"""One client per thread, for the work that asks Civitai several things at once.

A ``requests.Session`` must not be shared between threads, so a pool that sends requests
in parallel gives each of its threads a client of its own: made on the thread's first
request, closed together when the work is over.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

Client = TypeVar("Client")


class ThreadClients(Generic[Client]):
    """One client per pool thread, made by ``factory`` on the thread's first use;
    :meth:`close` closes them all."""

    def __init__(self, factory: Callable[[], Client] | None) -> None:
        self.factory = factory
        self.local = threading.local()
        self.made: list[Client] = []
        self.lock = threading.Lock()

    def get(self) -> Client:
        client: Client | None = getattr(self.local, "client", None)
        if client is None:
            assert self.factory is not None
            client = self.local.client = self.factory()
            with self.lock:
                self.made.append(client)
        return client

    def close(self) -> None:
        for client in self.made:
            close = getattr(client, "close", None)
            if close is not None:
                close()
        self.made.clear()
