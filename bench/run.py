#!/usr/bin/env python3
"""`make bench` / `make bench-compare`: run the load scenarios against pinned servers, tabulate.

Targets: `meerkat` (one process, pinned to CPU 1, generator on CPU 0), `meerkat-w2`
(`general.workers = 2`: supervisor and both workers on CPUs 0-1, shared with the generator:
the machine has two cores), `prosody`, `ejabberd` (peers/*.sh, pinned to CPU 1).
For each target: register user1..userN once, warm the generator's SCRAM cache with one
unmeasured login pass per SCRAM mechanism, then for every scenario and run: start a fresh
server, let it settle, wait for a quiet machine, run `xmppload.py` pinned, stop the server.
A run during which other processes used more than --max-other % of a core is repeated (at
most twice, and at most --max-repeats times in all). `messages_paced` offers 50% of the same
target's `messages` median; with several targets `messages_equal` offers every target the
same rate, 50% of the slowest one's median.

Output: the medians table, Meerkat/peer ratios against the issue's targets and the
`workers = 2` scaling, on stdout and in bench/results/<stamp>.md; every run's JSON line in
<stamp>.jsonl; medians, ratios and scaling in <stamp>.json. `--scenarios scale` is the
100,000-connection memory scenario (not in the default set: it takes up to an hour).

Loopback only; everything it starts it stops, also on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import report  # noqa: E402
import topframes  # noqa: E402
from loadstats import cpu_sample, cpu_shares  # noqa: E402
from servers import PORT_OFFSET, Target, meerkat_target, peer_target  # noqa: E402

ONE_SERVER_CPU, ONE_GEN_CPU, ALL_CPUS = "1", "0", "0,1"

#: scenario -> xmppload arguments; `{rate}` is filled in by run.py (see module docstring).
SCENARIOS: dict[str, str] = {
    "login": "--scenario login --clients 2000 --concurrency 100 --mech SCRAM-SHA-256",
    "login_sha1": "--scenario login --clients 2000 --concurrency 100 --mech SCRAM-SHA-1",
    "login_plain": "--scenario login --clients 2000 --concurrency 100 --mech PLAIN",
    "messages": "--scenario messages --pairs 200 --duration 20 --window 5 --warmup 3",
    "messages_paced": (
        "--scenario messages --pairs 200 --duration 20 --window 50 --rate {rate} --warmup 3"
    ),
    "messages_equal": (
        "--scenario messages --pairs 200 --duration 20 --window 50 --rate {rate} --warmup 3"
    ),
    "idle": "--scenario idle --clients 10000 --hold 10 --src-ips 127.0.0.2-127.0.0.5",
}
QUICK: dict[str, str] = {
    "login": "--scenario login --clients 500 --concurrency 50 --mech SCRAM-SHA-256",
    "login_sha1": "--scenario login --clients 500 --concurrency 50 --mech SCRAM-SHA-1",
    "login_plain": "--scenario login --clients 300 --concurrency 50 --mech PLAIN",
    "messages": "--scenario messages --pairs 50 --duration 5 --window 5 --warmup 2",
    "messages_paced": (
        "--scenario messages --pairs 50 --duration 5 --window 50 --rate {rate} --warmup 2"
    ),
    "messages_equal": (
        "--scenario messages --pairs 50 --duration 5 --window 50 --rate {rate} --warmup 2"
    ),
    "idle": "--scenario idle --clients 2000 --hold 5 --src-ips 127.0.0.2-127.0.0.3",
}
#: 100,000 TLS connections over 8 source addresses (about 28,000 ports each) and as many
#: generator processes as the 20,000 open files per process need; see meerkat-scale.toml.
SCALE = (
    "--scenario idle --clients {clients} --concurrency 100 --hold 30 --timeout 300"
    " --src-ips 127.0.0.2-127.0.0.9 --mech SCRAM-SHA-256 --settle 5"
)
#: what `workers = 2` runs (the scaling comparison); peers and meerkat run everything asked
W2_SCENARIOS = ("login", "messages", "idle")
DEFAULT = "login,login_sha1,login_plain,messages,messages_paced,messages_equal,idle"
USERS = {"full": 10000, "quick": 2000}
#: memory one held connection costs (KiB): Meerkat about 70, the generator about 56, margin
SCALE_KIB_PER_CONN = 160


def mechanism(args: str) -> str | None:
    parts = args.split()
    return parts[parts.index("--mech") + 1] if "--mech" in parts else None


def wait_quiet(limit_pct: float = 10.0, seconds: float = 30.0) -> None:
    """Wait (bounded) until other processes use less than `limit_pct` of a core."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        start = cpu_sample(time.monotonic(), None, [])
        time.sleep(1.0)
        other = cpu_shares(start, cpu_sample(time.monotonic(), None, []))["other_cpu_pct"]
        if other is not None and other < limit_pct:
            return


