"""mod_csi: XEP-0352 holds presence and chat states for inactive clients, then flushes in order.

Uses the c2s-like sessions of test_mod_carbons.py (mailbox, USER_RECEIVE_PACKET,
XMPP_PRESEND_ELEMENT through `send_element`, USER_SEND_XMLEL).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from kernel_harness import HOST, assert_xml
from test_mod_carbons import CARBONS, C2SClient, C2SServer, enabled, forget, online, started

from meerkat.core.hooks import BIND2_STREAM_FEATURES, C2S_STREAM_FEATURES, XMPP_PRESEND_ELEMENT
from meerkat.modules.csi import CsiConfig, hold_kind
from meerkat.xmpp.element import Element
from meerkat.xmpp.stream import parse_element

CSI = 'xmlns="urn:xmpp:csi:0"'
COMPOSING = '<composing xmlns="http://jabber.org/protocol/chatstates"/>'
PAUSED = '<paused xmlns="http://jabber.org/protocol/chatstates"/>'


@pytest.fixture
async def server() -> AsyncIterator[C2SServer]:
    s = await started({"mod_csi": CsiConfig(buffer_max=4), "mod_carboncopy": None})
    yield s
    await s.stop()


async def inactive(server: C2SServer, user: str = "alice", resource: str = "phone") -> C2SClient:
    client = await server.connect(user, resource)
    assert isinstance(client, C2SClient)
    assert await client.nonza(f"<inactive {CSI}/>")
    return client


def presence(frm: str, show: str | None = None, to: str = "alice@localhost/phone") -> str:
    inner = f"<show>{show}</show>" if show else ""
    return f'<presence from="{frm}" to="{to}">{inner}</presence>'


def chat_state(frm: str, state: str = COMPOSING) -> str:
    return f'<message from="{frm}" to="alice@localhost/phone" type="chat">{state}</message>'


def chat(frm: str, body: str) -> str:
    to = "alice@localhost/phone"
    return f'<message from="{frm}" to="{to}" type="chat"><body>{body}</body></message>'


def flat(xml: str) -> str:
    return parse_element(xml).to_string("jabber:client")


# -- negotiation ---------------------------------------------------------------------------------
async def test_csi_is_a_stream_feature_after_authentication(server: C2SServer) -> None:
    alice = await server.connect("alice", "phone")
    features: list[Element] = []
    await server.hooks.run(C2S_STREAM_FEATURES, HOST, features, {"session": alice})
    assert [f.to_string("jabber:client") for f in features] == ['<csi xmlns="urn:xmpp:csi:0"/>']


async def test_other_elements_in_the_csi_namespace_are_not_handled(server: C2SServer) -> None:
    alice = await server.connect("alice", "phone")
    assert isinstance(alice, C2SClient)
    assert not await alice.nonza(f"<sleepy {CSI}/>")


# -- holding -------------------------------------------------------------------------------------
async def test_an_active_client_gets_everything_at_once(server: C2SServer) -> None:
    alice = await server.connect("alice", "phone")
    await server.route(presence("bob@localhost/b", "away"))
    await server.route(chat_state("bob@localhost/b"))
    assert len(alice.take()) == 2


async def test_presence_and_chat_states_wait_for_the_next_message_with_a_body(
    server: C2SServer,
) -> None:
    alice = await inactive(server)
    await server.route(presence("bob@localhost/b", "away"))
    await server.route(chat_state("bob@localhost/b"))
    await server.route(presence("carol@localhost/c", "dnd"))
    assert alice.take() == []
    await server.route(chat("bob@localhost/b", "wake up"))
    assert_xml(
        alice.take(),
        [
            presence("bob@localhost/b", "away"),
            chat_state("bob@localhost/b"),
            presence("carol@localhost/c", "dnd"),
            chat("bob@localhost/b", "wake up"),
        ],
    )
    await server.route(presence("bob@localhost/b", "xa"))
    assert alice.take() == [], "still inactive: holding again"


async def test_only_the_newest_presence_of_each_contact_resource_is_kept(
    server: C2SServer,
) -> None:
    alice = await inactive(server)
    await server.route(presence("bob@localhost/b", "away"))
    await server.route(presence("bob@localhost/other", "dnd"))
    await server.route(chat_state("carol@localhost/c"))
    await server.route(presence("bob@localhost/b", "xa"))
    await server.route(
        '<presence from="bob@localhost/other" to="alice@localhost/phone" type="unavailable"/>'
    )
    assert await alice.nonza(f"<active {CSI}/>")
    assert_xml(
        alice.take(),
        [
            chat_state("carol@localhost/c"),
            presence("bob@localhost/b", "xa"),
            '<presence from="bob@localhost/other" to="alice@localhost/phone" type="unavailable"/>',
        ],
    )


async def test_becoming_active_flushes_and_stops_holding(server: C2SServer) -> None:
    alice = await inactive(server)
    await server.route(presence("bob@localhost/b", "away"))
    assert alice.take() == []
    assert await alice.nonza(f"<active {CSI}/>")
    assert_xml(alice.take(), [presence("bob@localhost/b", "away")])
    await server.route(presence("bob@localhost/b", "xa"))
    assert_xml(alice.take(), [presence("bob@localhost/b", "xa")])
    assert await alice.nonza(f"<active {CSI}/>")
    assert alice.take() == [], "nothing is written twice"


async def test_a_full_buffer_is_flushed_before_the_stanza_that_overflows_it(
    server: C2SServer,
) -> None:
    alice = await inactive(server)
    senders = [f"user{i}@localhost/r" for i in range(5)]
    for s in senders[:4]:
        await server.route(presence(s))
    assert alice.take() == [], "buffer_max = 4 stanzas are held"
    await server.route(presence(senders[4]))
    assert_xml(alice.take(), [presence(s) for s in senders])
    await server.route(chat_state(senders[0]))
    assert alice.take() == [], "holding starts over"


async def test_a_replaced_presence_does_not_count_twice_against_the_limit(
    server: C2SServer,
) -> None:
    alice = await inactive(server)
    for show in ("away", "xa", "dnd", "chat", "away", "xa"):
        await server.route(presence("bob@localhost/b", show))
    assert alice.take() == []


async def test_iqs_subscriptions_and_errors_are_urgent(server: C2SServer) -> None:
    alice = await inactive(server)
    await alice.say("<presence/>")  # available: subscription requests reach it
    await server.route(presence("bob@localhost/b", "away"))
    await server.route(
        '<iq from="bob@localhost/b" to="alice@localhost/phone" type="get" id="v">'
        '<query xmlns="jabber:iq:version"/></iq>'
    )
    assert [e.name for e in alice.take()] == ["presence", "iq"]
    await server.route(presence("bob@localhost/b", "xa"))
    await server.route(
        '<presence from="carol@localhost" to="alice@localhost/phone" type="subscribe"/>'
    )
    assert [e.attrs.get("type") for e in alice.take()] == [None, "subscribe"]
    await server.route(chat_state("bob@localhost/b"))
    await server.route(
        '<message from="bob@localhost/b" to="alice@localhost/phone" type="error">'
        f"{COMPOSING}<error/></message>"
    )
    assert [e.attrs.get("type") for e in alice.take()] == ["chat", "error"]


async def test_a_chat_state_with_a_receipt_is_urgent(server: C2SServer) -> None:
    alice = await inactive(server)
    await server.route(
        '<message from="bob@localhost/b" to="alice@localhost/phone" type="chat">'
        f'{PAUSED}<received xmlns="urn:xmpp:receipts" id="1"/></message>'
    )
    assert len(alice.take()) == 1


async def test_non_stanza_elements_pass_without_flushing(server: C2SServer) -> None:
    alice = await inactive(server)
    assert isinstance(alice, C2SClient)
    await server.route(presence("bob@localhost/b", "away"))
    await alice.send_element(Element("r", "urn:xmpp:sm:3"))
    assert [e.name for e in alice.take()] == ["r"]


# -- carbons while inactive ----------------------------------------------------------------------
async def test_carbon_copies_of_chat_states_are_held_and_of_messages_are_urgent(
    server: C2SServer,
) -> None:
    bob = await online(server, "bob", "b")
    desk = await enabled(server, "alice", "desk")
    phone = await enabled(server, "alice", "phone")
    assert await phone.nonza(f"<inactive {CSI}/>")
    forget(bob, desk, phone)
    await bob.say(f'<message to="alice@localhost/desk" type="chat">{COMPOSING}</message>')
    assert len(desk.take()) == 1
    assert phone.take() == [], "the received carbon of a chat state waits"
    await desk.say('<message to="bob@localhost/b" type="chat"><body>hi</body></message>')
    wrappers = [e.find_ns("urn:xmpp:carbons:2") for e in phone.take()]
    assert [w.name if w is not None else None for w in wrappers] == ["received", "sent"]


# -- stream management: each held stanza counted once, when written ------------------------------
async def test_held_stanzas_pass_the_rest_of_the_pre_send_chain_exactly_once_in_order(
    server: C2SServer,
) -> None:
    counted: list[str] = []

    async def stream_management(el: Element, params: dict[str, Any]) -> object:
        counted.append(el.to_string("jabber:client"))
        return None

    server.hooks.add(XMPP_PRESEND_ELEMENT, None, stream_management, 50, owner="sm")
    alice = await inactive(server)
    await server.route(presence("bob@localhost/b", "away"))
    await server.route(presence("bob@localhost/b", "xa"))
    await server.route(chat_state("bob@localhost/b"))
    assert counted == [], "held stanzas are not counted"
    await server.route(chat("bob@localhost/b", "now"))
    written = [e.to_string("jabber:client") for e in alice.take()]
    assert counted == written
    assert written == [
        flat(presence("bob@localhost/b", "xa")),
        flat(chat_state("bob@localhost/b")),
        flat(chat("bob@localhost/b", "now")),
    ]


async def test_bind2_advertises_csi_and_can_start_the_session_inactive(server: C2SServer) -> None:
    alice = await server.connect("alice", "phone")
    assert isinstance(alice, C2SClient)
    features: list[Element] = []
    await server.hooks.run(BIND2_STREAM_FEATURES, HOST, features, {"session": alice})
    assert '<feature var="urn:xmpp:csi:0"/>' in [f.to_string("urn:xmpp:bind:0") for f in features]
    bound = await alice.bind2(
        f'<bind xmlns="urn:xmpp:bind:0"><enable {CARBONS}/><inactive {CSI}/></bind>'
    )
    assert bound == []
    await server.route(presence("bob@localhost/b", "away"))
    assert alice.take() == []
    assert await alice.nonza(f"<active {CSI}/>")
    assert len(alice.take()) == 1


def test_what_an_inactive_client_can_wait_for() -> None:
    def kind(xml: str) -> str | None:
        return hold_kind(parse_element(xml))

    assert kind("<presence/>") == "presence"
    assert kind('<presence type="unavailable"/>') == "presence"
    assert kind('<presence type="subscribed"/>') is None
    assert kind('<presence type="error"/>') is None
    assert kind(f"<message>{COMPOSING}<thread>t</thread></message>") == "chatstate"
    assert kind(f'<message type="groupchat">{PAUSED}</message>') == "chatstate"
    assert kind(f"<message>{COMPOSING}<body>b</body></message>") is None
    assert kind("<message/>") is None
    assert kind('<iq type="result"/>') is None
