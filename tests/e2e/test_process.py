"""The `meerkat` and `meerkatctl` commands as a user runs them: a real process, SIGTERM, restart."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from children import create_subprocess_exec, is_running, popen

from .conftest import free_port
from .rawxmpp import logged_in

BIN = Path(sys.executable).parent
TESTS = Path(__file__).parent.parent

PARENT = """
import subprocess, sys, time
sys.path.insert(0, sys.argv[1])
from children import popen
with open("meerkat.log", "ab") as log:
    node = popen(sys.argv[2:], stdout=log, stderr=subprocess.STDOUT)
print(node.pid, flush=True)
time.sleep(600)
"""
"""A process that starts a node the way the tests do, then waits to be killed."""


class Server:
    """A `meerkat` process started from a config file in a temp dir."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.c2s, self.tls, self.admin = free_port(), free_port(), free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        (workdir / "meerkat.toml").write_text(
            f"""
[general]
hosts = ["localhost"]
default_server_domain = "localhost"
data_dir = "{workdir / "var"}"
loglevel = "info"

[[listen.c2s]]
port = {self.c2s}
ip_address = "127.0.0.1"

[[listen.c2s]]
port = {self.tls}
ip_address = "127.0.0.1"
tls.mode = "tls"

[internal_databases.cets]
ip_address = "127.0.0.1"
port = {free_port()}

[[listen.http]]
port = {self.admin}
ip_address = "127.0.0.1"
[[listen.http.handlers.mongoose_graphql_handler]]
schema_endpoint = "admin"
"""
        )

    async def start(self) -> None:
        with open(self.workdir / "meerkat.log", "ab") as log:
            self.proc = popen(
                [str(BIN / "meerkat"), "-c", str(self.workdir / "meerkat.toml")],
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        for _ in range(200):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.admin)
                writer.close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise AssertionError(self.output()) from None
                await asyncio.sleep(0.05)
        raise AssertionError("meerkat did not start: " + self.output())

    def output(self) -> str:
        return (self.workdir / "meerkat.log").read_text(errors="replace")

    async def ctl(self, *args: str) -> tuple[int, str]:
        env = {**os.environ, "MEERKATCTL_URL": f"http://127.0.0.1:{self.admin}/api/graphql"}
        proc = await asyncio.create_subprocess_exec(
            str(BIN / "meerkatctl"),
            *args,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
        return proc.returncode or 0, out.decode()

    async def terminate(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        for _ in range(200):
            code = self.proc.poll()
            if code is not None:
                return code
            await asyncio.sleep(0.05)
        self.proc.kill()
        raise AssertionError("meerkat did not stop on SIGTERM")


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    srv = Server(tmp_path)
    await srv.start()
    yield srv
    if srv.proc is not None and srv.proc.poll() is None:
        srv.proc.kill()
        srv.proc.wait()


async def test_meerkatctl_registers_a_user_with_mongooseims_exact_output(server: Server) -> None:
    code, out = await server.ctl(
        "account",
        "registerUser",
        "--username",
        "alice",
        "--domain",
        "localhost",
        "--password",
        "secret",
    )
    assert code == 0, out
    assert json.loads(out) == {
        "data": {
            "account": {
                "registerUser": {
                    "message": "User alice@localhost successfully registered",
                    "jid": "alice@localhost",
                }
            }
        }
    }
    assert out.index('"message"') < out.index('"jid"')
    code, out = await server.ctl(
        "account",
        "registerUser",
        "--username",
        "alice",
        "--domain",
        "localhost",
        "--password",
        "secret",
    )
    assert code == 1
    assert json.loads(out)["errors"][0]["extensions"]["code"] == "exists"
    client = await logged_in(server.tls, "alice", direct_tls=True)
    code, out = await server.ctl("session", "countSessions")
    assert code == 0 and json.loads(out)["data"]["session"]["countSessions"] == 1
    await client.close()


async def test_meerkatctl_reports_an_unreachable_node_with_exit_code_3(tmp_path: Path) -> None:
    env = {**os.environ, "MEERKATCTL_URL": f"http://127.0.0.1:{free_port()}/api/graphql"}
    proc = await asyncio.create_subprocess_exec(
        str(BIN / "meerkatctl"),
        "server",
        "status",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    await proc.communicate()
    assert proc.returncode == 3


async def test_sigterm_closes_every_stream_with_system_shutdown_and_keeps_offline_messages(
    server: Server,
) -> None:
    for user in ("alice", "bob"):
        code, out = await server.ctl(
            "account",
            "registerUser",
            "--username",
            user,
            "--domain",
            "localhost",
            "--password",
            "secret",
        )
        assert code == 0, out
    alice = await logged_in(server.c2s, "alice", "a")
    alice.send("<presence/>")
    alice.send("<message to='bob@localhost' type='chat' id='o1'><body>kept</body></message>")
    alice.send("<iq type='get' id='sync'><ping xmlns='urn:xmpp:ping'/></iq>")
    await alice.expect(lambda e: e.attrs.get("id") == "sync")
    assert await server.terminate() == 0
    assert await alice.stream_error() == "system-shutdown"
    await server.start()
    bob = await logged_in(server.c2s, "bob", "b")
    bob.send("<presence/>")
    msg = await bob.expect("message")
    assert msg.find_text("body") == "kept"
    assert msg.find("delay", "urn:xmpp:delay") is not None
    await bob.close()
    assert await server.terminate() == 0


async def test_an_invalid_config_lists_every_problem_and_starts_nothing(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[general]\nhostz = ["x"]\nloglevel = "loud"\n[[listen.c2s]]\nport = "abc"\n')
    proc = await create_subprocess_exec(
        str(BIN / "meerkat"),
        "-c",
        str(path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    text = err.decode()
    assert proc.returncode == 2
    assert "general.hostz: unknown key" in text
    assert "general.loglevel" in text
    assert "listen.c2s[0].port" in text


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
async def test_a_node_dies_with_the_process_that_started_it(tmp_path: Path) -> None:
    """A killed test run leaves no node behind: SIGKILL the node's parent, the node goes."""
    srv = Server(tmp_path)
    parent = await create_subprocess_exec(
        sys.executable,
        "-c",
        PARENT,
        str(TESTS),
        str(BIN / "meerkat"),
        "-c",
        str(tmp_path / "meerkat.toml"),
        stdout=asyncio.subprocess.PIPE,
        cwd=tmp_path,
    )
    assert parent.stdout is not None
    node = int(await asyncio.wait_for(parent.stdout.readline(), 30))
    try:
        for _ in range(400):  # serving: the node is past its start-up
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", srv.admin)
                writer.close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        else:
            raise AssertionError("meerkat did not start: " + srv.output())
        parent.kill()
        await parent.wait()
        for _ in range(200):
            if not is_running(node):
                break
            await asyncio.sleep(0.05)
        assert not is_running(node), "the node outlived the process that started it"
    finally:
        if is_running(node):
            os.kill(node, signal.SIGKILL)
