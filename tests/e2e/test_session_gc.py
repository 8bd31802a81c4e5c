"""An ended client session is freed by reference counting, not left to the cyclic collector.

Issue 6: each session that left reference cycles behind made the collector's full passes at
mass logout (30-410 ms measured) and part of the CPU per login. These tests log a client in
over a real socket, end the session in different ways, and look at what the collector
would have to free (``gc.DEBUG_SAVEALL`` keeps it in ``gc.garbage``) with the collector off
meanwhile, so nothing was collected behind the test's back.
"""

from __future__ import annotations

import gc
import socket
import struct
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from meerkat.server import Node

from .rawxmpp import RawClient


@contextmanager
def collector_off() -> Iterator[None]:
    gc.collect()  # what the fixtures and earlier tests left
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def meerkat_garbage() -> Counter[str]:
    """Meerkat objects (by type) that only the cyclic collector could free right now."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        return Counter(
            type(obj).__qualname__
            for obj in gc.garbage
            if type(obj).__module__.startswith("meerkat.")
        )
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


@pytest.mark.parametrize(
    "ending",
    [
        "closes its stream",
        "drops the connection",
        "is reset by the client",
        "is replaced by a new login",
        "is closed by a module with a stream error",
    ],
)
async def test_a_session_that_ended_leaves_no_garbage_to_the_collector(
    node: Node, ending: str
) -> None:
    listener = node.c2s_listeners[0]
    with collector_off():
        client = await RawClient.connect(node.c2s_port(0))
        await client.login("alice", resource="desk")
        client.send("<presence/>")
        await client.expect("presence")
        if ending == "closes its stream":
            await client.close()
        elif ending == "drops the connection":
            client.writer.transport.abort()
        elif ending == "is reset by the client":  # the server's read fails: ECONNRESET
            sock = client.writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.writer.transport.abort()
        elif ending == "is closed by a module with a stream error":
            client.send("<enable xmlns='urn:xmpp:sm:3'/><enable xmlns='urn:xmpp:sm:3'/>")
            assert await client.stream_error() == "policy-violation"
            await client.close()
        else:
            second = await RawClient.connect(node.c2s_port(0))
            await second.login("alice", resource="desk")
            assert await client.stream_error() == "conflict"
            await second.close()
            second.parser.close()
            await client.close()
        await listener.wait_closed(timeout=5)
        assert not listener._connections
        client.parser.close()  # the client's own parser: a cycle of the test's, not the server's
        garbage = meerkat_garbage()
    assert garbage == Counter()
