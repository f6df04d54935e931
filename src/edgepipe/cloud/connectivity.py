"""Connectivity: ``online``, ``degraded`` or ``offline``, from observed calls and health probes.

Hysteresis keeps one lost packet from flipping the assistant into offline mode and one lucky
probe from flipping it back:

* ``online`` -> ``degraded`` on a failed call;
* ``degraded`` -> ``offline`` after ``failures_to_offline`` failures in a row (or a failed probe
  while degraded);
* ``offline`` -> ``degraded`` on one successful probe; no cloud calls are attempted while
  offline, only probes, at most every ``probe_interval_s``;
* ``degraded`` -> ``online`` after ``successes_to_online`` successes in a row.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from enum import StrEnum

MAX_TRANSITIONS = 256


class Link(StrEnum):
    ONLINE = "online"
    DEGRADED = "degraded"
    OFFLINE = "offline"


class Connectivity:
    """The link state machine. Thread-safe."""

    def __init__(
        self,
        probe: Callable[[], bool] | None = None,
        *,
        failures_to_offline: int = 3,
        successes_to_online: int = 2,
        probe_interval_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        initial: Link = Link.ONLINE,
    ) -> None:
        self._probe = probe
        self.failures_to_offline = failures_to_offline
        self.successes_to_online = successes_to_online
        self.probe_interval_s = probe_interval_s
        self._clock = clock
        self._state = initial
        self._failures = 0
        self._successes = 0
        self._last_probe = float("-inf")
        self._lock = threading.Lock()
        self.transitions: deque[tuple[float, Link, Link]] = deque(maxlen=MAX_TRANSITIONS)
        """The latest transitions, ``(clock, old, new)``, oldest first (at most
        ``MAX_TRANSITIONS``: a process that stays up for months keeps a bounded history)."""
        self._listeners: list[Callable[[Link, Link], None]] = []

    @property
    def state(self) -> Link:
        return self._state

    def on_change(self, listener: Callable[[Link, Link], None]) -> None:
        """Call ``listener(old, new)`` on every transition (outside the lock)."""
        self._listeners.append(listener)

    def _move(self, new: Link) -> tuple[Link, Link] | None:
        if new is self._state:
            return None
        old, self._state = self._state, new
        self.transitions.append((self._clock(), old, new))
        self._failures = self._successes = 0
        return old, new

    def _notify(self, change: tuple[Link, Link] | None) -> None:
        if change is not None:
            for listener in self._listeners:
                listener(*change)

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._successes += 1
            change = None
            if self._state is Link.OFFLINE:
                change = self._move(Link.DEGRADED)
            elif self._state is Link.DEGRADED and self._successes >= self.successes_to_online:
                change = self._move(Link.ONLINE)
        self._notify(change)

    def record_failure(self) -> None:
        with self._lock:
            self._successes = 0
            self._failures += 1
            change = None
            if self._state is Link.ONLINE:
                change = self._move(Link.DEGRADED)
                self._failures = 1
            elif self._state is Link.DEGRADED and self._failures >= self.failures_to_offline:
                change = self._move(Link.OFFLINE)
        self._notify(change)

    def force(self, state: Link) -> None:
        with self._lock:
            change = self._move(state)
        self._notify(change)

    def maybe_probe(self) -> Link:
        """While not online, run the health probe (rate-limited) and update the state."""
        if self._state is Link.ONLINE or self._probe is None:
            return self._state
        with self._lock:
            now = self._clock()
            if now - self._last_probe < self.probe_interval_s:
                return self._state
            self._last_probe = now
        ok = self._probe()
        if ok:
            self.record_success()
        elif self._state is Link.DEGRADED:
            with self._lock:
                change = self._move(Link.OFFLINE)
            self._notify(change)
        return self._state
