"""`Acc`: one stanza's journey through the hooks (MongooseIM's mongoose_acc).

It carries the stanza, its parsed addresses, the host type it is processed for, a timestamp taken
once when the stanza entered the server, and a scratch dict where hook handlers leave notes for
later handlers (for example the MAM id, or "already carbon-copied").
"""

from __future__ import annotations

from typing import Any

from ..xmpp.element import Element
from ..xmpp.jid import Jid


class Acc:
    """A stanza in flight. ``from_jid``/``to_jid`` are the stanza's (stamped) addresses."""

    __slots__ = ("element", "from_jid", "host_type", "origin_sid", "scratch", "timestamp", "to_jid")

    def __init__(
        self,
        element: Element,
        from_jid: Jid,
        to_jid: Jid,
        *,
        host_type: str,
        timestamp: float,
        origin_sid: str | None = None,
    ) -> None:
        self.element = element
        self.from_jid = from_jid
        self.to_jid = to_jid
        self.host_type = host_type
        self.timestamp = timestamp
        self.origin_sid = origin_sid
        self.scratch: dict[str, Any] = {}

    @property
    def name(self) -> str:
        """``message``, ``presence`` or ``iq``."""
        return self.element.name

    @property
    def type(self) -> str:
        """The stanza's type attribute with RFC 6120 defaults (``normal``, ``available``)."""
        t = self.element.attrs.get("type")
        if t is not None:
            return t
        return "normal" if self.element.name == "message" else "available"

    def with_element(self, element: Element, to_jid: Jid | None = None) -> Acc:
        """A new Acc for a derived stanza (a copy to another resource, a reply)."""
        acc = Acc(
            element,
            self.from_jid,
            self.to_jid if to_jid is None else to_jid,
            host_type=self.host_type,
            timestamp=self.timestamp,
            origin_sid=self.origin_sid,
        )
        acc.scratch = dict(self.scratch)
        return acc

    def __repr__(self) -> str:
        return f"<Acc {self.name} {self.from_jid} -> {self.to_jid}>"
