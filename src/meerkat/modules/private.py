"""XEP-0049 private XML storage: a user keeps XML under namespaces of their choosing.

Only the user may read or write their storage (``forbidden`` otherwise). Each child of the
query is one entry, keyed by its namespace; the namespaces of the protocol itself
(``jabber:iq:private``, ``jabber:client``, ``jabber:server``, none) are ``not-acceptable``.
A get of an unknown namespace returns the requested element as it was sent (empty).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from ..core.acc import Acc
from ..core.hooks import REMOVE_USER
from ..core.iq import IqSpec
from ..core.modules import HookSpec, Module
from ..stores.private import PrivateStore
from ..xmpp import ns
from ..xmpp.element import Element
from ..xmpp.errors import StanzaError, StreamError
from ..xmpp.stream import parse_element
from ._common import user_key

log = logging.getLogger(__name__)
RESERVED = frozenset({ns.PRIVATE, ns.CLIENT, ns.SERVER, ""})


class PrivateModule(Module):
    """XEP-0049: ``jabber:iq:private``."""

    name = "mod_private"

    @property
    def store(self) -> PrivateStore:
        store: PrivateStore = self.ctx.stores.private
        return store

    def hooks(self) -> Iterable[HookSpec]:
        return (HookSpec(REMOVE_USER, self.on_remove_user),)

    def iq_handlers(self) -> Iterable[IqSpec]:
        return (IqSpec(ns.PRIVATE, self.handle, "sm"),)

    def features(self) -> Iterable[str]:
        return (ns.PRIVATE,)

    async def handle(self, acc: Acc, q: Element) -> Element | None:
        user = acc.to_jid.bare
        if acc.from_jid.bare != user:
            raise StanzaError("forbidden", text="only your own private storage")
        entries = list(q.elements())
        if not entries:
            raise StanzaError("bad-request", text="nothing to store or retrieve")
        if any(e.xmlns in RESERVED for e in entries):
            raise StanzaError("not-acceptable", text="reserved namespace")
        key = user_key(user)
        if acc.element.attrs.get("type") == "set":
            await self.store.set_many(key, {e.xmlns: str(e) for e in entries})
            return None
        reply = Element("query", ns.PRIVATE)
        for entry in entries:
            reply.children.append(await self._get(key, entry))
        return reply

    async def _get(self, key: Any, requested: Element) -> Element:
        stored = await self.store.get(key, requested.xmlns)
        if stored is not None:
            try:
                return parse_element(stored)
            except StreamError:
                log.warning("private_xml_unparsable ns=%s", requested.xmlns)
        return requested.copy()

    async def on_remove_user(self, acc: object, params: dict[str, Any]) -> object:
        await self.store.remove_user(user_key(params["jid"].bare))
        return None
