"""Telemetry off the critical path: turns are queued, and one thread writes them.

Redacting a turn and writing its SQLite row takes milliseconds, sometimes far more (a busy
file, a slow disk); none of that belongs between the guest's words and the reply. A turn hands
its result to :meth:`TelemetryWriter.submit` (a bounded queue; when it is full the turn waits a
few milliseconds for room, which hands the writer the CPU when many rooms' turns keep every
core busy, and is then not recorded: :attr:`TelemetryWriter.dropped` says how many were not) and
goes on; the
writer thread records them in order, everything queued since its last write in one
transaction, so a burst of turns from many rooms costs one commit, not one per turn.
:meth:`TelemetryWriter.close` records everything still queued before it returns: a clean
shutdown loses nothing.
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
_BATCH = 200
"""At most this many turns in one transaction."""


class TelemetryWriter:
    """Records turns in ``store`` from a thread of its own."""

    def __init__(
        self, store: TelemetryStore, *, max_queue: int = 1000, full_wait_s: float = 0.05
    ) -> None:
        self.store = store
        self.full_wait_s = full_wait_s
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
        """Queue a turn for recording; False when it was dropped (the queue stayed full for
        ``full_wait_s``, or the writer is closed)."""
        item = _Item(result, pack, pack_version, tuple(names))
        with self._lock:
            if self._closed:
                self.dropped += 1
                return False
        try:
            self._queue.put(item, timeout=self.full_wait_s)
        except queue.Full:
            with self._lock:
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
            batch: list[_Item] = []
            waiting: list[threading.Event] = []
            stop = False
            item = self._queue.get()
            while True:  # drain what is queued: one transaction per burst, not per turn
                if item is _STOP:
                    stop = True
                elif isinstance(item, threading.Event):
                    waiting.append(item)
                else:
                    assert isinstance(item, _Item)
                    batch.append(item)
                if stop or len(batch) >= _BATCH:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                try:
                    self.store.record_many(
                        (i.result, i.pack, i.pack_version, i.names) for i in batch
                    )
                except Exception:  # recording must never stop the writer
                    log.exception("telemetry: recording %d turn(s) failed", len(batch))
            for event in waiting:
                event.set()
            if stop:
                return

    def close(self) -> None:
        """Record everything queued, stop the thread, close the store."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
        self._thread.join()
        late: list[_Item] = []  # submitted while closing, behind the stop mark
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, _Item):
                late.append(item)
            elif isinstance(item, threading.Event):
                item.set()
        if late:
            self.store.record_many((i.result, i.pack, i.pack_version, i.names) for i in late)
        self.store.close()
