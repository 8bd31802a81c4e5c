"""A resumable session as plain data, for XEP-0198 resumption on another node (pure).

When a client resumes on node B a session that ran on node A, A stops the session and
answers with `pack_session(...)`: only str, int, float, bool, None, lists and dicts, so that it
crosses the cluster link as msgpack. B rebuilds it with `unpack_session`.

What travels:

- the bound full JID, the session record's priority and info (its last broadcast presence is
  ``info["presence"]``, see `SessionManager.set_presence`);
- the stream management counters (``h`` both ways) and the unacknowledged stanzas, each as
  XML with the time it was first buffered (stanzas still queued for the session were handed
  to it before packing, so they are in the buffer);
- every module's per-session state (carbons enabled, CSI state and held stanzas, directed
  presence targets ...), through a small tagged encoding of the values modules keep there:
  `Jid`, `Element`, sets, tuples and dicts with non-string keys. A value that is none of
  those (a live object that means nothing on another node) is left behind and logged.

Rosters are not per session: mod_roster reads them from the store on whichever node runs
the session. mod_presence's kept subscription lists travel with its state; roster pushes
follow the session and drop them when they change.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from ...xmpp import ns
from ...xmpp.element import Element
from ...xmpp.errors import StreamError
from ...xmpp.jid import Jid, JidError
from ...xmpp.stream import parse_element
from .buffer import SmState

log = logging.getLogger(__name__)

VERSION = 1
_SCALARS = (str, int, float, bool, bytes, type(None))


class Unpackable(ValueError):
    """A value with no plain form; or plain data that is not a packed session."""


@dataclass(slots=True)
class SessionState:
    """The unpacked hand-over: everything B needs to continue A's session."""

    jid: Jid
    priority: int | None
    info: dict[str, Any]
    handled: int
    sent: int
    acked: int
    buffer: list[tuple[Element, float]]
    mod_state: dict[str, dict[str, Any]]


def pack_session(
    jid: Jid,
    priority: int | None,
    info: dict[str, Any],
    sm: SmState,
    mod_state: dict[str, dict[str, Any]],
    skip: str,
) -> dict[str, Any]:
    """The plain form of a session; `skip` is the module key holding `sm` (packed apart)."""
    mods: dict[str, Any] = {}
    for module, state in mod_state.items():
        if module == skip:
            continue
        packed: dict[str, Any] = {}
        for key, value in state.items():
            try:
                packed[key] = pack_value(value)
            except Unpackable:
                log.info("sm_handover_state_left module=%s key=%s", module, key)
        mods[module] = packed
    return {
        "v": VERSION,
        "jid": str(jid),
        "priority": priority,
        "info": {k: v for k, v in info.items() if isinstance(v, _SCALARS)},
        "h": [sm.handled, sm.sent, sm.acked],
        "buffer": [
            [el.to_string(ns.CLIENT), stamp]
            for el, stamp in zip(sm.unacked, sm.stamps, strict=True)
        ],
        "mods": mods,
    }


def unpack_session(data: Any) -> SessionState:
    """The inverse of `pack_session`; `Unpackable` when `data` is not a packed session."""
    try:
        if not isinstance(data, dict) or data.get("v") != VERSION:
            raise Unpackable("not a packed session")
        handled, sent, acked = (int(x) for x in data["h"])
        priority = data["priority"]
        if priority is not None and not isinstance(priority, int):
            raise Unpackable("bad priority")
        buffer = [(_xml(xml), float(stamp)) for xml, stamp in data["buffer"]]
        mods = {
            str(module): {str(k): unpack_value(v) for k, v in state.items()}
            for module, state in data["mods"].items()
        }
        info = data["info"]
        if not isinstance(info, dict):
            raise Unpackable("bad info")
        return SessionState(
            Jid.parse(data["jid"]), priority, dict(info), handled, sent, acked, buffer, mods
        )
    except (KeyError, TypeError, ValueError, JidError) as exc:
        if isinstance(exc, Unpackable):
            raise
        raise Unpackable(f"malformed packed session: {exc!r}") from exc


# -- the tagged encoding of module state values ---------------------------------------------------
def pack_value(value: Any) -> Any:
    """A module state value as plain data (tags: $jid, $xml, $set, $tuple, $map)."""
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, Jid):
        return {"$jid": str(value)}
    if isinstance(value, Element):
        return {"$xml": value.to_string(ns.CLIENT)}
    if isinstance(value, list):
        return [pack_value(v) for v in value]
    if isinstance(value, tuple):
        return {"$tuple": [pack_value(v) for v in value]}
    if isinstance(value, (set, frozenset)):
        return {"$set": [pack_value(v) for v in value]}
    if isinstance(value, dict):
        return {"$map": [[pack_value(k), pack_value(v)] for k, v in value.items()]}
    raise Unpackable(type(value).__name__)


def unpack_value(data: Any) -> Any:
    if isinstance(data, list):
        return [unpack_value(v) for v in data]
    if not isinstance(data, dict):
        return data
    if len(data) != 1:
        raise Unpackable("bad tagged value")
    ((tag, inner),) = data.items()
    if tag == "$jid":
        return Jid.parse(inner)
    if tag == "$xml":
        return _xml(inner)
    if tag == "$tuple":
        return tuple(unpack_value(v) for v in inner)
    if tag == "$set":
        return {unpack_value(v) for v in inner}
    if tag == "$map":
        return {unpack_value(k): unpack_value(v) for k, v in inner}
    raise Unpackable(f"unknown tag {tag!r}")


def _xml(text: Any) -> Element:
    if not isinstance(text, str):
        raise Unpackable("XML is not a string")
    try:
        return parse_element(text)
    except StreamError as exc:
        raise Unpackable(f"unreadable XML: {exc}") from exc
