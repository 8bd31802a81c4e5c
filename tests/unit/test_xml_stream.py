"""The sans-IO stream parser: events, limits and the XML that XMPP forbids (RFC 6120 §11)."""

from __future__ import annotations

import contextlib
import gc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meerkat.xmpp import ns
from meerkat.xmpp.element import Element
from meerkat.xmpp.errors import StreamError
from meerkat.xmpp.stream import StreamClosed, StreamOpened, XmlStream, parse_element

HEADER = (
    b"<?xml version='1.0'?><stream:stream to='localhost' version='1.0' "
    b"xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
)


def opened(**kwargs: int) -> XmlStream:
    parser = XmlStream(**kwargs)
    events = parser.feed(HEADER)
    assert isinstance(events[0], StreamOpened)
    return parser


def test_stream_header_reports_attributes_and_content_namespace() -> None:
    events = XmlStream().feed(HEADER)
    assert len(events) == 1
    event = events[0]
    assert isinstance(event, StreamOpened)
    assert event.attrs == {"to": "localhost", "version": "1.0"}
    assert event.content_ns == ns.CLIENT


def test_stanzas_arrive_whole_even_when_split_across_chunks() -> None:
    parser = opened()
    data = b'<message to="bob@localhost" type="chat"><body>hi &amp; bye</body></message>'
    events: list[object] = []
    for i in range(len(data)):
        events += parser.feed(data[i : i + 1])
    assert len(events) == 1
    msg = events[0]
    assert isinstance(msg, Element)
    assert msg.name == "message" and msg.xmlns == ns.CLIENT
    assert msg.find_text("body") == "hi & bye"


def test_whitespace_keepalives_between_stanzas_are_ignored() -> None:
    parser = opened()
    assert parser.feed(b"   \n\t ") == []
    assert len(parser.feed(b"<presence/>  ")) == 1


def test_closing_the_stream_is_an_event() -> None:
    parser = opened()
    assert isinstance(parser.feed(b"</stream:stream>")[0], StreamClosed)


def test_prefixed_child_namespaces_are_resolved() -> None:
    parser = opened()
    [el] = parser.feed(b'<iq type="get" id="1"><q:query xmlns:q="jabber:iq:roster"/></iq>')
    assert isinstance(el, Element)
    child = el.find("query", ns.ROSTER)
    assert child is not None
    assert el.to_string(ns.CLIENT) == '<iq type="get" id="1"><query xmlns="jabber:iq:roster"/></iq>'


@pytest.mark.parametrize(
    ("data", "condition"),
    [
        (b'<!DOCTYPE x [<!ENTITY a "b">]>', "not-well-formed"),  # a DTD after the root
        (b"<message>&a;</message>", "restricted-xml"),
        (b"<!-- comment --><message/>", "restricted-xml"),
        (b"<?pi data?>", "restricted-xml"),
        (b"<message><<</message>", "not-well-formed"),
        (b"<message></iq>", "not-well-formed"),
        (b"text outside", "not-well-formed"),
    ],
)
def test_forbidden_or_broken_xml_raises_the_rfc_6120_stream_error(
    data: bytes, condition: str
) -> None:
    parser = opened()
    with pytest.raises(StreamError) as err:
        parser.feed(data)
    assert err.value.condition == condition


def test_doctype_before_the_stream_header_is_restricted_xml() -> None:
    with pytest.raises(StreamError) as err:
        XmlStream().feed(b"<!DOCTYPE stream:stream><stream:stream/>")
    assert err.value.condition == "restricted-xml"


def test_billion_laughs_is_refused_before_any_expansion() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        + b"".join(b'<!ENTITY lol%d "&lol%d;&lol%d;">' % (i + 1, i, i) for i in range(30))
        + b"]><lolz>&lol30;</lolz>"
    )
    with pytest.raises(StreamError) as err:
        XmlStream().feed(bomb)
    assert err.value.condition == "restricted-xml"


def test_unknown_stream_namespace_is_invalid_namespace() -> None:
    with pytest.raises(StreamError) as err:
        XmlStream().feed(b"<stream:stream xmlns:stream='urn:not-streams'>")
    assert err.value.condition == "invalid-namespace"


def test_a_stanza_over_the_size_limit_is_refused_while_it_is_still_arriving() -> None:
    parser = opened(max_stanza_size=1000)
    parser.feed(b"<message><body>")
    with pytest.raises(StreamError) as err:
        for _ in range(100):
            parser.feed(b"x" * 100)
    assert err.value.condition == "policy-violation"


