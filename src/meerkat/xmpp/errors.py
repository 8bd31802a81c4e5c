"""XMPP error conditions (RFC 6120 §4.9 stream errors, §8.3 stanza errors) and their builders.

Protocol code raises `StreamError` when the peer misbehaves at stream level (the session sends it
and closes) and `StanzaError` for a bad stanza (the dispatcher turns it into an error reply).
"""

from __future__ import annotations

from . import ns
from .element import Element

STREAM_CONDITIONS = frozenset(
    """bad-format bad-namespace-prefix conflict connection-timeout host-gone host-unknown
    improper-addressing internal-server-error invalid-from invalid-namespace invalid-xml
    not-authorized not-well-formed policy-violation remote-connection-failed reset
    resource-constraint restricted-xml see-other-host system-shutdown undefined-condition
    unsupported-encoding unsupported-feature unsupported-stanza-type unsupported-version""".split()  # noqa: SIM905
)

#: RFC 6120 §8.3.3: the error type that goes with each defined stanza error condition.
STANZA_ERROR_TYPES: dict[str, str] = {
    "bad-request": "modify",
    "conflict": "cancel",
    "feature-not-implemented": "cancel",
    "forbidden": "auth",
    "gone": "cancel",
    "internal-server-error": "cancel",
    "item-not-found": "cancel",
    "jid-malformed": "modify",
    "not-acceptable": "modify",
    "not-allowed": "cancel",
    "not-authorized": "auth",
    "policy-violation": "modify",
    "recipient-unavailable": "wait",
    "redirect": "modify",
    "registration-required": "auth",
    "remote-server-not-found": "cancel",
    "remote-server-timeout": "wait",
    "resource-constraint": "wait",
    "service-unavailable": "cancel",
    "subscription-required": "auth",
    "undefined-condition": "cancel",
    "unexpected-request": "wait",
}


class StreamError(Exception):
    """A stream-level error: the stream is closed after sending it."""

    def __init__(self, condition: str, text: str | None = None) -> None:
        assert condition in STREAM_CONDITIONS, condition
        super().__init__(f"{condition}: {text}" if text else condition)
        self.condition = condition
        self.text = text

    def to_element(self) -> Element:
        return stream_error(self.condition, self.text)


class StanzaError(Exception):
    """A stanza-level error, answered with an error stanza of the same kind."""

    def __init__(self, condition: str, type: str | None = None, text: str | None = None) -> None:
        assert condition in STANZA_ERROR_TYPES, condition
        super().__init__(f"{condition}: {text}" if text else condition)
        self.condition = condition
        self.type = type or STANZA_ERROR_TYPES[condition]
        self.text = text

    def to_element(self) -> Element:
        return error_element(self.condition, self.type, self.text)


def stream_error(condition: str, text: str | None = None) -> Element:
    """``<stream:error>`` with a defined condition and optional text."""
    el = Element("error", ns.STREAM)
    el.add(condition, ns.STREAMS_ERRORS)
    if text:
        el.add("text", ns.STREAMS_ERRORS, {"xml:lang": "en"}, text)
    return el


def error_element(condition: str, type: str | None = None, text: str | None = None) -> Element:
    """The ``<error/>`` child of an error stanza."""
    el = Element("error", ns.CLIENT, {"type": type or STANZA_ERROR_TYPES[condition]})
    el.add(condition, ns.STANZAS_ERRORS)
    if text:
        el.add("text", ns.STANZAS_ERRORS, {"xml:lang": "en"}, text)
    return el


def is_error(stanza: Element) -> bool:
    """True for error stanzas, which must never be answered with another error."""
    return stanza.attrs.get("type") == "error"


def error_reply(stanza: Element, error: StanzaError | Element) -> Element:
    """The error reply to a stanza: to/from swapped, ``type="error"``, original payload kept."""
    reply = Element(stanza.name, stanza.xmlns, dict(stanza.attrs))
    reply.attrs["type"] = "error"
    to, frm = stanza.attrs.get("to"), stanza.attrs.get("from")
    reply.attrs.pop("to", None)
    reply.attrs.pop("from", None)
    if frm is not None:
        reply.attrs["to"] = frm
    if to is not None:
        reply.attrs["from"] = to
    if stanza.name != "presence":
        reply.children = [
            c for c in stanza.children if isinstance(c, Element) and c.name != "error"
        ]
    err = error.to_element() if isinstance(error, StanzaError) else error
    err.xmlns = stanza.xmlns
    reply.children.append(err)
    return reply


def error_condition(stanza: Element) -> str | None:
    """The defined condition of an error stanza, if any."""
    err = stanza.find("error")
    if err is None:
        return None
    for child in err.elements():
        if child.xmlns == ns.STANZAS_ERRORS and child.name != "text":
            return child.name
    return None
