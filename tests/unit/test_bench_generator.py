"""The load generator's pure parts: histogram stats, SCRAM cache, arguments, result merging."""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import loadstats  # noqa: E402
import timeline  # noqa: E402
import xmppload  # noqa: E402
from loadclient import NS_CLIENT, NS_STREAM, Element, XmppConnection  # noqa: E402
from loadstats import Histogram, cpu_sample, cpu_shares, median  # noqa: E402
from loadworker import merge_results, share  # noqa: E402
from scramcache import ScramCache  # noqa: E402
from timeline import Timeline  # noqa: E402


def test_histogram_percentiles_are_within_two_percent() -> None:
    hist = Histogram()
    for value in range(1, 100_001):
        hist.record(value)
    assert hist.total == 100_000
    for p in (50, 90, 99, 99.9):
        exact = p / 100 * 100_000
        got = hist.percentile(p)
        assert got is not None and abs(got - exact) / exact < 0.02
    assert hist.percentile(100) == 100_000
    assert hist.mean() == pytest.approx(50_000.5)


def test_histogram_small_values_are_exact_and_empty_is_none() -> None:
    hist = Histogram()
    assert hist.percentile(50) is None and hist.mean() is None
    for value in (0, 3, 3, 7):
        hist.record(value)
    assert hist.percentile(50) == 3
    assert hist.percentile(1) == 0


def test_histograms_merge_and_survive_json_round_trips() -> None:
    a, b = Histogram(), Histogram()
    for value in range(1000):
        a.record(value)
        b.record(value + 5000)
    merged = Histogram.from_dict(a.to_dict())
    merged.merge(Histogram.from_dict(b.to_dict()))
    assert merged.total == 2000
    assert (merged.minimum, merged.maximum) == (0, 5999)
    p50 = merged.percentile(50)
    assert p50 is not None and p50 <= 1010 < 5000 <= (merged.percentile(51) or 0)


def test_median_handles_odd_even_and_empty() -> None:
    assert median([3, 1, 2]) == 2
    assert median([4, 1, 2, 3]) == 2.5
    assert median([]) is None


def test_cpu_shares_are_computed_from_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    start = loadstats.CpuSample(wall=10.0, busy=100.0, server=5.0, generator=1.0)
    end = loadstats.CpuSample(wall=12.0, busy=103.0, server=6.5, generator=1.5)
    assert cpu_shares(start, end) == {
        "server_cpu_pct": 75.0,
        "gen_cpu_pct": 25.0,
        "other_cpu_pct": 50.0,
    }


def test_proc_readers_see_this_process() -> None:
    import os

    assert (loadstats.rss_kib(os.getpid()) or 0) > 0
    assert loadstats.process_cpu_seconds(os.getpid()) is not None
    assert loadstats.rss_kib(2**22 + 7) is None
    sample = cpu_sample(0.0, None, [os.getpid()])
    assert sample.server is None and sample.generator > 0


