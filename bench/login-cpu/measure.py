#!/usr/bin/env python3
"""Private before/after measurement for issue 6 (server CPU per login and per message).

Starts this checkout's server pinned to CPU 1 on ports 29222/29551 or `LOGIN_CPU_PORT` (place.py),
registers users once, warms the generator's SCRAM cache once, then runs the given scenarios
`--runs` times each against a fresh server, printing server ms per login / µs per message.
With `--profile py-spy` the server runs under `py-spy record` (raw files in place.OUT;
`bench/topframes.py FILE...` prints their top frames).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCH = HERE.parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from run import ONE_GEN_CPU, wait_quiet, xmppload  # noqa: E402
from servers import MeerkatServer, register_users_meerkat  # noqa: E402
from topframes import Recorder, summarise, write_lines  # noqa: E402

sys.path.insert(0, str(HERE))
from place import ADMIN, OUT, PORT  # noqa: E402

URL = f"http://127.0.0.1:{ADMIN}/api/graphql"
CACHE = OUT / "scram.json"
SCENARIOS = {
    "login": "--scenario login --clients 2000 --concurrency 100 --mech SCRAM-SHA-256",
    "messages": "--scenario messages --pairs 200 --duration 10 --window 5 --warmup 2",
    "paced": "--scenario messages --pairs 200 --duration 10 --window 50 --rate 5000 --warmup 2",
}
KEYS = [
    "login_rate",
    "server_ms_per_login",
    "msgs_per_s",
    "server_us_per_msg",
    "msg_p50_ms",
    "msg_p99_ms",
    "server_cpu_pct",
    "gen_cpu_pct",
    "other_cpu_pct",
    "logins_failed",
    "lost",
]


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("scenarios", nargs="*", default=["login", "messages"])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--users", type=int, default=2000)
    p.add_argument("--setup", action="store_true", help="register users and warm the cache")
    p.add_argument("--profile", default="", help="py-spy: record the server during each run")
    p.add_argument("--label", default="")
    p.add_argument("--src", default="", help="run the server from this src/ (e.g. a main export)")
    p.add_argument("--concurrency", type=int, default=100, help="logins in progress (login)")
    opts = p.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    from place import config as place_config

    config = str(place_config())
    command = str(ROOT / ".venv" / "bin" / "meerkat")
    if opts.src:  # a plain path entry: PYTHONPATH comes before the editable install
        command = f"env PYTHONPATH={opts.src} {command}"
    common = ["--port", str(PORT), "--scram-cache", str(CACHE), "--users", str(opts.users)]
    if opts.setup:
        server = MeerkatServer(shlex.split(command), Path(config), [PORT, ADMIN], "1")
        server.start()
        try:
            register_users_meerkat(opts.users, URL)
            xmppload(
                [*common, *SCENARIOS["login"].split(), "--clients", str(opts.users)], ONE_GEN_CPU
            )
        finally:
            server.stop()
    for scenario in opts.scenarios:
        for run in range(opts.runs):
            server = MeerkatServer(shlex.split(command), Path(config), [PORT, ADMIN], "1")
            pid = server.start()
            spy: Recorder | None = None
            try:
                time.sleep(2)
                wait_quiet(15, 20)
                if opts.profile:
                    name = OUT / f"{opts.label or 'prof'}-{scenario}-{run + 1}.txt"
                    spy = Recorder(name, rate=200, cpus="1")
                    spy.start(pid)
                label = f"{opts.label}/{scenario}/{run + 1}"
                r = xmppload(
                    [
                        *common,
                        *shlex.split(SCENARIOS[scenario]),
                        *(["--concurrency", str(opts.concurrency)] if scenario == "login" else []),
                        "--server-pid",
                        str(pid),
                        "--label",
                        label,
                    ],
                    ONE_GEN_CPU,
                )
            finally:
                recording = spy.stop() if spy is not None else None
                server.stop()
            if recording is not None:
                write_lines(sys.stdout, summarise([recording]))
            r["label"] = label
            with open(OUT / "results.jsonl", "a") as f:
                f.write(json.dumps(r) + "\n")
            print(label, {k: r.get(k) for k in KEYS}, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
