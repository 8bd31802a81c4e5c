"""A node leaving the cluster without closing its sessions (in this process: its cluster
layer stops while its clients stay connected, which is what the survivors see of a crash).
"""

from __future__ import annotations

import asyncio

from e2e.rawxmpp import RawClient
from meerkat import api
from meerkat.server import Node
from meerkat.xmpp.jid import Jid

from .conftest import ClientFactory, ClusterFactory
from .helpers import body_of_next_message, is_presence_from, message, presence, wait_for


async def crash(node: Node) -> None:
    """The survivors' view of a crash: every link of `node` closes, its sessions stay."""
    assert node.cluster is not None
    await node.cluster.stop()


def users_on(node: Node) -> set[str]:
    return {str(r.jid) for r in node.sessions.all_sessions()}


async def unavailable_senders(client: RawClient, wait: float = 0.5) -> list[str]:
    """Senders of every unavailable presence received until `wait` seconds of silence."""
    senders = []
    try:
        while True:
            el = await client.expect("presence", wait)
            if el.attrs.get("type") == "unavailable":
                senders.append(el.attrs.get("from", ""))
    except TimeoutError:
        return sorted(senders)


async def test_survivors_delete_a_dead_nodes_sessions_and_tell_contacts_once(
    make_cluster: ClusterFactory, raw: ClientFactory
) -> None:
    n1, n2, n3 = await make_cluster(3)
    alice, bob = Jid("alice", "localhost"), Jid("bob", "localhost")
    await api.roster.set_mutual_subscription(n1, alice, bob, "CONNECT")
    a = await raw(n1, "alice", "a")
    a.send(presence())
    b = await raw(n2, "bob", "b")
    b.send(presence())
    await a.expect(is_presence_from("bob@localhost/b"))
    await wait_for(lambda: "bob@localhost/b" in users_on(n3), what="bob seen on n3")
    await crash(n2)
    await wait_for(lambda: "bob@localhost/b" not in users_on(n1), what="n1 cleaned up")
    await wait_for(lambda: "bob@localhost/b" not in users_on(n3), what="n3 cleaned up")
    assert await unavailable_senders(a) == ["bob@localhost/b"]
    assert n3.cluster is not None and n1.cluster is not None
    cleaners = [n.cluster.cleanup.cleaned for n in (n1, n3) if n.cluster and n.cluster.cleanup]
    assert sorted(cleaners, key=len) == [[], [("node2@localhost", 1)]]
    # Later messages to Bob are stored; he gets them when he is back (on another node).
    a.send(message("bob@localhost", "while you were away"))
    await asyncio.sleep(0.2)
    back = await raw(n3, "bob", "back")
    back.send(presence())
    assert await body_of_next_message(back) == "while you were away"


async def test_two_nodes_dying_at_once_the_leader_among_them_are_both_cleaned_up_once(
    make_cluster: ClusterFactory, raw: ClientFactory
) -> None:
    n1, n2, n3, n4 = await make_cluster(4)  # node4 is the session table's leader
    alice = Jid("alice", "localhost")
    for other in ("bob", "dave"):
        await api.roster.set_mutual_subscription(n1, alice, Jid(other, "localhost"), "CONNECT")
    a = await raw(n1, "alice", "a")
    a.send(presence())
    b = await raw(n2, "bob", "b")
    b.send(presence())
    d = await raw(n4, "dave", "d")
    d.send(presence())
    await a.expect(is_presence_from("bob@localhost/b"))
    await a.expect(is_presence_from("dave@localhost/d"))
    await wait_for(lambda: len(users_on(n3)) == 3, what="everyone seen on n3")
    await asyncio.gather(crash(n2), crash(n4))
    await wait_for(lambda: users_on(n1) == {"alice@localhost/a"}, what="n1 cleaned up")
    await wait_for(lambda: users_on(n3) == {"alice@localhost/a"}, what="n3 cleaned up")
    assert await unavailable_senders(a) == ["bob@localhost/b", "dave@localhost/d"]


async def test_a_node_that_stops_cleanly_does_not_clean_up_the_others(
    make_cluster: ClusterFactory, raw: ClientFactory
) -> None:
    n1, n2 = await make_cluster(2)
    await raw(n1, "alice", "a")
    await wait_for(lambda: "alice@localhost/a" in users_on(n2), what="alice seen on n2")
    await n2.stop()
    assert n2.cluster is None
    assert "alice@localhost/a" in users_on(n1)
