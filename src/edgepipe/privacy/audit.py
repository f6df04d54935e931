"""An append-only local record of every egress decision (SQLite).

One row per request that was considered for leaving the device: when, which tier and intent,
the data class, what was redacted (kinds and counts, never the values), the bytes sent, the
destination host and the outcome (``sent``, ``blocked``, ``skipped:offline``, ``failed:<code>``,
``deferred``...). The text that actually left (already redacted) is kept so that an auditor can
see exactly what was sent; nothing that was held back is stored.

The table refuses ``UPDATE`` and ``DELETE`` (SQLite triggers): rows can only be added. Writing
never breaks a turn: a locked file keeps the row in a bounded in-memory queue that is flushed
on the next write; every failure is logged.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections import Counter, deque
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edgepipe.core.sqlite import SqliteFile

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS egress (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts TEXT NOT NULL,
    turn_id TEXT,
    tier TEXT NOT NULL,
    intent TEXT,
    data_class TEXT NOT NULL,
    outcome TEXT NOT NULL,
    redacted_json TEXT NOT NULL,
    bytes_sent INTEGER NOT NULL,
    destination TEXT NOT NULL,
    sent_text TEXT
);
CREATE TRIGGER IF NOT EXISTS egress_no_update BEFORE UPDATE ON egress
BEGIN SELECT RAISE(ABORT, 'the egress audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS egress_no_delete BEFORE DELETE ON egress
BEGIN SELECT RAISE(ABORT, 'the egress audit log is append-only'); END;
"""
_COLUMNS = (
    "ts",
    "turn_id",
    "tier",
    "intent",
    "data_class",
    "outcome",
    "redacted_json",
    "bytes_sent",
    "destination",
    "sent_text",
)
_MAX_PENDING = 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    """One row of the audit log."""

    id: int
    ts: str
    turn_id: str | None
    tier: str
    intent: str | None
    data_class: str
    outcome: str
    redacted: dict[str, int]
    """Kind -> how many were replaced."""
    bytes_sent: int
    destination: str
    sent_text: str | None


class AuditLog(SqliteFile):
    """The egress audit log in one SQLite file; thread-safe."""

    schema = _SCHEMA

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._pending: deque[tuple[Any, ...]] = deque(maxlen=_MAX_PENDING)

    def record(
        self,
        *,
        tier: str,
        intent: str | None,
        data_class: str,
        outcome: str,
        redacted: tuple[str, ...] | list[str],
        bytes_sent: int,
        destination: str,
        sent_text: str | None = None,
        turn_id: str | None = None,
        write_ahead: bool = False,
    ) -> bool:
        """Append one row. Returns False when it could not be written now: the row is then kept
        in a bounded queue for the next write, unless ``write_ahead`` (a row that must be on
        disk before the request it describes leaves: the caller sends nothing when it is not,
        and a row for a request that never left must not turn up later)."""
        row = (
            datetime.now(UTC).isoformat(timespec="milliseconds"),
            turn_id,
            tier,
            intent,
            data_class,
            outcome,
            json.dumps(dict(sorted(Counter(redacted).items()))),
            int(bytes_sent),
            destination,
            sent_text,
        )
        with self._lock:
            if write_ahead:
                if not self._flush():
                    return False
                self._pending.append(row)
                if self._flush():
                    return True
                self._pending.pop()
                return False
            if len(self._pending) == self._pending.maxlen:
                log.error("audit queue full: the oldest unwritten egress record is dropped")
            self._pending.append(row)
            return self._flush()

    def close(self) -> None:
        """Write what is queued (best effort) and close the file."""
        with self._lock:
            if self._pending:
                self._flush()
            self._drop()

    def _flush(self) -> bool:
        try:
            db = self._db()
            placeholders = ", ".join("?" for _ in _COLUMNS)
            while self._pending:
                db.execute(
                    f"INSERT INTO egress ({', '.join(_COLUMNS)}) VALUES ({placeholders})",  # noqa: S608
                    self._pending[0],
                )
                self._pending.popleft()
            return True
        except (sqlite3.Error, OSError) as exc:
            log.error(
                "audit log %s not written (%d queued): %s", self.path, len(self._pending), exc
            )
            self._drop()
            return False

    @property
    def pending(self) -> int:
        """Rows waiting to be written."""
        return len(self._pending)

    def entries(self, last: int | None = None) -> list[AuditEntry]:
        """Rows in the order written (the last ``last`` only, when given)."""
        with self._lock:
            db = self._db()
            sql = f"SELECT id, {', '.join(_COLUMNS)} FROM egress ORDER BY id"  # noqa: S608
            rows = db.execute(sql).fetchall()
        if last is not None:
            rows = rows[-last:] if last > 0 else []
        return [
            AuditEntry(
                id=r[0],
                ts=r[1],
                turn_id=r[2],
                tier=r[3],
                intent=r[4],
                data_class=r[5],
                outcome=r[6],
                redacted=json.loads(r[7]),
                bytes_sent=r[8],
                destination=r[9],
                sent_text=r[10],
            )
            for r in rows
        ]

    def count(self) -> int:
        with self._lock:
            return int(self._db().execute("SELECT COUNT(*) FROM egress").fetchone()[0])
