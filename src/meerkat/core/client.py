"""`ClientSession`: what hook handlers and modules may see and ask of a client's session.

Handlers never reach into the c2s state machine. They read a few facts and make requests
(`send`, `close`, `set_presence`); per-module state lives under the module's own key in
`state(module)`.
"""

from __future__ import annotations

from typing import Any, Protocol

from ..xmpp.element import Element
from ..xmpp.jid import Jid
from .sessions import SessionRecord


class ClientSession(Protocol):
    """A bound client session, as seen from hooks (``params["session"]``)."""

    @property
    def jid(self) -> Jid:
        """The full JID."""
        ...

    @property
    def sid(self) -> str: ...

    @property
    def host_type(self) -> str: ...

    @property
    def record(self) -> SessionRecord:
        """The session's current record in the session table."""
        ...

    @property
    def available(self) -> bool:
        """True once the client has sent initial presence (and not gone unavailable since)."""
        ...

    @property
    def last_presence(self) -> Element | None:
        """The last broadcast presence the client sent (None while unavailable)."""
        ...

    @property
    def peer(self) -> tuple[str, int]:
        """The client's IP address and port."""
        ...

    @property
    def client_stanzas(self) -> int:
        """How many stanzas the client has sent into USER_SEND_PACKET so far: a counter that
        only grows, so that a module can tell whether the client was active between two looks
        (mod_ping) without a handler on every stanza."""
        ...

    def state(self, module: str) -> dict[str, Any]:
        """Mutable per-module state for this session (created empty on first use)."""
        ...

    def send(self, element: Element) -> None:
        """Write an element to this client (after the current hook chain)."""
        ...

    async def send_element(self, element: Element) -> None:
        """Write an element now, through the pre-send chain (stream management counts it)."""
        ...

    def close(self, condition: str, text: str | None = None) -> None:
        """Close the stream with a stream error."""
        ...

    async def set_presence(self, presence: Element | None) -> None:
        """Record the client's broadcast presence (None: unavailable); updates the priority."""
        ...
