"""Stream negotiation over real TCP and TLS (RFC 6120 §4-7): STARTTLS, SASL, bind."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets

import pytest

from meerkat.listeners.tls import export_channel_binding
from meerkat.server import Node
from meerkat.xmpp import ns
from meerkat.xmpp.element import Element
from meerkat.xmpp.sasl.scram import ScramClient
from meerkat.xmpp.sasl.scram import crypto as scram_crypto

from .conftest import NodeFactory, free_port
from .rawxmpp import RawClient, logged_in


def mechanisms(features) -> list[str]:  # type: ignore[no-untyped-def]
    mechs = features.find("mechanisms", ns.SASL)
    return [] if mechs is None else [m.text for m in mechs.elements()]


async def test_starttls_is_required_before_anything_else(node: Node) -> None:
    client = await RawClient.connect(node.c2s_port(0))
    features = await client.open_stream()
    starttls = features.find("starttls", ns.TLS)
    assert starttls is not None and starttls.find("required") is not None
    assert mechanisms(features) == []
    features = await client.starttls()
    offered = mechanisms(features)
    assert "SCRAM-SHA-256" in offered and "PLAIN" in offered
    assert "SCRAM-SHA-256-PLUS" in offered
    await client.close()


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-512"])
async def test_scram_login_over_starttls_binds_the_requested_resource(
    node: Node, mechanism: str
) -> None:
    client = await RawClient.connect(node.c2s_port(0))
    jid = await client.login("alice", resource="desk", mechanism=mechanism)
    assert jid == "alice@localhost/desk"
    await client.close()


async def test_login_over_direct_tls_gets_a_server_generated_resource(node: Node) -> None:
    client = await RawClient.connect(node.c2s_port(1), direct_tls=True)
    features = await client.open_stream()
    assert features.find("starttls", ns.TLS) is None
    assert (await client.scram("bob", "secret")).name == "success"
    await client.open_stream()
    jid = await client.bind()
    assert jid.startswith("bob@localhost/") and len(jid) > len("bob@localhost/")
    await client.close()


async def scram_plus(client: RawClient, cb_type: str, data: bytes) -> tuple[ScramClient, Element]:
    """Run SCRAM-SHA-256-PLUS as carol with the given binding; return the client and outcome."""
    scram = ScramClient(
        "SCRAM-SHA-256-PLUS", "carol", secrets.token_urlsafe(18), channel_binding=(cb_type, data)
    )
    client.send(
        f"<auth xmlns='{ns.SASL}' mechanism='SCRAM-SHA-256-PLUS'>"
        f"{base64.b64encode(scram.client_first()).decode()}</auth>"
    )
    challenge = await client.expect("challenge")
    first = scram.receive_server_first(base64.b64decode(challenge.text))
    salted = scram_crypto.salted_password(
        scram.hash, scram_crypto.prepare_password("secret"), first.salt, first.iterations
    )
    client.send(
        f"<response xmlns='{ns.SASL}'>"
        f"{base64.b64encode(scram.client_final(salted)).decode()}</response>"
    )
    return scram, await client.expect(lambda e: e.xmlns == ns.SASL)


@pytest.mark.parametrize("cb_type", ["tls-exporter", "tls-server-end-point"])
async def test_scram_plus_binds_to_the_tls_channel(node: Node, cb_type: str) -> None:
    client = await RawClient.connect(node.c2s_port(1), direct_tls=True)
    await client.open_stream()
    ssl_object = client.writer.get_extra_info("ssl_object")
    if cb_type == "tls-exporter":
        data = export_channel_binding(ssl_object)
        assert data is not None
    else:
        data = hashlib.sha256(ssl_object.getpeercert(binary_form=True)).digest()
    scram, success = await scram_plus(client, cb_type, data)
    assert success.name == "success"
    scram.receive_server_final(base64.b64decode(success.text))
    await client.close()


async def test_scram_plus_with_the_wrong_binding_data_fails(node: Node) -> None:
    client = await RawClient.connect(node.c2s_port(1), direct_tls=True)
    await client.open_stream()
    _, failure = await scram_plus(client, "tls-server-end-point", b"\x00" * 32)
    assert failure.name == "failure"
    assert failure.find("not-authorized") is not None
    await client.close()


async def test_plain_login_over_tls_checks_the_stored_scram_keys(node: Node) -> None:
    client = await RawClient.connect(node.c2s_port(1), direct_tls=True)
    await client.open_stream()
    good = base64.b64encode(b"\x00alice\x00secret").decode()
    client.send(f"<auth xmlns='{ns.SASL}' mechanism='PLAIN'>{good}</auth>")
    assert (await client.expect(lambda e: e.xmlns == ns.SASL)).name == "success"
    await client.close()
    client = await RawClient.connect(node.c2s_port(1), direct_tls=True)
    await client.open_stream()
    bad = base64.b64encode(b"\x00alice\x00wrong").decode()
    client.send(f"<auth xmlns='{ns.SASL}' mechanism='PLAIN'>{bad}</auth>")
    failure = await client.expect(lambda e: e.xmlns == ns.SASL)
    assert failure.name == "failure" and failure.find("not-authorized") is not None
    await client.close()


async def test_plain_is_not_offered_without_tls(start_node: NodeFactory) -> None:
    port = free_port()
    node = await start_node(
        listen={"c2s": [{"port": port, "ip_address": "127.0.0.1", "tls": {"mode": "starttls"}}]}
    )
    client = await RawClient.connect(node.c2s_port(0))
    features = await client.open_stream()
    assert features.find("starttls", ns.TLS) is not None
    assert "PLAIN" not in mechanisms(features)
    assert "SCRAM-SHA-256" in mechanisms(features)
    await client.close()


async def test_the_mechanisms_a_connection_may_use_follow_its_own_tls_state(
    start_node: NodeFactory,
) -> None:
    # The offered list is computed once per kind of connection: each kind must get its own.
    port = free_port()
    node = await start_node(
        listen={"c2s": [{"port": port, "ip_address": "127.0.0.1", "tls": {"mode": "starttls"}}]}
    )
    for _ in range(2):
        clear = await RawClient.connect(node.c2s_port(0))
        offered = mechanisms(await clear.open_stream())
        assert "PLAIN" not in offered and "SCRAM-SHA-256-PLUS" not in offered
        clear.send(f"<auth xmlns='{ns.SASL}' mechanism='PLAIN'>AGFsaWNlAHNlY3JldA==</auth>")
        failure = await clear.expect("failure")
        assert failure.find("invalid-mechanism") is not None
        await clear.close()
        secure = await RawClient.connect(node.c2s_port(0))
        await secure.open_stream()
        offered = mechanisms(await secure.starttls())
        assert "PLAIN" in offered and "SCRAM-SHA-256-PLUS" in offered
        secure.send(f"<auth xmlns='{ns.SASL}' mechanism='PLAIN'>AGFsaWNlAHNlY3JldA==</auth>")
        assert (await secure.expect("success")).name == "success"
        await secure.close()


async def test_access_rules_that_depend_on_the_user_are_applied_at_login(
    start_node: NodeFactory,
) -> None:
    # Rules that give everyone the same value are evaluated once; these depend on the JID.
    node = await start_node(
        acl={"blocked": [{"user": "bob"}], "admin": [{"user": "alice"}]},
        access={
            "c2s": [{"acl": "blocked", "value": "deny"}, {"acl": "all", "value": "allow"}],
            "max_user_sessions": [{"acl": "admin", "value": 2}, {"acl": "all", "value": 1}],
        },
    )
    bob = await RawClient.connect(node.c2s_port(1), direct_tls=True)
    await bob.open_stream()
    failure = await bob.scram("bob", "secret")
    assert failure.name == "failure" and failure.find("not-authorized") is not None
    await bob.close()
    carol1 = await logged_in(node.c2s_port(0), "carol", "one")
    carol2 = await logged_in(node.c2s_port(0), "carol", "two")
    assert await carol1.stream_error() == "conflict"  # one session for carol
    alice1 = await logged_in(node.c2s_port(0), "alice", "one")
    alice2 = await logged_in(node.c2s_port(0), "alice", "two")  # two for alice
    resources = sorted(
        r.jid.resource for r in node.sessions.all_sessions() if r.jid.local == "alice"
    )
    assert resources == ["one", "two"]
    for client in (carol2, alice1, alice2):
        await client.close()


@pytest.mark.parametrize("user", ["alice", "nobody"])
async def test_wrong_password_and_unknown_user_fail_alike(node: Node, user: str) -> None:
    client = await RawClient.connect(node.c2s_port(1), direct_tls=True)
    await client.open_stream()
    result = await client.scram(user, "not-the-password")
    assert result.name == "failure"
    assert result.find("not-authorized") is not None
    await client.close()


async def test_repeated_failures_from_one_address_are_slowed_down(
    start_node: NodeFactory,
) -> None:
    node = await start_node(
        auth={"slowdown": {"failures_before_delay": 1, "delay": 300, "max_delay": 1000}}
    )
    client = await RawClient.connect(node.c2s_port(1), direct_tls=True)
    await client.open_stream()
    loop = asyncio.get_running_loop()
    timings = []
    for _ in range(3):
        started = loop.time()
        assert (await client.scram("alice", "wrong")).name == "failure"
        timings.append(loop.time() - started)
    assert timings[0] < 0.25
    assert timings[2] >= 0.3
    await client.close()


async def test_a_client_that_never_finishes_negotiation_is_dropped(
    start_node: NodeFactory,
) -> None:
    port = free_port()
    node = await start_node(
        listen={"c2s": [{"port": port, "ip_address": "127.0.0.1", "c2s_state_timeout": 300}]}
    )
    client = await RawClient.connect(node.c2s_port(0))
    assert await client.stream_error(timeout=3) == "connection-timeout"
    await client.wait_closed()


async def test_the_connection_cap_refuses_connections_past_the_limit(
    start_node: NodeFactory,
) -> None:
    port = free_port()
    node = await start_node(
        listen={"c2s": [{"port": port, "ip_address": "127.0.0.1", "max_connections": 2}]}
    )
    held = [await RawClient.connect(node.c2s_port(0)) for _ in range(2)]
    for c in held:
        await c.open_stream()
    refused = await RawClient.connect(node.c2s_port(0))
    await refused.wait_closed(timeout=3)
    assert refused.closed
    for c in held:
        await c.close()


async def test_a_second_login_with_the_same_resource_replaces_the_first(node: Node) -> None:
    first = await logged_in(node.c2s_port(0), "alice", "phone")
    second = await logged_in(node.c2s_port(0), "alice", "phone")
    assert await first.stream_error() == "conflict"
    await first.wait_closed()
    sessions = [str(r.jid) for r in node.sessions.all_sessions()]
    assert sessions == ["alice@localhost/phone"]
    await second.close()


async def test_the_legacy_session_request_is_accepted(node: Node) -> None:
    client = await logged_in(node.c2s_port(0), "alice")
    client.send(f"<iq type='set' id='s1'><session xmlns='{ns.SESSION}'/></iq>")
    reply = await client.expect(lambda e: e.attrs.get("id") == "s1")
    assert reply.attrs["type"] == "result"
    await client.close()


async def test_whitespace_keepalives_keep_the_session_going(node: Node) -> None:
    client = await logged_in(node.c2s_port(0), "alice")
    for _ in range(3):
        client.send(" ")
    client.send("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
    reply = await client.expect(lambda e: e.attrs.get("id") == "p1")
    assert reply.attrs["type"] == "result"
    await client.close()


async def test_a_session_counts_the_stanzas_its_client_sends_for_mod_ping(node: Node) -> None:
    client = await logged_in(node.c2s_port(0), "alice", "desk")
    [record] = node.sessions.all_sessions()
    session = node.sessions.local_handle(record.sid)
    before = session.client_stanzas  # type: ignore[union-attr]
    client.send(" ")  # whitespace and the legacy session request never reached the hooks
    client.send(f"<iq type='set' id='s1'><session xmlns='{ns.SESSION}'/></iq>")
    client.send("<message to='bob@localhost'><body>hi</body></message>")
    client.send("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
    await client.expect(lambda e: e.attrs.get("id") == "p1")
    assert session.client_stanzas == before + 2  # type: ignore[union-attr]
    await client.close()


async def test_the_traffic_shaper_slows_a_client_that_sends_too_fast(
    start_node: NodeFactory,
) -> None:
    port = free_port()
    node = await start_node(
        listen={"c2s": [{"port": port, "ip_address": "127.0.0.1", "shaper": "slow"}]},
        shaper={"slow": {"max_rate": 20000}},
    )
    client = await logged_in(node.c2s_port(0), "alice")
    loop = asyncio.get_running_loop()
    started = loop.time()
    body = "x" * 10000
    for i in range(20):
        client.send(f"<message to='localhost' id='m{i}'><body>{body}</body></message>")
    client.send("<iq type='get' id='last'><ping xmlns='urn:xmpp:ping'/></iq>")
    await client.expect(lambda e: e.attrs.get("id") == "last", timeout=30)
    # 200 kB at 20 kB/s, less the 2 s (40 kB) burst a connection starts with and the last
    # chunk read (at most 64 KiB, processed before the reader pauses): at least 4.8 s, far
    # above the unshaped time.
    assert loop.time() - started >= 4.0
    await client.close()
