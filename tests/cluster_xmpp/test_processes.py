"""Real `meerkat` processes forming one cluster through database discovery.

Three nodes on PostgreSQL and three on one shared SQLite file: they find each other with no
command, `meerkatctl cets systemInfo` on each lists all three as available, joined and
discovered (and nothing else), and clients on different nodes subscribe, see each other's
presence and chat.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import slixmpp

from e2e.rawxmpp import RawClient
from meerkat.db import Database, DatabaseSettings

from .helpers import body_of_next_message, is_presence_from, message, presence, wait_for
from .procs import MeerkatProcess, Processes, clean

NAMES = ("node1@localhost", "node2@localhost", "node3@localhost")


async def fresh_database(
    driver: str, tmp_path: Path, make_db_settings: Callable[..., Awaitable[DatabaseSettings]]
) -> DatabaseSettings:
    """An empty database with Meerkat's schema, shared by every process of the test."""
    if driver == "sqlite":
        settings = DatabaseSettings(driver="sqlite", database=str(tmp_path / "shared.sqlite3"))
    else:
        settings = await make_db_settings(driver)
    db = await Database.open(settings, tmp_path)
    try:
        await db.create_schema()
    finally:
        await db.close()
    return settings


@pytest.fixture(params=["sqlite", pytest.param("pgsql", marks=pytest.mark.pg)])
async def group(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    make_db_settings: Callable[..., Awaitable[DatabaseSettings]],
) -> AsyncIterator[Processes]:
    settings = await fresh_database(request.param, tmp_path, make_db_settings)
    procs = Processes(tmp_path, settings)
    try:
        yield procs
    finally:
        procs.close()


async def register(node: MeerkatProcess, *users: str) -> None:
    for user in users:
        await node.graphql(
            f'mutation {{ account {{ registerUser(username: "{user}", domain: "localhost", '
            f'password: "secret") {{ jid }} }} }}'
        )


async def slixmpp_client(jid: str, port: int) -> slixmpp.ClientXMPP:
    client = slixmpp.ClientXMPP(jid, "secret")
    client.ssl_context.check_hostname = False
    client.ssl_context.verify_mode = ssl.CERT_NONE
    client.auto_authorize = True
    client.auto_subscribe = True
    started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    client.add_event_handler("session_start", lambda _: started.done() or started.set_result(None))
    client.connect("127.0.0.1", port)
    await asyncio.wait_for(started, 10)
    return client


async def raw_client(node: MeerkatProcess, user: str, resource: str) -> RawClient:
    client = await RawClient.connect(node.c2s)
    await client.login(user, resource=resource)
    return client


def collect(client: slixmpp.ClientXMPP, event: str) -> list[Any]:
    seen: list[Any] = []
    client.add_event_handler(event, seen.append)
    return seen


async def test_three_nodes_find_each_other_and_serve_one_domain(group: Processes) -> None:
    nodes = await group.start(*NAMES)
    await group.wait_clean(nodes)
    for node in nodes:  # what an operator runs
        info = (await node.ctl_json("cets", "systemInfo"))["cets"]["systemInfo"]
        assert clean(info, list(NAMES)), json.dumps(info)
    tables = (await nodes[2].ctl_json("cets", "tableInfo"))["cets"]["tableInfo"]
    assert {t["tableName"] for t in tables} >= {"session", "cluster_id"}
    assert all(t["nodes"] == list(NAMES) for t in tables)
    n1, n2, n3 = nodes
    await register(n1, "alice", "bob", "carol")
    alice = await slixmpp_client("alice@localhost/a", n1.c2s)
    bob = await slixmpp_client("bob@localhost/b", n2.c2s)
    carol = await raw_client(n3, "carol", "c")
    try:
        await alice.get_roster()
        await bob.get_roster()
        alice.send_presence()
        bob.send_presence()
        alice.send_presence(pto="bob@localhost", ptype="subscribe")
        await wait_for(
            lambda: (
                alice.client_roster["bob@localhost"]["subscription"] == "both"
                and bob.client_roster["alice@localhost"]["subscription"] == "both"
            ),
            what="a mutual subscription across nodes",
        )
        await wait_for(lambda: bool(alice.client_roster["bob@localhost"].resources), what="bob")
        await wait_for(lambda: bool(bob.client_roster["alice@localhost"].resources), what="alice")
        got_bob = collect(bob, "message")
        got_alice = collect(alice, "message")
        alice.send_message("bob@localhost", "hello from node1", mtype="chat")
        await wait_for(lambda: bool(got_bob), what="bob's message")
        assert got_bob[0]["body"] == "hello from node1"
        assert str(got_bob[0]["from"]) == "alice@localhost/a"
        carol.send(message("alice@localhost", "hello from node3"))
        await wait_for(lambda: bool(got_alice), what="alice's message")
        assert got_alice[0]["body"] == "hello from node3"
        carol.send(presence(to="bob@localhost/b"))  # directed presence across nodes
        await wait_for(
            lambda: bool(bob.client_roster["carol@localhost"].resources), what="carol's presence"
        )
        bob.send_message("carol@localhost/c", "and back to node3", mtype="chat")
        assert await body_of_next_message(carol) == "and back to node3"
        data = await n3.ctl_json("session", "listSessions")
        listed = {(s["user"], s["node"]) for s in data["session"]["listSessions"]}
        assert listed == {
            ("alice@localhost/a", "node1@localhost"),
            ("bob@localhost/b", "node2@localhost"),
            ("carol@localhost/c", "node3@localhost"),
        }
    finally:
        alice.disconnect()
        bob.disconnect()
        await carol.close()
    await asyncio.sleep(0)


