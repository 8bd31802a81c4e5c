"""mod_roster and mod_presence together: RFC 6121 §2 roster management and §3 subscriptions."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from kernel_harness import Client, Server, assert_same, assert_xml, payload

from meerkat.modules.roster import RosterConfig
from meerkat.stores import UserKey
from meerkat.xmpp.errors import error_condition

MODULES = {"mod_roster": None, "mod_presence": None}
ROSTER = 'xmlns="jabber:iq:roster"'


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    s = Server()
    await s.start(MODULES)
    yield s
    await s.stop()


def push(to: str, item: str, ver: str) -> str:
    user = to.split("/")[0]
    return f'<iq type="set" from="{user}" to="{to}"><query {ROSTER} ver="{ver}">{item}</query></iq>'


# -- §2: roster get / set / remove ---------------------------------------------------------------
async def test_a_new_user_gets_an_empty_roster(server: Server) -> None:
    alice = await server.login("alice")
    reply = await alice.iq(f'<iq type="get"><query {ROSTER}/></iq>')
    assert_same(
        reply,
        f'<iq type="result" id="q1" from="alice@localhost" '
        f'to="alice@localhost/res"><query {ROSTER}/></iq>',
    )


async def test_roster_set_is_pushed_to_every_resource_and_returned_by_get(server: Server) -> None:
    alice = await server.login("alice", "phone")
    laptop = await server.login("alice", "laptop")
    alice.take()
    reply = await alice.iq(
        f'<iq type="set"><query {ROSTER}><item jid="bob@localhost" name="Bob">'
        "<group>Friends</group></item></query></iq>"
    )
    assert reply.attrs["type"] == "result"
    item = '<item jid="bob@localhost" name="Bob" subscription="none"><group>Friends</group></item>'
    assert_xml(alice.take(), [push("alice@localhost/phone", item, "1")], ignore=["id"])
    assert_xml(laptop.take(), [push("alice@localhost/laptop", item, "1")], ignore=["id"])
    reply = await alice.iq(f'<iq type="get"><query {ROSTER}/></iq>')
    assert_xml(reply.children, [f"<query {ROSTER}>{item}</query>"])  # type: ignore[arg-type]


async def test_roster_versioning_answers_an_unchanged_roster_with_an_empty_result(
    server: Server,
) -> None:
    alice = await server.login("alice")
    await alice.iq(f'<iq type="set"><query {ROSTER}><item jid="bob@localhost"/></query></iq>')
    alice.take()
    full = await alice.iq(f'<iq type="get"><query {ROSTER} ver=""/></iq>')
    query = full.find("query")
    assert query is not None and query.attrs["ver"] == "1"
    same = await alice.iq(f'<iq type="get"><query {ROSTER} ver="1"/></iq>')
    assert same.attrs["type"] == "result" and not same.children


async def test_removing_an_item_pushes_subscription_remove(server: Server) -> None:
    alice = await server.login("alice")
    await alice.iq(f'<iq type="set"><query {ROSTER}><item jid="bob@localhost"/></query></iq>')
    alice.take()
    await alice.iq(
        f'<iq type="set"><query {ROSTER}><item jid="bob@localhost" subscription="remove"/>'
        "</query></iq>"
    )
    assert_xml(
        alice.take(),
        [push("alice@localhost/res", '<item jid="bob@localhost" subscription="remove"/>', "2")],
        ignore=["id"],
    )
    missing = await alice.iq(
        f'<iq type="set"><query {ROSTER}><item jid="bob@localhost" subscription="remove"/>'
        "</query></iq>"
    )
    assert error_condition(missing) == "item-not-found"


@pytest.mark.parametrize(
    ("query", "condition"),
    [
        (
            f'<query {ROSTER}><item jid="a@localhost"/><item jid="b@localhost"/></query>',
            "bad-request",
        ),
        (f"<query {ROSTER}><item/></query>", "bad-request"),
        (f'<query {ROSTER}><item jid="a@b@c"/></query>', "jid-malformed"),
        (f'<query {ROSTER}><item jid="a@localhost"><group/></item></query>', "not-acceptable"),
        (
            f'<query {ROSTER}><item jid="a@localhost"><group>x</group><group>x</group></item>'
            "</query>",
            "bad-request",
        ),
    ],
)
async def test_invalid_roster_sets_are_refused(server: Server, query: str, condition: str) -> None:
    alice = await server.login("alice")
    reply = await alice.iq(f'<iq type="set">{query}</iq>')
    assert error_condition(reply) == condition
    assert alice.take() == []


async def test_someone_elses_roster_is_not_allowed(server: Server) -> None:
    await server.register("bob")
    alice = await server.login("alice")
    reply = await alice.iq(f'<iq type="get" to="bob@localhost"><query {ROSTER}/></iq>')
    assert error_condition(reply) == "not-allowed"


# -- §3: subscriptions ---------------------------------------------------------------------------
async def subscribe_both_ways(alice: Client, bob: Client) -> None:
    await alice.say('<presence to="bob@localhost" type="subscribe"/>')
    await bob.say('<presence to="alice@localhost" type="subscribed"/>')
    await bob.say('<presence to="alice@localhost" type="subscribe"/>')
    await alice.say('<presence to="bob@localhost" type="subscribed"/>')
    alice.take()
    bob.take()


async def test_two_users_subscribe_to_each_other(server: Server) -> None:
    alice = await server.login("alice")
    bob = await server.login("bob")

    # §3.1.2: the user's request is pushed as pending out and routed with bare JIDs.
    await alice.say('<presence to="bob@localhost/res" type="subscribe"/>')
    assert_xml(
        alice.take(),
        [
            push(
                "alice@localhost/res",
                '<item jid="bob@localhost" subscription="none" ask="subscribe"/>',
                "1",
            )
        ],
        ignore=["id"],
    )
    assert_xml(
        bob.take(), ['<presence from="alice@localhost" to="bob@localhost" type="subscribe"/>']
    )

    # §3.1.5: Bob approves; both get pushes, Alice gets the approval and Bob's presence.
    await bob.say('<presence to="alice@localhost" type="subscribed"/>')
    assert_xml(
        bob.take(),
        [push("bob@localhost/res", '<item jid="alice@localhost" subscription="from"/>', "2")],
        ignore=["id"],
    )
    assert_xml(
        alice.take(),
        [
            push("alice@localhost/res", '<item jid="bob@localhost" subscription="to"/>', "2"),
            '<presence from="bob@localhost" to="alice@localhost" type="subscribed"/>',
            '<presence from="bob@localhost/res" to="alice@localhost"/>',
        ],
        ignore=["id"],
    )

    # The other way round: Bob subscribes, Alice approves, both end at "both".
    await bob.say('<presence to="alice@localhost" type="subscribe"/>')
    assert_xml(
        bob.take(),
        [
            push(
                "bob@localhost/res",
                '<item jid="alice@localhost" subscription="from" ask="subscribe"/>',
                "3",
            )
        ],
        ignore=["id"],
    )
    assert_xml(
        alice.take(),
        [
            push("alice@localhost/res", '<item jid="bob@localhost" subscription="to"/>', "3"),
            '<presence from="bob@localhost" to="alice@localhost" type="subscribe"/>',
        ],
        ignore=["id"],
    )
    await alice.say('<presence to="bob@localhost" type="subscribed"/>')
    assert_xml(
        alice.take(),
        [push("alice@localhost/res", '<item jid="bob@localhost" subscription="both"/>', "4")],
        ignore=["id"],
    )
    assert_xml(
        bob.take(),
        [
            push("bob@localhost/res", '<item jid="alice@localhost" subscription="both"/>', "4"),
            '<presence from="alice@localhost" to="bob@localhost" type="subscribed"/>',
            '<presence from="alice@localhost/res" to="bob@localhost"/>',
        ],
        ignore=["id"],
    )


async def test_an_approved_contact_asking_again_does_not_bother_the_user(server: Server) -> None:
    alice = await server.login("alice")
    bob = await server.login("bob")
    await subscribe_both_ways(alice, bob)
    await alice.say('<presence to="bob@localhost" type="subscribe"/>')
    # A.3.1: not delivered to Bob; his server answers "subscribed", which changes nothing
    # for Alice (A.3.3, "Both") and so is not delivered to her either.
    assert bob.take() == []
    assert alice.take() == []
    items = await server.stores.roster.get_roster(UserKey("localhost", "alice"))
    assert [(i.subscription, i.ask) for i in items] == [("both", "none")]


async def test_pre_approval_lets_the_contact_subscribe_without_asking(server: Server) -> None:
    alice = await server.login("alice")
    bob = await server.login("bob")
    # §3.4: Bob approves Alice before she asks: stored and pushed, not routed.
    await bob.say('<presence to="alice@localhost" type="subscribed"/>')
    assert_xml(
        bob.take(),
        [
            push(
                "bob@localhost/res",
                '<item jid="alice@localhost" subscription="none" approved="true"/>',
                "1",
            )
        ],
        ignore=["id"],
    )
    assert alice.take() == []
    await alice.say('<presence to="bob@localhost" type="subscribe"/>')
    assert_xml(
        bob.take(),
        [push("bob@localhost/res", '<item jid="alice@localhost" subscription="from"/>', "2")],
        ignore=["id"],
    )
    assert_xml(
        alice.take(),
        [
            push(
                "alice@localhost/res",
                '<item jid="bob@localhost" subscription="none" ask="subscribe"/>',
                "1",
            ),
            push("alice@localhost/res", '<item jid="bob@localhost" subscription="to"/>', "2"),
            '<presence from="bob@localhost" to="alice@localhost" type="subscribed"/>',
            '<presence from="bob@localhost/res" to="alice@localhost"/>',
        ],
        ignore=["id"],
    )


async def test_a_pending_request_is_delivered_again_at_login(server: Server) -> None:
    alice = await server.login("alice")
    await server.register("bob")
    await alice.say('<presence to="bob@localhost" type="subscribe"><status>hi</status></presence>')
    bob = await server.connect("bob")
    await bob.say("<presence/>")
    assert_xml(
        bob.take(),
        [
            '<presence from="bob@localhost/res" to="bob@localhost"/>',
            '<presence from="alice@localhost" to="bob@localhost/res" type="subscribe">'
            "<status>hi</status></presence>",
        ],
    )
    # The lone request is not a roster item yet.
    roster = await bob.iq(f'<iq type="get"><query {ROSTER}/></iq>')
    assert_xml(roster.children, [f"<query {ROSTER}/>"])  # type: ignore[arg-type]


async def test_denying_a_request_leaves_no_roster_item(server: Server) -> None:
    alice = await server.login("alice")
    bob = await server.login("bob")
    await alice.say('<presence to="bob@localhost" type="subscribe"/>')
    bob.take()
    await bob.say('<presence to="alice@localhost" type="unsubscribed"/>')
    assert bob.take() == []  # the lone request vanishes without a push
    assert_xml(
        alice.take(),
        [
            push(
                "alice@localhost/res",
                '<item jid="bob@localhost" subscription="none" ask="subscribe"/>',
                "1",
            ),
            push("alice@localhost/res", '<item jid="bob@localhost" subscription="none"/>', "2"),
            '<presence from="bob@localhost" to="alice@localhost" type="unsubscribed"/>',
        ],
        ignore=["id"],
    )
    assert await server.stores.roster.get_roster(UserKey("localhost", "bob")) == []


async def test_unsubscribing_stops_presence_and_sends_unavailable(server: Server) -> None:
    alice = await server.login("alice")
    bob = await server.login("bob")
    await subscribe_both_ways(alice, bob)
    await alice.say('<presence to="bob@localhost" type="unsubscribe"/>')
    assert_xml(
        alice.take(),
        [
            push("alice@localhost/res", '<item jid="bob@localhost" subscription="from"/>', "5"),
            '<presence from="bob@localhost/res" to="alice@localhost" type="unavailable"/>',
        ],
        ignore=["id"],
    )
    assert_xml(
        bob.take(),
        [
            push("bob@localhost/res", '<item jid="alice@localhost" subscription="to"/>', "5"),
            '<presence from="alice@localhost" to="bob@localhost" type="unsubscribe"/>',
        ],
        ignore=["id"],
    )


async def test_removing_a_contact_cancels_both_subscriptions(server: Server) -> None:
    alice = await server.login("alice")
    bob = await server.login("bob")
    await subscribe_both_ways(alice, bob)
    await alice.iq(
        f'<iq type="set"><query {ROSTER}><item jid="bob@localhost" subscription="remove"/>'
        "</query></iq>"
    )
    items = await server.stores.roster.get_roster(UserKey("localhost", "bob"))
    assert [(i.jid, i.subscription, i.ask) for i in items] == [("alice@localhost", "none", "none")]
    got = bob.take()
    assert [e.attrs.get("type") for e in got if e.name == "presence"] == [
        "unavailable",
        "unsubscribe",
        "unsubscribed",
    ]
    assert alice.take()[-1].find("query") is not None


async def test_removing_an_account_cancels_its_subscriptions(server: Server) -> None:
    alice = await server.login("alice")
    bob = await server.login("bob")
    await subscribe_both_ways(alice, bob)
    await server.accounts.remove(alice.jid)
    assert await server.stores.roster.get_roster(UserKey("localhost", "alice")) == []
    items = await server.stores.roster.get_roster(UserKey("localhost", "bob"))
    assert [(i.subscription, i.ask) for i in items] == [("none", "none")]


async def test_without_versioning_ver_is_ignored_and_pushes_carry_none() -> None:
    server = Server()
    await server.start({"mod_roster": RosterConfig(versioning=False)})
    try:
        alice = await server.login("alice")
        await alice.iq(f'<iq type="set"><query {ROSTER}><item jid="bob@localhost"/></query></iq>')
        [pushed] = alice.take()
        assert "ver" not in payload(pushed).attrs
        reply = await alice.iq(f'<iq type="get"><query {ROSTER} ver="1"/></iq>')
        assert_xml(
            reply.children,  # type: ignore[arg-type]
            [f'<query {ROSTER}><item jid="bob@localhost" subscription="none"/></query>'],
        )
    finally:
        await server.stop()
