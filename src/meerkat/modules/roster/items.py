"""Roster items on the wire (RFC 6121 §2.1): `RosterItem` <-> ``<item/>``, and roster-set checks."""

from __future__ import annotations

from ...stores.roster import RosterItem
from ...xmpp import ns
from ...xmpp.element import Element
from ...xmpp.errors import StanzaError
from ...xmpp.jid import Jid, JidError
from .states import SubState

MAX_NAME = 1023


def state_of(item: RosterItem | None) -> SubState:
    if item is None:
        return SubState()
    return SubState.from_ask(item.subscription, item.ask, item.approved)


def with_state(item: RosterItem, state: SubState) -> RosterItem:
    return RosterItem(
        item.jid, item.name, state.sub, state.ask, item.groups, state.approved,
        item.askmessage if state.pending_in else "",
    )  # fmt: skip


def item_element(item: RosterItem, remove: bool = False) -> Element:
    """``<item/>`` as sent in roster results and pushes."""
    attrs = {"jid": item.jid}
    if remove:
        attrs["subscription"] = "remove"
        return Element("item", ns.ROSTER, attrs)
    if item.name:
        attrs["name"] = item.name
    attrs["subscription"] = item.subscription
    if item.ask in ("out", "both"):
        attrs["ask"] = "subscribe"
    if item.approved:
        attrs["approved"] = "true"
    el = Element("item", ns.ROSTER, attrs)
    for group in item.groups:
        el.add("group", text=group)
    return el


def query(items: list[Element], ver: str | None = None) -> Element:
    q = Element("query", ns.ROSTER, {"ver": ver} if ver is not None else {})
    q.children.extend(items)
    return q


def parse_set(q: Element) -> tuple[Jid, str, tuple[str, ...], bool]:
    """Validate a roster set (RFC 6121 §2.3.3, §2.5): (contact, name, groups, remove)."""
    items = list(q.elements())
    if len(items) != 1 or items[0].name != "item":
        raise StanzaError("bad-request", text="a roster set has exactly one item")
    item = items[0]
    raw = item.attrs.get("jid")
    if not raw:
        raise StanzaError("bad-request", text="item without jid")
    try:
        contact = Jid.parse(raw)
    except JidError:
        raise StanzaError("jid-malformed") from None
    remove = item.attrs.get("subscription") == "remove"
    name = item.attrs.get("name", "")
    if len(name.encode()) > MAX_NAME:
        raise StanzaError("not-acceptable", text="name too long")
    groups: list[str] = []
    for g in item.find_all("group"):
        text = g.text
        if not text:
            raise StanzaError("not-acceptable", text="empty group name")
        if len(text.encode()) > MAX_NAME:
            raise StanzaError("not-acceptable", text="group name too long")
        if text in groups:
            raise StanzaError("bad-request", text="duplicate group")
        groups.append(text)
    return contact, name, tuple(groups), remove
