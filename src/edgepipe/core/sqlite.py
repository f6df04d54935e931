"""A small SQLite file shared by threads: opened on first use, in WAL mode, with its schema.

The outbox, the egress audit log and the cloud cost ledger each keep one such file under
``$EDGEPIPE_HOME``. (The telemetry store has its own connection handling: it quarantines
corrupt files and queues rows across processes.)
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import ClassVar


class SqliteFile:
    """One lazily opened connection (autocommit, WAL) guarded by ``self._lock``.

    Subclasses set :attr:`schema` (an idempotent script) and :attr:`busy_timeout_s`, and call
    :meth:`_db` while holding ``self._lock``.
    """

    schema: ClassVar[str] = ""
    busy_timeout_s: ClassVar[float] = 0.5

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path,
                timeout=self.busy_timeout_s,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute("PRAGMA journal_mode = WAL")
            conn.executescript(self.schema)
            self._conn = conn
        return self._conn

    def _drop(self) -> None:
        """Close the connection (the caller holds the lock); the next use reopens it."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        with self._lock:
            self._drop()
