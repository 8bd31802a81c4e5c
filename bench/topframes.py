"""Profile a benchmarked Meerkat with py-spy and name its top frames (`run.py --profile`).

Also a command: `topframes.py FILE.txt... [-n 30] [--grep TEXT]` prints the top frames of
py-spy raw files (e.g. `bench/login-cpu/measure.py --profile py-spy` output).

`Recorder` runs `py-spy record --format raw` against a server's PID (with `--subprocesses`
for `workers > 1`, so every worker is sampled too) for one measured run; `fold()` reads the
raw (folded) files and `top()` ranks frames by self time ("own") and inclusive time
("total") as a share of busy samples.

The hard parts:
- idle: py-spy drops a thread's sample when the OS says the thread is sleeping (the event
  loop in epoll_wait, a database thread waiting for work), so every recorded sample is a busy
  one and the shares are of busy time. How long each event loop waited is what is missing
  from its main thread's samples: `rate x seconds` per process minus the samples recorded
  (an estimate: a py-spy that falls behind its rate makes the loop look idler). Time in
  uvloop's C code shows as self time of the frame that started the loop (`Runner.run`).
- attaching needs ptrace permission; when py-spy cannot attach (or is missing), the
  recording says why and the bench carries on without it.
- py-spy pauses the server for each sample (its default, for consistent stacks) and uses
  CPU itself: it runs on the server's CPUs, and its CPU share is reported so the run's
  "other" CPU can be read without it.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from meerkat.pdeathsig import die_with_parent

BENCH = Path(__file__).resolve().parent
PY_SPY = BENCH.parent / ".venv" / "bin" / "py-spy"
DEFAULT_RATE = 100
TOP = 15
MAIN_THREAD = "MainThread"
#: share of busy samples from which a frame is left out of "total" (the entry point's frames)
COMMON = 0.99


def _aiosqlite_wait() -> str:
    """Where aiosqlite's worker thread waits for its next statement (`file.py:line`)."""
    try:
        import aiosqlite.core as core

        lines = Path(core.__file__).read_text().splitlines()
        return "aiosqlite/core.py:" + str(
            next(i for i, t in enumerate(lines, 1) if "tx.get()" in t)
        )
    except (ImportError, StopIteration, OSError):
        return "aiosqlite/core.py:?"


#: Leaf frames (`function (where` prefixes) of a thread waiting for work: the OS may still
#: report it running (woken, queued for the GIL), so py-spy records it; counted as idle.
IDLE_LEAVES = (
    f"_connection_worker_thread ({_aiosqlite_wait()})",
    "BaseSelector.select (selectors.py",
    "EpollSelector.select (selectors.py",
    "Condition.wait (threading.py",
    "_worker (concurrent/futures/thread.py",
)


@dataclass
class Profile:
    """Folded samples: per-frame own and inclusive counts, and the event loops' busy share."""

    own: Counter[str] = field(default_factory=Counter)
    total: Counter[str] = field(default_factory=Counter)
    busy: int = 0  # recorded samples of busy threads (py-spy drops sleeping ones)
    idle: int = 0  # recorded samples whose leaf is a wait (IDLE_LEAVES), not in `busy`
    loop_samples: int = 0  # of those, samples of a process's main thread (its event loop)
    loop_expected: float = 0.0  # rate x seconds x processes: samples of a never-idle loop
    processes: set[str] = field(default_factory=set)

    @property
    def loop_idle(self) -> int:
        """Estimated samples the event loops spent waiting (not recorded by py-spy)."""
        return max(0, round(self.loop_expected - self.loop_samples))

    def add_expected(self, rate: float, seconds: float, processes: int) -> None:
        """Account one recording of `seconds` at `rate` Hz over `processes` event loops."""
        self.loop_expected += rate * seconds * max(processes, 1)


def split_stack(stack: str) -> tuple[str, str, list[str]]:
    """(process, thread, frames) of one raw stack; py-spy's -s and -t add the first two."""
    parts = stack.split(";")
    process = thread = ""
    while parts and parts[0].startswith("process "):
        process = parts.pop(0).split(":", 1)[0]  # the innermost process: a worker
    if parts and parts[0].startswith("thread ("):
        thread = parts.pop(0)
    return process, thread, parts


