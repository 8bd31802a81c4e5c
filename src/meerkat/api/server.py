"""Admin category `server`: the node's status and log level (MongooseIM 6.2 `server`)."""

from __future__ import annotations

import logging
from typing import Any

from .context import ApiContext
from .errors import ApiError

__all__ = ["LOG_LEVELS", "get_loglevel", "set_loglevel", "status"]

LOGGER = "meerkat"
"""The logger whose level the API reads and sets (every meerkat.* logger inherits it)."""

#: MongooseIM's LogLevel names -> Python logging levels. NONE is above CRITICAL; EMERGENCY and
#: ALERT have no Python equivalent and mean CRITICAL; NOTICE sits between INFO and WARNING.
LOG_LEVELS: dict[str, int] = {
    "NONE": logging.CRITICAL + 10,
    "EMERGENCY": logging.CRITICAL,
    "ALERT": logging.CRITICAL,
    "CRITICAL": logging.CRITICAL,
    "ERROR": logging.ERROR,
    "WARNING": logging.WARNING,
    "NOTICE": logging.INFO + 5,
    "INFO": logging.INFO,
    "DEBUG": logging.DEBUG,
    "ALL": 1,
}


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


async def get_loglevel(_ctx: ApiContext) -> str:
    """The current level as a MongooseIM LogLevel name (the closest one at or below it)."""
    level = logging.getLogger(LOGGER).getEffectiveLevel()
    for name in ("NONE", "CRITICAL", "ERROR", "WARNING", "NOTICE", "INFO", "DEBUG"):
        if level >= LOG_LEVELS[name]:
            return name
    return "ALL"


async def set_loglevel(_ctx: ApiContext, level: str) -> str:
    """Set the level of every meerkat logger."""
    if level not in LOG_LEVELS:
        raise ApiError("wrong_level", f"Unknown log level {level}")
    logging.getLogger(LOGGER).setLevel(LOG_LEVELS[level])
    return "Log level successfully set."
