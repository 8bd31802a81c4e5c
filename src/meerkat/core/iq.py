"""IQ handling (RFC 6120 §8.2.3): handlers by payload namespace, and IQs the server sends.

Two scopes, as in MongooseIM: ``local`` handlers answer IQs addressed to a server domain
(``to="localhost"``); ``sm`` handlers answer IQs addressed to a user's bare JID, which is also
where a client's IQ without ``to`` goes. A handler returns the result payload (or None for an
empty result) or raises `StanzaError`. Requests with no handler get ``service-unavailable``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from ..xmpp.element import Element
from ..xmpp.errors import StanzaError, error_reply
from .acc import Acc

log = logging.getLogger(__name__)

IqScope = Literal["local", "sm"]
IqHandler = Callable[[Acc, Element], Awaitable[Element | None]]


@dataclass(frozen=True, slots=True)
class IqSpec:
    """A module's IQ handler declaration."""

    xmlns: str
    handler: IqHandler
    scope: IqScope = "local"


def iq_result(request: Element, payload: Element | None = None) -> Element:
    """The ``type="result"`` reply to an IQ request."""
    attrs = {"type": "result", "id": request.attrs.get("id", "")}
    if "from" in request.attrs:
        attrs["to"] = request.attrs["from"]
    if "to" in request.attrs:
        attrs["from"] = request.attrs["to"]
    reply = Element("iq", request.xmlns, attrs)
    if payload is not None:
        reply.children.append(payload)
    return reply


class IqDispatcher:
    """Finds the handler for an IQ request and builds the reply; tracks server requests."""

    def __init__(self) -> None:
        self._handlers: dict[tuple[IqScope, str], tuple[IqHandler, object]] = {}
        self._pending: dict[str, asyncio.Future[Element]] = {}

    def register(self, spec: IqSpec, owner: object) -> None:
        self._handlers[(spec.scope, spec.xmlns)] = (spec.handler, owner)

    def remove_owner(self, owner: object) -> None:
        for key, (_, o) in list(self._handlers.items()):
            if o is owner:
                del self._handlers[key]

    def has_handler(self, scope: IqScope, xmlns: str) -> bool:
        return (scope, xmlns) in self._handlers

    async def handle(self, scope: IqScope, acc: Acc) -> Element | None:
        """Answer an IQ; returns the reply to route (None when nothing must be sent)."""
        iq = acc.element
        iq_type = iq.attrs.get("type")
        if iq_type in ("result", "error"):
            self._complete(iq)
            return None
        if iq_type not in ("get", "set") or "id" not in iq.attrs:
            return error_reply(iq, StanzaError("bad-request"))
        payloads = list(iq.elements())
        if len(payloads) != 1:
            return error_reply(iq, StanzaError("bad-request", text="an IQ request has one child"))
        query = payloads[0]
        entry = self._handlers.get((scope, query.xmlns))
        if entry is None:
            return error_reply(iq, StanzaError("service-unavailable"))
        try:
            payload = await entry[0](acc, query)
        except StanzaError as exc:
            return error_reply(iq, exc)
        except Exception:
            log.exception("iq_handler_crashed xmlns=%s", query.xmlns)
            return error_reply(iq, StanzaError("internal-server-error"))
        return iq_result(iq, payload)

    # -- requests the server sends (ping) ------------------------------------------------------
    def expect_reply(self, iq_id: str) -> asyncio.Future[Element]:
        fut: asyncio.Future[Element] = asyncio.get_running_loop().create_future()
        self._pending[iq_id] = fut
        fut.add_done_callback(lambda _: self._pending.pop(iq_id, None))
        return fut

    def _complete(self, iq: Element) -> None:
        fut = self._pending.get(iq.attrs.get("id", ""))
        if fut is not None and not fut.done():
            fut.set_result(iq)
