"""mod_disco and mod_caps: XEP-0030 lists exactly what is enabled; XEP-0115 hashes it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from kernel_harness import Server, assert_same

from meerkat.core.hooks import C2S_STREAM_FEATURES, DISCO_LOCAL_FEATURES
from meerkat.modules.caps import forms_of, identities_of, verification_string
from meerkat.modules.disco import DiscoConfig, ServerInfoField
from meerkat.xmpp.element import Element
from meerkat.xmpp.errors import error_condition

INFO = 'xmlns="http://jabber.org/protocol/disco#info"'
ITEMS = 'xmlns="http://jabber.org/protocol/disco#items"'


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    s = Server()
    await s.start(
        {
            "mod_disco": DiscoConfig(
                extra_domains=("muc.localhost",),
                server_info=(ServerInfoField("abuse-addresses", ("mailto:abuse@localhost",)),),
            ),
            "mod_roster": None,
            "mod_presence": None,
            "mod_ping": None,
            "mod_version": None,
            "mod_caps": None,
            "mod_last": None,
        }
    )
    yield s
    await s.stop()


def features(reply: Element) -> list[str]:
    query = reply.find("query")
    assert query is not None, str(reply)
    return [f.attrs["var"] for f in query.find_all("feature")]


async def test_server_disco_info_lists_exactly_the_enabled_features(server: Server) -> None:
    alice = await server.login("alice")
    reply = await alice.iq(f'<iq type="get" to="localhost"><query {INFO}/></iq>')
    assert features(reply) == sorted(
        [
            "http://jabber.org/protocol/disco#info",
            "http://jabber.org/protocol/disco#items",
            "jabber:iq:last",
            "jabber:iq:roster",
            "jabber:iq:version",
            "urn:xmpp:ping",
        ]
    )
    query = reply.find("query")
    assert query is not None
    identity = query.find("identity")
    assert identity is not None and identity.attrs == {
        "category": "server",
        "type": "im",
        "name": "Meerkat",
    }
    form = query.find("x", "jabber:x:data")
    assert form is not None
    assert forms_of([form]) == [
        {
            "FORM_TYPE": ["http://jabber.org/network/serverinfo"],
            "abuse-addresses": ["mailto:abuse@localhost"],
        }
    ]


async def test_disco_items_lists_services_and_unknown_nodes_are_item_not_found(
    server: Server,
) -> None:
    alice = await server.login("alice")
    reply = await alice.iq(f'<iq type="get" to="localhost"><query {ITEMS}/></iq>')
    assert_same(
        reply,
        f'<iq type="result" id="q1" from="localhost" to="alice@localhost/res">'
        f'<query {ITEMS}><item jid="muc.localhost"/></query></iq>',
    )
    missing = await alice.iq(f'<iq type="get" to="localhost"><query {INFO} node="nope"/></iq>')
    assert error_condition(missing) == "item-not-found"
    missing = await alice.iq(f'<iq type="get" to="localhost"><query {ITEMS} node="nope"/></iq>')
    assert error_condition(missing) == "item-not-found"


async def test_a_users_own_account_answers_with_the_registered_identity(server: Server) -> None:
    alice = await server.login("alice")
    reply = await alice.iq(f'<iq type="get" to="alice@localhost"><query {INFO}/></iq>')
    assert_same(
        reply,
        f'<iq type="result" id="q1" from="alice@localhost" to="alice@localhost/res">'
        f'<query {INFO}><identity category="account" type="registered"/>'
        '<feature var="http://jabber.org/protocol/disco#info"/>'
        '<feature var="http://jabber.org/protocol/disco#items"/>'
        '<feature var="jabber:iq:last"/></query></iq>',
    )


async def test_strangers_cannot_discover_an_account(server: Server) -> None:
    await server.register("bob")
    alice = await server.login("alice")
    reply = await alice.iq(f'<iq type="get" to="bob@localhost"><query {INFO}/></iq>')
    assert error_condition(reply) == "service-unavailable"


async def test_disabled_modules_leave_no_feature_behind() -> None:
    server = Server()
    await server.start({"mod_disco": None})
    try:
        alice = await server.login("alice")
        reply = await alice.iq(f'<iq type="get" to="localhost"><query {INFO}/></iq>')
        assert features(reply) == [
            "http://jabber.org/protocol/disco#info",
            "http://jabber.org/protocol/disco#items",
        ]
    finally:
        await server.stop()


async def test_caps_in_stream_features_hash_the_servers_disco_info(server: Server) -> None:
    alice = await server.login("alice")
    feats: list[Element] = []
    await server.hooks.run(C2S_STREAM_FEATURES, "localhost", feats, {"session": alice})
    [c] = feats
    assert c.name == "c" and c.xmlns == "http://jabber.org/protocol/caps"
    info = await alice.iq(f'<iq type="get" to="localhost"><query {INFO}/></iq>')
    query = info.find("query")
    assert query is not None
    expected = verification_string(
        identities_of(query.find_all("identity")),
        features(info),
        forms_of(query.find_all("x", "jabber:x:data")),
    )
    assert c.attrs["ver"] == expected and c.attrs["hash"] == "sha-1"

    # §6.2: the node#ver answers with the same info.
    node = f"{c.attrs['node']}#{expected}"
    by_node = await alice.iq(
        f'<iq type="get" to="localhost" id="q2"><query {INFO} node="{node}"/></iq>'
    )
    assert features(by_node) == features(info)
    bad = await alice.iq(
        f'<iq type="get" to="localhost" id="q3"><query {INFO} node="{c.attrs["node"]}#x"/></iq>'
    )
    assert error_condition(bad) == "item-not-found"


async def test_the_caps_hash_is_reused_until_the_servers_features_change(server: Server) -> None:
    alice = await server.login("alice")

    async def ver() -> str:
        feats: list[Element] = []
        await server.hooks.run(C2S_STREAM_FEATURES, "localhost", feats, {"session": alice})
        return feats[0].attrs["ver"]

    calls: list[str] = []

    async def extra(acc: list[str], params: dict[str, object]) -> object:
        calls.append("disco")
        acc.append("urn:example:extra")
        return None

    first = await ver()
    assert await ver() == first
    server.hooks.add(DISCO_LOCAL_FEATURES, None, extra, 50, owner="test")
    second = await ver()
    assert second != first and calls == ["disco"]
    assert await ver() == second and calls == ["disco"]  # cached again
    server.hooks.remove_owner("test")
    assert await ver() == first
