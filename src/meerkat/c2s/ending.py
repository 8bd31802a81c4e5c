"""`EndingGate`: at most so many sessions of a node end at the same time.

When thousands of clients leave at once (a benchmark's teardown, a load balancer or a
network link dropping every connection), every session's task wakes in the same turn of
the event loop, and each runs its ending (hooks, the replicated delete of its session row,
its last activity, the unavailable presence to its contacts) in that turn and the next few,
all together. One turn then takes seconds of CPU: timers (the cluster heartbeats) and the
cluster links wait behind it, peers declare the node dead, database deadlines expire while
their answers sit unread, and the garbage collector's passes grow with the thousands of
half-finished endings alive at once (a young generation of hundreds of thousands of
objects: 300 ms passes).

A session takes a place here before it starts ending (`C2SSession.run`) and gives it back
when done; the others wait in order. The work of one loop turn is then bounded by `limit`
endings, whatever the number of clients that left, and the batching downstream (one
replicated delete per turn, group-committed last activity) still sees many endings per turn.
A waiting session is still registered: what is routed to it meanwhile is re-routed when it
ends, as for any ending session.
"""

from __future__ import annotations

import asyncio
from collections import deque
from types import TracebackType

ENDINGS_AT_ONCE = 128
"""Sessions of one node ending at the same time at most."""


class EndingGate:
    """A FIFO limit on concurrent session endings (`async with gate:`); O(1) per use, where
    `asyncio.Semaphore` scans its waiters at every acquire."""

    def __init__(self, limit: int = ENDINGS_AT_ONCE) -> None:
        if limit < 1:
            raise ValueError("limit must be positive")
        self.limit = limit
        self._ending = 0
        self._waiting: deque[asyncio.Future[None]] = deque()

    async def __aenter__(self) -> None:
        if self._ending < self.limit and not self._waiting:
            self._ending += 1
            return
        place = asyncio.get_running_loop().create_future()
        self._waiting.append(place)
        try:
            await place
        except asyncio.CancelledError:
            if place.done() and not place.cancelled():  # handed a place, then cancelled
                self._leave()
            raise

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._leave()

    def _leave(self) -> None:
        """Hand the place to the first session still waiting, else free it."""
        while self._waiting:
            place = self._waiting.popleft()
            if not place.done():
                place.set_result(None)
                return
        self._ending -= 1

    def statistics(self) -> dict[str, int]:
        """Sessions ending now and sessions waiting to."""
        return {"ending": self._ending, "waiting": sum(not p.done() for p in self._waiting)}
