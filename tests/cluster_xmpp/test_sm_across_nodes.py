"""XEP-0198 across cluster nodes: a session resumed on another node (its buffer and state
move), the SASL2 inline resumption there, and unacknowledged messages of a node that dies
ending in their recipients' offline storage (in this process: the node's cluster layer
stops, which is what the survivors see of a crash; `test_sm_node_kill.py` kills a process).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from e2e.rawxmpp import RawClient
from e2e.test_sasl2 import sasl2_scram
from meerkat import api
from meerkat.c2s.session import C2SSession
from meerkat.clustering import resumption
from meerkat.core.hooks import SM_REMOVE_CONNECTION
from meerkat.core.sessions import broadcast_presence
from meerkat.modules.stream_management import remote
from meerkat.server import Node
from meerkat.xmpp import ns
from meerkat.xmpp.jid import Jid

from .conftest import ClientFactory, ClusterFactory
from .helpers import is_presence_from, message, presence, wait_for
from .sm_helpers import SM, body, cut, delay_of, enable_sm, messages, resume

ALICE = "alice@localhost/phone"


def alice_rows(node: Node) -> list[tuple[str, str]]:
    """(resource, node) of Alice's sessions as `node` sees them."""
    return sorted(
        (r.jid.resource, r.node) for r in node.sessions.user_sessions(Jid("alice", "localhost"))
    )


def sm_acked(node: Node) -> int | None:
    """The h that Alice's stream-management session on `node` last took from her."""
    for session in node._c2s_node.live:
        if isinstance(session, C2SSession) and session.jid is not None:
            sm = session.state("mod_stream_management").get("sm")
            if sm is not None and str(session.jid) == ALICE:
                return int(sm.acked)
    return None


async def bodies_before_ack(client: RawClient) -> list[str]:
    """Ask for an ack; the bodies of the messages that arrive before it."""
    client.send(f"<r {SM}/>")
    seen = []
    while True:
        el = await client.expect(lambda e: e.name in ("message", "a"))
        if el.name == "a":
            return seen
        seen.append(el.find_text("body") or "")


async def presences_from(client: RawClient, frm: str, wait: float = 0.3) -> list[str]:
    """Types of the presences from `frm` received until `wait` seconds of silence."""
    seen = []
    try:
        while True:
            el = await client.expect("presence", wait)
            if el.attrs.get("from", "").startswith(frm):
                seen.append(el.attrs.get("type", "available"))
    except TimeoutError:
        return seen


async def test_a_session_resumed_on_another_node_gets_its_unacked_messages_once_with_delay(
    make_cluster: ClusterFactory, raw: ClientFactory
) -> None:
    n1, n2 = await make_cluster(2)
    await api.roster.set_mutual_subscription(
        n1, Jid("alice", "localhost"), Jid("bob", "localhost"), "CONNECT"
    )
    bob = await raw(n2, "bob", "b")
    bob.send(presence())
    await bob.expect(is_presence_from("alice@localhost", "unavailable"))  # the probe's answer
    alice = await raw(n1, "alice", "phone")
    alice.send(presence(priority=5, show="away"))
    await bob.expect(is_presence_from(ALICE))
    # The answer to Alice's probe, before SM counts: Bob sees Alice's presence while her
    # session is still answering the probe, so <enable/> may overtake Bob's presence (with
    # read-ahead it often does), which then counts and h='2' below would not ack m1.
    await alice.expect(is_presence_from("bob@localhost/b"))
    smid = await enable_sm(alice)
    alice.send("<iq type='set' id='c1'><enable xmlns='urn:xmpp:carbons:2'/></iq>")
    await alice.expect(lambda e: e.name == "iq" and e.attrs.get("id") == "c1")
    for i in range(1, 4):
        bob.send(message(ALICE, f"m{i}"))
    assert [body(m) for m in await messages(alice, 3)] == ["m1", "m2", "m3"]
    alice.send(f"<a {SM} h='2'/>")  # m1 acknowledged (h counts the carbons result too)
    # The cut must not overtake the ack (an abort can drop what the socket has not sent).
    await wait_for(lambda: sm_acked(n1) == 2, what="node1 took the ack")
    cut(alice)
    bob.send(message(ALICE, "m4"))  # while node1 has not noticed, or holds it detached
    assert n2.cluster is not None and n2.cluster.sm_buffer is not None
    mirror = n2.cluster.sm_buffer.table
    await wait_for(lambda: len(mirror) == 3, what="m2, m3, m4 buffered on node1")
    new, resumed = await resume(n2.c2s_port(), "alice", smid, h=2)
    assert resumed.name == "resumed" and resumed.attrs["previd"] == smid
    got = await messages(new, 3)
    assert [body(m) for m in got] == ["m2", "m3", "m4"]
    for m in got:
        delay = delay_of(m)
        assert delay is not None and delay.attrs["from"] == "localhost", m
    # Only once: nothing else arrives, and the session now lives on node2 alone.
    assert await bodies_before_ack(new) == []
    await wait_for(lambda: alice_rows(n1) == [("phone", "node2@localhost")], what="n1 view")
    assert alice_rows(n2) == [("phone", "node2@localhost")]
    assert n1.sessions.local_count() == 0
    # Later messages to the full and the bare JID reach it on node2, in order, undelayed.
    bob.send(message(ALICE, "full"))
    bob.send(message("alice@localhost", "bare"))
    later = await messages(new, 2)
    assert [body(m) for m in later] == ["full", "bare"]
    assert all(delay_of(m) is None for m in later)
    record = n2.sessions.session(Jid.parse(ALICE))
    assert record is not None and record.priority == 5
    stored = broadcast_presence(record)
    assert stored is not None and stored.find_text("show") == "away"
    # Its contacts saw nothing: no unavailable, no new available presence.
    assert await presences_from(bob, ALICE) == []
    # Its presence and carbons moved with it: Bob's probe is answered with "away", and a
    # message Bob sends to another resource of Alice is copied to the resumed session.
    other = await raw(n1, "alice", "desk")
    other.send(presence(priority=1))
    bob.send(message("alice@localhost/desk", "to desk"))
    carbon = await new.expect(lambda e: e.find("received", ns.CARBONS) is not None)
    assert "to desk" in str(carbon)
    await new.close()


