"""XEP-0198 across real `meerkat` processes: a session resumed on another process, and a
process killed with SIGKILL while its client had unacknowledged messages (they end in the
recipient's offline storage, once each, and the dead node's SM-ID cannot be resumed)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from e2e.rawxmpp import RawClient
from meerkat.db import DatabaseSettings
from meerkat.xmpp import ns

from .helpers import is_presence_from, message, presence, wait_for
from .procs import MeerkatProcess, Processes
from .sm_helpers import SM, body, delay_of, enable_sm, messages, resume
from .test_processes import fresh_database, raw_client, register

ALICE = "alice@localhost/phone"


@pytest.fixture
async def group(tmp_path: Path) -> AsyncIterator[Processes]:
    settings = await fresh_database("sqlite", tmp_path, _no_server)
    processes = Processes(tmp_path, settings)
    try:
        yield processes
    finally:
        processes.close()


@pytest.fixture
async def pair(group: Processes) -> tuple[MeerkatProcess, MeerkatProcess]:
    n1, n2 = await group.start("node1@localhost", "node2@localhost")
    await group.wait_clean([n1, n2])
    await register(n1, "alice", "bob")
    return n1, n2


def offline_count(group: Processes, user: str) -> int:
    """Messages waiting in `user`'s offline storage (read from the shared SQLite file)."""
    with sqlite3.connect(group.db.database) as db:
        (count,) = db.execute(
            "SELECT count(*) FROM offline_message WHERE username = ?", (user,)
        ).fetchone()
    return int(count)


async def _no_server(driver: str) -> DatabaseSettings:
    raise AssertionError("sqlite only")


async def table_size(node: MeerkatProcess, name: str) -> int:
    data = await node.graphql("{ cets { tableInfo { tableName size } } }")
    return next(t["size"] for t in data["cets"]["tableInfo"] if t["tableName"] == name)


async def bodies_until_pong(client: RawClient) -> list[str]:
    """Bodies of the messages that arrive before the answer to a ping (a barrier)."""
    client.send("<iq type='get' id='barrier'><ping xmlns='urn:xmpp:ping'/></iq>")
    seen = []
    while True:
        el = await client.expect(lambda e: e.name == "message" or e.attrs.get("id") == "barrier")
        if el.name != "message":
            return seen
        seen.append(el.find_text("body") or "")


async def test_a_session_resumed_on_another_process_leaves_the_first_one(
    pair: tuple[MeerkatProcess, MeerkatProcess],
) -> None:
    n1, n2 = pair
    bob = await raw_client(n2, "bob", "b")
    alice = await raw_client(n1, "alice", "phone")
    alice.send(presence())
    await alice.expect(is_presence_from(ALICE))
    smid = await enable_sm(alice)
    bob.send(message(ALICE, "unacked"))
    assert [body(m) for m in await messages(alice, 1)] == ["unacked"]
    alice.writer.transport.abort()
    new, resumed = await resume(n2.c2s, "alice", smid, 0, tls="starttls")
    assert resumed.name == "resumed"
    got = await messages(new, 1)
    assert body(got[0]) == "unacked" and delay_of(got[0]) is not None
    for node in (n1, n2):
        sessions = await node.sessions()
        assert (ALICE, "node2@localhost") in sessions and (ALICE, "node1@localhost") not in sessions
    bob.send(message("alice@localhost", "later"))
    assert [body(m) for m in await messages(new, 1)] == ["later"]
    await new.close()
    await bob.close()


async def test_unacked_messages_of_a_killed_process_wait_offline_and_its_id_is_gone(
    group: Processes, pair: tuple[MeerkatProcess, MeerkatProcess]
) -> None:
    n1, n2 = pair  # node2 is left alone: it leads every table and cleans up
    bob = await raw_client(n2, "bob", "b")
    alice = await raw_client(n1, "alice", "phone")
    alice.send(presence())
    await alice.expect(is_presence_from(ALICE))
    smid = await enable_sm(alice)
    for i in range(1, 5):
        bob.send(message(ALICE, f"m{i}"))
    assert [body(m) for m in await messages(alice, 4)] == ["m1", "m2", "m3", "m4"]
    alice.send(f"<a {SM} h='1'/>")  # m1 only
    await wait_for(
        lambda: _size_is(n2, "stream_management_buffer", 3), what="m2..m4 mirrored on node2"
    )
    n1.kill()
    alice.writer.transport.abort()
    await wait_for(lambda: offline_count(group, "alice") == 3, what="node2 to store them")
    assert await table_size(n2, "stream_management_buffer") == 0
    await wait_for(lambda: _no_alice(n2), what="node2 to drop node1's sessions")
    late, failed = await resume(n2.c2s, "alice", smid, 1, tls="starttls")
    assert failed.name == "failed" and failed.find("item-not-found", ns.STANZAS_ERRORS) is not None
    await late.bind("phone")
    late.send(presence())
    got = await messages(late, 3)
    assert [body(m) for m in got] == ["m2", "m3", "m4"]
    assert all(delay_of(m) is not None for m in got)
    assert await bodies_until_pong(late) == []
    await late.close()
    await bob.close()


async def _size_is(node: MeerkatProcess, table: str, size: int) -> bool:
    return await table_size(node, table) == size


async def _no_alice(node: MeerkatProcess) -> bool:
    return all(not user.startswith("alice@") for user, _ in await node.sessions())
