"""XEP-0198 over real sockets: a client whose TCP connection is aborted (no closing tag, no FIN
handshake from it) resumes and gets every unacknowledged stanza exactly once, in order; raw XML
for the error paths, slixmpp's xep_0198 as an independent client."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import pytest
import slixmpp

from meerkat.modules import DEFAULT_MODULES
from meerkat.server import Node
from meerkat.xmpp import ns
from meerkat.xmpp.element import Element
from meerkat.xmpp.jid import Jid

from .conftest import NodeFactory
from .rawxmpp import RawClient, logged_in
from .test_im_with_slixmpp import wait_for
from .test_sasl2 import connected, sasl2_scram

SM = f"xmlns='{ns.SM}'"


def sm_config(**sm: Any) -> dict[str, Any]:
    modules: dict[str, Any] = {name: {} for name in DEFAULT_MODULES}
    modules["mod_stream_management"] = sm
    return modules


@pytest.fixture
async def sm_node(start_node: NodeFactory) -> Node:
    return await start_node(modules=sm_config(resume_timeout=2, stale_h={"enabled": True}))


def chat(to: str, body: str) -> str:
    return f"<message to='{to}' type='chat'><body>{body}</body></message>"


async def bodies(client: RawClient, count: int) -> list[str]:
    out: list[str] = []
    while len(out) < count:
        el = await client.expect("message")
        out.append(el.find_text("body") or "")
    return out


async def sm_client(node: Node, user: str, direct_tls: bool) -> tuple[RawClient, str]:
    """Logged in, available, stream management enabled with resumption; returns the SM-ID."""
    port = node.c2s_port(1 if direct_tls else 0)
    client = await logged_in(port, user, "res", direct_tls=direct_tls)
    client.send("<presence/>")
    await client.expect("presence")
    client.send(f"<enable {SM} resume='true'/>")
    enabled = await client.expect("enabled")
    return client, enabled.attrs["id"]


def abort(client: RawClient) -> None:
    """Kill the socket: no </stream:stream>, no orderly TLS or TCP close from our side."""
    client.writer.transport.abort()


async def wait_detached(node: Node, user: str) -> None:
    async def check() -> bool:
        records = [r for r in node.sessions.all_sessions() if r.jid.local == user]
        handles = [node.sessions.local_handle(r.sid) for r in records]
        return any(getattr(h, "fsm", None) and h.fsm.name == "RESUME_SESSION" for h in handles)

    for _ in range(200):
        if await check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{user}'s session did not detach")


async def resume_raw(
    node: Node, smid: str, h: int, user: str = "alice"
) -> tuple[RawClient, Element]:
    client = await RawClient.connect(node.c2s_port(0))
    await client.open_stream()
    await client.starttls()
    assert (await client.scram(user, "secret")).name == "success"
    await client.open_stream()
    client.send(f"<resume {SM} previd='{smid}' h='{h}'/>")
    reply = await client.expect(lambda e: e.xmlns == ns.SM and e.name in ("resumed", "failed"))
    return client, reply


# -- raw XML --------------------------------------------------------------------------------------
@pytest.mark.parametrize("direct_tls", [False, True], ids=["starttls", "direct-tls"])
async def test_an_aborted_connection_resumes_with_every_message_once_in_order(
    sm_node: Node, direct_tls: bool
) -> None:
    alice, smid = await sm_client(sm_node, "alice", direct_tls)
    bob = await logged_in(sm_node.c2s_port(0), "bob", "res")
    for i in range(1, 4):
        bob.send(chat("alice@localhost/res", f"m{i}"))
    assert await bodies(alice, 3) == ["m1", "m2", "m3"]
    alice.send(f"<a {SM} h='2'/>")  # m3 arrived but was not acknowledged
    await asyncio.sleep(0.05)
    abort(alice)
    for i in range(4, 7):  # some while the server has not noticed, some after
        bob.send(chat("alice@localhost/res", f"m{i}"))
        await asyncio.sleep(0.02)
    await wait_detached(sm_node, "alice")
    bob.send(chat("alice@localhost/res", "m7"))
    new, resumed = await resume_raw(sm_node, smid, h=2)
    assert resumed.name == "resumed" and resumed.attrs["previd"] == smid
    assert await bodies(new, 5) == ["m3", "m4", "m5", "m6", "m7"]
    new.send(chat("bob@localhost/res", "back"))
    assert (await bob.expect("message")).find_text("body") == "back"
    new.send(f"<r {SM}/>")
    assert (await new.expect("a")).attrs["h"] == "1"  # "back" (presence preceded <enable/>)
    await new.close()
    await bob.close()


async def test_resuming_someone_elses_session_is_refused(sm_node: Node) -> None:
    alice, smid = await sm_client(sm_node, "alice", True)
    abort(alice)
    await wait_detached(sm_node, "alice")
    bob, failed = await resume_raw(sm_node, smid, h=0, user="bob")
    assert failed.name == "failed" and failed.find("item-not-found", ns.STANZAS_ERRORS) is not None
    assert "h" not in failed.attrs
    await bob.close()
    alice2, resumed = await resume_raw(sm_node, smid, h=0)
    assert resumed.name == "resumed"
    await alice2.close()


async def test_resuming_after_the_timeout_fails_with_the_stale_h_and_messages_wait_offline(
    sm_node: Node,
) -> None:
    alice, smid = await sm_client(sm_node, "alice", False)
    bob = await logged_in(sm_node.c2s_port(0), "bob", "res")
    alice.send(chat("bob@localhost/res", "one"))
    await bob.expect("message")
    abort(alice)
    await wait_detached(sm_node, "alice")
    bob.send(chat("alice@localhost/res", "while away"))
    await wait_for(lambda: not sm_node.sessions.user_sessions(Jid("alice", "localhost")), 5)
    late, failed = await resume_raw(sm_node, smid, h=0)
    assert failed.name == "failed" and failed.attrs.get("h") == "1"  # "one" was handled
    assert failed.find("item-not-found", ns.STANZAS_ERRORS) is not None
    await late.bind("res")
    late.send("<presence/>")
    assert await bodies(late, 1) == ["while away"]
    await late.close()
    await bob.close()


async def test_an_h_larger_than_sent_closes_the_new_stream(sm_node: Node) -> None:
    alice, smid = await sm_client(sm_node, "alice", True)
    abort(alice)
    await wait_detached(sm_node, "alice")
    client = await RawClient.connect(sm_node.c2s_port(0))
    await client.open_stream()
    await client.starttls()
    await client.scram("alice", "secret")
    await client.open_stream()
    client.send(f"<resume {SM} previd='{smid}' h='99'/>")
    assert await client.stream_error() == "undefined-condition"
    await client.wait_closed()


async def test_an_ack_larger_than_sent_closes_the_stream(sm_node: Node) -> None:
    alice, _ = await sm_client(sm_node, "alice", True)
    alice.send(f"<a {SM} h='99'/>")
    assert await alice.stream_error() == "undefined-condition"
    await alice.wait_closed()


async def test_sasl2_resumes_inline_after_an_abort(sm_node: Node) -> None:
    client, _ = await connected(sm_node)
    bind = f"<bind xmlns='{ns.BIND2}'><enable {SM} resume='true'/></bind>"
    success = await sasl2_scram(client, inline=bind)
    smid = success.find("bound", ns.BIND2).find("enabled", ns.SM).attrs["id"]  # type: ignore[union-attr]
    jid = success.find_text("authorization-identifier", ns.SASL2) or ""
    bob = await logged_in(sm_node.c2s_port(0), "bob", "res")
    bob.send(chat(jid, "lost in flight"))
    await client.expect("message")
    abort(client)
    await wait_detached(sm_node, "alice")
    again, _ = await connected(sm_node)
    success = await sasl2_scram(again, inline=f"<resume {SM} previd='{smid}' h='0'/>")
    assert success.find("resumed", ns.SM) is not None
    assert success.find_text("authorization-identifier", ns.SASL2) == jid
    assert await bodies(again, 1) == ["lost in flight"]
    await again.close()
    await bob.close()


# -- slixmpp --------------------------------------------------------------------------------------
def slixmpp_client(jid: str) -> slixmpp.ClientXMPP:
    client = slixmpp.ClientXMPP(jid, "secret")
    client.ssl_context.check_hostname = False
    client.ssl_context.verify_mode = ssl.CERT_NONE
    client.register_plugin("xep_0198")
    return client


async def test_slixmpp_resumes_after_its_socket_is_killed_mid_conversation(
    sm_node: Node,
) -> None:
    alice = slixmpp_client("alice@localhost/phone")
    bob = slixmpp_client("bob@localhost/desk")
    got_alice: list[str] = []
    got_bob: list[str] = []
    alice.add_event_handler("message", lambda m: got_alice.append(str(m["body"])))
    bob.add_event_handler("message", lambda m: got_bob.append(str(m["body"])))
    resumed = asyncio.Event()
    alice.add_event_handler("session_resumed", lambda _: resumed.set())
    enabled = asyncio.Event()
    alice.add_event_handler("sm_enabled", lambda _: enabled.set())
    started = asyncio.Event()
    bob.add_event_handler("session_start", lambda _: started.set())
    port = sm_node.c2s_port(0)
    try:
        alice.connect("127.0.0.1", port)
        bob.connect("127.0.0.1", port)
        await asyncio.wait_for(enabled.wait(), 10)
        await asyncio.wait_for(started.wait(), 10)
        for i in range(10):
            bob.send_message("alice@localhost/phone", f"b{i}", mtype="chat")
            alice.send_message("bob@localhost/desk", f"a{i}", mtype="chat")
            await asyncio.sleep(0.01)
        await wait_for(lambda: len(got_alice) >= 3)
        alice.send_message("bob@localhost/desk", "a10", mtype="chat")  # may die in the buffer
        alice.transport.abort()  # the phone goes into a tunnel mid-conversation
        for i in range(10, 20):
            bob.send_message("alice@localhost/phone", f"b{i}", mtype="chat")
            await asyncio.sleep(0.005)
        await wait_detached(sm_node, "alice")
        before = len(got_alice)
        alice.connect("127.0.0.1", port)
        await asyncio.wait_for(resumed.wait(), 10)
        for i in range(11, 20):
            alice.send_message("bob@localhost/desk", f"a{i}", mtype="chat")
        assert before < 20  # some stanzas really were left for the resumed stream
        await wait_for(lambda: len(got_alice) >= 20 and len(got_bob) >= 20, timeout=10)
        await asyncio.sleep(0.2)  # nothing more may come
        assert got_alice == [f"b{i}" for i in range(20)]
        assert got_bob == [f"a{i}" for i in range(20)]
    finally:
        for client in (alice, bob):
            client.disconnect()
        await asyncio.sleep(0.1)