def fold(lines: Iterable[str], profile: Profile | None = None, grep: str = "") -> Profile:
    """Add py-spy raw lines (`frame;frame;... count`, outermost first) to `profile`.

    A stack is counted once per frame in `total` (recursion does not count twice); `grep`
    keeps only stacks containing that text."""
    profile = profile if profile is not None else Profile()
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack or not count.isdigit() or (grep and grep not in stack):
            continue
        n = int(count)
        process, thread, frames = split_stack(stack)
        if not frames:
            continue
        if frames[-1].startswith(IDLE_LEAVES):
            profile.idle += n
            continue
        profile.busy += n
        profile.own[frames[-1]] += n
        for frame in set(frames):
            profile.total[frame] += n
        if thread.endswith(f": {MAIN_THREAD}") or not thread:
            profile.loop_samples += n
            profile.processes.add(process)
    return profile


def fold_files(paths: Iterable[Path], grep: str = "") -> Profile:
    """One profile of several raw files (the runs of one target and scenario)."""
    profile = Profile()
    for path in paths:
        with open(path) as f:
            fold(f, profile, grep)
    return profile


def location(frame: str) -> tuple[str, str]:
    """`Class.method (pkg/file.py:12)` -> ("Class.method", "pkg/file.py:12")."""
    name, sep, rest = frame.rpartition(" (")
    if not sep or not rest.endswith(")"):
        return frame, ""
    return name, rest[:-1]


