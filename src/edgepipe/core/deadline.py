"""Turn deadlines: every turn has a time budget, and every stage gets what is left of it.

The clock is injectable (any monotonic ``() -> seconds``), so that deadline behaviour is tested
with a clock the test moves, not with wall-clock timings.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

MonotonicClock = Callable[[], float]
"""Seconds on a monotonic scale (``time.monotonic`` unless a test injects another)."""


@dataclass
class Deadline:
    """A point in time (on ``clock``) by which the turn must answer."""

    budget_ms: float
    """The whole turn's budget."""
    clock: MonotonicClock = field(default=time.monotonic, repr=False, compare=False)
    started: float = field(default=-1.0)
    """When the budget started, on ``clock`` (default: now)."""

    def __post_init__(self) -> None:
        if self.budget_ms < 0:
            raise ValueError(f"a turn budget cannot be negative ({self.budget_ms} ms)")
        if self.started < 0:
            self.started = self.clock()

    @classmethod
    def never(cls) -> Deadline:
        return cls(budget_ms=float("inf"))

    @property
    def at(self) -> float:
        return self.started + self.budget_ms / 1000.0

    def remaining_s(self) -> float:
        """Seconds left (never negative)."""
        return max(0.0, self.at - self.clock())

    def remaining_ms(self) -> float:
        return self.remaining_s() * 1000.0

    def expired(self, *, reserve_ms: float = 0.0) -> bool:
        """True when less than ``reserve_ms`` is left."""
        return self.remaining_ms() <= reserve_ms

    def elapsed_ms(self) -> float:
        return (self.clock() - self.started) * 1000.0
