"""The states of a c2s session, named after RFC 6120's negotiation steps (and MongooseIM's)."""

from __future__ import annotations

from enum import Enum, auto


class State(Enum):
    WAIT_FOR_STREAM = auto()
    """Expecting the client's stream header (at start, after STARTTLS, after SASL)."""
    WAIT_FOR_FEATURE_BEFORE_AUTH = auto()
    """Features sent: expecting STARTTLS, a SASL <auth/> or (if enabled) registration."""
    WAIT_FOR_SASL_RESPONSE = auto()
    """A SASL challenge was sent: expecting <response/> or <abort/>."""
    WAIT_FOR_SASL2_RESPONSE = auto()
    """A SASL2 (XEP-0388) challenge was sent: expecting its <response/> or <abort/>."""
    WAIT_FOR_FEATURE_AFTER_AUTH = auto()
    """Authenticated stream restarted: expecting resource binding."""
    SESSION_ESTABLISHED = auto()
    """Bound: stanzas flow both ways."""
    RESUME_SESSION = auto()
    """Bound, but the transport is gone: kept for a XEP-0198 resumption. Stanzas routed to the
    session are buffered by stream management; nothing is read or written."""
    CLOSED = auto()
