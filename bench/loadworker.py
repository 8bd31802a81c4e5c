"""The scenarios one generator process runs: `login`, `messages`, `idle`.

A `Worker` owns its share of the connections and goes through three phases the orchestrator
(xmppload.py) drives, possibly in several processes at once:

    prepare()  log in what the measured phase needs (messages: the pairs; idle: everyone)
    run()      the measured phase (login: the logins; messages: warmup + duration + drain;
               idle: hold)
    finish()   close every connection at once (`--close clean`: a closing tag, then the
               socket; `abort`: a TCP reset), the teardown a server sees as a logout storm

Each phase returns a flat dict of counters; `*_hist` entries are Histogram dicts, `*_first`
and `*_last` time bounds (wall clock; `*_mono_*`: CLOCK_MONOTONIC, as `bench/pauseprobe.py`),
`failures` a reason -> count map. `merge_results` combines the dicts of several workers.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from loadclient import (
    NS_CLIENT,
    Element,
    LoginConfig,
    LoginError,
    LoginStats,
    XmppConnection,
    login,
    q,
)
from loadstats import Histogram
from scramcache import ScramCache
from timeline import SLOW_NS, Timeline

MESSAGE = q(NS_CLIENT, "message")
BODY = q(NS_CLIENT, "body")
BODY_SIZE = 64


def settle_gc() -> None:
    """Before a measured phase: collect once, then freeze what is left out of the collector.

    Everything alive after the logins (connections, parsers, the SCRAM cache, the event loop)
    lives until the end of the run. Left in the collector, every full collection walked it all
    and stopped this process for 80-140 ms every ~3.7 s of a paced 4,300 msgs/s run
    (`--timeline`): messages received during the pause were timestamped late, which made the
    p99 the generator's pause instead of the server's latency.
    """
    gc.collect()
    gc.freeze()


def share(total: int, index: int, parts: int) -> range:
    """The contiguous slice of range(total) that part `index` of `parts` handles."""
    return range(total * index // parts, total * (index + 1) // parts)


class Sender:
    """One direction of a pair: writes messages with a timestamp body, tracks what is in flight."""

    __slots__ = ("conn", "inflight", "prefix", "seq", "worker")

    def __init__(self, worker: Worker, conn: XmppConnection, to_jid: str) -> None:
        self.worker = worker
        self.conn = conn
        self.prefix = f"<message to='{to_jid}' type='chat'><body>".encode()
        self.inflight = 0
        self.seq = 0

    def send_one(self) -> None:
        self.seq += 1
        body = f"{time.perf_counter_ns()}:{self.seq}:".ljust(BODY_SIZE, "x")
        self.conn.send(self.prefix + body.encode() + b"</body></message>")
        self.inflight += 1
        self.worker.sent += 1


class Worker:
    """One process's share of a scenario."""

    def __init__(self, args: argparse.Namespace, index: int = 0, procs: int = 1) -> None:
        self.args = args
        self.index = index
        self.procs = procs
        self.cfg = LoginConfig(
            host=args.host,
            port=args.port,
            domain=args.domain,
            tls=args.tls,
            mechanism=args.mech,
            password=args.password,
            session=args.session,
            roster=args.roster,
            done_on=args.login_done,
            nagle=args.nagle,
        )
        self.cache = ScramCache(args.scram_cache)
        self.login_stats = LoginStats()
        self.conns: list[XmppConnection] = []
        self.disconnects = 0
        self.sent = 0
        self.running = False

    # -- phases
    async def prepare(self) -> dict[str, Any]:
        result = await self._prepare()
        settle_gc()
        return result

    async def _prepare(self) -> dict[str, Any]:
        a = self.args
        if a.scenario == "messages":
            pairs = share(a.pairs, self.index, self.procs)
            users = range(2 * pairs.start, 2 * pairs.stop)
            return await self._login_many(users, keep=True, rate=0.0)
        if a.scenario == "idle":
            return await self._login_many(share(a.clients, self.index, self.procs), keep=True)
        return {}

    async def run(self) -> dict[str, Any]:
        a = self.args
        if a.scenario == "login":
            result = await self._login_many(share(a.clients, self.index, self.procs), keep=a.stay)
            if a.stay and a.hold > 0:
                await asyncio.sleep(a.hold)
            return result
        if a.scenario == "messages":
            return await self._messages()
        await asyncio.sleep(a.hold)
        return {"held": sum(1 for c in self.conns if not c.lost)}

    async def finish(self) -> dict[str, Any]:
        closing_first = time.perf_counter()
        abort = self.args.close == "abort"
        for conn in self.conns:
            if abort:
                conn.abort()
            else:
                conn.close()
        closed = len(self.conns)
        closing_last = time.perf_counter()
        self.conns.clear()
        await asyncio.sleep(0.2)  # let close frames leave before the process exits
        self.cache.save()
        return {
            "closed": closed,
            "closing_mono_first": closing_first,
            "closing_mono_last": closing_last,
            "disconnects": self.disconnects,
            "scram_computed": self.login_stats.scram_computed,
            "scram_cached": self.login_stats.scram_cached,
        }

    # -- logins
    def _user(self, i: int) -> str:
        return f"{self.args.user_prefix}{self.args.user_start + i % self.args.users}"

    def _source(self, i: int) -> str | None:
        ips = self.args.src_ips
        return ips[i % len(ips)] if ips else None

    def _lost(self, conn: XmppConnection) -> None:
        self.disconnects += 1

    async def _login_many(
        self, indices: range, *, keep: bool, rate: float | None = None
    ) -> dict[str, Any]:
        a = self.args
        rate = (a.login_rate / self.procs if a.login_rate else 0.0) if rate is None else rate
        concurrency = max(1, a.concurrency // self.procs)
        hist = Histogram()
        failures: Counter[str] = Counter()
        bounds: dict[str, float] = {}
        pending = iter(indices)
        t_start = time.perf_counter()

        async def one_client() -> None:
            for i in pending:
                if rate:
                    delay = t_start + (i - indices.start) / rate - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                wall0, t0 = time.time(), time.perf_counter()
                bounds.setdefault("login_first", wall0)
                try:
                    async with asyncio.timeout(a.timeout):
                        conn = await login(
                            self.cfg,
                            self._user(i),
                            f"load{i}",
                            cache=self.cache,
                            stats=self.login_stats,
                            source_ip=self._source(i),
                        )
                except LoginError as exc:
                    failures[exc.reason] += 1
                    continue
                except TimeoutError:
                    failures["timeout"] += 1
                    continue
                except OSError as exc:
                    failures[f"os:{type(exc).__name__}"] += 1
                    continue
                hist.record(int((time.perf_counter() - t0) * 1e6))
                bounds["login_last"] = time.time()
                if keep:
                    conn.on_lost = self._lost
                    self.conns.append(conn)
                else:
                    conn.close()

        async with asyncio.TaskGroup() as tg:
            for _ in range(min(concurrency, len(indices))):
                tg.create_task(one_client())
        return {
            "logins_ok": hist.total,
            "logins_failed": sum(failures.values()),
            "failures": dict(failures),
            "login_hist": hist.to_dict(),
            **bounds,
        }

    # -- messages
    async def _messages(self) -> dict[str, Any]:
        a = self.args
        conns = [c for c in self.conns if not c.lost]
        pairs = [(conns[i], conns[i + 1]) for i in range(0, len(conns) - 1, 2)]
        hist = Histogram()
        counts = {"received": 0, "delivered": 0, "errors": 0}
        senders: list[Sender] = []
        loop_start = time.perf_counter_ns()
        window_start = loop_start + int(a.warmup * 1e9)
        window_end = window_start + int(a.duration * 1e9)
        paced = bool(a.rate)
        timeline = Timeline() if a.timeline else None

        def handler(source: Sender) -> Any:
            def on_stanza(element: Element) -> None:
                if element.name != MESSAGE:
                    return
                body = element.child(BODY)
                if body is None or element.attrs.get("type") == "error":
                    counts["errors"] += 1
                    return
                now = time.perf_counter_ns()
                source.inflight -= 1
                counts["received"] += 1
                if window_start <= now < window_end:
                    counts["delivered"] += 1
                    sent_ns = int(body.text.split(":", 1)[0])
                    hist.record((now - sent_ns) // 1000)
                    if timeline is not None and now - sent_ns >= SLOW_NS:
                        timeline.slow(sent_ns, now - sent_ns)
                if self.running and not paced:
                    source.send_one()

            return on_stanza

        for x, y in pairs:
            for src, dst in ((x, y), (y, x)):
                sender = Sender(self, src, dst.jid)
                senders.append(sender)
                dst.on_stanza = handler(sender)
        self.running = True
        skipped = 0
        if paced:
            skipped = await self._paced(senders, a.rate / self.procs, window_end, timeline)
        else:
            for sender in senders:
                for _ in range(a.window):
                    sender.send_one()
            await asyncio.sleep(max(0.0, (window_end - time.perf_counter_ns()) / 1e9))
        self.running = False
        if timeline is not None:
            timeline.write(a.timeline)
        drain_until = time.perf_counter() + a.drain
        while any(s.inflight for s in senders) and time.perf_counter() < drain_until:
            await asyncio.sleep(0.05)
        return {
            "pairs_active": len(pairs),
            "sent": self.sent,
            "received": counts["received"],
            "delivered": counts["delivered"],
            "lost": sum(s.inflight for s in senders),
            "message_errors": counts["errors"],
            "skipped": skipped,
            "msg_hist": hist.to_dict(),
        }

    async def _paced(
        self, senders: list[Sender], rate: float, until_ns: int, timeline: Timeline | None
    ) -> int:
        """Open loop: `rate` messages/s round-robin, skipping senders at the window cap."""
        window, n = self.args.window, len(senders)
        start = time.perf_counter()
        scheduled = skipped = rr = 0
        while n and time.perf_counter_ns() < until_ns:
            due = int((time.perf_counter() - start) * rate) - scheduled
            while due > 0:
                tried = 0
                while tried < n and senders[rr].inflight >= window:
                    rr, tried = (rr + 1) % n, tried + 1
                if tried == n:  # everyone at the cap: this slot is lost to the open loop
                    skipped += due
                    scheduled += due
                    break
                senders[rr].send_one()
                rr = (rr + 1) % n
                due -= 1
                scheduled += 1
            before = time.perf_counter_ns()
            await asyncio.sleep(0.001)
            if timeline is not None and time.perf_counter_ns() - before >= SLOW_NS:
                timeline.lag(before, time.perf_counter_ns() - before)
        return skipped


def merge_results(results: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Combine phase results of several workers: sums, histogram merges, time bounds."""
    merged: dict[str, Any] = {}
    for result in results:
        for key, value in result.items():
            if key.endswith("_hist"):
                hist = merged.setdefault(key, Histogram())
                hist.merge(value if isinstance(value, Histogram) else Histogram.from_dict(value))
            elif key == "failures":
                failures = merged.setdefault(key, Counter())
                failures.update(value)
            elif key.endswith("_first"):
                merged[key] = min(merged.get(key, value), value)
            elif key.endswith("_last"):
                merged[key] = max(merged.get(key, value), value)
            elif isinstance(value, int | float):
                merged[key] = merged.get(key, 0) + value
            else:
                merged[key] = value
    if "failures" in merged:
        merged["failures"] = dict(merged["failures"])
    return merged
