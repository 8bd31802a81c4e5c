"""Per-stream XEP-0198 state: the two counters and the unacknowledged buffer (pure).

Both directions count stanzas modulo 2^32 (XEP-0198 §4: h wraps). `handled` is how many
stanzas the client sent us (reported in ``<a h>``); `sent` how many we wrote to it. `acked` is
the last ``h`` the client reported; the `unacked` buffer holds the stanzas written since, in
order, so that they can be re-sent after a resumption or re-routed when the session ends.

Each buffered stanza also has the time it was first buffered (`stamps`, for the XEP-0203
``<delay/>`` of a re-sent stanza) and a sequence number that never wraps (`first_seq` for the
oldest, one more for each next): a cluster mirrors the buffer in a replicated table keyed by
it, so that a surviving node can store the messages of a dead node's sessions.
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
    stamps: deque[float] = field(default_factory=deque)
    """When each stanza of `unacked` was first buffered (wall-clock seconds)."""
    out_seq: int = 0
    """How many stanzas were ever buffered (the next one's sequence number)."""
    restamp: dict[int, float] = field(default_factory=dict)
    """id(element) -> first-buffered time, for stanzas being re-sent after a resumption."""

    def count_in(self) -> None:
        """The client sent one more stanza."""
        self.handled = (self.handled + 1) % H_MODULO

    def count_out(self, el: Element, now: float = 0.0) -> None:
        """One more stanza was written to the client (at `now`)."""
        self.sent = (self.sent + 1) % H_MODULO
        if self.buffer_max != 0:
            if self.restamp:
                now = self.restamp.pop(id(el), now)
            self.unacked.append(el)
            self.stamps.append(now)
            self.out_seq += 1

    @property
    def first_seq(self) -> int:
        """The sequence number of the oldest buffered stanza."""
        return self.out_seq - len(self.unacked)

    @property
    def pending(self) -> int:
        """Stanzas written and not yet acknowledged."""
        return (self.sent - self.acked) % H_MODULO

    def ack(self, h: int) -> list[Element]:
        """The client handled our stanzas up to `h`; HandledCountTooHigh if it claims more.

        Returns the stanzas that left the buffer (oldest first)."""
        done = (h - self.acked) % H_MODULO
        if done > self.pending:
            raise HandledCountTooHigh(h, self.sent)
        # The buffer holds the newest of the pending stanzas (all of them unless disabled).
        dropped = [self._pop() for _ in range(max(0, done - (self.pending - len(self.unacked))))]
        self.acked = h % H_MODULO
        return dropped

    def _pop(self) -> Element:
        self.stamps.popleft()
        return self.unacked.popleft()

    def over_limit(self) -> bool:
        return self.buffer_max is not None and len(self.unacked) > self.buffer_max

    def wants_ack(self) -> bool:
        """After writing a stanza: time to ask for an ack (every `ack_freq` stanzas)?"""
        return self.ack_freq is not None and self.sent % self.ack_freq == 0

    def take_unacked(self) -> list[Element]:
        """Empty the buffer: its stanzas are re-sent (and counted again) or re-routed."""
        return [el for el, _ in self.take_unacked_stamped()]

    def take_unacked_stamped(self) -> list[tuple[Element, float]]:
        """`take_unacked` with each stanza's first-buffered time.

        The sent counter goes back to `acked`, so re-sending counts each one again."""
        items = list(zip(self.unacked, self.stamps, strict=True))
        self.unacked.clear()
        self.stamps.clear()
        self.sent = self.acked
        return items
