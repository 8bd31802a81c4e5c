"""Errors raised by the cluster layer (links, nodes, tables, discovery)."""

from __future__ import annotations


class ClusterError(Exception):
    """Base class of every cluster error."""


class ProtocolError(ClusterError):
    """The peer sent bytes that are not a valid cluster frame or message."""


class HandshakeError(ProtocolError):
    """The link handshake failed (bad hello, version, cluster or proof)."""


class AuthenticationFailed(HandshakeError):
    """The peer could not prove knowledge of the cluster secret."""


class SelfConnection(HandshakeError):
    """The address we dialed is our own node."""


class HandshakeRejected(HandshakeError):
    """The accepting side refused an authenticated link (e.g. a duplicate)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class HandshakeAbandoned(HandshakeError):
    """The dialing peer closed the connection after our hello, before its proof: it gave
    way to a link between us that already exists (or stopped). Not a refusal."""


class LinkClosed(ClusterError):
    """The link is closed; nothing more can be sent on it."""


class PeerUnavailable(ClusterError):
    """The peer node is not connected (or went down while we waited for it)."""


class CallTimeout(ClusterError):
    """A remote call got no reply in time."""


class RemoteError(ClusterError):
    """The remote handler raised; `reason` is its short description."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class JoinError(ClusterError):
    """A table join failed; `reason` names the failed check (CETS names)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class LeaderOpFailed(ClusterError):
    """A leader operation could not reach a willing leader after every retry."""
