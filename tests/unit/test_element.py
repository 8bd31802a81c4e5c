"""Element building, lookup and serialization."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from meerkat.xmpp import ns
from meerkat.xmpp.element import Element
from meerkat.xmpp.errors import StanzaError, error_condition, error_reply
from meerkat.xmpp.stream import parse_element


def test_serialization_declares_namespaces_only_where_they_change() -> None:
    iq = Element("iq", ns.CLIENT, {"type": "result", "id": "1"})
    query = iq.add("query", ns.ROSTER)
    query.add("item", attrs={"jid": "bob@localhost", "name": "Bob <&>"})
    assert iq.to_string(ns.CLIENT) == (
        '<iq type="result" id="1"><query xmlns="jabber:iq:roster">'
        '<item jid="bob@localhost" name="Bob &lt;&amp;&gt;"/></query></iq>'
    )


def test_text_is_escaped() -> None:
    msg = Element("message", ns.CLIENT)
    msg.add("body", text="a < b & c > d")
    assert "<body>a &lt; b &amp; c &gt; d</body>" in msg.to_string(ns.CLIENT)


def test_error_reply_swaps_addresses_and_keeps_the_payload() -> None:
    iq = Element("iq", ns.CLIENT, {"type": "get", "id": "7", "from": "a@b/c", "to": "b@b"})
    iq.add("query", "urn:x")
    reply = error_reply(iq, StanzaError("service-unavailable"))
    assert reply.attrs == {"type": "error", "id": "7", "to": "a@b/c", "from": "b@b"}
    assert reply.find("query", "urn:x") is not None
    assert error_condition(reply) == "service-unavailable"
    assert reply.find("error").attrs["type"] == "cancel"  # type: ignore[union-attr]


_XML_CHARS = st.characters(
    blacklist_categories=("Cs",), blacklist_characters="\x00\r", max_codepoint=0x2FFF
).filter(lambda c: c in "\t\n" or ord(c) >= 0x20)


@settings(max_examples=300)
@given(st.text(_XML_CHARS, max_size=40), st.text(_XML_CHARS, max_size=40))
def test_any_text_and_attribute_value_survive_serialization_and_parsing(
    text: str, value: str
) -> None:
    el = Element("message", ns.CLIENT, {"id": value, "{urn:x}a": value})
    el.add("body", text=text)
    parsed = parse_element(el.to_string(ns.CLIENT))
    assert parsed.attrs["id"] == value.replace("\t", " ").replace("\n", " ")
    assert parsed.find_text("body") == text
