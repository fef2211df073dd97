"""How fast civdesk may ask a Civitai host: one :class:`Governor` per host, shared by every
thread and every kind of work (scan lookups, update checks, thumbnails, browsing).

Civitai's edge answers 429 when a client asks too fast, mostly without ``Retry-After``; its
guide says back off from about 1 s up to 30 s. A 429 seen by any caller therefore slows
all of them: nobody sends before the pause ends (``Retry-After`` when given, else a backoff
that doubles per 429 up to the ceiling), and after it requests are spaced out. Each answer
that is not a 429 shrinks the spacing a little, so the rate recovers gradually (AIMD:
multiplicative decrease, gradual increase) instead of hitting the limit again at once.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]
Sleep = Callable[[float], None]

#: Longest single sleep while waiting a turn: a cancel or a shorter pause is seen soon.
WAIT_STEP = 0.5


@dataclass(frozen=True)
class RatePolicy:
    """The figures of a governor (seconds)."""

    #: The first pause after a 429 without Retry-After; doubles per 429 up to ``ceiling``.
    base: float = 1.0
    ceiling: float = 30.0
    #: A Retry-After longer than this is not believed further.
    max_retry_after: float = 60.0
    #: Each answer that is not a 429 multiplies the spacing by this.
    recover: float = 0.8


@dataclass(frozen=True)
class GovernorState:
    """What a governor is doing now, for a status line."""

    host: str
    #: Seconds until requests may go again (0: not paused).
    resume_in: float
    #: Seconds kept between two requests (0: full speed).
    spacing: float
    #: 429 answers seen so far.
    rate_limits: int

    @property
    def slowed(self) -> bool:
        return self.resume_in > 0 or self.spacing > 0

    def message(self) -> str:
        """One sentence for the window, empty when nothing is slowed down."""
        if self.resume_in > 0:
            return (f"Civitai is rate limiting: slowed down, resuming in "
                    f"{math.ceil(self.resume_in)} s")
        if self.spacing > 0:
            return "Civitai is rate limiting: slowed down, speeding up again"
        return ""


class Governor:
    """The pace of requests to one host. Thread-safe; ``clock`` is injectable for tests."""

    def __init__(self, host: str, policy: RatePolicy | None = None, *,
                 clock: Clock = time.monotonic) -> None:
        self.host = host
        self.policy = policy or RatePolicy()
        self.clock = clock
        self._lock = threading.Lock()
        self._not_before = -math.inf  # nobody sends before this
        self._next_slot = -math.inf  # the earliest start of the next request when spaced
        self._spacing = 0.0  # seconds between two request starts (0: unthrottled)
        self._level = 0.0  # the current backoff ceiling (0: no 429 since recovery)
        self._limited_at = -math.inf  # when the last 429 was counted
        self.rate_limits = 0
        #: Requests let through (for tests and the bench).
        self.sent = 0

    # -- callers ---------------------------------------------------------------------------

    def delay(self) -> float:
        """Seconds to wait before a request may go; 0 means go now (the slot is taken)."""
        with self._lock:
            now = self.clock()
            start = max(now, self._not_before, self._next_slot)
            if start > now:
                return start - now
            if self._spacing > 0:
                self._next_slot = now + self._spacing
            self.sent += 1
            return 0.0

    def wait_turn(self, sleep: Sleep, stop: Callable[[], bool] | None = None) -> float:
        """Sleep until a request may go (in steps, so ``stop`` and new pauses are seen);
        the seconds slept."""
        slept = 0.0
        while (wait := self.delay()) > 0:
            if stop is not None and stop():
                break
            step = min(wait, WAIT_STEP)
            sleep(step)
            slept += step
        return slept

    def rate_limited(self, sent_at: float, retry_after: float | None = None) -> float:
        """Note a 429 for a request sent at ``sent_at`` (by :attr:`clock`); the pause now
        imposed on every caller.

        Several requests in flight when the limit hit answer 429 together: only one sent
        after the last counted 429 makes the backoff grow again.
        """
        policy = self.policy
        with self._lock:
            now = self.clock()
            self.rate_limits += 1
            if self._level == 0 or sent_at >= self._limited_at:
                self._level = (policy.base if self._level == 0
                               else min(policy.ceiling, self._level * 2))
                self._spacing = min(policy.ceiling, max(self._spacing * 2, policy.base))
                self._limited_at = now
            if retry_after is not None:
                pause = min(max(retry_after, 0.0), policy.max_retry_after)
            else:  # jitter on the upper half: callers don't all come back at once
                pause = self._level / 2 + random.uniform(0, self._level / 2)
            self._not_before = max(self._not_before, now + pause)
            return self._not_before - now

    def answered(self) -> None:
        """Note an answer that was not a 429: speed up a little."""
        with self._lock:
            if self._spacing == 0:
                return
            self._spacing *= self.policy.recover
            if self._spacing < self.policy.base / 16:
                self._spacing = self._level = 0.0
                self._next_slot = -math.inf

    def state(self) -> GovernorState:
        with self._lock:
            return GovernorState(self.host, max(0.0, self._not_before - self.clock()),
                                 self._spacing, self.rate_limits)


class Governors:
    """One :class:`Governor` per host, made on first use: share one of these between all
    the clients that should slow down together."""

    def __init__(self, policy: RatePolicy | None = None, *,
                 clock: Clock = time.monotonic) -> None:
        self.policy = policy or RatePolicy()
        self.clock = clock
        self._lock = threading.Lock()
        self._by_host: dict[str, Governor] = {}

    def __call__(self, host: str) -> Governor:
        with self._lock:
            governor = self._by_host.get(host)
            if governor is None:
                governor = self._by_host[host] = Governor(host, self.policy, clock=self.clock)
            return governor

    def states(self) -> list[GovernorState]:
        with self._lock:
            governors = list(self._by_host.values())
        return [g.state() for g in governors]

    def message(self) -> str:
        """The status sentence of the most slowed host, or ''."""
        slowed = [s for s in self.states() if s.slowed]
        if not slowed:
            return ""
        return max(slowed, key=lambda s: (s.resume_in, s.spacing)).message()


class SleepClock:
    """A clock that also counts the sleeps of an injected (test) sleep: a client given a
    fake sleep sees its pauses pass without waiting for them."""

    def __init__(self, sleep: Sleep) -> None:
        self._sleep = sleep
        self._slept = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        return time.monotonic() + self._slept

    def sleep(self, seconds: float) -> None:
        self._sleep(seconds)
        with self._lock:
            self._slept += seconds
