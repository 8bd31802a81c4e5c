"""Admin category `roster`: a user's contacts and subscriptions (MongooseIM 6.2 mod_roster_api).

Changes go through the roster module exactly as a client's would: adding or removing a contact
is a roster IQ set handled by `mod_roster` (so the user's resources get roster pushes), and a
subscription action is the user's outbound subscription presence, run through
``roster_out_subscription`` and routed. Without `mod_roster` the error is ``deps_not_loaded``.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from ..core.hooks import ROSTER_OUT_SUBSCRIPTION
from ..stores.roster import RosterItem
from ..stores.types import UserKey
from ..xmpp import ns
from ..xmpp.element import Element
from ..xmpp.jid import Jid
from .context import ApiContext
from .deps import require_module
from .errors import ApiError

__all__ = [
    "SUB_ACTIONS",
    "add_contact",
    "add_contacts",
    "delete_contact",
    "delete_contacts",
    "get_contact",
    "list_contacts",
    "set_mutual_subscription",
    "subscribe_all_to_all",
    "subscribe_both",
    "subscribe_to_all",
    "subscription",
]

#: GraphQL SubAction -> presence type.
SUB_ACTIONS = {
    "INVITE": "subscribe",
    "ACCEPT": "subscribed",
    "DECLINE": "unsubscribed",
    "CANCEL": "unsubscribe",
}
UNKNOWN_DOMAIN = "Domain not found"


def _store(ctx: ApiContext) -> Any:
    return require_module(ctx, "mod_roster", "roster")


def _local(ctx: ApiContext, user: Jid, extra: dict[str, Any]) -> Jid:
    if user.domain not in ctx.hosts:
        raise ApiError("unknown_domain", UNKNOWN_DOMAIN, extra)
    return user.bare


async def _must_exist(ctx: ApiContext, users: Sequence[Jid], extra: dict[str, Any]) -> None:
    for user in users:
        if not await ctx.accounts.exists(user.bare):
            message = f"The user {user.bare} does not exist"
            raise ApiError("user_not_exist", message, extra)


def contact_info(item: RosterItem) -> dict[str, Any]:
    """A GraphQL `Contact`."""
    return {
        "jid": item.jid,
        "name": item.name,
        "groups": list(item.groups),
        "subscription": item.subscription.upper(),
        "ask": item.ask.upper(),
    }


async def list_contacts(ctx: ApiContext, user: Jid) -> list[dict[str, Any]]:
    store = _store(ctx)
    extra = {"user": str(user.bare)}
    bare = _local(ctx, user, extra)
    await _must_exist(ctx, [bare], extra)
    return [contact_info(i) for i in await store.get_roster(UserKey(bare.domain, bare.local))]


async def get_contact(ctx: ApiContext, user: Jid, contact: Jid) -> dict[str, Any]:
    store = _store(ctx)
    extra = {"user": str(user.bare)}
    bare = _local(ctx, user, extra)
    item = await store.get_item(UserKey(bare.domain, bare.local), str(contact.bare))
    if item is None:
        raise ApiError("contact_not_found", "Given contact does not exist", extra)
    return contact_info(item)


async def _roster_set(ctx: ApiContext, user: Jid, item: Element) -> str | None:
    """Run a roster IQ set as the user; the error condition, or None on success."""
    iq = Element(
        "iq",
        ns.CLIENT,
        {"type": "set", "id": secrets.token_hex(6), "from": str(user), "to": str(user)},
        [Element("query", ns.ROSTER, children=[item])],
    )
    if not ctx.router.iq.has_handler("sm", ns.ROSTER):
        raise ApiError("deps_not_loaded", "Some of the required modules are not loaded")
    reply = await ctx.router.iq.handle("sm", ctx.router.new_acc(iq, user, user))
    if reply is None or reply.attrs.get("type") != "error":
        return None
    error = reply.find("error")
    condition = next(error.elements(), None) if error is not None else None
    return condition.name if condition is not None else "undefined-condition"


async def add_contact(
    ctx: ApiContext, user: Jid, contact: Jid, name: str | None, groups: Sequence[str] | None
) -> str:
    """Add or update a contact, without subscription."""
    _store(ctx)
    extra = {"contact": str(contact.bare)}
    bare = _local(ctx, user, extra)
    await _must_exist(ctx, [bare, contact], extra)
    item = Element("item", ns.ROSTER, {"jid": str(contact.bare)})
    if name:
        item.attrs["name"] = name
    for group in groups or ():
        item.append(Element("group", ns.ROSTER, children=[group]))
    condition = await _roster_set(ctx, bare, item)
    if condition is not None:
        raise ApiError("internal", f"Cannot create a contact because: {condition}", extra)
    return "Contact added successfully"


async def delete_contact(ctx: ApiContext, user: Jid, contact: Jid) -> str:
    """Remove a contact, cancelling subscriptions both ways (RFC 6121 §2.5)."""
    _store(ctx)
    extra = {"contact": str(contact.bare)}
    bare = _local(ctx, user, extra)
    item = Element("item", ns.ROSTER, {"jid": str(contact.bare), "subscription": "remove"})
    condition = await _roster_set(ctx, bare, item)
    if condition == "item-not-found":
        message = f"Cannot remove {contact.bare} contact that does not exist"
        raise ApiError("contact_not_found", message, extra)
    if condition is not None:
        raise ApiError("internal", f"Cannot delete a contact because: {condition}", extra)
    return f"Contact {contact.bare} deleted successfully"


async def subscription(ctx: ApiContext, user: Jid, contact: Jid, action: str) -> str:
    """Send the user's subscription presence (INVITE, ACCEPT, DECLINE, CANCEL) to a contact."""
    _store(ctx)
    extra = {"user": str(user.bare), "contact": str(contact.bare)}
    bare = _local(ctx, user, extra)
    ptype = SUB_ACTIONS.get(action)
    if ptype is None:
        raise ApiError("bad_action", f"Unknown subscription action {action}", extra)
    to = contact.bare
    presence = Element("presence", ns.CLIENT, {"type": ptype, "from": str(bare), "to": str(to)})
    acc = ctx.router.new_acc(presence, bare, to)
    await ctx.router.hooks.run(ROSTER_OUT_SUBSCRIPTION, acc.host_type, acc)
    if acc.scratch.get("roster_out") != "routed":  # mod_roster routes what it handled
        await ctx.router.route(acc)
    return f"Subscription stanza with type {ptype} sent successfully"


