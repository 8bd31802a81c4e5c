"""`general.workers = N`: one `meerkat` command, N clustered node processes on shared ports."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from children import children_of, is_running
from e2e.rawxmpp import RawClient
from meerkat.db import DatabaseSettings

from .helpers import body_of_next_message, message, wait_for
from .procs import Processes, clean

WORKERS = ["wk-1@localhost", "wk-2@localhost", "wk-3@localhost"]


@pytest.fixture
async def group(tmp_path: Path) -> AsyncIterator[Processes]:
    # The embedded default: SQLite under the data directory, created by the supervisor.
    procs = Processes(tmp_path, DatabaseSettings(driver="sqlite", database="meerkat.sqlite3"))
    try:
        yield procs
    finally:
        procs.close()


async def test_workers_share_the_client_port_and_form_one_cluster(group: Processes) -> None:
    sup = group.new("wk@localhost", workers=3)
    text = (sup.workdir / "meerkat.toml").read_text()
    (sup.workdir / "meerkat.toml").write_text(text.replace("create_schema = false", ""))
    sup.start()
    await sup.wait_started(banners=3)
    assert "supervising 3 workers" in sup.output()

    async def one_cluster() -> bool:
        return clean(await sup.system_info(), WORKERS)  # whichever worker answers

    await wait_for(one_cluster, 30, what="the workers to cluster", interval=0.3)
    await sup.graphql(
        'mutation { account { a: registerUser(username: "alice", domain: "localhost", '
        'password: "secret") { jid } b: registerUser(username: "bob", domain: "localhost", '
        'password: "secret") { jid } } }'
    )
    clients: dict[str, RawClient] = {}
    for i in range(12):  # the kernel spreads connections over the workers
        user = "alice" if i % 2 == 0 else "bob"
        client = await RawClient.connect(sup.c2s)
        await client.login(user, resource=f"r{i}")
        clients[f"{user}@localhost/r{i}"] = client
    placed = dict(await sup.sessions())
    assert set(placed.values()) <= set(WORKERS)
    alices = [j for j in placed if j.startswith("alice")]
    bobs = [j for j in placed if j.startswith("bob")]
    pairs = [(a, b) for a in alices for b in bobs if placed[a] != placed[b]]
    assert pairs, f"all sessions on one worker: {placed}"
    a, b = pairs[0]
    clients[a].send(message(b, "between workers"))
    assert await body_of_next_message(clients[b]) == "between workers"
    for client in clients.values():
        await client.close()
    assert await sup.terminate() == 0
    assert sup.output().count("node_stopped") == 3


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
async def test_workers_die_with_a_supervisor_killed_outright(group: Processes) -> None:
    """SIGKILL leaves the supervisor no time to stop its workers: the kernel kills them."""
    sup = group.new("wk@localhost", workers=2)
    text = (sup.workdir / "meerkat.toml").read_text()
    (sup.workdir / "meerkat.toml").write_text(text.replace("create_schema = false", ""))
    sup.start()
    await sup.wait_started(banners=2)
    assert sup.proc is not None
    workers = children_of(sup.proc.pid)
    assert len(workers) == 2, workers
    os.kill(sup.proc.pid, signal.SIGKILL)  # the supervisor alone, not its process group
    sup.proc.wait()
    try:
        await wait_for(lambda: not any(map(is_running, workers)), 10, what="the workers to die")
    finally:  # `group.close()` only kills a supervisor that still runs
        with contextlib.suppress(ProcessLookupError):
            os.killpg(sup.proc.pid, signal.SIGKILL)
