"""Room and device state behind a small adapter interface.

Handlers never talk to devices directly: they read and write keys (``lights.bedroom``,
``thermostat.setpoint``) and file service requests (towels, a taxi) through a
:class:`StateAdapter`. The in-memory adapter is the default; a deployment plugs in its building
management or property management system by implementing the same five methods.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from edgepipe.core.types import SlotScalar


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceRequest:
    """Something staff must do (deliver towels, place a wake-up call, book a taxi)."""

    request_id: str
    """Adapter-assigned id."""
    kind: str
    """Request kind (``towels``, ``wakeup``, ``taxi``...)."""
    details: Mapping[str, SlotScalar]
    """What exactly (item, count, destination...)."""
    created_at: datetime
    """When the guest asked."""
    due_at: datetime | None = None
    """When it should happen, if scheduled."""
    status: str = "open"
    """``open`` or ``cancelled``."""


@runtime_checkable
class StateAdapter(Protocol):
    """What handlers may do to the room."""

    def get(self, key: str, default: SlotScalar | None = None) -> SlotScalar | None:
        """Current value of a state key."""
        ...

    def set(self, key: str, value: SlotScalar) -> SlotScalar | None:
        """Set a state key; returns the previous value."""
        ...

    def keys(self, prefix: str = "") -> list[str]:
        """State keys starting with ``prefix``, sorted."""
        ...

    def add_request(
        self,
        kind: str,
        details: Mapping[str, SlotScalar],
        *,
        created_at: datetime,
        due_at: datetime | None = None,
    ) -> ServiceRequest:
        """File a service request."""
        ...

    def requests(self, kind: str | None = None, *, status: str = "open") -> list[ServiceRequest]:
        """Service requests of a kind (all kinds when None) with the given status."""
        ...

    def cancel_requests(self, kind: str) -> int:
        """Cancel every open request of a kind; returns how many."""
        ...


@dataclass
class InMemoryState:
    """Thread-safe in-memory :class:`StateAdapter` (the default)."""

    values: dict[str, SlotScalar] = field(default_factory=dict)
    _requests: list[ServiceRequest] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def get(self, key: str, default: SlotScalar | None = None) -> SlotScalar | None:
        with self._lock:
            return self.values.get(key, default)

    def set(self, key: str, value: SlotScalar) -> SlotScalar | None:
        with self._lock:
            previous = self.values.get(key)
            self.values[key] = value
            return previous

    def keys(self, prefix: str = "") -> list[str]:
        with self._lock:
            return sorted(k for k in self.values if k.startswith(prefix))

    def add_request(
        self,
        kind: str,
        details: Mapping[str, SlotScalar],
        *,
        created_at: datetime,
        due_at: datetime | None = None,
    ) -> ServiceRequest:
        with self._lock:
            request = ServiceRequest(
                request_id=f"R{next(self._ids):04d}",
                kind=kind,
                details=dict(details),
                created_at=created_at,
                due_at=due_at,
            )
            self._requests.append(request)
            return request

    def requests(self, kind: str | None = None, *, status: str = "open") -> list[ServiceRequest]:
        with self._lock:
            return [
                r for r in self._requests if (kind is None or r.kind == kind) and r.status == status
            ]

    def cancel_requests(self, kind: str) -> int:
        with self._lock:
            cancelled = 0
            for i, r in enumerate(self._requests):
                if r.kind == kind and r.status == "open":
                    self._requests[i] = ServiceRequest(
                        request_id=r.request_id,
                        kind=r.kind,
                        details=r.details,
                        created_at=r.created_at,
                        due_at=r.due_at,
                        status="cancelled",
                    )
                    cancelled += 1
            return cancelled
