"""The benchmark harness: ratio and scaling tables, config derivation, process trees."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import loadstats  # noqa: E402
import report  # noqa: E402
import servers  # noqa: E402


def runs(key: str, *values: float, **extra: Any) -> list[dict[str, Any]]:
    return [{key: v, **extra} for v in values]


def test_ratios_compare_meerkat_with_the_better_peer_against_the_target() -> None:
    results: report.Results = {
        "meerkat": {"login": runs("login_rate", 500, 600, 550)},
        "prosody": {"login": runs("login_rate", 200, 210, 190)},
        "ejabberd": {"login": runs("login_rate", 400, 410, 390)},
    }
    (row,) = report.ratios(results)
    assert row["meerkat"] == 550 and row["better_peer"] == "ejabberd"
    assert row["ratios"] == {"prosody": 2.75, "ejabberd": 1.38}
    assert row["ratio_to_better"] == 1.38 and row["verdict"] == "PASS"
    assert (
        "| login | logins/s | 550 | 200 | 400 | 2.75 | 1.38 | 1.38 (ejabberd) | >= 1.2 | PASS | - |"
        in report.format_ratios([row])
    )


def test_lower_is_better_figures_pick_the_lowest_peer_and_can_miss() -> None:
    results: report.Results = {
        "meerkat": {"idle": runs("server_rss_per_conn_kib", 70.0)},
        "prosody": {"idle": runs("server_rss_per_conn_kib", 49.0)},
        "ejabberd": {"idle": runs("server_rss_per_conn_kib", 83.0)},
    }
    (row,) = report.ratios(results)
    assert row["better_peer"] == "prosody" and row["ratio_to_better"] == 1.43
    assert row["target"] == "<= 0.5" and row["verdict"] == "MISS"


def test_ratios_skip_figures_a_peer_did_not_measure_and_meerkat_variants_are_not_peers() -> None:
    results: report.Results = {
        "meerkat": {"login": runs("login_rate", 500), "login_sha1": runs("login_rate", 520)},
        "meerkat-w2": {"login": runs("login_rate", 900)},
        "prosody": {"login": runs("login_rate", 250)},
    }
    rows = report.ratios(results)
    assert [r["scenario"] for r in rows] == ["login"]
    assert list(rows[0]["peers"]) == ["prosody"]


def test_scaling_reports_raw_and_per_cpu_ratios() -> None:
    results: report.Results = {
        "meerkat": {"messages": runs("msgs_per_s", 10000, server_cpu_pct=100.0, gen_cpu_pct=40.0)},
        "meerkat-w2": {
            "messages": runs("msgs_per_s", 15000, server_cpu_pct=160.0, gen_cpu_pct=40.0)
        },
    }
    (row,) = report.scaling(results)
    assert row["raw_ratio"] == 1.5 and row["verdict"] == "MISS"
    assert row["per_cpu_s"] == [10000.0, 9375.0] and row["per_cpu_ratio"] == 0.94
    assert row["projected_two_cores_ratio"] == 1.88
    text = report.format_scaling([row], cores=2)
    assert "| messages (msgs/s) | 10,000 | 15,000 | 1.50 MISS |" in text
    assert "This machine has 2 cores" in text


def test_table_flags_a_saturated_generator() -> None:
    results: report.Results = {
        "meerkat": {"login": runs("login_rate", 300, server_cpu_pct=50.0, gen_cpu_pct=99.0)}
    }
    assert "**gen saturated**" in report.format_table(results)


def test_derived_config_sets_workers_and_every_c2s_certificate(tmp_path: Path) -> None:
    template = tmp_path / "t.toml"
    template.write_text(
        '[general]\nworkers = 4\ndata_dir = "x"\n\n[[listen.c2s]]\nport = 1\n\n'
        '[[listen.c2s]]\nport = 2\ntls.mode = "tls"\n'
    )
    out = servers.derive_config(
        template, tmp_path / "out.toml", 2, (Path("/c/l.crt"), Path("/c/l.key"))
    )
    text = out.read_text()
    assert text.count("workers =") == 1 and "workers = 2" in text
    assert text.count('tls.certfile = "/c/l.crt"') == 2
    assert text.count('tls.keyfile = "/c/l.key"') == 2


def test_process_tree_includes_the_process_and_its_children() -> None:
    pid = os.getpid()
    assert loadstats.process_tree(pid)[0] == pid
    rss = loadstats.tree_rss_kib(pid)
    assert rss is not None and rss >= (loadstats.rss_kib(pid) or 0)
    assert loadstats.tree_cpu_seconds(2**22 + 7) is None


def test_ratio_rows_name_lost_messages_and_a_busy_machine_as_caveats() -> None:
    results: report.Results = {
        "meerkat": {"messages_equal": runs("msg_p99_ms", 5.0, lost=0, other_cpu_pct=80.0)},
        "ejabberd": {"messages_equal": runs("msg_p99_ms", 9.0, lost=12, other_cpu_pct=3.0)},
    }
    (row,) = report.ratios(results)
    assert row["notes"] == "meerkat other CPU 80%; ejabberd lost 12"
    assert row["verdict"] == "PASS"


class _Transport:
    def __init__(self) -> None:
        self.sent = b""

    def write(self, data: bytes) -> None:
        self.sent += data

    def is_closing(self) -> bool:
        return False


def test_generator_connections_answer_server_pings_and_pass_other_stanzas_on() -> None:
    import loadclient

    conn = loadclient.XmppConnection()
    transport = _Transport()
    conn.transport = transport  # type: ignore[assignment]
    seen: list[str] = []
    conn.on_stanza = lambda element: seen.append(element.name)
    conn.data_received(
        b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
        b"<iq type='get' id='p&amp;1' from='localhost'><ping xmlns='urn:xmpp:ping'/></iq>"
        b"<message from='a@localhost'><body>x</body></message>"
    )
    assert transport.sent == b'<iq type=\'result\' id="p&amp;1" to="localhost"/>'
    assert seen == ["jabber:client message"]
