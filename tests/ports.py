"""Loopback ports for tests that configure a server before it starts.

`free_port()` asks the kernel for an unused port, as binding to port 0 does, and never hands
out the same port twice in one test process. Two calls in a row may otherwise get the same
number back: the first socket is closed before the second binds, and the kernel can give the
just-released port again (CI once saw a node's two c2s listeners configured on one port).
"""

from __future__ import annotations

import socket

_handed_out: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A port on `host` that nothing listens on now and no earlier call returned."""
    for _ in range(1000):
        with socket.socket() as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError("no fresh loopback port after 1000 tries")
