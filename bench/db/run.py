#!/usr/bin/env python3
"""Login and offline-message throughput of a Meerkat node on SQLite, PostgreSQL and MariaDB,
with the database statements each operation costs.

    .venv/bin/python bench/db/run.py [--drivers sqlite,pgsql,mysql] [--logins 3000]
                                     [--concurrency 50] [--messages 2000] [--quick]

For each driver: a throwaway database (`meerkat_bench_<random>` schema/database on the test
servers, see targets.py) with users provisioned in bulk; a `meerkat` process (countingnode.py:
every statement counted by SQL text and timed), pinned to CPU 1 with --pin; then

* login: bench/xmppload.py (the team's load generator; CPU 0 with --pin) runs N full logins
  (STARTTLS, SCRAM-SHA-256, bind, initial presence, close) with C in progress, after an
  unmeasured warm-up pass;
* offline: offline.py stores M messages for offline users and delivers them on login.

Statement counts are read from the node before and after each phase (SIGUSR1). Results: a
table on stdout and bench/db/results/<stamp>.json. Loopback only; the node and the
databases are always removed. Absent database servers are reported and skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BENCH = HERE.parent
sys.path.insert(0, str(HERE))

import offline  # noqa: E402
import targets  # noqa: E402
from scramcache import ScramCache  # noqa: E402

from meerkat.db import DatabaseSettings, DatabaseUnavailable  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


PIN = False  # --pin: server on CPU 1, generator on CPU 0 (for a quiet machine)


def pinned(cpu: str) -> list[str]:
    if PIN and (os.cpu_count() or 1) >= 2 and shutil.which("taskset"):
        return ["taskset", "-c", cpu]
    return []


def pool_toml(settings: DatabaseSettings) -> str:
    lines = [
        "[outgoing_pools.rdbms.default]",
        f"  workers = {settings.workers}",
        "  [outgoing_pools.rdbms.default.connection]",
        f'    driver = "{settings.driver}"',
        f"    database = {json.dumps(settings.database)}",
    ]
    if settings.driver != "sqlite":
        lines += [
            f'    host = "{settings.host}"',
            f"    port = {settings.port}",
            f'    username = "{settings.username}"',
            f"    password = {json.dumps(settings.password)}",
        ]
    if settings.schema:
        lines.append(f'    schema = "{settings.schema}"')
    return "\n".join(lines) + "\n"


class CountingNode:
    """A countingnode.py process on a config written into `workdir`."""

    def __init__(self, workdir: Path, settings: DatabaseSettings) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.counts_file = workdir / "counts.json"
        self.config = workdir / "meerkat.toml"
        self.config.write_text(
            f"""[general]
hosts = ["{targets.DOMAIN}"]
data_dir = "{workdir / "var"}"
loglevel = "warning"

[[listen.c2s]]
port = {self.port}
ip_address = "127.0.0.1"
shaper = "none"
max_connections = 100000

