"""mod_carboncopy: XEP-0280 Message Carbons, with the XEP-0334 ``<no-copy/>`` hint.

A resource enables carbons with an IQ set to its own bare JID (or inline in a Bind 2 request,
XEP-0386); the flag lives in the session's state under this module's key. Then:

- a message its user sends (USER_SEND_MESSAGE) is copied as ``<sent/>`` to each of the user's
  other resources;
- a message delivered to one of the user's resources (USER_RECEIVE_PACKET) is copied as
  ``<received/>`` to each resource that did not get the original under RFC 6121 §8.5.

Copies are ``<message from=user's bare JID to=resource><sent|received><forwarded>original``
and go through the session manager to the resource's session wherever it runs (this or another
node); a copy to a session that is gone is dropped, never re-routed or stored offline.

The hard parts:

- Only the receiving session knows whether it enabled carbons (its state may be on another
  node), so copies go to every other resource and each session drops, in USER_RECEIVE_PACKET,
  the copies it did not ask for. A copy is recognised as a carbons child in a message from the
  user's own bare JID: only this server can send that (a client's ``from`` is always stamped
  with its full JID).
- A message to the bare JID reaches every highest-priority resource, and each of them runs
  USER_RECEIVE_PACKET: only the one with the smallest session id sends the ``<received/>``
  copies, to the resources outside that set, so nobody gets the message twice.
- The routed Acc is shared by all the sessions it is delivered to: stripping ``<private/>``
  replaces ``acc.element`` and leaves a note in ``acc.scratch`` for the next session.
- Eligibility (XEP-0280 §6 suggested rules): ``chat``; ``normal`` with a body or an IM
  payload (chat state, receipt, marker, invitation); ``error`` carrying such content (a
  bounce keeps the original payload, which stands in for tracking what it answers); never
  ``groupchat``, ``headline``, a carbon, or a private message received from a MUC occupant
  (``<x xmlns="...muc#user"/>`` without an invitation); ``<private/>`` and ``<no-copy/>``
  suppress copies in both directions.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from ..core.acc import Acc
from ..core.client import ClientSession
from ..core.hooks import (
    BIND2_ENABLE_FEATURES,
    BIND2_STREAM_FEATURES,
    STOP,
    USER_RECEIVE_PACKET,
    USER_SEND_IQ,
    USER_SEND_MESSAGE,
)
from ..core.iq import IqSpec, iq_result
from ..core.modules import HookSpec, Module
from ..core.sessions import SessionRecord, highest_priority
from ..xmpp import ns
from ..xmpp.element import Element
from ..xmpp.errors import StanzaError, error_reply
from ..xmpp.jid import Jid
from ._common import session_state

KEY = "mod_carboncopy"
PRIVATE_SEEN = "mod_carboncopy:private"
"""acc.scratch note: the message carried <private/> or <no-copy/> (it may be stripped now)."""
FORWARD = "urn:xmpp:forward:0"
MUC_USER = "http://jabber.org/protocol/muc#user"
IM_PAYLOADS = frozenset(
    {
        "http://jabber.org/protocol/chatstates",  # XEP-0085
        "urn:xmpp:receipts",  # XEP-0184
        "urn:xmpp:chat-markers:0",  # XEP-0333
        "jabber:x:conference",  # XEP-0249 direct MUC invitation
    }
)
PRIORITY = 89
Direction = Literal["sent", "received"]


class CarbonsModule(Module):
    """XEP-0280: keep all of a user's carbons-enabled clients in every conversation."""

    name = "mod_carboncopy"

    def hooks(self) -> Iterable[HookSpec]:
        return (
            HookSpec(USER_SEND_IQ, self.on_user_send_iq),
            HookSpec(USER_SEND_MESSAGE, self.on_user_send_message, PRIORITY),
            HookSpec(USER_RECEIVE_PACKET, self.on_user_receive_packet, PRIORITY),
            HookSpec(BIND2_STREAM_FEATURES, self.on_bind2_features),
            HookSpec(BIND2_ENABLE_FEATURES, self.on_bind2_enable),
        )

    def iq_handlers(self) -> Iterable[IqSpec]:
        return (IqSpec(ns.CARBONS, self.on_foreign_iq, scope="sm"),)

    def features(self) -> Iterable[str]:
        return (ns.CARBONS,)

    # -- enabling ---------------------------------------------------------------------------
    async def on_user_send_iq(self, acc: Acc, params: dict[str, Any]) -> object:
        """<enable/> or <disable/> to the client's own bare JID: set this session's flag."""
        el = acc.element
        payloads = list(el.elements())
        if not payloads or payloads[0].xmlns != ns.CARBONS:
            return None
        if el.attrs.get("type") not in ("get", "set"):
            return None
        session: ClientSession = params["session"]
        if acc.to_jid != session.jid.bare:
            return None  # someone else's account: on_foreign_iq refuses
        query = payloads[0]
        if el.attrs["type"] == "set" and len(payloads) == 1 and query.name in ("enable", "disable"):
            session_state(session, KEY)["enabled"] = query.name == "enable"
            reply = iq_result(el)
        else:
            reply = error_reply(el, StanzaError("bad-request"))
        reply.attrs["from"] = str(session.jid.bare)
        await self.ctx.route(reply)
        return STOP

    async def on_foreign_iq(self, acc: Acc, query: Element) -> Element | None:
        """A carbons request to another user's account (or from another server)."""
        raise StanzaError("not-allowed", text="carbons can only be set for your own session")

    async def on_bind2_features(self, acc: list[Element], params: dict[str, Any]) -> object:
        acc.append(Element("feature", ns.BIND2, {"var": ns.CARBONS}))
        return None

    async def on_bind2_enable(self, acc: Element, params: dict[str, Any]) -> object:
        """XEP-0386: <enable/> inside <bind/> enables carbons; nothing goes into <bound/>."""
        if acc.find("enable", ns.CARBONS) is not None:
            session_state(params["session"], KEY)["enabled"] = True
        return None

    # -- copies -----------------------------------------------------------------------------
    async def on_user_send_message(self, acc: Acc, params: dict[str, Any]) -> object:
        session: ClientSession = params["session"]
        targets = [r for r in self.ctx.sessions.user_sessions(session.jid) if r.sid != session.sid]
        if not targets:
            return None  # the common case: no other resource (the recipient checks <private/>)
        el = acc.element
        if _suppressed(el):
            acc.scratch[PRIVATE_SEEN] = True
            return None
        if not eligible(el, "sent"):
            return None
        await self._send_copies(acc, "sent", session.jid.bare, targets)
        return None

    async def on_user_receive_packet(self, acc: Acc, params: dict[str, Any]) -> object:
        el = acc.element
        if el.name != "message":
            return None
        session: ClientSession = params["session"]
        marked = _marked(el)  # one look at the children instead of four finds
        if marked and is_carbon(el):
            if acc.from_jid == session.jid.bare and not self.enabled(session):
                return STOP  # a copy this resource did not ask for
            return None
        if acc.scratch.get(PRIVATE_SEEN) or (marked and _suppressed(el)):
            acc.scratch[PRIVATE_SEEN] = True
            private = el.find("private", ns.CARBONS)
            if private is not None:  # §7: removed before delivery to the recipient
                stripped = el.shallow_copy()
                stripped.remove(private)
                acc.element = stripped
            return None
        records = self.ctx.sessions.user_sessions(session.jid)
        if all(r.sid == session.sid for r in records) or not eligible(el, "received"):
            return None  # no other resource to copy to, or not a copied kind of message
        if acc.to_jid == session.jid:
            receivers = {session.sid}
        else:
            # To the bare JID (or to a resource that is gone): every highest-priority
            # resource got it; the one with the smallest session id copies it to the others.
            receivers = {r.sid for r in highest_priority(records)} | {session.sid}
            if session.sid != min(receivers):
                return None
        targets = [r for r in records if r.sid not in receivers]
        await self._send_copies(acc, "received", session.jid.bare, targets)
        return None

    async def _send_copies(
        self, acc: Acc, direction: Direction, user: Jid, targets: list[SessionRecord]
    ) -> None:
        for record in sorted(targets, key=lambda r: r.jid.resource):
            copy = wrap(direction, acc.element, user, record.jid)
            copy_acc = Acc(copy, user, record.jid, host_type=acc.host_type, timestamp=acc.timestamp)
            await self.ctx.sessions.deliver(record, copy_acc)

    @staticmethod
    def enabled(session: ClientSession) -> bool:
        """True when this session has enabled carbons."""
        return bool(session_state(session, KEY).get("enabled", False))


