"""The servers `run.py` benchmarks: how to start, stop and populate each one.

A `Target` is a name, a c2s port, the SASL mechanisms it offers, the CPUs it is pinned to and
three callables. Meerkat is started from this checkout with a configuration derived from
`meerkat-bench.toml` (or `meerkat-scale.toml`): the number of workers and the shared benchmark
certificate are written into a copy under bench/run/. Prosody and ejabberd go through
`peers/<name>.sh`.

The hard parts:
- equivalence: every server gets the same certificate (`peers/common.sh ensure_certs`, ECDSA
  P-256, Meerkat's own default kind), the same domain, users and password, STARTTLS, and keys
  stored for one SCRAM hash (`BENCH_SCRAM`, SHA-256 by default: Prosody 0.12 and ejabberd 23.01
  each store one hash type, so they offer only that SCRAM mechanism);
- a multi-worker Meerkat is a process tree: the PID handed to the generator is the
  supervisor's, and the generator sums CPU and RSS over its descendants.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meerkat.pdeathsig import die_with_parent

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RUN_DIR = BENCH / "run"
PASSWORD, DOMAIN = "secret", "localhost"
#: SCRAM hash the peers store keys for (peers/*.sh read BENCH_SCRAM too).
PEER_SCRAM = {"sha256": "SCRAM-SHA-256", "sha1": "SCRAM-SHA-1"}

__all__ = ["PORT_OFFSET", "Target", "ensure_certs", "meerkat_target", "peer_target", "wait_port"]


@dataclass
class Target:
    """How to start, stop and populate one server."""

    name: str
    port: int
    start: Callable[[], int]  # returns the server PID (the root of its process tree)
    stop: Callable[[], None]
    register: Callable[[int], None]
    mechanisms: frozenset[str] = field(default_factory=frozenset)
    cpus: str = "1"  # taskset list the server is pinned to
    workers: int = 1


def wait_port(port: int, seconds: float) -> bool:
    """Until something accepts on 127.0.0.1:port (False after `seconds`)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def ensure_certs() -> tuple[Path, Path]:
    """The shared benchmark certificate (created by peers/common.sh); (certfile, keyfile)."""
    script = f"source {shlex.quote(str(BENCH / 'peers' / 'common.sh'))} && ensure_certs"
    subprocess.run(["bash", "-c", script], check=True)
    certs = RUN_DIR / "certs"
    return certs / f"{DOMAIN}.crt", certs / f"{DOMAIN}.key"


def peer_scram() -> str:
    """The SCRAM hash the peers are configured with (env BENCH_SCRAM, default sha256)."""
    value = os.environ.get("BENCH_SCRAM", "sha256")
    if value not in PEER_SCRAM:
        raise SystemExit(f"BENCH_SCRAM must be one of {', '.join(PEER_SCRAM)}")
    return value


def peer_target(name: str, port: int, cpus: str) -> Target:
    """Prosody or ejabberd through bench/peers/<name>.sh."""
    script = str(BENCH / "peers" / f"{name}.sh")
    env = {**os.environ, "SERVER_CPU": cpus, "BENCH_SCRAM": peer_scram()}

    def start() -> int:
        out = subprocess.run([script, "start"], check=True, capture_output=True, text=True, env=env)
        return int(out.stdout.split()[-1])

    def stop() -> None:
        subprocess.run([script, "stop"], check=False, capture_output=True, env=env)

    def register(n: int) -> None:
        subprocess.run([script, "register", str(n)], check=True, env=env)

    mechs = frozenset({PEER_SCRAM[peer_scram()], "PLAIN"})
    return Target(name, port, start, stop, register, mechs, cpus)


# -- Meerkat ----------------------------------------------------------------------------------


#: Added to every Meerkat port of the bench (`BENCH_PORT_OFFSET`), so developers working in
#: parallel worktrees can each run the bench without colliding; the peers keep their ports.
PORT_OFFSET = int(os.environ.get("BENCH_PORT_OFFSET", "0"))


def derive_config(template: Path, out: Path, workers: int, cert: tuple[Path, Path]) -> Path:
    """Copy `template` to `out` with `general.workers` and every c2s listener's certificate set.

    Plain text edits keep the template readable on its own (it stays a usable config, with
    Meerkat's self-signed certificate); the template must have a `[general]` table. Every
    `port = N` line of the bench's 26xxx range is shifted by `PORT_OFFSET`.
    """
    lines: list[str] = []
    for line in template.read_text().splitlines():
        if line.strip().startswith("workers ="):
            continue
        if PORT_OFFSET and line.strip().startswith("port ="):
            number = int(line.split("=", 1)[1])
            if 26000 <= number < 27000:  # the bench's own ports, not a database's
                line = f"port = {number + PORT_OFFSET}"
        lines.append(line)
        if line.strip() == "[general]":
            lines.append(f"workers = {workers}")
        elif line.strip() == "[[listen.c2s]]":
            lines.append(f'tls.certfile = "{cert[0]}"')
            lines.append(f'tls.keyfile = "{cert[1]}"')
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    return out


