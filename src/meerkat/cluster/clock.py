"""Clocks: the system clock for production and a manual clock for tests.

Every timer in the cluster layer (heartbeats, call timeouts, discovery intervals,
leader-op backoff) goes through a `Clock`, so tests can drive time explicitly.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable
from typing import Protocol, TypeVar

T = TypeVar("T")


class Clock(Protocol):
    """Monotonic time and sleeping."""

    def monotonic(self) -> float: ...

    async def sleep(self, delay: float) -> None: ...


class SystemClock:
    """The event loop's monotonic clock."""

    def monotonic(self) -> float:
        return asyncio.get_running_loop().time()

    async def sleep(self, delay: float) -> None:
        await asyncio.sleep(max(delay, 0.0))


class ManualClock:
    """A clock that moves only when a test calls `advance`."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def monotonic(self) -> float:
        return self._now

    async def sleep(self, delay: float) -> None:
        if delay <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (self._now + delay, next(self._seq), fut))
        await fut

    def next_deadline(self) -> float | None:
        """The earliest pending timer (cancelled sleepers included), if any."""
        while self._timers and self._timers[0][2].done():
            heapq.heappop(self._timers)
        return self._timers[0][0] if self._timers else None

    def advance(self, delta: float) -> None:
        """Move time forward and wake every sleeper whose deadline passed."""
        self._now += delta
        while self._timers and self._timers[0][0] <= self._now:
            _, _, fut = heapq.heappop(self._timers)
            if not fut.done():
                fut.set_result(None)


async def with_timeout(clock: Clock, aw: Awaitable[T], timeout: float | None) -> T:
    """Await `aw`; raise TimeoutError if `clock` says `timeout` passed first."""
    if timeout is None:
        return await aw
    task = asyncio.ensure_future(aw)
    timer = asyncio.ensure_future(clock.sleep(timeout))
    try:
        await asyncio.wait({task, timer}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        timed_out = not task.done()
        timer.cancel()
        task.cancel()
        await asyncio.gather(task, timer, return_exceptions=True)
    if timed_out:
        raise TimeoutError
    return task.result()
