"""What the kernel knows about a link's TCP connection: when the peer last acknowledged.

A peer whose event loop is busy (thousands of clients leaving at once, a long garbage
collection, a process starved of CPU on a crowded machine) sends no frame for a while; so
does a peer whose host died or was cut off. One layer down they differ: the busy peer's
kernel still acknowledges each segment we send (our heartbeats every interval), the lost
one does not. Linux reports it in `TCP_INFO` (``tcpi_last_ack_recv``); elsewhere, and for
links that are not TCP (the tests' in-memory pipes), nothing is known.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

TCP_INFO_SIZE = 104
"""Bytes of `struct tcp_info` asked for (Linux 4.x+ has at least this many)."""
_ESTABLISHED = 1
_LAST_ACK_RECV = 56
"""Offset of ``tcpi_last_ack_recv`` (u32, milliseconds ago) in `struct tcp_info`."""


def ms_since_peer_ack(stream: Any) -> int | None:
    """Milliseconds since the peer's TCP stack last acknowledged anything on the connection
    under `stream` (an asyncio StreamWriter or transport); None when unknown."""
    get = getattr(stream, "get_extra_info", None)
    sock = get("socket") if get is not None else None
    option = getattr(socket, "TCP_INFO", None)
    if sock is None or option is None:
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, option, TCP_INFO_SIZE)
    except OSError:
        return None
    if len(info) < _LAST_ACK_RECV + 4 or info[0] != _ESTABLISHED:
        return None
    return int(struct.unpack_from("I", info, _LAST_ACK_RECV)[0])
