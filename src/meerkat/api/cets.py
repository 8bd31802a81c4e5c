"""Admin category `cets`: the cluster's CETS status (MongooseIM 6.2 `cets.systemInfo`/`tableInfo`).

Both need CETS: on a node without a cluster the error is ``deps_not_loaded``, "Some of the
required internal databases are not loaded", as MongooseIM's ``@use`` directive reports it.
"""

from __future__ import annotations

from typing import Any

from .context import ApiContext, ClusterInfo
from .errors import ApiError

__all__ = ["system_info", "table_info"]


def _cluster(ctx: ApiContext) -> ClusterInfo:
    # getattr: a context written before `cluster` joined the protocol simply has no CETS.
    cluster: ClusterInfo | None = getattr(ctx, "cluster", None)
    if cluster is None:
        raise ApiError(
            "deps_not_loaded",
            "Some of the required internal databases are not loaded",
            {"not_loaded_internal_databases": ["cets"]},
        )
    return cluster


async def system_info(ctx: ApiContext) -> dict[str, Any]:
    """Which nodes are available, joined, discovered; table conflicts (see DESIGN §6)."""
    return await _cluster(ctx).system_info()


async def table_info(ctx: ApiContext) -> list[dict[str, Any]]:
    """Every replicated table with its size, memory and nodes."""
    return _cluster(ctx).table_info()
