"""Small helpers shared by the feature modules: user keys, per-session state, delay stamps."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..core.client import ClientSession
from ..core.sessions import SessionManager, SessionRecord, broadcast_presence
from ..stores.types import UserKey
from ..xmpp import ns
from ..xmpp.element import Element
from ..xmpp.jid import Jid


def user_key(jid: Jid) -> UserKey:
    """The store key of a local account."""
    return UserKey(jid.domain, jid.local)


def session_state(session: ClientSession, module: str) -> dict[str, Any]:
    """The module's per-session state dict."""
    state: dict[str, Any] = session.state(module)
    return state


def doc(text: str) -> dict[str, str]:
    """Metadata for a documented `Config` field."""
    return {"doc": text}


def xmpp_stamp(seconds: float) -> str:
    """An XEP-0082 DateTime in UTC with microseconds: ``2026-11-27T03:40:00.000000Z``."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def delay_element(from_domain: str, seconds: float, text: str | None = None) -> Element:
    """An XEP-0203 ``<delay/>`` element."""
    el = Element("delay", ns.DELAY, {"from": from_domain, "stamp": xmpp_stamp(seconds)})
    if text:
        el.children.append(text)
    return el


def presence(frm: Jid | str, to: Jid | str, ptype: str | None = None) -> Element:
    """A bare ``<presence/>`` stanza."""
    attrs = {"from": str(frm), "to": str(to)}
    if ptype is not None:
        attrs["type"] = ptype
    return Element("presence", ns.CLIENT, attrs)


def last_presences(sessions: SessionManager, user: Jid) -> list[tuple[SessionRecord, Element]]:
    """The current broadcast presence of each available resource of a user.

    Read from the local session handles (a c2s session exposes ``last_presence``), or, for a
    session on another node, from the presence stored in its replicated record; one that
    cannot tell is represented by a plain available presence carrying its priority.
    """
    out: list[tuple[SessionRecord, Element]] = []
    for record in sessions.user_sessions(user):
        if not record.available:
            continue
        handle = sessions.local_handle(record.sid)
        last = getattr(handle, "last_presence", None) if handle is not None else None
        if isinstance(last, Element):
            el = last.copy()
        elif (stored := broadcast_presence(record)) is not None:
            el = stored
        else:
            el = Element("presence", ns.CLIENT)
            el.add("priority", text=str(record.priority))
        el.attrs["from"] = str(record.jid)
        out.append((record, el))
    return out
