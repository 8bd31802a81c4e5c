"""Real `meerkat` processes for the cluster tests: config files, start, kill, meerkatctl.

Every port is a free loopback port (or an address inside a test network namespace); every
process is killed when its `Processes` group closes, whatever happened in the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp

from children import popen
from meerkat.db import DatabaseSettings
from ports import free_port

from .helpers import SECRET, wait_for

BIN = Path(sys.executable).parent


def pool_toml(db: DatabaseSettings) -> str:
    """`[outgoing_pools.rdbms.default]` for a database whose schema already exists."""
    lines = [
        "[outgoing_pools.rdbms.default]",
        "workers = 2",
        "create_schema = false",
        "[outgoing_pools.rdbms.default.connection]",
        f'driver = "{db.driver}"',
        f'database = "{db.database}"',
    ]
    if db.driver != "sqlite":
        lines += [f'host = "{db.host}"', f"port = {db.port}", f'username = "{db.username}"']
        if db.password:
            lines.append(f'password = "{db.password}"')
        if db.schema:
            lines.append(f'schema = "{db.schema}"')
    return "\n".join(lines) + "\n"


class MeerkatProcess:
    """One `meerkat` node (or a `workers = N` supervisor) with its own config file."""

    def __init__(
        self,
        workdir: Path,
        name: str,
        db: DatabaseSettings,
        *,
        ip: str = "127.0.0.1",
        netns: str | None = None,
        backend: str = "rdbms",
        node_list_file: Path | None = None,
        secret: str = SECRET,
        workers: int = 1,
        c2s_port: int | None = None,
        admin_port: int | None = None,
        cluster_port: int | None = None,
        extra_toml: str = "",
    ) -> None:
        self.workdir = workdir / name.partition("@")[0]
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.ip = ip
        self.netns = netns
        self.c2s = c2s_port or free_port()
        self.admin = admin_port or free_port()
        self.cluster_port = cluster_port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.workdir / "meerkat.log"
        cets = [
            "[internal_databases.cets]",
            f'backend = "{backend}"',
            f'ip_address = "{ip}"',
            f"port = {self.cluster_port}",
            f'secret = "{secret}"',
        ]
        if node_list_file is not None:
            cets.append(f'node_list_file = "{node_list_file}"')
        (self.workdir / "meerkat.toml").write_text(
            f"""
[general]
hosts = ["localhost"]
node_name = "{name}"
data_dir = "{self.workdir / "var"}"
loglevel = "info"
workers = {workers}

[[listen.c2s]]
port = {self.c2s}
ip_address = "{ip}"
shaper = "none"

[[listen.http]]
port = {self.admin}
ip_address = "{ip}"
[[listen.http.handlers.mongoose_graphql_handler]]
schema_endpoint = "admin"