async def subscribe_both(
    ctx: ApiContext,
    a: tuple[Jid, str | None, Sequence[str] | None],
    b: tuple[Jid, str | None, Sequence[str] | None],
) -> str:
    """Make two users contacts of each other with a ``both`` subscription."""
    (user_a, name_a, groups_a), (user_b, name_b, groups_b) = a, b
    await add_contact(ctx, user_a, user_b, name_b, groups_b)
    await add_contact(ctx, user_b, user_a, name_a, groups_a)
    for action in ("INVITE", "ACCEPT"):
        await subscription(ctx, user_a, user_b, action)
        await subscription(ctx, user_b, user_a, action)
    return f"Subscription between users {user_a.bare} and {user_b.bare} created successfully"


async def set_mutual_subscription(ctx: ApiContext, user_a: Jid, user_b: Jid, action: str) -> str:
    """CONNECT: contacts with a ``both`` subscription; DISCONNECT: delete both contacts."""
    if action == "CONNECT":
        return await subscribe_both(ctx, (user_a, None, None), (user_b, None, None))
    await delete_contact(ctx, user_a, user_b)
    await delete_contact(ctx, user_b, user_a)
    return "Mutual subscription removed successfully"


# -- several at once: one result per item, an error for one item does not stop the others ----
Outcome = str | ApiError
ContactInput = dict[str, Any]
"""A GraphQL ContactInput: ``{"jid": Jid, "name": str, "groups": [str] | None}``."""


async def _outcome(operation: Any) -> Outcome:
    try:
        result: str = await operation
    except ApiError as exc:
        return exc
    return result


def _triple(contact: ContactInput) -> tuple[Jid, str | None, Sequence[str] | None]:
    return contact["jid"], contact.get("name"), contact.get("groups")


async def add_contacts(
    ctx: ApiContext, user: Jid, contacts: Sequence[ContactInput]
) -> list[Outcome]:
    _store(ctx)
    return [await _outcome(add_contact(ctx, user, *_triple(contact))) for contact in contacts]


async def delete_contacts(ctx: ApiContext, user: Jid, contacts: Sequence[Jid]) -> list[Outcome]:
    _store(ctx)
    return [await _outcome(delete_contact(ctx, user, contact)) for contact in contacts]


async def subscribe_to_all(
    ctx: ApiContext, user: ContactInput, contacts: Sequence[ContactInput]
) -> list[Outcome]:
    """Mutual subscriptions between ``user`` and each contact."""
    _store(ctx)
    return [
        await _outcome(subscribe_both(ctx, _triple(user), _triple(contact))) for contact in contacts
    ]


async def subscribe_all_to_all(ctx: ApiContext, contacts: Sequence[ContactInput]) -> list[Outcome]:
    """Mutual subscriptions between every pair of contacts."""
    _store(ctx)
    results: list[Outcome] = []
    for index, user in enumerate(contacts):
        results += await subscribe_to_all(ctx, user, contacts[index + 1 :])
    return results
