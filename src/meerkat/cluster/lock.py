"""A cluster-wide lock over the node mesh (serialises table joins, like CETS' global:trans).

Every node keeps a FIFO lock queue. A requester acquires the lock on itself and every
connected node *in one global order* (sorted NodeIds), waiting in each queue; since all
requesters take nodes in the same order there is no deadlock and no retry storm.
A holder or waiter that goes down is removed from every queue. A requester cancelled
while waiting releases (or withdraws from) every node it asked.

A lost reply (a grant sent on a link that closed while the node stayed up) must not
wedge the cluster: the requester would wait forever while the granting node holds the
lock in its name, and every later join queues behind it. So each acquire is a call
bounded by the node's call timeout, and acquiring is idempotent per token: a requester
that got no reply asks again with the same token and gets the grant it missed (or keeps
its place in the queue). After `ACQUIRE_ATTEMPTS` unanswered attempts it gives up with
CallTimeout, and like any requester that leaves, releases its token on every node asked,
the silent one included, so no lock stays held in its name. Why not a lease that expires
or an entry tied to the link: a lease needs renewing for as long as a join legitimately
runs (large dumps), and a link-tied entry misses a reply lost on a link that stays up;
the release on leaving is the step every requester already takes.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from .errors import CallTimeout, ClusterError, PeerUnavailable
from .node import ClusterNode, NodeEvent, NodeEventKind, NodeId

log = logging.getLogger(__name__)

CHANNEL = "cets_lock"
ACQUIRE_ATTEMPTS = 3
"""Unanswered acquire calls (each bounded by the call timeout) before a requester gives up."""


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
            return self._acquire(peer, token)
        if op == "release":
            self._release(peer, token)
            return True
        raise ClusterError(f"unknown lock op {op!r}")

    def _acquire(self, peer: NodeId, token: str) -> asyncio.Future[bool]:
        """Grant now, or queue; a repeated request (its reply was lost) is answered again
        (granted: at once; waiting: when granted, keeping its place in the queue)."""
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if self._holder is None or self._holder == (peer, token):
            self._holder = (peer, token)
            fut.set_result(True)
            return fut
        for i, (w_peer, w_token, w_fut) in enumerate(self._queue):
            if (w_peer, w_token) == (peer, token):
                if not w_fut.done():
                    return w_fut  # the earlier request's reply is sent too, and ignored
                self._queue[i] = (peer, token, fut)  # a local caller cancelled it
                return fut
        self._queue.append((peer, token, fut))
        return fut

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
                    await self._acquire_on(target, token)
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

    async def _acquire_on(self, target: NodeId, token: str) -> None:
        for attempt in range(1, ACQUIRE_ATTEMPTS + 1):
            try:
                await self.node.call(target, CHANNEL, ["acquire", token])
                return
            except CallTimeout as exc:
                log.info(
                    "cets_lock_acquire_timeout node=%s target=%s attempt=%d error=%s",
                    self.node.name,
                    target.name,
                    attempt,
                    exc,
                )
        raise CallTimeout(
            f"cluster lock on {target.name}: no grant after {ACQUIRE_ATTEMPTS} attempts"
            f" of {self.node.call_timeout:g}s"
        )