def xmppload(args: list[str], cpus: str) -> dict[str, Any]:
    """One generator run pinned to `cpus`; its JSON report."""
    cmd = ["taskset", "-c", cpus, sys.executable, str(BENCH / "xmppload.py"), *args]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    sys.stderr.write(out.stderr)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"xmppload produced no result (exit {out.returncode})")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def gen_cpus(target: Target) -> str:
    """The generator gets the core the server does not use; else it shares them all."""
    return ONE_GEN_CPU if target.cpus == ONE_SERVER_CPU else ALL_CPUS


class Bench:
    """One invocation: targets, options, where results go, and the results so far."""

    def __init__(self, opts: argparse.Namespace, out: Path) -> None:
        self.opts = opts
        self.out = out
        self.table = QUICK if opts.quick else SCENARIOS
        self.users = opts.users or USERS["quick" if opts.quick else "full"]
        self.results: report.Results = {}
        self.repeats_left = opts.max_repeats
        #: (target, scenario) -> py-spy recordings of its measured runs (`--profile`)
        self.recordings: dict[tuple[str, str], list[topframes.Recording]] = {}

    def profiler(self, target: Target, label: str) -> topframes.Recorder | None:
        """A py-spy recorder for a Meerkat target's run when `--profile`; None otherwise."""
        if not self.opts.profile or not target.name.startswith("meerkat"):
            return None
        raw = self.out.with_suffix("") / f"{label.replace('/', '-')}.txt"
        rate, native = self.opts.profile_rate, self.opts.profile_native
        return topframes.Recorder(raw, rate=rate, native=native, cpus=target.cpus)

    def common(self, target: Target) -> list[str]:
        # meerkat and meerkat-w2 share their users (one data directory), so their salts too
        name = "meerkat" if target.name == "meerkat-w2" else target.name
        cache = BENCH / "run" / f"scram-{name}.json"
        return ["--port", str(target.port), "--tls", self.opts.tls, "--scram-cache", str(cache)]

    def args(self, target: Target, scenario: str, rate: int = 0) -> str:
        """The scenario's xmppload arguments; logins for messages/idle use SCRAM-SHA-256."""
        args = self.table.get(scenario, SCALE)
        args = args.format(rate=rate, clients=self.opts.scale_clients)
        if mechanism(args) is None:
            mech = "SCRAM-SHA-256" if "SCRAM-SHA-256" in target.mechanisms else "SCRAM-SHA-1"
            args += f" --mech {mech}"
        return args

    def applies(self, target: Target, scenario: str) -> bool:
        if target.workers > 1 and scenario not in W2_SCENARIOS:
            return False
        return mechanism(self.args(target, scenario)) in target.mechanisms

    def prepare(self, target: Target, scenarios: list[str]) -> None:
        """Register the users and warm the SCRAM cache for each SCRAM mechanism used."""
        mechs = {mechanism(self.args(target, s)) for s in scenarios}
        scram = sorted(m for m in mechs if m and m.startswith("SCRAM"))
        try:
            target.start()
            target.register(self.users)
            for mech in scram:
                print(
                    f"{target.name}: warming the {mech} cache: {self.users} logins", file=sys.stderr
                )
                argv = [*self.common(target), "--scenario", "login", "--mech", mech]
                argv += ["--clients", str(self.users), "--users", str(self.users)]
                xmppload([*argv, "--label", "warmup"], gen_cpus(target))
        finally:
            target.stop()

    def run(
        self, target: Target, scenario: str, args: str, runs: int = 0, repeat: bool = True
    ) -> None:
        """`runs` (default `--runs`) measured runs of one scenario, each on a fresh server;
        a run disturbed by other processes is repeated (at most twice) if `repeat`."""
        opts = self.opts
        for run in range(runs or opts.runs):
            for attempt in range(3):
                label = f"{target.name}/{scenario}/{run + 1}"
                spy = self.profiler(target, f"{label}-{attempt + 1}")
                pid = target.start()
                try:
                    time.sleep(opts.settle)
                    wait_quiet(seconds=opts.quiet_wait)
                    if spy is not None:  # event loops: the workers, and their supervisor
                        spy.start(pid, target.workers + (target.workers > 1))
                    argv = [*self.common(target), *args.split(), "--users", str(self.users)]
                    result = xmppload(
                        [*argv, "--server-pid", str(pid), "--label", label], gen_cpus(target)
                    )
                finally:
                    recording = spy.stop() if spy is not None else None
                    target.stop()
                result.update(target=target.name, bench_scenario=scenario, attempt=attempt)
                result.update(server_cpus=target.cpus, gen_cpus=gen_cpus(target))
                result["gen_cores"] = len(gen_cpus(target).split(","))
                if recording is not None:
                    result.update(profiler_cpu_pct=recording.cpu_pct, profile=recording.raw.name)
                    result["profile_error"] = recording.error or None
                    if recording.error:
                        print(f"{label}: {recording.error}", file=sys.stderr)
                with open(self.out, "a") as f:
                    f.write(json.dumps(result) + "\n")
                # py-spy's own CPU is in "other", and is no disturbance
                other = (result.get("other_cpu_pct") or 0.0) - result.get("profiler_cpu_pct", 0.0)
                if other <= opts.max_other or attempt == 2 or not repeat or not self.repeats_left:
                    result["contaminated"] = other > opts.max_other
                    self.results.setdefault(target.name, {}).setdefault(scenario, []).append(result)
                    if recording is not None:
                        self.recordings.setdefault((target.name, scenario), []).append(recording)
                    break
                self.repeats_left -= 1
                print(f"{label}: other processes used {other}% - repeating", file=sys.stderr)

    def paced_rate(self, names: list[str]) -> int:
        """50% of the lowest `messages` median among `names`; --paced-rate if none."""
        rates = [
            report.med(self.results.get(n, {}).get("messages", []), "msgs_per_s") for n in names
        ]
        known = [r for r in rates if r]
        return max(1, round(min(known) / 2)) if known else self.opts.paced_rate

    def run_target(self, target: Target, scenarios: list[str]) -> None:
        mine = [s for s in scenarios if s != "messages_equal" and self.applies(target, s)]
        if not mine:
            return
        self.prepare(target, mine)
        for scenario in mine:
            self.run(target, scenario, self.args(target, scenario, self.paced_rate([target.name])))

    def run_equal(self, targets: list[Target]) -> None:
        """`messages_equal`: every single-process target at one common offered rate."""
        same = [t for t in targets if t.workers == 1]
        if len(same) < 2:
            return
        rate = self.paced_rate([t.name for t in same])
        print(f"messages_equal: every target offered {rate} msgs/s", file=sys.stderr)
        for target in same:
            self.run(target, "messages_equal", self.args(target, "messages_equal", rate))


