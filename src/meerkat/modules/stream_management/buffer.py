"""Per-stream XEP-0198 state: the two counters and the unacknowledged buffer (pure).

Both directions count stanzas modulo 2^32 (XEP-0198 §4: h wraps). `handled` is how many
stanzas the client sent us (reported in ``<a h>``); `sent` how many we wrote to it. `acked` is
the last ``h`` the client reported; the `unacked` buffer holds the stanzas written since, in
order, so that they can be re-sent after a resumption or re-routed when the session ends.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from ...xmpp.element import Element

H_MODULO = 1 << 32


class HandledCountTooHigh(Exception):
    """The client acknowledged stanzas it was never sent."""

    def __init__(self, h: int, sent: int) -> None:
        super().__init__(f"h={h} but only {sent} stanzas were sent")
        self.h = h
        self.sent = sent


@dataclass
class SmState:
    """One stream's counters and buffer. `buffer_max` None: unbounded; 0: keep nothing."""

    buffer_max: int | None = 100
    ack_freq: int | None = 1
    smid: str | None = None
    """The resumption id, when the client enabled resumption."""
    handled: int = 0
    sent: int = 0
    acked: int = 0
    unacked: deque[Element] = field(default_factory=deque)

    def count_in(self) -> None:
        """The client sent one more stanza."""
        self.handled = (self.handled + 1) % H_MODULO

    def count_out(self, el: Element) -> None:
        """One more stanza was written to the client."""
        self.sent = (self.sent + 1) % H_MODULO
        if self.buffer_max != 0:
            self.unacked.append(el)

    @property
    def pending(self) -> int:
        """Stanzas written and not yet acknowledged."""
        return (self.sent - self.acked) % H_MODULO

    def ack(self, h: int) -> None:
        """The client handled our stanzas up to `h`; HandledCountTooHigh if it claims more."""
        done = (h - self.acked) % H_MODULO
        if done > self.pending:
            raise HandledCountTooHigh(h, self.sent)
        # The buffer holds the newest of the pending stanzas (all of them unless disabled).
        for _ in range(max(0, done - (self.pending - len(self.unacked)))):
            self.unacked.popleft()
        self.acked = h % H_MODULO

    def over_limit(self) -> bool:
        return self.buffer_max is not None and len(self.unacked) > self.buffer_max

    def wants_ack(self) -> bool:
        """After writing a stanza: time to ask for an ack (every `ack_freq` stanzas)?"""
        return self.ack_freq is not None and self.sent % self.ack_freq == 0

    def take_unacked(self) -> list[Element]:
        """Empty the buffer: its stanzas are re-sent (and counted again) or re-routed.

        The sent counter goes back to `acked`, so re-sending counts each one again."""
        items = list(self.unacked)
        self.unacked.clear()
        self.sent = self.acked
        return items