@pytest.mark.parametrize("framed", [False, True])
def test_a_stanza_over_the_size_limit_is_refused_when_it_arrives_whole(framed: bool) -> None:
    parser = XmlStream(max_stanza_size=65536, framed=framed)
    if framed:
        parser.feed(
            b'<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="localhost" version="1.0"/>'
        )
    else:
        parser.feed(
            b"<stream:stream xmlns='jabber:client' xmlns:stream='" + ns.STREAM.encode() + b"'>"
        )
    with pytest.raises(StreamError) as err:
        parser.feed(b'<message xmlns="jabber:client"><body>' + b"x" * 70000 + b"</body></message>")
    assert err.value.condition == "policy-violation"


def test_many_small_stanzas_do_not_add_up_to_the_size_limit() -> None:
    parser = opened(max_stanza_size=1000)
    for _ in range(100):
        assert len(parser.feed(b"<message><body>" + b"x" * 500 + b"</body></message>")) == 1


def test_deep_nesting_is_refused() -> None:
    parser = opened(max_depth=16)
    with pytest.raises(StreamError) as err:
        parser.feed(b"<message>" + b"<a>" * 20)
    assert err.value.condition == "policy-violation"


def test_framed_mode_reads_websocket_open_stanzas_and_close() -> None:
    parser = XmlStream(framed=True)
    [op] = parser.feed(
        b'<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="localhost" version="1.0"/>'
    )
    assert isinstance(op, StreamOpened) and op.attrs["to"] == "localhost"
    [msg] = parser.feed(b'<message xmlns="jabber:client"><body>x</body></message>')
    assert isinstance(msg, Element) and msg.name == "message"
    [close] = parser.feed(b'<close xmlns="urn:ietf:params:xml:ns:xmpp-framing"/>')
    assert isinstance(close, StreamClosed)


def test_framed_mode_refuses_stanzas_before_open() -> None:
    with pytest.raises(StreamError):
        XmlStream(framed=True).feed(b'<message xmlns="jabber:client"/>')


def test_parse_element_reads_one_element_and_refuses_more_or_less() -> None:
    el = parse_element('<message to="a@b"><body>x</body></message>')
    assert el.name == "message" and el.xmlns == ns.CLIENT
    for bad in ["<a/><b/>", "<a>", "plain", "<!DOCTYPE a><a/>"]:
        with pytest.raises(StreamError):
            parse_element(bad)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_raise_anything_but_stream_errors(data: bytes) -> None:
    parser = opened(max_stanza_size=2000)
    with contextlib.suppress(StreamError):
        parser.feed(data)


@settings(max_examples=200, deadline=None)
@given(
    st.text(max_size=200), st.dictionaries(st.sampled_from(["a", "b", "c"]), st.text(max_size=20))
)
def test_serialized_elements_parse_back_to_the_same_element(
    text: str, attrs: dict[str, str]
) -> None:
    clean = "".join(c for c in text if c.isprintable() and c not in "\r")
    clean_attrs = {k: "".join(c for c in v if c.isprintable()) for k, v in attrs.items()}
    el = Element("message", ns.CLIENT, dict(clean_attrs))
    el.add("body", text=clean) if clean else el.add("body")
    el.add("x", "urn:other", {"y": "1"})
    parser = opened()
    [back] = parser.feed(el.to_string(ns.CLIENT).encode())
    assert back == el


@pytest.mark.parametrize("chunk", [7, 1000, 70000])
def test_text_longer_than_the_parser_buffer_arrives_whole(chunk: int) -> None:
    parser = opened(max_stanza_size=65536)
    body = "ü€x" * 20000  # 6 bytes per 3 characters: about 40,000 bytes
    data = ("<message><body>" + body[:20000] + "</body></message>").encode()
    got = []
    for i in range(0, len(data), chunk):
        got += parser.feed(data[i : i + chunk])
    assert len(got) == 1
    assert got[0].find("body").text == body[:20000]


def test_a_closed_stream_and_parse_element_leave_nothing_to_the_garbage_collector() -> None:
    # expat's handlers are the stream's bound methods (a cycle) until `close` drops expat.
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        stream = XmlStream()
        stream.feed(HEADER + b"<message><body>hi</body></message>")
        stream.close()
        del stream
        parse_element("<message xmlns='jabber:client'><body>hi</body></message>")
        with contextlib.suppress(StreamError):
            parse_element("<message")
        gc.collect()
        left = [type(obj).__qualname__ for obj in gc.garbage]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert left == []
