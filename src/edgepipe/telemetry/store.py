"""Per-turn telemetry in a local SQLite file.

Every turn is recorded with its route, intent, outcome and trace. The guest's words are not
stored unless the pack opts in: by default a keyed hash (HMAC-SHA256 with a random key kept in
the database, so equal requests can be counted without a dictionary attack on short phrases)
and a redacted form are stored instead.

Recording never breaks a turn. A locked database (another writer holding it longer than the
busy timeout) keeps the row in a bounded in-memory queue that is retried on the next write; a
corrupt file is moved aside (``telemetry.db.corrupt-<time>``) and a fresh one started. Both are
logged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

from edgepipe.core.paths import default_db_path
from edgepipe.core.types import Outcome, TurnResult
from edgepipe.privacy.redact import redact

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS turns (
    turn_id TEXT PRIMARY KEY,
    ts TEXT NOT NULL,
    pack TEXT NOT NULL,
    pack_version TEXT NOT NULL,
    source TEXT NOT NULL,
    route TEXT NOT NULL,
    reason TEXT NOT NULL,
    intent TEXT,
    confidence REAL,
    slots_json TEXT NOT NULL,
    outcome TEXT NOT NULL,
    error_code TEXT,
    handler_executed INTEGER NOT NULL,
    text_hash TEXT NOT NULL,
    text_redacted TEXT NOT NULL,
    text_raw TEXT,
    response TEXT NOT NULL,
    total_ms REAL NOT NULL,
    trace_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS turns_ts ON turns (ts);
"""
_COLUMNS = (
    "turn_id", "ts", "pack", "pack_version", "source", "route", "reason", "intent", "confidence",
    "slots_json", "outcome", "error_code", "handler_executed", "text_hash", "text_redacted",
    "text_raw", "response", "total_ms", "trace_json",
)  # fmt: skip
_CORRUPT_MARKERS = ("file is not a database", "malformed", "corrupt")


@dataclass(frozen=True, slots=True)
class TurnRow:
    """One recorded turn, as read back."""

    turn_id: str
    ts: str
    pack: str
    route: str
    reason: str
    intent: str | None
    confidence: float | None
    slots: dict[str, Any]
    outcome: str
    error_code: str | None
    handler_executed: bool
    text_hash: str
    text_redacted: str
    text_raw: str | None
    response: str
    total_ms: float
    trace: list[dict[str, Any]]


