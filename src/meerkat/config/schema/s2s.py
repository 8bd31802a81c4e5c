"""`[s2s]`: federation with other XMPP servers (parsed and validated; not served yet)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from meerkat.config.schema._util import check_min, check_port, doc


@dataclass(frozen=True)
class S2SOutgoing:
    """`[s2s.outgoing]`: connections this server opens to others."""

    port: int = field(default=5269, metadata=doc("Default port of remote servers."))
    ip_versions: tuple[Literal[4, 6], ...] = field(
        default=(4, 6), metadata=doc("IP versions tried, in order.")
    )
    connection_timeout: int = field(
        default=10000, metadata=doc("Milliseconds to establish a connection.")
    )
    max_retry_delay: int = field(
        default=300, metadata=doc("Longest wait, in seconds, before reconnecting.")
    )

    def validate(self) -> list[str]:
        """Port and timeouts in range."""
        problems = check_port("port", self.port)
        if not self.ip_versions:
            problems.append("ip_versions: at least one IP version is required")
        problems += check_min("connection_timeout", self.connection_timeout, 1)
        problems += check_min("max_retry_delay", self.max_retry_delay, 1)
        return problems


@dataclass(frozen=True)
class S2SConfig:
    """`[s2s]`: server-to-server policy and TLS."""

    default_policy: Literal["allow", "deny"] = field(
        default="allow", metadata=doc("Whether federation with other servers is allowed.")
    )
    use_starttls: Literal["false", "optional", "required", "required_trusted"] = field(
        default="optional",
        metadata=doc(
            'STARTTLS on s2s: "false", "optional", "required", or "required_trusted" '
            '(certificate verified). (MongooseIM\'s default is "false".)'
        ),
    )
    certfile: Path | None = field(
        default=None, metadata=doc("PEM certificate and key for s2s TLS; unset = generated.")
    )
    shared: str | None = field(
        default=None,
        metadata=doc("Dialback secret shared by the cluster's nodes; unset = generated."),
    )
    outgoing: S2SOutgoing = field(
        default_factory=S2SOutgoing, metadata=doc("Outgoing connection settings.")
    )
