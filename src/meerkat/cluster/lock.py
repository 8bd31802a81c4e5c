"""A cluster-wide lock over the node mesh (serialises table joins, like CETS' global:trans).

Every node keeps a FIFO lock queue. A requester acquires the lock on itself and every
connected node *in one global order* (sorted NodeIds), waiting in each queue; since all
requesters take nodes in the same order there is no deadlock and no retry storm.
A holder or waiter that goes down is removed from every queue. A requester cancelled
while waiting releases (or withdraws from) every node it asked.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from .errors import ClusterError, PeerUnavailable
from .node import ClusterNode, NodeEvent, NodeEventKind, NodeId

log = logging.getLogger(__name__)

CHANNEL = "cets_lock"


class ClusterLock:
    """One node's share of the cluster lock, and the client side of acquiring it."""

    def __init__(self, node: ClusterNode) -> None:
        self.node = node
        self._holder: tuple[NodeId, str] | None = None
        self._queue: deque[tuple[NodeId, str, asyncio.Future[bool]]] = deque()
        self._tokens = itertools.count(1)
        node.on_call(CHANNEL, self._handle)
        node.on_send(CHANNEL + "_release", lambda peer, token: self._release(peer, token))
        node.subscribe(self._on_event)

    @property
    def holder(self) -> NodeId | None:
        return self._holder[0] if self._holder else None

    def _handle(self, peer: NodeId, payload: Any) -> Any:
        op, token = payload
        if op == "acquire":
            fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            if self._holder is None:
                self._holder = (peer, token)
                fut.set_result(True)
            else:
                self._queue.append((peer, token, fut))
            return fut
        if op == "release":
            self._release(peer, token)
            return True
        raise ClusterError(f"unknown lock op {op!r}")

    def _release(self, peer: NodeId, token: str) -> None:
        if self._holder == (peer, token):
            self._holder = None
            self._grant_next()
        else:
            self._drop_waiters(lambda w: (w[0], w[1]) == (peer, token))

    def _drop_waiters(self, pred: Any) -> None:
        keep: deque[tuple[NodeId, str, asyncio.Future[bool]]] = deque()
        for waiter in self._queue:
            if pred(waiter):
                waiter[2].cancel()
            else:
                keep.append(waiter)
        self._queue = keep

    def _grant_next(self) -> None:
        while self._holder is None and self._queue:
            peer, token, fut = self._queue.popleft()
            if fut.done() or not self.node.is_up(peer.name):
                continue
            self._holder = (peer, token)
            fut.set_result(True)

    def _on_event(self, event: NodeEvent) -> None:
        if event.kind is not NodeEventKind.DOWN:
            return
        self._drop_waiters(lambda w: w[0] == event.node)
        if self._holder is not None and self._holder[0] == event.node:
            log.warning("cets_lock_holder_down holder=%s", event.node.name)
            self._holder = None
            self._grant_next()

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[list[NodeId]]:
        """Hold the lock on self and every connected node; yields the nodes locked."""
        token = f"{self.node.id.boot_id}:{next(self._tokens)}"
        asked: list[NodeId] = []
        locked: list[NodeId] = []
        try:
            for target in sorted([self.node.id, *self.node.peers()]):
                asked.append(target)
                try:
                    await self.node.call(target, CHANNEL, ["acquire", token], None)
                    locked.append(target)
                except PeerUnavailable:
                    continue
            yield locked
        finally:
            for target in reversed(asked):
                try:
                    if target == self.node.id:
                        self._release(self.node.id, token)
                    else:
                        self.node.send(target, CHANNEL + "_release", token)
                except PeerUnavailable:
                    pass
