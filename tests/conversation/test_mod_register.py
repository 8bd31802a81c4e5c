"""mod_register: XEP-0077 in-band registration, password change and cancellation."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from kernel_harness import Server, assert_same, payload

from meerkat.core import Acc
from meerkat.modules.register import RegisterConfig
from meerkat.xmpp.element import Element
from meerkat.xmpp.errors import error_condition
from meerkat.xmpp.jid import Jid
from meerkat.xmpp.stream import parse_element

REG = 'xmlns="jabber:iq:register"'


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    s = Server()
    await s.start({"mod_register": RegisterConfig(registration_watchdog_timeout=600)})
    yield s
    await s.stop()


async def preauth(server: Server, xml: str, ip: str = "192.0.2.1") -> Element:
    """What the c2s does with a register IQ before authentication."""
    iq = parse_element(xml)
    anon = Jid("", "localhost", "preauth-1")
    acc = Acc(iq, anon, Jid("", "localhost"), host_type="localhost", timestamp=0.0)
    acc.scratch["preauth"] = True
    acc.scratch["peer_ip"] = ip
    reply = await server.iq.handle("local", acc)
    assert reply is not None
    return reply


def register_iq(user: str, password: str = "pw") -> str:
    return (
        f'<iq type="set" id="r1"><query {REG}><username>{user}</username>'
        f"<password>{password}</password></query></iq>"
    )


async def test_an_unauthenticated_client_gets_the_registration_form(server: Server) -> None:
    reply = await preauth(server, f'<iq type="get" id="r1"><query {REG}/></iq>')
    assert_same(
        payload(reply),
        f"<query {REG}><instructions>Choose a username and password for use with this service."
        "</instructions><username/><password/></query>",
    )


async def test_registration_creates_the_account(server: Server) -> None:
    reply = await preauth(server, register_iq("carol", "s3cret"))
    assert reply.attrs["type"] == "result"
    assert await server.accounts.check_password(Jid("carol", "localhost"), "s3cret")


async def test_an_existing_username_is_a_conflict(server: Server) -> None:
    await server.register("carol")
    reply = await preauth(server, register_iq("carol"))
    assert error_condition(reply) == "conflict"


async def test_one_ip_address_cannot_register_accounts_quickly(server: Server) -> None:
    first = await preauth(server, register_iq("one"))
    assert first.attrs["type"] == "result"
    second = await preauth(server, register_iq("two"))
    assert error_condition(second) == "resource-constraint"
    other_ip = await preauth(server, register_iq("three"), ip="192.0.2.2")
    assert other_ip.attrs["type"] == "result"


async def test_missing_fields_are_not_acceptable(server: Server) -> None:
    reply = await preauth(
        server, f'<iq type="set" id="r1"><query {REG}><username>x</username></query></iq>'
    )
    assert error_condition(reply) == "not-acceptable"


async def test_a_user_changes_the_password(server: Server) -> None:
    alice = await server.login("alice")
    reply = await alice.iq(
        f'<iq type="set"><query {REG}><username>alice</username>'
        "<password>new</password></query></iq>"
    )
    assert reply.attrs["type"] == "result"
    assert await server.accounts.check_password(alice.jid.bare, "new")


async def test_a_user_cancels_the_registration(server: Server) -> None:
    alice = await server.login("alice")
    await alice.iq(f'<iq type="set"><query {REG}><remove/></query></iq>')
    assert not await server.accounts.exists(alice.jid.bare)
    assert alice.kicked is not None


async def test_without_the_module_registration_is_unavailable() -> None:
    server = Server()
    await server.start({})
    try:
        reply = await preauth(server, register_iq("carol"))
        assert error_condition(reply) == "service-unavailable"
    finally:
        await server.stop()
