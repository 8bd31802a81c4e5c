"""XEP-0198 Stream Management on real c2s sessions over memory transports: acks, the buffer,
detaching, resumption (exactly once, in order), and what happens to unacknowledged stanzas."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any

import pytest
from test_c2s_harness import BASE_MODULES, C2SHarness, Wire, start_harness

from meerkat.core.hooks import (
    REROUTE_UNACKED_MESSAGES,
    SM_REMOVE_CONNECTION,
    UNSET_PRESENCE,
    USER_TERMINATE,
    Hook,
)
from meerkat.modules._common import xmpp_stamp
from meerkat.modules.stream_management import (
    H_MODULO,
    HandledCountTooHigh,
    LocalSmTable,
    SmEntry,
    SmState,
    StaleH,
    StaleHConfig,
    StreamManagementConfig,
    StreamManagementModule,
    make_smid,
    smid_node,
)
from meerkat.xmpp import ns
from meerkat.xmpp.element import Element
from meerkat.xmpp.jid import Jid
from meerkat.xmpp.stream import XmlStream

SM = f"xmlns='{ns.SM}'"


def modules(**config: Any) -> dict[str, Any]:
    return {**BASE_MODULES, "mod_stream_management": StreamManagementConfig(**config)}


@pytest.fixture
async def harness() -> AsyncIterator[C2SHarness]:
    h = await start_harness(modules(resume_timeout=1, stale_h=StaleHConfig(enabled=True)))
    yield h
    await h.stop()


async def enabled(wire: Wire, resume: bool = True) -> Element:
    wire.send(f"<enable {SM} resume='{'true' if resume else 'false'}'/>")
    return await wire.expect("enabled")


def chat(to: str, body: str) -> str:
    return f"<message to='{to}' type='chat'><body>{body}</body></message>"


def bodies(stanzas: list[Element]) -> list[str]:
    return [s.find_text("body") or "" for s in stanzas if s.name == "message"]


async def online(harness: C2SHarness, user: str, resource: str = "res") -> Wire:
    wire = await harness.logged_in(user, resource)
    wire.send("<presence/>")
    await wire.elements()
    return wire


# -- pure counters --------------------------------------------------------------------------------
def test_counters_wrap_at_2_to_the_32() -> None:
    sm = SmState(buffer_max=None)
    sm.sent = sm.acked = H_MODULO - 2
    for i in range(4):
        sm.count_out(Element("message", ns.CLIENT, {"id": str(i)}))
    assert sm.sent == 2 and sm.pending == 4
    sm.ack(H_MODULO - 1)
    assert [e.attrs["id"] for e in sm.unacked] == ["1", "2", "3"]
    sm.ack(1)
    assert [e.attrs["id"] for e in sm.unacked] == ["3"]
    with pytest.raises(HandledCountTooHigh):
        sm.ack(3)
    sm.handled = H_MODULO - 1
    sm.count_in()
    assert sm.handled == 0


def test_an_sm_id_names_its_node_and_is_opaque() -> None:
    smid = make_smid("meerkat@host-1", bytes(range(18)))
    assert smid_node(smid) == "meerkat@host-1"
    assert "meerkat" not in smid
    assert smid_node("not-ours") is None


# -- acks -----------------------------------------------------------------------------------------
async def test_acks_count_stanzas_in_both_directions(harness: C2SHarness) -> None:
    alice = await online(harness, "alice")
    bob = await online(harness, "bob")
    el = await enabled(alice, resume=False)
    assert "id" not in el.attrs
    alice.send(chat("bob@localhost", "one"))
    alice.send("<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")
    alice.send(f"<r {SM}/>")
    ack = await alice.expect("a")
    assert ack.attrs["h"] == "2"
    assert bodies(await bob.stanzas()) == ["one"]
    bob.send(chat("alice@localhost/res", "hi"))
    got = await alice.elements()
    names = [(e.name, e.attrs.get("h")) for e in got]
    assert ("message", None) in names and names[-1] == ("r", None)  # the server asks for an ack
    sm = alice.session.state("mod_stream_management")["sm"]
    assert sm.pending == 2  # the ping's result and bob's message
    alice.send(f"<a {SM} h='2'/>")
    alice.send(f"<r {SM}/>")
    await alice.expect("a")
    assert sm.pending == 0 and not sm.unacked


async def test_enable_before_binding_fails_and_binding_still_works(harness: C2SHarness) -> None:
    alice = harness.connect()
    success = await alice.authenticate("alice")
    assert success.name == "success"
    alice.send(f"<enable {SM}/>")
    failed = await alice.expect("failed")
    assert failed.find("unexpected-request", ns.STANZAS_ERRORS) is not None
    alice.send(f"<iq type='set' id='b'><bind xmlns='{ns.BIND}'/></iq>")
    assert (await alice.expect("iq")).attrs["type"] == "result"


async def test_an_ack_above_what_was_sent_is_a_stream_error(harness: C2SHarness) -> None:
    alice = await online(harness, "alice")
    await enabled(alice)
    alice.send(f"<a {SM} h='5'/>")
    error = await alice.stream_error()
    assert error.find("undefined-condition", ns.STREAMS_ERRORS) is not None
    too_high = error.find("handled-count-too-high", ns.SM)
    assert too_high is not None and too_high.attrs == {"h": "5", "send-count": "0"}
    await alice.ended()


async def test_a_full_buffer_closes_the_stream_and_the_messages_go_offline() -> None:
    harness = await start_harness(modules(buffer_max=2))
    try:
        alice = await online(harness, "alice")
        bob = await online(harness, "bob")
        await enabled(alice)
        for body in ("1", "2", "3"):
            bob.send(chat("alice@localhost/res", body))
        error = await alice.stream_error()
        assert error.find("resource-constraint", ns.STREAMS_ERRORS) is not None
        await alice.ended()
        again = await harness.logged_in("alice")
        again.send("<presence/>")
        assert bodies(await again.stanzas()) == ["1", "2", "3"]
    finally:
        await harness.stop()


# -- resumption -----------------------------------------------------------------------------------
async def detached_alice(harness: C2SHarness) -> tuple[Wire, str, Wire]:
    """alice with resumable SM got m1 and m2 (acked m1 only), then her socket died."""
    alice = await online(harness, "alice")
    bob = await online(harness, "bob")
    smid = (await enabled(alice)).attrs["id"]
    bob.send(chat("alice@localhost/res", "m1"))
    bob.send(chat("alice@localhost/res", "m2"))
    assert bodies(await alice.stanzas()) == ["m1", "m2"]
    alice.send(f"<a {SM} h='1'/>")
    await alice.elements()
    alice.drop()
    await wait_detached(alice)
    return alice, smid, bob


async def wait_detached(wire: Wire) -> None:
    for _ in range(100):
        if wire.session.fsm.name == "RESUME_SESSION":
            return
        await asyncio.sleep(0.01)
    raise AssertionError("session did not detach")


async def resume(
    harness: C2SHarness, smid: str, h: int, user: str = "alice"
) -> tuple[Wire, Element]:
    wire = await authenticated(harness, user)
    wire.send(f"<resume {SM} previd='{smid}' h='{h}'/>")
    return wire, await wire.expect(lambda e: e.xmlns == ns.SM and e.name in ("resumed", "failed"))


async def authenticated(harness: C2SHarness, user: str) -> Wire:
    """RFC 6120 SASL and the stream restart, not bound."""
    wire = harness.connect()
    await wire.open()
    plain = base64.b64encode(f"\0{user}\0secret".encode()).decode()
    wire.send(f"<auth xmlns='{ns.SASL}' mechanism='PLAIN'>{plain}</auth>")
    await wire.expect("success")
    wire.parser = XmlStream(max_stanza_size=10_000_000, max_depth=1000)
    await wire.open()
    return wire


async def test_resumption_redelivers_each_unacked_stanza_once_in_order(harness: C2SHarness) -> None:
    alice, smid, bob = await detached_alice(harness)
    sid = alice.session.sid
    bob.send(chat("alice@localhost/res", "m3"))  # while detached: buffered
    bob.send(chat("alice@localhost/res", "m4"))
    await asyncio.sleep(0.05)
    record = harness.server.sessions.user_sessions(alice.session.jid)[0]
    assert record.sid == sid and record.available  # still online for everyone else
    new, resumed = await resume(harness, smid, h=1)
    assert resumed.name == "resumed" and resumed.attrs == {"previd": smid, "h": "0"}
    assert bodies(await new.stanzas()) == ["m2", "m3", "m4"]
    bob.send(chat("alice@localhost/res", "m5"))
    assert bodies(await new.stanzas()) == ["m5"]
    [record] = harness.server.sessions.user_sessions(alice.session.jid)
    assert record.sid == sid and new.session.sid == sid and new.session.available
    new.send(chat("bob@localhost", "back"))
    new.send(f"<a {SM} h='5'/>")
    new.send(f"<r {SM}/>")
    assert (await new.expect("a")).attrs["h"] == "1"  # counting went on from the old session
    assert bodies(await bob.stanzas()) == ["back"]
    await alice.ended()  # the old task ended quietly


async def test_resuming_while_the_old_connection_looks_alive_closes_it_with_conflict(
    harness: C2SHarness,
) -> None:
    alice = await online(harness, "alice")
    bob = await online(harness, "bob")
    smid = (await enabled(alice)).attrs["id"]
    bob.send(chat("alice@localhost/res", "unseen"))
    await alice.elements()
    new, resumed = await resume(harness, smid, h=0)
    assert resumed.name == "resumed"
    assert bodies(await new.stanzas()) == ["unseen"]
    error = await alice.stream_error()
    assert error.find("conflict", ns.STREAMS_ERRORS) is not None


async def test_someone_elses_session_cannot_be_resumed(harness: C2SHarness) -> None:
    alice, smid, _ = await detached_alice(harness)
    mallory, failed = await resume(harness, smid, h=0, user="bob")
    assert failed.name == "failed" and "h" not in failed.attrs
    assert failed.find("item-not-found", ns.STANZAS_ERRORS) is not None
    mallory.send(f"<iq type='set' id='b'><bind xmlns='{ns.BIND}'/></iq>")
    assert (await mallory.expect("iq")).attrs["type"] == "result"
    assert alice.session.fsm.name == "RESUME_SESSION"  # untouched
    new, resumed = await resume(harness, smid, h=1)
    assert resumed.name == "resumed"
    assert bodies(await new.stanzas()) == ["m2"]


async def test_an_unknown_id_fails_without_h(harness: C2SHarness) -> None:
    _, failed = await resume(harness, make_smid("node1", bytes(18)), h=0)
    assert failed.name == "failed" and "h" not in failed.attrs


async def test_a_late_resumption_fails_with_the_stale_h_and_messages_are_offline(
    harness: C2SHarness,
) -> None:
    alice, smid, bob = await detached_alice(harness)
    bob.send(chat("alice@localhost/res", "m3"))
    await alice.ended()  # resume_timeout = 1 s
    assert harness.server.sessions.user_sessions(alice.session.jid) == []
    _, failed = await resume(harness, smid, h=1)
    assert failed.name == "failed" and failed.attrs.get("h") == "0"  # alice sent nothing
    assert failed.find("item-not-found", ns.STANZAS_ERRORS) is not None
    again = await harness.logged_in("alice", "res")
    again.send("<presence/>")
    assert bodies(await again.stanzas()) == ["m2", "m3"]  # from offline storage, in order


async def end_session(wire: Wire, how: str) -> None:
    """Make alice's resumable session end unresumed, the way `how` says."""
    if how == "timeout":
        return  # detached; resume_timeout = 1 s
    if how == "kick":
        wire.session.kick("policy-violation", "kicked by the admin")
    elif how == "clean close":
        wire.send("</stream:stream>")
    else:
        assert how == "stream error"
        wire.send("<not-a-stanza xmlns='urn:example'/>")


