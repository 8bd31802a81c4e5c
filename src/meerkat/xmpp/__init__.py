"""The pure XMPP protocol core: no sockets, no clock, no randomness."""

from .element import Element
from .errors import StanzaError, StreamError
from .jid import Jid, JidError
from .stream import StreamClosed, StreamOpened, XmlStream

__all__ = [
    "Element",
    "Jid",
    "JidError",
    "StanzaError",
    "StreamClosed",
    "StreamError",
    "StreamOpened",
    "XmlStream",
]
