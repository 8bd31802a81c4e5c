"""XEP-0198 Stream Management (`mod_stream_management`): acks, buffering and resumption.

Parts: `buffer` (pure counters and the unacknowledged queue), `stanzas` (pure builders),
`table` (`SmTable`, where resumption ids live, and `BufferMirror`, the cluster's copy of
buffers), `handover` (a session as plain data), `remote` (resumption of a session that
runs on another node), `module` (the hooks).
"""

from .buffer import H_MODULO, HandledCountTooHigh, SmState
from .handover import SessionState, pack_session, unpack_session
from .module import StaleHConfig, StreamManagementConfig, StreamManagementModule
from .table import BufferMirror, LocalSmTable, SmEntry, SmTable, StaleH, make_smid, smid_node

__all__ = [
    "H_MODULO",
    "BufferMirror",
    "HandledCountTooHigh",
    "LocalSmTable",
    "SessionState",
    "SmEntry",
    "SmState",
    "SmTable",
    "StaleH",
    "StaleHConfig",
    "StreamManagementConfig",
    "StreamManagementModule",
    "make_smid",
    "pack_session",
    "smid_node",
    "unpack_session",
]
