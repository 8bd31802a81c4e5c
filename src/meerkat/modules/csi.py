"""mod_csi: XEP-0352 Client State Indication.

A client that announced ``<csi xmlns="urn:xmpp:csi:0"/>`` after authentication
(C2S_STREAM_FEATURES) may say ``<inactive/>`` or ``<active/>`` (USER_SEND_XMLEL), or start
inactive with ``<inactive/>`` inside a Bind 2 request (XEP-0386). While a session is inactive,
XMPP_PRESEND_ELEMENT holds what can wait:

- available and unavailable presence, only the newest per sender full JID (an older one is
  dropped and the newer one takes its turn at the end of the queue);
- messages that carry only chat states (XEP-0085: no body, no other payload), also as the
  forwarded message of a carbon copy.

Anything else that is a stanza is urgent: the held stanzas are written first, in the order
they were held, then the urgent one. When one more stanza would exceed ``buffer_max`` the held
ones are written and that one goes straight out too; ``<active/>`` writes everything held.
Non-stanza elements (stream management ``<r/>``/``<a/>``) pass untouched. What is held when
a session ends for good is dropped on purpose: presence to a gone session and bare chat states
are not worth storing (mod_offline would not store them either); on XEP-0198 resumption the
held stanzas move with the session's module state.

The hard part is the interplay with stream management, which counts (and keeps for
resending) stanzas in the same XMPP_PRESEND_ELEMENT chain. A held stanza must be counted when
it is written, not when it is held (dropping a superseded presence would otherwise desync the
``h`` counters), so this handler runs before stream management's (priority 45 < 50) and STOPs
the chain for what it holds; held stanzas are later written through the session's own
``send_element`` (the whole pre-send chain, this handler letting them pass while
``flushing``), so each one is counted exactly once, when it really leaves.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from ..core.client import ClientSession
from ..core.hooks import (
    BIND2_ENABLE_FEATURES,
    BIND2_STREAM_FEATURES,
    C2S_STREAM_FEATURES,
    STOP,
    USER_SEND_XMLEL,
    XMPP_PRESEND_ELEMENT,
)
from ..core.modules import HookSpec, Module
from ..xmpp import ns
from ..xmpp.element import Element
from ._common import doc, session_state
from .carbons import unwrap

KEY = "mod_csi"
PRESEND_PRIORITY = 45
"""Before stream management's XMPP_PRESEND_ELEMENT handler (50): see the module docstring."""
CHATSTATES = "http://jabber.org/protocol/chatstates"
STANZA_NAMESPACES = frozenset({ns.CLIENT, ns.SERVER, ""})
QUIET_PAYLOADS = frozenset({CHATSTATES, ns.HINTS, ns.STANZA_ID})
"""Namespaces a held chat-state message may carry besides its chat state (and <thread/>)."""


@dataclass(frozen=True)
class CsiConfig:
    """`[modules.mod_csi]`."""

    buffer_max: int = field(
        default=20,
        metadata=doc(
            "Stanzas held for an inactive client; one more writes them all (0: hold nothing)."
        ),
    )


