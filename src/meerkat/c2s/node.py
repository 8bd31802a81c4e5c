"""`C2SNode`: what every c2s session of a node shares (kernel services, secrets, throttles)."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..core.clock import Clock
from ..core.hooks import HookRegistry
from ..core.iq import IqDispatcher
from ..core.router import Router
from ..core.sessions import SessionManager
from ..xmpp.jid import Jid
from .throttle import AuthThrottle

AccessCheck = Callable[[str, Jid, str], "str | int"]
"""(rule name, user JID, client IP) -> the rule's value ("allow", "deny", a shaper, a number)."""


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
    access: AccessCheck = allow_all
    shapers: Mapping[str, int] = field(default_factory=dict)
    """Shaper name -> maximum bytes per second."""
    live: set[Any] = field(default_factory=set)
    """The running sessions of this node (for shutdown)."""
    features_cache: dict[tuple[object, ...], tuple[object, bytes]] = field(default_factory=dict)
    """Serialized pre-auth stream features per kind of connection (see `C2SSession`)."""
