"""The router: decides where a stanza goes (RFC 6120 §10, RFC 6121 §8).

Local domain -> the server itself (IQ handlers, probes) or a local user (RFC 6121 §8.5 rules on
resources and priorities, offline storage when nobody can take a message); a registered service
or component domain -> its handler; anything else -> federation (not available yet:
``remote-server-not-found``). Errors are never answered with errors.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection

from ..xmpp.element import Element
from ..xmpp.errors import StanzaError, error_reply, is_error
from ..xmpp.jid import Jid, JidError
from .acc import Acc
from .clock import Clock
from .hooks import (
    FILTER_LOCAL_PACKET,
    OFFLINE_MESSAGE,
    PRESENCE_PROBE,
    ROSTER_IN_SUBSCRIPTION,
    HookRegistry,
)
from .iq import IqDispatcher
from .sessions import SessionManager, SessionRecord, highest_priority

log = logging.getLogger(__name__)

RouteHandler = Callable[[Acc], Awaitable[None]]
UserExists = Callable[[Jid], Awaitable[bool]]
SUBSCRIPTION_TYPES = frozenset({"subscribe", "subscribed", "unsubscribe", "unsubscribed"})


class Router:
    """Routes stanzas between local users, the server, local services and (later) remote hosts."""

    def __init__(
        self,
        hosts: Collection[str],
        sessions: SessionManager,
        iq: IqDispatcher,
        hooks: HookRegistry,
        clock: Clock,
        user_exists: UserExists,
    ) -> None:
        self.hosts = set(hosts)
        self.sessions = sessions
        self.iq = iq
        self.hooks = hooks
        self.clock = clock
        self.user_exists = user_exists
        self._services: dict[str, tuple[RouteHandler, object]] = {}

    # -- services and components -------------------------------------------------------------
    def register_service(self, domain: str, handler: RouteHandler, owner: object) -> None:
        """Route every stanza for ``domain`` (``muc.localhost``, a component) to a handler."""
        self._services[domain] = (handler, owner)

    def remove_owner(self, owner: object) -> None:
        for domain, (_, o) in list(self._services.items()):
            if o is owner:
                del self._services[domain]

    def is_local(self, domain: str) -> bool:
        return domain in self.hosts or domain in self._services

    # -- entry points --------------------------------------------------------------------------
    def new_acc(self, element: Element, from_jid: Jid, to_jid: Jid) -> Acc:
        host = to_jid.domain if to_jid.domain in self.hosts else from_jid.domain
        return Acc(element, from_jid, to_jid, host_type=host, timestamp=self.clock.now())

    async def route_element(self, element: Element) -> None:
        """Route a stanza built by the server; its ``from`` and ``to`` must be set."""
        try:
            from_jid = Jid.parse(element.attrs["from"])
            to_jid = Jid.parse(element.attrs["to"])
        except (KeyError, JidError):
            log.warning("route_element_without_addresses stanza=%s", str(element)[:200])
            return
        await self.route(self.new_acc(element, from_jid, to_jid))

    async def route(self, acc: Acc) -> None:
        domain = acc.to_jid.domain
        if domain in self.hosts:
            hooks = self.hooks
            if hooks.has_handlers(FILTER_LOCAL_PACKET, acc.host_type) and await hooks.run(
                FILTER_LOCAL_PACKET, acc.host_type, acc
            ):
                return
            if acc.to_jid.local:
                await self._to_user(acc)
            else:
                await self._to_server(acc)
            return
        service = self._services.get(domain)
        if service is not None:
            await service[0](acc)
            return
        await self.bounce(acc, StanzaError("remote-server-not-found"))

    async def bounce(self, acc: Acc, error: StanzaError) -> None:
        """Answer a stanza with an error, unless it is an error itself."""
        if is_error(acc.element):
            return
        reply = error_reply(acc.element, error)
        reply.attrs["from"] = str(acc.to_jid)
        reply.attrs["to"] = str(acc.from_jid)
        await self.route(self.new_acc(reply, acc.to_jid, acc.from_jid))

    # -- the server itself ---------------------------------------------------------------------
    async def _to_server(self, acc: Acc) -> None:
        name = acc.element.name
        if name == "iq":
            reply = await self.iq.handle("local", acc)
            if reply is not None:
                await self._reply(acc, reply)
        elif name == "presence" and acc.element.attrs.get("type") == "probe":
            await self.hooks.run(PRESENCE_PROBE, acc.host_type, acc)
        # Messages and other presences to a bare server JID are not for anyone: dropped.

    async def _reply(self, acc: Acc, reply: Element) -> None:
        reply.attrs["from"] = str(acc.to_jid)
        reply.attrs["to"] = str(acc.from_jid)
        await self.route(self.new_acc(reply, acc.to_jid, acc.from_jid))

    # -- a local user (RFC 6121 §8.5) --------------------------------------------------------
    async def _to_user(self, acc: Acc) -> None:
        name = acc.element.name
        if name == "message":
            await self._message_to_user(acc)
        elif name == "presence":
            await self._presence_to_user(acc)
        elif name == "iq":
            await self._iq_to_user(acc)

    async def _message_to_user(self, acc: Acc) -> None:
        to = acc.to_jid
        mtype = acc.type
        if to.resource:
            record = self.sessions.session(to)
            if record is not None and await self.sessions.deliver(record, acc):
                return
            if mtype in ("headline", "error"):
                return
            if mtype == "groupchat":
                await self.bounce(acc, StanzaError("service-unavailable"))
                return
        elif mtype == "groupchat":
            await self.bounce(acc, StanzaError("service-unavailable"))
            return
        records = self.sessions.user_sessions(to)
        if mtype == "headline":
            targets = [r for r in records if r.priority is not None and r.priority >= 0]
        else:
            targets = highest_priority(records)
        delivered = False
        for record in targets:
            delivered = await self.sessions.deliver(record, acc) or delivered
        if delivered or mtype in ("headline", "error"):
            return
        if not records and not await self.user_exists(to.bare):
            await self.bounce(acc, StanzaError("service-unavailable"))
            return
        if not await self.hooks.run(OFFLINE_MESSAGE, acc.host_type, acc):
            await self.bounce(acc, StanzaError("service-unavailable"))

    async def _presence_to_user(self, acc: Acc) -> None:
        ptype = acc.element.attrs.get("type")
        if ptype in SUBSCRIPTION_TYPES:
            acc.scratch["roster_in"] = True
            await self.hooks.run(ROSTER_IN_SUBSCRIPTION, acc.host_type, acc)
            if acc.scratch.get("roster_in"):
                await self._to_available(acc, self.sessions.user_sessions(acc.to_jid))
            return
        if ptype == "probe":
            await self.hooks.run(PRESENCE_PROBE, acc.host_type, acc)
            return
        if acc.to_jid.resource:
            record = self.sessions.session(acc.to_jid)
            if record is not None:
                await self.sessions.deliver(record, acc)
            return
        await self._to_available(acc, self.sessions.user_sessions(acc.to_jid))

    async def _to_available(self, acc: Acc, records: list[SessionRecord]) -> None:
        for record in records:
            if record.available:
                await self.sessions.deliver(record, acc)

    async def _iq_to_user(self, acc: Acc) -> None:
        to = acc.to_jid
        if to.resource:
            record = self.sessions.session(to)
            if record is not None and await self.sessions.deliver(record, acc):
                return
            if acc.element.attrs.get("type") in ("get", "set"):
                await self.bounce(acc, StanzaError("service-unavailable"))
            return
        reply = await self.iq.handle("sm", acc)
        if reply is not None:
            await self._reply(acc, reply)
