"""Sans-IO XML stream parser and writer for XMPP (RFC 6120 §4, §11; RFC 7395 framing).

`XmlStream.feed(bytes)` returns events: `StreamOpened`, a top-level `Element` per stanza,
`StreamClosed`. Misbehaviour raises `StreamError` with the RFC 6120 condition.

The hard parts: expat is told to refuse everything XMPP forbids (DOCTYPE, entity declarations,
processing instructions, comments -> ``restricted-xml``), the size of one stanza is limited
while it is still arriving (so a peer cannot make us buffer without bound), and nesting depth is
limited. In framed mode (WebSocket) every frame is a whole element at depth one under a
synthetic root, including ``<open/>`` and ``<close/>``.

An idle stream can `release()` its expat parser (about 14 KiB with its buffers) between
stanzas; the next `feed` builds a new one behind a replayed root that declares the same
namespaces as the peer's stream header, so the peer sees no difference.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar
from xml.parsers import expat

from . import ns
from .element import Element, escape_attr
from .errors import StreamError

_XML_NS = ns.XML + " "
_SYNTHETIC_ROOT = b"<meerkat-frames>"
TEXT_BUFFER_SIZE = 512
"""expat's text buffer: every parser holds one (64 KiB was most of an idle connection's
parser, 2 KiB still 15 % of it); longer text arrives in pieces."""
INTERN_LIMIT = 4096
"""Names the parsers' shared intern table may hold before it starts over: the names come from
peers, so the table must not grow without bound."""


@dataclass(slots=True)
class StreamOpened:
    """The peer opened a stream (``<stream:stream>``, or ``<open/>`` in framed mode)."""

    attrs: dict[str, str]
    content_ns: str = ""
    """The default namespace of the stream's content (``jabber:client`` ...)."""


@dataclass(slots=True)
class StreamClosed:
    """The peer closed its stream (``</stream:stream>`` or ``<close/>``)."""

    attrs: dict[str, str] = field(default_factory=dict)


StreamEvent = StreamOpened | StreamClosed | Element


def _split(name: str) -> tuple[str, str]:
    uri, sep, local = name.rpartition(" ")
    return (uri, local) if sep else ("", name)


def _attrs(raw: dict[str, str]) -> dict[str, str]:
    """Attribute names as `Element` keeps them. expat hands each element a dict of its own:
    without namespaced attributes (nearly always) it is used as it is."""
    for key in raw:
        if " " in key:
            break
    else:
        return raw
    out: dict[str, str] = {}
    for key, value in raw.items():
        if " " in key:
            if key.startswith(_XML_NS):
                out["xml:" + key[len(_XML_NS) :]] = value
            else:
                uri, local = _split(key)
                out["{" + uri + "}" + local] = value
        else:
            out[key] = value
    return out