@pytest.mark.parametrize(
    "pause_in", [UNSET_PRESENCE, SM_REMOVE_CONNECTION, REROUTE_UNACKED_MESSAGES]
)
@pytest.mark.parametrize("how", ["timeout", "kick", "clean close", "stream error"])
async def test_a_resumption_racing_the_end_of_the_session_gets_the_stale_h(
    harness: C2SHarness, how: str, pause_in: Hook
) -> None:
    """While the session's end runs its hooks (paused here in one of them, before stream
    management's own handlers), a <resume/> must not fall between the live session and
    the stale h: XEP-0198 wants <failed h='...'><item-not-found/> with the last h."""
    if how in ("timeout", "kick"):
        alice, smid, _ = await detached_alice(harness)
        h = "0"  # alice sent nothing after enabling
    else:
        alice = await online(harness, "alice")
        smid = (await enabled(alice)).attrs["id"]
        alice.send(chat("bob@localhost", "one"))
        alice.send(f"<r {SM}/>")
        assert (await alice.expect("a")).attrs["h"] == "1"
        h = "1"
    jid = alice.session.jid
    paused, go_on = asyncio.Event(), asyncio.Event()

    async def pause(acc: object, params: dict[str, Any]) -> object:
        if params.get("jid") == jid and not paused.is_set():
            paused.set()
            await go_on.wait()
        return None

    owner = object()
    harness.server.hooks.add(pause_in, None, pause, -1000, owner)  # before everyone else
    try:
        await end_session(alice, how)
        await asyncio.wait_for(paused.wait(), 5)
        _, failed = await resume(harness, smid, h=1)
    finally:
        go_on.set()
        harness.server.hooks.remove_owner(owner)
    assert failed.name == "failed" and failed.attrs.get("h") == h
    assert failed.find("item-not-found", ns.STANZAS_ERRORS) is not None
    await alice.ended()
    _, late = await resume(harness, smid, h=1)
    assert late.name == "failed" and late.attrs.get("h") == h