def top(profile: Profile, n: int = TOP) -> dict[str, Any]:
    """The top `n` frames by own and by total samples, as % of busy samples (JSON-ready)."""

    def rank(counts: Counter[str], skip: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
        rows = []
        for frame, count in [(f, c) for f, c in counts.most_common() if f not in skip][:n]:
            name, where = location(frame)
            pct = round(100 * count / profile.busy, 1) if profile.busy else 0.0
            rows.append({"function": name, "where": where, "samples": count, "pct": pct})
        return rows

    # frames in (nearly) every busy sample, the entry point down to the loop, say nothing
    common = COMMON * profile.busy if len(profile.total) > 1 else profile.busy + 1
    loop_busy = None
    if profile.loop_expected:
        loop_busy = round(min(100.0, 100 * profile.loop_samples / profile.loop_expected), 1)
    return {
        "busy_samples": profile.busy,
        "waiting_samples": profile.idle,
        "loop_samples": profile.loop_samples,
        "loop_idle_samples": profile.loop_idle,
        "loop_busy_pct": loop_busy,
        "own": rank(profile.own),
        "total": rank(profile.total, frozenset(f for f, c in profile.total.items() if c >= common)),
    }


def format_top(summary: dict[str, Any]) -> str:
    """One target and scenario's top frames as markdown: own and total side by side."""
    loop = summary.get("loop_busy_pct")
    head = (
        f"{summary['busy_samples']:,} busy samples (the shares are of these); left out: "
        f"{summary['waiting_samples']:,} of threads waiting for work and ~"
        f"{summary['loop_idle_samples']:,} of event loops waiting in epoll (event loop busy "
        f"{'-' if loop is None else f'{loop:g}%'})"
    )
    if summary.get("errors"):
        head += "; " + "; ".join(summary["errors"])
    own, total = summary["own"], summary["total"]
    head += f"; frames in {COMMON:.0%} or more of them (the entry point) are left out of 'total'"
    lines = [head, "", "| # | own % | function | where | total % | function | where |"]
    lines.append("|---|---|---|---|---|---|---|")
    for i in range(max(len(own), len(total))):
        cells = []
        for rows in (own, total):
            if i < len(rows):
                r = rows[i]
                cells.append(f"{r['pct']:.1f} | `{r['function']}` | {r['where']}")
            else:
                cells.append(" | | ")
        lines.append(f"| {i + 1} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


@dataclass
class Recording:
    """What one py-spy run left: its raw file and log, for how long, and any failure."""

    raw: Path
    log: Path
    seconds: float = 0.0
    rate: int = DEFAULT_RATE
    processes: int = 1
    cpu_seconds: float = 0.0
    error: str = ""

    @property
    def cpu_pct(self) -> float:
        """py-spy's own CPU over the recording, % of one core."""
        return round(100 * self.cpu_seconds / self.seconds, 1) if self.seconds else 0.0


class Recorder:
    """`py-spy record` against one PID (and its subprocesses), pinned to `cpus`."""

    def __init__(
        self, raw: Path, *, rate: int = DEFAULT_RATE, native: bool = False, cpus: str = ""
    ) -> None:
        self.recording = Recording(raw, raw.with_suffix(".log"), rate=rate)
        self.native = native
        self.cpus = cpus
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0

    def command(self, pid: int, subprocesses: bool) -> list[str]:
        argv = [str(PY_SPY), "record", "-p", str(pid), "-r", str(self.recording.rate)]
        argv += ["-f", "raw", "-o", str(self.recording.raw), "--threads"]
        argv += ["--subprocesses"] if subprocesses else []
        argv += ["--native"] if self.native else []
        return ["taskset", "-c", self.cpus, *argv] if self.cpus else argv

    def start(self, pid: int, processes: int = 1, settle: float = 1.0) -> bool:
        """Attach; False (and `recording.error`) when py-spy is missing or exits at once."""
        rec = self.recording
        rec.processes = processes
        if not PY_SPY.exists():
            rec.error = f"py-spy not installed ({PY_SPY}): make install"
            return False
        rec.raw.parent.mkdir(parents=True, exist_ok=True)
        with open(rec.log, "wb") as log:
            self.proc = subprocess.Popen(
                self.command(pid, processes > 1),
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent(),
            )
        time.sleep(settle)  # attaching (and finding the workers) takes a moment
        if self.proc.poll() is not None:
            self._failed()
            return False
        self.started = time.monotonic()
        return True

    def stop(self) -> Recording:
        """Stop (SIGINT: py-spy writes its file) and account py-spy's own CPU."""
        rec = self.recording
        if self.proc is None:
            return rec
        if self.proc.poll() is None:
            rec.seconds = time.monotonic() - self.started
            self.proc.send_signal(signal.SIGINT)
        try:
            _, status, usage = os.wait4(self.proc.pid, 0)
            self.proc.returncode = os.waitstatus_to_exitcode(status)
            rec.cpu_seconds = usage.ru_utime + usage.ru_stime
        except ChildProcessError:  # already reaped by poll()
            pass
        if self.proc.returncode not in (0, None) or not rec.raw.exists():
            self._failed()
        self.proc = None
        return rec

    def _failed(self) -> None:
        rec = self.recording
        text = rec.log.read_text(errors="replace") if rec.log.exists() else ""
        lines = [line.strip() for line in text.splitlines() if line.strip()] or ["no output"]
        why = next((line for line in lines if line.startswith("Error:")), lines[-1])
        rec.error = f"py-spy could not record ({why[:200]}); see {rec.log.name}"
        rec.seconds = 0.0


def summarise(recordings: list[Recording], n: int = TOP) -> dict[str, Any]:
    """The top frames over several recordings of one target and scenario, failures named."""
    profile = Profile()
    for rec in recordings:
        if rec.error or not rec.raw.exists():
            continue
        with open(rec.raw) as f:
            fold(f, profile)
        profile.add_expected(rec.rate, rec.seconds, rec.processes)
    summary = top(profile, n)
    summary["errors"] = sorted({rec.error for rec in recordings if rec.error})
    summary["files"] = [rec.raw.name for rec in recordings if not rec.error]
    summary["profiler_cpu_pct"] = [rec.cpu_pct for rec in recordings if not rec.error]
    return summary


def write_lines(out: IO[str], summary: dict[str, Any]) -> None:
    """Plain-text top frames (the login-cpu tools' terminal output)."""
    out.write(f"busy samples {summary['busy_samples']} (waiting {summary['waiting_samples']})\n")
    out.write("-- own\n")
    for r in summary["own"]:
        out.write(f"{r['pct']:5.1f}% {r['function']} ({r['where']})\n")
    out.write("-- total\n")
    for r in summary["total"]:
        out.write(f"{r['pct']:5.1f}% {r['function']} ({r['where']})\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Top frames of py-spy raw (folded) files.")
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("-n", type=int, default=30, help="frames per list")
    p.add_argument("--grep", default="", help="only stacks containing this text")
    opts = p.parse_args(argv)
    write_lines(sys.stdout, top(fold_files(opts.files, opts.grep), opts.n))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
