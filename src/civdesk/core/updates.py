"""Which library models have a newer version on Civitai, asked for in batches.

A library can hold thousands of models. :class:`UpdateChecker` asks ``/models?ids=`` a
hundred at a time, a few requests at once (each answer takes Civitai a second or more,
so a check waits on them, not on this machine), stores the answers in order, remembers per
model when it last asked (so a second run a minute later asks nothing), keeps everything
learned before a request fails, and stops early when Civitai rate-limits or the network
is gone: continuing would only fail the same way. What was left unchecked is part of the
result, so a front end can say so and try again later.

The window and the command line share this; neither talks to the API about updates itself.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from civdesk.core.civitai.client import CivitaiClient
from civdesk.core.civitai.errors import CivitaiError, NetworkError, RateLimited
from civdesk.core.civitai.schema import Model
from civdesk.core.civitai.threads import ThreadClients
from civdesk.core.errors import Cancelled, CivdeskError
from civdesk.core.library.repository import Library, UpdateInfo

log = logging.getLogger(__name__)

#: The API's cap on ids per ``/models?ids=`` request.
BATCH_SIZE = 100
#: ``/models?ids=`` requests in flight at once, as many as a scan's hash lookups.
CONCURRENCY = 3
#: A model asked about more recently than this is not asked about again (unless forced).
DEFAULT_MAX_AGE = timedelta(hours=6)
#: A model removed from Civitai is skipped (it has no update to offer), even when forced;
#: after this long it is asked about once more, so that one Civitai put back loses the mark.
REMOVED_RECHECK = timedelta(days=7)

#: ``progress(models asked about so far, models due)``, called after every batch.
UpdateProgress = Callable[[int, int], None]
Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class UpdateCheck:
    """The outcome of one :meth:`UpdateChecker.check`.

    ``updates`` is every known update in the library, including those found by earlier
    checks, so it is useful even when this check was cut short.
    """

    updates: list[UpdateInfo]
    due: int  # models that needed asking about
    checked: int  # of those, how many Civitai answered for
    not_listed: list[int] = field(default_factory=list)  # asked, but Civitai lists them no more
    unchecked: list[int] = field(default_factory=list)  # still to ask: a request failed
    errors: list[str] = field(default_factory=list)  # one line per failed request
    stopped_by: CivdeskError | None = None  # why the check ended early (rate limit, network)
    removed: int = 0  # library models removed from Civitai: skipped, they offer no update

    @property
    def complete(self) -> bool:
        return not self.unchecked

    def problem(self) -> str | None:
        """One line about what is missing from this check, or None when nothing is."""
        if self.complete:
            return None
        reason = str(self.stopped_by) if self.stopped_by else (self.errors[-1] if self.errors
                                                                else "a request failed")
        count = len(self.unchecked)
        noun = "model" if count == 1 else "models"
        return f"{count} of {self.due} {noun} could not be checked for updates: {reason}"


class UpdateChecker:
    """Checks the library's models against Civitai, batch by batch."""

    def __init__(
        self,
        library: Library,
        client: CivitaiClient,
        *,
        batch_size: int = BATCH_SIZE,
        max_age: timedelta = DEFAULT_MAX_AGE,
        clock: Clock = _utc_now,
        concurrency: int = CONCURRENCY,
    ) -> None:
        """``concurrency``: requests in flight at once (1: one after the other)."""
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.library = library
        self.client = client
        self.concurrency = concurrency
        self.batch_size = batch_size
        self.max_age = max_age
        self.clock = clock

    def due_models(self, *, force: bool = False) -> list[int]:
        """Ids of library models not asked about within ``max_age`` (all of them if forced)."""
        now = self.clock()
        # With force, "older than a moment from now" takes in models checked this very second.
        cutoff = now + timedelta(seconds=1) if force else now - self.max_age
        return self.library.models_due_for_update_check(
            older_than=cutoff, removed_older_than=now - REMOVED_RECHECK)

    def check(
        self,
        *,
        force: bool = False,
        progress: UpdateProgress | None = None,
        cancel: threading.Event | None = None,
    ) -> UpdateCheck:
        """Ask Civitai about every due model and store what it says.

        A failed request does not raise: its models end up in :attr:`UpdateCheck.unchecked`
        and the next check asks about them again. A set ``cancel`` ends the check between
        two batches, with the rest unchecked.
        """
        due = self.due_models(force=force)
        checked = 0
        not_listed: list[int] = []
        unchecked: list[int] = []
        errors: list[str] = []
        stopped_by: CivdeskError | None = None
        batches = [due[i:i + self.batch_size] for i in range(0, len(due), self.batch_size)]
        def clone() -> CivitaiClient:
            client = self.client.clone()
            client.stop = cancel  # a cancel also ends a wait on a rate limit
            return client

        clients: ThreadClients[CivitaiClient] = ThreadClients(clone)
        # Up to `concurrency` batches are asked for ahead; answers are stored in batch
        # order, so progress, the stop on a rate limit and a cancel behave as one at a time.
        asked: deque[Future[list[Model]]] = deque()
        with ThreadPoolExecutor(max_workers=self.concurrency,
                                thread_name_prefix="civdesk-updates") as pool:

            def ask(batch: Sequence[int]) -> list[Model]:
                return clients.get().get_models(batch)

            def ask_ahead(upto: int) -> None:
                while len(asked) < self.concurrency and upto + len(asked) < len(batches):
                    asked.append(pool.submit(ask, batches[upto + len(asked)]))

            try:
                for index, batch in enumerate(batches):
                    if cancel is not None and cancel.is_set():
                        unchecked.extend(i for rest in batches[index:] for i in rest)
                        break
                    ask_ahead(index)
                    try:
                        models = asked.popleft().result()
                    except Cancelled:
                        unchecked.extend(i for rest in batches[index:] for i in rest)
                        break
                    except (RateLimited, NetworkError) as exc:
                        # The client has already waited and retried; more requests would
                        # fail alike (those already asked are dropped with the rest).
                        log.warning("Update check stopped: %s", exc)
                        errors.append(str(exc))
                        stopped_by = exc
                        unchecked.extend(i for rest in batches[index:] for i in rest)
                        break
                    except CivitaiError as exc:
                        # One bad answer (a 500, a malformed page) should not cost the
                        # other batches.
                        log.warning("Update check of %d models failed: %s", len(batch), exc)
                        errors.append(str(exc))
                        unchecked.extend(batch)
                    else:
                        answered = self._store(batch, models)
                        checked += len(batch)
                        not_listed.extend(i for i in batch if i not in answered)
                    if progress is not None:
                        progress(min(len(due), (index + 1) * self.batch_size), len(due))
            finally:
                for future in asked:  # not started yet: never sent; running: left to end
                    future.cancel()
                pool.shutdown(wait=True)
                clients.close()
        return UpdateCheck(
            updates=self.library.available_updates(),
            due=len(due),
            checked=checked,
            not_listed=not_listed,
            unchecked=unchecked,
            errors=errors,
            stopped_by=stopped_by,
            removed=self.library.removed_models_on_disk(),
        )

    def _store(self, batch: Sequence[int], models: list[Model]) -> set[int]:
        """Store one batch's answer and its check time; the ids Civitai answered.

        A model Civitai did not list (removed, hidden or taken down) gets its check time
        too, or every run would ask again; the latest version we knew stays as it was.
        """
        self.library.store_checked_models(models, batch, self.clock())
        return {model.id for model in models}
