"""RFC 6121 §4 presence: broadcast, probes, directed presence, unavailable on disconnect.

The c2s runs USER_SEND_PRESENCE for every presence its client sends. This module takes:

- broadcast presence (no ``to``): records it on the session, sends it to the contacts with a
  'from' subscription and to the user's own available resources; an initial presence also
  probes the contacts with a 'to' subscription, shows the user's other resources to the new
  one, and runs USER_AVAILABLE and RESEND_OFFLINE_MESSAGES. Unavailable goes to the same
  contacts and to every directed-presence target, then UNSET_PRESENCE runs. STOP: the c2s
  does not route a broadcast.
- subscription presences: ROSTER_OUT_SUBSCRIPTION (mod_roster updates, pushes and routes);
  without mod_roster this module routes them to the contact's bare JID. STOP.
- directed presence (``to`` set, available/unavailable): remembered in the session's state,
  then routed by the c2s.

PRESENCE_PROBE answers probes for a local user with the presence of each available
resource, to contacts with a 'from' subscription only. SM_REMOVE_CONNECTION broadcasts
unavailable for a session that closed while available.

The subscription lists read for a session's last broadcast are kept in its state and used
again for its unavailable presence (a logout then reads no roster), until a roster push
reaches the session (USER_RECEIVE_PACKET): every change of a 'from' or 'to' subscription is
pushed to each of the user's sessions, on any node. A change whose push is still on its way
(on the cluster link or in the session's mailbox) when the session ends is missed, as in
MongooseIM, whose c2s keeps these lists in its state the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from types import MappingProxyType
from typing import Any

from ..core.acc import Acc
from ..core.client import ClientSession
from ..core.hooks import (
    PRESENCE_PROBE,
    RESEND_OFFLINE_MESSAGES,
    ROSTER_GET_SUBSCRIPTION_LISTS,
    ROSTER_OUT_SUBSCRIPTION,
    SM_REMOVE_CONNECTION,
    STOP,
    UNSET_PRESENCE,
    USER_AVAILABLE,
    USER_RECEIVE_PACKET,
    USER_SEND_PRESENCE,
)
from ..core.modules import HookSpec, Module
from ..xmpp import ns
from ..xmpp.element import Element
from ..xmpp.jid import Jid
from ._common import last_presences, presence, session_state

SUBSCRIPTION_TYPES = frozenset({"subscribe", "subscribed", "unsubscribe", "unsubscribed"})
KEY = "mod_presence"
LISTS = "lists"
"""Session state key: the subscription lists read for the last broadcast (None: read again)."""
SubscriptionLists = Mapping[str, Set[Jid]]
NO_SUBSCRIPTIONS: SubscriptionLists = MappingProxyType({"from": frozenset(), "to": frozenset()})
"""What a session with no 'from' and no 'to' subscription keeps: one shared, read-only value
(two empty sets and their dict were ~0.5 KiB for every such session, idle or not)."""


class PresenceModule(Module):
    """RFC 6121 presence handling for local users."""

    name = "mod_presence"

    def hooks(self) -> Iterable[HookSpec]:
        return (
            HookSpec(USER_SEND_PRESENCE, self.on_user_send_presence),
            HookSpec(PRESENCE_PROBE, self.on_presence_probe),
            HookSpec(SM_REMOVE_CONNECTION, self.on_remove_connection),
            HookSpec(USER_RECEIVE_PACKET, self.on_user_receive_packet),
        )

    # -- what the client sends ---------------------------------------------------------------
    async def on_user_send_presence(self, acc: Acc, params: dict[str, Any]) -> object:
        session: ClientSession = params["session"]
        el = acc.element
        ptype = el.attrs.get("type")
        if ptype in SUBSCRIPTION_TYPES:
            if "to" in el.attrs:
                await self._subscription(acc)
            return STOP
        if "to" not in el.attrs:
            if ptype is None:
                await self._available(acc, session)
            elif ptype == "unavailable":
                await self._unavailable(session, el)
            return STOP  # probes and errors to nobody are dropped
        if ptype in (None, "unavailable"):
            self._track_directed(session, acc.to_jid, ptype is None)
        return None

    async def _subscription(self, acc: Acc) -> None:
        acc.scratch.pop("roster_out", None)
        await self.ctx.run_hook(ROSTER_OUT_SUBSCRIPTION, acc.host_type, acc)
        if acc.scratch.get("roster_out") == "routed":
            return
        el = acc.element
        el.attrs["from"] = str(acc.from_jid.bare)
        el.attrs["to"] = str(acc.to_jid.bare)
        await self.ctx.route(el)

    async def _available(self, acc: Acc, session: ClientSession) -> None:
        initial = not session.available
        await session.set_presence(acc.element)
        # One roster read per initial presence: mod_roster leaves it in the Acc's scratch for
        # USER_AVAILABLE (pending subscription requests) below.
        lists = await self.subscription_lists(session.jid, acc.host_type, acc.scratch)
        session_state(session, KEY)[LISTS] = (
            lists if lists["from"] or lists["to"] else NO_SUBSCRIPTIONS
        )
        await self._broadcast(session.jid, acc.element, lists["from"])
        if not initial:
            return
        for contact in sorted(lists["to"]):
            await self.ctx.route(presence(session.jid, contact, "probe"))
        for record, pres in last_presences(self.ctx.sessions, session.jid):
            if record.sid != session.sid:
                pres.attrs["to"] = str(session.jid)
                await self.ctx.route(pres)
        await self.ctx.run_hook(USER_AVAILABLE, acc.host_type, acc, session=session)
        await self.ctx.run_hook(RESEND_OFFLINE_MESSAGES, acc.host_type, None, session=session)

    async def _unavailable(self, session: ClientSession, el: Element) -> None:
        was_available = session.available
        if was_available:
            lists = await self._session_lists(session)
            await session.set_presence(None)
            await self._broadcast(session.jid, el, lists["from"])
        await self._to_directed(session, el)
        if was_available:
            status = el.find_text("status") or ""
            await self.ctx.run_hook(
                UNSET_PRESENCE, session.host_type, None,
                session=session, jid=session.jid, sid=session.sid, status=status,
            )  # fmt: skip

    async def _broadcast(self, jid: Jid, el: Element, contacts: Iterable[Jid]) -> None:
        """§4.2.2/§4.4.2: to each contact's bare JID and to the user's own resources."""
        for target in [*sorted(contacts), jid.bare]:
            copy = el.copy()
            copy.attrs["from"] = str(jid)
            copy.attrs["to"] = str(target)
            await self.ctx.route(copy)

    # -- directed presence (§4.6) ---------------------------------------------------------------
    def _track_directed(self, session: ClientSession, target: Jid, available: bool) -> None:
        directed: set[Jid] = session_state(session, KEY).setdefault("directed", set())
        if available:
            directed.add(target)
        else:
            directed.discard(target)

    async def _to_directed(self, session: ClientSession, el: Element) -> None:
        directed: set[Jid] = session_state(session, KEY).pop("directed", set())
        for target in sorted(directed):
            copy = el.copy()
            copy.attrs["from"] = str(session.jid)
            copy.attrs["to"] = str(target)
            await self.ctx.route(copy)

    # -- probes (§4.3) --------------------------------------------------------------------------
    async def on_presence_probe(self, acc: Acc, params: dict[str, Any]) -> object:
        user = acc.to_jid
        if not user.local:
            return STOP  # probes to the server itself: nothing to tell
        prober = acc.from_jid
        if prober.bare != user.bare:
            lists = await self.subscription_lists(user, acc.host_type)
            if prober.bare not in lists["from"]:
                return STOP  # §4.3.2: no subscription, no presence
        answered = False
        for record, pres in last_presences(self.ctx.sessions, user.bare):
            if user.resource and record.jid.resource != user.resource:
                continue
            pres.attrs["to"] = str(prober)
            await self.ctx.route(pres)
            answered = True
        if not answered:
            await self.ctx.route(presence(user, prober, "unavailable"))
        return STOP

    # -- disconnect -----------------------------------------------------------------------------
    async def on_remove_connection(self, acc: object, params: dict[str, Any]) -> object:
        """A session closed: unavailable to contacts (if it was available) and directed targets."""
        session: ClientSession | None = params.get("session")
        jid: Jid = params["jid"]
        el = Element("presence", "jabber:client", {"type": "unavailable"})
        if params.get("was_available"):
            if session is not None:
                lists = await self._session_lists(session)
            else:  # a session of a lost node (cluster cleanup)
                lists = await self.subscription_lists(jid, jid.domain)
            await self._broadcast(jid, el, lists["from"])
        if session is not None:
            await self._to_directed(session, el)
        return None

    async def on_user_receive_packet(self, acc: Acc, params: dict[str, Any]) -> object:
        """A roster push on its way to the client: the kept subscription lists may be stale."""
        el = acc.element
        if (
            el.name == "iq"
            and el.attrs.get("type") == "set"
            and el.find("query", ns.ROSTER) is not None
        ):
            session: ClientSession = params["session"]
            session_state(session, KEY).pop(LISTS, None)
        return None

    # -- helpers --------------------------------------------------------------------------------
    async def _session_lists(self, session: ClientSession) -> SubscriptionLists:
        """The lists kept from the session's last broadcast, else read from the roster."""
        lists: SubscriptionLists | None = session_state(session, KEY).pop(LISTS, None)
        if lists is None:
            lists = await self.subscription_lists(session.jid, session.host_type)
        return lists

    async def subscription_lists(
        self, jid: Jid, host_type: str, scratch: dict[str, Any] | None = None
    ) -> dict[str, set[Jid]]:
        """The bare JIDs with a 'from' and a 'to' subscription (ROSTER_GET_SUBSCRIPTION_LISTS).

        ``scratch``: the current presence Acc's, where the roster module may keep what it read.
        """
        lists: dict[str, set[Jid]] = {"from": set(), "to": set()}
        if scratch is None:
            await self.ctx.run_hook(ROSTER_GET_SUBSCRIPTION_LISTS, host_type, lists, jid=jid.bare)
        else:
            await self.ctx.run_hook(
                ROSTER_GET_SUBSCRIPTION_LISTS, host_type, lists, jid=jid.bare, scratch=scratch
            )
        return lists
