"""What mirroring XEP-0198 buffers across the cluster costs (not a test: run it by hand).

Two real `meerkat` processes on loopback; `--pairs` senders on node1 each keep `--window`
messages in flight to a receiver on node2. Every client has stream management with
resumption enabled; receivers answer each ``<r/>`` at once, so every message enters a
buffer on node2 and leaves it on the ack (with the mirror: one row inserted and deleted,
batched per loop turn, replicated to node1). Reported per configuration: messages/s
received, and the two servers' CPU time (user + system, from /proc) per message.

    .venv/bin/python tests/cluster_xmpp/bench_sm_replication.py --pairs 20 --seconds 10

With ``--ack-every 0.2`` receivers acknowledge five times a second instead of at once (a
slow link): then every message is replicated, the mirror's worst case.

The machine is shared: messages/s moves with other people's load; CPU per message is the
figure to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cluster_xmpp.procs import MeerkatProcess, Processes
from cluster_xmpp.test_processes import fresh_database, register
from e2e.rawxmpp import RawClient
from meerkat.modules import DEFAULT_MODULES
from meerkat.xmpp import ns
from meerkat.xmpp.element import Element

SM = f"xmlns='{ns.SM}'"
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def modules_toml(cluster_buffer: bool) -> str:
    lines = [f"[modules.{name}]" for name in DEFAULT_MODULES if name != "mod_stream_management"]
    lines += [
        "[modules.mod_stream_management]",
        f"cluster_buffer = {str(cluster_buffer).lower()}",
        "buffer_max = 100000",  # late acks (--ack-every) keep many messages buffered
    ]
    return "\n".join(lines) + "\n"


class Receiver:
    def __init__(self, client: RawClient, ack_every: float) -> None:
        self.client = client
        self.ack_every = ack_every
        self.received = 0
        self.handled = 0
        self.progress = asyncio.Event()

    async def run(self) -> None:
        c = self.client
        while True:
            data = await c.reader.read(65536)
            if not data:
                return
            acks = []
            for event in c.parser.feed(data):
                if not isinstance(event, Element):
                    continue
                if event.name == "message":
                    self.received += 1
                    self.handled += 1
                elif event.name in ("presence", "iq"):
                    self.handled += 1
                elif event.name == "r" and event.xmlns == ns.SM:
                    acks.append(f"<a {SM} h='{self.handled}'/>")
            if acks and not self.ack_every:
                c.send(acks[-1])
            self.progress.set()

    async def ack_late(self) -> None:
        """Acknowledge every `ack_every` seconds instead of at once (a slow mobile link)."""
        while True:
            await asyncio.sleep(self.ack_every)
            self.client.send(f"<a {SM} h='{self.handled}'/>")


async def sm_client(node: MeerkatProcess, user: str) -> RawClient:
    client = await RawClient.connect(node.c2s)
    await client.login(user, resource="r")
    client.send(f"<enable {SM} resume='true'/>")
    await client.expect("enabled")
    return client


async def drain(client: RawClient) -> None:
    """Answer <r/> on a sender's stream (it receives little: acks for its own requests)."""
    handled = 0
    while True:
        data = await client.reader.read(65536)
        if not data:
            return
        for event in client.parser.feed(data):
            if isinstance(event, Element) and event.name in ("message", "presence", "iq"):
                handled += 1
            elif isinstance(event, Element) and event.name == "r":
                client.send(f"<a {SM} h='{handled}'/>")


async def measure(
    cluster_buffer: bool, pairs: int, window: int, seconds: float, ack_every: float
) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = await fresh_database("sqlite", Path(tmp), _no_server)
        group = Processes(Path(tmp), settings)
        try:
            nodes = [
                group.new(name, extra_toml=modules_toml(cluster_buffer))
                for name in ("node1@localhost", "node2@localhost")
            ]
            for n in nodes:
                n.start()
            await asyncio.gather(*(n.wait_started() for n in nodes))
            await group.wait_clean(nodes)
            n1, n2 = nodes
            users = [f"s{i}" for i in range(pairs)] + [f"r{i}" for i in range(pairs)]
            await register(n1, *users)
            senders = [await sm_client(n1, f"s{i}") for i in range(pairs)]
            receivers = [Receiver(await sm_client(n2, f"r{i}"), ack_every) for i in range(pairs)]
            tasks = [asyncio.create_task(r.run()) for r in receivers]
            if ack_every:
                tasks += [asyncio.create_task(r.ack_late()) for r in receivers]
            tasks += [asyncio.create_task(drain(s)) for s in senders]
            body = "x" * 64

            async def pump(i: int, stop: float) -> int:
                r = receivers[i]
                sent = r.received  # everything sent before was received (a drained window)
                while time.monotonic() < stop:
                    while sent - r.received < window:
                        senders[i].send(
                            f"<message to='r{i}@localhost/r' type='chat'><body>{body}</body>"
                            "</message>"
                        )
                        sent += 1
                    r.progress.clear()
                    await asyncio.wait_for(r.progress.wait(), 10)
                while r.received < sent:  # drain the window
                    r.progress.clear()
                    await asyncio.wait_for(r.progress.wait(), 10)
                return sent

            warm = time.monotonic() + 2
            await asyncio.gather(*(pump(i, warm) for i in range(pairs)))
            assert n1.proc is not None and n2.proc is not None
            before = [cpu_seconds(n1.proc.pid), cpu_seconds(n2.proc.pid)]
            got_before = sum(r.received for r in receivers)
            started = time.monotonic()
            await asyncio.gather(*(pump(i, started + seconds) for i in range(pairs)))
            elapsed = time.monotonic() - started
            got = sum(r.received for r in receivers) - got_before
            after = [cpu_seconds(n1.proc.pid), cpu_seconds(n2.proc.pid)]
            rows = await _table_size(n2)
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            cpu = [a - b for a, b in zip(after, before, strict=True)]
            return {
                "msgs_per_s": got / elapsed,
                "node1_cpu_us_per_msg": cpu[0] / got * 1e6,
                "node2_cpu_us_per_msg": cpu[1] / got * 1e6,
                "both_cpu_us_per_msg": sum(cpu) / got * 1e6,
                "mirror_rows_at_end": rows,
            }
        finally:
            group.close()


async def _table_size(node: MeerkatProcess) -> int:
    data = await node.graphql("{ cets { tableInfo { tableName size } } }")
    sizes = {t["tableName"]: t["size"] for t in data["cets"]["tableInfo"]}
    return int(sizes.get("stream_management_buffer", -1))


async def _no_server(driver: str) -> object:
    raise AssertionError("sqlite only")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--window", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument(
        "--ack-every", type=float, default=0.0, help="seconds between acks (0: answer each <r/>)"
    )
    args = parser.parse_args()
    for run in range(args.runs):
        for cluster_buffer in (False, True):
            result = await measure(
                cluster_buffer, args.pairs, args.window, args.seconds, args.ack_every
            )
            figures = " ".join(f"{k}={v:.1f}" for k, v in result.items())
            print(
                f"run={run} ack_every={args.ack_every} cluster_buffer={cluster_buffer} {figures}",
                flush=True,
            )


if __name__ == "__main__":
    # SIGTERM (`timeout`) unwinds like Ctrl-C, so the servers are killed on the way out.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    asyncio.run(main())