def run_scale(bench: Bench, target: Target, clients: int) -> None:
    """The scale scenario: `clients` held TLS connections, server RSS per connection.

    Users are provisioned in PostgreSQL before and dropped after (bench/scale.py)."""
    import scale

    with open("/proc/meminfo") as f:
        info = {line.split(":")[0]: int(line.split()[1]) for line in f}
    need = clients * SCALE_KIB_PER_CONN
    if info["MemAvailable"] < need:
        raise SystemExit(
            f"scale: {clients} connections need about {need // 1024} MiB, "
            f"{info['MemAvailable'] // 1024} MiB available"
        )
    free = info["MemAvailable"] // 1024
    print(f"scale: {clients} connections, {free} MiB free; provisioning users", file=sys.stderr)
    saved = bench.users
    bench.users = clients
    try:
        scale.create_users(clients)
        bench.run(target, "scale", bench.args(target, "scale"), runs=1, repeat=False)
    finally:
        bench.users = saved
        scale.drop_users()


def build_targets(opts: argparse.Namespace, parser: argparse.ArgumentParser) -> list[Target]:
    command = opts.server_cmd
    if not Path(shlex.split(command)[0]).exists():
        parser.error(f"meerkat server command not found: {command}")
    template = Path(opts.server_config)
    port = (26223 if opts.tls == "direct" else 26222) + PORT_OFFSET
    targets: list[Target] = []
    for name in opts.targets:
        if name in ("meerkat", "meerkat-w2"):
            workers = 2 if name == "meerkat-w2" else 1
            cpus = ALL_CPUS if workers > 1 else ONE_SERVER_CPU
            targets.append(
                meerkat_target(
                    name,
                    command=command,
                    template=template,
                    workers=workers,
                    port=port,
                    admin_port=26551 + PORT_OFFSET,
                    cpus=cpus,
                )
            )
        elif name in ("prosody", "ejabberd"):
            if opts.tls == "direct":
                parser.error("the peers are configured for STARTTLS only")
            peer_port = {"prosody": 15222, "ejabberd": 25222}[name]
            targets.append(peer_target(name, peer_port, ONE_SERVER_CPU))
        else:
            parser.error(f"unknown target {name}")
    return targets


