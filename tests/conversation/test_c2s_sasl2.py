"""SASL2 (XEP-0388), Bind 2 (XEP-0386), channel-binding types (XEP-0440) and FAST tokens
(XEP-0484) on real c2s sessions over memory transports (TLS pretended, with fixed
channel-binding data), every answer checked as XML."""

from __future__ import annotations

import base64
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
from test_c2s_harness import (
    BASE_MODULES,
    CB_END_POINT,
    CB_EXPORTER,
    C2SHarness,
    Wire,
    start_harness,
)

from meerkat.modules.csi import CsiConfig
from meerkat.modules.fast_auth_token import FastAuthTokenConfig, Period, ValidityConfig
from meerkat.modules.stream_management import StreamManagementConfig
from meerkat.xmpp import ns
from meerkat.xmpp.element import Element
from meerkat.xmpp.jid import Jid
from meerkat.xmpp.sasl.ht import format_initial, responder_hash
from meerkat.xmpp.sasl.scram import ScramClient
from meerkat.xmpp.sasl.scram import crypto as scram_crypto

FAST = "urn:xmpp:fast:0"
AGENT = "d4565fa7-4d72-4749-b3d3-740edbf87770"
OTHER_AGENT = "0c8c9c56-54a4-4c4c-9dfb-0a5d53ea4b6d"
DAY = 86400
MECHANISMS = ("SCRAM-SHA-256-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN")
MODULES: dict[str, Any] = {
    **BASE_MODULES,
    "mod_stream_management": StreamManagementConfig(),
    "mod_carboncopy": None,
    "mod_csi": CsiConfig(),
    "mod_fast_auth_token": FastAuthTokenConfig(
        backend="memory",
        validity_period=ValidityConfig(Period(3, "days"), Period(1, "days")),
    ),
}


@pytest.fixture
async def harness() -> AsyncIterator[C2SHarness]:
    h = await start_harness(MODULES, mechanisms=MECHANISMS)
    yield h
    await h.stop()


def user_agent(agent: str | None = AGENT) -> str:
    if agent is None:
        return ""
    return f"<user-agent id='{agent}'><software>Tester</software><device>CI</device></user-agent>"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def scram(
    wire: Wire,
    user: str = "alice",
    inline: str = "",
    mechanism: str = "SCRAM-SHA-256",
    binding: tuple[str, bytes] | None = None,
    password: str = "secret",
) -> Element:
    """A SASL2 SCRAM exchange; returns <success/> (server signature checked) or <failure/>."""
    await wire.open()
    client = ScramClient(mechanism, user, secrets.token_urlsafe(18), channel_binding=binding)
    wire.send(
        f"<authenticate xmlns='{ns.SASL2}' mechanism='{mechanism}'>"
        f"<initial-response>{b64(client.client_first())}</initial-response>"
        f"{user_agent()}{inline}</authenticate>"
    )
    challenge = await wire.expect(lambda e: e.xmlns == ns.SASL2)
    if challenge.name != "challenge":
        return challenge
    first = client.receive_server_first(base64.b64decode(challenge.text))
    salted = scram_crypto.salted_password(
        client.hash, scram_crypto.prepare_password(password), first.salt, first.iterations
    )
    wire.send(f"<response xmlns='{ns.SASL2}'>{b64(client.client_final(salted))}</response>")
    outcome = await wire.expect(lambda e: e.xmlns == ns.SASL2)
    if outcome.name == "success":
        client.receive_server_final(base64.b64decode(outcome.find_text("additional-data") or ""))
    return outcome


async def fast(
    wire: Wire,
    token: str,
    mechanism: str = "HT-SHA-256-NONE",
    agent: str | None = AGENT,
    inline: str = "",
    cb: bytes = b"",
    user: str = "alice",
) -> Element:
    """A FAST login: one HT message; checks the server's proof on success."""
    await wire.open()
    wire.send(
        f"<authenticate xmlns='{ns.SASL2}' mechanism='{mechanism}'>"
        f"<initial-response>{b64(format_initial(user, token, cb))}</initial-response>"
        f"{user_agent(agent)}<fast xmlns='{FAST}'/>{inline}</authenticate>"
    )
    outcome = await wire.expect(lambda e: e.xmlns == ns.SASL2)
    if outcome.name == "success":
        proof = base64.b64decode(outcome.find_text("additional-data") or "")
        assert proof == responder_hash(token.encode(), cb)
    return outcome


