"""The adaptive rate limiter, on a deterministic clock: spacing, throttling storms, recovery."""

from __future__ import annotations

import asyncio

import pytest

from gigo_mail.send.ratelimit import RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_rate_limiter_spaces_starts_across_callers() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10, clock=clock, sleep=clock.sleep)

    async def go() -> None:
        for _ in range(5):
            await limiter.acquire()

    asyncio.run(go())
    assert clock.now == pytest.approx(0.4)


def test_rate_limiter_halves_on_throttle_and_recovers() -> None:
    clock = FakeClock()
    limiter = RateLimiter(40, clock=clock, sleep=clock.sleep, recover_after=5, storm=2)
    limiter.on_throttle()
    assert limiter.rate == 40  # one 4xx is not a storm
    limiter.on_throttle()
    limiter.on_throttle()  # same storm: counted once
    assert limiter.rate == 20
    clock.now += 1.5
    limiter.on_throttle()
    clock.now += 0.1
    limiter.on_throttle()
    assert limiter.rate == 10
    limiter.on_success()
    assert limiter.rate == 10  # not quiet long enough yet
    for _ in range(20):
        clock.now += 1.0
        limiter.on_success()
    assert limiter.rate == 40  # back at the ceiling, not above


def test_unlimited_run_gets_a_limit_when_throttled_and_loses_it_later() -> None:
    clock = FakeClock()
    limiter = RateLimiter(0, clock=clock, sleep=clock.sleep, recover_after=2)

    async def burst() -> None:
        for _ in range(100):
            await limiter.acquire()
            clock.now += 0.01  # 100 msg/s

    asyncio.run(burst())
    limiter.on_throttle()
    limiter.on_throttle()
    limiter.on_throttle()
    assert limiter.rate is not None and 40 <= limiter.rate <= 60
    for _ in range(10):
        clock.now += 1.0
        limiter.on_success()
    assert limiter.rate is None


def test_scattered_failures_are_not_a_storm() -> None:
    """A flaky server failing 30 % at random (chaos rehearsal) must not crush the rate."""
    clock = FakeClock()
    limiter = RateLimiter(100, clock=clock, sleep=clock.sleep, storm=3)
    for i in range(300):
        clock.now += 0.005
        if i % 10 in (0, 4, 7):  # 30 % throttled, never the majority of a second
            limiter.on_throttle()
        else:
            limiter.on_success()
    assert limiter.rate == 100
    for _ in range(110):  # then the server really throttles: every reply a 451, for half a second
        clock.now += 0.005
        limiter.on_throttle()
    assert limiter.rate is not None and limiter.rate <= 50
