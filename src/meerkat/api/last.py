"""Admin category `last`: last activity (XEP-0012) of users, old-user cleanup (MongooseIM 6.2).

Needs ``mod_last``. Times are DateTimes (``YYYY-MM-DDTHH:MM:SSZ``) in the API and Unix seconds
in the store. A user is *old* when not online and either never recorded or last active before
the given time; `remove_old_users` deletes exactly the users `list_old_users` reports.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..stores.types import UserKey
from ..xmpp.jid import Jid, JidError, prep_domain
from .context import ApiContext
from .deps import require_module
from .errors import ApiError

__all__ = ["count_active_users", "get_last", "list_old_users", "remove_old_users", "set_last"]


def datetime_text(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _seconds(when: datetime | None, ctx: ApiContext) -> int:
    return int(ctx.clock.now() if when is None else when.timestamp())


def _store(ctx: ApiContext) -> Any:
    return require_module(ctx, "mod_last", "last")


async def _existing(ctx: ApiContext, user: Jid) -> Jid:
    bare = user.bare
    if not await ctx.accounts.exists(bare):
        raise ApiError("user_does_not_exist", f"User {bare} does not exist", {"user": str(bare)})
    return bare


def _domain(ctx: ApiContext, domain: str) -> str:
    try:
        prepped = prep_domain(domain)
    except JidError:
        prepped = ""
    if prepped not in ctx.hosts:
        raise ApiError("domain_not_found", "Domain not found", {"domain": domain})
    return prepped


async def get_last(ctx: ApiContext, user: Jid) -> dict[str, Any]:
    """``{user, timestamp, status}``; ``last_not_found`` when nothing was recorded."""
    store = _store(ctx)
    bare = await _existing(ctx, user)
    last = await store.get_last(UserKey(bare.domain, bare.local))
    if last is None:
        message = "Given user's last info not found"
        raise ApiError("last_not_found", message, {"user": str(bare)})
    seconds, status = last
    return {"user": str(bare), "timestamp": datetime_text(seconds), "status": status}


async def set_last(
    ctx: ApiContext, user: Jid, timestamp: datetime | None, status: str
) -> dict[str, Any]:
    """Record a last activity (now when ``timestamp`` is None)."""
    store = _store(ctx)
    bare = await _existing(ctx, user)
    seconds = _seconds(timestamp, ctx)
    await store.set_last(UserKey(bare.domain, bare.local), seconds, status)
    return {"user": str(bare), "timestamp": datetime_text(seconds), "status": status}


async def count_active_users(ctx: ApiContext, domain: str, timestamp: datetime | None) -> int:
    """Users of a domain active at or after ``timestamp`` (now when None)."""
    store = _store(ctx)
    count: int = await store.count_active(_domain(ctx, domain), _seconds(timestamp, ctx))
    return count


async def list_old_users(
    ctx: ApiContext, domain: str | None, timestamp: datetime
) -> list[dict[str, Any]]:
    """``[{jid, timestamp}]`` of the old users of one domain or of all (timestamp null when
    never recorded)."""
    store = _store(ctx)
    domains = sorted(ctx.hosts) if domain is None else [_domain(ctx, domain)]
    before = _seconds(timestamp, ctx)
    old: list[dict[str, Any]] = []
    for host in domains:
        for jid in await ctx.accounts.list_users(host):
            if ctx.sessions.user_sessions(jid):
                continue
            last = await store.get_last(UserKey(jid.domain, jid.local))
            if last is None:
                old.append({"jid": str(jid), "timestamp": None})
            elif last[0] < before:
                old.append({"jid": str(jid), "timestamp": datetime_text(last[0])})
    return old


async def remove_old_users(
    ctx: ApiContext, domain: str | None, timestamp: datetime
) -> list[dict[str, Any]]:
    """Remove the users `list_old_users` reports, and report them."""
    old = await list_old_users(ctx, domain, timestamp)
    for entry in old:
        await ctx.accounts.remove(Jid.parse(entry["jid"]))
    return old
