"""Admin functions per category (MongooseIM's admin API); GraphQL and meerkatctl adapt them.

Every function is ``async def op(ctx: ApiContext, ...)`` returning JSON-ready values and
raising `ApiError(code, message, extra)` for refusals.
"""

from . import account, server, session, stanza, stat
from .context import ApiContext, ClusterStatus, NodeApiContext
from .errors import ApiError

__all__ = [
    "ApiContext",
    "ApiError",
    "ClusterStatus",
    "NodeApiContext",
    "account",
    "server",
    "session",
    "stanza",
    "stat",
]
