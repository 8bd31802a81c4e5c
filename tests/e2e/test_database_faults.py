"""A node whose database misbehaves under traffic: connections killed from the database side
(`pg_terminate_backend`, MariaDB `KILL`), the database going away (a TCP proxy between the
node and the database is cut) and hanging (the proxy swallows everything).

The promise checked: the node and its sessions survive; a request hitting the outage gets an
XMPP error (SASL `temporary-auth-failure`, an IQ or message error) within about
`query_timeout` instead of a hang; everything works again afterwards without a restart; and a
message the server accepted for an offline user (no error came back) is stored, then
delivered. The node runs as in production: a failing hook handler is logged, not re-raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from meerkat.config import config_from_dict
from meerkat.db import Database, DatabaseSettings, Transaction
from meerkat.modules import DEFAULT_MODULES, MODULES
from meerkat.server import Node
from meerkat.xmpp import ns
from meerkat.xmpp.element import Element
from meerkat.xmpp.jid import Jid
from meerkat.xmpp.stream import parse_element
from storage.tcp_proxy import TcpProxy

from .conftest import node_config
from .rawxmpp import RawClient, logged_in
from .test_databases import loopback_cluster, outgoing_pools

SERVER_DRIVERS = [
    pytest.param("pgsql", id="pgsql", marks=pytest.mark.pg),
    pytest.param("mysql", id="mysql", marks=pytest.mark.mysql),
]
QUERY_TIMEOUT = 1.0
ANSWER_WITHIN = QUERY_TIMEOUT * 2 + 1  # a generous bound: an error, never a hang
USERS = ("alice", "bob", "carol", "dave")
RETRYABLE = {"internal-server-error", "resource-constraint"}


async def kill_sessions(admin: Database, ports: list[int]) -> int:
    """Kill, from the database side, the sessions whose client port is in `ports`."""
    if admin.dialect.name == "pgsql":
        rows = await admin.fetchall(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE client_port = ANY(?)",
            ports,
        )
        return len(rows)
    rows = await admin.fetchall("SELECT ID, HOST FROM information_schema.PROCESSLIST")
    victims = [int(i) for i, host in rows if str(host).rsplit(":", 1)[-1] in map(str, ports)]
    for victim in victims:
        with contextlib.suppress(Exception):  # it may be gone already
            await admin.execute(f"KILL {victim}")
    return len(victims)


@dataclass
class Setup:
    node: Node
    proxy: TcpProxy
    direct: Database  # the node's database, not through the proxy: to look at storage
    admin: Database  # another session on the same server: the "DBA" killing connections


@contextlib.asynccontextmanager
async def production_node(data_dir: Path, settings: DatabaseSettings) -> AsyncIterator[Node]:
    """A node on `settings` with USERS registered, running as in production: a failing hook
    handler is logged, not re-raised as the test fixture `start_node` does."""
    modules: dict[str, object] = {name: {} for name in DEFAULT_MODULES}
    modules["mod_offline"] = {"max_user_offline_messages": 100_000}
    data = node_config(
        data_dir,
        outgoing_pools=outgoing_pools(settings),
        modules=modules,
        internal_databases=loopback_cluster(),
    )
    node = Node(config_from_dict(data, MODULES, DEFAULT_MODULES))
    await node.start()
    try:
        assert node.accounts is not None
        for user in USERS:
            await node.accounts.register(Jid(user, "localhost"), "secret")
        yield node
    finally:
        await node.stop(timeout=5)


@pytest.fixture(params=SERVER_DRIVERS)
async def setup(
    request: pytest.FixtureRequest,
    make_database: Callable[..., Awaitable[Database]],
    tmp_path: Path,
) -> AsyncIterator[Setup]:
    driver = str(request.param)
    direct = await make_database(driver)
    admin = await make_database(driver, create_schema=False)
    proxy = TcpProxy(direct.settings.host, direct.settings.port or 0)
    await proxy.start()
    through_proxy = direct.settings.replace(
        host="127.0.0.1",
        port=proxy.port,
        query_timeout=QUERY_TIMEOUT,
        connect_timeout=QUERY_TIMEOUT,
        workers=4,
    )
    try:
        async with production_node(tmp_path / "node", through_proxy) as node:
            yield Setup(node, proxy, direct, admin)
    finally:
        await proxy.close()


class Reader:
    """Reads one raw client in the background: errors by stanza id, IQ answers, messages."""

    def __init__(self, client: RawClient) -> None:
        self.client = client
        self.errors: dict[str, str] = {}  # id -> condition
        self.messages: list[str] = []  # ids
        self._iqs: dict[str, asyncio.Future[Element]] = {}

    async def run(self) -> None:
        while True:
            el = await self.client.next_event(timeout=3600)
            if not isinstance(el, Element):
                continue
            mid = el.attrs.get("id", "")
            if el.attrs.get("type") == "error":
                self.errors[mid] = error_condition(el)
            elif el.name == "message":
                self.messages.append(mid)
            if el.name == "iq" and mid in self._iqs and not self._iqs[mid].done():
                self._iqs[mid].set_result(el)

    async def iq(self, payload: str, timeout: float) -> Element:
        iq_id = f"iq{len(self._iqs)}"
        self._iqs[iq_id] = asyncio.get_running_loop().create_future()
        self.client.send(f"<iq type='get' id='{iq_id}'>{payload}</iq>")
        return await asyncio.wait_for(self._iqs[iq_id], timeout)

    async def roster_get(self) -> tuple[str, float]:
        """A roster request: (reply type or error condition, seconds it took)."""
        started = time.monotonic()
        reply = await self.iq(f"<query xmlns='{ns.ROSTER}'/>", ANSWER_WITHIN + 2)
        kind = reply.attrs["type"] if reply.attrs["type"] != "error" else error_condition(reply)
        return kind, time.monotonic() - started


@dataclass
class Chatter:
    """Alice writes to online bob and to offline carol every `period` seconds; `sent` holds
    every id in order. Bob only reads, so his session is free to probe the database."""

    alice: Reader
    bob: Reader
    period: float = 0.02
    sent: list[str] = field(default_factory=list)

    async def write(self, stop: asyncio.Event) -> None:
        n = 0
        while not stop.is_set():
            for to, prefix in (("bob@localhost", "b"), ("carol@localhost", "c")):
                mid = f"{prefix}{n}"
                self.sent.append(mid)
                self.alice.client.send(
                    f"<message to='{to}' type='chat' id='{mid}'><body>{mid}</body></message>"
                )
            n += 1
            await asyncio.sleep(self.period)


def error_condition(el: Element) -> str:
    err = el.find("error")
    if err is None:
        return "?"
    for child in err.elements():
        if child.xmlns == ns.STANZAS_ERRORS and child.name != "text":
            return child.name
    return "?"


async def login_attempt(port: int, user: str) -> tuple[str, float]:
    """A fresh SCRAM login: ("success" or the SASL failure condition, seconds it took)."""
    started = time.monotonic()
    client = await RawClient.connect(port)
    try:
        await client.open_stream()
        await client.starttls()
        result = await asyncio.wait_for(client.scram(user, "secret"), ANSWER_WITHIN + 2)
        outcome = result.name
        if outcome == "failure":
            outcome = next((c.name for c in result.elements() if c.name != "text"), "?")
        return outcome, time.monotonic() - started
    finally:
        await client.close()


async def stored_ids(direct: Database, user: str) -> list[str]:
    rows = await direct.fetchall(
        "SELECT packet FROM offline_message WHERE server = ? AND username = ? ORDER BY id",
        "localhost",
        user,
    )
    return [parse_element(bytes(packet).decode()).attrs.get("id", "") for (packet,) in rows]


async def test_node_survives_killed_connections_an_outage_and_a_hang_losing_nothing_accepted(
    setup: Setup,
) -> None:
    port = setup.node.c2s_port(0)
    alice = Reader(await logged_in(port, "alice", "a"))
    bob = Reader(await logged_in(port, "bob", "b"))
    for reader in (alice, bob):
        reader.client.send("<presence/>")
    chatter = Chatter(alice, bob)
    stop = asyncio.Event()
    async with asyncio.TaskGroup() as tg:
        readers = [tg.create_task(alice.run()), tg.create_task(bob.run())]
        writer = tg.create_task(chatter.write(stop))
        try:
            await run_phases(setup, chatter, port)
        finally:
            stop.set()
            await writer
        # Everything alice sent has been processed once her next IQ is answered.
        pong = await alice.iq("<ping xmlns='urn:xmpp:ping'/>", 10)
        assert pong.attrs["type"] == "result"
        for task in readers:
            task.cancel()

    # The sessions survived: no stream error, both still connected.
    assert not alice.client.closed and not bob.client.closed
    errors = alice.errors
    assert errors, "the outage should have cost some requests an error"
    # KNOWN: a message whose offline storage fails (rather than the user lookup before it)
    # is bounced service-unavailable; see test_a_message_that_cannot_be_stored_...
    assert set(errors.values()) <= {*RETRYABLE, "service-unavailable"}, errors
    accepted = [m for m in chatter.sent if m.startswith("c") and m not in errors]
    stored = await stored_ids(setup.direct, "carol")
    assert not set(accepted) - set(stored), "messages accepted for carol were lost"
    # Online chat needs no database: bob got every message addressed to him.
    assert [m for m in chatter.sent if m.startswith("b")] == bob.messages
    assert not [m for m in errors if m.startswith("b")]

    # carol finally logs in and gets exactly what was stored, in order.
    carol = await logged_in(port, "carol", "c")
    carol.send("<presence/>")
    delivered: list[str] = []
    while len(delivered) < len(stored):
        msg = await carol.expect("message")
        delivered.append(msg.attrs.get("id", ""))
    assert delivered == stored
    assert await stored_ids(setup.direct, "carol") == []
    for client in (alice.client, bob.client, carol):
        await client.close()


async def run_phases(setup: Setup, chatter: Chatter, port: int) -> None:
    proxy, alice, bob = setup.proxy, chatter.alice, chatter.bob

    async def serves_normally() -> None:
        """A new login and a roster read succeed; messages to offline carol are stored."""
        assert (await login_attempt(port, "dave"))[0] == "success"
        assert (await bob.roster_get())[0] == "result"
        assert (await alice.roster_get())[0] == "result"  # her backlog is worked off
        before = len(alice.errors)
        await asyncio.sleep(0.3)
        await alice.iq("<ping xmlns='urn:xmpp:ping'/>", 5)
        assert len(alice.errors) == before, alice.errors

    async def answers_with_errors(within: float) -> None:
        """During the outage: SASL temporary-auth-failure, an IQ error, quickly."""
        outcome, took = await login_attempt(port, "dave")
        assert outcome == "temporary-auth-failure" and took < within, (outcome, took)
        kind, took = await bob.roster_get()
        assert kind == "internal-server-error" and took < within, (kind, took)

    await asyncio.sleep(0.3)
    await serves_normally()
    assert not alice.errors

    # 1. The DBA kills every connection of the node, twice, under traffic.
    for _ in range(2):
        assert await kill_sessions(setup.admin, proxy.upstream_ports()) > 0
        await asyncio.sleep(0.3)
    await serves_normally()

    # 2. The database goes away (connections reset, port closed) for a while.
    await proxy.cut()
    await answers_with_errors(within=0.5)
    await asyncio.sleep(0.5)
    await proxy.restore()
    await serves_normally()

    # 3. The database hangs: requests wait query_timeout, then get an error.
    await proxy.blackhole()
    await answers_with_errors(within=ANSWER_WITHIN)
    await proxy.restore()
    await serves_normally()


# -- a message the database cannot take ---------------------------------------------------------
@contextlib.asynccontextmanager
async def offline_table_locked(db: Database) -> AsyncIterator[None]:
    """Hold a lock that makes every write to offline_message wait (as a long DBA operation
    or a stuck transaction would); released when the block ends."""

    async def hold(tx: Transaction) -> None:
        if db.dialect.name == "pgsql":
            await tx.execute("LOCK TABLE offline_message IN ACCESS EXCLUSIVE MODE")
        elif db.dialect.name == "mysql":
            await tx.execute("LOCK TABLES offline_message WRITE")
        # sqlite: the transaction itself (BEGIN IMMEDIATE) holds the database's write lock

    async with db.transaction() as tx:
        await hold(tx)
        try:
            yield
        finally:
            if db.dialect.name == "mysql":
                await tx.execute("UNLOCK TABLES")


async def test_a_message_that_cannot_be_stored_gets_an_error_and_never_arrives(
    db_driver: str,
    make_database: Callable[..., Awaitable[Database]],
    db_data_dir: Path,
    tmp_path: Path,
) -> None:
    direct = await make_database(db_driver)
    settings = direct.settings.replace(query_timeout=QUERY_TIMEOUT, workers=2)
    if db_driver == "sqlite":
        settings = settings.replace(database=str(db_data_dir / settings.database))
    async with production_node(tmp_path / "node", settings) as node:
        port = node.c2s_port(0)
        alice = await logged_in(port, "alice", "a")
        async with offline_table_locked(direct):
            started = time.monotonic()
            alice.send("<message to='carol@localhost' type='chat' id='m1'><body>x</body></message>")
            reply = await alice.expect(lambda e: e.attrs.get("id") == "m1", timeout=10)
            took = time.monotonic() - started
        assert reply.attrs.get("type") == "error" and took < 10, (reply, took)
        assert await stored_ids(direct, "carol") == []
        carol = await logged_in(port, "carol", "c")
        carol.send("<presence/><iq type='get' id='sync'><ping xmlns='urn:xmpp:ping'/></iq>")
        first = await carol.expect(lambda e: e.name == "message" or e.attrs.get("id") == "sync")
        assert first.attrs.get("id") == "sync", "a message the sender was told failed arrived"
        # The node is fine: the next message to carol's bare JID... she is online now.
        for client in (alice, carol):
            await client.close()
    condition = error_condition(reply)
    assert condition in RETRYABLE, condition
