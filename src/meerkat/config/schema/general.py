"""`[general]`: domains, logging, data directory, node identity and server-wide limits."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from meerkat.config.schema._util import check_min, check_unique, doc, quote

LogLevel = Literal[
    "none", "emergency", "alert", "critical", "error", "warning", "notice", "info", "debug", "all"
]


def default_node_name() -> str:
    """`meerkat@<hostname>`: unique per machine, stable across restarts."""
    return f"meerkat@{socket.gethostname()}"


@dataclass(frozen=True)
class GeneralConfig:
    """Basic settings: served XMPP domains, logging, where files live, node identity."""

    hosts: tuple[str, ...] = field(
        default=("localhost",),
        metadata=doc("XMPP domains served by this server (cluster). At least one."),
    )
    default_server_domain: str = field(
        default="localhost",
        metadata=doc(
            "Domain used where none is given (admin commands, stream errors before the "
            "client named one). Must be one of `hosts`."
        ),
    )
    loglevel: LogLevel = field(
        default="warning",
        metadata=doc('Log verbosity; "error" or "warning" in production, "debug" to develop.'),
    )
    language: str = field(
        default="en", metadata=doc("Default language (`xml:lang`) of server-generated text.")
    )
    data_dir: Path = field(
        default=Path("var"),
        metadata=doc(
            "Directory holding everything the server writes: the SQLite database, generated "
            "certificates (`certs/`), the cluster secret and logs. Relative paths elsewhere "
            "in this file are resolved against it. Created on start."
        ),
    )
    log_file: Path | None = field(
        default=None,
        metadata=doc(
            "Log to this file (relative to `data_dir`) instead of standard error.",
            default="unset (standard error)",
        ),
    )
    node_name: str = field(
        default_factory=default_node_name,
        metadata=doc(
            "This node's name in the cluster, `name@host`; must be unique in the cluster "
            "and stable across restarts.",
            default='"meerkat@<hostname>"',
        ),
    )
    workers: int = field(
        default=1,
        metadata=doc(
            "Number of server processes on this machine. N > 1 starts N clustered nodes "
            "(named after `node_name` with the worker number) sharing the listening ports."
        ),
    )
    max_fsm_queue: int = field(
        default=1000,
        metadata=doc(
            "Bound of each session's mailbox. A session that falls this far behind is "
            "closed with a clear reason instead of buffering without limit."
        ),
    )
    max_stanza_size: int = field(
        default=65536,
        metadata=doc(
            "Largest stanza accepted, in bytes; the default for every listener that sets "
            "no `max_stanza_size` of its own."
        ),
    )
    registration_timeout: int | Literal["infinity"] = field(
        default=600,
        metadata=doc(
            'Seconds between two in-band registrations from one IP address, or "infinity" '
            "for no limit."
        ),
    )
    replaced_wait_timeout: int = field(
        default=2000,
        metadata=doc(
            "Milliseconds a new session waits for the old session with the same full JID "
            "to close before it takes over anyway."
        ),
    )
    hide_service_name: bool = field(
        default=False,
        metadata=doc(
            "Before authentication, close streams that do not open a valid stream header "
            "without answering (hides that an XMPP server listens)."
        ),
    )

    # COMPAT: MongooseIM's CETS setups name the session, s2s and component backends; Meerkat
    # always keeps them in the cluster's replicated tables, so "cets" is the only value.
    sm_backend: Literal["cets"] = field(
        default="cets",
        metadata=doc(
            "Where sessions live; always the cluster's tables (MongooseIM compatibility)."
        ),
    )
    s2s_backend: Literal["cets"] = field(
        default="cets", metadata=doc("Where s2s state lives (MongooseIM compatibility).")
    )
    component_backend: Literal["cets"] = field(
        default="cets", metadata=doc("Where component routes live (MongooseIM compatibility).")
    )

    def validate(self) -> list[str]:
        """Domains present, unique, and the default one among them; positive limits."""
        problems: list[str] = []
        if not self.hosts:
            problems.append("hosts: at least one domain is required")
        problems += check_unique("hosts", self.hosts)
        for index, host in enumerate(self.hosts):
            if not host or host != host.strip() or "@" in host or "/" in host:
                problems.append(f"hosts[{index}]: not a valid domain name: {quote(host)}")
        if self.hosts and self.default_server_domain not in self.hosts:
            problems.append(
                f"default_server_domain: {quote(self.default_server_domain)} is not one of hosts"
            )
        if self.node_name.count("@") != 1 or self.node_name.startswith("@"):
            problems.append(f"node_name: expected name@host, got {quote(self.node_name)}")
        problems += check_min("workers", self.workers, 1)
        problems += check_min("max_fsm_queue", self.max_fsm_queue, 1)
        problems += check_min("max_stanza_size", self.max_stanza_size, 1024)
        if isinstance(self.registration_timeout, int):
            problems += check_min("registration_timeout", self.registration_timeout, 0)
        problems += check_min("replaced_wait_timeout", self.replaced_wait_timeout, 0)
        return problems

    def data_path(self, path: Path | str) -> Path:
        """`path` resolved against `data_dir` (absolute paths are kept)."""
        return self.data_dir / path