{pool_toml(db)}
{chr(10).join(cets)}
{extra_toml}
"""
        )

    def command(self, *argv: str) -> list[str]:
        if self.netns is None:
            return list(argv)
        return ["ip", "netns", "exec", self.netns, *argv]

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = popen(
                self.command(str(BIN / "meerkat"), "-c", str(self.workdir / "meerkat.toml")),
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    async def wait_started(self, timeout: float = 30.0, banners: int = 1) -> None:
        """Until the start-up banner(s) appear; fails at once if the process exits."""

        def started() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited:\n{self.output()[-3000:]}")
            return self.output().count("meerkat: node ") >= banners

        await wait_for(started, timeout, what=f"{self.name} to start", interval=0.1)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL (the whole session: `ip netns exec` and workers included)."""
        if self.running:
            assert self.proc is not None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    async def terminate(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        for _ in range(int(timeout * 20)):
            code = self.proc.poll()
            if code is not None:
                return code
            await asyncio.sleep(0.05)
        self.kill()
        raise AssertionError(f"{self.name} did not stop on SIGTERM")

    async def ctl(self, *args: str) -> tuple[int, str]:
        """Run `meerkatctl` against this node (inside its namespace, if any)."""
        env = {**os.environ, "MEERKATCTL_URL": f"http://{self.ip}:{self.admin}/api/graphql"}
        proc = await asyncio.create_subprocess_exec(
            *self.command(str(BIN / "meerkatctl"), *args),
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
        return proc.returncode or 0, out.decode()

    async def ctl_json(self, *args: str) -> Any:
        code, out = await self.ctl(*args)
        assert code == 0, out
        return json.loads(out)["data"]

    async def graphql(self, query: str) -> Any:
        """A GraphQL query over HTTP (faster than meerkatctl for polling; not in a netns)."""
        url = f"http://{self.ip}:{self.admin}/api/graphql"
        async with aiohttp.ClientSession() as http, http.post(url, json={"query": query}) as r:
            body = await r.json()
        assert "errors" not in body, body
        return body["data"]

    async def system_info(self) -> dict[str, Any]:
        if self.netns is not None:
            data = await self.ctl_json("cets", "systemInfo")
        else:
            data = await self.graphql(
                "{ cets { systemInfo { availableNodes unavailableNodes joinedNodes "
                "discoveredNodes discoveryWorks remoteNodesWithoutDisco remoteUnknownTables "
                "remoteNodesWithUnknownTables remoteNodesWithMissingTables remoteMissingTables "
                "conflictNodes conflictTables } } }"
            )
        info: dict[str, Any] = data["cets"]["systemInfo"]
        return info

    async def sessions(self) -> list[tuple[str, str]]:
        data = await self.graphql("{ session { listSessions { user node } } }")
        return sorted((s["user"], s["node"]) for s in data["session"]["listSessions"])


def clean(info: dict[str, Any], nodes: list[str]) -> bool:
    """systemInfo lists exactly `nodes` as available, joined and discovered; nothing else."""
    nodes = sorted(nodes)
    return (
        info["availableNodes"] == nodes
        and info["joinedNodes"] == nodes
        and info["discoveredNodes"] == nodes
        and info["discoveryWorks"] is True
        and all(
            info[key] == []
            for key in (
                "unavailableNodes",
                "remoteNodesWithoutDisco",
                "remoteUnknownTables",
                "remoteNodesWithUnknownTables",
                "remoteNodesWithMissingTables",
                "remoteMissingTables",
                "conflictNodes",
                "conflictTables",
            )
        )
    )


class Processes:
    """Every process of one test; `close()` kills whatever still runs."""

    def __init__(self, workdir: Path, db: DatabaseSettings) -> None:
        self.workdir = workdir
        self.db = db
        self.all: list[MeerkatProcess] = []

    def new(self, name: str, **kw: Any) -> MeerkatProcess:
        proc = MeerkatProcess(self.workdir, name, self.db, **kw)
        self.all.append(proc)
        return proc

    async def start(self, *names: str, **kw: Any) -> list[MeerkatProcess]:
        """Start nodes at the same time and wait for all of them."""
        procs = [self.new(name, **kw) for name in names]
        for p in procs:
            p.start()
        await asyncio.gather(*(p.wait_started() for p in procs))
        return procs

    async def wait_clean(
        self, procs: list[MeerkatProcess], timeout: float = 30.0
    ) -> dict[str, dict[str, Any]]:
        """Until every node's systemInfo is clean with exactly these nodes."""
        names = [p.name for p in procs]
        infos: dict[str, dict[str, Any]] = {}

        async def all_clean() -> bool:
            for p in procs:
                infos[p.name] = await p.system_info()
            return all(clean(info, names) for info in infos.values())

        try:
            await wait_for(all_clean, timeout, what="a clean systemInfo", interval=0.3)
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {json.dumps(infos, indent=1)}") from None
        return infos

    def close(self) -> None:
        for p in self.all:
            p.kill()
