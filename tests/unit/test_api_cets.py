"""Admin API category `cets`: CETS status from the cluster, or deps_not_loaded without one."""

from __future__ import annotations

from typing import Any

import pytest
from test_api_support import Kernel

from meerkat.api import ApiError, cets

SYSTEM_INFO = {
    "availableNodes": ["a", "b"],
    "unavailableNodes": [],
    "joinedNodes": ["a", "b"],
    "discoveredNodes": ["a", "b"],
    "remoteNodesWithoutDisco": [],
    "remoteNodesWithUnknownTables": [],
    "remoteUnknownTables": [],
    "remoteNodesWithMissingTables": [],
    "remoteMissingTables": [],
    "conflictNodes": [],
    "conflictTables": [],
    "discoveryWorks": True,
}
TABLES = [{"tableName": "session", "memory": 100, "size": 2, "nodes": ["a", "b"]}]


class FakeCluster:
    async def system_info(self) -> dict[str, Any]:
        return dict(SYSTEM_INFO)

    def table_info(self) -> list[dict[str, Any]]:
        return list(TABLES)


async def test_cets_status_comes_from_the_cluster() -> None:
    kernel = Kernel()
    kernel.ctx.cluster = FakeCluster()
    assert await cets.system_info(kernel.ctx) == SYSTEM_INFO
    assert await cets.table_info(kernel.ctx) == TABLES


async def test_without_cets_the_error_is_deps_not_loaded() -> None:
    kernel = Kernel()
    for call in (cets.system_info, cets.table_info):
        with pytest.raises(ApiError) as info:
            await call(kernel.ctx)
        assert info.value.code == "deps_not_loaded"
        assert info.value.message == "Some of the required internal databases are not loaded"