def test_scram_cache_persists_salted_passwords_without_the_password(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    cache = ScramCache(path)
    assert cache.get("SHA-1", b"salt", 4096, b"secret") is None
    cache.put("SHA-1", b"salt", 4096, b"secret", b"\x01" * 20)
    cache.save()
    assert b"secret" not in path.read_bytes()
    again = ScramCache(path)
    assert again.get("SHA-1", b"salt", 4096, b"secret") == b"\x01" * 20
    assert again.get("SHA-1", b"salt", 4096, b"other") is None
    assert again.get("SHA-256", b"salt", 4096, b"secret") is None
    assert (again.hits, again.misses) == (1, 2)


def test_scram_cache_saves_from_two_processes_merge(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    first, second = ScramCache(path), ScramCache(path)
    first.put("SHA-1", b"a", 1, b"p", b"A")
    second.put("SHA-1", b"b", 1, b"p", b"B")
    first.save()
    second.save()
    merged = ScramCache(path)
    assert merged.get("SHA-1", b"a", 1, b"p") == b"A"
    assert merged.get("SHA-1", b"b", 1, b"p") == b"B"


def test_corrupt_cache_files_are_treated_as_empty(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    path.write_text("{not json")
    assert len(ScramCache(path)) == 0


def test_arguments_have_the_documented_defaults() -> None:
    args = xmppload.parse_args([])
    assert (args.scenario, args.port, args.tls, args.mech) == (
        "login",
        5222,
        "starttls",
        "SCRAM-SHA-1",
    )


def test_baseline_command_lines_parse() -> None:
    args = xmppload.parse_args(
        [
            "--port",
            "15222",
            "--tls",
            "starttls",
            "--scenario",
            "idle",
            "--clients",
            "10000",
            "--hold",
            "10",
            "--src-ips",
            "127.0.0.2-127.0.0.5",
        ]
    )
    assert args.src_ips == ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]
    args = xmppload.parse_args(
        [
            "--scenario",
            "messages",
            "--pairs",
            "200",
            "--duration",
            "20",
            "--window",
            "50",
            "--rate",
            "5000",
            "--warmup",
            "3",
        ]
    )
    assert (args.pairs, args.window, args.rate) == (200, 50, 5000.0)


@pytest.mark.parametrize(
    "argv",
    [
        ["--src-ips", "10.0.0.1"],
        ["--src-ips", "127.0.0.5-127.0.0.2"],
        ["--scenario", "messages", "--pairs", "20", "--users", "30"],
        ["--clients", "0"],
        ["--tls", "ssl"],
    ],
)
def test_invalid_arguments_are_rejected(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        xmppload.parse_args(argv)


def test_idle_scenario_spreads_over_processes_past_the_file_limit() -> None:
    args = xmppload.parse_args(["--scenario", "idle", "--clients", "25000"])
    assert xmppload.process_count(args, 20_000) == 2
    assert xmppload.process_count(xmppload.parse_args(["--clients", "25000"]), 20_000) == 1
    assert xmppload.process_count(xmppload.parse_args(["--procs", "3"]), 20_000) == 3


def test_children_do_not_inherit_out_or_procs() -> None:
    argv = ["--out", "x.jsonl", "--procs=4", "--clients", "5", "--procs", "2"]
    assert xmppload._strip_out(argv) == ["--clients", "5"]


def test_shares_partition_the_work_exactly() -> None:
    parts = [share(10, i, 3) for i in range(3)]
    assert [list(p) for p in parts] == [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]]


def test_worker_results_merge() -> None:
    a_hist, b_hist = Histogram(), Histogram()
    a_hist.record(10)
    b_hist.record(30)
    merged = merge_results(
        [
            {
                "logins_ok": 1,
                "failures": {"timeout": 1},
                "login_first": 5.0,
                "login_last": 6.0,
                "login_hist": a_hist.to_dict(),
            },
            {
                "logins_ok": 2,
                "failures": {"timeout": 2, "sasl:x": 1},
                "login_first": 4.0,
                "login_last": 9.0,
                "login_hist": b_hist.to_dict(),
            },
        ]
    )
    assert merged["logins_ok"] == 3
    assert merged["failures"] == {"timeout": 3, "sasl:x": 1}
    assert (merged["login_first"], merged["login_last"]) == (4.0, 9.0)
    assert merged["login_hist"].total == 2


def test_text_report_mentions_the_key_figures() -> None:
    args = argparse.Namespace(
        label="x",
        scenario="messages",
        port=1,
        tls="none",
        mech="PLAIN",
        pairs=1,
        window=1,
        rate=0,
        duration=2.0,
        clients=1,
        concurrency=1,
        hold=0,
        close="clean",
    )
    hist = Histogram()
    hist.record(1500)
    merged = {
        "logins_ok": 2,
        "delivered": 10,
        "msg_hist": hist,
        "login_first": 0.0,
        "login_last": 1.0,
    }
    start = loadstats.CpuSample(0.0, 0.0, None, 0.0)
    report = xmppload._report(args, merged, 1, cpu_shares(start, start), 0.0, start, start)
    assert report["msgs_per_s"] == 5.0 and report["msg_p50_ms"] == 1.5
    assert "messages 5.0/s" in xmppload.format_text(report)


def test_run_table_shows_medians_and_each_run() -> None:
    import report

    runs = [
        {"login_rate": 100.0, "login_p50_ms": 5.0, "login_p99_ms": 9.0, "logins_failed": 0},
        {"login_rate": 300.0, "login_p50_ms": 7.0, "login_p99_ms": 11.0, "logins_failed": 0},
        {"login_rate": 200.0, "login_p50_ms": 6.0, "login_p99_ms": 10.0, "logins_failed": 0},
    ]
    table = report.format_table({"meerkat": {"login": runs}, "prosody": {}})
    assert "| login | logins/s | 200 (100, 300, 200) | - |" in table
    assert "| login | login p50 / p99 ms | 6.0 / 10.0 | - |" in table
    assert "| login | failed logins | 0 (0, 0, 0) | - |" in table


def test_the_stream_root_does_not_keep_received_stanzas() -> None:
    conn = XmppConnection()
    got: list[Element] = []
    conn.on_stanza = got.append
    conn.data_received(f"<stream:stream xmlns='{NS_CLIENT}' xmlns:stream='{NS_STREAM}'>".encode())
    for i in range(3):
        conn.data_received(f"<message id='m{i}'><body>hi</body></message>".encode())
    assert [m.attrs["id"] for m in got] == ["m0", "m1", "m2"]
    assert [c.name for c in got[0].children] == [f"{NS_CLIENT} body"]
    root = conn._stack[0]
    assert root.children == []


def test_timeline_records_slow_messages_and_pauses(tmp_path: Path) -> None:
    line = Timeline()
    line.slow(1_000_000_000, 12_000_000)
    line.lag(2_000_000_000, 7_000_000)
    gc.collect()
    path = tmp_path / "gen.timeline"
    line.write(str(path))
    (tmp_path / "srv.timeline").write_text("gc 2 1.5 30.0 12\nlag 1.2 9.0\n")
    rows = timeline.read(str(path)) + timeline.read(str(tmp_path / "srv.timeline"))
    kinds = {kind for kind, *_ in rows}
    assert {"slow", "pace", "gcgen", "objects", "gc", "lag"} <= kinds
    assert ("gc", 1.5, 30.0, "2") in rows
    text = timeline.summary(rows)
    assert "gc:2 30ms@0.50" in text and "pace 7ms@1.00" in text
    assert "objects" not in text
    assert gc_callback_count(line) == 0


def gc_callback_count(line: Timeline) -> int:
    return sum(1 for cb in gc.callbacks if getattr(cb, "__self__", None) is line)
