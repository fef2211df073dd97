"""Civitai clients for the browser page: one per worker thread, impatient by design.

A person looking at a search box wants an answer in seconds. The core client's default
patience (four retries, up to a minute's ``Retry-After``) suits a background download; the
page instead retries once briefly and then shows the error with a Retry button.
"""

from __future__ import annotations

import threading
from typing import Any

from civdesk.core.civitai.client import CivitaiClient

BROWSER_RETRIES = 1
BROWSER_MAX_WAIT = 3.0  # seconds, for backoff and Retry-After alike


class BrowserClients:
    """``get()`` returns this thread's client, rebuilt when the site or key changed."""

    def __init__(self, core: Any) -> None:
        self._core = core
        self._local = threading.local()

    def get(self, *, mature: bool | None = None) -> CivitaiClient:
        """A client for the site that shows what is asked for: with ``mature`` True the
        site with all content (None: as the setting says)."""
        base, key = self._core.sites.allowing(mature).content, self._core.api_key()
        client: CivitaiClient | None = getattr(self._local, "client", None)
        if client is None or client.base_url != base.rstrip("/") or client.api_key != key:
            if client is not None:
                client.close()
            client = CivitaiClient(
                base, key, max_retries=BROWSER_RETRIES, backoff=0.5,
                max_backoff=BROWSER_MAX_WAIT, max_retry_after=BROWSER_MAX_WAIT,
            )  # fmt: skip
            self._local.client = client
        return client
