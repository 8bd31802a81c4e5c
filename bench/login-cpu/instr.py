#!/usr/bin/env python3
"""Instructions per login / per message (callgrind), for before/after figures on a busy machine.

Starts the server under `valgrind --tool=callgrind` (pinned to CPU 1, ports from place.py),
zeroes the counters once it listens and has done one unmeasured login pass, runs one
scenario, dumps the counters and prints Ir per login (or per delivered message). The users
must exist: run `measure.py --setup` once with the same `LOGIN_CPU_PORT`.
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

sys.path.insert(0, str(HERE))
import place  # noqa: E402

OUT = place.OUT / "cg"
CACHE = place.OUT / "scram.json"


def total_ir(pid: int) -> int:
    total = 0
    for path in glob.glob(str(OUT / f"callgrind.out.{pid}*")):
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
    opts = p.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    for old in glob.glob(str(OUT / "callgrind.out.*")):
        os.unlink(old)
    cmd = [
        "taskset",
        "-c",
        "1",
        "valgrind",
        "--tool=callgrind",
        "--dump-instr=no",
        f"--callgrind-out-file={OUT}/callgrind.out.%p",
        str(ROOT / ".venv" / "bin" / "python"),
        str(ROOT / ".venv" / "bin" / "meerkat"),
        "--config",
        str(place.config()),
    ]
    with open(OUT / "server.log", "w") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        if not wait_port(place.PORT, 300):
            raise SystemExit("server did not start")
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
        subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True, capture_output=True)
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
                    "10",
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
        subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True, capture_output=True)
        time.sleep(1)
        ir = total_ir(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
    result = {
        "label": opts.label,
        "scenario": opts.scenario,
        "count": count,
        "ir": ir,
        "ir_per_op": round(ir / count) if count else None,
    }
    with open(place.OUT / "instr.jsonl", "a") as f:
        f.write(json.dumps(result) + "\n")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
