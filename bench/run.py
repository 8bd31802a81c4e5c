#!/usr/bin/env python3
"""`make bench`: run the load scenarios against a pinned server and tabulate medians.

For each target (meerkat by default; `--targets meerkat,prosody,ejabberd` for bench-compare):
register user1..userN once, warm the generator's SCRAM cache with one unmeasured login pass,
then for every scenario and run: start a fresh server pinned to CPU 1 (taskset), let it settle,
wait for a quiet machine, run `xmppload.py` pinned to CPU 0, stop the server. A run during
which other processes used more than --max-other % of a core is repeated (at most twice).
Output: one table (medians of the runs, each column separately) on stdout and in
bench/results/<stamp>.md, every run's JSON line in bench/results/<stamp>.jsonl.

Everything is loopback-only and bounded; the server is always stopped on exit.
"""

from __future__ import annotations

import argparse
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from loadstats import cpu_sample, cpu_shares, median  # noqa: E402

SERVER_CPU, GEN_CPU = "1", "0"
PASSWORD, DOMAIN = "secret", "localhost"

#: scenario -> xmppload arguments (the baseline's; `--quick` scales them down).
SCENARIOS: dict[str, str] = {
    "login": "--scenario login --clients 2000 --concurrency 100 --mech SCRAM-SHA-1",
    "login_plain": "--scenario login --clients 2000 --concurrency 100 --mech PLAIN",
    "messages": "--scenario messages --pairs 200 --duration 20 --window 5 --warmup 3",
    "messages_paced": (
        "--scenario messages --pairs 200 --duration 20 --window 50 --rate 5000 --warmup 3"
    ),
    "idle": "--scenario idle --clients 10000 --hold 10 --src-ips 127.0.0.2-127.0.0.5",
}
QUICK: dict[str, str] = {
    "login": "--scenario login --clients 500 --concurrency 50 --mech SCRAM-SHA-1",
    "login_plain": "--scenario login --clients 300 --concurrency 50 --mech PLAIN",
    "messages": "--scenario messages --pairs 50 --duration 5 --window 5 --warmup 2",
    "messages_paced": (
        "--scenario messages --pairs 50 --duration 5 --window 50 --rate 2000 --warmup 2"
    ),
    "idle": "--scenario idle --clients 2000 --hold 5 --src-ips 127.0.0.2-127.0.0.3",
}
USERS = {"full": 10000, "quick": 2000}

#: Table rows: (label, JSON key, scenarios it applies to).
COLUMNS: list[tuple[str, str, tuple[str, ...]]] = [
    ("logins/s", "login_rate", ("login", "login_plain")),
    ("login p50 / p99 ms", "login_p50_ms|login_p99_ms", ("login", "login_plain")),
    ("server ms per login", "server_ms_per_login", ("login", "login_plain")),
    ("delivered msgs/s", "msgs_per_s", ("messages", "messages_paced")),
    ("msg latency p50 / p99 ms", "msg_p50_ms|msg_p99_ms", ("messages", "messages_paced")),
    ("server µs per msg", "server_us_per_msg", ("messages", "messages_paced")),
    ("lost", "lost", ("messages", "messages_paced")),
    ("server RSS per conn KiB", "server_rss_per_conn_kib", ("idle",)),
    (
        "server RSS before / held / after KiB",
        "server_rss_before_kib|server_rss_held_kib|server_rss_after_kib",
        ("idle",),
    ),
    ("logins/s reaching the idle count", "login_rate", ("idle",)),
    ("server CPU / gen CPU %", "server_cpu_pct|gen_cpu_pct", tuple(SCENARIOS)),
    ("failed logins", "logins_failed", tuple(SCENARIOS)),
]


# -- targets ----------------------------------------------------------------------------------


@dataclass
class Target:
    """How to start, stop and populate one server."""

    name: str
    port: int
    start: Callable[[], int]  # returns the server PID
    stop: Callable[[], None]
    register: Callable[[int], None]


