"""Routing across nodes: several nodes in this process, each with its own cluster port.

The same RFC 6121 rules as on one node, with the resources spread over the nodes.
"""

from __future__ import annotations

from meerkat import api
from meerkat.core.sessions import broadcast_presence
from meerkat.server import Node
from meerkat.xmpp.jid import Jid
from meerkat.xmpp.stream import parse_element

from .conftest import ClientFactory, ClusterFactory
from .helpers import (
    body_of_next_message,
    is_presence_from,
    message,
    no_message,
    presence,
    roster_push,
    wait_for,
)


def sessions_on(node: Node, user: str) -> list[str]:
    return sorted(r.node for r in node.sessions.user_sessions(Jid(user, "localhost")))


def priorities(node: Node, user: str) -> list[int | None]:
    return sorted(r.priority or 0 for r in node.sessions.user_sessions(Jid(user, "localhost")))


async def test_a_message_to_a_full_jid_reaches_a_session_on_another_node(
    make_cluster: ClusterFactory, raw: ClientFactory
) -> None:
    n1, n2 = await make_cluster(2)
    alice = await raw(n1, "alice", "a")
    bob = await raw(n2, "bob", "b")
    await wait_for(lambda: sessions_on(n1, "bob") == ["node2@localhost"], what="bob on n1")
    alice.send(message("bob@localhost/b", "hello over the cluster"))
    assert await body_of_next_message(bob) == "hello over the cluster"
    bob.send(message("alice@localhost/a", "hello back"))
    assert await body_of_next_message(alice) == "hello back"


async def test_a_bare_jid_message_goes_to_the_highest_priority_resources_on_any_node(
    make_cluster: ClusterFactory, raw: ClientFactory
) -> None:
    n1, n2, n3 = await make_cluster(3)
    low = await raw(n1, "alice", "low")
    high = await raw(n2, "alice", "high")
    low.send(presence(priority=1))
    high.send(presence(priority=7))
    bob = await raw(n3, "bob", "b")
    await wait_for(lambda: priorities(n3, "alice") == [1, 7], what="priorities replicated")
    bob.send(message("alice@localhost", "to the best"))
    assert await body_of_next_message(high) == "to the best"
    assert await no_message(low)
    low.send(presence(priority=7))
    await wait_for(lambda: priorities(n3, "alice") == [7, 7], what="equal priorities replicated")
    bob.send(message("alice@localhost", "to both"))
    assert await body_of_next_message(high) == "to both"
    assert await body_of_next_message(low) == "to both"


async def test_an_iq_to_a_full_jid_on_another_node_is_answered_across_the_cluster(
    make_cluster: ClusterFactory, raw: ClientFactory
) -> None:
    n1, n2 = await make_cluster(2)
    alice = await raw(n1, "alice", "a")
    bob = await raw(n2, "bob", "b")
    await wait_for(lambda: sessions_on(n1, "bob") == ["node2@localhost"], what="bob on n1")
    alice.send(
        "<iq type='get' id='v1' to='bob@localhost/b'><query xmlns='jabber:iq:version'/></iq>"
    )
    got = await bob.expect(lambda e: e.name == "iq" and e.attrs.get("id") == "v1")
    assert got.attrs["from"] == "alice@localhost/a"
    bob.send("<iq type='result' id='v1' to='alice@localhost/a'/>")
    reply = await alice.expect(lambda e: e.name == "iq" and e.attrs.get("id") == "v1")
    assert reply.attrs["type"] == "result" and reply.attrs["from"] == "bob@localhost/b"


async def test_presence_reaches_contacts_and_own_resources_on_every_node_and_probes_answer(
    make_cluster: ClusterFactory, raw: ClientFactory
) -> None:
    n1, n2, n3 = await make_cluster(3)
    await api.roster.set_mutual_subscription(
        n1, Jid("alice", "localhost"), Jid("bob", "localhost"), "CONNECT"
    )
    bob = await raw(n2, "bob", "b")
    bob.send(presence())
    alice_phone = await raw(n1, "alice", "phone")
    alice_phone.send(presence(priority=3))
    # Alice's initial presence probes Bob (on n2): his presence comes back across the cluster.
    await alice_phone.expect(is_presence_from("bob@localhost/b"))
    await bob.expect(is_presence_from("alice@localhost/phone"))
    alice_laptop = await raw(n3, "alice", "laptop")
    alice_laptop.send(presence(show="away"))
    await bob.expect(is_presence_from("alice@localhost/laptop"))
    await alice_phone.expect(is_presence_from("alice@localhost/laptop"))
    await alice_laptop.expect(is_presence_from("alice@localhost/phone"))
    bob.send("<presence type='unavailable'/>")
    await alice_phone.expect(is_presence_from("bob@localhost/b", "unavailable"))
    await alice_laptop.expect(is_presence_from("bob@localhost/b", "unavailable"))


