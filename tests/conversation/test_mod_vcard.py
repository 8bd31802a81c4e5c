"""mod_vcard: XEP-0054 - set your own vCard, read anyone's."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from kernel_harness import Server, assert_same, payload

from meerkat.stores import UserKey
from meerkat.xmpp.errors import error_condition

CARD = '<vCard xmlns="vcard-temp"><FN>Alice</FN><NICKNAME>al</NICKNAME></vCard>'


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    s = Server()
    await s.start({"mod_vcard": None})
    yield s
    await s.stop()


async def test_a_user_sets_a_vcard_and_others_read_it(server: Server) -> None:
    alice = await server.login("alice")
    bob = await server.login("bob")
    reply = await alice.iq(f'<iq type="set">{CARD}</iq>')
    assert_same(
        reply, '<iq type="result" id="q1" from="alice@localhost" to="alice@localhost/res"/>'
    )
    mine = await alice.iq('<iq type="get"><vCard xmlns="vcard-temp"/></iq>')
    assert_same(mine, f'<iq type="result" id="q1" from="alice@localhost" '
                      f'to="alice@localhost/res">{CARD}</iq>')  # fmt: skip
    theirs = await bob.iq('<iq type="get" to="alice@localhost"><vCard xmlns="vcard-temp"/></iq>')
    assert_same(theirs, f'<iq type="result" id="q1" from="alice@localhost" '
                        f'to="bob@localhost/res">{CARD}</iq>')  # fmt: skip


async def test_nobody_sets_someone_elses_vcard(server: Server) -> None:
    await server.register("alice")
    bob = await server.login("bob")
    reply = await bob.iq(f'<iq type="set" to="alice@localhost">{CARD}</iq>')
    assert error_condition(reply) == "forbidden"


async def test_no_vcard_is_an_empty_one_and_no_account_is_item_not_found(server: Server) -> None:
    await server.register("alice")
    bob = await server.login("bob")
    empty = await bob.iq('<iq type="get" to="alice@localhost"><vCard xmlns="vcard-temp"/></iq>')
    assert_same(payload(empty), '<vCard xmlns="vcard-temp"/>')
    ghost = await bob.iq('<iq type="get" to="ghost@localhost"><vCard xmlns="vcard-temp"/></iq>')
    assert error_condition(ghost) == "item-not-found"


async def test_removing_the_account_removes_its_vcard(server: Server) -> None:
    alice = await server.login("alice")
    await alice.iq(f'<iq type="set">{CARD}</iq>')
    await server.accounts.remove(alice.jid.bare)
    assert await server.stores.vcard.get_vcard(UserKey("localhost", "alice")) is None
