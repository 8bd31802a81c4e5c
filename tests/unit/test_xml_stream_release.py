"""An idle stream drops its expat parser and rebuilds it on the next input (hibernation)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from meerkat.xmpp import ns
from meerkat.xmpp.element import Element
from meerkat.xmpp.errors import StreamError
from meerkat.xmpp.stream import StreamClosed, StreamOpened, XmlStream

PREFIXED = (
    b"<?xml version='1.0'?><s:stream to='localhost' version='1.0' xmlns='jabber:client' "
    b"xmlns:s='http://etherx.jabber.org/streams' xmlns:x='urn:example:x'>"
)
OPEN_FRAME = f"<open xmlns='{ns.WEBSOCKET}' to='localhost' version='1.0'/>".encode()


def test_a_released_stream_parses_on_with_the_headers_namespaces_and_closing_tag() -> None:
    stream = XmlStream()
    assert isinstance(stream.feed(PREFIXED)[0], StreamOpened)
    assert stream.release() and stream.released
    [message] = stream.feed(b"<message><x:y/><body>a &amp; b</body></message>")
    assert isinstance(message, Element) and message.xmlns == ns.CLIENT
    assert message.find("y", "urn:example:x") is not None
    assert message.find_text("body") == "a & b"
    assert not stream.released
    assert stream.release()
    assert stream.feed(b"</s:stream>") == [StreamClosed()]


def test_a_released_stream_closes_without_rebuilding_its_parser() -> None:
    stream = XmlStream()
    stream.feed(PREFIXED)
    assert stream.release()
    assert stream.feed(b"\n </s:stream>") == [StreamClosed()]
    assert stream.released  # an idle client leaving costs no new parser
    wrong = XmlStream()
    wrong.feed(PREFIXED)
    wrong.release()
    try:
        wrong.feed(b"</stream:stream>")  # not the header's prefix: expat decides
    except StreamError as exc:
        assert exc.condition == "not-well-formed"
    else:
        raise AssertionError("a closing tag with another prefix was accepted")


def test_a_partial_stanza_keeps_the_parser() -> None:
    stream = XmlStream()
    stream.feed(PREFIXED)
    assert stream.feed(b"<message to='a>b'") == []
    assert not stream.at_rest and not stream.release()
    [message] = stream.feed(b"><body>x</body></message>")
    assert isinstance(message, Element) and message.attrs["to"] == "a>b"
    assert stream.release()


def test_a_stream_not_yet_opened_keeps_the_parser() -> None:
    stream = XmlStream()
    assert not stream.release()
    stream.feed(b"<?xml version='1.0'?><stream:str")
    assert not stream.release()


def test_a_header_binding_the_stream_namespace_twice_keeps_the_parser() -> None:
    stream = XmlStream()
    stream.feed(PREFIXED.replace(b"xmlns:x='urn:example:x'", f"xmlns:t='{ns.STREAM}'".encode()))
    assert not stream.release()


def test_limits_still_hold_after_a_release() -> None:
    stream = XmlStream(max_stanza_size=1024)
    stream.feed(PREFIXED)
    stream.release()
    try:
        stream.feed(b"<message><body>" + b"x" * 2000 + b"</body></message>")
    except StreamError as exc:
        assert exc.condition == "policy-violation"
    else:
        raise AssertionError("a stanza over the limit passed after a release")
    restricted = XmlStream()
    restricted.feed(PREFIXED)
    restricted.release()
    try:
        restricted.feed(b"<!-- no -->")
    except StreamError as exc:
        assert exc.condition == "restricted-xml"
    else:
        raise AssertionError("a comment passed after a release")


def test_a_framed_stream_releases_between_frames() -> None:
    stream = XmlStream(framed=True)
    assert isinstance(stream.feed(OPEN_FRAME)[0], StreamOpened)
    assert stream.release()
    [message] = stream.feed(f"<message xmlns='{ns.CLIENT}'><body>x</body></message>".encode())
    assert isinstance(message, Element) and message.find_text("body") == "x"
    assert stream.release()
    assert stream.feed(f"<close xmlns='{ns.WEBSOCKET}'/>".encode()) == [StreamClosed(attrs={})]


@given(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=12))
def test_releasing_whenever_possible_changes_no_event(cuts: list[int]) -> None:
    data = b"".join(
        f"<message id='{i}'><x:y a='{i}'/><body>b{i}</body></message> ".encode() for i in range(4)
    )
    pieces, rest = [], data
    for cut in cuts:
        pieces.append(rest[:cut])
        rest = rest[cut:]
    pieces.append(rest)
    plain, releasing = XmlStream(), XmlStream()
    plain.feed(PREFIXED)
    releasing.feed(PREFIXED)
    expected, got = [], []
    for piece in pieces:
        expected += plain.feed(piece)
        got += releasing.feed(piece)
        releasing.release()
    assert [str(e) for e in got] == [str(e) for e in expected]
    assert len(got) == 4
