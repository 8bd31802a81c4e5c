#!/usr/bin/env python3
"""xmppload: a raw-XML XMPP load generator (asyncio + uvloop, stdlib expat, Meerkat's SCRAM).

Scenarios (all bounded in count and time, loopback only, they stop by themselves):

  login     N clients, C in progress: connect, STARTTLS/direct TLS, SASL, bind, session,
            initial presence; optionally stay connected (--stay --hold T).
  messages  P logged-in pairs exchange 64-byte messages for D seconds after a warmup, each
            sender keeping at most W in flight (closed loop), or paced open loop (--rate R).
            Latency is end-to-end from a timestamp in the body.
  idle      N connections held T seconds; server RSS per connection. Spread over several
            source addresses (--src-ips 127.0.0.2-127.0.0.5) and, past one process's file
            limit, over several generator processes (--procs, automatic).

Output: a text summary on stderr and one JSON line on stdout (appended to --out too).
Server figures need --server-pid (VmRSS and CPU from /proc, summed over the PID and its
descendants: a multi-worker server is one process tree). Example:

  xmppload.py --port 15222 --tls starttls --scenario login --clients 2000 --server-pid PID
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import math
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadstats import Histogram, cpu_sample, cpu_shares, rss_kib, tree_rss_kib
from loadworker import Worker, merge_results

from meerkat.pdeathsig import die_with_parent

FD_RESERVE = 200


def parse_ip_range(text: str) -> list[str]:
    """ "127.0.0.2-127.0.0.5" or "127.0.0.2,127.0.0.9" -> list of loopback addresses."""
    result: list[str] = []
    for part in filter(None, text.split(",")):
        first, _, last = part.partition("-")
        start = ipaddress.IPv4Address(first.strip())
        end = ipaddress.IPv4Address(last.strip()) if last else start
        if end < start or int(end) - int(start) > 255:
            raise argparse.ArgumentTypeError(f"bad address range {part!r}")
        for value in range(int(start), int(end) + 1):
            address = ipaddress.IPv4Address(value)
            if not address.is_loopback:
                raise argparse.ArgumentTypeError(f"{address} is not a loopback address")
            result.append(str(address))
    return result


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="xmppload", description=__doc__.split("\n\n")[0])
    p.add_argument("--scenario", choices=["login", "messages", "idle"], default="login")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5222)
    p.add_argument("--domain", default="localhost")
    p.add_argument("--tls", choices=["starttls", "direct", "none"], default="starttls")
    p.add_argument("--mech", default="SCRAM-SHA-1", help="SCRAM-SHA-1/256/512[-PLUS] or PLAIN")
    p.add_argument("--user-prefix", default="user")
    p.add_argument("--user-start", type=int, default=1)
    p.add_argument("--users", type=int, default=10000, help="registered users available")
    p.add_argument("--password", default="secret")
    p.add_argument("--clients", type=int, default=100, help="login/idle: connections")
    p.add_argument("--concurrency", type=int, default=100, help="logins in progress")
    p.add_argument("--login-rate", type=float, default=0.0, help="open-loop logins/s (0: closed)")
    p.add_argument("--session", choices=["auto", "always", "never"], default="auto")
    p.add_argument("--roster", action="store_true", help="fetch the roster after bind")
    p.add_argument("--login-done", choices=["echo", "sent"], default="echo")
    p.add_argument("--nagle", action="store_true", help="leave Nagle's algorithm on")
    p.add_argument("--stay", action="store_true", help="login: keep connections for --hold")
    p.add_argument("--hold", type=float, default=10.0, help="idle/login --stay: seconds held")
    p.add_argument("--pairs", type=int, default=10)
    p.add_argument("--duration", type=float, default=10.0, help="messages: measured seconds")
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--window", type=int, default=5, help="messages in flight per sender")
    p.add_argument("--rate", type=float, default=0.0, help="paced total msgs/s (0: closed loop)")
    p.add_argument("--timeline", default=None, help="messages: append slow messages/pauses here")
    p.add_argument("--drain", type=float, default=5.0, help="seconds to wait for stragglers")
    p.add_argument("--src-ips", type=parse_ip_range, default=[], help="e.g. 127.0.0.2-127.0.0.5")
    p.add_argument("--procs", type=int, default=0, help="generator processes (0: automatic)")
    p.add_argument("--timeout", type=float, default=30.0, help="per-login timeout")
    p.add_argument("--max-time", type=float, default=0.0, help="hard limit (0: derived)")
    p.add_argument("--server-pid", type=int, default=0)
    p.add_argument("--scram-cache", default=None, help="SaltedPassword cache file")
    p.add_argument("--label", default="")
    p.add_argument("--out", default=None, help="append the JSON line to this file")
    p.add_argument(
        "--close", choices=["clean", "abort"], default="clean",
        help="how finish drops the connections (all at once): closing tag or TCP reset",
    )  # fmt: skip
    p.add_argument("--settle", type=float, default=1.0, help="seconds before the after-RSS")
    p.add_argument("--child-index", type=int, default=-1, help=argparse.SUPPRESS)
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    if args.scenario == "messages" and args.users < 2 * args.pairs:
        raise SystemExit("messages needs --users >= 2 * --pairs")
    for name in ("clients", "concurrency", "pairs", "window", "users"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be positive")
    return args


def connections_needed(args: argparse.Namespace) -> int:
    if args.scenario == "messages":
        return int(2 * args.pairs)
    if args.scenario == "login" and not args.stay:
        return int(args.concurrency)
    return int(args.clients)


def raise_fd_limit() -> int:
    """Raise the soft open-file limit to the hard one; return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def process_count(args: argparse.Namespace, fd_limit: int) -> int:
    if args.procs:
        return int(args.procs)
    return max(1, math.ceil(connections_needed(args) / max(1, fd_limit - FD_RESERVE)))


