"""Pure parts of XEP-0388 (SASL2), XEP-0386 (Bind 2) and XEP-0440 (channel-binding types).

- `parse_authenticate` reads a client's ``<authenticate/>``: mechanism, initial response,
  ``<user-agent id>``, and the inline requests (``<bind/>``, SM ``<resume/>``, FAST ...).
- Builders for the ``<authentication/>`` feature and ``<challenge/>``, ``<success/>``,
  ``<failure/>``; SASL2 carries plain base64 (no ``=`` for empty, unlike RFC 6120).
- `bind2_resource`: XEP-0386 suggests deriving the resource from the user-agent id so that
  one device always gets the same resource (and can replace its own stale session); we use
  ``<tag>.<hash>`` where the hash covers the account and the id (the id itself, which the
  client keeps private, never appears in the JID).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from ..xmpp import ns
from ..xmpp.element import Element
from ..xmpp.jid import Jid, JidError, prep_resource

FAST = "urn:xmpp:fast:0"
SASL_CB = "urn:xmpp:sasl-cb:0"
MAX_USER_AGENT_ID = 250
"""Longer ids are refused (they are stored as FAST token keys)."""
_INVALID = object()


@dataclass(frozen=True, slots=True)
class Sasl2Request:
    """A parsed ``<authenticate xmlns='urn:xmpp:sasl:2'/>``."""

    element: Element
    mechanism: str
    initial_response: bytes | None
    """None when absent; b"" for an empty ``<initial-response/>``."""
    bad_encoding: bool
    user_agent_id: str | None
    software: str | None
    device: str | None
    bind: Element | None
    """The Bind 2 request, if any."""


def parse_authenticate(el: Element) -> Sasl2Request:
    """Read an ``<authenticate/>``; encoding problems are reported, not raised."""
    initial: bytes | None = None
    bad = False
    response = el.find("initial-response", ns.SASL2)
    if response is not None:
        decoded = decode_payload(response.text)
        if decoded is None:
            bad = True
        else:
            initial = decoded
    agent = el.find("user-agent", ns.SASL2)
    agent_id = software = device = None
    if agent is not None:
        agent_id = (agent.attrs.get("id") or "").strip() or None
        if agent_id is not None and len(agent_id) > MAX_USER_AGENT_ID:
            agent_id = None
        software = agent.find_text("software", ns.SASL2)
        device = agent.find_text("device", ns.SASL2)
    return Sasl2Request(
        element=el,
        mechanism=el.attrs.get("mechanism", ""),
        initial_response=initial,
        bad_encoding=bad,
        user_agent_id=agent_id,
        software=software,
        device=device,
        bind=el.find("bind", ns.BIND2),
    )


def decode_payload(text: str) -> bytes | None:
    """SASL2 base64 (whitespace ignored, empty = empty data); None when invalid."""
    text = "".join(text.split())
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        return None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# -- builders ------------------------------------------------------------------------------------
def authentication_feature(mechanisms: Iterable[str], inline: Iterable[Element]) -> Element:
    """``<authentication/>`` with the mechanisms and the inline features."""
    el = Element("authentication", ns.SASL2)
    for mech in mechanisms:
        el.add("mechanism", text=mech)
    children = list(inline)
    if children:
        el.add("inline").children.extend(children)
    return el


def bind2_feature(features: Iterable[Element]) -> Element:
    """Bind 2's entry in SASL2's ``<inline/>``, listing what it can enable inline."""
    el = Element("bind", ns.BIND2)
    children = list(features)
    if children:
        el.add("inline").children.extend(children)
    return el


def channel_binding_feature(types: Iterable[str]) -> Element:
    """XEP-0440: the channel-binding types this connection supports."""
    el = Element("sasl-channel-binding", SASL_CB)
    for cb in types:
        el.add("channel-binding", attrs={"type": cb})
    return el


def challenge(data: bytes) -> Element:
    return Element("challenge", ns.SASL2, children=[_b64(data)] if data else [])


def success(additional: bytes | None, identifier: str, extra: Iterable[Element]) -> Element:
    """``<success/>``: additional data (SCRAM server-final, HT responder), the authorization
    identifier (full JID when bound or resumed, else bare), then the inline results."""
    el = Element("success", ns.SASL2)
    if additional:
        el.add("additional-data", text=_b64(additional))
    el.add("authorization-identifier", text=identifier)
    el.children.extend(extra)
    return el


def failure(condition: str, text: str | None = None) -> Element:
    """``<failure/>`` with an RFC 6120 §6.5 condition."""
    el = Element("failure", ns.SASL2)
    el.add(condition, ns.SASL)
    if text:
        el.add("text", text=text)
    return el


def bound(results: Iterable[Element]) -> Element:
    el = Element("bound", ns.BIND2)
    el.children.extend(results)
    return el


# -- Bind 2 --------------------------------------------------------------------------------------
def bind2_resource(
    bare: Jid, tag: str | None, user_agent_id: str | None, random_suffix: str
) -> str:
    """The resource for a Bind 2 request: ``tag.suffix`` (or ``suffix`` without a valid tag).

    The suffix is stable for one account and user-agent id, else `random_suffix`.
    """
    if user_agent_id:
        material = f"meerkat-bind2\x00{bare}\x00{user_agent_id}".encode()
        suffix = hashlib.sha256(material).hexdigest()[:16]
    else:
        suffix = random_suffix
    if tag:
        try:
            prefix = prep_resource(tag.strip())
        except JidError:
            prefix = ""
        if prefix and len(prefix) <= 200:
            return f"{prefix}.{suffix}"
    return suffix