async def test_a_killed_node_is_cleaned_up_under_traffic_and_a_new_node_joins(
    group: Processes,
) -> None:
    n1, n2, n3 = await group.start(*NAMES)
    await group.wait_clean([n1, n2, n3])
    await register(n1, "alice", "bob", "carol")
    await n1.graphql(
        'mutation { roster { setMutualSubscription(userA: "alice@localhost", '
        'userB: "carol@localhost", action: CONNECT) } }'
    )
    alice = await raw_client(n1, "alice", "a")
    bob = await raw_client(n2, "bob", "b")
    carol = await raw_client(n3, "carol", "c")
    for client in (alice, bob, carol):
        client.send(presence())
    await alice.expect(is_presence_from("carol@localhost/c"))
    received: list[str] = []
    stop = asyncio.Event()

    async def traffic() -> None:
        i = 0
        while not stop.is_set():
            alice.send(message("bob@localhost/b", f"m{i}"))
            i += 1
            await asyncio.sleep(0.01)

    async def receive() -> None:
        while True:
            received.append(await body_of_next_message(bob, 10))

    sender = asyncio.create_task(traffic())
    reader = asyncio.create_task(receive())
    try:
        await wait_for(lambda: len(received) > 20, what="traffic flowing")
        n3.kill()
        killed_at = asyncio.get_running_loop().time()
        for node in (n1, n2):
            await wait_for(
                lambda node=node: _no_sessions_of(node, "node3@localhost"),  # type: ignore[misc]
                10,
                what=f"{node.name} to clean up",
            )
        cleaned_in = asyncio.get_running_loop().time() - killed_at
        await alice.expect(is_presence_from("carol@localhost/c", "unavailable"))
        before = len(received)
        await wait_for(lambda: len(received) > before + 20, what="traffic still flowing")
    finally:
        stop.set()
        await sender
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
    assert cleaned_in < 5.0
    assert received == [f"m{i}" for i in range(len(received))], "lost or reordered messages"
    # A message to Carol now waits in offline storage.
    alice.send(message("carol@localhost", "after the crash"))
    n4 = (await group.start("node4@localhost"))[0]
    await wait_for(
        lambda: _joined(n1, n2, n4), 30, what="the replacement node to join"
    )  # (node3's row stays discovered until node_expiry, as in MongooseIM)
    info = await n4.system_info()
    assert info["joinedNodes"] == ["node1@localhost", "node2@localhost", "node4@localhost"]
    carol_again = await raw_client(n4, "carol", "again")
    carol_again.send(presence())
    assert await body_of_next_message(carol_again) == "after the crash"
    for client in (alice, bob, carol_again):
        await client.close()


def _no_sessions_of(node: MeerkatProcess, dead: str) -> Awaitable[bool]:
    async def check() -> bool:
        return all(n != dead for _, n in await node.sessions())

    return check()


def _joined(*nodes: MeerkatProcess) -> Awaitable[bool]:
    names = sorted(n.name for n in nodes)

    async def check() -> bool:
        for node in nodes:
            if (await node.system_info())["joinedNodes"] != names:
                return False
        return True

    return check()
