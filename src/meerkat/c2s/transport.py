"""`Transport`: what a listener hands a c2s session (TCP, TLS, WebSocket, BOSH).

A transport moves bytes (or, for framed transports, whole XML frames) and knows about TLS.
Sessions never touch sockets; listeners implement this protocol.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol


class Transport(Protocol):
    """One client connection as seen by its session."""

    framed: bool
    """True when every read returns whole elements (WebSocket, RFC 7395)."""

    @property
    def peer(self) -> tuple[str, int]:
        """Client address and port."""
        ...

    @property
    def secure(self) -> bool:
        """True when the connection is encrypted (TLS, or WSS)."""
        ...

    @property
    def can_starttls(self) -> bool:
        """True when `start_tls` is possible (plain TCP with a certificate)."""
        ...

    @property
    def tls_version(self) -> str | None:
        """``TLSv1.3`` ..., None without TLS."""
        ...

    def channel_bindings(self) -> Mapping[str, bytes]:
        """Channel-binding types available on this connection and their data."""
        ...

    async def read(self) -> bytes:
        """The next chunk (or frame); b"" at end of stream."""
        ...

    def write(self, data: bytes) -> None:
        """Queue bytes for sending (never blocks)."""
        ...

    def buffered(self) -> int:
        """Bytes written but not yet sent (for back-pressure)."""
        ...

    async def start_tls(self) -> None:
        """Upgrade to TLS as the server (STARTTLS)."""
        ...

    def close(self) -> None:
        """Close after flushing what was written."""
        ...
