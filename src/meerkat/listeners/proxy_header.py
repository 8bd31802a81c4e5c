"""The PROXY protocol header (HAProxy, versions 1 and 2) that a load balancer puts first.

A c2s listener with `proxy_protocol = true` sits behind a proxy (an AWS NLB, HAProxy, a
Kubernetes ingress) that opens every connection with one header naming the client's real
address. `parse_proxy_header` reads it from the first bytes of a connection; the connection
then goes on with the bytes after it. A connection that does not start with a well-formed
header is refused: behind such a proxy, it did not come through the proxy.
"""

from __future__ import annotations

import ipaddress
import struct

V1_PREFIX = b"PROXY "
V1_MAX = 107
"""Longest version 1 line, CRLF included."""
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V2_FIXED = 16
V2_MAX = 4096
"""Longest version 2 header we accept (addresses and TLVs); the spec asks for at least 536."""

_V2_LOCAL, _V2_PROXY = 0x20, 0x21
_V2_INET, _V2_INET6 = 0x1, 0x2
_V2_STREAM = 0x1

Address = tuple[str, int]


class ProxyHeaderError(ValueError):
    """The connection does not start with a valid PROXY protocol header."""


def parse_proxy_header(data: bytes) -> tuple[Address | None, int] | None:
    """The header at the start of `data`: (client address, bytes it takes), or None while
    more bytes are needed. The address is None when the header names none (v1 `UNKNOWN`,
    v2 `LOCAL` or an unspecified family): keep the socket's peer. Raises ProxyHeaderError."""
    if data[:1] == V2_SIGNATURE[:1]:
        return _parse_v2(data)
    if data[:1] == V1_PREFIX[:1]:
        return _parse_v1(data)
    if not data:
        return None
    raise ProxyHeaderError("no PROXY protocol header")


def _parse_v1(data: bytes) -> tuple[Address | None, int] | None:
    end = data.find(b"\r\n", 0, V1_MAX)
    if end < 0:
        if len(data) >= V1_MAX or not V1_PREFIX.startswith(data[:6]):
            raise ProxyHeaderError("PROXY v1 line too long or malformed")
        return None
    parts = data[:end].split(b" ")
    if parts[0] != b"PROXY" or len(parts) < 2:
        raise ProxyHeaderError("PROXY v1 line malformed")
    if parts[1] == b"UNKNOWN":
        return None, end + 2
    if parts[1] not in (b"TCP4", b"TCP6") or len(parts) != 6:
        raise ProxyHeaderError("PROXY v1 protocol unknown")
    try:
        source = ipaddress.ip_address(parts[2].decode("ascii"))
        ipaddress.ip_address(parts[3].decode("ascii"))
        port = _v1_port(parts[4])
        _v1_port(parts[5])
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProxyHeaderError(f"PROXY v1 address malformed: {exc}") from None
    if source.version != (4 if parts[1] == b"TCP4" else 6):
        raise ProxyHeaderError("PROXY v1 address family mismatch")
    return (str(source), port), end + 2


def _v1_port(text: bytes) -> int:
    if not text.isdigit() or len(text) > 5 or (len(text) > 1 and text[:1] == b"0"):
        raise ValueError(f"port {text!r}")
    port = int(text)
    if port > 65535:
        raise ValueError(f"port {port}")
    return port


def _parse_v2(data: bytes) -> tuple[Address | None, int] | None:
    if len(data) < V2_FIXED:
        if not V2_SIGNATURE.startswith(data[:12]):
            raise ProxyHeaderError("PROXY v2 signature mismatch")
        return None
    if data[:12] != V2_SIGNATURE:
        raise ProxyHeaderError("PROXY v2 signature mismatch")
    command, family_protocol, length = struct.unpack_from("!BBH", data, 12)
    total = V2_FIXED + length
    if total > V2_MAX:
        raise ProxyHeaderError("PROXY v2 header too long")
    if command not in (_V2_LOCAL, _V2_PROXY):
        raise ProxyHeaderError("PROXY v2 version or command unknown")
    if len(data) < total:
        return None
    family, protocol = family_protocol >> 4, family_protocol & 0xF
    if command == _V2_LOCAL or protocol != _V2_STREAM or family not in (_V2_INET, _V2_INET6):
        return None, total  # health checks, UDP, UNIX sockets: the peer stays the proxy
    size = 4 if family == _V2_INET else 16
    if length < 2 * size + 4:
        raise ProxyHeaderError("PROXY v2 address block too short")
    source = ipaddress.ip_address(data[V2_FIXED : V2_FIXED + size])
    (port,) = struct.unpack_from("!H", data, V2_FIXED + 2 * size)
    return (str(source), port), total
