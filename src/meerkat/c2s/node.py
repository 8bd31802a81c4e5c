"""`C2SNode`: what every c2s session of a node shares (kernel services, secrets, throttles)."""

from __future__ import annotations

import os
import secrets
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..core.clock import Clock
from ..core.hooks import HookRegistry
from ..core.iq import IqDispatcher
from ..core.router import Router
from ..core.sessions import SessionManager
from ..xmpp.jid import Jid
from .ending import EndingGate
from .throttle import AuthThrottle

AccessCheck = Callable[[str, Jid, str], "str | int"]
"""(rule name, user JID, client IP) -> the rule's value ("allow", "deny", a shaper, a number)."""


class RandomPool:
    """Random bytes from the kernel's CSPRNG (`os.urandom`), fetched `size` bytes at a time.

    A login needs four random tokens (three stream ids and a SCRAM nonce); fetched one by
    one they were four system calls, each releasing the GIL. Every byte is handed out once.
    Used from the event loop's thread only. A forked child empties its copy, so parent and
    child never hand out the same bytes."""

    __slots__ = ("__weakref__", "_buf", "_pos", "_size")

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._buf = b""
        self._pos = 0
        ref = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _forget(ref))

    def __call__(self, n: int) -> bytes:
        """`n` fresh random bytes."""
        pos, end = self._pos, self._pos + n
        if end > len(self._buf):
            self._buf, pos, end = os.urandom(max(self._size, n)), 0, n
        self._pos = end
        return self._buf[pos:end]


def _forget(ref: weakref.ref[RandomPool]) -> None:
    pool = ref()
    if pool is not None:
        pool._buf, pool._pos = b"", 0


def allow_all(rule: str, jid: Jid, ip: str) -> str | int:
    """The access check of a node with no rules: everything allowed, nothing shaped."""
    return "none" if rule.endswith("shaper") else "allow"


@dataclass
class C2SNode:
    node: str
    clock: Clock
    hooks: HookRegistry
    iq: IqDispatcher
    router: Router
    sessions: SessionManager
    accounts: Any
    """The account service (`meerkat.auth.accounts.Accounts`)."""
    throttle: AuthThrottle = field(default_factory=AuthThrottle)
    mock_secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    """Key for the fake SCRAM credentials of unknown users (stable for the node's life)."""
    random: Callable[[int], bytes] = field(default_factory=RandomPool)
    """n -> n random bytes (stream ids, SCRAM nonces, generated resources)."""
    access: AccessCheck = allow_all
    shapers: Mapping[str, int] = field(default_factory=dict)
    """Shaper name -> maximum bytes per second."""
    live: set[Any] = field(default_factory=set)
    """The running sessions of this node (for shutdown)."""
    endings: EndingGate = field(default_factory=EndingGate)
    """How many sessions end at the same time (a mass disconnect is spread over turns)."""
    features_cache: dict[tuple[object, ...], tuple[object, bytes]] = field(default_factory=dict)
    """Serialized pre-auth stream features per kind of connection (see `C2SSession`)."""
