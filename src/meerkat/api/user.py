"""The user API (MongooseIM's user GraphQL schema, port 5561): a user acting on itself.

The same operations as the admin categories, with the authenticated user's bare JID in place
of a ``user`` argument; a ``from`` the user gives must be its own JID (error
``invalid_sender``).
"""

from __future__ import annotations

from typing import Any

from ..xmpp.element import Element
from ..xmpp.jid import Jid, JidError
from . import account, session, stanza
from .context import ApiContext
from .errors import ApiError

__all__ = [
    "change_password",
    "count_resources",
    "list_resources",
    "list_sessions",
    "send_message",
    "send_message_headline",
    "send_stanza",
    "unregister",
]

INVALID_SENDER = "Sender's JID is different from the user's JID"


async def unregister(ctx: ApiContext, user: Jid) -> str:
    """Remove the user's own account (and data, and sessions)."""
    result = await account.remove_user(ctx, user)
    return str(result["message"])


async def change_password(ctx: ApiContext, user: Jid, new_password: str) -> str:
    result = await account.change_user_password(ctx, user, new_password)
    return str(result["message"])


async def list_resources(ctx: ApiContext, user: Jid) -> list[str]:
    return [str(s["user"]).partition("/")[2] for s in await session.list_user_sessions(ctx, user)]


async def count_resources(ctx: ApiContext, user: Jid) -> int:
    return await session.count_user_resources(ctx, user)


async def list_sessions(ctx: ApiContext, user: Jid) -> list[dict[str, Any]]:
    return await session.list_user_sessions(ctx, user)


def _sender(user: Jid, from_: Jid | None) -> Jid:
    if from_ is None:
        return user
    if from_.bare != user.bare:
        raise ApiError("invalid_sender", INVALID_SENDER, {"jid": str(from_)})
    return from_


async def send_message(
    ctx: ApiContext, user: Jid, from_: Jid | None, to: Jid, body: str
) -> dict[str, Any]:
    return await stanza.send_message(ctx, _sender(user, from_), to, body)


async def send_message_headline(
    ctx: ApiContext,
    user: Jid,
    from_: Jid | None,
    to: Jid,
    subject: str | None,
    body: str | None,
) -> dict[str, Any]:
    return await stanza.send_message_headline(ctx, _sender(user, from_), to, subject, body)


async def send_stanza(ctx: ApiContext, user: Jid, element: Element) -> dict[str, Any]:
    """Route a stanza as the user: a missing ``from`` is the user, another one is refused."""
    given = element.attrs.get("from")
    if given is None:
        element.attrs["from"] = str(user)
    else:
        try:
            _sender(user, Jid.parse(given))
        except JidError:
            raise ApiError("invalid_sender", "Invalid sender JID") from None
    return await stanza.send_stanza(ctx, element)
