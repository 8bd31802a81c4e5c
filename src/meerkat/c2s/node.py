"""`C2SNode`: what every c2s session of a node shares (kernel services, secrets, throttles)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from ..core.clock import Clock
from ..core.hooks import HookRegistry
from ..core.iq import IqDispatcher
from ..core.router import Router
from ..core.sessions import SessionManager
from .throttle import AuthThrottle


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
    live: set[Any] = field(default_factory=set)
    """The running sessions of this node (for shutdown)."""
