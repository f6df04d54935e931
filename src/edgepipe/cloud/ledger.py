"""The cloud's spend, per calendar month, in a SQLite file (never raises on record)."""

from __future__ import annotations

import logging
import sqlite3
from datetime import UTC, datetime

from edgepipe.core.sqlite import SqliteFile

log = logging.getLogger(__name__)

_LEDGER_SCHEMA = """
CREATE TABLE IF NOT EXISTS spend (ts TEXT NOT NULL, month TEXT NOT NULL, model TEXT NOT NULL,
    input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL, estimated INTEGER NOT NULL,
    cost REAL NOT NULL);
CREATE INDEX IF NOT EXISTS spend_month ON spend (month);
"""


class CostLedger(SqliteFile):
    """Spend per calendar month (UTC), in SQLite; thread-safe; never raises on record."""

    schema = _LEDGER_SCHEMA
    busy_timeout_s = 0.2

    @staticmethod
    def month(now: datetime | None = None) -> str:
        return (now or datetime.now(UTC)).strftime("%Y-%m")

    def spent(self, month: str | None = None) -> float:
        """Total cost recorded for the month (0 when the ledger cannot be read)."""
        with self._lock:
            try:
                row = (
                    self._db()
                    .execute(
                        "SELECT COALESCE(SUM(cost), 0) FROM spend WHERE month = ?",
                        (month or self.month(),),
                    )
                    .fetchone()
                )
                return float(row[0])
            except sqlite3.Error as exc:
                log.error(
                    "cost ledger unreadable (%s): treating this month's spend as unknown", exc
                )
                return float("inf")  # unknown spend: do not risk overspending

    def record(
        self, *, model: str, input_tokens: int, output_tokens: int, estimated: bool, cost: float
    ) -> bool:
        with self._lock:
            try:
                self._db().execute(
                    "INSERT INTO spend VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        datetime.now(UTC).isoformat(),
                        self.month(),
                        model,
                        input_tokens,
                        output_tokens,
                        int(estimated),
                        cost,
                    ),
                )
                return True
            except sqlite3.Error as exc:
                log.error("cost ledger: could not record %.6f: %s", cost, exc)
                return False