async def test_the_sasl2_inline_resumption_works_on_another_node(
    make_cluster: ClusterFactory, raw: ClientFactory
) -> None:
    n1, n2 = await make_cluster(2)
    bob = await raw(n2, "bob", "b")
    client = await RawClient.connect(n1.c2s_port())
    await client.open_stream()
    bind = f"<bind xmlns='{ns.BIND2}'><tag>phone</tag><enable {SM} resume='true'/></bind>"
    success = await sasl2_scram(client, inline=bind)
    bound = success.find("bound", ns.BIND2)
    assert bound is not None
    enabled = bound.find("enabled", ns.SM)
    assert enabled is not None
    smid = enabled.attrs["id"]
    jid = success.find_text("authorization-identifier", ns.SASL2) or ""
    bob.send(message(jid, "lost in flight"))
    await client.expect("message")
    cut(client)
    again = await RawClient.connect(n2.c2s_port())
    await again.open_stream()
    success = await sasl2_scram(again, inline=f"<resume {SM} previd='{smid}' h='0'/>")
    assert success.name == "success", success
    assert success.find("resumed", ns.SM) is not None
    assert success.find_text("authorization-identifier", ns.SASL2) == jid
    got = await messages(again, 1)
    assert body(got[0]) == "lost in flight" and delay_of(got[0]) is not None
    assert await bodies_before_ack(again) == []
    assert n1.sessions.local_count() == 0
    assert [node for _, node in alice_rows(n1)] == ["node2@localhost"]
    bob.send(message(jid, "after"))
    assert body((await messages(again, 1))[0]) == "after"
    await again.close()


async def test_two_resumptions_of_one_id_on_two_nodes_have_one_winner(
    make_cluster: ClusterFactory, raw: ClientFactory
) -> None:
    n1, n2, n3 = await make_cluster(3)
    alice = await raw(n1, "alice", "phone")
    smid = await enable_sm(alice)
    cut(alice)
    results = await asyncio.gather(
        resume(n2.c2s_port(), "alice", smid, 0), resume(n3.c2s_port(), "alice", smid, 0)
    )
    winners = [(client, node) for (client, reply), node in zip(results, (n2, n3), strict=True)
               if reply.name == "resumed"]  # fmt: skip
    if len(winners) == 2:
        # One after the other: the later resumption took the session from the earlier one,
        # which is closed with conflict, as when a client resumes twice on one node.
        errors = await asyncio.gather(
            *(c.stream_error(1.0) for c, _ in winners), return_exceptions=True
        )
        assert errors.count("conflict") == 1, errors
        winners = [w for w, e in zip(winners, errors, strict=True) if e != "conflict"]
    [(_, node)] = winners
    await wait_for(lambda: alice_rows(n1) == [("phone", node.node)], what="one session left")
    for client, _ in results:
        await client.close()


