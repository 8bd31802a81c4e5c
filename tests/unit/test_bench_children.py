"""A benchmark killed without a chance to clean up takes the server it started with it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"

SERVER = textwrap.dedent(
    """
    import socket, sys, time
    s = socket.socket()
    s.bind(("127.0.0.1", int(sys.argv[1])))
    s.listen()
    time.sleep(120)
    """
)

HARNESS = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    sys.path.insert(0, {bench!r})
    from servers import MeerkatServer
    port = int(sys.argv[1])
    server = MeerkatServer(
        [sys.executable, "-c", {server!r}, str(port)], Path("children-test.toml"), [port], "0-1"
    )
    print(server.start(), flush=True)
    sys.stdin.read()
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_server_started_by_a_killed_harness_goes_away_with_it() -> None:
    script = HARNESS.format(bench=str(BENCH), server=SERVER)
    with subprocess.Popen(
        [sys.executable, "-c", script, str(_free_port())],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as harness:
        assert harness.stdout is not None
        server_pid = int(harness.stdout.readline())
        assert _alive(server_pid)
        harness.send_signal(signal.SIGKILL)
        harness.wait(10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(server_pid):
        time.sleep(0.05)
    try:
        assert not _alive(server_pid), "the server outlived the harness that started it"
    finally:
        if _alive(server_pid):
            os.kill(server_pid, signal.SIGKILL)
