"""Telemetry off the critical path: turns are queued, and one thread writes them.

Redacting a turn and writing its SQLite row takes milliseconds, sometimes far more (a busy
file, a slow disk); none of that belongs between the guest's words and the reply. A turn hands
its result to :meth:`TelemetryWriter.submit` (a bounded queue; when it is full the newest turn
is not recorded, and :attr:`TelemetryWriter.dropped` says how many were not) and goes on; the
writer thread records them in order. :meth:`TelemetryWriter.close` records everything still
queued before it returns: a clean shutdown loses nothing.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from edgepipe.core.types import TurnResult
from edgepipe.telemetry.store import TelemetryStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Item:
    result: TurnResult
    pack: str
    pack_version: str
    names: tuple[str, ...]


_STOP = object()


class TelemetryWriter:
    """Records turns in ``store`` from a thread of its own."""

    def __init__(self, store: TelemetryStore, *, max_queue: int = 1000) -> None:
        self.store = store
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max_queue)
        self._lock = threading.Lock()
        self.dropped = 0
        """Turns not recorded because the queue was full."""
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="edgepipe-telemetry", daemon=True)
        self._thread.start()

    def submit(
        self, result: TurnResult, *, pack: str, pack_version: str, names: Iterable[str] = ()
    ) -> bool:
        """Queue a turn for recording; False when it was dropped (queue full, or closed)."""
        with self._lock:
            if self._closed:
                self.dropped += 1
                return False
            try:
                self._queue.put_nowait(_Item(result, pack, pack_version, tuple(names)))
            except queue.Full:
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 100 == 0:
                    log.warning("telemetry queue full: %d turn(s) not recorded", self.dropped)
                return False
            return True

    def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until every queued turn is recorded; False on timeout."""
        done = threading.Event()
        with self._lock:
            if self._closed:
                return True
            self._queue.put(done)
        return done.wait(timeout_s)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if isinstance(item, threading.Event):
                item.set()
                continue
            assert isinstance(item, _Item)
            try:
                self.store.record(
                    item.result, pack=item.pack, pack_version=item.pack_version, names=item.names
                )
            except Exception:  # recording must never stop the writer
                log.exception("telemetry: recording a turn failed")

    def close(self) -> None:
        """Record everything queued, stop the thread, close the store."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
        self._thread.join()
        self.store.close()