async def test_a_resumption_on_another_node_racing_the_end_of_the_session_gets_the_stale_h(
    make_cluster: ClusterFactory, raw: ClientFactory
) -> None:
    n1, n2 = await make_cluster(2)
    bob = await raw(n2, "bob", "b")
    alice = await raw(n1, "alice", "phone")
    smid = await enable_sm(alice)
    bob.send(message(ALICE, "m1"))
    await messages(alice, 1)
    alice.send(message("bob@localhost", "hi"))
    alice.send(f"<r {SM}/>")
    assert (await alice.expect("a")).attrs["h"] == "1"
    [record] = n1.sessions.user_sessions(Jid.parse(ALICE))
    session = n1.sessions.local_handle(record.sid)
    assert isinstance(session, C2SSession)
    cut(alice)
    await wait_for(lambda: session.fsm.name == "RESUME_SESSION", what="alice detached")
    paused, go_on = asyncio.Event(), asyncio.Event()

    async def pause(acc: object, params: dict[str, Any]) -> object:
        if params.get("sid") == record.sid and not paused.is_set():
            paused.set()  # node1's session is ending: unregistered, the hooks still running
            await go_on.wait()
        return None

    owner = object()
    n1.hooks.add(SM_REMOVE_CONNECTION, None, pause, -1000, owner)
    try:
        session.kick("policy-violation", "kicked by the admin")
        await asyncio.wait_for(paused.wait(), 5)
        new, failed = await resume(n2.c2s_port(), "alice", smid, h=1)
    finally:
        go_on.set()
        n1.hooks.remove_owner(owner)
    assert failed.name == "failed" and failed.attrs.get("h") == "1"
    assert failed.find("item-not-found", ns.STANZAS_ERRORS) is not None
    await new.close()


async def test_resuming_a_session_of_a_dead_node_fails_and_its_unacked_messages_wait_offline(
    make_cluster: ClusterFactory, raw: ClientFactory
) -> None:
    n1, n2 = await make_cluster(2)  # node2 leads the tables: it cleans up after node1
    bob = await raw(n2, "bob", "b")
    alice = await raw(n1, "alice", "phone")
    alice.send(presence())
    await alice.expect(is_presence_from(ALICE))  # its own, before SM counts
    smid = await enable_sm(alice)
    for i in range(1, 4):
        bob.send(message(ALICE, f"m{i}"))
    assert [body(m) for m in await messages(alice, 3)] == ["m1", "m2", "m3"]
    alice.send(f"<a {SM} h='1'/>")
    assert n2.cluster is not None and n2.cluster.sm_buffer is not None
    sm_buffer = n2.cluster.sm_buffer
    table = sm_buffer.table
    await wait_for(lambda: len(table) == 2, what="m2 and m3 mirrored on node2")
    cut(alice)
    assert n1.cluster is not None
    await n1.cluster.stop()  # node1 "dies" holding Alice's session
    await wait_for(lambda: sm_buffer.rerouted == [("node1@localhost", 2)], what="m2, m3 stored")
    assert len(table) == 0
    late, failed = await resume(n2.c2s_port(), "alice", smid, 1)
    assert failed.name == "failed" and failed.find("item-not-found", ns.STANZAS_ERRORS) is not None
    await late.bind("phone")
    late.send(presence())
    got = await messages(late, 2)
    assert [body(m) for m in got] == ["m2", "m3"]
    assert all(delay_of(m) is not None for m in got)
    await late.close()


