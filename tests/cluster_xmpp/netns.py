"""Two network namespaces joined by a veth pair, for cutting the network between nodes.

Addresses live only inside the namespaces, on a random /24 of 10.250.0.0/16; the host's
own network is never touched. `Network.cut()` takes the veth link down (both sides see
silence), `heal()` brings it back. `socket_in(ns, host, port)` opens a TCP connection from
inside a namespace (Python 3.11 has no `os.setns`: libc's setns on a worker thread, which
is switched back before it returns to the pool).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import secrets
import shutil
import socket
import subprocess
from dataclasses import dataclass

CLONE_NEWNET = 0x40000000


class NetnsUnavailable(Exception):
    pass


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    if result.returncode != 0:
        raise NetnsUnavailable(f"ip {' '.join(args)}: {result.stderr.strip()}")


@dataclass
class Network:
    a: str
    b: str
    addr_a: str
    addr_b: str
    veth_a: str
    veth_b: str

    @classmethod
    def create(cls) -> Network:
        if os.geteuid() != 0 or shutil.which("ip") is None:
            raise NetnsUnavailable("needs root and iproute2")
        tag = secrets.token_hex(3)
        subnet = f"10.250.{secrets.randbelow(250) + 1}"
        net = cls(
            f"mk{tag}a", f"mk{tag}b", f"{subnet}.1", f"{subnet}.2", f"mk{tag}va", f"mk{tag}vb"
        )
        try:
            _ip("netns", "add", net.a)
            _ip("netns", "add", net.b)
            _ip("link", "add", net.veth_a, "type", "veth", "peer", "name", net.veth_b)
            _ip("link", "set", net.veth_a, "netns", net.a)
            _ip("link", "set", net.veth_b, "netns", net.b)
            for ns, veth, addr in (
                (net.a, net.veth_a, net.addr_a),
                (net.b, net.veth_b, net.addr_b),
            ):
                _ip("-n", ns, "link", "set", "lo", "up")
                _ip("-n", ns, "addr", "add", f"{addr}/24", "dev", veth)
                _ip("-n", ns, "link", "set", veth, "up")
        except BaseException:
            net.remove()
            raise
        return net

    def cut(self) -> None:
        _ip("-n", self.a, "link", "set", self.veth_a, "down")

    def heal(self) -> None:
        _ip("-n", self.a, "link", "set", self.veth_a, "up")

    def remove(self) -> None:
        """Delete both namespaces (and with them the veth pair); never raises."""
        for ns in (self.a, self.b):
            with contextlib.suppress(NetnsUnavailable, OSError, subprocess.SubprocessError):
                _ip("netns", "del", ns)


def _connect_in(ns: str, host: str, port: int) -> socket.socket:
    libc = ctypes.CDLL(None, use_errno=True)
    with open("/proc/thread-self/ns/net", "rb") as home, open(f"/run/netns/{ns}", "rb") as there:
        if libc.setns(there.fileno(), CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns into the test namespace failed")
        try:
            return socket.create_connection((host, port), timeout=5)
        finally:
            if libc.setns(home.fileno(), CLONE_NEWNET) != 0:
                # A pool thread stuck in the wrong namespace would poison later work.
                os._exit(70)


async def socket_in(ns: str, host: str, port: int) -> socket.socket:
    sock = await asyncio.to_thread(_connect_in, ns, host, port)
    sock.setblocking(False)
    return sock
