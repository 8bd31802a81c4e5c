"""Cluster membership: one `ClusterNode` per process, a link to every connected peer.

A node is a configured name plus a boot id; a restarted node with the same name is a
new incarnation (its old incarnation is reported down before the new one is up).
The node moves typed messages on named channels and knows nothing of XMPP:

    send(peer, channel, payload)          fire-and-forget, FIFO per peer
    await call(peer, channel, payload)    request/response with a timeout (CallTimeout)
    on_send(channel, fn) / on_call(channel, fn)
    subscribe(fn) / events()              node up/down

Handlers run synchronously in arrival order (that is what keeps replicated tables
consistent); a call handler may return an awaitable, whose result becomes the reply.

Duplicate links (both nodes dial each other at once) must never both come up: each end
would keep one and close the other, and whatever had already been sent on the closed one
(a lock request, its reply, a table op) would be lost without a node-down to fail the
caller. Each node therefore settles the pair by itself, with two checks that run
synchronously on its loop, so one of them always sees the other:
- accepting: a peer's dial is refused while our own dial to that higher-named peer is
  in progress, or while another link from it is being accepted (`_decide`);
- dialing: our dial is abandoned once its peer is known to be connected, or an inbound
  link from it has been accepted and is about to be activated (`_accepting`: the welcome
  is sent, `_activate` has not run yet).
Should two links of one incarnation still come up, `_activate` keeps the lower
initiator's and logs `cluster_link_duplicate`.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import inspect
import itertools
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from . import wire
from .clock import Clock, SystemClock, with_timeout
from .errors import (
    CallTimeout,
    ClusterError,
    HandshakeAbandoned,
    HandshakeRejected,
    LinkClosed,
    PeerUnavailable,
    ProtocolError,
    RemoteError,
    SelfConnection,
)
from .link import ByteReader, ByteWriter, Link, LinkConfig, Listener, Transport, establish

log = logging.getLogger(__name__)


@dataclass(frozen=True, order=True, slots=True)
class NodeId:
    """One incarnation of a node; ordered by (name, boot_id) everywhere."""

    name: str
    boot_id: str

    def to_wire(self) -> list[str]:
        return [self.name, self.boot_id]

    @classmethod
    def from_wire(cls, value: Any) -> NodeId:
        name, boot_id = value
        return cls(str(name), str(boot_id))


class NodeEventKind(enum.Enum):
    UP = "up"
    DOWN = "down"


@dataclass(frozen=True, slots=True)
class NodeEvent:
    kind: NodeEventKind
    node: NodeId
    reason: str = ""


SendHandler = Callable[[NodeId, Any], None]
CallHandler = Callable[[NodeId, Any], Any]
EventListener = Callable[[NodeEvent], None]


class _AlreadyConnected(Exception):
    """A dial is abandoned: its peer is linked already, or will be once `settled` is set."""

    def __init__(self, peer: wire.Hello, settled: asyncio.Event | None = None) -> None:
        self.peer = peer
        self.settled = settled


@dataclass(slots=True)
class _Acceptance:
    """An inbound link we accepted (welcome sent) that `_activate` has not seen yet."""

    name: str
    boot_id: str
    settled: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once the accepting task is over (link activated, or the handshake failed)."""


