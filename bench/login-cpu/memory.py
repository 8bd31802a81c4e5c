#!/usr/bin/env python3
"""Where an idle connection's memory goes (issue 6): RSS, malloc and Python objects per conn.

Runs this checkout's server *in this process* (uvloop, the config and users of place.py:
run `measure.py --setup login --runs 1` once first), warms it with a few logins, then holds
`--clients` idle connections made by xmppload (STARTTLS + SCRAM-SHA-256 + bind + presence)
and prints, per held connection: RSS growth, glibc malloc growth (mallinfo2: heap in use,
mmapped), live Python objects by type, and with `--trace` the top tracemalloc lines (Python
allocations and expat's, which pyexpat makes through PyObject_Malloc; not OpenSSL's).
tracemalloc's own bookkeeping inflates RSS, so take RSS figures from a run without it.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import os
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BENCH = HERE.parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(HERE))
import place  # noqa: E402

from meerkat import heap  # noqa: E402

CACHE = place.OUT / "scram.json"


def pymalloc() -> dict[str, int]:
    """pymalloc's figures (sys._debugmallocstats, which writes to fd 2): arenas, blocks."""
    import re
    import tempfile

    with tempfile.TemporaryFile() as tmp:
        saved = os.dup(2)
        os.dup2(tmp.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        text = tmp.read().decode()
    out = {}
    for key, pattern in (
        ("arenas", r"(\d[\d,]*) arenas \* \d+ bytes/arena\s+=\s+([\d,]+)"),
        ("allocated", r"# bytes in allocated blocks\s+=\s+([\d,]+)"),
        ("available", r"# bytes in available blocks\s+=\s+([\d,]+)"),
        ("unused_pools", r"unused pools \* \d+ bytes\s+=\s+([\d,]+)"),
    ):
        m = re.search(pattern, text)
        out[key] = int(m.groups()[-1].replace(",", "")) if m else 0
    return out


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def type_counts() -> collections.Counter[str]:
    return collections.Counter(type(o).__name__ for o in gc.get_objects())


def sample(trace: bool) -> dict[str, Any]:
    gc.collect()
    return {
        "rss": rss_kib(),
        "malloc": heap.figures() or {},
        "pymalloc": pymalloc(),
        "types": type_counts(),
        "snap": tracemalloc.take_snapshot() if trace else None,
    }


async def generator(args: list[str]) -> asyncio.subprocess.Process:
    cmd = ["taskset", "-c", "0", sys.executable, str(BENCH / "xmppload.py"), *args]
    return await asyncio.create_subprocess_exec(
        *cmd, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )


async def run(opts: argparse.Namespace) -> None:
    from meerkat.config import load_config
    from meerkat.modules import DEFAULT_MODULES, MODULES
    from meerkat.server import Node, tune_gc

    path = place.config()
    if opts.tls == "none":  # the STARTTLS listener without TLS
        text = path.read_text().replace('shaper = "none"', 'shaper = "none"\ntls.mode = "none"', 1)
        path = path.with_name("meerkat-notls.toml")
        path.write_text(text)
    node = Node(load_config(path, MODULES, DEFAULT_MODULES))
    await node.start()
    tune_gc()
    common = ["--port", str(place.PORT), "--scram-cache", str(CACHE), "--users", "2000"]
    common += ["--tls", opts.tls, "--timeout", "120"]
    warm = await generator([*common, "--scenario", "login", "--clients", "100"])
    await warm.wait()
    await asyncio.sleep(1)
    if opts.trace:
        tracemalloc.start(opts.frames)
    before = sample(opts.trace)
    live = node._c2s_node.live  # type: ignore[union-attr]
    proc = await generator(
        [*common, "--scenario", "idle", "--clients", str(opts.clients), "--hold", "600"]
    )
    deadline = time.monotonic() + 600
    while len(live) < opts.clients and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    await asyncio.sleep(opts.settle)
    after = sample(opts.trace)
    n = len(live)
    report(before, after, n, opts)
    proc.terminate()
    await proc.wait()
    await node.stop()


def report(before: dict[str, Any], after: dict[str, Any], n: int, opts: argparse.Namespace) -> None:
    print(f"held {n} connections ({opts.tls})")
    print(f"RSS per conn: {(after['rss'] - before['rss']) / n:.2f} KiB")
    for key in ("heap_used", "heap_arena", "mmapped"):
        delta = after["malloc"][key] - before["malloc"][key]
        print(f"malloc {key} per conn: {delta / n / 1024:.2f} KiB")
    for key in ("arenas", "allocated", "available", "unused_pools"):
        delta = after["pymalloc"][key] - before["pymalloc"][key]
        print(f"pymalloc {key} per conn: {delta / n / 1024:.2f} KiB")
    diff = after["types"] - before["types"]
    print("objects per conn (top):")
    for name, count in diff.most_common(opts.top):
        print(f"  {count / n:7.2f}  {name}")
    if opts.trace:
        group = opts.group or ("traceback" if opts.frames > 1 else "lineno")
        stats = after["snap"].compare_to(before["snap"], group)
        total = sum(s.size_diff for s in stats)
        print(f"tracemalloc per conn: {total / n / 1024:.2f} KiB; top lines:")
        for stat in stats[: opts.top]:
            print(f"  {stat.size_diff / n:8.0f} B  {stat.count_diff / n:6.2f} blocks")
            for line in stat.traceback.format()[-2 * opts.frames :]:
                print(f"      {line.strip()}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--clients", type=int, default=2000)
    p.add_argument("--tls", default="starttls", choices=["starttls", "direct", "none"])
    p.add_argument("--trace", action="store_true", help="tracemalloc (inflates RSS)")
    p.add_argument("--frames", type=int, default=1)
    p.add_argument("--group", default="", help="tracemalloc grouping: filename, lineno")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--settle", type=float, default=3.0)
    opts = p.parse_args()
    heap.limit_arenas()
    import uvloop

    os.chdir(ROOT)
    uvloop.run(run(opts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
