"""Admin functions per category (MongooseIM's admin API); GraphQL and meerkatctl adapt them.

Every function is ``async def op(ctx: ApiContext, ...)`` returning JSON-ready values and
raising `ApiError(code, message, extra)` for refusals.
"""

from . import (
    account,
    cets,
    last,
    offline,
    private,
    roster,
    server,
    session,
    stanza,
    stat,
    user,
)
from .context import ApiContext, ClusterInfo, NodeApiContext
from .errors import ApiError

__all__ = [
    "ApiContext",
    "ApiError",
    "ClusterInfo",
    "NodeApiContext",
    "account",
    "cets",
    "last",
    "offline",
    "private",
    "roster",
    "server",
    "session",
    "stanza",
    "stat",
    "user",
]
