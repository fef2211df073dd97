"""The one connection policy for Civitai: who gets a client, with which patience, paced by
which governor.

Every part of the app that talks to Civitai (scan lookups, update checks, downloads,
thumbnails, the browser page, the command line) takes its clients from one
:class:`Connections`, so they share one :class:`~civdesk.core.civitai.governor.Governor`
per host: a 429 met by any of them slows all of them down.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from civdesk.core.civitai.client import RATE_LIMIT_PATIENCE, REQUEST_DEADLINE, CivitaiClient
from civdesk.core.civitai.governor import Clock, Governors, RatePolicy, Sleep


@dataclass(frozen=True)
class Patience:
    """How long a kind of work keeps trying (seconds and counts). The pauses default to
    the rate governor's own figures: the client builds its RatePolicy from them."""

    max_retries: int = 4
    backoff: float = RatePolicy.base
    max_backoff: float = RatePolicy.ceiling
    max_retry_after: float = RatePolicy.max_retry_after
    rate_limit_patience: float = RATE_LIMIT_PATIENCE
    deadline: float = REQUEST_DEADLINE


#: Background work (scans, update checks, downloads): waits out a rate limit.
BACKGROUND = Patience()
#: Previews: worth a minute's wait (a person may be looking), not a quarter of an hour.
PREVIEWS = Patience(rate_limit_patience=60.0)
#: The download queue waits rate limits out itself, visibly and stoppably: its client only
#: makes its usual retries.
DOWNLOADS = Patience(rate_limit_patience=0.0)
#: A person looking at a search box wants an answer in seconds: one brief retry, then the
#: page shows the error with a Retry button.
INTERACTIVE = Patience(max_retries=1, backoff=0.5, max_backoff=3.0, max_retry_after=3.0,
                       rate_limit_patience=3.0, deadline=30.0)


class Connections:
    """Hands out Civitai clients that share this object's per-host governors.

    :meth:`client` makes a new client (for one thread; a ``requests.Session`` must not be
    shared); :meth:`thread_client` keeps one per thread and per site, key and patience.
    """

    def __init__(self, policy: RatePolicy | None = None, *, clock: Clock = time.monotonic,
                 sleep: Sleep = time.sleep) -> None:
        self.governors = Governors(policy, clock=clock)
        self.sleep = sleep
        self._local = threading.local()

    def client(self, site: str, api_key: str | None,
               patience: Patience = BACKGROUND) -> CivitaiClient:
        return CivitaiClient(
            site, api_key, max_retries=patience.max_retries, backoff=patience.backoff,
            max_backoff=patience.max_backoff, max_retry_after=patience.max_retry_after,
            rate_limit_patience=patience.rate_limit_patience, deadline=patience.deadline,
            sleep=self.sleep, governors=self.governors,
        )

    def thread_client(self, site: str, api_key: str | None,
                      patience: Patience = BACKGROUND) -> CivitaiClient:
        """This thread's client for ``site`` and ``api_key``; the one it had for another
        site or key is closed."""
        clients: dict[Patience, CivitaiClient] = self._local.__dict__.setdefault("clients", {})
        client = clients.get(patience)
        if client is None or client.base_url != site.rstrip("/") or client.api_key != api_key:
            if client is not None:
                client.close()
            client = clients[patience] = self.client(site, api_key, patience)
        return client

    def status(self) -> str:
        """What the window says while Civitai slows civdesk down ('' when it does not)."""
        return self.governors.message()