def wait_port(port: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def peer_target(name: str, port: int) -> Target:
    """Prosody or ejabberd through bench/peers/<name>.sh."""
    script = str(BENCH / "peers" / f"{name}.sh")

    def start() -> int:
        out = subprocess.run([script, "start"], check=True, capture_output=True, text=True)
        return int(out.stdout.split()[-1])

    def stop() -> None:
        subprocess.run([script, "stop"], check=False, capture_output=True)

    def register(n: int) -> None:
        subprocess.run([script, "register", str(n)], check=True)

    return Target(name, port, start, stop, register)


class MeerkatServer:
    """Meerkat started from this checkout, pinned with taskset."""

    def __init__(self, command: str, config: str | None, port: int, admin_port: int) -> None:
        self.command = shlex.split(command) + (["--config", config] if config else [])
        self.port = port
        self.admin_port = admin_port
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = BENCH / "run" / "meerkat" / "server.log"

    def start(self) -> int:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                ["taskset", "-c", SERVER_CPU, *self.command],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        for port in (self.port, self.admin_port):
            if not wait_port(port, 30):
                self.stop()
                raise SystemExit(f"meerkat did not open port {port}; see {self.log}")
        return self.proc.pid  # taskset execs the server, so this is the server's PID

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


# ---------------------------------------------------------------------------------------------
# MEERKAT ADMIN API: user registration. This is the one place that knows how to create users
# on Meerkat: GraphQL `account.registerUser` on the admin endpoint (MongooseIM's schema), with
# `meerkatctl account registerUser` as the fallback. Adjust here if the admin API changes.
# ---------------------------------------------------------------------------------------------
GRAPHQL_URL = "http://127.0.0.1:35551/api/graphql"  # bench/meerkat-bench.toml; default node: 5551
REGISTER = (
    "mutation($domain: DomainName!, $username: UserName!, $password: String!) "
    "{ account { registerUser(domain: $domain, username: $username, password: $password) "
    "{ jid message } } }"
)
COUNT = "query($domain: DomainName!) { account { countUsers(domain: $domain) } }"


def graphql(query: str, variables: dict[str, Any], url: str = GRAPHQL_URL) -> dict[str, Any]:
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


# -- running ----------------------------------------------------------------------------------


def wait_quiet(limit_pct: float = 10.0, seconds: float = 30.0) -> None:
    """Wait (bounded) until other processes use less than `limit_pct` of a core."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        start = cpu_sample(time.monotonic(), None, [])
        time.sleep(1.0)
        other = cpu_shares(start, cpu_sample(time.monotonic(), None, []))["other_cpu_pct"]
        if other is not None and other < limit_pct:
            return


def xmppload(args: Sequence[str]) -> dict[str, Any]:
    cmd = ["taskset", "-c", GEN_CPU, sys.executable, str(BENCH / "xmppload.py"), *args]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    sys.stderr.write(out.stderr)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"xmppload produced no result (exit {out.returncode})")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def run_target(
    target: Target, opts: argparse.Namespace, out: Path
) -> dict[str, list[dict[str, Any]]]:
    table = QUICK if opts.quick else SCENARIOS
    users = opts.users or USERS["quick" if opts.quick else "full"]
    cache = BENCH / "run" / f"scram-{target.name}.json"
    common = ["--port", str(target.port), "--tls", opts.tls, "--scram-cache", str(cache)]
    results: dict[str, list[dict[str, Any]]] = {}
    try:
        target.start()
        target.register(users)
        print(f"{target.name}: warming the SCRAM cache with {users} logins", file=sys.stderr)
        xmppload(
            [
                *common,
                "--scenario",
                "login",
                "--clients",
                str(users),
                "--users",
                str(users),
                "--label",
                "warmup",
            ]
        )
        target.stop()
        for scenario in opts.scenarios:
            for run in range(opts.runs):
                for attempt in range(3):
                    pid = target.start()
                    time.sleep(opts.settle)
                    wait_quiet()
                    label = f"{target.name}/{scenario}/{run + 1}"
                    argv = [
                        *common,
                        *table[scenario].split(),
                        "--users",
                        str(users),
                        "--server-pid",
                        str(pid),
                        "--label",
                        label,
                    ]
                    try:
                        result = xmppload(argv)
                    finally:
                        target.stop()
                    result.update(target=target.name, bench_scenario=scenario, attempt=attempt)
                    with open(out, "a") as f:
                        f.write(json.dumps(result) + "\n")
                    other = result.get("other_cpu_pct") or 0.0
                    if other <= opts.max_other or attempt == 2:
                        result["contaminated"] = other > opts.max_other
                        results.setdefault(scenario, []).append(result)
                        break
                    print(f"{label}: other processes used {other}% - repeating", file=sys.stderr)
    finally:
        target.stop()
    return results


def _cell(runs: list[dict[str, Any]], keys: str) -> str:
    parts = []
    for key in keys.split("|"):
        values = [r[key] for r in runs if isinstance(r.get(key), int | float)]
        m = median(values)
        if m is None:
            parts.append("-")
        elif all(isinstance(v, int) for v in values) and m == int(m):
            parts.append(f"{int(m):,}")
        else:
            parts.append(f"{m:,.1f}" if m < 100 else f"{m:,.0f}")
    text = " / ".join(parts)
    if len(keys.split("|")) == 1 and len(runs) > 1:
        each = [r.get(keys) for r in runs]
        text += " (" + ", ".join("-" if v is None else f"{v:g}" for v in each) + ")"
    return text


def format_table(all_results: dict[str, dict[str, list[dict[str, Any]]]]) -> str:
    targets = list(all_results)
    lines = [
        "| scenario | metric | " + " | ".join(targets) + " |",
        "|---|---|" + "---|" * len(targets),
    ]
    scenarios = [s for s in SCENARIOS if any(s in r for r in all_results.values())]
    for scenario in scenarios:
        for label, keys, applies in COLUMNS:
            if scenario not in applies:
                continue
            cells = [_cell(all_results[t].get(scenario, []), keys) for t in targets]
            lines.append(f"| {scenario} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--targets", default="meerkat", help="comma list: meerkat,prosody,ejabberd")
    p.add_argument("--scenarios", default=",".join(SCENARIOS))
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="small scenarios for a sanity pass")
    p.add_argument("--users", type=int, default=0)
    p.add_argument("--tls", choices=["starttls", "direct", "none"], default="starttls")
    p.add_argument("--settle", type=float, default=3.0)
    p.add_argument("--max-other", type=float, default=15.0)
    p.add_argument("--server-cmd", default=str(ROOT / ".venv" / "bin" / "meerkat"))
    p.add_argument("--server-config", default=str(BENCH / "meerkat-bench.toml"))
    p.add_argument("--admin-url", default=GRAPHQL_URL, help="Meerkat admin GraphQL endpoint")
    p.add_argument("--port", type=int, default=0, help="c2s port (default per target)")
    opts = p.parse_args(argv)
    opts.scenarios = [s for s in opts.scenarios.split(",") if s]
    unknown = set(opts.scenarios) - set(SCENARIOS)
    if unknown:
        p.error(f"unknown scenarios: {', '.join(sorted(unknown))}")

    targets: list[Target] = []
    for name in opts.targets.split(","):
        if name == "meerkat":
            # bench/meerkat-bench.toml listens on 35222 (STARTTLS) and 35223 (direct TLS).
            port = opts.port or (35223 if opts.tls == "direct" else 35222)
            url = opts.admin_url
            admin_port = int(url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
            server = MeerkatServer(opts.server_cmd, opts.server_config, port, admin_port)
            targets.append(
                Target(
                    "meerkat",
                    port,
                    server.start,
                    server.stop,
                    lambda n, url=url: register_users_meerkat(n, url),  # type: ignore[misc]
                )
            )
        elif name in ("prosody", "ejabberd"):
            targets.append(peer_target(name, opts.port or {"prosody": 15222}.get(name, 25222)))
        else:
            p.error(f"unknown target {name}")
    if (
        targets
        and targets[0].name == "meerkat"
        and not Path(shlex.split(opts.server_cmd)[0]).exists()
    ):
        print(f"meerkat server command not found: {opts.server_cmd}", file=sys.stderr)
        return 2

    stamp = time.strftime("%Y%m%d-%H%M%S")
    results_dir = BENCH / "results"
    results_dir.mkdir(exist_ok=True)
    out = results_dir / f"{stamp}.jsonl"
    all_results = {t.name: run_target(t, opts, out) for t in targets}
    table = format_table(all_results)
    header = (
        f"# bench {stamp}: {', '.join(all_results)}; medians of {opts.runs} runs"
        f"{' (quick)' if opts.quick else ''}; TLS {opts.tls}; server CPU {SERVER_CPU},"
        f" generator CPU {GEN_CPU}\n\nRaw runs: {out.name}\n\n"
    )
    (results_dir / f"{stamp}.md").write_text(header + table + "\n")
    print(header + table)
    return 0


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # run the `finally` blocks: servers get stopped


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminate)
    os.chdir(ROOT)
    sys.exit(main())
