"""RFC 6121 rosters and subscriptions: the module, its wire format and its state tables."""

from .module import RosterConfig, RosterModule
from .states import SubState, inbound, outbound

__all__ = ["RosterConfig", "RosterModule", "SubState", "inbound", "outbound"]
