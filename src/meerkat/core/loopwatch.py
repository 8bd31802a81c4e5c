"""`LoopMonitor`: notices when the node's event loop stalls, and says so in the log.

Everything a node does runs on one event loop: while one callback runs, nothing else does,
no timer fires (cluster heartbeats, query deadlines) and no socket is read. The monitor
sleeps `TICK` at a time; when it wakes up late, the loop was busy, or the process waited
for a CPU, for that long. A stall of at least `INFO_MS` is logged as
``event_loop_stalled ms=<late> cpu_ms=<cpu> gc_ms=<gc>`` (info; warning from `WARNING_MS`,
a third of the time after which cluster peers give up on a silent node), where ``cpu_ms`` is
what the loop's thread used since the monitor fell asleep (near ``ms``: the loop was
busy; far less: the process waited for a core) and ``gc_ms`` the garbage collector's share
of it. `statistics()` keeps the longest stall and how many there were.

The clock is the real one (`time.perf_counter`), never a node's test clock: what is
measured is the loop itself. One wake-up per `TICK`, no other cost.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from typing import Any

log = logging.getLogger(__name__)

TICK = 0.1
"""Seconds the monitor sleeps between looks at the clock."""
INFO_MS = 100.0
"""Stalls at least this long are logged (info)."""
WARNING_MS = 1000.0
"""Stalls at least this long are logged as warnings."""


class LoopMonitor:
    """Measures the event loop's stalls while `run()` runs (a node-owned task)."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.longest_ms = 0.0
        """The longest stall seen (wall-clock ms)."""
        self.longest_cpu_ms = 0.0
        """The loop thread's CPU during the monitor's sleep that saw the longest stall."""
        self.stalls = 0
        """Stalls of at least `INFO_MS`."""
        self._gc_seconds = 0.0
        self._gc_started = 0.0

    async def run(self) -> None:
        gc.callbacks.append(self._on_gc)
        try:
            while True:
                due = time.perf_counter() + TICK
                cpu, gc_before = time.thread_time(), self._gc_seconds
                await asyncio.sleep(TICK)
                late_ms = (time.perf_counter() - due) * 1e3
                if late_ms >= INFO_MS:
                    cpu_ms = (time.thread_time() - cpu) * 1e3
                    self._stalled(late_ms, cpu_ms, (self._gc_seconds - gc_before) * 1e3)
        finally:
            gc.callbacks.remove(self._on_gc)

    def _stalled(self, late_ms: float, cpu_ms: float, gc_ms: float) -> None:
        self.stalls += 1
        if late_ms > self.longest_ms:
            self.longest_ms, self.longest_cpu_ms = late_ms, cpu_ms
        level = logging.WARNING if late_ms >= WARNING_MS else logging.INFO
        log.log(
            level,
            "event_loop_stalled node=%s ms=%.0f cpu_ms=%.0f gc_ms=%.0f",
            self.node, late_ms, cpu_ms, gc_ms,
        )  # fmt: skip

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        now = time.perf_counter()
        if phase == "start":
            self._gc_started = now
        else:
            self._gc_seconds += now - self._gc_started

    def statistics(self) -> dict[str, float]:
        """The longest stall (ms, and the CPU ms around it) and the number of stalls."""
        return {
            "longest_ms": round(self.longest_ms, 1),
            "longest_cpu_ms": round(self.longest_cpu_ms, 1),
            "stalls": self.stalls,
        }
