"""Hostile and broken input over real sockets: the right stream or stanza error, and the node
keeps serving everyone else."""

from __future__ import annotations

import pytest

from meerkat.server import Node
from meerkat.xmpp import ns
from meerkat.xmpp.errors import error_condition

from .rawxmpp import RawClient, header, logged_in


async def assert_still_serving(node: Node) -> None:
    client = await logged_in(node.c2s_port(1), "carol", direct_tls=True)
    client.send("<iq type='get' id='alive'><ping xmlns='urn:xmpp:ping'/></iq>")
    reply = await client.expect(lambda e: e.attrs.get("id") == "alive")
    assert reply.attrs["type"] == "result"
    await client.close()


@pytest.mark.parametrize(
    ("payload", "condition"),
    [
        ("<message><body>unclosed</message>", "not-well-formed"),
        ("<message>&xxe;</message>", "restricted-xml"),
        ("<?evil processing='instruction'?>", "restricted-xml"),
        ("<!-- a comment -->", "restricted-xml"),
        ("<message>" + "<a>" * 200, "policy-violation"),
        ("<message><body>" + "x" * 70000 + "</body></message>", "policy-violation"),
        ("<foo xmlns='jabber:client'/>", "unsupported-stanza-type"),
        ("<message xmlns='urn:wrong'/>", "unsupported-stanza-type"),
    ],
)
async def test_bad_xml_in_a_session_gets_a_stream_error_and_the_node_survives(
    node: Node, payload: str, condition: str
) -> None:
    client = await logged_in(node.c2s_port(1), "alice", direct_tls=True)
    client.send(payload)
    assert await client.stream_error() == condition
    await client.wait_closed()
    await assert_still_serving(node)


async def test_a_doctype_before_the_stream_is_restricted_xml(node: Node) -> None:
    client = await RawClient.connect(node.c2s_port(1), direct_tls=True)
    client.send("<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>]>" + header())
    assert await client.stream_error() == "restricted-xml"
    await client.wait_closed()
    await assert_still_serving(node)


async def test_an_unknown_stream_namespace_is_invalid_namespace(node: Node) -> None:
    client = await RawClient.connect(node.c2s_port(1), direct_tls=True)
    client.send("<stream:stream to='localhost' version='1.0' xmlns:stream='urn:nope'>")
    assert await client.stream_error() == "invalid-namespace"
    await client.wait_closed()


async def test_a_wrong_content_namespace_is_invalid_namespace(node: Node) -> None:
    client = await RawClient.connect(node.c2s_port(1), direct_tls=True)
    client.send(header(xmlns="jabber:server"))
    assert await client.stream_error() == "invalid-namespace"


async def test_a_stream_to_a_host_we_do_not_serve_is_host_unknown(node: Node) -> None:
    client = await RawClient.connect(node.c2s_port(1), direct_tls=True)
    client.send(header(to="example.org"))
    assert await client.stream_error() == "host-unknown"
    await client.wait_closed()


async def test_an_old_stream_version_is_unsupported(node: Node) -> None:
    client = await RawClient.connect(node.c2s_port(1), direct_tls=True)
    client.send(header(version="0.9"))
    assert await client.stream_error() == "unsupported-version"


async def test_authenticating_before_starttls_when_tls_is_required_is_refused(
    node: Node,
) -> None:
    client = await RawClient.connect(node.c2s_port(0))
    await client.open_stream()
    client.send(f"<auth xmlns='{ns.SASL}' mechanism='PLAIN'>AGFsaWNlAHNlY3JldA==</auth>")
    assert await client.stream_error() == "policy-violation"
    await client.wait_closed()
    await assert_still_serving(node)


async def test_stanzas_before_authentication_are_not_authorized(node: Node) -> None:
    client = await RawClient.connect(node.c2s_port(1), direct_tls=True)
    await client.open_stream()
    client.send("<message to='bob@localhost'><body>sneaky</body></message>")
    assert await client.stream_error() == "not-authorized"


async def test_garbage_bytes_before_the_stream_header_are_not_well_formed(node: Node) -> None:
    client = await RawClient.connect(node.c2s_port(0))
    client.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage")
    await client.wait_closed()
    await assert_still_serving(node)


async def test_a_spoofed_from_is_rejected(node: Node) -> None:
    client = await logged_in(node.c2s_port(1), "alice", direct_tls=True)
    client.send("<message from='bob@localhost/x' to='carol@localhost'><body>hi</body></message>")
    assert await client.stream_error() == "invalid-from"
    await client.wait_closed()


async def test_a_from_equal_to_the_bare_jid_is_accepted_and_rewritten(node: Node) -> None:
    bob = await logged_in(node.c2s_port(1), "bob", "b", direct_tls=True)
    bob.send("<presence/>")
    alice = await logged_in(node.c2s_port(1), "alice", "a", direct_tls=True)
    alice.send(
        "<message from='alice@localhost' to='bob@localhost/b' type='chat'><body>x</body></message>"
    )
    msg = await bob.expect("message")
    assert msg.attrs["from"] == "alice@localhost/a"
    await alice.close()
    await bob.close()


async def test_a_malformed_to_gets_jid_malformed(node: Node) -> None:
    client = await logged_in(node.c2s_port(1), "alice", direct_tls=True)
    client.send("<message id='m1' to='bad@@jid'><body>x</body></message>")
    reply = await client.expect(lambda e: e.attrs.get("id") == "m1")
    assert reply.attrs["type"] == "error"
    assert error_condition(reply) == "jid-malformed"
    await client.close()


async def test_a_message_to_an_unknown_local_user_gets_service_unavailable(node: Node) -> None:
    client = await logged_in(node.c2s_port(1), "alice", direct_tls=True)
    client.send("<message id='m2' to='nobody@localhost' type='chat'><body>x</body></message>")
    reply = await client.expect(lambda e: e.attrs.get("id") == "m2")
    assert error_condition(reply) == "service-unavailable"
    assert reply.attrs["from"] == "nobody@localhost"
    await client.close()


async def test_an_iq_nobody_handles_gets_service_unavailable(node: Node) -> None:
    client = await logged_in(node.c2s_port(1), "alice", direct_tls=True)
    client.send("<iq id='q1' type='get' to='localhost'><query xmlns='urn:unknown:ns'/></iq>")
    reply = await client.expect(lambda e: e.attrs.get("id") == "q1")
    assert reply.attrs["type"] == "error"
    assert error_condition(reply) == "service-unavailable"
    await client.close()


async def test_an_error_is_never_answered_with_an_error(node: Node) -> None:
    client = await logged_in(node.c2s_port(1), "alice", direct_tls=True)
    client.send(
        "<message id='e1' type='error' to='nobody@localhost'>"
        "<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
        "</error></message>"
    )
    client.send("<iq type='get' id='after'><ping xmlns='urn:xmpp:ping'/></iq>")
    reply = await client.expect(lambda e: e.attrs.get("id") in ("e1", "after"))
    assert reply.attrs["id"] == "after"
    await client.close()


async def test_a_remote_domain_gets_remote_server_not_found(node: Node) -> None:
    client = await logged_in(node.c2s_port(1), "alice", direct_tls=True)
    client.send("<message id='r1' to='someone@example.org'><body>x</body></message>")
    reply = await client.expect(lambda e: e.attrs.get("id") == "r1")
    assert error_condition(reply) == "remote-server-not-found"
    await client.close()