class TelemetryStore:
    """Records turns; never raises from :meth:`record`."""

    def __init__(
        self,
        path: Path | str | None = None,
        *,
        store_raw_text: bool = False,
        busy_timeout_ms: int = 200,
        max_pending: int = 1000,
        redact_names: Iterable[str] = (),
    ) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        self.store_raw_text = store_raw_text
        self.busy_timeout_ms = busy_timeout_ms
        self._names = tuple(redact_names)
        self._pending: deque[tuple[TurnResult, str, str, tuple[str, ...]]] = deque(
            maxlen=max_pending
        )
        self._conn: sqlite3.Connection | None = None
        self._key: bytes | None = None
        self._lock = threading.Lock()
        self.last_error: str | None = None
        self.dropped = 0

    # ------------------------------------------------------------------ connection

    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None:
            return self._conn
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path, timeout=self.busy_timeout_ms / 1000, isolation_level=None,
            check_same_thread=False,
        )  # fmt: skip
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.executescript(_SCHEMA)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            elif version > SCHEMA_VERSION:
                raise sqlite3.DatabaseError(
                    f"telemetry schema version {version} is newer than this edgepipe understands"
                )
            conn.execute("PRAGMA synchronous = NORMAL")
            row = conn.execute("SELECT value FROM meta WHERE key = 'text_hash_key'").fetchone()
            if row is None:
                conn.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('text_hash_key', ?)",
                    (secrets.token_hex(32),),
                )
                row = conn.execute("SELECT value FROM meta WHERE key = 'text_hash_key'").fetchone()
            self._key = bytes.fromhex(row[0])
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    def close(self) -> None:
        """Flush what is pending (best effort) and close the file."""
        with self._lock:
            if self._pending:
                self._flush_locked()
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> TelemetryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ writing

    def _row(
        self, result: TurnResult, pack: str, pack_version: str, names: tuple[str, ...]
    ) -> tuple[Any, ...]:
        assert self._key is not None
        guests = (*self._names, *names)
        text = result.request.text
        errors = [s.error_code for s in result.trace.spans if s.error_code]
        failed = any(s.outcome is Outcome.ERROR for s in result.trace.spans)
        return (
            result.request.turn_id,
            result.request.received_at.astimezone(UTC).isoformat(timespec="milliseconds"),
            pack,
            pack_version,
            result.request.source.value,
            str(result.decision.route),
            result.decision.reason,
            result.intent.name if result.intent else None,
            result.intent.confidence if result.intent else None,
            json.dumps(result.intent.slot_values() if result.intent else {}, sort_keys=True),
            Outcome.ERROR.value if failed else Outcome.OK.value,
            errors[0] if errors else None,
            int(result.handler_executed),
            hmac.new(self._key, text.encode("utf-8"), hashlib.sha256).hexdigest(),
            redact(text, names=guests).text,
            text if self.store_raw_text else None,
            redact(result.reply.text, names=guests).text,
            result.total_ms,
            json.dumps(result.trace.as_list()),
        )

    def record(
        self,
        result: TurnResult,
        *,
        pack: str,
        pack_version: str = "",
        names: Iterable[str] = (),
    ) -> bool:
        """Record a turn (``names``: the guest names to redact besides the store's own, for the
        room the turn was in). Returns False (and logs) when it could not be written now; the
        turn then waits in the bounded queue for the next write."""
        with self._lock:
            if len(self._pending) == self._pending.maxlen:
                self.dropped += 1
            self._pending.append((result, pack, pack_version, tuple(names)))
            return self._flush_locked()

    def record_many(self, items: Iterable[tuple[TurnResult, str, str, Iterable[str]]]) -> bool:
        """Record several ``(result, pack, pack_version, names)`` turns in one transaction (what
        a writer thread catching up after a burst does); the same queueing as :meth:`record`."""
        with self._lock:
            for result, pack, pack_version, names in items:
                if len(self._pending) == self._pending.maxlen:
                    self.dropped += 1
                self._pending.append((result, pack, pack_version, tuple(names)))
            return self._flush_locked()

    def _flush_locked(self) -> bool:
        placeholders = ", ".join("?" for _ in _COLUMNS)
        sql = f"INSERT OR IGNORE INTO turns ({', '.join(_COLUMNS)}) VALUES ({placeholders})"  # noqa: S608
        for attempt in range(2):
            try:
                conn = self._connect()
                rows = [self._row(*item) for item in self._pending]
                with conn:
                    conn.execute("BEGIN IMMEDIATE")
                    conn.executemany(sql, rows)
                self._pending.clear()
                self.last_error = None
                return True
            except (sqlite3.Error, OSError) as exc:
                quarantined = self._handle_error(exc)
                if not quarantined or attempt == 1:
                    return False
        return False

    def _handle_error(self, exc: sqlite3.Error | OSError) -> bool:
        """Log a storage error; move a corrupt file aside. True when a fresh file is in place."""
        message = str(exc)
        self.last_error = message
        if "locked" in message or "busy" in message:
            log.warning(
                "telemetry: database busy, %d turn(s) queued: %s", len(self._pending), message
            )
            return False
        if isinstance(exc, OSError):
            log.error("telemetry: cannot open %s: %s", self.path, message)
            return False
        if any(marker in message.lower() for marker in _CORRUPT_MARKERS) or "newer" in message:
            self._quarantine(message)
            return True
        log.error("telemetry: could not record turn: %s", message)
        return False

    def _quarantine(self, reason: str) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        stamp = time.strftime("%Y%m%dT%H%M%S")
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        try:
            self.path.rename(target)
            for suffix in ("-wal", "-shm"):
                side = self.path.with_name(self.path.name + suffix)
                if side.exists():
                    side.rename(target.with_name(target.name + suffix))
            log.error("telemetry: %s is unusable (%s); moved to %s", self.path, reason, target)
        except OSError as exc:
            log.error(
                "telemetry: %s is unusable (%s) and could not be moved: %s", self.path, reason, exc
            )

    @property
    def pending(self) -> int:
        """Turns waiting to be written."""
        return len(self._pending)

    # ------------------------------------------------------------------ reading

    def recent(self, n: int = 10) -> list[TurnRow]:
        """The last ``n`` recorded turns, newest first."""
        with self._lock:
            conn = self._connect()
            cur = conn.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM turns ORDER BY ts DESC, rowid DESC LIMIT ?",  # noqa: S608
                (max(0, n),),
            )
            return [self._to_row(r) for r in cur.fetchall()]

    def count(self) -> int:
        """Number of recorded turns."""
        with self._lock:
            return int(self._connect().execute("SELECT COUNT(*) FROM turns").fetchone()[0])

    @staticmethod
    def _to_row(r: Sequence[Any]) -> TurnRow:
        d = dict(zip(_COLUMNS, r, strict=True))
        return TurnRow(
            turn_id=d["turn_id"],
            ts=d["ts"],
            pack=d["pack"],
            route=d["route"],
            reason=d["reason"],
            intent=d["intent"],
            confidence=d["confidence"],
            slots=json.loads(d["slots_json"]),
            outcome=d["outcome"],
            error_code=d["error_code"],
            handler_executed=bool(d["handler_executed"]),
            text_hash=d["text_hash"],
            text_redacted=d["text_redacted"],
            text_raw=d["text_raw"],
            response=d["response"],
            total_ms=d["total_ms"],
            trace=json.loads(d["trace_json"]),
        )