class XmlStream:
    """Incremental parser of one XMPP stream (restarted after STARTTLS and SASL)."""

    # Slots: every connection keeps one of these, a hibernated one nothing else of it.
    __slots__ = (
        "_default_ns",
        "_events",
        "_fed",
        "_opened",
        "_parser",
        "_root_decls",
        "_stack",
        "_stanza_start",
        "framed",
        "max_depth",
        "max_stanza_size",
    )

    _intern: ClassVar[dict[str, str]] = {}
    """The intern table all parsers share (see `_new_expat`), emptied past `INTERN_LIMIT`."""

    def __init__(
        self, *, max_stanza_size: int = 65536, max_depth: int = 64, framed: bool = False
    ) -> None:
        self.max_stanza_size = max_stanza_size
        self.max_depth = max_depth
        self.framed = framed
        self._root_decls: list[tuple[str | None, str]] = []
        """The namespace declarations of the peer's stream header (to replay it)."""
        self._start_parser()

    def _new_expat(self) -> expat.XMLParserType:
        # One intern table for every parser of the process (pyexpat gives each parser a dict
        # of its own by default: ~1 KiB each, holding the same few dozen element and
        # attribute names). It only maps strings to equal strings: sharing it is safe.
        p = expat.ParserCreate(namespace_separator=" ", intern=XmlStream._intern)
        p.buffer_size = TEXT_BUFFER_SIZE  # before buffer_text: no default 8 KiB buffer first
        p.buffer_text = True
        p.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        p.StartElementHandler = self._on_start
        p.EndElementHandler = self._on_end
        p.CharacterDataHandler = self._on_text
        p.StartNamespaceDeclHandler = self._on_ns_decl
        p.StartDoctypeDeclHandler = self._forbidden
        p.EntityDeclHandler = self._forbidden
        p.UnparsedEntityDeclHandler = self._forbidden
        p.NotationDeclHandler = self._forbidden
        p.ProcessingInstructionHandler = self._forbidden
        p.CommentHandler = self._forbidden
        p.ExternalEntityRefHandler = self._forbidden_ref
        p.SkippedEntityHandler = self._forbidden
        return p

    def _start_parser(self) -> None:
        parser = self._new_expat()
        self._parser: expat.XMLParserType | None = parser
        self._root_decls = []
        self._stack: list[Element] = []
        self._events: list[StreamEvent] = []
        self._stanza_start = 0
        self._default_ns = ""
        self._opened = False
        self._fed = 0
        if self.framed:
            parser.Parse(_SYNTHETIC_ROOT, False)
            self._fed = len(_SYNTHETIC_ROOT)

    def reset(self) -> None:
        """Start a fresh stream on the same connection (after STARTTLS or SASL success)."""
        self._start_parser()

    @property
    def at_rest(self) -> bool:
        """True between stanzas of an open stream with no partial input held by expat."""
        parser = self._parser
        return (
            parser is not None
            and self._opened
            and len(self._stack) == 1
            and parser.CurrentByteIndex == self._fed
        )

    @property
    def released(self) -> bool:
        return self._parser is None

    def release(self) -> bool:
        """Drop the expat parser while the stream is `at_rest`; True when dropped. A stream
        whose header bound the stream namespace to several prefixes (or none) keeps it: its
        closing tag's prefix could not be replayed."""
        if not self.at_rest:
            return False
        if not self.framed and len([u for _, u in self._root_decls if u == ns.STREAM]) != 1:
            return False
        self._parser = None
        return True

    def _closing_tag(self) -> bytes:
        prefix = next(p for p, u in self._root_decls if u == ns.STREAM)
        return f"</{prefix}:stream>".encode()

    def _revive(self) -> expat.XMLParserType:
        """A new parser, inside a replayed root with the peer's namespace declarations."""
        parser = self._new_expat()
        if self.framed:
            header = _SYNTHETIC_ROOT
        else:
            decls = "".join(
                f' xmlns{":" + prefix if prefix else ""}="{escape_attr(uri)}"'
                for prefix, uri in self._root_decls
            )
            prefix = next(p for p, u in self._root_decls if u == ns.STREAM)
            header = f"<{prefix}:stream{decls}>".encode()
        root = self._stack[0]
        self._stack = []
        self._parser = parser
        parser.Parse(header, False)  # no event: the root was seen already
        self._stack = [root]
        self._fed = len(header)
        return parser

    def close(self) -> None:
        """Drop the expat parser for good (the stream ended). Its handlers are this object's
        bound methods: a reference cycle that only the garbage collector would free."""
        self._parser = None

    def feed(self, data: bytes) -> list[StreamEvent]:
        """Parse bytes; return the events they complete. Raises `StreamError`."""
        parser = self._parser
        if parser is None:
            # An idle client leaving sends just the closing tag: no parser to rebuild for it
            # (a mass logout of idle clients rebuilt one per session, ~12 us each).
            if not self.framed and data.strip(b" \t\r\n") == self._closing_tag():
                self._fed += len(data)
                self._stack = []
                return [StreamClosed()]
            parser = self._revive()
        self._fed += len(data)
        if len(XmlStream._intern) > INTERN_LIMIT:
            XmlStream._intern.clear()
        try:
            parser.Parse(data, False)
        except expat.ExpatError as exc:
            code = exc.code
            if code in (expat.errors.codes[expat.errors.XML_ERROR_UNDEFINED_ENTITY],):
                raise StreamError("restricted-xml", "entities are not allowed") from None
            if code == expat.errors.codes[expat.errors.XML_ERROR_INCORRECT_ENCODING] or (
                code == expat.errors.codes[expat.errors.XML_ERROR_UNKNOWN_ENCODING]
            ):
                raise StreamError("unsupported-encoding") from None
            raise StreamError("not-well-formed", str(exc)) from None
        if len(self._stack) >= 2 and self._fed - self._stanza_start > self.max_stanza_size:
            raise StreamError("policy-violation", "stanza too big")
        events, self._events = self._events, []
        return events

    # -- expat callbacks ------------------------------------------------------------------
    def _forbidden(self, *args: object) -> None:
        raise StreamError("restricted-xml", "DTDs, entities, comments and PIs are not allowed")

    def _forbidden_ref(self, *args: object) -> int:
        raise StreamError("restricted-xml", "external entities are not allowed")

    def _on_ns_decl(self, prefix: str | None, uri: str | None) -> None:
        # Only the root's declarations matter; the handler is removed once the root started.
        if not self._stack and not self._opened:
            self._root_decls.append((prefix, uri or ""))
            if prefix is None:
                self._default_ns = uri or ""

    def _on_start(self, name: str, attrs: dict[str, str]) -> None:
        uri, sep, local = name.rpartition(" ")
        if not sep:
            uri, local = "", name
        level = len(self._stack)
        parser = self._parser
        assert parser is not None  # expat calls back from inside `feed`
        if level == 0:
            # Declarations inside the stream are of no interest: stop hearing about them.
            parser.StartNamespaceDeclHandler = None
            if self._opened:  # a replayed root (`_revive`): the stream was opened before
                self._stack.append(Element(local, uri))
                return
            if self.framed:  # the synthetic root that frames hang under
                self._stack.append(Element(local))
                return
            if local != "stream" or uri != ns.STREAM:
                if local == "stream":
                    raise StreamError("invalid-namespace", "stream namespace must be " + ns.STREAM)
                raise StreamError("not-well-formed", "expected <stream:stream>")
            self._opened = True
            self._events.append(StreamOpened(_attrs(attrs), self._default_ns))
            self._stack.append(Element(local, uri))
            return
        if level == 1:
            self._stanza_start = parser.CurrentByteIndex
            if self.framed and uri == ns.WEBSOCKET and local in ("open", "close"):
                if local == "open":
                    self._opened = True
                    self._events.append(StreamOpened(_attrs(attrs), ns.CLIENT))
                else:
                    self._events.append(StreamClosed(_attrs(attrs)))
            elif self.framed and not self._opened:
                raise StreamError("not-authorized", "stream not opened")
        else:
            if level > self.max_depth:
                raise StreamError("policy-violation", "XML nested too deeply")
            if parser.CurrentByteIndex - self._stanza_start > self.max_stanza_size:
                raise StreamError("policy-violation", "stanza too big")
        el = Element(local, uri, _attrs(attrs))
        if level > 1:
            self._stack[-1].children.append(el)
        self._stack.append(el)

    def _on_end(self, name: str) -> None:
        el = self._stack.pop()
        level = len(self._stack)
        if level == 1:
            # A whole stanza in one chunk (always so on WebSocket) passes no other size check.
            parser = self._parser
            assert parser is not None
            if parser.CurrentByteIndex - self._stanza_start > self.max_stanza_size:
                raise StreamError("policy-violation", "stanza too big")
            if not (self.framed and el.xmlns == ns.WEBSOCKET and el.name in ("open", "close")):
                self._events.append(el)
        elif level == 0 and not self.framed:
            self._events.append(StreamClosed())

    def _on_text(self, data: str) -> None:
        if len(self._stack) <= 1:
            if data.strip():
                raise StreamError("not-well-formed", "text outside a stanza")
            return
        # Where this text ends: buffered text is handed over at a later event (the index is
        # past it), a piece longer than the buffer straight away (the index is its start).
        parser = self._parser
        assert parser is not None
        end = parser.CurrentByteIndex
        if len(data) > TEXT_BUFFER_SIZE:
            end += len(data)
        if end - self._stanza_start > self.max_stanza_size:
            raise StreamError("policy-violation", "stanza too big")
        self._stack[-1].children.append(data)


