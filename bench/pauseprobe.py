"""Run Meerkat with a pause probe: every GC collection and event-loop stall goes to a log.

Usage (as the harness's server command): `bench/run.py --server-cmd
".venv/bin/python bench/pauseprobe.py"`. It writes `$PAUSEPROBE_LOG` (default
`bench/run/pauseprobe.log`), one line per event: `gc <gen> <start_s> <ms> <collected>` and
`lag <at_s> <ms> <cpu_ms>` (a 10 ms timer that fired more than 5 ms late, and the CPU time
the loop's thread used meanwhile: near `ms` + 10, the loop was busy; far less, the process
was waiting for a core). Times are monotonic seconds,
comparable with `xmppload.py --timeline` (both use CLOCK_MONOTONIC); `bench/timeline.py` reads both.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import time
from typing import Any, TextIO

TICK = 0.01
LATE = 0.005


def install_gc(out: TextIO) -> None:
    """Log each collection's generation, start and duration."""
    started: list[float] = [0.0]

    def callback(phase: str, info: dict[str, Any]) -> None:
        now = time.perf_counter()
        if phase == "start":
            started[0] = now
        else:
            ms = (now - started[0]) * 1e3
            out.write(f"gc {info['generation']} {started[0]:.4f} {ms:.3f} {info['collected']}\n")

    gc.callbacks.append(callback)


async def watch_lag(out: TextIO) -> None:
    """Log when a short timer fires late: the loop was blocked (or the process descheduled)."""
    while True:
        due, cpu = time.perf_counter() + TICK, time.thread_time()
        await asyncio.sleep(TICK)
        late = time.perf_counter() - due
        if late > LATE:
            busy = (time.thread_time() - cpu) * 1e3
            out.write(f"lag {due:.4f} {late * 1e3:.3f} {busy:.3f}\n")


def main() -> None:
    out = open(os.environ.get("PAUSEPROBE_LOG", "bench/run/pauseprobe.log"), "a", buffering=1)  # noqa: SIM115
    install_gc(out)
    import uvloop

    tasks: list[asyncio.Task[None]] = []
    real_run = uvloop.run

    def new_loop() -> asyncio.AbstractEventLoop:
        loop = uvloop.new_event_loop()
        loop.call_soon(lambda: tasks.append(loop.create_task(watch_lag(out))))
        return loop

    def run(coro: Any, **kwargs: Any) -> Any:
        return real_run(coro, loop_factory=new_loop, **kwargs)

    uvloop.run = run
    from meerkat.__main__ import main as meerkat_main

    sys.argv[0] = "meerkat"
    raise SystemExit(meerkat_main())


if __name__ == "__main__":
    main()