{pool_toml(settings)}"""
        )
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        log = open(self.workdir / "node.log", "wb")  # noqa: SIM115 - the child keeps it
        argv = [*pinned("1"), sys.executable, str(HERE / "countingnode.py")]
        self.proc = subprocess.Popen(
            [*argv, str(self.config), str(self.counts_file)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        for _ in range(400):
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return
            if self.proc.poll() is not None:
                break
            await asyncio.sleep(0.05)
        raise RuntimeError((self.workdir / "node.log").read_text(errors="replace"))

    async def counts(self) -> Counter[str]:
        assert self.proc is not None
        self.counts_file.unlink(missing_ok=True)
        self.proc.send_signal(signal.SIGUSR1)
        for _ in range(200):
            if self.counts_file.exists():
                return Counter(json.loads(self.counts_file.read_text()))
            await asyncio.sleep(0.02)
        raise RuntimeError("the node did not dump its counters")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def per_op(before: Counter[str], after: Counter[str], ops: int) -> dict[str, float]:
    """Statements per operation, by SQL text, largest first."""
    diff = Counter({k: v for k, v in (after - before).items() if not k.startswith("time:")})
    return {sql: round(n / ops, 3) for sql, n in diff.most_common()}


def mean_ms(before: Counter[str], after: Counter[str]) -> dict[str, float]:
    """Mean time the node waited for each statement, in ms, by SQL text."""
    out = {}
    for key, n in (after - before).items():
        if not key.startswith("time:") and n:
            seconds = after["time:" + key] - before["time:" + key]
            out[key] = round(seconds * 1000 / n, 2)
    return out


async def xmppload(
    node: CountingNode, clients: int, concurrency: int, cache: Path
) -> dict[str, Any]:
    assert node.proc is not None
    argv = [
        *pinned("0"), sys.executable, str(BENCH / "xmppload.py"), "--scenario", "login",
        "--port", str(node.port), "--tls", "starttls", "--mech", "SCRAM-SHA-256",
        "--clients", str(clients), "--concurrency", str(concurrency), "--users", str(clients),
        "--server-pid", str(node.proc.pid), "--scram-cache", str(cache), "--procs", "1",
    ]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await proc.communicate()
    lines = out.decode().strip().splitlines()
    if not lines:
        raise RuntimeError(f"xmppload failed: {err.decode()}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def note(text: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)


async def bench_driver(driver: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    users = max(args.logins, args.senders + args.recipients)
    async with targets.fresh_database(driver, workdir) as settings:
        note(f"{driver}: provisioning {users} users")
        await targets.provision(settings, workdir, users)
        node = CountingNode(workdir, settings)
        await node.start()
        note(f"{driver}: node started, logins")
        try:
            cache = workdir / "scram-cache.json"
            await xmppload(node, min(200, args.logins), args.concurrency, cache)  # warm-up
            before = await node.counts()
            login = await xmppload(node, args.logins, args.concurrency, cache)
            after = await node.counts()
            ok = int(login.get("logins_ok") or 0)
            result: dict[str, Any] = {
                "driver": driver,
                "logins_ok": ok,
                "logins_failed": login.get("logins_failed"),
                "login_rate": login.get("login_rate"),
                "login_p50_ms": login.get("login_p50_ms"),
                "login_p99_ms": login.get("login_p99_ms"),
                "server_ms_per_login": login.get("server_ms_per_login"),
                "statements_per_login": per_op(before, after, max(ok, 1)),
                "statement_ms_during_logins": mean_ms(before, after),
            }
            marks: dict[str, Counter[str]] = {}
            cpu: dict[str, float] = {}

            async def mark(phase: str) -> None:
                note(f"{driver}: offline {phase}")
                assert node.proc is not None
                cpu[phase] = cpu_seconds(node.proc.pid)
                marks[phase] = await node.counts()

            senders = [f"user{i}" for i in range(1, args.senders + 1)]
            recipients = [
                f"user{i}" for i in range(args.senders + 1, args.senders + args.recipients + 1)
            ]
            per_recipient = max(1, args.messages // len(recipients))
            off = await offline.run(
                node.port, senders, recipients, per_recipient, args.concurrency,
                ScramCache(cache), between=mark,
            )  # fmt: skip
            stored = off["messages"] - sum(off["refused"].values())
            off["server_us_per_stored"] = round((cpu["deliver"] - cpu["store"]) * 1e6 / stored)
            off["server_us_per_delivered"] = round((cpu["end"] - cpu["deliver"]) * 1e6 / stored)
            result["offline"] = off
            result["xmppload"] = login
            result["statements_per_stored_message"] = per_op(
                marks["store"], marks["deliver"], off["messages"]
            )
            result["statements_per_delivered_message"] = per_op(
                marks["deliver"], marks["end"], off["messages"]
            )
            result["statement_ms_during_store"] = mean_ms(marks["store"], marks["deliver"])
            return result
        finally:
            node.stop()


def summary(results: list[dict[str, Any]]) -> str:
    rows = [
        "| database | logins/s | p50 ms | p99 ms | server CPU ms/login | statements/login | "
        "offline stored/s | delivered/s | server CPU µs stored+delivered | statements/stored | "
        "statements/delivered |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        off = r["offline"]
        rows.append(
            f"| {r['driver']} | {r['login_rate']} | {r['login_p50_ms']} | {r['login_p99_ms']} | "
            f"{r['server_ms_per_login']} | {sum(r['statements_per_login'].values()):.2f} | "
            f"{off['store_per_s']} | {off['deliver_per_s']} | "
            f"{off['server_us_per_stored']}+{off['server_us_per_delivered']} | "
            f"{sum(r['statements_per_stored_message'].values()):.2f} | "
            f"{sum(r['statements_per_delivered_message'].values()):.2f} |"
        )
    text = "\n".join(rows)
    for r in results:
        ms = r["statement_ms_during_logins"]
        text += f"\n\n{r['driver']}: statements per login (mean ms each)\n"
        text += "\n".join(
            f"  {n:7.3f}  ({ms.get(sql, 0):6.2f} ms)  {sql}"
            for sql, n in r["statements_per_login"].items()
        )
        ms = r["statement_ms_during_store"]
        text += f"\n{r['driver']}: statements per stored message (mean ms each)\n"
        text += "\n".join(
            f"  {n:7.3f}  ({ms.get(sql, 0):6.2f} ms)  {sql}"
            for sql, n in r["statements_per_stored_message"].items()
        )
        text += f"\n{r['driver']}: statements per delivered message\n"
        text += "\n".join(
            f"  {n:7.3f}  {sql}" for sql, n in r["statements_per_delivered_message"].items()
        )
    return text


async def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--drivers", default="sqlite,pgsql,mysql")
    p.add_argument("--logins", type=int, default=3000)
    p.add_argument("--concurrency", type=int, default=50)
    p.add_argument("--messages", type=int, default=2000)
    p.add_argument("--senders", type=int, default=50)
    p.add_argument("--recipients", type=int, default=50)
    p.add_argument("--quick", action="store_true", help="500 logins, 500 messages")
    p.add_argument("--pin", action="store_true", help="pin server to CPU 1, generator to CPU 0")
    args = p.parse_args()
    global PIN
    PIN = args.pin
    if args.quick:
        args.logins, args.messages = 500, 500
    results = []
    for driver in args.drivers.split(","):
        with tempfile.TemporaryDirectory(prefix=f"meerkat-dbbench-{driver}-") as tmp:
            try:
                started = time.monotonic()
                results.append(await bench_driver(driver, args, Path(tmp)))
                print(f"{driver}: done in {time.monotonic() - started:.0f}s", file=sys.stderr)
            except DatabaseUnavailable as exc:
                print(f"{driver}: skipped ({exc})", file=sys.stderr)
    text = summary(results)
    print(text)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out / f"{stamp}.json").write_text(json.dumps(results, indent=1))
    (out / f"{stamp}.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
