"""RFC 6121 Appendix A: the subscription state machine, as pure tables.

A contact's state in a user's roster is one of nine (A.1): the primary subscription
(none/to/from/both) plus pending-out and pending-in flags, supplemented by the pre-approval
flag of §3.4. Two functions apply a subscription presence to a state:

- `outbound`: the user sent it (A.2). The result says whether the stanza is routed to the
  contact (``subscribed``/``unsubscribed`` that change nothing are not: §3.1.5, §3.4).
- `inbound`: the contact sent it (A.3). The result says whether it is delivered to the user
  and whether the server answers ``subscribed`` on the user's behalf (the contact is already
  approved, or pre-approved).

The tables map a state to the new state (None: "no state change"). Nothing here knows about
stanzas or storage; the roster module turns results into pushes and routing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final, Literal

Sub = Literal["none", "to", "from", "both"]
Key = tuple[Sub, bool, bool]  # (subscription, pending out, pending in)
SUBSCRIPTION_TYPES: Final = ("subscribe", "subscribed", "unsubscribe", "unsubscribed")


@dataclass(frozen=True, slots=True)
class SubState:
    """A contact's subscription state from the user's point of view."""

    sub: Sub = "none"
    pending_out: bool = False
    pending_in: bool = False
    approved: bool = False

    @property
    def key(self) -> Key:
        return (self.sub, self.pending_out, self.pending_in)

    @property
    def has_from(self) -> bool:
        """The contact receives the user's presence."""
        return self.sub in ("from", "both")

    @property
    def has_to(self) -> bool:
        """The user receives the contact's presence."""
        return self.sub in ("to", "both")

    @property
    def hidden(self) -> bool:
        """Only an inbound request: not shown in the roster (COMPAT: MongooseIM's filter)."""
        return self.sub == "none" and self.pending_in and not self.pending_out

    @property
    def ask(self) -> Literal["none", "out", "in", "both"]:
        """The store's encoding of the pending flags."""
        if self.pending_out and self.pending_in:
            return "both"
        if self.pending_out:
            return "out"
        if self.pending_in:
            return "in"
        return "none"

    @staticmethod
    def from_ask(sub: Sub, ask: str, approved: bool = False) -> SubState:
        return SubState(sub, ask in ("out", "both"), ask in ("in", "both"), approved)


def _s(sub: Sub, out: bool = False, in_: bool = False) -> Key:
    return (sub, out, in_)


# The nine states of A.1, in the RFC's order.
NONE, NONE_PO = _s("none"), _s("none", True)
NONE_PI, NONE_PO_PI = _s("none", in_=True), _s("none", True, True)
TO, TO_PI = _s("to"), _s("to", in_=True)
FROM, FROM_PO = _s("from"), _s("from", True)
BOTH = _s("both")
ALL_STATES: Final = (NONE, NONE_PO, NONE_PI, NONE_PO_PI, TO, TO_PI, FROM, FROM_PO, BOTH)

# -- A.2 outbound: new state, None = no change ---------------------------------------------------
OUT_SUBSCRIBE: Final[dict[Key, Key | None]] = {
    NONE: NONE_PO, NONE_PO: None, NONE_PI: NONE_PO_PI, NONE_PO_PI: None,
    TO: None, TO_PI: None, FROM: FROM_PO, FROM_PO: None, BOTH: None,
}  # fmt: skip
OUT_UNSUBSCRIBE: Final[dict[Key, Key | None]] = {
    NONE: None, NONE_PO: NONE, NONE_PI: None, NONE_PO_PI: NONE_PI,
    TO: NONE, TO_PI: NONE_PI, FROM: None, FROM_PO: FROM, BOTH: FROM,
}  # fmt: skip
OUT_SUBSCRIBED: Final[dict[Key, Key | None]] = {
    NONE: None, NONE_PO: None, NONE_PI: FROM, NONE_PO_PI: FROM_PO,
    TO: None, TO_PI: BOTH, FROM: None, FROM_PO: None, BOTH: None,
}  # fmt: skip
OUT_UNSUBSCRIBED: Final[dict[Key, Key | None]] = {
    NONE: None, NONE_PO: None, NONE_PI: NONE, NONE_PO_PI: NONE_PO,
    TO: None, TO_PI: TO, FROM: NONE, FROM_PO: NONE_PO, BOTH: TO,
}  # fmt: skip
OUTBOUND: Final = {
    "subscribe": OUT_SUBSCRIBE,
    "unsubscribe": OUT_UNSUBSCRIBE,
    "subscribed": OUT_SUBSCRIBED,
    "unsubscribed": OUT_UNSUBSCRIBED,
}

