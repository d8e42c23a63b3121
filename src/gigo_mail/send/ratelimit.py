"""One rate limit for a whole run, across every connection, that backs off when the
server throttles and speeds up again once it stops.

``--rate 14`` means 14 message starts per second in total, however many connections
carry them: each start reserves the next slot 1/rate seconds after the previous one,
so idle time never accumulates into a burst.

Throttling replies (421, 450, 451, 454) halve the current rate once they come as a
storm: ``storm`` of them within a second, making up at least half of that second's
replies. A single greylisted recipient, or a flaky server failing a fraction of
messages at random, is no reason to slow everyone down. At most once per second,
since every connection sees the same storm at once. With no configured rate, the
first storm starts from the throughput measured just before it. After a quiet spell
the rate grows by a quarter each second until it is back at the configured rate, or,
with none, back above the throughput that got throttled, at which point the limit is
lifted again.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable

DECREASE_EVERY = 1.0  # seconds: one halving per throttling storm
INCREASE_EVERY = 1.0  # seconds between increases once recovering
MEASURE_WINDOW = 0.5  # seconds per throughput sample


class RateLimiter:
    """Spaces message starts; call ``on_throttle`` / ``on_success`` with the replies."""

    def __init__(self, rate: float = 0.0, *, floor: float = 0.5, recover_after: float = 5.0, storm: int = 3,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        if rate < 0 or math.isnan(rate):
            raise ValueError("rate must be >= 0 (0 = unlimited)")
        self.ceiling: float | None = rate or None
        self.rate: float | None = self.ceiling
        self.floor = min(floor, rate) if rate else floor
        self.recover_after = recover_after
        self.throttles = 0
        self.storm = storm
        self._window: deque[tuple[float, bool]] = deque()  # (time, throttled) of the last second
        self._window_throttles = 0
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0
        self._last_throttle = -math.inf
        self._last_increase = -math.inf
        self._throttled_at: float | None = None  # measured rate when an unlimited run got throttled
        self._window_start = clock()
        self._window_count = 0
        self.measured = 0.0  # recent throughput, messages per second

    async def acquire(self) -> None:
        """Wait for this message's slot."""
        now = self._clock()
        self._window_count += 1
        if now - self._window_start >= MEASURE_WINDOW:
            self.measured = self._window_count / (now - self._window_start)
            self._window_start, self._window_count = now, 0
        if self.rate is None:
            return
        slot = max(now, self._next)
        self._next = slot + 1.0 / self.rate
        if slot > now:
            await self._sleep(slot - now)

    def on_throttle(self) -> None:
        """The server said slow down: halve the rate (once per storm)."""
        now = self._clock()
        self.throttles += 1
        self._note(now, True)
        if self._window_throttles < self.storm or 2 * self._window_throttles < len(self._window):
            return  # a lone 4xx (greylisting, one busy mailbox) or random failures are not a storm
        recent = now - self._last_throttle < DECREASE_EVERY
        self._last_throttle = now
        if recent:
            return
        if self.rate is None:
            elapsed = now - self._window_start
            current = self._window_count / elapsed if elapsed > 0.05 else 0.0
            self._throttled_at = max(self.measured, current, self.floor * 2)
            base = self._throttled_at
        else:
            base = self.rate
        self.rate = max(self.floor, base / 2)
        # a halved rate applies from now on, not after slots reserved at the old rate
        self._next = min(self._next, now + 1.0 / self.rate)

    def _note(self, now: float, throttled: bool) -> None:
        """Keep the last second of replies, to tell a storm from scattered failures."""
        window = self._window
        window.append((now, throttled))
        self._window_throttles += throttled
        while window and now - window[0][0] > DECREASE_EVERY:
            self._window_throttles -= window.popleft()[1]

    def on_success(self) -> None:
        """A message went through: after a quiet spell, speed up step by step."""
        now = self._clock()
        self._note(now, False)
        if self.rate is None or self.rate == self.ceiling:
            return
        if now - self._last_throttle < self.recover_after or now - self._last_increase < INCREASE_EVERY:
            return
        self._last_increase = now
        rate = self.rate * 1.25
        if self.ceiling is not None:
            self.rate = min(rate, self.ceiling)
        elif self._throttled_at is not None and rate >= self._throttled_at:
            self.rate = None  # back where we were before the throttling: unlimited again
        else:
            self.rate = rate