async def test_an_old_node_that_does_not_answer_fails_the_resumption_without_a_hang(
    make_cluster: ClusterFactory, raw: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    n1, n2 = await make_cluster(2)
    monkeypatch.setattr(resumption, "TAKEOVER_TIMEOUT", 0.3)
    bob = await raw(n2, "bob", "b")
    alice = await raw(n1, "alice", "phone")
    alice.send(presence())
    await alice.expect(is_presence_from(ALICE))
    smid = await enable_sm(alice)
    stuck = asyncio.Event()
    handler = n1.sessions.takeover_handler

    async def never(*args: object) -> None:
        await stuck.wait()

    n1.sessions.takeover_handler = never
    refused, failed = await resume(n2.c2s_port(), "alice", smid, 0)
    await refused.close()
    assert failed.name == "failed" and failed.find("item-not-found", ns.STANZAS_ERRORS) is not None
    # The announced successor row is gone again; Alice's session on node1 still works.
    await wait_for(lambda: alice_rows(n1) == [("phone", "node1@localhost")], what="n1 view")
    assert alice_rows(n2) == [("phone", "node1@localhost")]
    bob.send(message("alice@localhost", "still here"))
    assert [body(m) for m in await messages(alice, 1)] == ["still here"]
    stuck.set()
    n1.sessions.takeover_handler = handler
    again, resumed = await resume(n2.c2s_port(), "alice", smid, 0)
    assert resumed.name == "resumed"
    assert [body(m) for m in await messages(again, 1)] == ["still here"]
    await again.close()


async def test_a_hand_off_nobody_claims_is_routed_again_by_the_old_node(
    make_cluster: ClusterFactory, raw: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    n1, n2 = await make_cluster(2)
    monkeypatch.setattr(remote, "ORPHAN_GRACE", 0.1)
    bob = await raw(n2, "bob", "b")
    alice = await raw(n1, "alice", "phone")
    smid = await enable_sm(alice)
    bob.send(message(ALICE, "in the lost answer"))
    await messages(alice, 1)
    cut(alice)
    [record] = n1.sessions.user_sessions(Jid("alice", "localhost"))
    # node2 asks for the session, then loses the answer (as if the call had timed out).
    state = await n2.sessions.take_over(record.sid, smid, n2.sessions.new_sid(0.0))
    assert state is not None and len(state["buffer"]) == 1
    assert n1.sessions.user_sessions(Jid("alice", "localhost")) == []
    back = await raw(n2, "alice", "phone")
    back.send(presence())
    assert [body(m) for m in await messages(back, 1)] == ["in the lost answer"]


async def test_a_message_buffered_just_before_a_hand_off_is_not_left_behind_to_be_routed_again(
    make_cluster: ClusterFactory, raw: ClientFactory
) -> None:
    n1, n2 = await make_cluster(2)
    assert n1.cluster is not None and n1.cluster.sm_buffer is not None
    mirror = n1.cluster.sm_buffer
    mirror.delay = 60.0  # every message is younger than the mirror's delay at the hand-off
    bob = await raw(n2, "bob", "b")
    alice = await raw(n1, "alice", "phone")
    smid = await enable_sm(alice)
    [record] = n1.sessions.user_sessions(Jid("alice", "localhost"))
    bob.send(message(ALICE, "young"))
    await messages(alice, 1)
    cut(alice)
    new, resumed = await resume(n2.c2s_port(), "alice", smid, 0)
    assert resumed.name == "resumed"
    assert [body(m) for m in await messages(new, 1)] == ["young"]
    # node2 holds the session and released node1's copy of the buffer. Whatever node1 still
    # holds of it would be routed again: by its own check that the hand-off was claimed
    # (`held`), or by the leader when node1 dies - a second "young".
    await wait_for(
        lambda: mirror.held(record.sid, range(10)) == [], timeout=3, what="node1's copy gone"
    )
    assert n2.cluster is not None and n2.cluster.sm_buffer is not None
    assert n2.cluster.sm_buffer.table.match((record.sid,)) == []
    await new.close()


async def test_a_session_moves_twice_and_the_connection_it_leaves_gets_conflict(
    make_cluster: ClusterFactory, raw: ClientFactory
) -> None:
    n1, n2, n3 = await make_cluster(3)
    bob = await raw(n3, "bob", "b")
    alice = await raw(n1, "alice", "phone")
    smid = await enable_sm(alice)
    bob.send(message(ALICE, "one"))
    await messages(alice, 1)
    cut(alice)
    second, resumed = await resume(n2.c2s_port(), "alice", smid, 0)
    assert resumed.name == "resumed"
    assert [body(m) for m in await messages(second, 1)] == ["one"]
    bob.send(message(ALICE, "two"))
    assert [body(m) for m in await messages(second, 1)] == ["two"]
    second.send(f"<a {SM} h='1'/>")  # "one" acknowledged, "two" not
    third, resumed = await resume(n3.c2s_port(), "alice", smid, 1)
    assert resumed.name == "resumed"
    assert await second.stream_error() == "conflict"
    got = await messages(third, 1)
    assert body(got[0]) == "two" and delay_of(got[0]) is not None
    assert await bodies_before_ack(third) == []
    await wait_for(lambda: alice_rows(n1) == [("phone", "node3@localhost")], what="n1 view")
    assert n2.sessions.local_count() == 0
    await second.close()
    await third.close()
