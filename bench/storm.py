"""A logout storm on a multi-worker Meerkat: N clients log in, then all drop at once.

The 100,000-connection scale run ends with every generator closing every session at the
same moment; this reproduces that teardown at a size a shared 2-core machine can repeat
(2-3 workers on PostgreSQL, 10,000-30,000 clients) and reports what it did to the server:

- event-loop stalls and GC passes per worker during the teardown (`bench/pauseprobe.py`
  runs every worker: a 10 ms timer that fires late is a stall);
- cluster links that broke (`cluster_link_heartbeat_timeout`, other link warnings) and
  everything logged at warning level or above, by event;
- the `last` table afterwards: one row per user means every last-activity write landed,
  and PostgreSQL's tuple counters (read after the server stopped, so every backend flushed
  them) say how often rows were written: inserts + updates = clients means exactly once.

Usage (ports from meerkat-scale.toml shifted by BENCH_PORT_OFFSET, schema
`meerkat_bench_storm` on the test suite's PostgreSQL, created and dropped here):

    BENCH_PORT_OFFSET=6000 .venv/bin/python bench/storm.py --clients 20000 --workers 3 \\
        --close abort [--tls none] [--server-cmd ...]

Results: a summary on stdout and a JSON line appended to bench/results/storm.jsonl.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import topframes
from db.targets import provision, server_settings
from loadstats import process_cpu_seconds
from servers import PORT_OFFSET, RUN_DIR, MeerkatServer, derive_config, ensure_certs

from meerkat.db import Database
from meerkat.pdeathsig import die_with_parent

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SCHEMA = "meerkat_bench_storm"
STALL_MS = 100.0
"""A stall at least this long is counted (the bound the fix aims for)."""


async def _sql(query: str) -> list[Any]:
    with tempfile.TemporaryDirectory() as workdir:
        db = await Database.open(server_settings("pgsql"), Path(workdir))
        try:
            return list(await db.fetchall(query))
        finally:
            await db.close()


async def _provision(users: int) -> None:
    await _sql(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    await _sql(f"CREATE SCHEMA {SCHEMA}")
    with tempfile.TemporaryDirectory() as workdir:
        await provision(server_settings("pgsql").replace(schema=SCHEMA), Path(workdir), users)


def last_rows() -> int:
    return int(asyncio.run(_sql(f"SELECT COUNT(*) FROM {SCHEMA}.last"))[0][0])


def last_writes() -> tuple[int, int]:
    """(inserted, updated) tuples of the `last` table since it was created."""
    rows = asyncio.run(
        _sql(
            "SELECT n_tup_ins, n_tup_upd FROM pg_stat_user_tables "
            f"WHERE schemaname = '{SCHEMA}' AND relname = 'last'"
        )
    )
    return (int(rows[0][0]), int(rows[0][1])) if rows else (0, 0)


def config(workers: int, pool: int, tls: str) -> Path:
    path = derive_config(
        BENCH / "meerkat-scale.toml", RUN_DIR / "meerkat" / "storm.toml", workers, ensure_certs()
    )
    text = path.read_text().replace("meerkat_bench_scale", SCHEMA)
    text = text.replace("meerkat-scale/var", "meerkat-storm/var")
    text = re.sub(r"(?m)^workers = 5.*$", f"workers = {pool}", text)
    if tls == "none":
        text = text.replace("[[listen.c2s]]\n", '[[listen.c2s]]\ntls.mode = "none"\n')
    path.write_text(text)
    return path


def stalls(log: Path, start: float, end: float) -> dict[str, Any]:
    """Stalls and collections a worker's probe logged between `start` and `end`; a stall's
    CPU is what the loop's thread used meanwhile (near the stall: busy; far less: waiting
    for a core)."""
    lags: list[float] = []
    busy: list[float] = []
    gcs: list[tuple[int, float]] = []
    if log.exists():
        for line in log.read_text().splitlines():
            kind, *rest = line.split()
            if kind == "lag" and start <= float(rest[0]) <= end:
                lags.append(float(rest[1]))
                busy.append(float(rest[2]))
            elif kind == "gc" and start <= float(rest[1]) <= end:
                gcs.append((int(rest[0]), float(rest[4])))
    return {
        "max_stall_ms": round(max(lags, default=0.0), 1),
        "max_stall_cpu_ms": round(max(busy, default=0.0), 1),
        f"stalls_over_{int(STALL_MS)}ms": sum(1 for ms in lags if ms >= STALL_MS),
        "stalled_s": round(sum(lags) / 1e3, 2),
        "gc_passes": len(gcs),
        "gc_max_cpu_ms": round(max((ms for _, ms in gcs), default=0.0), 1),
        "gc_full": sum(1 for gen, _ in gcs if gen == 2),
    }


def warnings(log: Path, offset: int) -> Counter[str]:
    """Warning-or-worse lines after byte `offset` of the server log, by their event name."""
    events: Counter[str] = Counter()
    with open(log, "rb") as f:
        f.seek(offset)
        for raw in f:
            line = raw.decode(errors="replace")
            match = re.search(r" (WARNING|ERROR|CRITICAL) \S+: (\S+)", line)
            if match:
                events[f"{match.group(1).lower()} {match.group(2)}"] += 1
    return events


def children(pid: int) -> list[int]:
    """The supervisor's worker processes."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def garbage(log: Path) -> str | None:
    """The last `garbage` line of a worker's probe log (after `--garbage`)."""
    lines = [x for x in log.read_text().splitlines() if x.startswith("garbage ")]
    return lines[-1].split(" ", 2)[2] if lines and log.exists() else None


