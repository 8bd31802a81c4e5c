"""Where a latency tail comes from: timestamped slow messages, pauses and stalls.

The generator (`xmppload.py --timeline FILE`) records every measured message slower than
`SLOW_NS` (by its send time), its own garbage collections and the times its pacing loop woke
up late; `bench/pauseprobe.py` records the server's collections and event-loop stalls. All
lines carry CLOCK_MONOTONIC seconds (`time.perf_counter`), so one file per side can be laid
over the other: `python bench/timeline.py GEN_FILE [SERVER_FILE]` prints the slow messages
per second of the run and which pauses overlap them.

Line format: `<kind> <start_s> <ms> [extra]`. Kinds: `slow` (send time, latency), `gcgen`
(a generator collection: start, duration, generation), `pace` (the generator's 1 ms pacing
sleep took longer: start, length), `objects` (objects the generator's collector tracks, at the
start and end of the window; the third field is a count, not ms), `lag` (a server timer fired
late: when it was due, how late, the loop thread's CPU ms meanwhile), `gc` (a server
collection; the probe writes `gc <generation> <start> <ms> <collected>`).
"""

from __future__ import annotations

import gc
import sys
import time
from collections import Counter
from typing import Any

SLOW_NS = 5_000_000
"""A message at least this slow (5 ms) goes on the timeline."""


class Timeline:
    """One generator process's slow messages, GC pauses and pacing-loop stalls."""

    def __init__(self) -> None:
        self.lines: list[str] = [self._objects()]
        self._gc_start = 0.0
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        now = time.perf_counter()
        if phase == "start":
            self._gc_start = now
        else:
            ms = (now - self._gc_start) * 1e3
            self.lines.append(f"gcgen {self._gc_start:.4f} {ms:.3f} {info['generation']}")

    def slow(self, sent_ns: int, latency_ns: int) -> None:
        """A measured message that took `latency_ns` from its send time `sent_ns`."""
        self.lines.append(f"slow {sent_ns / 1e9:.4f} {latency_ns / 1e6:.3f}")

    def lag(self, before_ns: int, slept_ns: int) -> None:
        """The pacing loop asked for 1 ms of sleep at `before_ns` and got `slept_ns`."""
        self.lines.append(f"pace {before_ns / 1e9:.4f} {slept_ns / 1e6:.3f}")

    @staticmethod
    def _objects() -> str:
        """How many objects the collector tracks now (frozen ones are not counted)."""
        return f"objects {time.perf_counter():.4f} {len(gc.get_objects())} {gc.get_freeze_count()}"

    def write(self, path: str) -> None:
        """Append the lines to `path` (several generator processes may share it) and stop."""
        gc.callbacks.remove(self._on_gc)
        self.lines.append(self._objects())
        with open(path, "a") as out:
            out.write("".join(line + "\n" for line in self.lines))


def read(path: str) -> list[tuple[str, float, float, str]]:
    """(kind, start seconds, milliseconds, extra) per line of a timeline file."""
    rows = []
    with open(path) as f:
        for line in f:
            kind, start, ms, *extra = line.split()
            if kind == "garbage":  # the probe's SIGUSR2 dump, not a pause
                continue
            if kind == "gc":  # the probe writes: gc <generation> <start> <ms> <collected>
                kind, start, ms, extra = "gc", ms, extra[0], [start]
            rows.append((kind, float(start), float(ms), " ".join(extra)))
    return rows


def summary(rows: list[tuple[str, float, float, str]], bucket: float = 1.0) -> str:
    """Slow messages per `bucket` seconds, worst latency, and the pauses in that bucket."""
    slow = [r for r in rows if r[0] == "slow"]
    if not slow:
        return "no slow messages"
    t0 = min(r[1] for r in slow)
    counts: Counter[int] = Counter()
    worst: dict[int, float] = {}
    for _, start, ms, _ in slow:
        b = int((start - t0) // bucket)
        counts[b] += 1
        worst[b] = max(worst.get(b, 0.0), ms)
    pauses: dict[int, list[str]] = {}
    for kind, start, ms, extra in rows:
        if kind not in ("slow", "objects") and ms >= 2.0 and start >= t0:
            label = f"{kind}{extra and ':' + extra} {ms:.0f}ms@{start - t0:.2f}"
            pauses.setdefault(int((start - t0) // bucket), []).append(label)
    out = [f"{'t(s)':>6} {'slow':>6} {'worst ms':>9}  pauses >= 2 ms"]
    for b in sorted(set(counts) | set(pauses)):
        seen = " ".join(pauses.get(b, []))
        out.append(f"{b * bucket:6.1f} {counts[b]:6d} {worst.get(b, 0):9.1f}  {seen}")
    return "\n".join(out)


if __name__ == "__main__":
    merged = [row for path in sys.argv[1:] for row in read(path)]
    print(summary(merged))
