"""Admin category `server`: the node's status (MongooseIM 6.2 `server.status`)."""

from __future__ import annotations

from typing import Any

from .context import ApiContext

__all__ = ["status"]


async def status(ctx: ApiContext) -> dict[str, Any]:
    """``{statusCode, message, version, commitHash}``; a node that answers is running."""
    message = (
        f"The node {ctx.node} is started. Status: started "
        f"Meerkat {ctx.version} is running in that node."
    )
    return {
        "statusCode": "RUNNING",
        "message": message,
        "version": ctx.version,
        "commitHash": ctx.commit_hash or None,
    }
