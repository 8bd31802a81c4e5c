"""Slowing down repeated authentication failures from one address (pure, clock passed in).

Each failure doubles the delay before that address's next SASL answer, up to a ceiling; the
count decays after a quiet period. This costs an attacker time without costing us tasks.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class AuthThrottle:
    free_failures: int = 2
    """Failures per address before answers are delayed."""
    base_delay: float = 0.5
    max_delay: float = 10.0
    forget_after: float = 600.0
    max_tracked: int = 100_000
    _failures: dict[str, tuple[int, float]] = field(default_factory=dict)

    def delay(self, address: str, now: float) -> float:
        """Seconds to wait before answering this address's next attempt."""
        entry = self._failures.get(address)
        if entry is None:
            return 0.0
        count, last = entry
        if now - last > self.forget_after:
            del self._failures[address]
            return 0.0
        excess = count - self.free_failures
        if excess <= 0:
            return 0.0
        return float(min(self.base_delay * 2.0 ** (excess - 1), self.max_delay))

    def failed(self, address: str, now: float) -> None:
        if len(self._failures) >= self.max_tracked:
            self._forget_old(now)
        count, _ = self._failures.get(address, (0, now))
        self._failures[address] = (count + 1, now)

    def succeeded(self, address: str) -> None:
        self._failures.pop(address, None)

    def _forget_old(self, now: float) -> None:
        for addr, (_, last) in list(self._failures.items()):
            if now - last > self.forget_after:
                del self._failures[addr]
        while len(self._failures) >= self.max_tracked:
            self._failures.pop(next(iter(self._failures)))
