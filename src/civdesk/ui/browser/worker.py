"""Civitai clients for the browser page: one per worker thread, impatient by design.

A person looking at a search box wants an answer in seconds: the page's clients have the
:data:`~civdesk.core.civitai.connections.INTERACTIVE` patience (one brief retry, then the
error with a Retry button), and share the rate governor of everything else in the app.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from civdesk.core.civitai.client import CivitaiClient
from civdesk.core.civitai.connections import INTERACTIVE

if TYPE_CHECKING:
    from civdesk.core.context import Core


class BrowserClients:
    """``get()`` returns this thread's client, rebuilt when the site or key changed."""

    def __init__(self, core: Core) -> None:
        self._core = core

    def get(self, *, mature: bool | None = None) -> CivitaiClient:
        """A client for the site that shows what is asked for: with ``mature`` True the
        site with all content (None: as the setting says)."""
        client: CivitaiClient = self._core.thread_client(mature=mature, patience=INTERACTIVE)
        return client
