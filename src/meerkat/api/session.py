"""Admin category `session`: list, count and kick the online sessions (MongooseIM 6.2).

A `Session` result is ``{user, connection, ip, port, priority, node, uptime}``; connection
details come from `SessionRecord.info` (keys ``connection``, ``ip``, ``port``, filled by the
c2s session), the uptime from the session id, which starts with the opening time in
microseconds (`SessionManager.new_sid`).
"""

from __future__ import annotations

from typing import Any

from ..core.sessions import SessionRecord
from ..xmpp.jid import Jid, JidError, prep_domain
from .context import ApiContext
from .errors import ApiError

__all__ = [
    "count_sessions",
    "count_user_resources",
    "get_user_resource",
    "kick_user",
    "kick_user_session",
    "list_sessions",
    "list_user_sessions",
]

KICK_CONDITION = "policy-violation"
DEFAULT_REASON = "Kicked by administrator"


def _domain_filter(ctx: ApiContext, domain: str | None) -> str | None:
    if domain is None:
        return None
    try:
        prepped = prep_domain(domain)
    except JidError:
        prepped = ""
    if prepped not in ctx.hosts:
        raise ApiError("domain_not_found", "Domain not found", {"domain": domain})
    return prepped


def _sessions(ctx: ApiContext, domain: str | None) -> list[SessionRecord]:
    records = ctx.sessions.all_sessions()
    if domain is not None:
        records = [r for r in records if r.jid.domain == domain]
    return sorted(records, key=lambda r: r.key)


def _user_sessions(ctx: ApiContext, user: Jid) -> list[SessionRecord]:
    return sorted(ctx.sessions.user_sessions(user.bare), key=lambda r: r.jid.resource)


def session_info(ctx: ApiContext, record: SessionRecord) -> dict[str, Any]:
    """A GraphQL `Session` for one record."""
    info = record.info
    try:
        opened = int(record.sid.split(".", 1)[0]) / 1_000_000
        uptime = max(0, int(ctx.clock.now() - opened))
    except ValueError:
        uptime = 0
    port = info.get("port")
    return {
        "user": str(record.jid),
        "connection": info.get("connection", "c2s"),
        "ip": info.get("ip"),
        "port": int(port) if port is not None else None,
        "priority": record.priority,
        "node": record.node,
        "uptime": uptime,
    }


async def list_sessions(ctx: ApiContext, domain: str | None = None) -> list[dict[str, Any]]:
    """Every session of the cluster, or of one served domain."""
    return [session_info(ctx, r) for r in _sessions(ctx, _domain_filter(ctx, domain))]


async def count_sessions(ctx: ApiContext, domain: str | None = None) -> int:
    return len(_sessions(ctx, _domain_filter(ctx, domain)))


async def list_user_sessions(ctx: ApiContext, user: Jid) -> list[dict[str, Any]]:
    return [session_info(ctx, r) for r in _user_sessions(ctx, user)]


async def count_user_resources(ctx: ApiContext, user: Jid) -> int:
    return len(_user_sessions(ctx, user))


async def get_user_resource(ctx: ApiContext, user: Jid, number: int) -> str:
    """The resource of the user's ``number``-th session (1-based, sorted by resource)."""
    resources = [r.jid.resource for r in _user_sessions(ctx, user)]
    if not 0 < number <= len(resources):
        extra = {"user": str(user), "number": number}
        raise ApiError("wrong_res_number", f"Wrong resource number: {number}", extra)
    return resources[number - 1]


async def _kick(ctx: ApiContext, record: SessionRecord, reason: str) -> dict[str, Any]:
    # A session on this node gets the reason as the stream error's text; a remote one is
    # closed through the session manager (which carries only the condition).
    handle = ctx.sessions.local_handle(record.sid)
    if handle is not None:
        handle.kick(KICK_CONDITION, reason)
    else:
        await ctx.sessions.kick(record, KICK_CONDITION)
    return {"jid": str(record.jid), "kicked": True, "code": None, "message": "Session kicked"}


async def kick_user_session(
    ctx: ApiContext, user: Jid, reason: str | None = None
) -> dict[str, Any]:
    """Close one session (a full JID); error ``no_session`` when it is not online."""
    record = ctx.sessions.session(user) if user.resource else None
    if record is None:
        raise ApiError("no_session", "No active session", {"jid": str(user), "reason": reason})
    return await _kick(ctx, record, reason or DEFAULT_REASON)


async def kick_user(ctx: ApiContext, user: Jid, reason: str | None = None) -> list[dict[str, Any]]:
    """Close every session of a user (a bare JID); one result per session."""
    return [await _kick(ctx, r, reason or DEFAULT_REASON) for r in _user_sessions(ctx, user)]