@pytest.mark.parametrize("pause_at", ["before the id is retired", "between stale h and id"])
async def test_a_resumption_arriving_while_the_id_is_retired_waits_and_gets_the_stale_h(
    harness: C2SHarness, pause_at: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The <resume/> finds the id and the session still resumable: it asks the session,
    which answers only once it has ended, and then the stale h is there."""
    alice, smid, _ = await detached_alice(harness)
    module = harness.server.ctx.module("mod_stream_management")
    assert isinstance(module, StreamManagementModule)
    table = module.table
    paused, go_on, looked_up = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def wait_here() -> None:
        paused.set()
        await go_on.wait()

    async def pause(acc: object, params: dict[str, Any]) -> object:
        await wait_here()
        return None

    lookup, unregister = table.lookup, table.unregister

    def spy_lookup(previd: str) -> SmEntry | None:
        looked_up.set()
        return lookup(previd)

    async def paused_unregister(previd: str) -> None:
        await wait_here()
        await unregister(previd)

    monkeypatch.setattr(table, "lookup", spy_lookup)
    owner = object()
    if pause_at == "before the id is retired":
        harness.server.hooks.add(USER_TERMINATE, None, pause, -1000, owner)
    else:
        monkeypatch.setattr(table, "unregister", paused_unregister)
    try:
        alice.session.kick("policy-violation", "kicked by the admin")
        await asyncio.wait_for(paused.wait(), 5)
        attempt = asyncio.ensure_future(resume(harness, smid, h=1))
        await asyncio.wait_for(looked_up.wait(), 5)  # it found the id and asked the session
        assert not attempt.done()
        go_on.set()
        _, failed = await attempt
    finally:
        go_on.set()
        harness.server.hooks.remove_owner(owner)
    assert failed.name == "failed" and failed.attrs.get("h") == "0"
    assert failed.find("item-not-found", ns.STANZAS_ERRORS) is not None


async def test_an_h_above_what_was_sent_on_resumption_is_a_stream_error(
    harness: C2SHarness,
) -> None:
    _, smid, _ = await detached_alice(harness)
    new = await authenticated(harness, "alice")
    new.send(f"<resume {SM} previd='{smid}' h='7'/>")
    error = await new.stream_error()
    too_high = error.find("handled-count-too-high", ns.SM)
    assert too_high is not None and too_high.attrs == {"h": "7", "send-count": "2"}
    await new.ended()
    again = await harness.logged_in("alice", "res")
    again.send("<presence/>")
    assert bodies(await again.stanzas()) == ["m2"]  # the unacked one was not lost


async def test_a_clean_close_reroutes_unacked_messages_instead_of_detaching(
    harness: C2SHarness,
) -> None:
    alice = await online(harness, "alice")
    bob = await online(harness, "bob")
    await enabled(alice)
    bob.send(chat("alice@localhost/res", "unacked"))
    await alice.stanzas()
    await alice.close()
    assert harness.server.sessions.user_sessions(alice.session.jid) == []
    again = await harness.logged_in("alice", "res")
    again.send("<presence/>")
    assert bodies(await again.stanzas()) == ["unacked"]


async def test_a_new_login_on_the_same_resource_gets_the_detached_sessions_messages(
    harness: C2SHarness,
) -> None:
    alice, _, _ = await detached_alice(harness)
    again = await harness.logged_in("alice", "res")  # the same device, without resuming
    await alice.ended()
    again.send("<presence/>")
    assert bodies(await again.stanzas()) == ["m2"]


async def test_inline_enable_in_bind2_and_inline_resume_in_sasl2(harness: C2SHarness) -> None:
    bob = await online(harness, "bob")
    alice = harness.connect()
    success = await alice.authenticate(
        "alice",
        f"<bind xmlns='{ns.BIND2}'><tag>phone</tag><enable {SM} resume='true'/></bind>",
        agent="1d9fe0a4-7d6b-4a53-8c41-a8d6b0c0f3f1",
    )
    assert success.name == "success"
    enabled_el = success.find("bound", ns.BIND2).find("enabled", ns.SM)  # type: ignore[union-attr]
    assert enabled_el is not None and enabled_el.attrs["resume"] == "true"
    smid = enabled_el.attrs["id"]
    jid = success.find_text("authorization-identifier", ns.SASL2)
    assert jid is not None and jid.startswith("alice@localhost/phone.")
    alice.send("<presence/>")
    await alice.elements()
    bob.send(chat(jid, "x1"))
    assert bodies(await alice.stanzas()) == ["x1"]
    alice.drop()
    await wait_detached(alice)
    bob.send(chat(jid, "x2"))
    again = harness.connect()
    success = await again.authenticate("alice", f"<resume {SM} previd='{smid}' h='0'/>")
    resumed = success.find("resumed", ns.SM)
    assert resumed is not None and resumed.attrs["h"] == "1"
    assert success.find_text("authorization-identifier", ns.SASL2) == jid
    assert success.find("bound", ns.BIND2) is None
    assert bodies(await again.stanzas()) == ["x1", "x2"]


async def test_stale_h_values_are_pruned_after_the_geriatric_age() -> None:
    table = LocalSmTable()
    owner = Jid("alice", "localhost")
    await table.put_stale_h("old", StaleH(3, owner, at=1000.0))
    await table.put_stale_h("new", StaleH(4, owner, at=5000.0))
    assert await table.prune_stale_h(older_than=2000.0) == 1
    assert table.stale_h("old") is None
    assert table.stale_h("new") == StaleH(4, owner, at=5000.0)


async def test_a_dead_nodes_ids_can_be_dropped() -> None:
    table = LocalSmTable()
    owner = Jid("alice", "localhost", "res")
    await table.register(SmEntry("a", "1@n1", owner, "n1"))
    await table.register(SmEntry("b", "2@n2", owner, "n2"))
    await table.remove_node("n1")
    assert table.lookup("a") is None and table.lookup("b") is not None


async def test_a_failed_inline_resumption_falls_back_to_the_inline_bind(
    harness: C2SHarness,
) -> None:
    wire = harness.connect()
    previd = make_smid("node1", bytes(18))
    inline = f"<resume {SM} previd='{previd}' h='0'/><bind xmlns='{ns.BIND2}'><enable {SM}/></bind>"
    success = await wire.authenticate("alice", inline)
    failed = success.find("failed", ns.SM)
    assert failed is not None and failed.find("item-not-found", ns.STANZAS_ERRORS) is not None
    bound = success.find("bound", ns.BIND2)
    assert bound is not None and bound.find("enabled", ns.SM) is not None
    assert "/" in (success.find_text("authorization-identifier", ns.SASL2) or "")


async def test_answers_to_pipelined_stanzas_before_enable_are_not_counted(
    harness: C2SHarness,
) -> None:
    alice = await online(harness, "alice")
    alice.send(f"<message to='a@b@c' id='bad'><body>x</body></message><enable {SM}/>")
    names = [e.name for e in await alice.elements()]
    assert names == ["message", "enabled"]  # the error, then <enabled/>, in that order
    sm = alice.session.state("mod_stream_management")["sm"]
    assert sm.sent == 0 and not sm.unacked


async def test_resent_messages_carry_a_delay_stamped_when_first_buffered_but_iqs_do_not(
    harness: C2SHarness,
) -> None:
    alice = await online(harness, "alice")
    bob = await online(harness, "bob")
    smid = (await enabled(alice)).attrs["id"]
    first = harness.server.clock.now()
    bob.send(chat("alice@localhost/res", "early"))
    await alice.stanzas()
    harness.server.clock.advance(60)
    bob.send(
        "<iq type='get' id='v' to='alice@localhost/res'><query xmlns='jabber:iq:version'/></iq>"
    )
    await alice.stanzas()
    alice.drop()
    await wait_detached(alice)
    harness.server.clock.advance(60)
    new, resumed = await resume(harness, smid, h=0)
    assert resumed.name == "resumed"
    message, iq = [e for e in await new.stanzas() if e.name in ("message", "iq")]
    delay = message.find("delay", ns.DELAY)
    assert delay is not None and delay.attrs == {
        "from": "localhost",
        "stamp": xmpp_stamp(first),
    }
    assert iq.find("delay", ns.DELAY) is None
    # A second resumption keeps the first stamp and adds no second delay.
    new.drop()
    await wait_detached(new)
    again, resumed = await resume(harness, smid, h=0)
    assert resumed.name == "resumed"
    message = next(e for e in await again.stanzas() if e.name == "message")
    assert [d.attrs["stamp"] for d in message.elements() if d.name == "delay"] == [
        xmpp_stamp(first)
    ]
