"""The bench's py-spy profiles: folding raw samples, top frames, the recorder's failures."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import topframes  # noqa: E402

MAIN = 'process 10:"meerkat";process 11:"worker";thread (11): MainThread'
DB = 'process 10:"meerkat";process 11:"worker";thread (12): Thread-1 (_connection_worker_thread)'
WAIT = f"_connection_worker_thread ({topframes._aiosqlite_wait()})"
RAW = [
    f"{MAIN};Runner.run (asyncio/runners.py:118);C2SSession.run (session.py:326) 6\n",
    f"{MAIN};Runner.run (asyncio/runners.py:118);f (a.py:1);f (a.py:1) 3\n",
    f"{MAIN};Runner.run (asyncio/runners.py:118) 1\n",
    f"{DB};Thread.run (threading.py:982);{WAIT} 40\n",
    "not a sample line\n",
]


def test_fold_counts_own_and_total_per_frame_and_leaves_waiting_threads_out() -> None:
    profile = topframes.fold(RAW)
    assert profile.busy == 10 and profile.idle == 40
    assert profile.own["C2SSession.run (session.py:326)"] == 6
    assert profile.own["f (a.py:1)"] == 3
    assert profile.total["Runner.run (asyncio/runners.py:118)"] == 10
    assert profile.total["f (a.py:1)"] == 3  # recursion counts a sample once
    assert profile.loop_samples == 10 and profile.processes == {"process 11"}


def test_top_gives_shares_of_busy_samples_and_estimates_the_loop_idle_time() -> None:
    profile = topframes.fold(RAW)
    profile.add_expected(rate=10, seconds=2.0, processes=1)
    summary = topframes.top(profile, n=2)
    assert summary["own"][0] == {
        "function": "C2SSession.run",
        "where": "session.py:326",
        "samples": 6,
        "pct": 60.0,
    }
    # Runner.run is in every busy sample: it would head "total" and say nothing
    assert [(r["function"], r["pct"]) for r in summary["total"]] == [
        ("C2SSession.run", 60.0),
        ("f", 30.0),
    ]
    assert summary["loop_idle_samples"] == 10 and summary["loop_busy_pct"] == 50.0
    assert summary["waiting_samples"] == 40


def test_grep_keeps_only_the_stacks_containing_the_text() -> None:
    assert topframes.fold(RAW, grep="a.py").busy == 3


def test_format_top_puts_own_and_total_side_by_side() -> None:
    profile = topframes.fold(RAW)
    profile.add_expected(rate=10, seconds=2.0, processes=1)
    text = topframes.format_top(topframes.top(profile, n=3))
    assert "10 busy samples" in text and "event loop busy 50%" in text
    assert (
        "| 1 | 60.0 | `C2SSession.run` | session.py:326 | 60.0 | `C2SSession.run` | "
        "session.py:326 |"
    ) in text


def test_summarise_folds_several_runs_and_names_failed_recordings(tmp_path: Path) -> None:
    good = []
    for i in (1, 2):
        raw = tmp_path / f"run{i}.txt"
        raw.write_text("".join(RAW))
        good.append(topframes.Recording(raw, raw.with_suffix(".log"), seconds=1.0, rate=10))
    bad = topframes.Recording(tmp_path / "x.txt", tmp_path / "x.log", error="py-spy failed")
    summary = topframes.summarise([*good, bad])
    assert summary["busy_samples"] == 20 and summary["loop_idle_samples"] == 0
    assert summary["errors"] == ["py-spy failed"] and summary["files"] == ["run1.txt", "run2.txt"]


def test_a_missing_py_spy_is_reported_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(topframes, "PY_SPY", tmp_path / "no-py-spy")
    spy = topframes.Recorder(tmp_path / "p.txt")
    assert not spy.start(1)
    assert "not installed" in spy.stop().error


def test_a_process_py_spy_cannot_profile_is_reported_not_raised(tmp_path: Path) -> None:
    with subprocess.Popen(["sleep", "30"]) as other:  # not a Python process
        try:
            spy = topframes.Recorder(tmp_path / "p.txt")
            spy.start(other.pid, settle=2.0)
            recording = spy.stop()
        finally:
            other.kill()
    assert recording.error.startswith("py-spy could not record (Error: ")
    assert (tmp_path / "p.log").exists()


def test_the_recorder_samples_a_running_python_process(tmp_path: Path) -> None:
    code = "def spin():\n    while True:\n        sum(range(1000))\nspin()\n"
    with subprocess.Popen([sys.executable, "-c", code]) as busy:
        try:
            spy = topframes.Recorder(tmp_path / "p.txt", rate=200)
            assert spy.start(busy.pid, settle=0.5), spy.recording.error
            time.sleep(1.0)
            recording = spy.stop()
        finally:
            busy.kill()
    assert not recording.error and recording.seconds >= 1.0
    summary = topframes.summarise([recording])
    assert summary["own"][0]["function"] == "spin" and summary["busy_samples"] > 50