# -- A.3 inbound: (deliver to the user?, new state or None) ------------------------------------
IN_SUBSCRIBE: Final[dict[Key, tuple[bool, Key | None]]] = {
    NONE: (True, NONE_PI), NONE_PO: (True, NONE_PO_PI), NONE_PI: (False, None),
    NONE_PO_PI: (False, None), TO: (True, TO_PI), TO_PI: (False, None),
    FROM: (False, None), FROM_PO: (False, None), BOTH: (False, None),
}  # fmt: skip
IN_UNSUBSCRIBE: Final[dict[Key, tuple[bool, Key | None]]] = {
    NONE: (False, None), NONE_PO: (False, None), NONE_PI: (True, NONE),
    NONE_PO_PI: (True, NONE_PO), TO: (False, None), TO_PI: (True, TO),
    FROM: (True, NONE), FROM_PO: (True, NONE_PO), BOTH: (True, TO),
}  # fmt: skip
IN_SUBSCRIBED: Final[dict[Key, tuple[bool, Key | None]]] = {
    NONE: (False, None), NONE_PO: (True, TO), NONE_PI: (False, None),
    NONE_PO_PI: (True, TO_PI), TO: (False, None), TO_PI: (False, None),
    FROM: (False, None), FROM_PO: (True, BOTH), BOTH: (False, None),
}  # fmt: skip
IN_UNSUBSCRIBED: Final[dict[Key, tuple[bool, Key | None]]] = {
    NONE: (False, None), NONE_PO: (True, NONE), NONE_PI: (False, None),
    NONE_PO_PI: (True, NONE_PI), TO: (True, NONE), TO_PI: (True, NONE_PI),
    FROM: (False, None), FROM_PO: (True, FROM), BOTH: (True, FROM),
}  # fmt: skip
INBOUND: Final = {
    "subscribe": IN_SUBSCRIBE,
    "unsubscribe": IN_UNSUBSCRIBE,
    "subscribed": IN_SUBSCRIBED,
    "unsubscribed": IN_UNSUBSCRIBED,
}

# Pre-approval (§3.4.1): an inbound subscribe is approved at once; the contact gains 'from'.
PREAPPROVED_SUBSCRIBE: Final[dict[Key, Key]] = {NONE: FROM, NONE_PO: FROM_PO, TO: BOTH}


@dataclass(frozen=True, slots=True)
class OutResult:
    state: SubState
    changed: bool
    route: bool


@dataclass(frozen=True, slots=True)
class InResult:
    state: SubState
    changed: bool
    deliver: bool
    auto_reply: bool
    """Answer ``subscribed`` to the contact on the user's behalf."""


def _with_key(state: SubState, key: Key) -> SubState:
    sub, out, in_ = key
    # Gaining 'from' consumes a pre-approval (§3.4).
    approved = state.approved and sub not in ("from", "both")
    return SubState(sub, out, in_, approved)


def outbound(state: SubState, ptype: str) -> OutResult:
    """The user sends a subscription presence of type ``ptype`` to the contact."""
    new_key = OUTBOUND[ptype][state.key]
    new = state if new_key is None else _with_key(state, new_key)
    if ptype == "subscribed" and new_key is None and not state.has_from and not state.pending_in:
        # §3.4: approving before being asked is a pre-approval, kept and not routed.
        new = replace(state, approved=True)
    elif ptype == "unsubscribed" and new_key is None and state.approved:
        new = replace(state, approved=False)  # §3.4: unsubscribed cancels a pre-approval
    changed = new != state
    route = ptype in ("subscribe", "unsubscribe") or new_key is not None
    return OutResult(new, changed, route)


def inbound(state: SubState, ptype: str) -> InResult:
    """The contact sends a subscription presence of type ``ptype`` to the user."""
    if ptype == "subscribe":
        if state.approved and state.key in PREAPPROVED_SUBSCRIBE:
            new = _with_key(state, PREAPPROVED_SUBSCRIBE[state.key])
            return InResult(new, True, deliver=False, auto_reply=True)
        if state.has_from:  # already approved: answer for the user (A.3.1 note)
            return InResult(state, False, deliver=False, auto_reply=True)
    deliver, new_key = INBOUND[ptype][state.key]
    new = state if new_key is None else _with_key(state, new_key)
    return InResult(new, new != state, deliver, auto_reply=False)
