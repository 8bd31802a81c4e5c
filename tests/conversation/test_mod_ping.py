"""mod_ping: XEP-0199 pings to the server and accounts, and keepalive pings to quiet clients."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from kernel_harness import Client, Server, assert_same, wait_for

from meerkat.core.hooks import USER_SEND_PACKET
from meerkat.modules.ping import PingConfig, PingModule

PING = '<ping xmlns="urn:xmpp:ping"/>'
FAST = PingConfig(ping_interval=0.05, ping_req_timeout=0.05, timeout_action="kill")


async def started(config: PingConfig) -> Server:
    server = Server()
    await server.start({"mod_ping": config})
    return server


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    s = await started(FAST)
    yield s
    await s.stop()


def pings(client: Client) -> list[str]:
    return [e.attrs["id"] for e in client.inbox if e.name == "iq" and e.find("ping") is not None]


async def test_the_server_answers_a_ping() -> None:
    server = await started(PingConfig(send_pings=False))
    try:
        alice = await server.login("alice")
        reply = await alice.iq(f'<iq type="get" to="localhost">{PING}</iq>')
        assert_same(reply, '<iq type="result" id="q1" from="localhost" to="alice@localhost/res"/>')
    finally:
        await server.stop()


async def test_a_ping_to_a_bare_jid_is_answered_by_the_server_for_the_account() -> None:
    server = await started(PingConfig(send_pings=False))
    try:
        await server.register("bob")
        alice = await server.login("alice")
        reply = await alice.iq(f'<iq type="get" to="bob@localhost">{PING}</iq>')
        assert_same(
            reply, '<iq type="result" id="q1" from="bob@localhost" to="alice@localhost/res"/>'
        )
    finally:
        await server.stop()


async def test_a_quiet_client_that_does_not_answer_is_killed(server: Server) -> None:
    alice = await server.login("alice")
    await wait_for(lambda: bool(pings(alice)))
    assert_same(
        alice.inbox[0],
        f'<iq type="get" from="localhost" to="alice@localhost/res">{PING}</iq>',
        ignore=["id"],
    )
    await wait_for(lambda: alice.kicked is not None)
    assert alice.kicked == "connection-timeout"


async def test_a_client_that_answers_pings_stays_connected(server: Server) -> None:
    alice = await server.login("alice")
    for _ in range(3):
        await wait_for(lambda: bool(pings(alice)))
        [ping_id] = pings(alice)
        alice.take()
        await alice.say(f'<iq type="result" id="{ping_id}" to="localhost"/>')
    assert alice.kicked is None


async def test_a_busy_client_is_not_pinged() -> None:
    server = await started(PingConfig(ping_interval=0.2, ping_req_timeout=0.05))
    try:
        alice = await server.login("alice")
        for _ in range(6):
            await alice.say("<message to='localhost'/>")
            await asyncio.sleep(0.05)  # the point: time passes, but never 0.2 s of silence
        assert pings(alice) == []
    finally:
        await server.stop()


async def test_one_sweeper_watches_every_session_and_ends_with_the_module(
    server: Server,
) -> None:
    alice = await server.login("alice")
    await server.login("bob")
    module = server.ctx.module("mod_ping")
    assert isinstance(module, PingModule)
    assert len(server.tasks) == 1  # not one per session
    assert len(module._watches) == 2
    await alice.disconnect()
    await wait_for(lambda: len(module._watches) == 1)
    await server.manager.stop()
    await wait_for(lambda: not len(server.tasks))
    assert module._watches == {}


async def test_an_unanswered_ping_is_given_its_whole_timeout() -> None:
    server = await started(PingConfig(ping_interval=0.05, ping_req_timeout=0.3))
    try:
        alice = await server.login("alice")
        await wait_for(lambda: bool(pings(alice)))
        pinged = asyncio.get_running_loop().time()
        await wait_for(lambda: alice.kicked is not None)
        assert asyncio.get_running_loop().time() - pinged >= 0.29
        assert alice.kicked == "connection-timeout"
    finally:
        await server.stop()


async def test_the_module_adds_no_handler_to_the_stanzas_a_client_sends(server: Server) -> None:
    # Activity is read from the session's counter by the sweeper (issue 6: per-stanza cost).
    assert not server.hooks.has_handlers(USER_SEND_PACKET, "localhost")


async def test_a_busy_client_resumed_on_this_node_is_not_pinged() -> None:
    server = await started(PingConfig(ping_interval=0.2, ping_req_timeout=0.05))
    try:
        alice = await server.login("alice")
        # A resumption keeps the sid and swaps the session behind it (C2SSession.take_over):
        # the new session's stanzas are what counts from then on.
        resumed = Client(server, alice.jid)
        resumed._record = alice.record
        alice.connected = False
        await server.sessions.open(alice.record, resumed)
        for _ in range(4):  # the old session's count never moves again
            await resumed.say("<message to='localhost'/>")
            await asyncio.sleep(0.05)
        for _ in range(6):
            await resumed.say("<message to='localhost'/>")
            await asyncio.sleep(0.05)  # never 0.2 s of silence on the new connection
        assert pings(resumed) == [] and pings(alice) == []
    finally:
        await server.stop()