def scale_target(opts: argparse.Namespace) -> Target:
    return meerkat_target(
        "meerkat-scale",
        command=opts.server_cmd,
        template=BENCH / "meerkat-scale.toml",
        workers=opts.scale_workers,
        port=26232 + PORT_OFFSET,
        admin_port=26561 + PORT_OFFSET,
        cpus=ALL_CPUS,
    )


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--targets", default="meerkat,meerkat-w2",
                   help="comma list of meerkat, meerkat-w2, prosody, ejabberd")  # fmt: skip
    p.add_argument("--scenarios", default=DEFAULT, help=f"comma list of {DEFAULT},scale")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="small scenarios for a sanity pass")
    p.add_argument("--users", type=int, default=0)
    p.add_argument("--tls", choices=["starttls", "direct", "none"], default="starttls")
    p.add_argument("--settle", type=float, default=3.0)
    p.add_argument(
        "--max-other",
        type=float,
        default=15.0,
        help="repeat a run (at most twice) when others used more %% of a core",
    )
    p.add_argument(
        "--max-repeats",
        type=int,
        default=6,
        help="repeats allowed in the whole invocation (bounds its time)",
    )
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=30.0,
        help="seconds to wait for a quiet machine before each run (at most)",
    )
    p.add_argument("--paced-rate", type=int, default=2000,
                   help="messages_paced rate when no messages run gives one")  # fmt: skip
    p.add_argument("--scale-clients", type=int, default=100_000)
    p.add_argument("--scale-workers", type=int, default=6)
    p.add_argument("--profile", action="store_true",
                   help="record Meerkat targets with py-spy; top frames in the report")  # fmt: skip
    p.add_argument("--profile-rate", type=int, default=topframes.DEFAULT_RATE,
                   help="py-spy samples per second")  # fmt: skip
    p.add_argument("--profile-native", action="store_true",
                   help="py-spy --native: C frames too (costlier)")  # fmt: skip
    p.add_argument("--server-cmd", default=str(ROOT / ".venv" / "bin" / "meerkat"))
    p.add_argument("--server-config", default=str(BENCH / "meerkat-bench.toml"))
    opts = p.parse_args(argv)
    opts.targets = [t for t in opts.targets.split(",") if t]
    opts.scenarios = [s for s in opts.scenarios.split(",") if s]
    unknown = set(opts.scenarios) - set(report.ORDER)
    if unknown:
        p.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    opts.parser = p
    return opts


