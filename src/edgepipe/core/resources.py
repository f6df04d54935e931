"""Heavy, shareable things (models, compiled matchers, trained routers) with an explicit owner.

A :class:`Resources` is a keyed store: ``get(key, build)`` builds a thing once and hands the same
object to every later caller with that key; :meth:`Resources.close` closes them all, newest
first. An engine builds what it needs through one; several engines (a test session, a service
that reloads its pack) can share one, so that a model is loaded once per process and closed once,
when its owner says so. Keys name everything the thing depends on (a pack's content hash, a
model path, a thread count).

Building happens under a per-key lock: two engines asking for the same model at once wait for
one load, and asking for different things does not serialise them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class Resources:
    """Things built once and shared, closed together. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[Hashable, Any] = {}
        self._building: dict[Hashable, threading.Lock] = {}
        self._closers: list[tuple[Hashable, Callable[[], None]]] = []
        self._closed = False

    def get(
        self,
        key: Hashable,
        build: Callable[[], T],
        *,
        close: Callable[[T], None] | None = None,
    ) -> T:
        """The thing stored under ``key``, built by ``build()`` the first time. ``close`` is
        called with it when the store closes. A build that raises stores nothing."""
        with self._lock:
            if self._closed:
                raise RuntimeError("these resources are closed")
            if key in self._items:
                return self._items[key]  # type: ignore[no-any-return]
            gate = self._building.setdefault(key, threading.Lock())
        with gate:
            with self._lock:
                if key in self._items:
                    return self._items[key]  # type: ignore[no-any-return]
            item = build()
            with self._lock:
                self._items[key] = item
                self._building.pop(key, None)
                if close is not None:
                    self._closers.append((key, lambda: close(item)))
            return item

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def close(self) -> None:
        """Close everything stored, newest first; errors are logged, not raised."""
        with self._lock:
            closers, self._closers = self._closers, []
            self._items.clear()
            self._closed = True
        for key, closer in reversed(closers):
            try:
                closer()
            except Exception:  # closing a model must not stop the others closing
                log.exception("closing %r failed", key)

    def __enter__(self) -> Resources:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
