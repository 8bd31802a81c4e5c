"""Hibernation of idle c2s sessions (as ejabberd's and MongooseIM's `hibernate_after`).

Every `SWEEP` seconds one node-wide task asks each live session whether it got input since
the previous sweep (`C2SSession.idle_tick`); one that did not drops its XML parser (about
14 KiB with expat's buffers), which the next input rebuilds. Routed stanzas need no parser,
so a hibernated session still delivers at once. Nothing is added to the hot path but one
flag per chunk read, and no session has a timer of its own.

Freed memory is only worth something if the process can give it back or reuse it: after a
sweep that released parsers, glibc is asked to return free heap pages (`malloc_trim`), at
most once every `TRIM_EVERY` seconds: it walks every free chunk of the heap (measured 17-28
ms with 45,000 holes in an 800 MB heap), a pause of the whole loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Protocol

from ..heap import trimmer

SWEEP = 5.0
"""Seconds between sweeps: a session quiet for one whole period (5-10 s) hibernates."""
TRIM_EVERY = 60.0
"""Least seconds between two heap trims."""


class Hibernating(Protocol):
    def idle_tick(self) -> bool:
        """Called once per sweep; True when the session hibernated now."""
        ...


def sweep(sessions: Iterable[Hibernating]) -> int:
    """One sweep: how many sessions hibernated."""
    return sum(1 for session in list(sessions) if session.idle_tick())


async def hibernate_forever(
    sessions: Iterable[Hibernating],
    period: float = SWEEP,
    trim_every: float = TRIM_EVERY,
    trim: Callable[[], object] | None = None,
) -> None:
    """Sweep `sessions` (a live set) every `period` seconds; trim the heap (`trim`, default
    glibc's) after releases, at most every `trim_every` seconds."""
    trim = trim or trimmer()
    loop = asyncio.get_running_loop()
    released, trimmed_at = 0, loop.time()
    while True:
        await asyncio.sleep(period)
        released += sweep(sessions)
        if released and loop.time() - trimmed_at >= trim_every:
            trim()
            released, trimmed_at = 0, loop.time()
