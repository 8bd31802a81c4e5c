"""`general.workers = N`: N node processes on one machine, clustered like any other nodes.

Python runs one core per process, so a machine's cores are used the way machines are
combined: each worker is a full cluster node. The `meerkat` process started by the user
becomes a small supervisor:

1. it prepares what the workers would otherwise race for: the data directory, the cluster
   secret file, and the database schema (created or migrated once);
2. it starts worker k = 1..N as ``python -m meerkat`` with ``MEERKAT_WORKER=k``; the worker
   takes the node name ``<name>-k@<host>`` and the cluster port ``port + k - 1``, and binds
   the client and HTTP ports with SO_REUSEPORT, so the kernel spreads connections over
   the workers; the workers find each other through the configured discovery, exactly as
   nodes on different machines do;
3. it forwards SIGTERM/SIGINT to every worker and waits for them (SIGKILL after
   `STOP_TIMEOUT`); a supervisor killed outright takes its workers along (the kernel sends
   them SIGKILL, see `pdeathsig`), so they never keep serving unsupervised; a worker that
   exits on its own is restarted after a pause, unless it failed right after starting (a
   configuration or port problem that a restart cannot fix): then every worker is stopped
   and `meerkat` exits with an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from .config import ServerConfig, cluster_secret, pool_settings
from .pdeathsig import die_with_parent

log = logging.getLogger(__name__)

ENV = "MEERKAT_WORKER"
STOP_TIMEOUT = 30.0
"""Seconds workers get to stop after SIGTERM before they are killed."""
EARLY_EXIT = 10.0
"""A worker that exits sooner than this after its start is not restarted."""
RESTART_DELAY = 1.0
POLL_INTERVAL = 1.0
"""Seconds between the supervisor's looks at its workers (a stop signal is forwarded at
once by the handler; a dead worker waits `RESTART_DELAY` anyway). It was 0.2 s: five
wake-ups a second for an idle process, which a measured run under callgrind, 50 times
slower than real time, charged to every login (~27 k instructions each)."""


def worker_index() -> int | None:
    """This process's worker number (1-based), None in the supervisor or a lone node."""
    value = os.environ.get(ENV)
    if value is None or not value.isdigit() or int(value) < 1:
        return None
    return int(value)


def worker_name(node_name: str, index: int) -> str:
    """``meerkat@host`` -> ``meerkat-<index>@host``."""
    name, _, host = node_name.partition("@")
    return f"{name}-{index}@{host}"


def worker_config(config: ServerConfig, index: int) -> ServerConfig:
    """The configuration of worker `index`: its own node name and cluster port."""
    general = dataclasses.replace(
        config.general, node_name=worker_name(config.general.node_name, index)
    )
    internal = config.internal_databases
    if internal.cets is not None:
        cets = dataclasses.replace(internal.cets, port=internal.cets.port + index - 1)
        internal = dataclasses.replace(internal, cets=cets)
    return dataclasses.replace(config, general=general, internal_databases=internal)


async def _prepare_database(config: ServerConfig) -> None:
    from .db import Database

    pool = config.outgoing_pools.rdbms.get("default")
    if pool is None:
        return
    db = await Database.open(pool_settings(pool), Path(config.general.data_dir))
    try:
        await db.ensure_schema()
    finally:
        await db.close()


class Supervisor:
    """Starts, restarts and stops the worker processes."""

    def __init__(self, count: int, argv: list[str]) -> None:
        self.count = count
        self.argv = argv
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.started: dict[int, float] = {}
        self.stopping = False
        self.failed = False

    def spawn(self, index: int) -> None:
        env = {**os.environ, ENV: str(index)}
        self.procs[index] = subprocess.Popen(
            [sys.executable, "-m", "meerkat", *self.argv], env=env, preexec_fn=die_with_parent()
        )
        self.started[index] = time.monotonic()

    def signal_all(self, sig: int) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(sig)

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
        self.signal_all(signal.SIGTERM)

    def run(self) -> int:
        for index in range(1, self.count + 1):
            self.spawn(index)
        print(f"meerkat: supervising {self.count} workers", file=sys.stderr, flush=True)
        restart_at: dict[int, float] = {}
        while not self.stopping:
            time.sleep(POLL_INTERVAL)
            now = time.monotonic()
            for index, proc in list(self.procs.items()):
                code = proc.poll()
                if code is None or index in restart_at or self.stopping:
                    continue
                if now - self.started[index] < EARLY_EXIT:
                    print(
                        f"meerkat: worker {index} failed at start (exit {code}); stopping",
                        file=sys.stderr,
                        flush=True,
                    )
                    self.failed = True
                    self.stopping = True
                    self.signal_all(signal.SIGTERM)
                    break
                print(f"meerkat: worker {index} exited ({code}); restarting", file=sys.stderr)
                restart_at[index] = now + RESTART_DELAY
            for index, when in list(restart_at.items()):
                if now >= when and not self.stopping:
                    del restart_at[index]
                    self.spawn(index)
        return self.wait_all()

    def wait_all(self) -> int:
        deadline = time.monotonic() + STOP_TIMEOUT
        for proc in self.procs.values():
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return 1 if self.failed else 0


def run_workers(config: ServerConfig, config_path: Path | None) -> int:
    """The supervisor's main: prepare, run the workers until a stop signal, return the exit code."""
    from .db import DatabaseError

    config.general.data_dir.mkdir(parents=True, exist_ok=True)
    cluster_secret(config)  # create the secret file once, before the workers read it
    try:
        asyncio.run(_prepare_database(config))
    except DatabaseError as exc:
        print(f"meerkat: database: {exc}", file=sys.stderr)
        return 1
    argv = ["-c", str(config_path)] if config_path is not None else []
    supervisor = Supervisor(config.general.workers, argv)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, supervisor.on_signal)
    return supervisor.run()