# -- pure helpers -------------------------------------------------------------------------------
def wrap(direction: Direction, original: Element, user: Jid, to: Jid) -> Element:
    """The carbon copy of ``original`` for resource ``to`` of ``user`` (XEP-0297 forwarded)."""
    attrs = {"from": str(user), "to": str(to)}
    if "type" in original.attrs:
        attrs["type"] = original.attrs["type"]
    msg = Element("message", ns.CLIENT, attrs)
    inner = original.copy()
    inner.xmlns = inner.xmlns or ns.CLIENT
    msg.add(direction, ns.CARBONS).add("forwarded", FORWARD).append(inner)
    return msg


def is_carbon(el: Element) -> bool:
    """The message is a carbon copy (``<sent/>`` or ``<received/>``)."""
    return el.find("sent", ns.CARBONS) is not None or el.find("received", ns.CARBONS) is not None


def unwrap(el: Element) -> Element | None:
    """The forwarded message inside a carbon copy, or None."""
    for name in ("sent", "received"):
        wrapper = el.find(name, ns.CARBONS)
        if wrapper is not None:
            forwarded = wrapper.find("forwarded", FORWARD)
            return None if forwarded is None else forwarded.find("message")
    return None


_MARK_NAMESPACES = frozenset({ns.CARBONS, ns.HINTS})


def _marked(el: Element) -> bool:
    """Whether a child is in the carbons or hints namespace (a copy, <private/>, <no-copy/>)."""
    for child in el.children:
        if isinstance(child, Element) and child.xmlns in _MARK_NAMESPACES:
            return True
    return False


def _suppressed(el: Element) -> bool:
    return el.find("private", ns.CARBONS) is not None or el.find("no-copy", ns.HINTS) is not None


def eligible(el: Element, direction: Direction) -> bool:
    """XEP-0280 §6: is this message (not private, not a carbon) copied to other resources?"""
    mtype = el.attrs.get("type", "normal")
    if mtype in ("groupchat", "headline") or is_carbon(el):
        return False
    muc = el.find("x", MUC_USER)
    invitation = muc is not None and muc.find("invite") is not None
    if muc is not None and not invitation and direction == "received":
        return False  # a private message from a MUC occupant: the room copies it itself
    if mtype == "chat" or invitation:
        return True
    # "normal", and "error" (whose bounce carries the original's payload)
    return el.find("body") is not None or any(c.xmlns in IM_PAYLOADS for c in el.elements())


__all__ = ["CarbonsModule", "eligible", "is_carbon", "unwrap", "wrap"]
