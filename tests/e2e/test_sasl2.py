"""SASL2 (XEP-0388), Bind 2 (XEP-0386) and FAST (XEP-0484) as raw XML over real TLS sockets:
every combination of inline features, SCRAM-PLUS with the real TLS channel bindings, FAST
tokens with and without channel binding, and the error paths."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import os
import secrets
import shutil
from pathlib import Path
from typing import Any

import pytest

from meerkat.listeners.tls import export_channel_binding
from meerkat.server import Node
from meerkat.xmpp import ns
from meerkat.xmpp.element import Element
from meerkat.xmpp.jid import Jid
from meerkat.xmpp.sasl.ht import format_initial, responder_hash
from meerkat.xmpp.sasl.scram import ScramClient
from meerkat.xmpp.sasl.scram import crypto as scram_crypto

from .rawxmpp import RawClient

FAST = "urn:xmpp:fast:0"
AGENT = "4e2f1d8c-6a5b-4f3e-9d2c-1b0a9f8e7d6c"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def user_agent(agent: str | None = AGENT) -> str:
    if agent is None:
        return ""
    return f"<user-agent id='{agent}'><software>e2e</software><device>pytest</device></user-agent>"


def channel_binding(client: RawClient, cb_type: str) -> bytes:
    ssl_object = client.writer.get_extra_info("ssl_object")
    if cb_type == "tls-exporter":
        data = export_channel_binding(ssl_object)
        assert data is not None
        return data
    return hashlib.sha256(ssl_object.getpeercert(binary_form=True)).digest()


async def connected(node: Node) -> tuple[RawClient, Element]:
    """A direct-TLS connection and its features."""
    client = await RawClient.connect(node.c2s_port(1), direct_tls=True)
    return client, await client.open_stream()


async def sasl2_scram(
    client: RawClient,
    user: str = "alice",
    inline: str = "",
    mechanism: str = "SCRAM-SHA-256",
    cb_type: str | None = None,
    agent: str | None = AGENT,
) -> Element:
    """SCRAM over SASL2 (the server's signature checked); <success/> or <failure/>."""
    binding = (cb_type, channel_binding(client, cb_type)) if cb_type else None
    scram = ScramClient(mechanism, user, secrets.token_urlsafe(18), channel_binding=binding)
    client.send(
        f"<authenticate xmlns='{ns.SASL2}' mechanism='{mechanism}'>"
        f"<initial-response>{b64(scram.client_first())}</initial-response>"
        f"{user_agent(agent)}{inline}</authenticate>"
    )
    reply = await client.expect(lambda e: e.xmlns == ns.SASL2)
    if reply.name != "challenge":
        return reply
    first = scram.receive_server_first(base64.b64decode(reply.text))
    salted = scram_crypto.salted_password(
        scram.hash, scram_crypto.prepare_password("secret"), first.salt, first.iterations
    )
    client.send(f"<response xmlns='{ns.SASL2}'>{b64(scram.client_final(salted))}</response>")
    reply = await client.expect(lambda e: e.xmlns == ns.SASL2)
    if reply.name == "success":
        scram.receive_server_final(base64.b64decode(reply.find_text("additional-data") or ""))
    return reply


async def sasl2_fast(
    client: RawClient,
    token: str,
    mechanism: str = "HT-SHA-256-NONE",
    inline: str = "",
    user: str = "alice",
    agent: str | None = AGENT,
) -> Element:
    cb = b""
    if mechanism.endswith("-ENDP"):
        cb = channel_binding(client, "tls-server-end-point")
    elif mechanism.endswith("-EXPR"):
        cb = channel_binding(client, "tls-exporter")
    client.send(
        f"<authenticate xmlns='{ns.SASL2}' mechanism='{mechanism}'>"
        f"<initial-response>{b64(format_initial(user, token, cb))}</initial-response>"
        f"{user_agent(agent)}<fast xmlns='{FAST}'/>{inline}</authenticate>"
    )
    reply = await client.expect(lambda e: e.xmlns == ns.SASL2)
    if reply.name == "success":
        assert base64.b64decode(reply.find_text("additional-data") or "") == responder_hash(
            token.encode(), cb
        )
    return reply


def condition(failure: Element) -> str:
    assert failure.name == "failure", failure
    return next(c.name for c in failure.elements() if c.xmlns == ns.SASL)


async def token_for(node: Node, mechanism: str = "HT-SHA-256-NONE", user: str = "alice") -> str:
    client, _ = await connected(node)
    success = await sasl2_scram(
        client, user, inline=f"<request-token xmlns='{FAST}' mechanism='{mechanism}'/>"
    )
    token = success.find("token", FAST)
    assert token is not None, success
    await client.close()
    return token.attrs["token"]


# -- features and channel binding ------------------------------------------------------------------
async def test_features_list_sasl2_inline_features_and_the_real_binding_types(node: Node) -> None:
    client, features = await connected(node)
    auth = features.find("authentication", ns.SASL2)
    assert auth is not None and auth.find("inline") is not None
    fast = auth.find("inline").find("fast", FAST)  # type: ignore[union-attr]
    assert fast is not None and len(fast.find_all("mechanism")) == 3
    cb = features.find("sasl-channel-binding", "urn:xmpp:sasl-cb:0")
    assert {c.attrs["type"] for c in cb.elements()} == {  # type: ignore[union-attr]
        "tls-exporter",
        "tls-server-end-point",
    }
    await client.close()


@pytest.mark.parametrize("cb_type", ["tls-exporter", "tls-server-end-point"])
async def test_scram_plus_inside_sasl2_binds_to_the_tls_channel(node: Node, cb_type: str) -> None:
    client, _ = await connected(node)
    success = await sasl2_scram(client, mechanism="SCRAM-SHA-256-PLUS", cb_type=cb_type)
    assert success.name == "success"
    await client.close()


# -- every inline combination ----------------------------------------------------------------------
BIND_EXTRAS = {
    "sm": f"<enable xmlns='{ns.SM}' resume='true'/>",
    "carbons": f"<enable xmlns='{ns.CARBONS}'/>",
    "csi": f"<inactive xmlns='{ns.CSI}'/>",
}
COMBINATIONS = [
    (bind, extras, token)
    for bind in (False, True)
    for extras in (
        [()]
        if not bind
        else [c for n in range(4) for c in itertools.combinations(sorted(BIND_EXTRAS), n)]
    )
    for token in (False, True)
]


@pytest.mark.parametrize(
    ("bind", "extras", "token"),
    COMBINATIONS,
    ids=[f"bind={b}-{'+'.join(e) or 'none'}-token={t}" for b, e, t in COMBINATIONS],
)
async def test_every_inline_combination_is_answered_in_success(
    node: Node, bind: bool, extras: tuple[str, ...], token: bool
) -> None:
    inline = ""
    if bind:
        inline += f"<bind xmlns='{ns.BIND2}'><tag>combo</tag>"
        inline += "".join(BIND_EXTRAS[e] for e in extras) + "</bind>"
    if token:
        inline += f"<request-token xmlns='{FAST}' mechanism='HT-SHA-256-NONE'/>"
    client, _ = await connected(node)
    success = await sasl2_scram(client, inline=inline)
    assert success.name == "success"
    identifier = Jid.parse(success.find_text("authorization-identifier", ns.SASL2) or "")
    bound = success.find("bound", ns.BIND2)
    features = await client.expect("features")  # no stream restart
    if bind:
        assert identifier.resource.startswith("combo.") and bound is not None
        assert (bound.find("enabled", ns.SM) is not None) == ("sm" in extras)
        assert features.find("bind", ns.BIND) is None
        assert (features.find("sm", ns.SM) is None) == ("sm" in extras)
        # the session is live: a stanza goes through at once
        client.send("<iq type='get' id='v' to='localhost'><query xmlns='jabber:iq:version'/></iq>")
        assert (await client.expect("iq")).attrs["type"] == "result"
    else:
        assert identifier == Jid("alice", "localhost") and bound is None
        assert features.find("bind", ns.BIND) is not None
    assert (success.find("token", FAST) is not None) == token
    session = node.sessions.session(identifier) if bind else None
    if session is not None:
        handle = node.sessions.local_handle(session.sid)
        assert handle is not None
        state = handle.state  # type: ignore[attr-defined]
        assert state("mod_carboncopy").get("enabled", False) == ("carbons" in extras)
        assert state("mod_csi").get("inactive", False) == ("csi" in extras)
    await client.close()


# -- FAST ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mechanism", ["HT-SHA-256-NONE", "HT-SHA-256-ENDP", "HT-SHA-256-EXPR"])
async def test_a_fast_token_logs_in_and_binds_in_one_round_trip(node: Node, mechanism: str) -> None:
    token = await token_for(node, mechanism)
    client, _ = await connected(node)
    success = await sasl2_fast(client, token, mechanism, inline=f"<bind xmlns='{ns.BIND2}'/>")
    assert success.name == "success"
    assert "/" in (success.find_text("authorization-identifier", ns.SASL2) or "")
    await client.close()


async def test_a_bad_fast_token_fails_and_password_login_still_works(node: Node) -> None:
    token = await token_for(node)
    client, _ = await connected(node)
    assert condition(await sasl2_fast(client, token[:-4] + "AAAA")) == "not-authorized"
    assert condition(await sasl2_fast(client, token, agent=None)) == "not-authorized"
    assert condition(await sasl2_fast(client, token, user="bob")) == "not-authorized"
    assert (await sasl2_scram(client)).name == "success"
    await client.close()


async def test_a_password_change_revokes_fast_tokens(node: Node) -> None:
    token = await token_for(node)
    assert node.accounts is not None
    await node.accounts.set_password(Jid("alice", "localhost"), "secret")
    client, _ = await connected(node)
    assert condition(await sasl2_fast(client, token)) == "not-authorized"
    await client.close()


async def test_fast_is_not_offered_without_tls(node: Node) -> None:
    client = await RawClient.connect(node.c2s_port(0))
    features = await client.open_stream()
    assert features.find("authentication", ns.SASL2) is None  # STARTTLS required first
    await client.close()


# -- an independent client: @xmpp/client under Node ---------------------------------------------
JS_DIR = Path(__file__).resolve().parents[1] / "js"


def js_client_or_skip() -> str:
    node = shutil.which("node")
    if node is None or not (JS_DIR / "node_modules" / "@xmpp" / "client").is_dir():
        message = "@xmpp/client is not installed: run `npm ci` in tests/js (`make test` does)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return node


async def run_js(executable: str, *args: str) -> dict[str, Any]:
    """Run a tests/js script under Node (the node's self-signed certificate accepted); the
    JSON report on the last line of its output, after checking it exited cleanly."""
    env = {**os.environ, "NODE_TLS_REJECT_UNAUTHORIZED": "0"}
    proc = await asyncio.create_subprocess_exec(
        executable,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=JS_DIR,
        env=env,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    report: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return report


async def test_xmpp_js_uses_sasl2_bind2_sm_and_fast_and_resumes_after_its_socket_dies(
    node: Node,
) -> None:
    """tests/js/sasl2_fast_sm.mjs: password login with Bind 2 + SM + a FAST token request; the
    socket is destroyed mid-conversation; the reconnect authenticates with the token and resumes
    inline; then a new client instance logs in with the token alone."""
    executable = js_client_or_skip()
    report = await run_js(
        executable, str(JS_DIR / "sasl2_fast_sm.mjs"), str(node.c2s_port(1)), "localhost"
    )
    assert report["errors"] == [], report["errors"]
    logins = {(r["who"], r["mechanism"]): r for r in report["logins"]}
    first = logins[("alice", "SCRAM-SHA-1")]
    assert first["bind"] and first["request_token"] and first["token"] and first["sm_enabled"]
    assert first["outcome"] == "success" and first["jid"] == report["alice_jid"]
    fast = logins[("alice", "HT-SHA-256-NONE")]
    assert fast["fast"] and fast["resume"] and fast["resumed"] and fast["outcome"] == "success"
    assert report["resumed"] == 1
    assert report["alice_received"] == [f"b{i}" for i in range(10)]  # each once, in order
    assert report["bob_received"] == ["back"]
    again = logins[("again", "HT-SHA-256-NONE")]
    assert again["outcome"] == "success" and not again["resumed"]
    assert report["again_jid"] == report["alice_jid"]  # same device, same resource
