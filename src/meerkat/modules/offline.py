"""XEP-0160 offline messages, delivered with XEP-0203 delay stamps.

Stored: ``chat`` and ``normal`` messages with a body or subject, or carrying the XEP-0334
``<store/>`` hint; never those with ``<no-store/>`` (the router then answers
service-unavailable). Other messages without content (chat states) are dropped silently. A
user's queue holds at most ``max_user_offline_messages``; past that the sender gets a
``resource-constraint`` error (type wait) - COMPAT: MongooseIM bounces in the same way when
the queue is full.

The hard part is not losing messages: the queue is popped when the user sends initial
presence and each message is handed to the session; if the session is gone before all are
handed over, the rest go back to the store.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..core.acc import Acc
from ..core.client import ClientSession
from ..core.hooks import OFFLINE_MESSAGE, REMOVE_USER, RESEND_OFFLINE_MESSAGES, STOP
from ..core.modules import HookSpec, Module
from ..db.errors import DatabaseError
from ..stores.offline import OfflineMessage, OfflineStore
from ..xmpp import ns
from ..xmpp.errors import StanzaError, StreamError
from ..xmpp.jid import Jid
from ..xmpp.stream import parse_element
from ._common import delay_element, doc, user_key

log = logging.getLogger(__name__)
STORED_TYPES = frozenset({"chat", "normal"})


@dataclass(frozen=True)
class OfflineConfig:
    """`[modules.mod_offline]`."""

    max_user_offline_messages: int = field(
        default=100, metadata=doc("Messages kept per user; more are bounced.")
    )


class OfflineModule(Module):
    """XEP-0160: store messages for offline users, deliver them on initial presence."""

    name = "mod_offline"
    Config = OfflineConfig

    def __init__(self, ctx: Any, config: OfflineConfig) -> None:
        super().__init__(ctx, config)
        self.config: OfflineConfig = config

    @property
    def store(self) -> OfflineStore:
        store: OfflineStore = self.ctx.stores.offline
        return store

    def hooks(self) -> Iterable[HookSpec]:
        return (
            HookSpec(OFFLINE_MESSAGE, self.on_offline_message),
            HookSpec(RESEND_OFFLINE_MESSAGES, self.on_resend),
            HookSpec(REMOVE_USER, self.on_remove_user),
        )

    def features(self) -> Iterable[str]:
        return ("msgoffline",)

    async def on_offline_message(self, acc: Acc, params: dict[str, Any]) -> object:
        el = acc.element
        if acc.type not in STORED_TYPES or el.find("no-store", ns.HINTS) is not None:
            return None
        has_content = el.find("body") is not None or el.find("subject") is not None
        if not has_content and el.find("store", ns.HINTS) is None:
            return STOP  # chat states and receipts to nobody: nothing to keep or bounce
        msg = OfflineMessage(
            timestamp=int(acc.timestamp * 1_000_000), from_jid=str(acc.from_jid), packet=str(el)
        )
        limit = self.config.max_user_offline_messages
        try:
            stored = await self.store.store(user_key(acc.to_jid.bare), [msg], limit)
        except DatabaseError as exc:
            # The recipient exists; only the storage failed: tell the sender so, retryably.
            log.warning("offline_store_failed to=%s error=%s", acc.to_jid.bare, exc)
            await self.ctx.router.bounce(
                acc, StanzaError("internal-server-error", text="offline storage unavailable")
            )
            return STOP
        if not stored:
            await self.ctx.router.bounce(
                acc, StanzaError("resource-constraint", text="offline message queue is full")
            )
        return STOP

    async def on_resend(self, acc: object, params: dict[str, Any]) -> object:
        session: ClientSession = params["session"]
        user = user_key(session.jid.bare)
        now = self.ctx.clock.now()
        messages = await self.store.pop_all(user, int(now * 1_000_000))
        delivered = 0
        try:
            for msg in messages:
                if not await self._deliver(session, msg):
                    break
                delivered += 1
        finally:
            rest = messages[delivered:]
            if rest:  # the session went away (or we crashed): keep what was not handed over
                await self.store.store(user, rest, len(rest) + await self.store.count(user))
        return None

    async def _deliver(self, session: ClientSession, msg: OfflineMessage) -> bool:
        try:
            el = parse_element(msg.packet)
        except StreamError:
            log.warning("offline_message_unparsable jid=%s", session.jid)
            return True  # dropping a corrupt record is all we can do
        seconds = msg.timestamp / 1_000_000
        el.children.append(delay_element(session.jid.domain, seconds, "Offline Storage"))
        acc = Acc(
            el,
            Jid.parse(msg.from_jid),
            session.jid,
            host_type=session.host_type,
            timestamp=self.ctx.clock.now(),
        )
        return await self.ctx.sessions.deliver(session.record, acc)

    async def on_remove_user(self, acc: object, params: dict[str, Any]) -> object:
        await self.store.remove_user(user_key(params["jid"].bare))
        return None