def condition(failure: Element) -> str:
    assert failure.name == "failure", failure
    return next(c.name for c in failure.elements() if c.xmlns == ns.SASL)


def token_of(success: Element) -> Element:
    token = success.find("token", FAST)
    assert token is not None, success
    return token


async def with_token(harness: C2SHarness, mechanism: str = "HT-SHA-256-NONE") -> str:
    wire = harness.connect()
    success = await scram(wire, inline=f"<request-token xmlns='{FAST}' mechanism='{mechanism}'/>")
    return token_of(success).attrs["token"]


# -- features -------------------------------------------------------------------------------------
async def test_features_offer_sasl2_with_inline_bind2_sm_and_fast_and_the_binding_types(
    harness: C2SHarness,
) -> None:
    features = await harness.connect().open()
    auth = features.find("authentication", ns.SASL2)
    assert auth is not None
    mechanisms = [m.text for m in auth.find_all("mechanism")]
    assert "SCRAM-SHA-256-PLUS" in mechanisms and "PLAIN" in mechanisms
    inline = auth.find("inline")
    assert inline is not None
    bind = inline.find("bind", ns.BIND2)
    assert bind is not None
    assert {f.attrs["var"] for f in bind.find("inline").elements()} == {  # type: ignore[union-attr]
        ns.SM,
        ns.CARBONS,
        ns.CSI,
    }
    assert inline.find("sm", ns.SM) is not None
    assert [m.text for m in inline.find("fast", FAST).elements()] == [  # type: ignore[union-attr]
        "HT-SHA-256-EXPR",
        "HT-SHA-256-ENDP",
        "HT-SHA-256-NONE",
    ]
    cb = features.find("sasl-channel-binding", "urn:xmpp:sasl-cb:0")
    assert cb is not None
    assert [c.attrs["type"] for c in cb.elements()] == ["tls-exporter", "tls-server-end-point"]


# -- SASL2 ----------------------------------------------------------------------------------------
async def test_scram_over_sasl2_has_no_stream_restart_and_binds_classically_after(
    harness: C2SHarness,
) -> None:
    wire = harness.connect()
    success = await scram(wire)
    assert success.name == "success"
    assert success.find_text("authorization-identifier", ns.SASL2) == "alice@localhost"
    features = await wire.expect("features")  # at once, on the same stream
    assert features.find("bind", ns.BIND) is not None and features.find("sm", ns.SM) is not None
    wire.send(f"<iq type='set' id='b'><bind xmlns='{ns.BIND}'><resource>r</resource></bind></iq>")
    reply = await wire.expect("iq")
    assert reply.find("bind", ns.BIND).find_text("jid") == "alice@localhost/r"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("binding", "data"),
    [("tls-exporter", CB_EXPORTER), ("tls-server-end-point", CB_END_POINT)],
)
async def test_scram_plus_over_sasl2_binds_the_channel(
    harness: C2SHarness, binding: str, data: bytes
) -> None:
    wire = harness.connect()
    assert (await scram(wire, mechanism="SCRAM-SHA-256-PLUS", binding=(binding, data))).name == (
        "success"
    )
    other = harness.connect()
    wrong = await scram(other, mechanism="SCRAM-SHA-256-PLUS", binding=(binding, b"x" * 32))
    assert condition(wrong) == "not-authorized"


