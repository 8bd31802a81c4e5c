"""Where resumption ids live (`SmTable`), and the cluster's copy of buffers (`BufferMirror`).

An SM-ID (``<enabled id>``) maps to the session that can be resumed (its sid, full JID and
node); after that session ends without being resumed, the id maps to its last ``h`` ("stale
h", XEP-0198 §5: a late client learns which of its stanzas arrived) until it is pruned.

`LocalSmTable` keeps both in dicts on one node. The cluster implementation
(`clustering.ReplicatedSmTable`, the CETS ``stream-management ids`` table of DESIGN.md §6)
gives the same answers with *local* reads and replicated writes; the interface is shaped
for that:

- ids embed the owning node (`make_smid` / `smid_node`), so a node can tell where to ask for
  a hand-over without a lookup, and a survivor can drop a dead node's rows
  (`remove_node`);
- `lookup` and `stale_h` are synchronous local reads; `register`, `unregister`,
  `put_stale_h`, `prune_stale_h` and `remove_node` are writes (async: they may wait for
  peers); no read-modify-write is needed anywhere (ids are random and unique).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from ...xmpp.element import Element
from ...xmpp.jid import Jid


@dataclass(frozen=True, slots=True)
class SmEntry:
    """A resumable session."""

    smid: str
    sid: str
    """The session's sid (its `SessionRecord`), which stays the same across resumptions."""
    jid: Jid
    """The full JID bound when stream management was enabled (its bare JID owns the id)."""
    node: str


@dataclass(frozen=True, slots=True)
class StaleH:
    """What is left of an id whose session ended unresumed."""

    h: int
    owner: Jid
    """Bare JID: only the owner may learn the value."""
    at: float
    """Wall-clock seconds when the session ended (for pruning)."""


class SmTable(Protocol):
    """Resumption ids of the cluster: local reads, (replicated) writes."""

    def lookup(self, smid: str) -> SmEntry | None: ...
    async def register(self, entry: SmEntry) -> None: ...
    async def unregister(self, smid: str) -> None: ...
    def stale_h(self, smid: str) -> StaleH | None: ...
    async def put_stale_h(self, smid: str, stale: StaleH) -> None: ...
    async def prune_stale_h(self, older_than: float) -> int:
        """Forget stale h values recorded before `older_than`; how many."""
        ...

    async def remove_node(self, node: str) -> None:
        """A node died: its sessions cannot be resumed any more."""
        ...


class LocalSmTable:
    """`SmTable` for a single node."""

    def __init__(self) -> None:
        self._entries: dict[str, SmEntry] = {}
        self._stale: dict[str, StaleH] = {}

    def lookup(self, smid: str) -> SmEntry | None:
        return self._entries.get(smid)

    async def register(self, entry: SmEntry) -> None:
        self._entries[entry.smid] = entry

    async def unregister(self, smid: str) -> None:
        self._entries.pop(smid, None)

    def stale_h(self, smid: str) -> StaleH | None:
        return self._stale.get(smid)

    async def put_stale_h(self, smid: str, stale: StaleH) -> None:
        self._stale[smid] = stale

    async def prune_stale_h(self, older_than: float) -> int:
        old = [k for k, v in self._stale.items() if v.at < older_than]
        for key in old:
            del self._stale[key]
        return len(old)

    async def remove_node(self, node: str) -> None:
        for smid in [k for k, v in self._entries.items() if v.node == node]:
            del self._entries[smid]

    def __len__(self) -> int:
        return len(self._entries)


NONCE_BYTES = 18


def make_smid(node: str, nonce: bytes) -> str:
    """An opaque SM-ID naming its node: base64url(nonce || node), nonce of NONCE_BYTES."""
    if len(nonce) != NONCE_BYTES:
        raise ValueError(f"the nonce must be {NONCE_BYTES} bytes")
    return base64.urlsafe_b64encode(nonce + node.encode()).decode()


def smid_node(smid: str) -> str | None:
    """The node an SM-ID was issued by; None for an id we did not make."""
    try:
        raw = base64.urlsafe_b64decode(smid.encode())
        return raw[NONCE_BYTES:].decode() if len(raw) > NONCE_BYTES else None
    except (binascii.Error, ValueError):
        return None


class BufferMirror(Protocol):
    """A cluster's copy of the unacknowledged messages of resumable sessions.

    Written as stanzas enter and leave XEP-0198 buffers (synchronous: an implementation
    batches and replicates in the background), so that when a node dies a survivor can
    store that node's unacknowledged messages offline. Keys: (sid, sequence number).
    """

    def buffered(self, sid: str, seq: int, jid: Jid, el: Element, stamp: float) -> None:
        """Message `el` for session `sid` (bound to `jid`) entered its buffer at `stamp`."""
        ...

    def released(self, sid: str, seqs: Iterable[int]) -> None:
        """These buffered stanzas of `sid` were acknowledged, re-sent or re-routed."""
        ...

    def held(self, sid: str, seqs: Iterable[int]) -> list[tuple[Element, float]]:
        """The messages among these that are still mirrored (oldest first, with stamps)."""
        ...

    async def settle(self, sid: str) -> None:
        """Replicate now what `sid` has not replicated yet, and return once every peer has
        it (or is down). The old node of a hand-off calls it before it answers: the new
        node's release of these rows must not reach any node before the rows themselves."""
        ...