class CsiModule(Module):
    """XEP-0352: hold presence updates and chat states while the client is inactive."""

    name = "mod_csi"
    Config = CsiConfig

    def __init__(self, ctx: Any, config: CsiConfig) -> None:
        super().__init__(ctx, config)
        self.config: CsiConfig = config

    def hooks(self) -> Iterable[HookSpec]:
        return (
            HookSpec(C2S_STREAM_FEATURES, self.on_stream_features),
            HookSpec(USER_SEND_XMLEL, self.on_user_send_xmlel),
            HookSpec(XMPP_PRESEND_ELEMENT, self.on_presend, PRESEND_PRIORITY),
            HookSpec(BIND2_STREAM_FEATURES, self.on_bind2_features),
            HookSpec(BIND2_ENABLE_FEATURES, self.on_bind2_enable),
        )

    # -- negotiation ------------------------------------------------------------------------
    async def on_stream_features(self, acc: list[Element], params: dict[str, Any]) -> object:
        acc.append(Element("csi", ns.CSI))
        return None

    async def on_bind2_features(self, acc: list[Element], params: dict[str, Any]) -> object:
        acc.append(Element("feature", ns.BIND2, {"var": ns.CSI}))
        return None

    async def on_bind2_enable(self, acc: Element, params: dict[str, Any]) -> object:
        """XEP-0386: the session begins in the state the bind request names."""
        state = session_state(params["session"], KEY)
        if acc.find("inactive", ns.CSI) is not None:
            state["inactive"] = True
        elif acc.find("active", ns.CSI) is not None:
            state["inactive"] = False
        return None

    async def on_user_send_xmlel(self, acc: Element, params: dict[str, Any]) -> object:
        if acc.xmlns != ns.CSI or acc.name not in ("active", "inactive"):
            return None
        session: ClientSession = params["session"]
        state = session_state(session, KEY)
        state["inactive"] = acc.name == "inactive"
        if acc.name == "active":
            await self.flush(session)
        return STOP

    # -- holding ----------------------------------------------------------------------------
    async def on_presend(self, acc: Element, params: dict[str, Any]) -> object:
        session: ClientSession = params["session"]
        state = session_state(session, KEY)
        if not state.get("inactive") or state.get("flushing"):
            return None
        if acc.name not in ("message", "presence", "iq") or acc.xmlns not in STANZA_NAMESPACES:
            return None  # a nonza: neither held nor urgent
        kind = hold_kind(acc)
        if kind is None:
            await self.flush(session)
            return None
        held: dict[tuple[str, str], Element] = state.setdefault("held", {})
        key: tuple[str, str]
        if kind == "presence":
            key = (kind, acc.attrs.get("from", ""))
            held.pop(key, None)  # only the newest presence of a sender is kept
        else:
            seq: int = state.get("seq", 0)
            state["seq"] = seq + 1
            key = (kind, str(seq))
        if len(held) >= self.config.buffer_max:
            await self.flush(session)
            return None
        held[key] = acc
        return STOP

    async def flush(self, session: ClientSession) -> None:
        """Write every held stanza, in order, through the session's pre-send chain."""
        state = session_state(session, KEY)
        held: dict[tuple[str, str], Element] = state.pop("held", {})
        if not held:
            return
        state["flushing"] = True
        try:
            for el in held.values():
                await self._write(session, el)
        finally:
            state["flushing"] = False

    async def _write(self, session: ClientSession, el: Element) -> None:
        # The c2s writes routed stanzas with `send_element`, which runs XMPP_PRESEND_ELEMENT
        # (stream management counts there) and then writes; `send` writes without the chain.
        await session.send_element(el)

    def held(self, session: ClientSession) -> list[Element]:
        """The stanzas held for a session, in the order they will be written."""
        return list(session_state(session, KEY).get("held", {}).values())


def hold_kind(el: Element) -> Literal["presence", "chatstate"] | None:
    """What an inactive client can wait for: a presence update or a chat state; None: urgent."""
    if el.name == "presence":
        return "presence" if el.attrs.get("type") in (None, "unavailable") else None
    if el.name == "message" and el.attrs.get("type") != "error":
        inner = unwrap(el)
        if only_chat_state(inner if inner is not None else el):
            return "chatstate"
    return None


def only_chat_state(msg: Element) -> bool:
    """A XEP-0085 notification with nothing else worth waking the client for."""
    has_state = False
    for child in msg.elements():
        if child.xmlns == CHATSTATES:
            has_state = True
        elif child.name != "thread" and child.xmlns not in QUIET_PAYLOADS:
            return False
    return has_state


__all__ = ["CsiConfig", "CsiModule", "hold_kind", "only_chat_state"]
