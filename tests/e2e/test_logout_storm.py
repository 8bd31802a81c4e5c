"""A mass disconnect: every client of a node leaves at once (a logout storm), or the node is
stopped while holding them (SIGTERM's path, `Node.stop`).

In one process (one node, a one-connection pool with a short query deadline, so the storm's
database work cannot run at once and must wait its turn): nothing is logged at error level
(no `hook_handler_crashed`, no asyncio task errors) and every session's last activity is
written.

On two worker processes (`general.workers = 2`, the scale run's shape): thousands of
clients, spread over both workers by the kernel, close at once (a closing tag, or a TCP
reset). Checked: the cluster link between the workers stays up (no node is declared down),
neither worker's event loop stalls beyond `STALL_CPU_MS` of CPU (each worker's
`LoopMonitor` logs its stalls), and every last-activity row is in the database, once.

PostgreSQL and MariaDB; both run in CI, and are skipped with the reason when no server is
reachable. `MEERKAT_STORM_CLIENTS` / `MEERKAT_STORM_WORKER_CLIENTS` raise the number of
clients for a by-hand reproduction (e.g. 5000, with `MEERKAT_STORM_STOP_TIMEOUT=5`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import resource
import socket
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from cluster_xmpp.helpers import wait_for
from cluster_xmpp.procs import MeerkatProcess, Processes, clean
from meerkat.auth.password import make_record
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

DRIVERS = [
    pytest.param("pgsql", id="pgsql", marks=pytest.mark.pg),
    pytest.param("mysql", id="mysql", marks=pytest.mark.mysql),
]


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


@pytest.fixture(params=DRIVERS)
def driver(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def settings(
    driver: str, make_database: Callable[..., Awaitable[Database]]
) -> DatabaseSettings:
    db = await make_database(driver)
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


# -- two worker processes ------------------------------------------------------------------------

WORKER_CLIENTS = int(os.environ.get("MEERKAT_STORM_WORKER_CLIENTS", "3000"))
WORKER_QUERY_TIMEOUT = 1.0
"""The workers' query deadline (seconds); the test holds the `last` table longer."""
DATABASE_STALL = 2.5
"""Seconds the `last` table stays locked from the moment the clients leave: the storm's
first writes hit their deadline, as 5 did in the 100,000-client run, and must be retried."""
STALL_CPU_MS = 250.0
"""The most CPU a worker's loop may spend in one stall during the storm, as its
`LoopMonitor` logs it (the loop thread's CPU over the 100 ms sleep that saw the stall, so
that sleep's ordinary work counts too; logged from 100 ms of wall time). Measured here with
a 10 ms probe, 3,000 clients on two workers: worst stalls of 12-62 ms of CPU. At this size
the code before the storm fixes stalled about as little (26-75 ms); its seconds-long stalls
came at 10,000+ sessions per worker (docs/decisions.md, "The logout storm on workers"),
too many for a test. The bound is a guard against a turn that runs every ending at once.
CPU, not wall time: a loaded CI machine stretches a stall's wall time, not its CPU."""
WORKERS = ["storm-1@localhost", "storm-2@localhost"]
ADD_USER = "INSERT INTO users (server, username, password, pass_details) VALUES (?, ?, '', ?)"
STALL = re.compile(r"event_loop_stalled node=(\S+) ms=(\d+) cpu_ms=(\d+)")
LINK_DOWN = re.compile(r"cluster_node_down|heartbeat_timeout")


async def provision(db: Database, users: int) -> None:
    """u0..u<N-1>, password "secret", sharing one cheap SCRAM record."""
    record = make_record("secret", ["sha256"], 16, lambda: os.urandom(16))
    async with db.transaction() as tx:
        for i in range(users):
            await tx.execute(ADD_USER, "localhost", f"u{i}", record)