class MeerkatServer:
    """Meerkat started from this checkout, pinned with taskset (workers inherit the pinning)."""

    def __init__(self, command: list[str], config: Path, ports: list[int], cpus: str) -> None:
        self.command = [*command, "--config", str(config)]
        self.ports = ports
        self.cpus = cpus
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = RUN_DIR / "meerkat" / f"{config.stem}.log"

    def start(self) -> int:
        """Start and wait for every port; the PID is the server's (taskset execs it)."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                ["taskset", "-c", self.cpus, *self.command],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent(),
            )
        for port in self.ports:
            if not wait_port(port, 60):
                self.stop()
                raise SystemExit(f"meerkat did not open port {port}; see {self.log}")
        return self.proc.pid

    def stop(self) -> None:
        """SIGTERM (the supervisor forwards it to its workers), SIGKILL after 40 s."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def meerkat_target(
    name: str,
    *,
    command: str,
    template: Path,
    workers: int,
    port: int,
    admin_port: int,
    cpus: str,
) -> Target:
    """A Meerkat target; its config is `template` with `workers` and the shared certificate."""
    config = derive_config(template, RUN_DIR / "meerkat" / f"{name}.toml", workers, ensure_certs())
    server = MeerkatServer(shlex.split(command), config, [port, admin_port], cpus)
    url = f"http://127.0.0.1:{admin_port}/api/graphql"

    def register(n: int) -> None:
        register_users_meerkat(n, url)

    mechs = frozenset({"SCRAM-SHA-256", "SCRAM-SHA-1", "SCRAM-SHA-512", "PLAIN"})
    return Target(name, port, server.start, server.stop, register, mechs, cpus, workers)


# ---------------------------------------------------------------------------------------------
# MEERKAT ADMIN API: user registration. This is the one place that knows how to create users
# on Meerkat: GraphQL `account.registerUser` on the admin endpoint (MongooseIM's schema), with
# `meerkatctl account registerUser` as the fallback. Adjust here if the admin API changes.
# ---------------------------------------------------------------------------------------------
GRAPHQL_URL = f"http://127.0.0.1:{26551 + PORT_OFFSET}/api/graphql"  # bench/meerkat-bench.toml
REGISTER = (
    "mutation($domain: DomainName!, $username: UserName!, $password: String!) "
    "{ account { registerUser(domain: $domain, username: $username, password: $password) "
    "{ jid message } } }"
)
COUNT = "query($domain: DomainName!) { account { countUsers(domain: $domain) } }"


def graphql(query: str, variables: dict[str, Any], url: str = GRAPHQL_URL) -> dict[str, Any]:
    """One GraphQL request; the decoded answer."""
    body = json.dumps({"query": query, "variables": variables}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        result: dict[str, Any] = json.loads(response.read())
    return result


def register_users_meerkat(
    n: int, url: str = GRAPHQL_URL, domain: str = DOMAIN, password: str = PASSWORD
) -> None:
    """Create user1..userN on the running Meerkat node (existing users are left alone)."""
    from concurrent.futures import ThreadPoolExecutor

    try:
        count = graphql(COUNT, {"domain": domain}, url)["data"]["account"]["countUsers"]
    except (urllib.error.URLError, KeyError, TypeError, ValueError) as exc:
        print(f"meerkat: GraphQL unusable ({exc}); trying meerkatctl", file=sys.stderr)
        register_users_meerkatctl(n, domain, password)
        return
    if count >= n:
        print(f"meerkat: {count} users already registered", file=sys.stderr)
        return

    def one(i: int) -> None:
        variables = {"domain": domain, "username": f"user{i}", "password": password}
        graphql(REGISTER, variables, url)  # "already registered" answers are fine

    with ThreadPoolExecutor(8) as pool:  # the server hashes passwords in threads
        list(pool.map(one, range(1, n + 1)))
    count = graphql(COUNT, {"domain": domain}, url)["data"]["account"]["countUsers"]
    print(f"meerkat: {count} users registered", file=sys.stderr)


def register_users_meerkatctl(n: int, domain: str = DOMAIN, password: str = PASSWORD) -> None:
    """Fallback: one `meerkatctl account registerUser` per user (slow: a process each)."""
    ctl = str(ROOT / ".venv" / "bin" / "meerkatctl")
    for i in range(1, n + 1):
        argv = ["account", "registerUser", "--username", f"user{i}", "--domain", domain]
        done = subprocess.run([ctl, *argv, "--password", password], capture_output=True)
        if done.returncode == 3:  # node unreachable: no point trying the other users
            raise SystemExit("meerkatctl: node unreachable; cannot register users")
