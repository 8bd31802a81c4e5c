"""RFC 6121 §2-3 roster management and subscriptions (XEP-0237 versioning, §3.4 pre-approval).

The hard parts: every subscription presence, sent or received, goes through the pure tables
of `states`; a change is stored, pushed to each of the user's resources, and may trigger
presence (the contact gains 'from': send it the user's current presence; loses it: send
unavailable). Items that only carry an inbound request stay hidden from the roster
(COMPAT: MongooseIM), and the request is re-delivered when the user next becomes available.
The roster version is a counter stored with each change; a get with the current ``ver`` is
answered with an empty result.

Concurrency: a user's roster is written from the user's session (sent subscriptions, roster
sets) and from the sender's task (received subscriptions, run by the router), so each
read-modify-write of one user's items holds that user's lock; routing happens outside it (two
users subscribing to each other at once would otherwise wait for each other's lock).
TODO: the lock is per node; a contact on another node writes without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from ...core.acc import Acc
from ...core.hooks import (
    REMOVE_USER,
    ROSTER_GET_SUBSCRIPTION_LISTS,
    ROSTER_IN_SUBSCRIPTION,
    ROSTER_OUT_SUBSCRIPTION,
    USER_AVAILABLE,
)
from ...core.iq import IqSpec
from ...core.modules import HookSpec, Module
from ...stores.roster import RosterItem, RosterStore
from ...xmpp import ns
from ...xmpp.element import Element
from ...xmpp.errors import StanzaError
from ...xmpp.jid import Jid
from .._common import doc, last_presences, presence, user_key
from . import items as wire
from .states import SUBSCRIPTION_TYPES, InResult, OutResult, SubState, inbound, outbound

_Result = TypeVar("_Result", InResult, OutResult)


@dataclass(frozen=True)
class RosterConfig:
    """`[modules.mod_roster]`."""

    versioning: bool = field(
        default=True, metadata=doc("Answer roster gets carrying `ver` (XEP-0237).")
    )
    store_current_id: bool = field(
        default=True, metadata=doc("COMPAT: accepted for MongooseIM configs; always stored.")
    )


ROSTER_READ = "mod_roster_read"
"""Acc scratch key: (bare JID, roster) read by `on_get_lists` for this presence."""


class RosterModule(Module):
    """RFC 6121 rosters and presence subscriptions."""

    name = "mod_roster"
    Config = RosterConfig

    def __init__(self, ctx: Any, config: RosterConfig) -> None:
        super().__init__(ctx, config)
        self.config: RosterConfig = config
        self._push_ids = itertools.count(1)
        self._locks: dict[Jid, tuple[asyncio.Lock, list[int]]] = {}

    @contextlib.asynccontextmanager
    async def _locked(self, user: Jid) -> AsyncIterator[None]:
        """Hold `user`'s roster lock; the lock exists while someone holds or awaits it."""
        lock, users = self._locks.setdefault(user, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if not users[0]:
                del self._locks[user]

    @property
    def store(self) -> RosterStore:
        store: RosterStore = self.ctx.stores.roster
        return store

    def hooks(self) -> Iterable[HookSpec]:
        return (
            HookSpec(ROSTER_OUT_SUBSCRIPTION, self.on_out_subscription),
            HookSpec(ROSTER_IN_SUBSCRIPTION, self.on_in_subscription),
            HookSpec(ROSTER_GET_SUBSCRIPTION_LISTS, self.on_get_lists),
            HookSpec(USER_AVAILABLE, self.on_user_available),
            HookSpec(REMOVE_USER, self.on_remove_user),
        )

    def iq_handlers(self) -> Iterable[IqSpec]:
        return (IqSpec(ns.ROSTER, self.handle_iq, "sm"),)

    def features(self) -> Iterable[str]:
        return (ns.ROSTER,)

    # -- the roster IQ (§2) ------------------------------------------------------------------
    async def handle_iq(self, acc: Acc, q: Element) -> Element | None:
        user = acc.to_jid.bare
        if acc.from_jid.bare != user:
            raise StanzaError("not-allowed", text="not your roster")
        if acc.element.attrs["type"] == "get":
            return await self._get(user, q)
        contact, name, groups, remove = wire.parse_set(q)
        if remove:
            await self._remove(user, contact)
        else:
            await self._update(user, contact, name, groups)
        return None

    async def _get(self, user: Jid, q: Element) -> Element | None:
        version = await self._version(user)
        client_ver = q.attrs.get("ver") if self.config.versioning else None
        if client_ver is not None and client_ver == version:
            return None  # §2.6.3: nothing changed, the pushes follow
        roster = await self.store.get_roster(user_key(user))
        visible = [wire.item_element(i) for i in roster if not wire.state_of(i).hidden]
        return wire.query(visible, version if client_ver is not None else None)

    async def _update(self, user: Jid, contact: Jid, name: str, groups: tuple[str, ...]) -> None:
        async with self._locked(user):
            old = await self.store.get_item(user_key(user), str(contact))
            if old is None:
                item = RosterItem(str(contact), name, groups=groups)
            else:
                item = RosterItem(
                    old.jid, name, old.subscription, old.ask, groups, old.approved, old.askmessage
                )
            await self._save(user, item)

    async def _remove(self, user: Jid, contact: Jid) -> None:
        """§2.5: cancel both subscriptions, delete the item, push the removal."""
        item = await self.store.get_item(user_key(user), str(contact))
        if item is None:
            raise StanzaError("item-not-found")
        state = wire.state_of(item)
        if state.has_from:
            await self._send_unavailable(user, contact)
        if state.has_to or state.pending_out:
            await self.ctx.route(presence(user, contact, "unsubscribe"))
        if state.has_from or state.pending_in:
            await self.ctx.route(presence(user, contact, "unsubscribed"))
        await self._delete(user, item, push=True)

    # -- storage, versions and pushes ----------------------------------------------------------
    async def _version(self, user: Jid) -> str:
        return await self.store.get_version(user_key(user)) or "0"

    async def _next_version(self, user: Jid) -> str:
        current = await self._version(user)
        return str(int(current) + 1) if current.isdigit() else "1"

    async def _save(self, user: Jid, item: RosterItem, push: bool = True) -> None:
        version = await self._next_version(user)
        await self.store.set_item(user_key(user), item, version=version)
        if push and not wire.state_of(item).hidden:
            await self._push(user, wire.item_element(item), version)

    async def _delete(self, user: Jid, item: RosterItem, push: bool) -> None:
        version = await self._next_version(user)
        await self.store.remove_item(user_key(user), item.jid, version=version)
        if push:
            await self._push(user, wire.item_element(item, remove=True), version)

    async def _push(self, user: Jid, item: Element, version: str) -> None:
        """§2.1.6: a roster push to each of the user's resources."""
        ver = version if self.config.versioning else None
        for record in self.ctx.sessions.user_sessions(user):
            iq = Element(
                "iq",
                ns.CLIENT,
                {
                    "type": "set",
                    "id": f"push{next(self._push_ids)}",
                    "from": str(user),
                    "to": str(record.jid),
                },
            )
            iq.children.append(wire.query([item.copy()], ver))
            await self.ctx.route(iq)

    async def _apply(
        self, user: Jid, existing: RosterItem | None, base: RosterItem, new: SubState
    ) -> None:
        """Store a changed state: an item that only held a request vanishes with it."""
        if existing is not None and new == SubState() and wire.state_of(existing).hidden:
            await self._delete(user, existing, push=False)
            return
        await self._save(user, wire.with_state(base, new))

    # -- subscription presences (§3) -------------------------------------------------------------
    async def on_out_subscription(self, acc: Acc, params: dict[str, Any]) -> object:
        """The user sends subscribe/subscribed/unsubscribe/unsubscribed: update, push, route."""
        ptype = acc.element.attrs.get("type", "")
        if ptype not in SUBSCRIPTION_TYPES:
            return None
        user, contact = acc.from_jid.bare, acc.to_jid.bare
        old, result = await self._transition(user, contact, outbound, ptype)
        acc.element.attrs["from"] = str(user)
        acc.element.attrs["to"] = str(contact)
        acc.from_jid, acc.to_jid = user, contact
        acc.scratch["roster_out"] = "routed"
        if result.route:
            await self.ctx.route(acc.element)
        await self._presence_effects(user, contact, old, result.state)
        return None

    async def on_in_subscription(self, acc: Acc, params: dict[str, Any]) -> object:
        """A contact's subscription presence for a local user (the router delivers it if asked)."""
        ptype = acc.element.attrs.get("type", "")
        user, contact = acc.to_jid.bare, acc.from_jid.bare
        if ptype not in SUBSCRIPTION_TYPES or not user.local:
            return None
        ask = (acc.element.find_text("status") or "") if ptype == "subscribe" else None
        old, result = await self._transition(user, contact, inbound, ptype, ask)
        acc.scratch["roster_in"] = result.deliver
        if result.deliver:
            acc.element.attrs["to"] = str(user)
            acc.element.attrs["from"] = str(contact)
        if result.auto_reply:
            await self.ctx.route(presence(user, contact, "subscribed"))
        await self._presence_effects(user, contact, old, result.state)
        return None

    async def _transition(
        self,
        user: Jid,
        contact: Jid,
        step: Callable[[SubState, str], _Result],
        ptype: str,
        askmessage: str | None = None,
    ) -> tuple[SubState, _Result]:
        """Apply one subscription presence to `user`'s item for `contact` (RFC 6121 App. A),
        read-modify-write under the user's lock; the old state and the step's result."""
        async with self._locked(user):
            item = await self.store.get_item(user_key(user), str(contact))
            old = wire.state_of(item)
            result = step(old, ptype)
            if result.changed:
                base = item if item is not None else RosterItem(str(contact))
                if askmessage is not None:
                    base = replace(base, askmessage=askmessage)
                await self._apply(user, item, base, result.state)
        return old, result

    async def _presence_effects(
        self, user: Jid, contact: Jid, old: SubState, new: SubState
    ) -> None:
        """§3.1.5, §3.2.2, §3.3.3: presence follows the contact's 'from' subscription."""
        if new.has_from and not old.has_from:
            for _, pres in last_presences(self.ctx.sessions, user):
                pres.attrs["to"] = str(contact)
                await self.ctx.route(pres)
        elif old.has_from and not new.has_from:
            await self._send_unavailable(user, contact)

    async def _send_unavailable(self, user: Jid, contact: Jid) -> None:
        for record, _ in last_presences(self.ctx.sessions, user):
            await self.ctx.route(presence(record.jid, contact, "unavailable"))

    # -- other hooks -----------------------------------------------------------------------------
    async def on_get_lists(self, acc: dict[str, set[Jid]], params: dict[str, Any]) -> object:
        """Fill ``acc['from']``/``acc['to']`` with the contacts the presence goes to/comes from.

        With ``params['scratch']`` (an initial presence's Acc scratch) the roster read is kept
        there for `on_user_available`, which runs for the same presence right after."""
        jid: Jid = params["jid"]
        roster = await self.store.get_roster(user_key(jid.bare))
        scratch = params.get("scratch")
        if scratch is not None:
            scratch[ROSTER_READ] = (jid.bare, roster)
        for item in roster:
            state = wire.state_of(item)
            contact = Jid.parse(item.jid)
            if state.has_from:
                acc.setdefault("from", set()).add(contact)
            if state.has_to:
                acc.setdefault("to", set()).add(contact)
        return None

    async def on_user_available(self, acc: Acc, params: dict[str, Any]) -> object:
        """§3.1.3: re-deliver pending inbound subscription requests to a new available session."""
        session = params["session"]
        user = session.jid.bare
        read = acc.scratch.pop(ROSTER_READ, None)
        if read is not None and read[0] == user:
            roster = read[1]  # read moments ago for this very presence (on_get_lists)
        else:
            roster = await self.store.get_roster(user_key(user))
        for item in roster:
            if not wire.state_of(item).pending_in:
                continue
            el = presence(item.jid, session.jid, "subscribe")
            if item.askmessage:
                el.add("status", text=item.askmessage)
            req = Acc(
                el,
                Jid.parse(item.jid),
                session.jid,
                host_type=acc.host_type,
                timestamp=acc.timestamp,
            )
            await self.ctx.sessions.deliver(session.record, req)
        return None

    async def on_remove_user(self, acc: object, params: dict[str, Any]) -> object:
        """Cancel the removed user's subscriptions, then forget the roster."""
        user: Jid = params["jid"].bare
        for item in await self.store.get_roster(user_key(user)):
            state = wire.state_of(item)
            contact = Jid.parse(item.jid)
            if state.has_to or state.pending_out:
                await self.ctx.route(presence(user, contact, "unsubscribe"))
            if state.has_from or state.pending_in:
                await self.ctx.route(presence(user, contact, "unsubscribed"))
        await self.store.remove_user(user_key(user))
        return None