@contextlib.asynccontextmanager
async def two_workers(db: Database, tmp_path: Path) -> AsyncIterator[MeerkatProcess]:
    """A `workers = 2` supervisor on plain TCP with a short query deadline, its workers
    clustered."""
    procs = Processes(tmp_path, db.settings)
    sup = procs.new("storm@localhost", workers=2)
    toml = sup.workdir / "meerkat.toml"
    text = toml.read_text().replace(
        'shaper = "none"\n',
        f'shaper = "none"\ntls.mode = "none"\nmax_connections = {WORKER_CLIENTS}\n',
    )
    driver = f'driver = "{db.settings.driver}"\n'
    deadline = f"query_timeout = {int(WORKER_QUERY_TIMEOUT * 1000)}\n"
    toml.write_text(text.replace(driver, driver + deadline))
    try:
        sup.start()
        await sup.wait_started(banners=2)

        async def clustered() -> bool:
            return clean(await sup.system_info(), WORKERS)

        await wait_for(clustered, 30, what="the workers to cluster", interval=0.3)
        yield sup
    finally:
        procs.close()


async def connect_all(port: int) -> list[RawClient]:
    gate = asyncio.Semaphore(LOGINS_IN_PROGRESS)

    async def one(i: int) -> RawClient:
        async with gate:
            client = await RawClient.connect(port)
            await client.login(f"u{i}", tls="none")
            client.send("<presence/>")
            await client.expect("presence")
            return client

    return list(await asyncio.gather(*(one(i) for i in range(WORKER_CLIENTS))))


def end_all(clients: list[RawClient], ending: str) -> None:
    """Every client leaves in the same instant: a closing tag, or a TCP reset."""
    for client in clients:
        if ending == "reset":
            sock = client.writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.writer.transport.abort()
        else:
            client.writer.write(b"</stream:stream>")
            client.writer.transport.close()
        client.parser.close()


@contextlib.asynccontextmanager
async def last_table_locked(db: Database) -> AsyncIterator[None]:
    """No one writes the `last` table while the block runs (a database that stalls)."""
    async with db.transaction() as tx:
        if db.settings.driver == "mysql":
            await tx.execute("LOCK TABLES last WRITE")
        else:
            await tx.execute("LOCK TABLE last IN EXCLUSIVE MODE")
        try:
            yield
        finally:
            if db.settings.driver == "mysql":
                await tx.execute("UNLOCK TABLES")


@pytest.mark.timeout(300)
@pytest.mark.parametrize("ending", ["closing tag", "reset"])
async def test_a_logout_storm_on_two_workers_keeps_the_link_up_loops_short_and_every_row(
    driver: str,
    ending: str,
    make_database: Callable[..., Awaitable[Database]],
    tmp_path: Path,
) -> None:
    raise_file_limit(2 * WORKER_CLIENTS + 200)
    db = await make_database(driver)
    await provision(db, WORKER_CLIENTS)
    async with two_workers(db, tmp_path) as sup:
        clients = await connect_all(sup.c2s)
        placed = {node for _, node in await sup.sessions()}
        assert placed == set(WORKERS)  # the kernel spread them over both workers
        storm_at = len(sup.output())
        left_at = int(time.time())
        async with last_table_locked(db):
            end_all(clients, ending)
            await asyncio.sleep(DATABASE_STALL)
        written = await wait_for_last_rows(db, WORKER_CLIENTS, 60)
        await asyncio.sleep(1.0)  # a link that broke meanwhile would be logged by now
        log = sup.output()[storm_at:]
        info = await sup.system_info()
    stalls = [(m[1], int(m[2]), int(m[3])) for m in STALL.finditer(log)]
    worst = max(stalls, key=lambda s: s[2], default=("-", 0, 0))
    assert written == WORKER_CLIENTS, f"{WORKER_CLIENTS - written} last-activity rows missing"
    assert " ERROR " not in log, log[log.index(" ERROR ") - 200 :][:3000]
    assert "last_write_retried" in log  # the database stall was felt, and outlived
    rows = await db.fetchall("SELECT username, seconds FROM last")
    assert sorted(str(u) for u, _ in rows) == sorted(f"u{i}" for i in range(WORKER_CLIENTS))
    assert all(left_at <= int(seconds) <= left_at + 120 for _, seconds in rows)
    assert LINK_DOWN.findall(log) == [] and clean(info, WORKERS)
    assert worst[2] <= STALL_CPU_MS, f"worst stall {worst}; all: {stalls}"


def raise_file_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))
