"""XEP-0012 last activity: the server's uptime and when a user was last available.

A query to the server answers its uptime. A query to a user's bare JID answers 0 while the
user has an available resource, else the seconds since the last logout (recorded on
UNSET_PRESENCE and SESSION_CLEANUP) with the last status text; only the user and contacts
with a presence subscription ('from') may ask (§3, else ``forbidden``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..core.acc import Acc
from ..core.hooks import (
    DISCO_SM_FEATURES,
    REMOVE_USER,
    ROSTER_GET_SUBSCRIPTION_LISTS,
    SESSION_CLEANUP,
    UNSET_PRESENCE,
)
from ..core.iq import IqSpec
from ..core.modules import HookSpec, Module
from ..stores.last import LastStore
from ..xmpp import ns
from ..xmpp.element import Element
from ..xmpp.errors import StanzaError
from ..xmpp.jid import Jid
from ._common import user_key


class LastModule(Module):
    """XEP-0012: ``jabber:iq:last``."""

    name = "mod_last"

    def __init__(self, ctx: Any, config: Any) -> None:
        super().__init__(ctx, config)
        self.started_at = ctx.clock.now()

    @property
    def store(self) -> LastStore:
        store: LastStore = self.ctx.stores.last
        return store

    def hooks(self) -> Iterable[HookSpec]:
        return (
            HookSpec(UNSET_PRESENCE, self.on_unset_presence),
            HookSpec(SESSION_CLEANUP, self.on_unset_presence),
            HookSpec(REMOVE_USER, self.on_remove_user),
            HookSpec(DISCO_SM_FEATURES, self.on_disco_sm_features),
        )

    def iq_handlers(self) -> Iterable[IqSpec]:
        return (IqSpec(ns.LAST, self.server_last, "local"), IqSpec(ns.LAST, self.user_last, "sm"))

    def features(self) -> Iterable[str]:
        return (ns.LAST,)

    async def server_last(self, acc: Acc, q: Element) -> Element:
        _only_get(acc)
        return _query(int(self.ctx.clock.now() - self.started_at))

    async def user_last(self, acc: Acc, q: Element) -> Element:
        _only_get(acc)
        user, requester = acc.to_jid.bare, acc.from_jid.bare
        if requester != user:
            lists: dict[str, set[Jid]] = {"from": set(), "to": set()}
            await self.ctx.run_hook(ROSTER_GET_SUBSCRIPTION_LISTS, acc.host_type, lists, jid=user)
            if requester not in lists["from"]:
                raise StanzaError("forbidden")
        if any(r.available for r in self.ctx.sessions.user_sessions(user)):
            return _query(0)
        last = await self.store.get_last(user_key(user))
        if last is None:
            raise StanzaError("item-not-found")
        seconds, status = last
        return _query(max(0, int(self.ctx.clock.now()) - seconds), status)

    async def on_unset_presence(self, acc: object, params: dict[str, Any]) -> object:
        jid: Jid = params["jid"]
        status: str = params.get("status") or ""
        await self.store.set_last(user_key(jid.bare), int(self.ctx.clock.now()), status)
        return None

    async def on_remove_user(self, acc: object, params: dict[str, Any]) -> object:
        await self.store.remove_user(user_key(params["jid"].bare))
        return None

    async def on_disco_sm_features(self, acc: list[str], params: dict[str, Any]) -> object:
        if not params.get("node"):
            acc.append(ns.LAST)
        return None


def _only_get(acc: Acc) -> None:
    if acc.element.attrs.get("type") != "get":
        raise StanzaError("not-allowed")


def _query(seconds: int, status: str = "") -> Element:
    q = Element("query", ns.LAST, {"seconds": str(seconds)})
    if status:
        q.children.append(status)
    return q
