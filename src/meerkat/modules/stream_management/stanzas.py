"""Pure builders of the XEP-0198 elements the server sends."""

from __future__ import annotations

from ...xmpp import ns
from ...xmpp.element import Element
from ...xmpp.errors import StreamError, stream_error


def feature() -> Element:
    return Element("sm", ns.SM)


def bind2_feature() -> Element:
    return Element("feature", ns.BIND2, {"var": ns.SM})


def enabled(smid: str | None, max_seconds: int) -> Element:
    attrs = {"id": smid, "resume": "true", "max": str(max_seconds)} if smid else {}
    return Element("enabled", ns.SM, attrs)


def resumed(previd: str, h: int) -> Element:
    return Element("resumed", ns.SM, {"previd": previd, "h": str(h)})


def failed(condition: str, h: int | None = None) -> Element:
    """``<failed/>`` with a stanza error condition (XEP-0198 §6) and, for a late resumption,
    the last known ``h`` of the old session."""
    el = Element("failed", ns.SM, {"h": str(h)} if h is not None else {})
    el.add(condition, ns.STANZAS_ERRORS)
    return el


def ack(h: int) -> Element:
    return Element("a", ns.SM, {"h": str(h)})


def request() -> Element:
    return Element("r", ns.SM)


class HandledCountTooHighError(StreamError):
    """XEP-0198 §4: ``undefined-condition`` carrying ``<handled-count-too-high/>``."""

    def __init__(self, h: int, sent: int) -> None:
        super().__init__("undefined-condition", "You acknowledged more stanzas than were sent")
        self.h, self.sent = h, sent

    def to_element(self) -> Element:
        el = stream_error(self.condition, self.text)
        el.children.insert(
            1,
            Element(
                "handled-count-too-high", ns.SM, {"h": str(self.h), "send-count": str(self.sent)}
            ),
        )
        return el


def parse_h(value: str | None) -> int | None:
    """An ``h`` attribute (0 .. 2^32-1), None when absent or invalid."""
    if value is None or not value.isdigit():
        return None
    h = int(value)
    return h if h < 1 << 32 else None