class CpuTrace:
    """The workers' CPU seconds, sampled every 0.2 s on a thread: (perf_counter, total)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            workers = children(self.pid)
            total = sum(process_cpu_seconds(p) or 0.0 for p in workers)
            self.samples.append((time.perf_counter(), total))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def between(self, start: float, end: float) -> float:
        """CPU seconds the workers used from `start` to `end` (nearest samples)."""
        before = [c for t, c in self.samples if t <= start]
        after = [c for t, c in self.samples if t >= end]
        if not before or not after:
            return float("nan")
        return after[0] - before[-1]


def established(port: int) -> int:
    """Established client connections to the server's c2s port."""
    out = subprocess.run(
        ["ss", "-Htn", "state", "established", f"( sport = :{port} )"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return out.stdout.count("\n")


def profile_storm(
    pid: int, port: int, clients: int, gen: subprocess.Popen[str], workers: int
) -> topframes.Recorder | None:
    """Once every client is in, record the workers with py-spy (until `stop`)."""
    while established(port) < clients:
        if gen.poll() is not None:
            return None
        time.sleep(0.5)
    raw = BENCH / "results" / f"storm-{time.strftime('%Y%m%d-%H%M%S')}.txt"
    recorder = topframes.Recorder(raw, rate=50, cpus="0-1")
    return recorder if recorder.start(pid, processes=workers + 1) else None


def run(opts: argparse.Namespace) -> dict[str, Any]:
    asyncio.run(_provision(opts.clients))
    probe_log = RUN_DIR / "storm-pauseprobe.log"
    for old in probe_log.parent.glob(probe_log.name + "*"):
        old.unlink()
    os.environ["PAUSEPROBE_LOG"] = str(probe_log)
    port, admin = 26232 + PORT_OFFSET, 26561 + PORT_OFFSET
    cmd = [*opts.server_cmd.split(), str(BENCH / "pauseprobe.py")]
    server = MeerkatServer(cmd, config(opts.workers, opts.pool, opts.tls), [port, admin], "0-1")
    log_offset = server.log.stat().st_size if server.log.exists() else 0
    for attempt in range(3):  # the 41xxx ports are in the ephemeral range: retry a clash
        try:
            pid = server.start()
            break
        except SystemExit:
            if attempt == 2:
                raise
            time.sleep(5)
    result: dict[str, Any] = {"clients": opts.clients, "workers": opts.workers}
    trace = CpuTrace(pid)
    try:
        time.sleep(opts.settle)  # the workers find each other and join
        gen = [
            sys.executable, str(BENCH / "xmppload.py"), "--scenario", "idle",
            "--port", str(port), "--tls", opts.tls, "--mech", "SCRAM-SHA-256",
            "--clients", str(opts.clients), "--users", str(opts.clients),
            "--concurrency", "100", "--hold", str(opts.hold), "--timeout", "300",
            "--src-ips", "127.0.0.2-127.0.0.5", "--close", opts.close, "--settle", "0",
            "--scram-cache", str(RUN_DIR / "scram-storm.json"), "--server-pid", str(pid),
        ]  # fmt: skip
        proc = subprocess.Popen(
            gen, stdout=subprocess.PIPE, text=True, preexec_fn=die_with_parent()
        )
        recorder = None
        if opts.profile:
            recorder = profile_storm(pid, port, opts.clients, proc, opts.workers)
        stdout, _ = proc.communicate()
        lines = [line for line in stdout.splitlines() if line.startswith("{")]
        if not lines:
            raise SystemExit(f"xmppload produced no result (exit {proc.returncode})")
        load = json.loads(lines[-1])
        result.update(
            held=load.get("held"),
            logins_failed=load.get("logins_failed"),
            close=opts.close,
            tls=opts.tls,
        )
        start = load["closing_mono_first"]
        result["closing_mono"] = start
        while (rows := last_rows()) < opts.clients and time.perf_counter() < start + opts.wait:
            time.sleep(0.25)
        done = time.perf_counter()
        result.update(last_rows=rows, rows_after_s=round(done - start, 1))
        time.sleep(0.5)
        cpu = trace.between(start - 0.2, done)
        result["storm_cpu_s"] = round(cpu, 2)
        result["storm_cpu_us_per_session"] = round(cpu * 1e6 / opts.clients)
        time.sleep(2)  # stragglers: anything written after the count was reached
        end = time.perf_counter()
        if opts.garbage:
            for child in children(pid):
                os.kill(child, signal.SIGUSR2)
            time.sleep(opts.workers * 3.0)
        if recorder is not None:
            result["profile"] = str(recorder.stop().raw)
    finally:
        trace.stop()
        server.stop()
    result["last_inserted"], result["last_updated"] = last_writes()
    result["workers_stalls"] = {
        f"w{k}": stalls(Path(f"{probe_log}.w{k}"), start - 1.0, end)
        for k in range(1, opts.workers + 1)
    }
    if opts.garbage:
        result["garbage"] = {
            f"w{k}": garbage(Path(f"{probe_log}.w{k}")) for k in range(1, opts.workers + 1)
        }
    result["warnings"] = dict(warnings(server.log, log_offset))
    asyncio.run(_sql(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=20000)
    p.add_argument("--workers", type=int, default=3)
    p.add_argument("--pool", type=int, default=5, help="database connections per worker")
    p.add_argument("--close", choices=["clean", "abort"], default="abort")
    p.add_argument("--tls", choices=["starttls", "none"], default="starttls")
    p.add_argument("--hold", type=float, default=5.0, help="seconds all are held before the storm")
    p.add_argument("--settle", type=float, default=8.0, help="seconds for the workers to join")
    p.add_argument("--wait", type=float, default=120.0, help="seconds for every last row")
    p.add_argument(
        "--garbage",
        action="store_true",
        help="after the storm, log what each worker leaves to the cyclic collector",
    )
    p.add_argument("--profile", action="store_true", help="py-spy the workers from the storm on")
    p.add_argument("--server-cmd", default=str(ROOT / ".venv" / "bin" / "python"))
    opts = p.parse_args()
    os.chdir(ROOT)
    result = run(opts)
    result["time"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    print(json.dumps(result, indent=1))
    out = BENCH / "results" / "storm.jsonl"
    out.parent.mkdir(exist_ok=True)
    with open(out, "a") as f:
        f.write(json.dumps(result) + "\n")
    ok = result["last_rows"] == opts.clients and not any(
        "heartbeat_timeout" in k for k in result["warnings"]
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
