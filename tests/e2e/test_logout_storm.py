"""A mass disconnect against a small database pool: every client of a node leaves at once
(a logout storm), or the node is stopped while holding them (SIGTERM's path, `Node.stop`).

The promise checked: nothing is logged at error level (no `hook_handler_crashed`, no
asyncio task errors) and every session's last activity is written. The pool is one
connection with a short query deadline, so the storm's database work cannot run at once and
must wait its turn. PostgreSQL only (the production choice for many sessions); runs in CI,
skipped with the reason when no server is reachable. `MEERKAT_STORM_CLIENTS` raises the
number of clients for a by-hand reproduction (e.g. 5000, with `MEERKAT_STORM_STOP_TIMEOUT=5`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from meerkat.config import config_from_dict
from meerkat.core.hooks import UNSET_PRESENCE
from meerkat.db import Database, DatabaseSettings
from meerkat.modules import DEFAULT_MODULES, MODULES
from meerkat.server import Node
from meerkat.xmpp.jid import Jid

from .conftest import free_port, node_config
from .rawxmpp import RawClient
from .test_databases import loopback_cluster, outgoing_pools

CLIENTS = int(os.environ.get("MEERKAT_STORM_CLIENTS", "500"))
QUERY_TIMEOUT = 0.3
LOGINS_IN_PROGRESS = 50
STOP_TIMEOUT = float(os.environ.get("MEERKAT_STORM_STOP_TIMEOUT", "0.5"))
"""Below the ~1 s that ending every session takes here; with thousands of clients, raise it
over the length of one loop turn that handles every session's end (stop counts a window
with no session ended as no progress)."""

pytestmark = pytest.mark.pg


@contextlib.asynccontextmanager
async def storm_node(data_dir: Path, settings: DatabaseSettings) -> AsyncIterator[Node]:
    """A production-mode node (hook errors logged, not raised) on plain TCP with cheap SCRAM,
    `CLIENTS` users registered."""
    data = node_config(
        data_dir,
        listen={"c2s": [{"port": free_port(), "ip_address": "127.0.0.1", "tls": {"mode": "none"},
                         "shaper": "none", "max_connections": CLIENTS + 100}]},
        auth={"password": {"scram_iterations": 16}},
        outgoing_pools=outgoing_pools(settings),
        modules={name: {} for name in DEFAULT_MODULES},
        internal_databases=loopback_cluster(),
    )  # fmt: skip
    node = Node(config_from_dict(data, MODULES, DEFAULT_MODULES))
    await node.start()
    try:
        assert node.accounts is not None
        for i in range(CLIENTS):
            await node.accounts.register(Jid(f"u{i}", "localhost"), "secret")
        yield node
    finally:
        await node.stop()


async def log_in_all(node: Node) -> list[RawClient]:
    """Every user logged in once, with initial presence."""
    gate = asyncio.Semaphore(LOGINS_IN_PROGRESS)

    async def one(i: int) -> RawClient:
        async with gate:
            client = await RawClient.connect(node.c2s_port())
            await client.login(f"u{i}", tls="none")
            client.send("<presence/>")
            await client.expect("presence")
            return client

    return list(await asyncio.gather(*(one(i) for i in range(CLIENTS))))


async def last_rows(db: Database) -> int:
    return int(await db.fetchval("SELECT COUNT(*) FROM last"))


async def wait_for_last_rows(db: Database, expected: int, timeout: float) -> int:
    """The number of `last` rows once it reached `expected` (or when `timeout` ran out)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (written := await last_rows(db)) < expected and loop.time() < deadline:
        await asyncio.sleep(0.1)
    return written


@pytest.fixture
async def settings(make_database: Callable[..., Awaitable[Database]]) -> DatabaseSettings:
    db = await make_database("pgsql")
    return db.settings.replace(workers=1, query_timeout=QUERY_TIMEOUT)


async def test_a_logout_storm_records_every_last_activity_without_errors(
    settings: DatabaseSettings,
    make_database: Callable[..., Awaitable[Database]],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR)
    async with storm_node(tmp_path / "node", settings) as node:
        clients = await log_in_all(node)
        caplog.clear()
        for client in clients:
            client.writer.close()
        assert node.db is not None
        written = await wait_for_last_rows(node.db, CLIENTS, 60)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert (len(errors), errors[:3], written) == (0, [], CLIENTS)


async def test_stopping_a_node_records_every_last_activity_without_errors(
    settings: DatabaseSettings,
    make_database: Callable[..., Awaitable[Database]],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR)
    async with storm_node(tmp_path / "node", settings) as node:
        clients = await log_in_all(node)
        # Sessions end one at a time, a few ms each (as when their writes queue on the
        # database), so ending them all takes far longer than the stop timeout: stop must
        # go on while sessions keep ending, not cancel them mid-way.
        gate = asyncio.Lock()

        async def one_at_a_time(acc: object, params: dict[str, Any]) -> object:
            async with gate:
                await asyncio.sleep(0.002)
            return None

        node.hooks.add(UNSET_PRESENCE, "localhost", one_at_a_time, 90, owner=gate)
        caplog.clear()
        await node.stop(timeout=STOP_TIMEOUT)
    for client in clients:
        client.writer.close()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    check = await Database.open(settings, tmp_path)
    try:
        written = await last_rows(check)
    finally:
        await check.close()
    assert (len(errors), errors[:3], written) == (0, [], CLIENTS)