def max_time(args: argparse.Namespace) -> float:
    if args.max_time:
        return float(args.max_time)
    work = args.clients / max(args.login_rate or 20.0, 1.0) + args.timeout
    if args.scenario == "messages":
        work = 2 * args.pairs / 20.0 + args.timeout + args.warmup + args.duration + args.drain
    return float(60.0 + work + args.hold)


# -- workers in this process or in child processes -------------------------------------------


class LocalHandle:
    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.pid = os.getpid()

    async def phase(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = await getattr(self.worker, name)()
        return result

    async def stop(self) -> None:
        return None


class ChildHandle:
    """A generator process running one Worker; phases are driven over stdin/stdout lines."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.pid = proc.pid

    @classmethod
    async def spawn(cls, argv: list[str], index: int, procs: int) -> ChildHandle:
        cmd = [sys.executable, str(Path(__file__).resolve()), *argv]
        cmd += ["--child-index", str(index), "--procs", str(procs)]
        proc = await asyncio.create_subprocess_exec(
            *cmd,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            preexec_fn=die_with_parent(),
        )
        return cls(proc)

    async def phase(self, name: str) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(name.encode() + b"\n")
        await self.proc.stdin.drain()
        line = await self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"generator process {self.pid} died during {name}")
        result: dict[str, Any] = json.loads(line)
        return result

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
        await self.proc.wait()


async def child_main(args: argparse.Namespace) -> None:
    """Child process: run one Worker, one phase per command line on stdin."""
    worker = Worker(args, args.child_index, args.procs)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode().strip():
        if line not in ("prepare", "run", "finish"):
            raise SystemExit(f"unknown phase {line!r}")
        result = await getattr(worker, line)()
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()
        if line == "finish":
            return


# -- orchestration ------------------------------------------------------------------------------


async def orchestrate(args: argparse.Namespace, argv: list[str], procs: int) -> dict[str, Any]:
    handles: list[LocalHandle | ChildHandle] = []
    try:
        if procs == 1:
            handles.append(LocalHandle(Worker(args)))
        else:
            for i in range(procs):
                handles.append(await ChildHandle.spawn(_strip_out(argv), i, procs))
        return await _measure(args, handles, procs)
    finally:
        for handle in handles:
            await handle.stop()


def _strip_out(argv: list[str]) -> list[str]:
    """Children never append to --out; only the parent reports."""
    result, skip = [], False
    for item in argv:
        if skip:
            skip = False
            continue
        if item == "--out" or item == "--procs":
            skip = True
            continue
        if item.startswith(("--out=", "--procs=")):
            continue
        result.append(item)
    return result


async def _phase(handles: list[LocalHandle | ChildHandle], name: str) -> dict[str, Any]:
    results = await asyncio.gather(*(h.phase(name) for h in handles))
    return merge_results(results)


async def _measure(
    args: argparse.Namespace, handles: list[LocalHandle | ChildHandle], procs: int
) -> dict[str, Any]:
    spid = args.server_pid or None
    gen_pids = [os.getpid()] + [h.pid for h in handles if isinstance(h, ChildHandle)]
    rss_before = tree_rss_kib(spid) if spid else None
    gen_rss_before = sum(rss_kib(p) or 0 for p in gen_pids)
    prepared = await _phase(handles, "prepare")

    run_task = asyncio.ensure_future(_phase(handles, "run"))
    start = cpu_sample(time.monotonic(), spid, gen_pids)
    if args.scenario == "messages":
        await asyncio.sleep(args.warmup)
        start = cpu_sample(time.monotonic(), spid, gen_pids)
        await asyncio.sleep(args.duration)
        end = cpu_sample(time.monotonic(), spid, gen_pids)
        rss_held = tree_rss_kib(spid) if spid else None
        ran = await run_task
    else:
        ran = await run_task
        end = cpu_sample(time.monotonic(), spid, gen_pids)
        rss_held = tree_rss_kib(spid) if spid else None
    gen_rss_held = sum(rss_kib(p) or 0 for p in gen_pids)
    finished = await _phase(handles, "finish")
    await asyncio.sleep(args.settle)
    rss_after = tree_rss_kib(spid) if spid else None

    merged = merge_results([prepared, ran, finished])
    report = _report(args, merged, procs, cpu_shares(start, end), end.wall - start.wall, end, start)
    report.update(server_rss_before_kib=rss_before, server_rss_held_kib=rss_held)
    report["server_rss_after_kib"] = rss_after
    held = merged.get("held", 0)
    if args.scenario == "idle" and held:
        if rss_before is not None and rss_held is not None:
            report["server_rss_per_conn_kib"] = round((rss_held - rss_before) / held, 1)
        report["gen_rss_per_conn_kib"] = round((gen_rss_held - gen_rss_before) / held, 1)
    return report


def _ms(hist: Histogram | None, p: float) -> float | None:
    value = hist.percentile(p) if hist is not None else None
    return None if value is None else round(value / 1000, 2)


def _report(
    args: argparse.Namespace,
    m: dict[str, Any],
    procs: int,
    cpu: dict[str, float | None],
    window: float,
    end: Any,
    start: Any,
) -> dict[str, Any]:
    r: dict[str, Any] = {
        "label": args.label,
        "scenario": args.scenario,
        "port": args.port,
        "tls": args.tls,
        "mech": args.mech,
        "procs": procs,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    login_hist = m.get("login_hist")
    ok = m.get("logins_ok", 0)
    r.update(logins_ok=ok, logins_failed=m.get("logins_failed", 0))
    r["failures"] = m.get("failures", {})
    span = m.get("login_last", 0) - m.get("login_first", 0)
    r["login_rate"] = round(ok / span, 1) if ok and span > 0 else None
    r["login_span_s"] = round(span, 1) if ok else None
    r["login_p50_ms"], r["login_p99_ms"] = _ms(login_hist, 50), _ms(login_hist, 99)
    if args.scenario == "login":
        r.update(clients=args.clients, concurrency=args.concurrency)
    if args.scenario == "idle":
        r.update(clients=args.clients, held=m.get("held", 0), hold_s=args.hold)
    if args.scenario == "messages":
        msg_hist = m.get("msg_hist")
        delivered = m.get("delivered", 0)
        r.update(pairs=args.pairs, window=args.window, rate=args.rate, duration=args.duration)
        r["msgs_per_s"] = round(delivered / args.duration, 1)
        r["msg_p50_ms"], r["msg_p99_ms"] = _ms(msg_hist, 50), _ms(msg_hist, 99)
        for key in ("sent", "received", "delivered", "lost", "message_errors", "skipped"):
            r[key] = m.get(key, 0)
    r.update(cpu)
    r["window_s"] = round(window, 2)
    server_s = None if start.server is None or end.server is None else end.server - start.server
    if server_s is not None:
        if args.scenario == "messages" and r.get("delivered"):
            r["server_us_per_msg"] = round(server_s * 1e6 / r["delivered"], 1)
        elif args.scenario == "login" and ok:
            r["server_ms_per_login"] = round(server_s * 1e3 / ok, 2)
    r["disconnects"] = m.get("disconnects", 0)
    r["close"] = args.close
    r["closed"] = m.get("closed", 0)
    if "closing_mono_first" in m:
        r["closing_mono_first"] = round(m["closing_mono_first"], 4)
        r["closing_mono_last"] = round(m["closing_mono_last"], 4)
    r["scram_computed"] = m.get("scram_computed", 0)
    r["scram_cached"] = m.get("scram_cached", 0)
    return r


def format_text(r: dict[str, Any]) -> str:
    """A short human summary of a report."""
    lines = [f"== {r['scenario']} {r['label']} port {r['port']} {r['tls']} {r['mech']}"]
    lines.append(
        f"logins ok {r['logins_ok']} failed {r['logins_failed']} {r['failures'] or ''}"
        f" rate {r['login_rate']}/s p50 {r['login_p50_ms']} ms p99 {r['login_p99_ms']} ms"
    )
    if r["scenario"] == "messages":
        lines.append(
            f"messages {r['msgs_per_s']}/s delivered {r['delivered']} lost {r['lost']}"
            f" errors {r['message_errors']} skipped {r['skipped']}"
            f" p50 {r['msg_p50_ms']} ms p99 {r['msg_p99_ms']} ms"
        )
    if r["scenario"] == "idle":
        lines.append(
            f"held {r['held']} server RSS {r['server_rss_before_kib']} -> "
            f"{r['server_rss_held_kib']} -> {r['server_rss_after_kib']} KiB, per conn "
            f"{r.get('server_rss_per_conn_kib')} KiB (generator {r.get('gen_rss_per_conn_kib')})"
        )
    lines.append(
        f"cpu over {r['window_s']} s: server {r['server_cpu_pct']}% generator "
        f"{r['gen_cpu_pct']}% other {r['other_cpu_pct']}%  disconnects {r['disconnects']}"
        f"  scram computed {r['scram_computed']} cached {r['scram_cached']}"
    )
    return "\n".join(lines)


async def main_async(args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    procs = args.procs if args.child_index >= 0 else process_count(args, raise_fd_limit())
    async with asyncio.timeout(max_time(args)):
        return await orchestrate(args, argv, procs)


def run_loop(coro: Any) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.child_index >= 0:
        raise_fd_limit()
        run_loop(child_main(args))
        return 0
    report = run_loop(main_async(args, argv))
    print(format_text(report), file=sys.stderr)
    line = json.dumps(report)
    print(line)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "a") as f:
            f.write(line + "\n")
    return 0 if report["logins_failed"] == 0 and not report.get("lost") else 1


if __name__ == "__main__":
    sys.exit(main())
