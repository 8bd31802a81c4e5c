"""Connect-to-usable-session cost: classic RFC 6120 vs SASL2 + Bind 2 + SM, and reconnects
with FAST (XEP-0484) vs full SCRAM, with and without XEP-0198 resumption.

A Meerkat node runs in this process (SQLite in a temp dir); each flow is a raw-XML client that
counts its round trips (TCP and TLS handshakes included: every time it must wait for the
server before it can go on) and measures wall time from TCP connect to a session that can
send stanzas (bound, stream management enabled, or resumed). With ``--rtt-ms``, connections go
through a proxy that delays each direction by half the round-trip time, as a mobile link
would. SCRAM uses SHA-256 with the server's 10,000 iterations, and the client computes
PBKDF2 each time (clients that cache SaltedPassword save that part, not the round trips).

    .venv/bin/python bench/login_round_trips.py --runs 20 --rtt-ms 0 50
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import functools
import json
import secrets
import socket
import ssl
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from meerkat.config import config_from_dict
from meerkat.modules import DEFAULT_MODULES, MODULES
from meerkat.server import Node
from meerkat.xmpp import ns
from meerkat.xmpp.element import Element
from meerkat.xmpp.jid import Jid
from meerkat.xmpp.sasl.ht import format_initial
from meerkat.xmpp.sasl.scram import ScramClient
from meerkat.xmpp.sasl.scram import crypto as scram_crypto
from meerkat.xmpp.stream import StreamOpened, XmlStream

FAST = "urn:xmpp:fast:0"
AGENT = "0d6c1b5e-8f7a-4c3b-9e2d-5a4f3b2c1d0e"
HEADER = (
    "<?xml version='1.0'?><stream:stream to='localhost' version='1.0' "
    f"xmlns='{ns.CLIENT}' xmlns:stream='{ns.STREAM}'>"
)


# -- a latency proxy -------------------------------------------------------------------------------
class DelayProxy:
    """Forwards TCP to `port`, delaying each direction by `delay` seconds (order kept)."""

    def __init__(self, port: int, delay: float) -> None:
        self.port, self.delay = port, delay
        self.server: asyncio.Server | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _client(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        await asyncio.sleep(self.delay)  # the SYN's way there (connect is one round trip)
        sr, sw = await asyncio.open_connection("127.0.0.1", self.port)
        await asyncio.sleep(self.delay)  # and the SYN-ACK's way back
        for reader, writer in ((cr, sw), (sr, cw)):
            task = asyncio.get_running_loop().create_task(self._pump(reader, writer))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        try:
            while data := await reader.read(65536):
                loop.call_later(self.delay, _write, writer, data)
        finally:
            loop.call_later(self.delay, writer.close)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write(writer: asyncio.StreamWriter, data: bytes) -> None:
    if not writer.is_closing():
        writer.write(data)


# -- a counting client -----------------------------------------------------------------------------
def _tls() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Client:
    """One connection; `round_trips` counts every wait for the server."""

    def __init__(self) -> None:
        self.round_trips = 0
        self.events: list[Any] = []
        self.parser = XmlStream(max_stanza_size=1 << 24, max_depth=1000)
        self.success: Element | None = None
        self.reader: asyncio.StreamReader
        self.writer: asyncio.StreamWriter

    async def connect(self, port: int, direct_tls: bool) -> None:
        self.reader, self.writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=_tls() if direct_tls else None
        )
        self.round_trips += 2 if direct_tls else 1  # TCP, then the TLS 1.3 handshake

    async def starttls(self) -> None:
        await self.exchange(f"<starttls xmlns='{ns.TLS}'/>", "proceed")
        await self.writer.start_tls(_tls())
        self.round_trips += 1
        self.parser = XmlStream(max_stanza_size=1 << 24, max_depth=1000)

    def send(self, data: str) -> None:
        self.writer.write(data.encode())

    async def expect(self, match: Callable[[Element], bool]) -> Element:
        while True:
            while self.events:
                event = self.events.pop(0)
                if isinstance(event, Element) and match(event):
                    return event
            data = await asyncio.wait_for(self.reader.read(65536), 10)
            if not data:
                raise ConnectionError("closed")
            self.events.extend(self.parser.feed(data))

    async def exchange(self, data: str, name: str) -> Element:
        """Send, then wait for the element named `name`: one round trip."""
        self.send(data)
        self.round_trips += 1
        return await self.expect(lambda e: e.name == name)

    async def open(self) -> Element:
        self.parser = XmlStream(max_stanza_size=1 << 24, max_depth=1000)
        self.send(HEADER)
        self.round_trips += 1
        await self.expect_opened()
        return await self.expect(lambda e: e.name == "features")

    async def expect_opened(self) -> None:
        while not any(isinstance(e, StreamOpened) for e in self.events):
            data = await asyncio.wait_for(self.reader.read(65536), 10)
            self.events.extend(self.parser.feed(data))
        while not isinstance(self.events.pop(0), StreamOpened):
            pass

    def close(self) -> None:
        self.writer.transport.abort()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def _scram_steps(c: Client, user: str, sasl2: bool, inline: str = "") -> Element:
    scram = ScramClient("SCRAM-SHA-256", user, secrets.token_urlsafe(18))
    first = _b64(scram.client_first())
    if sasl2:
        ua = f"<user-agent id='{AGENT}'><software>bench</software></user-agent>"
        start = (
            f"<authenticate xmlns='{ns.SASL2}' mechanism='SCRAM-SHA-256'>"
            f"<initial-response>{first}</initial-response>{ua}{inline}</authenticate>"
        )
    else:
        start = f"<auth xmlns='{ns.SASL}' mechanism='SCRAM-SHA-256'>{first}</auth>"
    challenge = await c.exchange(start, "challenge")
    server_first = scram.receive_server_first(base64.b64decode(challenge.text))
    salted = scram_crypto.salted_password(
        scram.hash,
        scram_crypto.prepare_password("secret"),
        server_first.salt,
        server_first.iterations,
    )
    final = _b64(scram.client_final(salted))
    response = f"<response xmlns='{ns.SASL2 if sasl2 else ns.SASL}'>{final}</response>"
    return await c.exchange(response, "success")


SM_ENABLE = f"<enable xmlns='{ns.SM}' resume='true'/>"
BIND2_SM = f"<bind xmlns='{ns.BIND2}'><tag>bench</tag>{SM_ENABLE}</bind>"


async def classic(port: int, direct_tls: bool) -> Client:
    """RFC 6120: (STARTTLS,) SASL SCRAM, restart, bind, then XEP-0198 <enable/>."""
    c = Client()
    await c.connect(port, direct_tls)
    await c.open()
    if not direct_tls:
        await c.starttls()
        await c.open()
    await _scram_steps(c, "alice", sasl2=False)
    await c.open()
    await c.exchange(f"<iq type='set' id='b'><bind xmlns='{ns.BIND}'/></iq>", "iq")
    await c.exchange(SM_ENABLE, "enabled")
    return c


async def sasl2_bind2_sm(port: int, direct_tls: bool, token: bool = False) -> Client:
    """XEP-0388 + XEP-0386 with SM enabled inline (and a FAST token requested)."""
    c = Client()
    await c.connect(port, direct_tls)
    await c.open()
    if not direct_tls:
        await c.starttls()
        await c.open()
    inline = BIND2_SM
    if token:
        inline += f"<request-token xmlns='{FAST}' mechanism='HT-SHA-256-NONE'/>"
    c.success = await _scram_steps(c, "alice", sasl2=True, inline=inline)
    return c


async def fast_login(port: int, token: str, inline: str, pipelined: bool) -> Client:
    """FAST: one HT message; pipelined = sent with the stream header (cached features)."""
    c = Client()
    await c.connect(port, True)
    ua = f"<user-agent id='{AGENT}'><software>bench</software></user-agent>"
    auth = (
        f"<authenticate xmlns='{ns.SASL2}' mechanism='HT-SHA-256-NONE'>"
        f"<initial-response>{_b64(format_initial('alice', token))}</initial-response>"
        f"{ua}<fast xmlns='{FAST}'/>{inline}</authenticate>"
    )
    if pipelined:
        c.send(HEADER)
        c.success = await c.exchange(auth, "success")
    else:
        await c.open()
        c.success = await c.exchange(auth, "success")
    return c


async def _fast(port: int, *, token: str, pipelined: bool) -> Client:
    return await fast_login(port, token, BIND2_SM, pipelined)


async def new_token(port: int) -> str:
    seed = await sasl2_bind2_sm(port, True, token=True)
    assert seed.success is not None
    token = seed.success.find("token", FAST)
    assert token is not None
    seed.close()
    return token.attrs["token"]


# -- the runs --------------------------------------------------------------------------------------
async def measure(
    name: str, flow: Callable[[int], Awaitable[Client]], port: int, runs: int
) -> dict[str, Any]:
    times: list[float] = []
    trips = 0
    for _ in range(runs):
        start = time.perf_counter()
        client = await flow(port)
        times.append((time.perf_counter() - start) * 1000)
        trips = client.round_trips
        client.close()
        await asyncio.sleep(0.01)
    return {"flow": name, "round_trips": trips, "median_ms": round(statistics.median(times), 1)}


async def run(runs: int, rtts: list[float]) -> list[dict[str, Any]]:
    data = Path(tempfile.mkdtemp(prefix="meerkat-rtt-"))
    config = {
        "general": {"data_dir": str(data), "loglevel": "error"},
        "listen": {
            "c2s": [
                {"port": _free_port(), "ip_address": "127.0.0.1", "shaper": "none"},
                {
                    "port": _free_port(),
                    "ip_address": "127.0.0.1",
                    "shaper": "none",
                    "tls": {"mode": "tls"},
                },
            ]
        },
        "modules": {name: {} for name in DEFAULT_MODULES}
        | {"mod_stream_management": {"resume_timeout": 60}},
    }
    node = Node(config_from_dict(config, MODULES, DEFAULT_MODULES))
    await node.start()
    results: list[dict[str, Any]] = []
    try:
        assert node.accounts is not None
        for user in ("alice", "bob"):
            await node.accounts.register(Jid(user, "localhost"), "secret")
        for rtt in rtts:
            proxies = [DelayProxy(node.c2s_port(i), rtt / 2000) for i in (0, 1)]
            starttls_port, tls_port = [await p.start() for p in proxies]
            fresh: list[tuple[str, Callable[[int], Awaitable[Client]], int]] = [
                ("classic: STARTTLS, SCRAM, bind, SM", lambda p: classic(p, False), starttls_port),
                ("classic: direct TLS, SCRAM, bind, SM", lambda p: classic(p, True), tls_port),
                ("SASL2+Bind2+SM: STARTTLS", lambda p: sasl2_bind2_sm(p, False), starttls_port),
                ("SASL2+Bind2+SM: direct TLS", lambda p: sasl2_bind2_sm(p, True), tls_port),
                ("SASL2+Bind2+SM+token", lambda p: sasl2_bind2_sm(p, True, True), tls_port),
            ]  # fmt: skip
            for name, flow, port in fresh:
                results.append({"rtt_ms": rtt, **await measure(name, flow, port, runs)})
            # The logins above asked for tokens, each replacing the unused one: take a new one.
            token = await new_token(node.c2s_port(1))
            fast = [
                ("reconnect: FAST+Bind2+SM", False),
                ("reconnect: FAST+Bind2+SM, pipelined", True),
            ]
            for name, pipelined in fast:
                flow = functools.partial(_fast, token=token, pipelined=pipelined)
                results.append({"rtt_ms": rtt, **await measure(name, flow, tls_port, runs)})
            resumed = await measure_resume(tls_port, token, rtt, max(3, runs // 2))
            results.append({"rtt_ms": rtt, **resumed})
            for proxy in proxies:
                await proxy.stop()
    finally:
        await node.stop(timeout=5)
    return results


async def measure_resume(port: int, token: str, rtt: float, runs: int) -> dict[str, Any]:
    """XEP-0198 resumption inline in a FAST login, after the old socket was aborted."""
    times: list[float] = []
    trips = 0
    for _ in range(runs):
        old = await fast_login(port, token, BIND2_SM, False)
        assert old.success is not None
        bound = old.success.find("bound", ns.BIND2)
        smid = bound.find("enabled", ns.SM).attrs["id"]  # type: ignore[union-attr]
        old.close()
        await asyncio.sleep(0.1 + rtt / 1000)  # the server notices and detaches
        resume = f"<resume xmlns='{ns.SM}' previd='{smid}' h='0'/>"
        start = time.perf_counter()
        new = await fast_login(port, token, resume + BIND2_SM, False)
        times.append((time.perf_counter() - start) * 1000)
        assert new.success is not None and new.success.find("resumed", ns.SM) is not None
        trips = new.round_trips
        new.close()
        await asyncio.sleep(0.1 + rtt / 1000)
    return {
        "flow": "reconnect: FAST + SM resumption (inline)",
        "round_trips": trips,
        "median_ms": round(statistics.median(times), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--rtt-ms", type=float, nargs="+", default=[0.0, 50.0])
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    results = asyncio.run(run(args.runs, args.rtt_ms))
    print(f"{'RTT':>6}  {'round trips':>11}  {'median ms':>9}  flow")
    for r in results:
        print(f"{r['rtt_ms']:>6.0f}  {r['round_trips']:>11}  {r['median_ms']!s:>9}  {r['flow']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