class ClusterNode:
    """Membership and messaging of one node."""

    def __init__(
        self,
        name: str,
        listen_address: str,
        secret: bytes,
        *,
        transport: Transport,
        clock: Clock | None = None,
        cluster: str = "meerkat",
        boot_id: str | None = None,
        link_config: LinkConfig | None = None,
        nonce_factory: Callable[[], bytes] = lambda: os.urandom(32),
        call_timeout: float = 10.0,
    ) -> None:
        self.id = NodeId(name, boot_id or os.urandom(8).hex())
        self.name = name
        self.listen_address = listen_address
        self.address = listen_address
        self.cluster = cluster
        self._secret = secret
        self._transport = transport
        self.clock: Clock = clock or SystemClock()
        self._link_config = link_config or LinkConfig()
        self._nonce = nonce_factory
        self.call_timeout = call_timeout
        self._links: dict[str, Link] = {}
        self._all_links: set[Link] = set()  # current, duplicate and retiring links
        self._pending_out: dict[str, int] = {}
        self._accepting: dict[str, _Acceptance] = {}
        self._address_names: dict[str, str] = {}
        self._send_handlers: dict[str, SendHandler] = {}
        self._call_handlers: dict[str, CallHandler] = {}
        self._listeners: list[EventListener] = []
        self._calls: dict[int, tuple[NodeId, asyncio.Future[Any]]] = {}
        self._call_ids = itertools.count(1)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._listener: Listener | None = None
        self._stopping = False

    def __repr__(self) -> str:
        return f"<ClusterNode {self.name}>"

    # -- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Listen on the cluster port; `address` becomes the bound address."""
        self._listener = await self._transport.listen(self.listen_address, self._on_inbound)
        self.address = self._listener.address

    async def stop(self) -> None:
        """Close the listener and every link, cancel and await every task."""
        self._stopping = True
        if self._listener is not None:
            await self._listener.close()
        for link in list(self._links.values()):
            link.close("node_stopping")
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for link in list(self._all_links):
            link.abort("node_stopping")
        self._all_links.clear()
        for _, fut in self._calls.values():
            if not fut.done():
                fut.set_exception(PeerUnavailable("local node stopped"))
        self._calls.clear()

    def spawn(self, coro: Coroutine[Any, Any, Any], what: str) -> asyncio.Task[Any]:
        """Run `coro` as a task owned by this node (cancelled by `stop`)."""
        task = asyncio.create_task(coro, name=f"{self.name}:{what}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("cluster_task_failed task=%s", task.get_name(), exc_info=task.exception())

    # -- membership --------------------------------------------------------------

    def peers(self) -> list[NodeId]:
        """Connected peers, sorted."""
        return sorted(
            NodeId(ln.peer.node, ln.peer.boot_id) for ln in self._links.values() if not ln.is_closed
        )

    def peer(self, name: str) -> NodeId | None:
        link = self._links.get(name)
        if link is None or link.is_closed:
            return None
        return NodeId(link.peer.node, link.peer.boot_id)

    def is_up(self, name: str) -> bool:
        return name == self.name or self.peer(name) is not None

    def name_at(self, address: str) -> str | None:
        """Name of the node last reached at `address`, if known."""
        return self._address_names.get(address)

    def subscribe(self, listener: EventListener) -> Callable[[], None]:
        """Call `listener(event)` on every node up/down; returns an unsubscribe function."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    async def events(self, maxsize: int = 1000) -> AsyncIterator[NodeEvent]:
        """Node events as an async iterator (bounded: overflow raises ClusterError)."""
        queue: asyncio.Queue[NodeEvent | None] = asyncio.Queue(maxsize)
        overflow = False

        def put(event: NodeEvent) -> None:
            nonlocal overflow
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                overflow = True

        unsubscribe = self.subscribe(put)
        try:
            while True:
                if overflow:
                    raise ClusterError("node event consumer too slow: queue overflow")
                event = await queue.get()
                if event is not None:
                    yield event
        finally:
            unsubscribe()

    def _emit(self, event: NodeEvent) -> None:
        log.info(
            "cluster_node_%s node=%s peer=%s reason=%s",
            event.kind.value,
            self.name,
            event.node.name,
            event.reason,
        )
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("cluster_node_listener_failed event=%s", event)

    # -- links -------------------------------------------------------------------

    def _hello(self) -> wire.Hello:
        return wire.Hello(
            wire.PROTOCOL_VERSION, self.cluster, self.name, self.id.boot_id, self._nonce()
        )

    async def connect(self, address: str) -> NodeId:
        """Make sure a link to the node at `address` is up; returns its id."""
        known = self._address_names.get(address)
        if known == self.name:
            return self.id
        if known is not None and (peer := self.peer(known)) is not None:
            return peer
        if self._stopping:
            raise PeerUnavailable("local node stopping")
        try:
            reader, writer = await with_timeout(
                self.clock, self._transport.connect(address), self._link_config.connect_timeout
            )
        except (OSError, TimeoutError) as exc:
            raise PeerUnavailable(f"cannot connect to {address}: {exc!r}") from exc
        dialed: list[str] = []

        def check(peer: wire.Hello) -> None:
            current = self.peer(peer.node)
            if current is not None and current.boot_id == peer.boot_id:
                raise _AlreadyConnected(peer)
            accepting = self._accepting.get(peer.node)
            if accepting is not None and accepting.boot_id == peer.boot_id:
                raise _AlreadyConnected(peer, accepting.settled)  # its dial to us won
            self._pending_out[peer.node] = self._pending_out.get(peer.node, 0) + 1
            dialed.append(peer.node)

        try:
            link = await establish(
                reader,
                writer,
                secret=self._secret,
                local=self._hello(),
                outbound=True,
                config=self._link_config,
                clock=self.clock,
                decide=lambda _: None,
                on_peer_hello=check,
            )
        except _AlreadyConnected as exc:
            self._address_names[address] = exc.peer.node
            if exc.settled is None:
                return NodeId(exc.peer.node, exc.peer.boot_id)
            await exc.settled.wait()  # bounded by the accepting side's handshake timeout
            if (peer := self.peer(exc.peer.node)) is None:
                raise PeerUnavailable(f"link from {exc.peer.node} failed") from None
            return peer
        except SelfConnection:
            self._address_names[address] = self.name
            return self.id
        except HandshakeRejected as exc:
            if exc.reason == "duplicate" and dialed and (peer := self.peer(dialed[0])):
                self._address_names[address] = peer.name  # else discovery re-dials it forever
                return peer
            raise PeerUnavailable(f"{address} refused the link: {exc.reason}") from exc
        except (ProtocolError, TimeoutError, OSError) as exc:
            raise PeerUnavailable(f"handshake with {address} failed: {exc}") from exc
        finally:
            for name in dialed:
                self._pending_out[name] -= 1
                if not self._pending_out[name]:
                    del self._pending_out[name]
        self._address_names[address] = link.peer.node
        self._activate(link)
        peer = self.peer(link.peer.node)
        if peer is None:
            raise PeerUnavailable(f"link to {address} closed at once")
        return peer

    def _on_inbound(self, reader: ByteReader, writer: ByteWriter) -> None:
        if self._stopping:
            writer.close()
            return
        task = self.spawn(self._accept(reader, writer), "accept")
        # `stop` may cancel the task before its first step, and then none of its code runs.
        task.add_done_callback(lambda t: writer.close() if t.cancelled() else None)

    async def _accept(self, reader: ByteReader, writer: ByteWriter) -> None:
        accepted: list[_Acceptance] = []

        def decide(peer: wire.Hello) -> str | None:
            reason = self._decide(peer)
            if reason is None:  # from here until `_activate`, our dials to it give way
                acceptance = _Acceptance(peer.node, peer.boot_id)
                self._accepting[peer.node] = acceptance
                accepted.append(acceptance)
            return reason

        try:
            link = await establish(
                reader,
                writer,
                secret=self._secret,
                local=self._hello(),
                outbound=False,
                config=self._link_config,
                clock=self.clock,
                decide=decide,
            )
        except HandshakeRejected as exc:
            log.debug("cluster_link_rejected reason=%s", exc.reason)
        except HandshakeAbandoned as exc:  # normal: a crossing dial gave way to ours
            log.info("cluster_link_abandoned node=%s error=%s", self.name, exc)
        except (ProtocolError, TimeoutError) as exc:
            log.warning("cluster_link_refused node=%s error=%s", self.name, exc)
        except (ConnectionError, OSError) as exc:
            log.info("cluster_link_aborted node=%s error=%r", self.name, exc)
        else:
            self._activate(link)
        finally:
            for acceptance in accepted:
                if self._accepting.get(acceptance.name) is acceptance:
                    del self._accepting[acceptance.name]
                acceptance.settled.set()

    def _decide(self, peer: wire.Hello) -> str | None:
        if self._stopping:
            return "shutting_down"
        current = self.peer(peer.node)
        if current is not None and current.boot_id == peer.boot_id:
            return "duplicate"
        accepting = self._accepting.get(peer.node)
        if accepting is not None and accepting.boot_id == peer.boot_id:
            return "duplicate"  # another link from it is being accepted
        if peer.node in self._pending_out and self.name < peer.node:
            return "duplicate"  # our own dial to that node is the one to keep
        return None

    def _activate(self, link: Link) -> None:
        self._all_links.add(link)
        name = link.peer.node
        new_id = NodeId(name, link.peer.boot_id)
        current = self._links.get(name)
        if self._stopping:
            link.close("node_stopping")
        elif current is not None and not current.is_closed:
            if current.peer.boot_id != link.peer.boot_id:
                del self._links[name]
                current.close("new_incarnation")
                self._node_down(NodeId(name, current.peer.boot_id), "new_incarnation")
                self._links[name] = link
                self._emit(NodeEvent(NodeEventKind.UP, new_id))
            else:
                # Same incarnation twice: `_decide` and `connect` should have prevented it;
                # frames already sent on the link closed here are lost.
                keep, drop = (
                    (link, current) if link.initiator < current.initiator else (current, link)
                )
                log.warning(
                    "cluster_link_duplicate node=%s peer=%s kept_initiator=%s",
                    self.name,
                    name,
                    keep.initiator,
                )
                self._links[name] = keep
                drop.close("duplicate")
        else:
            self._links[name] = link
            self._emit(NodeEvent(NodeEventKind.UP, new_id))
        self.spawn(self._run_link(link), f"link:{name}")

    async def _run_link(self, link: Link) -> None:
        try:
            # The peer's NodeId once per link, not once per message.
            peer = NodeId(link.peer.node, link.peer.boot_id)
            reason = await link.run(functools.partial(self._on_message, peer))
        finally:
            self._all_links.discard(link)
        name = link.peer.node
        if self._links.get(name) is link:
            del self._links[name]
            self._node_down(NodeId(name, link.peer.boot_id), reason)

    def _node_down(self, node: NodeId, reason: str) -> None:
        for call_id, (peer, fut) in list(self._calls.items()):
            if peer == node and not fut.done():
                fut.set_exception(PeerUnavailable(f"{node.name} down: {reason}"))
                del self._calls[call_id]
        self._emit(NodeEvent(NodeEventKind.DOWN, node, reason))

    def disconnect(self, name: str, reason: str = "disconnected") -> None:
        """Close the link to `name` (tests, misbehaving peers)."""
        link = self._links.get(name)
        if link is not None:
            link.close(reason)

    # -- messaging ---------------------------------------------------------------

    def on_send(self, channel: str, handler: SendHandler) -> None:
        self._send_handlers[channel] = handler

    def on_call(self, channel: str, handler: CallHandler) -> None:
        self._call_handlers[channel] = handler

    def _link_to(self, peer: str | NodeId) -> Link:
        name = peer.name if isinstance(peer, NodeId) else peer
        link = self._links.get(name)
        if link is None or link.is_closed:
            raise PeerUnavailable(f"{name} is not connected")
        if isinstance(peer, NodeId) and peer.boot_id != link.peer.boot_id:
            raise PeerUnavailable(f"{peer} is gone (now {link.peer.boot_id})")
        return link

    def send(self, peer: str | NodeId, channel: str, payload: Any) -> None:
        """Queue a message to `peer` (FIFO); raises PeerUnavailable if not connected."""
        name = peer.name if isinstance(peer, NodeId) else peer
        if name == self.name:
            handler = self._send_handlers.get(channel)
            if handler is not None:
                asyncio.get_running_loop().call_soon(handler, self.id, payload)
            return
        try:
            self._link_to(peer).send_nowait(["s", channel, payload])
        except LinkClosed as exc:
            raise PeerUnavailable(str(exc)) from exc

    async def call(
        self, peer: str | NodeId, channel: str, payload: Any, timeout: float | None = -1.0
    ) -> Any:
        """Call `peer` (or this node); CallTimeout after `timeout` s (-1: `call_timeout`;
        None: wait until the peer goes down)."""
        if timeout is not None and timeout < 0:
            timeout = self.call_timeout
        name = peer.name if isinstance(peer, NodeId) else peer
        if name == self.name:
            handler = self._call_handlers.get(channel)
            if handler is None:
                raise RemoteError(f"unknown_channel {channel}")
            result = handler(self.id, payload)
            if not inspect.isawaitable(result):
                return result
            try:  # bounded like a remote call: a local lock queue can wait on a lost reply
                return await with_timeout(self.clock, result, timeout)
            except TimeoutError:
                raise _no_reply(channel, name, timeout) from None
        link = self._link_to(peer)
        call_id = next(self._call_ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._calls[call_id] = (NodeId(link.peer.node, link.peer.boot_id), fut)
        try:
            link.send_nowait(["c", call_id, channel, payload])
            return await with_timeout(self.clock, fut, timeout)
        except TimeoutError:
            raise _no_reply(channel, name, timeout) from None
        except LinkClosed as exc:
            raise PeerUnavailable(str(exc)) from exc
        finally:
            self._calls.pop(call_id, None)

    def _on_message(self, peer: NodeId, link: Link, msg: Any) -> None:
        if not isinstance(msg, list) or not msg:
            return self._bad_message(link, msg)
        kind = msg[0]
        if kind == "s" and len(msg) == 3 and isinstance(msg[1], str):
            handler = self._send_handlers.get(msg[1])
            if handler is None:
                log.debug("cluster_message_unhandled channel=%s", msg[1])
                return None
            try:
                handler(peer, msg[2])
            except Exception:
                log.exception("cluster_handler_failed channel=%s peer=%s", msg[1], peer.name)
        elif kind == "c" and len(msg) == 4 and isinstance(msg[1], int) and isinstance(msg[2], str):
            self._handle_call(link, peer, msg[1], msg[2], msg[3])
        elif kind == "r" and len(msg) == 4 and isinstance(msg[1], int):
            entry = self._calls.pop(msg[1], None)
            if entry is None or entry[1].done():
                return None
            if msg[2] is True:
                entry[1].set_result(msg[3])
            else:
                entry[1].set_exception(RemoteError(str(msg[3])))
        else:
            self._bad_message(link, msg)
        return None

    def _bad_message(self, link: Link, msg: Any) -> None:
        log.warning("cluster_bad_message peer=%s msg=%.80r", link.peer.node, msg)
        link.close("protocol_error")

    def _handle_call(
        self, link: Link, peer: NodeId, call_id: int, channel: str, payload: Any
    ) -> None:
        handler = self._call_handlers.get(channel)
        if handler is None:
            self._reply(link, call_id, False, f"unknown_channel {channel}")
            return
        try:
            result = handler(peer, payload)
        except Exception as exc:
            self._reply_error(link, call_id, channel, exc)
            return
        if inspect.isawaitable(result):
            self.spawn(self._reply_later(link, call_id, channel, result), f"reply:{channel}")
        else:
            self._reply(link, call_id, True, result)

    async def _reply_later(
        self, link: Link, call_id: int, channel: str, result: Awaitable[Any]
    ) -> None:
        try:
            value = await result
        except Exception as exc:
            self._reply_error(link, call_id, channel, exc)
        else:
            self._reply(link, call_id, True, value)

    def _reply_error(self, link: Link, call_id: int, channel: str, exc: Exception) -> None:
        if isinstance(exc, ClusterError):
            reason = getattr(exc, "reason", None) or str(exc) or exc.__class__.__name__
        else:
            log.exception("cluster_call_handler_failed channel=%s", channel, exc_info=exc)
            reason = f"internal_error {exc.__class__.__name__}"
        self._reply(link, call_id, False, reason)

    def _reply(self, link: Link, call_id: int, ok: bool, value: Any) -> None:
        try:
            link.send_nowait(["r", call_id, ok, value])
        except LinkClosed:
            pass
        except (TypeError, ClusterError) as exc:
            link.send_nowait(["r", call_id, False, f"unencodable reply: {exc}"])


def _no_reply(channel: str, peer: str, timeout: float | None) -> CallTimeout:
    return CallTimeout(f"{channel} call to {peer} got no reply in {timeout:g}s")
