"""Behaviour of the SQLite telemetry store, driven by real turns of the hotel reference pack."""

from __future__ import annotations

import hashlib
import hmac
import multiprocessing
import re
import sqlite3
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from edgepipe.core.paths import default_db_path
from edgepipe.core.resources import Resources
from edgepipe.core.types import TurnResult
from edgepipe.engine.engine import Engine, load_engine_pack
from edgepipe.pack.loader import Pack
from edgepipe.telemetry.store import TelemetryStore

ROOT = Path(__file__).resolve().parents[2]
PACK_DIR = ROOT / "packs" / "hotel"

# 09:30 in Lisbon in July is 08:30 UTC (WEST, UTC+1).
FIXED_LOCAL = (2025, 7, 14, 9, 30)
FIXED_UTC_ISO = "2025-07-14T08:30:00.000+00:00"

THERMOSTAT = "set the temperature to 22 degrees"
DIM = "dim the lights to 30 percent"
LIGHTS_OFF = "turn off the lights"
OFF_TOPIC = "plan a three day trip to Lisbon for me"
PERSONAL = "my email is jane.doe@example.com and my room is 412, call +351 21 555 0140"

WORKERS = 4
TURNS_PER_WORKER = 50
WORKER_TEXTS = (THERMOSTAT, DIM, LIGHTS_OFF, OFF_TOPIC)

HEX64 = re.compile(r"[0-9a-f]{64}")

NO_MODELS = {"local_model": None, "cloud": None}
"""These tests are about recording: the model tiers are off (an out-of-scope turn gets the
honest fallback without trying any endpoint)."""


def _fixed_clock(pack: Pack) -> Callable[[], datetime]:
    moment = datetime(*FIXED_LOCAL, tzinfo=pack.timezone)
    return lambda: moment


def _record_turns_worker(db_path: str, worker: int, barrier: Any, results: Any) -> None:
    """Spawned process: run real turns against its own store on the shared file."""
    try:
        pack = load_engine_pack(PACK_DIR)
        store = TelemetryStore(db_path)
        # no learned router: this is about writers, and four processes loading the sentence
        # encoder at once on a two-core machine would only make the test slow
        engine = Engine(
            pack, telemetry=store, clock=_fixed_clock(pack), tiers=NO_MODELS, router=None
        )
        session = engine.session()
        barrier.wait(timeout=60)
        answered = 0
        for i in range(TURNS_PER_WORKER):
            result = session.handle_text(WORKER_TEXTS[(worker + i) % len(WORKER_TEXTS)])
            answered += bool(result.reply.text)
        engine.close()  # writes what is queued and closes the store
    except BaseException as exc:
        barrier.abort()
        results.put((worker, repr(exc), None, None, None))
        raise
    results.put((worker, answered, store.pending, store.dropped, store.last_error))


# ---------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def pack() -> Pack:
    return load_engine_pack(PACK_DIR)