async def test_a_roster_push_reaches_every_resource_wherever_it_runs(
    make_cluster: ClusterFactory, raw: ClientFactory
) -> None:
    n1, n2, n3 = await make_cluster(3)
    one = await raw(n1, "carol", "one")
    two = await raw(n2, "carol", "two")
    await wait_for(lambda: len(sessions_on(n3, "carol")) == 2, what="carol twice on n3")
    carol, dave = Jid("carol", "localhost"), Jid("dave", "localhost")
    await api.roster.add_contact(n3, carol, dave, "Dave", None)
    for client in (one, two):
        push = await client.expect(roster_push)
        item = push.find("query", "jabber:iq:roster")
        assert item is not None and "dave@localhost" in str(item)


async def test_a_resource_conflict_replaces_the_session_on_the_other_node(
    make_cluster: ClusterFactory, raw: ClientFactory
) -> None:
    n1, n2 = await make_cluster(2)
    old = await raw(n1, "alice", "same")
    new = await raw(n2, "alice", "same")
    assert await old.stream_error() == "conflict"
    await wait_for(lambda: sessions_on(n1, "alice") == ["node2@localhost"], what="old row gone")
    await wait_for(lambda: sessions_on(n2, "alice") == ["node2@localhost"], what="old row gone")
    bob = await raw(n1, "bob", "b")
    bob.send(message("alice@localhost/same", "to the new one"))
    assert await body_of_next_message(new) == "to the new one"


async def test_an_admin_kick_closes_a_session_on_another_node(
    make_cluster: ClusterFactory, raw: ClientFactory
) -> None:
    n1, n2 = await make_cluster(2)
    client = await raw(n2, "dave", "d")
    await wait_for(lambda: sessions_on(n1, "dave") == ["node2@localhost"], what="dave on n1")
    await api.session.kick_user_session(n1, Jid("dave", "localhost", "d"), "bye")
    assert await client.stream_error() == "policy-violation"
    await wait_for(lambda: sessions_on(n1, "dave") == [], what="dave gone on n1")


async def test_list_sessions_shows_each_sessions_node(
    make_cluster: ClusterFactory, raw: ClientFactory
) -> None:
    n1, n2 = await make_cluster(2)
    await raw(n1, "alice", "a")
    await raw(n2, "bob", "b")
    await wait_for(lambda: len(n1.sessions.all_sessions()) == 2, what="both sessions on n1")
    listed = await api.session.list_sessions(n1)
    assert {(s["user"], s["node"]) for s in listed} == {
        ("alice@localhost/a", "node1@localhost"),
        ("bob@localhost/b", "node2@localhost"),
    }


async def test_a_message_for_a_user_whose_session_just_closed_on_its_node_goes_offline(
    make_cluster: ClusterFactory, raw: ClientFactory
) -> None:
    n1, n2 = await make_cluster(2)
    bob = await raw(n2, "bob", "b")
    bob.send(presence())
    await wait_for(lambda: sessions_on(n1, "bob") == ["node2@localhost"], what="bob on n1")
    # n1 still believes Bob is on n2 when the stanza leaves: n2 re-routes it to storage.
    handle = n2.sessions.local_handle(n2.sessions.user_sessions(Jid("bob", "localhost"))[0].sid)
    assert handle is not None
    n2.sessions.kick_local(n2.sessions.user_sessions(Jid("bob", "localhost"))[0].sid, "conflict")
    alice = await raw(n1, "alice", "a")
    alice.send(message("bob@localhost/b", "kept for later"))
    await bob.stream_error()
    await wait_for(lambda: sessions_on(n1, "bob") == [], what="bob gone")
    again = await raw(n1, "bob", "again")
    again.send(presence())
    assert await body_of_next_message(again) == "kept for later"


async def test_a_sessions_stored_presence_is_readable_on_every_node(
    make_cluster: ClusterFactory, raw: ClientFactory
) -> None:
    n1, n2 = await make_cluster(2)
    await raw(n1, "alice", "a")
    record = n1.sessions.user_sessions(Jid("alice", "localhost"))[0]
    away = parse_element("<presence><show>away</show><status>lunch</status></presence>")
    await n1.sessions.set_presence(record, 5, away)
    seen = n2.sessions.user_sessions(Jid("alice", "localhost"))[0]
    assert seen.priority == 5
    stored = broadcast_presence(seen)
    assert stored is not None and stored.find_text("status") == "lunch"
    await n1.sessions.set_presence(seen, None, None)
    assert broadcast_presence(n2.sessions.user_sessions(Jid("alice", "localhost"))[0]) is None


async def test_a_probe_answered_for_a_session_on_another_node_carries_its_show_and_status(
    make_cluster: ClusterFactory, raw: ClientFactory
) -> None:
    n1, n2 = await make_cluster(2)
    await api.roster.set_mutual_subscription(
        n1, Jid("alice", "localhost"), Jid("bob", "localhost"), "CONNECT"
    )
    alice = await raw(n1, "alice", "a")
    alice.send("<presence><show>away</show><status>at lunch</status></presence>")
    await wait_for(
        lambda: (
            bool(priorities(n2, "alice"))
            and broadcast_presence(n2.sessions.user_sessions(Jid("alice", "localhost"))[0])
            is not None
        )
    )
    # Bob logs in on the other node: his initial presence probes alice, answered by n2.
    bob = await raw(n2, "bob", "b")
    bob.send(presence())
    answer = await bob.expect(is_presence_from("alice@localhost/a"))
    assert answer.find_text("show") == "away"
    assert answer.find_text("status") == "at lunch"