async def test_failures_are_sasl2_failures_and_the_client_may_retry(harness: C2SHarness) -> None:
    wire = harness.connect()
    assert condition(await scram(wire, password="wrong")) == "not-authorized"
    wire.send(f"<authenticate xmlns='{ns.SASL2}' mechanism='DIGEST-MD5'/>")
    assert condition(await wire.expect("failure")) == "invalid-mechanism"
    wire.send(
        f"<authenticate xmlns='{ns.SASL2}' mechanism='PLAIN'>"
        "<initial-response>!!not base64!!</initial-response></authenticate>"
    )
    assert condition(await wire.expect("failure")) == "incorrect-encoding"
    wire.send(f"<authenticate xmlns='{ns.SASL2}' mechanism='SCRAM-SHA-256'/>")
    await wire.expect("challenge")
    wire.send(f"<abort xmlns='{ns.SASL2}'/>")
    assert condition(await wire.expect("failure")) == "aborted"
    plain = b64(b"\0alice\0secret")
    wire.send(
        f"<authenticate xmlns='{ns.SASL2}' mechanism='PLAIN'>"
        f"<initial-response>{plain}</initial-response></authenticate>"
    )
    assert (await wire.expect(lambda e: e.xmlns == ns.SASL2)).name == "success"


async def test_only_response_or_abort_may_follow_a_sasl2_challenge(harness: C2SHarness) -> None:
    wire = harness.connect()
    await wire.open()
    wire.send(f"<authenticate xmlns='{ns.SASL2}' mechanism='SCRAM-SHA-256'/>")
    await wire.expect("challenge")
    wire.send("<presence/>")
    error = await wire.stream_error()
    assert error.find("not-authorized", ns.STREAMS_ERRORS) is not None


async def test_a_second_authenticate_after_success_is_a_stream_error(harness: C2SHarness) -> None:
    wire = harness.connect()
    assert (await wire.authenticate("alice", f"<bind xmlns='{ns.BIND2}'/>")).name == "success"
    wire.send(f"<authenticate xmlns='{ns.SASL2}' mechanism='PLAIN'/>")
    await wire.stream_error()
    await wire.ended()


# -- Bind 2 ---------------------------------------------------------------------------------------
async def test_bind2_enables_everything_inline_and_the_first_stanzas_may_be_pipelined(
    harness: C2SHarness,
) -> None:
    bob = await harness.logged_in("bob")
    bob.send("<presence/>")
    alice = harness.connect()
    await alice.open()
    plain = b64(b"\0alice\0secret")
    bind = (
        f"<bind xmlns='{ns.BIND2}'><tag>Tester</tag><enable xmlns='{ns.CARBONS}'/>"
        f"<inactive xmlns='{ns.CSI}'/><enable xmlns='{ns.SM}' resume='true'/></bind>"
    )
    alice.send(  # one write: authentication, binding and a first message, no round trip
        f"<authenticate xmlns='{ns.SASL2}' mechanism='PLAIN'>"
        f"<initial-response>{plain}</initial-response>{user_agent()}{bind}</authenticate>"
        "<message to='bob@localhost/res' type='chat'><body>early</body></message>"
    )
    success = await alice.expect("success")
    jid = success.find_text("authorization-identifier", ns.SASL2) or ""
    assert jid.startswith("alice@localhost/Tester.")
    bound = success.find("bound", ns.BIND2)
    assert bound is not None and bound.find("enabled", ns.SM) is not None
    features = await alice.expect("features")
    assert features.find("bind", ns.BIND) is None and features.find("sm", ns.SM) is None
    assert [m.find_text("body") for m in await bob.stanzas() if m.name == "message"] == ["early"]
    assert alice.session.state("mod_carboncopy").get("enabled") is True
    assert alice.session.state("mod_csi").get("inactive") is True


async def test_the_same_user_agent_gets_the_same_resource_and_others_get_their_own(
    harness: C2SHarness,
) -> None:
    async def bound(agent: str | None, tag: str = "") -> str:
        wire = harness.connect()
        tag_el = f"<tag>{tag}</tag>" if tag else ""
        success = await wire.authenticate(
            "alice", f"<bind xmlns='{ns.BIND2}'>{tag_el}</bind>", agent=agent
        )
        jid = success.find_text("authorization-identifier", ns.SASL2) or ""
        await wire.close()
        return Jid.parse(jid).resource

    first = await bound(AGENT, "Phone")
    assert first.startswith("Phone.") and AGENT not in first
    assert await bound(AGENT, "Phone") == first
    assert await bound(AGENT) == first.removeprefix("Phone.")
    assert await bound(OTHER_AGENT, "Phone") != first
    assert await bound(None) != await bound(None)


