"""XEP-0030 service discovery for the server and its accounts (XEP-0128 server info).

The server's disco#info lists exactly what is enabled: the ``features()`` of every started
module plus whatever DISCO_LOCAL_FEATURES handlers add (for nodes, too). A node nobody
answers for is ``item-not-found``. A user's bare JID answers with the ``account/registered``
identity and DISCO_SM_FEATURES, to the user and to contacts with a presence subscription.
`DiscoModule.local_info` is the computation mod_caps hashes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..core.acc import Acc
from ..core.hooks import (
    DISCO_LOCAL_FEATURES,
    DISCO_LOCAL_IDENTITY,
    DISCO_LOCAL_ITEMS,
    DISCO_SM_FEATURES,
    DISCO_SM_IDENTITY,
    ROSTER_GET_SUBSCRIPTION_LISTS,
)
from ..core.iq import IqSpec
from ..core.modules import Module
from ..xmpp import ns
from ..xmpp.element import Element
from ..xmpp.errors import StanzaError
from ..xmpp.jid import Jid
from ._common import doc

SERVER_INFO_FORM = "http://jabber.org/network/serverinfo"


@dataclass(frozen=True)
class ServerInfoField:
    """One XEP-0157 address field of the server info form."""

    name: str = field(metadata=doc("Field name, e.g. `abuse-addresses`, `admin-addresses`."))
    urls: tuple[str, ...] = field(default=(), metadata=doc("URIs (`mailto:`, `xmpp:` ...)."))


@dataclass(frozen=True)
class DiscoConfig:
    """`[modules.mod_disco]`."""

    extra_domains: tuple[str, ...] = field(
        default=(), metadata=doc("Domains listed as items of the server's disco#items.")
    )
    server_info: tuple[ServerInfoField, ...] = field(
        default=(), metadata=doc("XEP-0157 contact addresses in the server's disco#info.")
    )
    server_name: str = field(default="Meerkat", metadata=doc("The server identity's name."))


@dataclass
class DiscoInfo:
    identities: list[Element]
    features: list[str]
    forms: list[Element]


class DiscoModule(Module):
    """XEP-0030 disco#info and disco#items."""

    name = "mod_disco"
    Config = DiscoConfig

    def __init__(self, ctx: Any, config: DiscoConfig) -> None:
        super().__init__(ctx, config)
        self.config: DiscoConfig = config

    def iq_handlers(self) -> Iterable[IqSpec]:
        return (
            IqSpec(ns.DISCO_INFO, self.local_info_iq, "local"),
            IqSpec(ns.DISCO_ITEMS, self.local_items_iq, "local"),
            IqSpec(ns.DISCO_INFO, self.sm_info_iq, "sm"),
            IqSpec(ns.DISCO_ITEMS, self.sm_items_iq, "sm"),
        )

    def features(self) -> Iterable[str]:
        return (ns.DISCO_INFO, ns.DISCO_ITEMS)

    # -- the server ----------------------------------------------------------------------------
    async def local_info(self, host: str, node: str = "") -> DiscoInfo | None:
        """The server's identities, features and forms for a node (None: unknown node)."""
        identities: list[Element] = []
        features: list[str] = []
        forms: list[Element] = []
        if not node:
            identities.append(
                Element(
                    "identity",
                    ns.DISCO_INFO,
                    {"category": "server", "type": "im", "name": self.config.server_name},
                )
            )
            for module in self.ctx.modules.values():
                features.extend(module.features())
            if self.config.server_info:
                forms.append(self._server_info_form())
        await self.ctx.run_hook(DISCO_LOCAL_IDENTITY, host, identities, host=host, node=node)
        await self.ctx.run_hook(DISCO_LOCAL_FEATURES, host, features, host=host, node=node)
        if node and not identities and not features:
            return None
        return DiscoInfo(identities, sorted(set(features)), forms)

    async def local_info_iq(self, acc: Acc, q: Element) -> Element:
        _only_get(acc)
        node = q.attrs.get("node", "")
        info = await self.local_info(acc.to_jid.domain, node)
        if info is None:
            raise StanzaError("item-not-found")
        return _info_query(info, node)

    async def local_items_iq(self, acc: Acc, q: Element) -> Element:
        _only_get(acc)
        host = acc.to_jid.domain
        node = q.attrs.get("node", "")
        items: list[Element] = []
        if not node:
            for domain in self.config.extra_domains:
                items.append(Element("item", ns.DISCO_ITEMS, {"jid": domain}))
        await self.ctx.run_hook(DISCO_LOCAL_ITEMS, host, items, host=host, node=node, request=acc)
        if node and not items:
            raise StanzaError("item-not-found")
        return _query(ns.DISCO_ITEMS, node, items)

    def _server_info_form(self) -> Element:
        form = Element("x", ns.DATA_FORMS, {"type": "result"})
        hidden = form.add("field", attrs={"var": "FORM_TYPE", "type": "hidden"})
        hidden.add("value", text=SERVER_INFO_FORM)
        for info in self.config.server_info:
            f = form.add("field", attrs={"var": info.name, "type": "list-multi"})
            for url in info.urls:
                f.add("value", text=url)
        return form

    # -- accounts --------------------------------------------------------------------------------
    async def _check_account(self, acc: Acc) -> Jid:
        user = acc.to_jid.bare
        requester = acc.from_jid.bare
        if requester != user:
            lists: dict[str, set[Jid]] = {"from": set(), "to": set()}
            await self.ctx.run_hook(ROSTER_GET_SUBSCRIPTION_LISTS, acc.host_type, lists, jid=user)
            if requester not in lists["from"]:
                raise StanzaError("service-unavailable")
        return user

    async def sm_info_iq(self, acc: Acc, q: Element) -> Element:
        _only_get(acc)
        user = await self._check_account(acc)
        node = q.attrs.get("node", "")
        identities: list[Element] = []
        features: list[str] = []
        if not node:
            identities.append(
                Element("identity", ns.DISCO_INFO, {"category": "account", "type": "registered"})
            )
            features.extend((ns.DISCO_INFO, ns.DISCO_ITEMS))
        await self.ctx.run_hook(DISCO_SM_IDENTITY, acc.host_type, identities, jid=user, node=node)
        await self.ctx.run_hook(DISCO_SM_FEATURES, acc.host_type, features, jid=user, node=node)
        if node and not identities and not features:
            raise StanzaError("item-not-found")
        return _info_query(DiscoInfo(identities, sorted(set(features)), []), node)

    async def sm_items_iq(self, acc: Acc, q: Element) -> Element:
        _only_get(acc)
        await self._check_account(acc)
        node = q.attrs.get("node", "")
        if node:
            raise StanzaError("item-not-found")
        return _query(ns.DISCO_ITEMS, node, [])


def _only_get(acc: Acc) -> None:
    if acc.element.attrs.get("type") != "get":
        raise StanzaError("not-allowed")


def _query(xmlns: str, node: str, children: list[Element]) -> Element:
    q = Element("query", xmlns, {"node": node} if node else {})
    q.children.extend(children)
    return q


def _info_query(info: DiscoInfo, node: str) -> Element:
    children = [i.copy() for i in info.identities]
    children += [Element("feature", ns.DISCO_INFO, {"var": f}) for f in info.features]
    children += [f.copy() for f in info.forms]
    return _query(ns.DISCO_INFO, node, children)