class Recorded:
    """A session whose turns are recorded by the time ``handle_text`` returns (the engine's
    writer thread records them; the test waits for it, as a reader of the store would)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.session = engine.session()

    def handle_text(self, text: str) -> TurnResult:
        result = self.session.handle_text(text)
        assert self.engine.flush_telemetry(10)
        return result


@pytest.fixture
def assistant_for(
    pack: Pack, resources: Resources
) -> Iterator[Callable[[TelemetryStore | None], Recorded]]:
    engines: list[Engine] = []

    def make(store: TelemetryStore | None) -> Recorded:
        engine = Engine(
            pack, telemetry=store, clock=_fixed_clock(pack), tiers=NO_MODELS, resources=resources
        )
        engines.append(engine)
        return Recorded(engine)

    yield make
    for engine in engines:
        engine.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "telemetry.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[TelemetryStore]:
    with TelemetryStore(db_path) as s:
        yield s


def _exclusive_lock(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    return conn


def _stored_key(path: Path) -> bytes:
    with sqlite3.connect(path) as conn:
        (value,) = conn.execute("SELECT value FROM meta WHERE key = 'text_hash_key'").fetchone()
    conn.close()
    return bytes.fromhex(value)


def _corrupt_copies(directory: Path) -> list[Path]:
    return sorted(
        p for p in directory.glob("telemetry.db.corrupt-*") if not p.name.endswith(("-wal", "-shm"))
    )


# ---------------------------------------------------------------------------------- recording


def test_turn_is_recorded_with_route_intent_slots_and_trace(store, assistant_for):
    result = assistant_for(store).handle_text(THERMOSTAT)

    assert store.count() == 1
    [row] = store.recent()
    assert row.turn_id == result.request.turn_id
    assert row.pack == "hotel"
    assert row.route == "rules"
    assert row.reason == result.decision.reason
    assert row.intent == "thermostat_set"
    assert row.confidence == result.intent.confidence
    assert row.slots == {"degrees": 22}
    assert row.outcome == "ok"
    assert row.error_code is None
    assert row.handler_executed is True
    assert row.response == result.reply.text
    assert row.total_ms == result.total_ms
    assert row.ts == FIXED_UTC_ISO
    assert row.trace == result.trace.as_list()
    assert [span["stage"] for span in row.trace][:3] == ["input", "templates", "route"]
    for span in row.trace:
        assert isinstance(span["stage"], str)
        assert isinstance(span["ms"], float)
        assert span["ms"] >= 0
        assert span["outcome"] in {"ok", "match", "no_match", "skipped", "violation", "invalid"}
    assert {span["stage"]: span["outcome"] for span in row.trace}["templates"] == "match"


def test_unmatched_turn_is_recorded_as_fallback_without_intent(store, assistant_for):
    result = assistant_for(store).handle_text(OFF_TOPIC)

    [row] = store.recent()
    assert result.decision.route.value == "fallback"
    assert row.route == "fallback"
    assert row.reason == result.decision.reason
    assert row.reason.startswith("oos:")  # the learned router abstained
    assert row.intent is None
    assert row.confidence is None
    assert row.slots == {}
    assert row.handler_executed is False
    assert {span["stage"]: span["outcome"] for span in row.trace}["templates"] == "no_match"


def test_recent_is_newest_first_and_count_counts_every_turn(store, assistant_for):
    assistant = assistant_for(store)
    assert store.count() == 0
    assert store.recent() == []

    ids = [assistant.handle_text(text).request.turn_id for text in (THERMOSTAT, DIM, LIGHTS_OFF)]

    assert store.count() == 3
    assert [row.turn_id for row in store.recent()] == ids[::-1]
    assert [row.turn_id for row in store.recent(2)] == [ids[2], ids[1]]
    assert [row.intent for row in store.recent()] == ["lights_off", "lights_dim", "thermostat_set"]
    assert store.recent(0) == []


def test_record_returns_true_and_leaves_nothing_pending(store, assistant_for):
    result = assistant_for(None).handle_text(DIM)

    assert store.record(result, pack="hotel", pack_version="1.0.0") is True
    assert store.pending == 0
    assert store.last_error is None
    assert store.count() == 1


def test_recording_the_same_turn_twice_keeps_one_row(store, assistant_for):
    result = assistant_for(None).handle_text(DIM)

    assert store.record(result, pack="hotel") is True
    assert store.record(result, pack="hotel") is True
    assert store.count() == 1


# ---------------------------------------------------------------------------------- privacy


def test_raw_text_is_not_stored_by_default(store, assistant_for):
    assistant_for(store).handle_text(PERSONAL)

    [row] = store.recent()
    assert row.text_raw is None
    assert "jane.doe@example.com" not in row.text_redacted
    assert "555 0140" not in row.text_redacted


def test_text_hash_is_a_keyed_hmac_equal_for_equal_texts(store, db_path, assistant_for):
    assistant = assistant_for(store)
    for text in (THERMOSTAT, DIM, THERMOSTAT):
        assistant.handle_text(text)

    third, second, first = store.recent()
    for row in (first, second, third):
        assert HEX64.fullmatch(row.text_hash)
    assert first.text_hash == third.text_hash
    assert first.text_hash != second.text_hash

    key = _stored_key(db_path)
    assert len(key) == 32
    expected = hmac.new(key, THERMOSTAT.encode("utf-8"), hashlib.sha256).hexdigest()
    assert first.text_hash == expected
    assert first.text_hash != hashlib.sha256(THERMOSTAT.encode("utf-8")).hexdigest()


def test_text_hash_key_is_random_per_database(tmp_path, assistant_for):
    result = assistant_for(None).handle_text(THERMOSTAT)
    hashes = []
    for name in ("a", "b"):
        with TelemetryStore(tmp_path / name / "telemetry.db") as s:
            assert s.record(result, pack="hotel") is True
            hashes.append(s.recent()[0].text_hash)

    assert HEX64.fullmatch(hashes[0])
    assert HEX64.fullmatch(hashes[1])
    assert hashes[0] != hashes[1]
    assert _stored_key(tmp_path / "a" / "telemetry.db") != _stored_key(
        tmp_path / "b" / "telemetry.db"
    )


def test_text_hash_key_persists_across_reopening(db_path, assistant_for):
    result = assistant_for(None).handle_text(THERMOSTAT)
    again = assistant_for(None).handle_text(THERMOSTAT)
    with TelemetryStore(db_path) as s:
        s.record(result, pack="hotel")
    with TelemetryStore(db_path) as s:
        s.record(again, pack="hotel")
        first, second = s.recent()
    assert first.text_hash == second.text_hash


def test_text_redacted_replaces_email_and_phone(store, assistant_for):
    assistant_for(store).handle_text(PERSONAL)

    [row] = store.recent()
    assert row.text_redacted.startswith("my email is <EMAIL> and my room is")
    assert row.text_redacted.endswith("call <PHONE>")
    assert "jane.doe" not in row.text_redacted
    assert "example.com" not in row.text_redacted
    assert "0140" not in row.text_redacted


def test_text_redacted_replaces_room_number(store, assistant_for):
    assistant_for(store).handle_text(PERSONAL)

    [row] = store.recent()
    assert "412" not in row.text_redacted, row.text_redacted


def test_text_redacted_replaces_room_number_in_room_phrase(store, assistant_for):
    assistant_for(store).handle_text("please send someone to room 412")

    [row] = store.recent()
    assert row.text_redacted == "please send someone to room <ROOM>"


def test_text_redacted_replaces_guest_names(db_path, assistant_for):
    with TelemetryStore(db_path, redact_names=["Jane Doe", "Okafor"]) as s:
        assistant_for(s).handle_text("this is Jane Doe, please tell mr okafor I called")
        [row] = s.recent()

    assert row.text_redacted == "this is <NAME>, please tell mr <NAME> I called"
    assert row.text_raw is None


def test_raw_text_is_stored_when_opted_in(db_path, assistant_for):
    with TelemetryStore(db_path, store_raw_text=True) as s:
        result = assistant_for(s).handle_text(f"  {PERSONAL}  ")
        [row] = s.recent()

    assert row.text_raw == PERSONAL
    assert row.text_raw == result.request.text
    assert "<EMAIL>" in row.text_redacted


# ---------------------------------------------------------------------------------- concurrency


def test_concurrent_writers_in_separate_processes_lose_no_turns(db_path):
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(WORKERS)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_record_turns_worker, args=(str(db_path), w, barrier, results))
        for w in range(WORKERS)
    ]
    for p in procs:
        p.start()
    reports = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)

    assert [p.exitcode for p in procs] == [0] * WORKERS
    assert sorted(r[0] for r in reports) == list(range(WORKERS))
    for worker, answered, pending, dropped, _last_error in reports:
        assert answered == TURNS_PER_WORKER, f"worker {worker}: {answered}"
        assert pending == 0
        assert dropped == 0
    with TelemetryStore(db_path) as s:
        assert s.count() == WORKERS * TURNS_PER_WORKER
        rows = s.recent(WORKERS * TURNS_PER_WORKER)
    assert len({row.turn_id for row in rows}) == WORKERS * TURNS_PER_WORKER
    # all four stores share one hash key: equal texts hash equally across processes
    by_text: dict[str, set[str]] = {}
    for row in rows:
        by_text.setdefault(row.text_redacted, set()).add(row.text_hash)
    assert len(by_text) == len(WORKER_TEXTS)
    assert all(len(hashes) == 1 for hashes in by_text.values())


# ---------------------------------------------------------------------------------- locked database


def test_locked_database_does_not_break_the_turn_and_queues_the_row(db_path, assistant_for):
    store = TelemetryStore(db_path, busy_timeout_ms=50)
    assistant = assistant_for(store)
    assert store.count() == 0  # file and schema exist before the lock is taken

    locker = _exclusive_lock(db_path)
    try:
        first = assistant.handle_text(DIM)
        assert first.reply.text == "The lights are dimmed to 30 %."
        assert first.intent is not None
        assert first.intent.name == "lights_dim"
        assert store.pending == 1
        assert store.last_error is not None
        assert "locked" in store.last_error
    finally:
        locker.execute("ROLLBACK")
        locker.close()

    second = assistant.handle_text(LIGHTS_OFF)

    assert store.pending == 0
    assert store.last_error is None
    assert store.count() == 2
    assert [row.turn_id for row in store.recent()] == [
        second.request.turn_id,
        first.request.turn_id,
    ]
    store.close()


def test_record_returns_false_while_locked_and_flushes_on_next_write(db_path, assistant_for):
    maker = assistant_for(None)
    first, second = maker.handle_text(THERMOSTAT), maker.handle_text(DIM)
    store = TelemetryStore(db_path, busy_timeout_ms=50)
    assert store.count() == 0

    locker = _exclusive_lock(db_path)
    try:
        assert store.record(first, pack="hotel") is False
        assert store.pending == 1
        assert "locked" in (store.last_error or "")
        assert store.count() == 0
    finally:
        locker.execute("ROLLBACK")
        locker.close()

    assert store.record(second, pack="hotel") is True
    assert store.pending == 0
    assert store.count() == 2
    assert {row.turn_id for row in store.recent()} == {
        first.request.turn_id,
        second.request.turn_id,
    }
    store.close()


def test_pending_rows_are_flushed_on_close(db_path, assistant_for):
    result = assistant_for(None).handle_text(DIM)
    store = TelemetryStore(db_path, busy_timeout_ms=50)
    assert store.count() == 0

    locker = _exclusive_lock(db_path)
    try:
        assert store.record(result, pack="hotel") is False
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    store.close()

    with TelemetryStore(db_path) as reopened:
        assert [row.turn_id for row in reopened.recent()] == [result.request.turn_id]


def test_pending_queue_is_bounded_and_counts_dropped_turns(db_path, assistant_for):
    maker = assistant_for(None)
    results = [maker.handle_text(text) for text in (THERMOSTAT, DIM, LIGHTS_OFF, OFF_TOPIC)]
    store = TelemetryStore(db_path, busy_timeout_ms=50, max_pending=2)
    assert store.count() == 0

    locker = _exclusive_lock(db_path)
    try:
        for result in results[:3]:
            assert store.record(result, pack="hotel") is False
        assert store.pending == 2
        assert store.dropped == 1
    finally:
        locker.execute("ROLLBACK")
        locker.close()

    assert store.record(results[3], pack="hotel") is True
    assert store.pending == 0
    # the oldest queued turns made way for newer ones
    assert {row.turn_id for row in store.recent()} == {
        results[2].request.turn_id,
        results[3].request.turn_id,
    }
    store.close()


def test_lock_held_before_first_connection_still_queues_the_turn(db_path, assistant_for):
    """The module promises a locked database keeps the row queued; that includes a store whose
    first connection meets the lock."""
    store = TelemetryStore(db_path, busy_timeout_ms=50)
    assistant = assistant_for(store)

    locker = _exclusive_lock(db_path)
    try:
        first = assistant.handle_text(DIM)
        assert first.reply.text
        assert "locked" in (store.last_error or "")
        assert store.pending == 1
    finally:
        locker.execute("ROLLBACK")
        locker.close()

    assistant.handle_text(LIGHTS_OFF)
    assert store.count() == 2
    store.close()


# ---------------------------------------------------------------------------------- corruption

GARBAGE = b"not a database" * 100


def test_corrupt_file_is_moved_aside_and_a_fresh_database_started(db_path, assistant_for):
    db_path.write_bytes(GARBAGE)
    store = TelemetryStore(db_path)

    result = assistant_for(store).handle_text(DIM)

    assert result.reply.text
    assert store.pending == 0
    [moved] = _corrupt_copies(db_path.parent)
    assert re.fullmatch(r"telemetry\.db\.corrupt-\d{8}T\d{6}", moved.name)
    assert moved.read_bytes() == GARBAGE
    assert store.count() == 1
    assert store.recent()[0].turn_id == result.request.turn_id
    store.close()
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT turn_id FROM turns").fetchall() == [(result.request.turn_id,)]
    conn.close()


def test_direct_record_into_corrupt_file_returns_true(db_path, assistant_for):
    db_path.write_bytes(GARBAGE)
    result = assistant_for(None).handle_text(THERMOSTAT)

    with TelemetryStore(db_path) as store:
        assert store.record(result, pack="hotel") is True
        assert store.count() == 1
    assert len(_corrupt_copies(db_path.parent)) == 1


def test_file_corrupted_after_use_is_moved_aside_on_next_open(db_path, assistant_for):
    with TelemetryStore(db_path) as store:
        old = assistant_for(store).handle_text(THERMOSTAT)
        assert store.count() == 1
    assert old.request.turn_id
    db_path.write_bytes(GARBAGE)

    with TelemetryStore(db_path) as store:
        new = assistant_for(store).handle_text(DIM)
        assert new.reply.text
        assert store.count() == 1
        assert [row.turn_id for row in store.recent()] == [new.request.turn_id]

    [moved] = _corrupt_copies(db_path.parent)
    assert moved.read_bytes() == GARBAGE


# ---------------------------------------------------------------------------------- unwritable


@pytest.fixture
def unwritable_path(tmp_path: Path) -> Path:
    blocker = tmp_path / "file.txt"
    blocker.write_text("I am a file, not a directory\n")
    return blocker / "telemetry.db"


def test_unwritable_location_does_not_break_the_turn(unwritable_path, assistant_for):
    store = TelemetryStore(unwritable_path)

    result = assistant_for(store).handle_text(DIM)

    assert result.reply.text == "The lights are dimmed to 30 %."
    assert not unwritable_path.exists()


def test_record_to_unwritable_location_returns_false(unwritable_path, assistant_for):
    result = assistant_for(None).handle_text(DIM)
    store = TelemetryStore(unwritable_path)

    assert store.record(result, pack="hotel") is False
    assert store.record(result, pack="hotel") is False


# ---------------------------------------------------------------------------------- location


def test_edgepipe_home_controls_default_db_path(tmp_path, monkeypatch):
    home = tmp_path / "edgepipe-home"
    monkeypatch.setenv("EDGEPIPE_HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))

    assert default_db_path() == home / "telemetry.db"
    assert TelemetryStore().path == home / "telemetry.db"


def test_store_without_path_writes_under_edgepipe_home(tmp_path, monkeypatch, assistant_for):
    home = tmp_path / "nested" / "edgepipe-home"
    monkeypatch.setenv("EDGEPIPE_HOME", str(home))

    with TelemetryStore() as store:
        assistant_for(store).handle_text(DIM)
        assert store.count() == 1
    assert (home / "telemetry.db").is_file()


def test_default_db_path_falls_back_to_xdg_then_home(tmp_path, monkeypatch):
    monkeypatch.delenv("EDGEPIPE_HOME", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_db_path() == tmp_path / "xdg" / "edgepipe" / "telemetry.db"

    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_db_path() == tmp_path / "home" / ".local" / "share" / "edgepipe" / "telemetry.db"


def test_empty_edgepipe_home_is_ignored(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEPIPE_HOME", "")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_db_path() == tmp_path / "xdg" / "edgepipe" / "telemetry.db"
