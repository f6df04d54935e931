"""Turn deadlines: every turn has a time budget, and every stage gets what is left of it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class Deadline:
    """A point in time (monotonic clock) by which the turn must answer."""

    budget_ms: float
    """The whole turn's budget."""
    started: float = field(default_factory=time.monotonic)

    @classmethod
    def never(cls) -> Deadline:
        return cls(budget_ms=float("inf"))

    @property
    def at(self) -> float:
        return self.started + self.budget_ms / 1000.0

    def remaining_s(self) -> float:
        """Seconds left (never negative)."""
        return max(0.0, self.at - time.monotonic())

    def remaining_ms(self) -> float:
        return self.remaining_s() * 1000.0

    def expired(self, *, reserve_ms: float = 0.0) -> bool:
        """True when less than ``reserve_ms`` is left."""
        return self.remaining_ms() <= reserve_ms

    def elapsed_ms(self) -> float:
        return (time.monotonic() - self.started) * 1000.0
