"""wss:// without a proxy: `[listen.http.tls]` makes the HTTP listener speak TLS itself, with
the node's self-signed certificate or configured files; SASL over it sees a secure transport
(PLAIN, SCRAM-PLUS with the real channel bindings)."""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from meerkat.config import ConfigError, config_from_toml
from meerkat.listeners.certs import ensure_self_signed
from meerkat.listeners.tls import export_channel_binding
from meerkat.server import Node
from meerkat.xmpp import ns

from .conftest import NodeFactory, free_port
from .rawxmpp import client_tls_context, logged_in
from .test_websocket import WsClient


def wss_listen(tls: dict[str, Any]) -> dict[str, Any]:
    return {
        "c2s": [{"port": free_port(), "ip_address": "127.0.0.1", "shaper": "none"}],
        "http": [
            {
                "port": free_port(),
                "ip_address": "127.0.0.1",
                "tls": tls,
                "handlers": {"mod_websockets": [{}]},
            }
        ],
    }


def wss_url(node: Node) -> str:
    return f"wss://127.0.0.1:{node.http_listeners[0].bound_port}/ws-xmpp"


@pytest.fixture
async def http_session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def wss_connect(
    session: aiohttp.ClientSession, node: Node, context: ssl.SSLContext | None = None
) -> WsClient:
    ws = await session.ws_connect(
        wss_url(node), protocols=("xmpp",), ssl=context or client_tls_context()
    )
    assert ws.protocol == "xmpp"
    return WsClient(ws)


def server_certificate(client: WsClient) -> bytes:
    ssl_object = client.ws.get_extra_info("ssl_object")
    assert ssl_object is not None
    der: bytes = ssl_object.getpeercert(binary_form=True)
    return der


def channel_binding(client: WsClient, cb_type: str) -> bytes:
    """The client's view of the binding data (tls-exporter: TLS 1.3 keying material)."""
    ssl_object = client.ws.get_extra_info("ssl_object")
    if cb_type == "tls-exporter":
        data = export_channel_binding(ssl_object)
        assert data is not None
        return data
    return hashlib.sha256(server_certificate(client)).digest()  # ECDSA P-256 with SHA-256


@pytest.mark.parametrize("cb_type", ["tls-exporter", "tls-server-end-point"])
async def test_wss_with_the_self_signed_certificate_offers_plain_and_binds_scram_to_tls(
    start_node: NodeFactory, http_session: aiohttp.ClientSession, cb_type: str
) -> None:
    node = await start_node(listen=wss_listen({}))
    browser_like = client_tls_context()
    browser_like.set_alpn_protocols(["h2", "http/1.1"])
    client = await wss_connect(http_session, node, browser_like)
    assert client.ws.get_extra_info("ssl_object").selected_alpn_protocol() == "http/1.1"
    features = await client.open_stream()
    mechanisms = features.find("mechanisms", ns.SASL)
    assert mechanisms is not None
    offered = [m.text for m in mechanisms.elements()]
    assert "PLAIN" in offered and "SCRAM-SHA-256-PLUS" in offered
    cb = features.find("sasl-channel-binding", "urn:xmpp:sasl-cb:0")
    assert cb is not None and cb_type in {c.attrs["type"] for c in cb.elements()}
    binding = (cb_type, channel_binding(client, cb_type))
    success = await client.scram("alice", mechanism="SCRAM-SHA-256-PLUS", channel_binding=binding)
    assert success.name == "success"
    await client.open_stream()
    assert await client.bind("wss") == "alice@localhost/wss"

    # the certificate is the node's own, the one its c2s listeners present
    cert = (node.data_dir / "certs" / "cert.pem").read_text()
    assert server_certificate(client) == ssl.PEM_cert_to_DER_cert(cert)
    bob = await logged_in(node.c2s_port(0), "bob", "tcp")
    await client.send(
        f"<message xmlns='{ns.CLIENT}' to='bob@localhost/tcp'><body>over wss</body></message>"
    )
    got = await bob.expect("message")
    assert (got.attrs["from"], got.find_text("body")) == ("alice@localhost/wss", "over wss")
    await client.close()
    await bob.close()


async def test_wss_presents_the_configured_certificate_and_a_verifying_client_accepts_it(
    start_node: NodeFactory, http_session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    certfile, keyfile = ensure_self_signed(tmp_path / "own", ["ws.example"])
    node = await start_node(listen=wss_listen({"certfile": str(certfile), "keyfile": str(keyfile)}))
    verifying = ssl.create_default_context(cafile=str(certfile))  # the IP is in the SANs
    client = await wss_connect(http_session, node, verifying)
    assert server_certificate(client) == ssl.PEM_cert_to_DER_cert(certfile.read_text())
    await client.open_stream()
    assert (await client.scram("carol")).name == "success"
    await client.close()


async def test_a_wss_listener_refuses_plain_http_and_older_tls_than_its_minimum(
    start_node: NodeFactory, http_session: aiohttp.ClientSession
) -> None:
    node = await start_node(listen=wss_listen({"min_version": "1.3"}))
    plain = wss_url(node).replace("wss://", "ws://")
    with pytest.raises(aiohttp.ClientError):
        await http_session.ws_connect(plain, protocols=("xmpp",))
    old = client_tls_context()
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises((aiohttp.ClientError, ssl.SSLError)):
        await wss_connect(http_session, node, old)
    client = await wss_connect(http_session, node)
    assert client.ws.get_extra_info("ssl_object").version() == "TLSv1.3"
    await client.close()


def test_the_http_listeners_tls_options_are_validated_where_they_are_written() -> None:
    text = (
        "[[listen.http]]\nport = 5280\n[listen.http.tls]\nkeyfile = 'k.pem'\nverify_mode = 'peer'"
    )
    with pytest.raises(ConfigError) as info:
        config_from_toml(text)
    assert info.value.problems == [
        "listen.http[0].tls.keyfile: set without certfile",
        'listen.http[0].tls.cacertfile: required when verify_mode = "peer"',
    ]
    config = config_from_toml("[[listen.http]]\nport = 5280\n[listen.http.tls]\n")
    tls = config.listen.http[0].tls
    assert tls is not None and tls.generates_certificate


async def test_verify_mode_peer_admits_only_clients_with_a_certificate_from_the_ca_bundle(
    start_node: NodeFactory, http_session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    client_cert, client_key = ensure_self_signed(tmp_path / "client", ["client.example"])
    node = await start_node(
        listen=wss_listen({"verify_mode": "peer", "cacertfile": str(client_cert)})
    )
    with pytest.raises((aiohttp.ClientError, ssl.SSLError, ConnectionError)):
        anonymous = await wss_connect(http_session, node)
        await anonymous.open_stream()
    with_cert = client_tls_context()
    with_cert.load_cert_chain(str(client_cert), str(client_key))
    client = await wss_connect(http_session, node, with_cert)
    await client.open_stream()
    await client.close()


async def test_the_cipher_list_applies_to_tls_1_2(
    start_node: NodeFactory, http_session: aiohttp.ClientSession
) -> None:
    cipher = "ECDHE-ECDSA-CHACHA20-POLY1305"
    node = await start_node(listen=wss_listen({"ciphers": cipher}))
    tls12 = client_tls_context()
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    client = await wss_connect(http_session, node, tls12)
    assert client.ws.get_extra_info("ssl_object").cipher()[0] == cipher
    await client.close()
