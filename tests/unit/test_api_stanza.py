"""Admin API category `stanza`: messages are routed to the recipient's sessions."""

from __future__ import annotations

import pytest
from test_api_support import Kernel

from meerkat.api import ApiError, stanza
from meerkat.xmpp.jid import Jid
from meerkat.xmpp.stream import parse_element


@pytest.fixture
async def kernel() -> Kernel:
    kernel = Kernel()
    await kernel.user("alice@localhost")
    await kernel.user("bob@localhost")
    return kernel


async def test_send_message_routes_a_chat_message(kernel: Kernel) -> None:
    bob = await kernel.login("bob@localhost/pc")
    result = await stanza.send_message(
        kernel.ctx, Jid.parse("alice@localhost"), Jid.parse("bob@localhost"), "Hi!"
    )
    [acc] = bob.delivered
    message = acc.element
    assert result == {"id": message.attrs["id"]}
    assert message.attrs["type"] == "chat"
    assert message.attrs["from"] == "alice@localhost"
    assert message.attrs["to"] == "bob@localhost"
    assert message.find_text("body") == "Hi!"


async def test_send_headline_with_subject_and_no_body(kernel: Kernel) -> None:
    bob = await kernel.login("bob@localhost/pc")
    await stanza.send_message_headline(
        kernel.ctx, Jid.parse("alice@localhost"), Jid.parse("bob@localhost"), "News", None
    )
    [acc] = bob.delivered
    assert acc.element.attrs["type"] == "headline"
    assert acc.element.find_text("subject") == "News"
    assert acc.element.find("body") is None


async def test_sender_must_be_an_existing_local_user(kernel: Kernel) -> None:
    bob = Jid.parse("bob@localhost")
    with pytest.raises(ApiError) as info:
        await stanza.send_message(kernel.ctx, Jid.parse("nobody@localhost"), bob, "x")
    assert (info.value.code, info.value.message) == ("unknown_user", "Given user does not exist")
    with pytest.raises(ApiError) as info:
        await stanza.send_message(kernel.ctx, Jid.parse("a@remote.org"), bob, "x")
    assert info.value.code == "unknown_domain"


async def test_send_stanza_keeps_its_id_and_routes_it(kernel: Kernel) -> None:
    bob = await kernel.login("bob@localhost/pc")
    element = parse_element(
        "<message from='alice@localhost' to='bob@localhost/pc' id='m1'><body>yo</body></message>"
    )
    assert await stanza.send_stanza(kernel.ctx, element) == {"id": "m1"}
    assert bob.delivered[0].element.find_text("body") == "yo"


async def test_send_stanza_needs_sender_and_recipient(kernel: Kernel) -> None:
    cases = [
        ("<message to='bob@localhost'/>", "no_sender"),
        ("<message from='alice@localhost'/>", "no_recipient"),
        ("<foo from='alice@localhost' to='bob@localhost'/>", "bad_stanza"),
    ]
    for xml, code in cases:
        with pytest.raises(ApiError) as info:
            await stanza.send_stanza(kernel.ctx, parse_element(xml))
        assert info.value.code == code