def stream_header(
    *,
    from_: str,
    id: str,
    to: str | None = None,
    content_ns: str = ns.CLIENT,
    version: str = "1.0",
    lang: str = "en",
) -> bytes:
    """The server's opening ``<stream:stream>`` tag, with XML declaration."""
    to_attr = f' to="{escape_attr(to)}"' if to else ""
    return (
        f"<?xml version='1.0'?><stream:stream xmlns=\"{content_ns}\" "
        f'xmlns:stream="{ns.STREAM}" from="{escape_attr(from_)}"{to_attr} '
        f'id="{escape_attr(id)}" version="{version}" xml:lang="{lang}">'
    ).encode()


def ws_open(*, from_: str, id: str, to: str | None = None, lang: str = "en") -> bytes:
    """RFC 7395 ``<open/>`` frame sent by the server."""
    to_attr = f' to="{escape_attr(to)}"' if to else ""
    return (
        f'<open xmlns="{ns.WEBSOCKET}" from="{escape_attr(from_)}"{to_attr} '
        f'id="{escape_attr(id)}" version="1.0" xml:lang="{lang}"/>'
    ).encode()


STREAM_CLOSE = b"</stream:stream>"
WS_CLOSE = f'<close xmlns="{ns.WEBSOCKET}"/>'.encode()


def parse_element(text: str | bytes, *, max_size: int = 1 << 20) -> Element:
    """Parse one standalone XML element (admin API input, stored stanzas) with stream rules.

    The element's default namespace is ``jabber:client`` unless it declares another.
    Raises `StreamError` (``not-well-formed``, ``restricted-xml`` ...) on bad input.
    """
    data = text.encode() if isinstance(text, str) else text
    parser = XmlStream(max_stanza_size=max_size, framed=True)
    try:
        parser.feed(b'<open xmlns="' + ns.WEBSOCKET.encode() + b'"/>')
        events = parser.feed(b'<wrap xmlns="jabber:client">' + data + b"</wrap>")
    finally:
        parser.close()
    wrappers = [e for e in events if isinstance(e, Element)]
    if len(wrappers) != 1:
        raise StreamError("not-well-formed", "incomplete element")
    children = list(wrappers[0].elements())
    if len(children) != 1 or wrappers[0].text.strip():
        raise StreamError("not-well-formed", "expected exactly one element")
    return children[0]
