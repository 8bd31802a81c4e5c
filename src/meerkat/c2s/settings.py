"""`C2SSettings`: the options one c2s listener gives its sessions, read once at start."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class C2SSettings:
    hosts: frozenset[str]
    tls_mode: Literal["starttls_required", "starttls", "tls", "none"] = "starttls_required"
    max_stanza_size: int = 65536
    max_depth: int = 32
    state_timeout: float = 30.0
    """Seconds allowed for each negotiation step."""
    mechanisms: tuple[str, ...] = ("SCRAM-SHA-512", "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN")
    """SASL mechanisms in preference order (IANA names, -PLUS included)."""
    scram_hashes: frozenset[str] | None = None
    """Hashes stored for users (IANA names); None: any."""
    max_mailbox: int = 1000
    """Stanzas queued for a session before it is closed as too slow."""
    max_output_buffer: int = 4 << 20
    """Bytes waiting to be sent to a client before it is closed as too slow."""
    shaper_rule: str = "c2s_shaper"
    """Access rule (or shaper name) giving an authenticated user's maximum read rate."""
    sasl2: bool = True
    """Offer SASL2 (XEP-0388) with Bind 2 (XEP-0386) next to RFC 6120 SASL."""
    register_enabled: bool = False
    """Offer in-band registration (XEP-0077) before authentication."""
    language: str = "en"
