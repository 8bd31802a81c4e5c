"""Measurement helpers for the load generator: latency histograms and /proc readers.

The histogram is log-linear (64 sub-buckets per power of two, under 1.6 % error), sparse and
mergeable, so several generator processes can each record and the parent can combine them.
Process CPU comes from /proc/<pid>/stat (user + system ticks, all threads), memory from
/proc/<pid>/status VmRSS. A server is a process tree (Meerkat with `general.workers = N` is a
supervisor and N worker processes): its CPU and RSS are the sums over the PID and all its
descendants, found by parent PID at every sample (a restarted worker is counted from then on).
Linux only.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = [
    "CpuSample",
    "Histogram",
    "cpu_sample",
    "cpu_shares",
    "median",
    "process_cpu_seconds",
    "process_tree",
    "rss_kib",
    "tree_cpu_seconds",
    "tree_rss_kib",
]

_SUB_BITS = 6
_SUB = 1 << _SUB_BITS
_HALF = _SUB >> 1
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _index(value: int) -> int:
    if value < _SUB:
        return max(value, 0)
    shift = value.bit_length() - _SUB_BITS
    return _SUB + (shift - 1) * _HALF + ((value >> shift) - _HALF)


def _midpoint(index: int) -> float:
    if index < _SUB:
        return float(index)
    shift, top = divmod(index - _SUB, _HALF)
    shift += 1
    return ((top + _HALF) << shift) + (1 << shift) / 2


@dataclass
class Histogram:
    """Counts of non-negative integer values (microseconds by convention)."""

    counts: dict[int, int] = field(default_factory=dict)
    total: int = 0
    minimum: int | None = None
    maximum: int | None = None
    sum: int = 0

    def record(self, value: int) -> None:
        """Add one value."""
        idx = _index(value)
        self.counts[idx] = self.counts.get(idx, 0) + 1
        self.total += 1
        self.sum += value
        if self.minimum is None or value < self.minimum:
            self.minimum = value
        if self.maximum is None or value > self.maximum:
            self.maximum = value

    def merge(self, other: Histogram) -> None:
        """Add every value of `other`."""
        for idx, count in other.counts.items():
            self.counts[idx] = self.counts.get(idx, 0) + count
        self.total += other.total
        self.sum += other.sum
        for bound in (other.minimum, other.maximum):
            if bound is not None:
                self.minimum = bound if self.minimum is None else min(self.minimum, bound)
                self.maximum = bound if self.maximum is None else max(self.maximum, bound)

    def percentile(self, p: float) -> float | None:
        """Approximate p-th percentile (0 < p <= 100); exact at the extremes; None if empty."""
        if not self.total or self.minimum is None or self.maximum is None:
            return None
        if p >= 100:
            return float(self.maximum)
        rank = max(1, math.ceil(p / 100 * self.total))
        seen = 0
        for idx in sorted(self.counts):
            seen += self.counts[idx]
            if seen >= rank:
                return min(max(_midpoint(idx), self.minimum), self.maximum)
        return float(self.maximum)

    def mean(self) -> float | None:
        """Exact mean, None if empty."""
        return self.sum / self.total if self.total else None

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly form (keys as strings)."""
        return {
            "counts": {str(k): v for k, v in self.counts.items()},
            "total": self.total,
            "min": self.minimum,
            "max": self.maximum,
            "sum": self.sum,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Histogram:
        """Inverse of `to_dict`."""
        counts = data.get("counts", {})
        assert isinstance(counts, dict)
        hist = cls({int(k): int(v) for k, v in counts.items()})
        hist.total = int(data.get("total", 0))  # type: ignore[call-overload]
        hist.minimum = data.get("min")  # type: ignore[assignment]
        hist.maximum = data.get("max")  # type: ignore[assignment]
        hist.sum = int(data.get("sum", 0))  # type: ignore[call-overload]
        return hist


def median(values: Iterable[float]) -> float | None:
    """Median of the values, None for none."""
    ordered = sorted(values)
    if not ordered:
        return None
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process (all threads), None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def rss_kib(pid: int) -> int | None:
    """VmRSS of a process in KiB, None if unavailable."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants (alive now), parents first."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        ppid = int(data[data.rindex(b")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    tree, index = [pid], 0
    while index < len(tree):
        tree.extend(children.get(tree[index], ()))
        index += 1
    return tree


def tree_cpu_seconds(pid: int) -> float | None:
    """CPU seconds of `pid` and its descendants; None if `pid` is gone."""
    if process_cpu_seconds(pid) is None:
        return None
    return sum(process_cpu_seconds(p) or 0.0 for p in process_tree(pid))


def tree_rss_kib(pid: int) -> int | None:
    """VmRSS of `pid` and its descendants in KiB; None if `pid` is gone."""
    if rss_kib(pid) is None:
        return None
    return sum(rss_kib(p) or 0 for p in process_tree(pid))


def _busy_seconds() -> float:
    """CPU seconds spent busy by the whole machine (all CPUs) since boot."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    steal = fields[7] if len(fields) > 7 else 0
    guest = sum(fields[8:10]) if len(fields) > 9 else 0  # already counted in user/nice
    return (sum(fields) - idle - steal - guest) / CLOCK_TICKS


@dataclass(frozen=True)
class CpuSample:
    """CPU seconds at one moment: wall clock, machine busy time, and per watched process."""

    wall: float
    busy: float
    server: float | None
    generator: float


def cpu_sample(wall: float, server_pid: int | None, generator_pids: Iterable[int]) -> CpuSample:
    """Sample CPU counters now (`wall` from time.monotonic()); the server is a process tree."""
    server = tree_cpu_seconds(server_pid) if server_pid else None
    generator = sum(process_cpu_seconds(pid) or 0.0 for pid in generator_pids)
    return CpuSample(wall, _busy_seconds(), server, generator)


def cpu_shares(start: CpuSample, end: CpuSample) -> dict[str, float | None]:
    """Shares of one core (100 = a whole core) used between two samples."""
    wall = end.wall - start.wall
    if wall <= 0:
        return {"server_cpu_pct": None, "gen_cpu_pct": None, "other_cpu_pct": None}
    server = None
    if start.server is not None and end.server is not None:
        server = end.server - start.server
    gen = end.generator - start.generator
    other = end.busy - start.busy - gen - (server or 0.0)
    return {
        "server_cpu_pct": None if server is None else round(100 * server / wall, 1),
        "gen_cpu_pct": round(100 * gen / wall, 1),
        "other_cpu_pct": round(max(other, 0.0) * 100 / wall, 1),
    }