# -- FAST -----------------------------------------------------------------------------------------
async def test_a_token_requested_with_scram_logs_in_with_one_message(harness: C2SHarness) -> None:
    wire = harness.connect()
    success = await scram(
        wire, inline=f"<request-token xmlns='{FAST}' mechanism='HT-SHA-256-NONE'/>"
    )
    token = token_of(success)
    assert len(token.attrs["token"]) >= 65 and token.attrs["expiry"].endswith("Z")
    again = harness.connect()
    success = await fast(again, token.attrs["token"], inline=f"<bind xmlns='{ns.BIND2}'/>")
    assert success.name == "success" and success.find("token", FAST) is None
    assert (success.find_text("authorization-identifier", ns.SASL2) or "").startswith(
        "alice@localhost/"
    )


@pytest.mark.parametrize(
    ("mechanism", "cb"),
    [("HT-SHA-256-ENDP", CB_END_POINT), ("HT-SHA-256-EXPR", CB_EXPORTER)],
)
async def test_channel_bound_tokens_need_the_same_channel(
    harness: C2SHarness, mechanism: str, cb: bytes
) -> None:
    token = await with_token(harness, mechanism)
    assert (await fast(harness.connect(), token, mechanism, cb=cb)).name == "success"
    assert condition(await fast(harness.connect(), token, mechanism, cb=b"?" * 32)) == (
        "not-authorized"
    )


async def test_bad_tokens_are_refused(harness: C2SHarness) -> None:
    token = await with_token(harness)
    assert condition(await fast(harness.connect(), "x" * 96)) == "not-authorized"
    # bound to its mechanism, its client and its user
    endp = await fast(harness.connect(), token, "HT-SHA-256-ENDP", cb=CB_END_POINT)
    assert condition(endp) == "not-authorized"
    assert condition(await fast(harness.connect(), token, agent=OTHER_AGENT)) == "not-authorized"
    assert condition(await fast(harness.connect(), token, agent=None)) == "not-authorized"
    assert condition(await fast(harness.connect(), token, user="bob")) == "not-authorized"
    assert (await fast(harness.connect(), token)).name == "success"


async def test_tokens_rotate_near_expiry_and_the_old_one_lasts_until_the_new_is_used(
    harness: C2SHarness,
) -> None:
    old = await with_token(harness)
    harness.server.clock.advance(2.5 * DAY)  # within a day of expiry: due for rotation
    success = await fast(harness.connect(), old)
    new = token_of(success).attrs["token"]
    assert new != old
    # The new token may never have arrived: the old one still works, and brings another one
    # (which replaces the unused one, XEP-0484 §4.4).
    newer = token_of(await fast(harness.connect(), old)).attrs["token"]
    assert condition(await fast(harness.connect(), new)) == "not-authorized"
    success = await fast(harness.connect(), newer)
    assert success.name == "success" and success.find("token", FAST) is None  # fresh: no rotation
    assert condition(await fast(harness.connect(), old)) == "not-authorized"  # retired by use
    harness.server.clock.advance(3 * DAY)
    assert condition(await fast(harness.connect(), newer)) == "credentials-expired"


async def test_a_client_can_invalidate_its_token(harness: C2SHarness) -> None:
    token = await with_token(harness)
    wire = harness.connect()
    await wire.open()
    wire.send(
        f"<authenticate xmlns='{ns.SASL2}' mechanism='HT-SHA-256-NONE'>"
        f"<initial-response>{b64(format_initial('alice', token))}</initial-response>"
        f"{user_agent()}<fast xmlns='{FAST}' invalidate='true'/></authenticate>"
    )
    success = await wire.expect("success")
    assert success.find("token", FAST) is None
    assert condition(await fast(harness.connect(), token)) == "not-authorized"


async def test_a_password_change_revokes_tokens(harness: C2SHarness) -> None:
    token = await with_token(harness)
    await harness.server.accounts.set_password(Jid("alice", "localhost"), "new secret")
    assert condition(await fast(harness.connect(), token)) == "not-authorized"


async def test_account_removal_revokes_tokens(harness: C2SHarness) -> None:
    token = await with_token(harness)
    await harness.server.accounts.remove(Jid("alice", "localhost"))
    await harness.server.register("alice")
    assert condition(await fast(harness.connect(), token)) == "not-authorized"
