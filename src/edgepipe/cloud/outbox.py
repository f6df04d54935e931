"""A durable queue of deferred requests (SQLite), delivered when the link is back.

A ``deferrable`` intent that needs the network while the assistant is offline is stored here
(only what the privacy gate allowed to leave, never more) and the guest is told it will be
passed on. When connectivity returns, :meth:`Outbox.deliver` sends each pending item once,
oldest first, and records the outcome; items survive restarts.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edgepipe.core.sqlite import SqliteFile

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created TEXT NOT NULL,
    intent TEXT NOT NULL,
    text TEXT NOT NULL,
    slots_json TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    delivered TEXT,
    result TEXT
);
CREATE INDEX IF NOT EXISTS outbox_status ON outbox (status, id);
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class Deferred:
    """One queued request."""

    id: int
    created: str
    intent: str
    text: str
    """The request as the privacy gate let it leave (redacted)."""
    slots: dict[str, Any]
    status: str
    attempts: int
    result: str | None


class Outbox(SqliteFile):
    """Deferred requests in a SQLite file; thread-safe."""

    schema = _SCHEMA

    def __init__(self, path: Path, *, max_attempts: int = 5) -> None:
        super().__init__(path)
        self.max_attempts = max_attempts

    def enqueue(self, *, intent: str, text: str, slots: dict[str, Any]) -> int:
        """Store a request; returns its id. Raises ``sqlite3.Error`` if it could not be stored."""
        with self._lock:
            cur = self._db().execute(
                "INSERT INTO outbox (created, intent, text, slots_json) VALUES (?, ?, ?, ?)",
                (datetime.now(UTC).isoformat(), intent, text, json.dumps(slots, sort_keys=True)),
            )
            return int(cur.lastrowid or 0)

    def items(self, status: str | None = "pending") -> list[Deferred]:
        with self._lock:
            sql = (
                "SELECT id, created, intent, text, slots_json, status, attempts, result FROM outbox"
            )
            args: tuple[Any, ...] = ()
            if status is not None:
                sql += " WHERE status = ?"
                args = (status,)
            rows = self._db().execute(sql + " ORDER BY id", args).fetchall()
        return [
            Deferred(
                id=r[0],
                created=r[1],
                intent=r[2],
                text=r[3],
                slots=json.loads(r[4]),
                status=r[5],
                attempts=r[6],
                result=r[7],
            )
            for r in rows
        ]

    def deliver(self, send: Callable[[Deferred], str]) -> tuple[int, int]:
        """Try every pending item once with ``send`` (returns a result text or raises).

        Stops at the first failure (the link is probably down again). Returns (delivered,
        failed) counts. An item failing ``max_attempts`` times is marked ``failed``.
        """
        delivered = failed = 0
        for item in self.items("pending"):
            try:
                result = send(item)
            except Exception as exc:  # the sender may raise anything (network, timeouts)
                failed += 1
                with self._lock:
                    self._db().execute(
                        "UPDATE outbox SET attempts = attempts + 1, "
                        "status = CASE WHEN attempts + 1 >= ? THEN 'failed' ELSE status END, "
                        "result = ? WHERE id = ?",
                        (self.max_attempts, f"{type(exc).__name__}: {exc}"[:300], item.id),
                    )
                log.warning("outbox: could not deliver #%d (%s)", item.id, exc)
                break
            delivered += 1
            with self._lock:
                self._db().execute(
                    "UPDATE outbox SET status = 'delivered', attempts = attempts + 1, "
                    "delivered = ?, result = ? WHERE id = ?",
                    (datetime.now(UTC).isoformat(), result[:2000], item.id),
                )
        return delivered, failed
