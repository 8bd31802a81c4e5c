"""Run Meerkat with a pause probe: every GC collection and event-loop stall goes to a log.

Usage (as the harness's server command): `bench/run.py --server-cmd
".venv/bin/python bench/pauseprobe.py"`. It writes `$PAUSEPROBE_LOG` (default
`bench/run/pauseprobe.log`), one line per event: `gc <gen> <start_s> <ms> <collected> <cpu_ms>` and
`lag <at_s> <ms> <cpu_ms>` (a 10 ms timer that fired more than 5 ms late, and the CPU time
the loop's thread used meanwhile: near `ms` + 10, the loop was busy; far less, the process
was waiting for a core). Times are monotonic seconds,
comparable with `xmppload.py --timeline` (both use CLOCK_MONOTONIC); `bench/timeline.py` reads both.

With `general.workers = N` the supervisor starts every worker through this probe too, each
writing `$PAUSEPROBE_LOG.w<k>` (worker k); the supervisor itself is not probed. SIGUSR2
to a probed process logs the cyclic garbage it holds, by type (`dump_garbage`).
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import sys
import time
from typing import Any, TextIO

TICK = 0.01
LATE = 0.005


def install_gc(out: TextIO) -> None:
    """Log each collection's generation, start and duration."""
    started: list[float] = [0.0, 0.0]

    def callback(phase: str, info: dict[str, Any]) -> None:
        now, cpu = time.perf_counter(), time.thread_time()
        if phase == "start":
            started[:] = now, cpu
        else:
            ms, cpu_ms = (now - started[0]) * 1e3, (cpu - started[1]) * 1e3
            gen, collected = info["generation"], info["collected"]
            out.write(f"gc {gen} {started[0]:.4f} {ms:.3f} {collected} {cpu_ms:.3f}\n")

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


def probe_workers(log: str) -> None:
    """A supervisor starts its workers through this file, each logging to `<log>.w<k>`."""
    import subprocess

    from meerkat import workers
    from meerkat.pdeathsig import die_with_parent

    def spawn(self: workers.Supervisor, index: int) -> None:
        env = {**os.environ, workers.ENV: str(index), "PAUSEPROBE_LOG": f"{log}.w{index}"}
        cmd = [sys.executable, os.path.abspath(__file__), *self.argv]
        self.procs[index] = subprocess.Popen(cmd, env=env, preexec_fn=die_with_parent())
        self.started[index] = time.monotonic()

    workers.Supervisor.spawn = spawn  # type: ignore[method-assign]


def dump_garbage(out: TextIO) -> None:
    """SIGUSR2: what only the cyclic collector could free now, by type (one full pass with
    `DEBUG_SAVEALL`, so it stalls the loop): `garbage <at_s> <count> <type>=<n> ...`."""
    from collections import Counter

    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        types = Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    top = " ".join(f"{name}={n}" for name, n in types.most_common(30))
    out.write(f"garbage {time.perf_counter():.4f} {sum(types.values())} {top}\n")


def main() -> None:
    log = os.environ.get("PAUSEPROBE_LOG", "bench/run/pauseprobe.log")
    if "MEERKAT_WORKER" not in os.environ:
        probe_workers(log)
    out = open(log, "a", buffering=1)  # noqa: SIM115
    install_gc(out)
    import uvloop

    tasks: list[asyncio.Task[None]] = []
    real_run = uvloop.run

    def new_loop() -> asyncio.AbstractEventLoop:
        loop = uvloop.new_event_loop()
        loop.call_soon(lambda: tasks.append(loop.create_task(watch_lag(out))))
        loop.add_signal_handler(signal.SIGUSR2, dump_garbage, out)
        return loop

    def run(coro: Any, **kwargs: Any) -> Any:
        return real_run(coro, loop_factory=new_loop, **kwargs)

    uvloop.run = run
    from meerkat.__main__ import main as meerkat_main

    sys.argv[0] = "meerkat"
    raise SystemExit(meerkat_main())


if __name__ == "__main__":
    main()
