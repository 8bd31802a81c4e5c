"""`ApiContext`: what the admin functions need of a running node.

The server implements it (a small dataclass is enough); tests build one around an in-process
kernel. Nothing here imports the server, listeners or GraphQL.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, Protocol

from ..auth.accounts import Accounts
from ..core.clock import Clock
from ..core.router import Router
from ..core.sessions import SessionManager


class ClusterInfo(Protocol):
    """The CETS status of a clustered node (`meerkat.cluster.facade.Cluster` provides it)."""

    async def system_info(self) -> dict[str, Any]:
        """`cets.systemInfo`: availableNodes, joinedNodes ... with MongooseIM's keys."""
        ...

    def table_info(self) -> list[dict[str, Any]]:
        """`cets.tableInfo`: [{tableName, memory, size, nodes}] in table name order."""
        ...


class ApiContext(Protocol):
    """A node as the admin API sees it.

    - ``hosts``: the served XMPP domains.
    - ``node``: this node's name (``meerkat@host``), used in messages and session info.
    - ``sessions`` / ``router`` / ``accounts``: the kernel's session manager, router and
      account service.
    - ``stores``: the feature stores (``stores.roster`` ...), for categories still to come.
    - ``clock``: wall and monotonic time; ``started_at`` is ``clock.monotonic()`` at start.
    - ``version``: the server version string; ``commit_hash``: the build's commit, or "".
    - ``cluster``: the CETS status provider, None when CETS is not configured.
    - ``s2s_counts``: optional provider of (incoming, outgoing) s2s connection counts.
    - ``modules``: names of the running modules (``mod_last`` ...), for categories that need
      one (error ``deps_not_loaded``); None when unknown (then only the store is checked).
    """

    hosts: Collection[str]
    node: str
    sessions: SessionManager
    router: Router
    accounts: Accounts
    stores: Any
    clock: Clock
    started_at: float
    version: str
    commit_hash: str
    cluster: ClusterInfo | None
    s2s_counts: Callable[[], tuple[int, int]] | None
    modules: Collection[str] | None


@dataclass
class NodeApiContext:
    """A plain `ApiContext`: the server may use it as is, tests build one around a kernel."""

    hosts: Collection[str]
    node: str
    sessions: SessionManager
    router: Router
    accounts: Accounts
    clock: Clock
    started_at: float
    version: str
    stores: Any = None
    commit_hash: str = ""
    cluster: ClusterInfo | None = None
    s2s_counts: Callable[[], tuple[int, int]] | None = None
    modules: Collection[str] | None = None
