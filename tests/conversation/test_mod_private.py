"""mod_private: XEP-0049 private XML storage."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from kernel_harness import Server, assert_same

from meerkat.stores import UserKey
from meerkat.xmpp.errors import error_condition

PRIV = 'xmlns="jabber:iq:private"'
NOTES = '<storage xmlns="storage:rosternotes"><note jid="bob@localhost">nice</note></storage>'


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    s = Server()
    await s.start({"mod_private": None})
    yield s
    await s.stop()


async def test_stored_xml_comes_back_and_unknown_namespaces_come_back_empty(server: Server) -> None:
    alice = await server.login("alice")
    reply = await alice.iq(f'<iq type="set"><query {PRIV}>{NOTES}</query></iq>')
    assert reply.attrs["type"] == "result" and not reply.children
    got = await alice.iq(
        f'<iq type="get"><query {PRIV}><storage xmlns="storage:rosternotes"/>'
        '<prefs xmlns="urn:example:prefs"/></query></iq>'
    )
    assert_same(
        got,
        f'<iq type="result" id="q1" from="alice@localhost" to="alice@localhost/res">'
        f'<query {PRIV}>{NOTES}<prefs xmlns="urn:example:prefs"/></query></iq>',
    )


async def test_someone_elses_storage_is_forbidden(server: Server) -> None:
    await server.register("bob")
    alice = await server.login("alice")
    reply = await alice.iq(
        f'<iq type="get" to="bob@localhost"><query {PRIV}>'
        '<storage xmlns="storage:rosternotes"/></query></iq>'
    )
    assert error_condition(reply) == "forbidden"


@pytest.mark.parametrize("child", ['<x xmlns="jabber:client"/>', '<x xmlns="jabber:iq:private"/>'])
async def test_protocol_namespaces_are_not_acceptable(server: Server, child: str) -> None:
    alice = await server.login("alice")
    reply = await alice.iq(f'<iq type="set"><query {PRIV}>{child}</query></iq>')
    assert error_condition(reply) == "not-acceptable"


async def test_an_empty_query_is_a_bad_request(server: Server) -> None:
    alice = await server.login("alice")
    reply = await alice.iq(f'<iq type="get"><query {PRIV}/></iq>')
    assert error_condition(reply) == "bad-request"


async def test_removing_the_account_removes_its_private_xml(server: Server) -> None:
    alice = await server.login("alice")
    await alice.iq(f'<iq type="set"><query {PRIV}>{NOTES}</query></iq>')
    await server.accounts.remove(alice.jid.bare)
    assert (
        await server.stores.private.get(UserKey("localhost", "alice"), "storage:rosternotes")
        is None
    )