def main(argv: list[str] | None = None) -> int:
    opts = parse(argv)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    results_dir = BENCH / "results"
    results_dir.mkdir(exist_ok=True)
    bench = Bench(opts, results_dir / f"{stamp}.jsonl")
    scenarios = [s for s in report.ORDER if s in opts.scenarios and s != "scale"]
    targets = build_targets(opts, opts.parser) if scenarios else []
    for target in targets:
        bench.run_target(target, scenarios)
    if "messages_equal" in scenarios:
        bench.run_equal(targets)
    if "scale" in opts.scenarios:
        run_scale(bench, scale_target(opts), opts.scale_clients)  # once: it takes minutes

    summary = write_report(bench, opts, stamp, results_dir)
    print(summary)
    return 0


def write_report(bench: Bench, opts: argparse.Namespace, stamp: str, results_dir: Path) -> str:
    """The markdown report (returned and written) and the JSON summary."""
    results = bench.results
    text = (
        f"# bench {stamp}: {', '.join(results)}; medians of {opts.runs} runs"
        f"{' (quick)' if opts.quick else ''}; TLS {opts.tls}\n\n"
        f"Pinning: single-process servers on CPU {ONE_SERVER_CPU}, generator on CPU "
        f"{ONE_GEN_CPU}; meerkat-w2 and scale: server and generator share CPUs {ALL_CPUS}. "
        f"Raw runs: {bench.out.name}\n\n" + report.format_table(results) + "\n"
    )
    ratio_rows = report.ratios(results)
    if ratio_rows:
        text += "\n## Meerkat / peers\n\n" + report.format_ratios(ratio_rows) + "\n"
    scale_rows = report.scaling(results)
    if scale_rows:
        cores = os.cpu_count() or 1
        text += "\n## workers = 2 against one worker\n\n"
        text += report.format_scaling(scale_rows, cores) + "\n"
    profiles = {f"{t}/{s}": topframes.summarise(recs) for (t, s), recs in bench.recordings.items()}
    if profiles:
        text += (
            f"\n## Top frames (py-spy, {opts.profile_rate} Hz"
            f"{', native' if opts.profile_native else ''}; raw files in {stamp}/)\n"
        )
        for name, summary in profiles.items():
            text += f"\n### {name}\n\n" + topframes.format_top(summary) + "\n"
    (results_dir / f"{stamp}.md").write_text(text)
    summary = {
        "stamp": stamp,
        "quick": opts.quick,
        "runs": opts.runs,
        "medians": {
            t: {s: medians(runs) for s, runs in by_scenario.items()}
            for t, by_scenario in results.items()
        },
        "ratios": ratio_rows,
        "scaling": scale_rows,
        "profiles": profiles,
    }
    (results_dir / f"{stamp}.json").write_text(json.dumps(summary, indent=1) + "\n")
    return text


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Every numeric key's median over the runs."""
    keys = {
        k for r in runs for k, v in r.items() if isinstance(v, int | float) and type(v) is not bool
    }
    return {k: report.med(runs, k) for k in sorted(keys)}


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # run the `finally` blocks: servers get stopped


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminate)
    os.chdir(ROOT)
    sys.exit(main())
