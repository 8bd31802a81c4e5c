"""XEP-0054 vcard-temp: each user sets their own vCard; anyone may read anyone's.

A user without a stored vCard gets an empty ``<vCard/>``; a JID without an account gets
``item-not-found``. Setting someone else's vCard is ``forbidden``. The server's own vCard
(a query to the domain) names the software.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..core.acc import Acc
from ..core.hooks import DISCO_SM_FEATURES, REMOVE_USER
from ..core.iq import IqSpec
from ..core.modules import HookSpec, Module
from ..stores.vcard import VcardStore
from ..xmpp import ns
from ..xmpp.element import Element
from ..xmpp.errors import StanzaError, StreamError
from ..xmpp.stream import parse_element
from ._common import doc, user_key

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VcardConfig:
    """`[modules.mod_vcard]`."""

    max_size: int = field(default=65536, metadata=doc("Largest vCard accepted, in bytes."))


class VcardModule(Module):
    """XEP-0054: ``vcard-temp`` get and set."""

    name = "mod_vcard"
    Config = VcardConfig

    def __init__(self, ctx: Any, config: VcardConfig) -> None:
        super().__init__(ctx, config)
        self.config: VcardConfig = config

    @property
    def store(self) -> VcardStore:
        store: VcardStore = self.ctx.stores.vcard
        return store

    def hooks(self) -> Iterable[HookSpec]:
        return (
            HookSpec(REMOVE_USER, self.on_remove_user),
            HookSpec(DISCO_SM_FEATURES, self.on_disco_sm_features),
        )

    def iq_handlers(self) -> Iterable[IqSpec]:
        return (IqSpec(ns.VCARD, self.user_vcard, "sm"), IqSpec(ns.VCARD, self.server_vcard))

    def features(self) -> Iterable[str]:
        return (ns.VCARD,)

    async def user_vcard(self, acc: Acc, q: Element) -> Element | None:
        user = acc.to_jid.bare
        if acc.element.attrs.get("type") == "set":
            if acc.from_jid.bare != user:
                raise StanzaError("forbidden", text="only your own vCard")
            text = str(q)
            if len(text.encode()) > self.config.max_size:
                raise StanzaError("not-acceptable", text="vCard too large")
            await self.store.set_vcard(user_key(user), text)
            return None
        stored = await self.store.get_vcard(user_key(user))
        if stored is not None:
            try:
                return parse_element(stored)
            except StreamError:
                log.warning("vcard_unparsable jid=%s", user)
        if not await self.ctx.router.user_exists(user):
            raise StanzaError("item-not-found")
        return Element("vCard", ns.VCARD)

    async def server_vcard(self, acc: Acc, q: Element) -> Element:
        if acc.element.attrs.get("type") != "get":
            raise StanzaError("not-allowed")
        card = Element("vCard", ns.VCARD)
        card.add("FN", text="Meerkat")
        card.add("DESC", text="Meerkat XMPP server")
        return card

    async def on_remove_user(self, acc: object, params: dict[str, Any]) -> object:
        await self.store.remove_user(user_key(params["jid"].bare))
        return None

    async def on_disco_sm_features(self, acc: list[str], params: dict[str, Any]) -> object:
        if not params.get("node"):
            acc.append(ns.VCARD)
        return None
