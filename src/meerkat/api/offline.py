"""Admin category `offline`: delete stored offline messages (MongooseIM 6.2, needs mod_offline).

COMPAT: MongooseIM deletes expired messages of one domain; our store expires them for every
domain at once (an expired message is dead everywhere), so the count covers all domains.
"""

from __future__ import annotations

from typing import Any

from ..xmpp.jid import JidError, prep_domain
from .context import ApiContext
from .deps import require_module
from .errors import ApiError

__all__ = ["delete_expired_messages", "delete_old_messages"]

DAY = 86400


def _served(ctx: ApiContext, domain: str) -> str:
    try:
        prepped = prep_domain(domain)
    except JidError:
        prepped = ""
    if prepped not in ctx.hosts:
        raise ApiError("domain_not_found", "Domain not found", {"domain": domain})
    return prepped


def _store(ctx: ApiContext) -> Any:
    return require_module(ctx, "mod_offline", "offline")


async def delete_expired_messages(ctx: ApiContext, domain: str) -> str:
    store = _store(ctx)
    _served(ctx, domain)
    count = await store.delete_expired(int(ctx.clock.now()))
    return f"Removed {count} expired messages"


async def delete_old_messages(ctx: ApiContext, domain: str, days: int) -> str:
    """Delete the messages of a domain stored at least ``days`` days ago."""
    store = _store(ctx)
    served = _served(ctx, domain)
    count = await store.delete_older_than(served, int(ctx.clock.now()) - days * DAY)
    return f"Removed {count} messages"
