"""Admin category `private`: a user's private XML storage (XEP-0049, MongooseIM 6.2).

Needs ``mod_private``. Elements are stored per namespace, as `mod_private` stores them, so
what the admin sets a client gets with ``jabber:iq:private`` and the other way round.
"""

from __future__ import annotations

from typing import Any

from ..stores.types import UserKey
from ..xmpp.element import Element
from ..xmpp.errors import StreamError
from ..xmpp.jid import Jid
from ..xmpp.stream import parse_element
from .context import ApiContext
from .deps import require_module
from .errors import ApiError

__all__ = ["get_private", "set_private"]

RESERVED = frozenset({"jabber:client", "jabber:server", "jabber:iq:private"})


async def _existing(ctx: ApiContext, user: Jid) -> UserKey:
    bare = user.bare
    if not await ctx.accounts.exists(bare):
        raise ApiError("not_found", f"User {bare} does not exist", {"user": str(bare)})
    return UserKey(bare.domain, bare.local)


def _store(ctx: ApiContext) -> Any:
    return require_module(ctx, "mod_private", "private")


async def set_private(ctx: ApiContext, user: Jid, element: Element) -> str:
    """Store ``element`` under its namespace; returns it."""
    store = _store(ctx)
    key = await _existing(ctx, user)
    if element.xmlns in RESERVED:
        raise ApiError("bad_namespace", f"Namespace {element.xmlns} cannot be stored")
    text = str(element)
    await store.set_many(key, {element.xmlns: text})
    return text


async def get_private(ctx: ApiContext, user: Jid, element: str, namespace: str) -> str:
    """The element stored under ``namespace``, or an empty ``<element xmlns=namespace/>``."""
    store = _store(ctx)
    key = await _existing(ctx, user)
    stored = await store.get(key, namespace)
    if stored is not None:
        try:
            return str(parse_element(stored))
        except StreamError:
            pass  # unreadable stored XML reads as nothing stored, as mod_private does
    return str(Element(element, namespace))
