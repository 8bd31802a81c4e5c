"""Admin category `stanza`: send messages and arbitrary stanzas as a local user (MongooseIM 6.2).

The sender must be an existing local account (error ``unknown_user``, "Given user does not
exist"); the stanza is routed like one the user sent, and the result is its id.
"""

from __future__ import annotations

import secrets
from typing import Any

from ..xmpp.element import Element
from ..xmpp.jid import Jid, JidError
from .context import ApiContext
from .errors import ApiError

__all__ = ["send_message", "send_message_headline", "send_stanza"]


async def _check_sender(ctx: ApiContext, sender: Jid) -> None:
    if sender.domain not in ctx.hosts:
        raise ApiError("unknown_domain", "Given domain does not exist", {"domain": sender.domain})
    if not await ctx.accounts.exists(sender.bare):
        raise ApiError("unknown_user", "Given user does not exist", {"jid": str(sender)})


async def _route(ctx: ApiContext, element: Element, sender: Jid, to: Jid) -> dict[str, Any]:
    stanza_id = element.attrs.get("id")
    if not stanza_id:
        stanza_id = secrets.token_hex(8)
        element.attrs["id"] = stanza_id
    element.attrs["from"] = str(sender)
    element.attrs["to"] = str(to)
    await ctx.router.route(ctx.router.new_acc(element, sender, to))
    return {"id": stanza_id}


def _child(name: str, text: str) -> Element:
    return Element(name, "jabber:client", children=[text])


async def send_message(ctx: ApiContext, from_: Jid, to: Jid, body: str) -> dict[str, Any]:
    """Send a chat message from a local user; ``{"id": ...}``."""
    await _check_sender(ctx, from_)
    message = Element("message", "jabber:client", {"type": "chat"}, [_child("body", body)])
    return await _route(ctx, message, from_, to)


async def send_message_headline(
    ctx: ApiContext, from_: Jid, to: Jid, subject: str | None, body: str | None
) -> dict[str, Any]:
    """Send a headline message (subject and body both optional)."""
    await _check_sender(ctx, from_)
    message = Element("message", "jabber:client", {"type": "headline"})
    if subject is not None:
        message.append(_child("subject", subject))
    if body is not None:
        message.append(_child("body", body))
    return await _route(ctx, message, from_, to)


async def send_stanza(ctx: ApiContext, stanza: Element) -> dict[str, Any]:
    """Route a complete stanza; its ``from`` must be a local user and ``to`` set."""
    if stanza.name not in ("message", "presence", "iq") or stanza.xmlns != "jabber:client":
        raise ApiError("bad_stanza", "Not a message, presence or iq stanza")
    try:
        sender = Jid.parse(stanza.attrs["from"])
    except KeyError:
        raise ApiError("no_sender", "Missing sender JID") from None
    except JidError:
        raise ApiError("invalid_sender", "Invalid sender JID") from None
    try:
        to = Jid.parse(stanza.attrs["to"])
    except KeyError:
        raise ApiError("no_recipient", "Missing recipient JID") from None
    except JidError:
        raise ApiError("invalid_recipient", "Invalid recipient JID") from None
    await _check_sender(ctx, sender)
    return await _route(ctx, stanza, sender, to)
