"""The cluster wire form of a routed stanza: `Acc` <-> plain msgpack-able lists (no pickle).

A stanza forwarded to the node that owns the target session travels as::

    [sid, element, from, to, host_type, timestamp, origin_sid, scratch]

where ``element`` is ``[name, xmlns, attrs, children]`` with children that are text or
nested elements, and JIDs are ``[local, domain, resource]``. Only the plain values of the
Acc's scratch (str, int, float, bool, None, bytes) travel; anything else is a local note
that means nothing on another node. Decoding trusts its input only as far as the cluster
link does (the peer authenticated with the cluster secret) but still refuses a malformed
payload with `ValueError` instead of building a half-valid stanza.
"""

from __future__ import annotations

from typing import Any

from ..core.acc import Acc
from ..xmpp.element import Element
from ..xmpp.jid import Jid

_PLAIN = (str, int, float, bool, bytes, type(None))
MAX_DEPTH = 64


def encode_element(el: Element) -> list[Any]:
    """An element as ``[name, xmlns, attrs, children]``."""
    return [
        el.name,
        el.xmlns,
        el.attrs,
        [c if isinstance(c, str) else encode_element(c) for c in el.children],
    ]


def decode_element(data: Any, depth: int = 0) -> Element:
    """The inverse of `encode_element`; ValueError on anything else.

    On the receiving hot path: exact type checks (`type(x) is str`), no generators.
    """
    if type(data) is not list or len(data) != 4:
        raise ValueError("element is not [name, xmlns, attrs, children]")
    name, xmlns, attrs, children = data
    if (
        type(name) is not str
        or type(xmlns) is not str
        or type(attrs) is not dict
        or type(children) is not list
    ):
        raise ValueError("bad element header")
    for key, value in attrs.items():
        if type(key) is not str or type(value) is not str:
            raise ValueError("attribute names and values must be strings")
    if depth > MAX_DEPTH:
        raise ValueError("element nested too deeply")
    kids: list[Element | str] = []
    for child in children:
        kids.append(child if type(child) is str else decode_element(child, depth + 1))
    return Element(name, xmlns, attrs, kids)


def _jid(data: Any) -> Jid:
    if (
        type(data) is not list
        or len(data) != 3
        or type(data[0]) is not str
        or type(data[1]) is not str
        or type(data[2]) is not str
    ):
        raise ValueError("jid is not [local, domain, resource]")
    return Jid(data[0], data[1], data[2])


def encode_routed(sid: str, acc: Acc) -> list[Any]:
    """The payload of a `route` message for session `sid`."""
    scratch = {k: v for k, v in acc.scratch.items() if isinstance(v, _PLAIN)} if acc.scratch else {}
    return [
        sid,
        encode_element(acc.element),
        list(acc.from_jid),
        list(acc.to_jid),
        acc.host_type,
        acc.timestamp,
        acc.origin_sid,
        scratch,
    ]


def decode_routed(payload: Any) -> tuple[str, Acc]:
    """(sid, acc) from a `route` payload; ValueError when malformed."""
    if type(payload) is not list or len(payload) != 8:
        raise ValueError("route payload is not an 8-item list")
    sid, element, frm, to, host_type, timestamp, origin_sid, scratch = payload
    if type(sid) is not str or type(host_type) is not str:
        raise ValueError("bad sid or host type")
    if type(timestamp) is not float and type(timestamp) is not int:
        raise ValueError("bad timestamp")
    if origin_sid is not None and type(origin_sid) is not str:
        raise ValueError("bad origin sid")
    if type(scratch) is not dict:
        raise ValueError("scratch is not a map")
    acc = Acc(
        decode_element(element),
        _jid(frm),
        _jid(to),
        host_type=host_type,
        timestamp=float(timestamp),
        origin_sid=origin_sid,
    )
    if scratch:
        for key in scratch:
            if type(key) is not str:
                raise ValueError("scratch keys must be strings")
        acc.scratch.update(scratch)
    return sid, acc
