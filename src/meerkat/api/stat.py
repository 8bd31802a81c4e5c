"""Admin category `stat`: global and per-domain counters (MongooseIM 6.2 `stat`)."""

from __future__ import annotations

from typing import Any

from ..xmpp.jid import JidError, prep_domain
from .context import ApiContext

__all__ = ["domain_stats", "global_stats"]


async def global_stats(ctx: ApiContext) -> dict[str, Any]:
    """Uptime of this node, accounts of every domain, sessions on this node and in total."""
    registered = 0
    for host in sorted(ctx.hosts):
        registered += await ctx.accounts.count_users(host)
    incoming, outgoing = ctx.s2s_counts() if ctx.s2s_counts is not None else (0, 0)
    return {
        "uptimeSeconds": max(0, int(ctx.clock.monotonic() - ctx.started_at)),
        "registeredUsers": registered,
        "onlineUsersNode": ctx.sessions.local_count(),
        "onlineUsers": len(ctx.sessions.all_sessions()),
        "incomingS2S": incoming,
        "outgoingS2S": outgoing,
    }


async def domain_stats(ctx: ApiContext, domain: str) -> dict[str, Any]:
    """Accounts and online sessions of one domain (zeros for a domain not served here)."""
    try:
        domain = prep_domain(domain)
    except JidError:
        return {"registeredUsers": 0, "onlineUsers": 0}
    online = sum(1 for r in ctx.sessions.all_sessions() if r.jid.domain == domain)
    return {"registeredUsers": await ctx.accounts.count_users(domain), "onlineUsers": online}
