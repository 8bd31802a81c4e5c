"""Pure builders of the elements a c2s session sends during negotiation (RFC 6120 §5-7)."""

from __future__ import annotations

import binascii
from collections.abc import Iterable

from ..xmpp import ns
from ..xmpp.element import Element


def features(children: Iterable[Element]) -> Element:
    el = Element("features", ns.STREAM)
    el.children.extend(children)
    return el


def starttls_feature(required: bool) -> Element:
    el = Element("starttls", ns.TLS)
    if required:
        el.add("required")
    return el


def mechanisms_feature(mechanisms: Iterable[str]) -> Element:
    el = Element("mechanisms", ns.SASL)
    for mech in mechanisms:
        el.add("mechanism", text=mech)
    return el


def bind_feature() -> Element:
    return Element("bind", ns.BIND)


def session_feature() -> Element:
    el = Element("session", ns.SESSION)
    el.add("optional")
    return el


def proceed() -> Element:
    return Element("proceed", ns.TLS)


PROCEED = proceed().to_string().encode()
"""`proceed()` serialized: the same bytes on every STARTTLS."""


def sasl_data(name: str, data: bytes | None) -> Element:
    """``<challenge/>`` or ``<success/>`` with base64 data (``=`` for empty, RFC 6120 §6.4.2)."""
    el = Element(name, ns.SASL)
    if data is not None:
        el.children.append(binascii.b2a_base64(data, newline=False).decode() if data else "=")
    return el


def sasl_failure(condition: str, text: str | None = None) -> Element:
    el = Element("failure", ns.SASL)
    el.add(condition)
    if text:
        el.add("text", attrs={"xml:lang": "en"}, text=text)
    return el


def decode_sasl_payload(text: str) -> bytes | None:
    """Decode a SASL element's base64 text; ``=`` is an empty response; None when invalid."""
    text = "".join(text.split())
    if text == "=":
        return b""
    try:  # b64decode(text, validate=True) without its Python wrapper
        return binascii.a2b_base64(text, strict_mode=True)
    except ValueError:
        return None


def bind_result(iq_id: str, jid: str) -> Element:
    iq = Element("iq", ns.CLIENT, {"type": "result", "id": iq_id})
    iq.add("bind", ns.BIND).add("jid", text=jid)
    return iq
