"""XEP-0198 Stream Management (`mod_stream_management`): acks, buffering and resumption.

Parts: `buffer` (pure counters and the unacknowledged queue), `stanzas` (pure builders),
`table` (`SmTable`, where resumption ids live; local now, replicated in a cluster later),
`module` (the hooks).
"""

from .buffer import H_MODULO, HandledCountTooHigh, SmState
from .module import StaleHConfig, StreamManagementConfig, StreamManagementModule
from .table import LocalSmTable, SmEntry, SmTable, StaleH, make_smid, smid_node

__all__ = [
    "H_MODULO",
    "HandledCountTooHigh",
    "LocalSmTable",
    "SmEntry",
    "SmState",
    "SmTable",
    "StaleH",
    "StaleHConfig",
    "StreamManagementConfig",
    "StreamManagementModule",
    "make_smid",
    "smid_node",
]
