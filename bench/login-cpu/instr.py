#!/usr/bin/env python3
"""Instructions per login / per message (callgrind), for before/after figures on a busy machine.

Starts the server under `valgrind --tool=callgrind` (pinned to CPU 1, ports from place.py),
zeroes the counters once it listens and has done one unmeasured login pass, runs one
scenario, dumps the counters and prints Ir per login (or per delivered message). The users
must exist: run `measure.py --setup` once with the same `LOGIN_CPU_PORT`.
Instrumentation is off until the measured pass (`--instr-atstart=no`): starting the server
and the warm-up pass run several times faster, and nothing before the pass is counted.
With `--workers N` the supervisor and its N workers all run under callgrind
(`--trace-children=yes`) and the count is their sum. `--src DIR` runs the server from another
source tree (e.g. `git archive` of a commit, so that editing this checkout during a run changes
nothing); `--duration` sets the messages window (two durations give the marginal cost of a
message, free of the logins in the window).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCH = HERE.parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from run import ONE_GEN_CPU, xmppload  # noqa: E402
from servers import wait_port  # noqa: E402

from meerkat.pdeathsig import die_with_parent  # noqa: E402

sys.path.insert(0, str(HERE))
import place  # noqa: E402

OUT = place.OUT / "cg"
CACHE = place.OUT / "scram.json"


def tree(pid: int) -> list[int]:
    """`pid` and its child processes (a supervisor's workers)."""
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [pid, *(int(p) for p in found.split())]


def control(flag: str, pids: list[int]) -> None:
    for pid in pids:
        subprocess.run(["callgrind_control", flag, str(pid)], check=True, capture_output=True)


def total_ir(pids: list[int]) -> int:
    total = 0
    for path in (p for pid in pids for p in glob.glob(str(OUT / f"callgrind.out.{pid}*"))):
        with open(path, errors="replace") as f:
            for line in f:
                m = re.match(r"(summary|totals):\s+(\d+)", line)
                if m:
                    total += int(m.group(2))
                    break
    return total


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("scenario", choices=["login", "messages"])
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--label", default="")
    p.add_argument("--workers", type=int, default=1, help="general.workers of the server")
    p.add_argument("--duration", type=int, default=10, help="seconds of messages (messages)")
    p.add_argument("--src", default="", help="run the server from this src/ (e.g. a git archive)")
    opts = p.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    for old in glob.glob(str(OUT / "callgrind.out.*")):
        os.unlink(old)
    cmd = [
        "taskset",
        "-c",
        "1" if opts.workers == 1 else "0,1",  # instruction counts do not depend on it
        "valgrind",
        "--tool=callgrind",
        "--dump-instr=no",
        "--instr-atstart=no",  # start and warm up at valgrind's lower cost; see `measured`
        *(["--trace-children=yes"] if opts.workers > 1 else []),
        f"--callgrind-out-file={OUT}/callgrind.out.%p",
        str(ROOT / ".venv" / "bin" / "python"),
        str(ROOT / ".venv" / "bin" / "meerkat"),
        "--config",
        str(place.config(opts.workers)),
    ]
    env = dict(os.environ)
    if opts.src:  # a plain path entry: PYTHONPATH comes before the editable install
        env["PYTHONPATH"] = opts.src
    with open(OUT / "server.log", "w") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            preexec_fn=die_with_parent(),
        )
    try:
        if not wait_port(place.PORT, 900 * opts.workers):
            raise SystemExit("server did not start")
        for k in range(1, opts.workers):  # every worker listens on c2s after its cluster port
            if not wait_port(place.CLUSTER + k, 600):
                raise SystemExit(f"worker {k + 1} did not start")
        if opts.workers > 1:
            time.sleep(20)  # under callgrind the last worker needs a while to reach c2s
        common = [
            "--port",
            str(place.PORT),
            "--scram-cache",
            str(CACHE),
            "--users",
            "2000",
            "--timeout",
            "120",
        ]
        xmppload(
            [
                *common,
                "--scenario",
                "login",
                "--clients",
                "50",
                "--concurrency",
                "10",
                "--mech",
                "SCRAM-SHA-256",
            ],
            ONE_GEN_CPU,
        )
        pids = tree(proc.pid)
        control("-z", pids)
        control("--instr=on", pids)
        if opts.scenario == "login":
            r = xmppload(
                [
                    *common,
                    "--scenario",
                    "login",
                    "--clients",
                    str(opts.n),
                    "--concurrency",
                    "20",
                    "--mech",
                    "SCRAM-SHA-256",
                ],
                ONE_GEN_CPU,
            )
            count = r.get("logins_ok") or 0
        else:
            r = xmppload(
                [
                    *common,
                    "--scenario",
                    "messages",
                    "--pairs",
                    "20",
                    "--duration",
                    str(opts.duration),
                    "--window",
                    "5",
                    "--warmup",
                    "0",
                    "--drain",
                    "20",
                ],
                ONE_GEN_CPU,
            )
            count = r.get("received") or r.get("delivered") or 0
        control("-d", pids)
        time.sleep(1)
        ir = total_ir(pids)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
    result = {
        "label": opts.label,
        "scenario": opts.scenario,
        "workers": opts.workers,
        "count": count,
        **({"duration": opts.duration} if opts.scenario == "messages" else {}),
        **({"src": opts.src} if opts.src else {}),
        "ir": ir,
        "ir_per_op": round(ir / count) if count else None,
    }
    with open(place.OUT / "instr.jsonl", "a") as f:
        f.write(json.dumps(result) + "\n")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
