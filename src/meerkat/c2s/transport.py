"""`Transport`: what a listener hands a c2s session (TCP, TLS, WebSocket, BOSH).

A transport moves bytes (or, for framed transports, whole XML frames) and knows about TLS.
Sessions never touch sockets; listeners implement this protocol.

Input is pushed (issue 6: no reader task, coroutine or future per idle connection): once the
session calls `start_reading`, the transport hands every chunk to the session's `Sink` as it
arrives, in order, and b"" once at the end of the stream (closed by the client, reset, failed
TLS: the session treats them alike). `pause_reading` stops deliveries at once (what arrives
meanwhile is held, with back-pressure on the socket) until `resume_reading`; the session uses
them for its read-ahead limit and its shaper. Closing the transport drops the sink.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

Sink = Callable[[bytes], None]
"""Takes the transport's input: a chunk (or frame), or b"" once at the end of the stream."""


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

    def start_reading(self, sink: Sink) -> None:
        """Deliver input to `sink` from now on (what arrived before comes first)."""
        ...

    def pause_reading(self) -> None:
        """Deliver nothing more until `resume_reading` (effective at once)."""
        ...

    def resume_reading(self) -> None:
        """Deliver again, beginning with what arrived while paused."""
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
        """Close after flushing what was written; nothing more is delivered."""
        ...
