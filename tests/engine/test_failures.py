"""What a turn does when a part of it fails: every such case still answers, leaves a trace entry
and a telemetry row, and loses nothing it should keep."""

from __future__ import annotations

import sqlite3
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from edgepipe.cloud.connectivity import MAX_TRANSITIONS, Connectivity, Link
from edgepipe.core.deadline import Deadline
from edgepipe.core.errors import InputError
from edgepipe.core.trace import TraceRecorder
from edgepipe.core.types import Outcome, Route, TurnResult
from edgepipe.engine.engine import Engine, load_engine_pack
from edgepipe.engine.session import Session
from edgepipe.pack.loader import Pack
from edgepipe.telemetry.store import TelemetryStore
from edgepipe.telemetry.writer import TelemetryWriter
from edgepipe.tiers.base import Passed, TierOutcome, TierRequest

PARKING = "is there parking at the hotel"  # the classifier sends it to the local model


class RaisingTier:
    """Stands in for the local model tier and fails the way llama.cpp does."""

    name = "local_model"

    def __init__(self) -> None:
        self.calls = 0

    def prepare(self) -> None:
        return None

    def close(self) -> None:
        return None

    def run(self, request: TierRequest, deadline: Deadline, trace: TraceRecorder) -> TierOutcome:
        self.calls += 1
        raise RuntimeError("llama_decode returned -3")


class RecordingTier:
    """Stands in for the local model tier and keeps the deadline it was given."""

    name = "local_model"

    def __init__(self) -> None:
        self.deadlines: list[Deadline] = []

    def prepare(self) -> None:
        return None

    def close(self) -> None:
        return None

    def run(self, request: TierRequest, deadline: Deadline, trace: TraceRecorder) -> Passed:
        self.deadlines.append(deadline)
        return Passed(tier=self.name, code="recorded", failed=False)


def _recorded(engine: Engine, result: TurnResult) -> Any:
    assert engine.flush_telemetry(10)
    assert engine.telemetry is not None
    (row,) = [r for r in engine.telemetry.recent(50) if r.turn_id == result.request.turn_id]
    return row


def test_a_tier_that_raises_gives_a_fallback_a_trace_entry_and_a_telemetry_row(
    make_engine: Callable[..., Engine], tmp_path: Path
) -> None:
    tier = RaisingTier()
    engine = make_engine(local_model=tier, telemetry=TelemetryStore(tmp_path / "t.db"))
    result = engine.session().handle_text(PARKING)
    assert tier.calls == 1
    assert result.decision.route is Route.FALLBACK
    assert result.decision.reason.endswith(">local_model_failed")
    assert result.reply.response_key == "system:fallback" and result.reply.text
    span = result.trace.stage("local_model")
    assert span is not None and span.outcome is Outcome.ERROR
    assert span.error_code == "local_model_failed" and "llama_decode" in (span.detail or "")
    row = _recorded(engine, result)
    assert (row.route, row.outcome, row.error_code) == ("fallback", "error", "local_model_failed")


class ExplodingRouter:
    """A learned router whose model fails at run time."""

    def classify(self, text: str) -> Any:
        raise RuntimeError("onnxruntime: bad allocation")


def test_a_stage_that_raises_keeps_the_waiting_question(
    make_engine: Callable[..., Engine], tmp_path: Path
) -> None:
    """A failure outside any tier (here the router) still answers and is recorded, and the
    question the room was asked is still waiting for its answer afterwards."""
    engine = make_engine(
        "22:00", router=ExplodingRouter(), telemetry=TelemetryStore(tmp_path / "t.db")
    )
    room = engine.session()
    asked = room.handle_text("wake me up at banana")
    assert asked.decision.route is Route.CLARIFY and room.pending is not None
    failed = room.handle_text("hmm what was that")
    assert failed.decision.route is Route.FALLBACK and failed.decision.reason == "turn_failed"
    assert failed.reply.response_key == "system:handler_error"
    stage = failed.trace.stage("classifier")  # where it failed
    assert stage is not None and stage.outcome is Outcome.ERROR
    span = failed.trace.stage("turn")
    assert span is not None and span.outcome is Outcome.ERROR
    assert "onnxruntime" in (span.detail or "")
    row = _recorded(engine, failed)
    assert (row.outcome, row.error_code) == ("error", "RuntimeError")  # the first error
    answered = room.handle_text("at seven please")
    assert answered.decision.reason == "answered:time"
    assert answered.intent is not None and answered.intent.slot_values() == {"time": "07:00"}


def test_a_zero_budget_is_a_zero_budget(make_engine: Callable[..., Engine]) -> None:
    tier = RecordingTier()
    room = make_engine(local_model=tier).session()
    room.handle_text(PARKING, budget_ms=0)
    room.handle_text(PARKING)
    zero, default = tier.deadlines
    assert zero.budget_ms == 0 and zero.expired()
    assert default.budget_ms == room.engine.pack.spec.budgets.text_ms
    with pytest.raises(InputError) as info:
        room.handle_text(PARKING, budget_ms=-1)
    assert "negative" in str(info.value)


# --------------------------------------------------------------------- telemetry off the path


class GatedStore(TelemetryStore):
    """A store whose writes wait until the test opens the gate (a busy disk)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.batches: list[int] = []

    def record_many(self, items: Iterable[tuple[TurnResult, str, str, Iterable[str]]]) -> bool:
        self.entered.set()
        assert self.gate.wait(30), "the test never opened the gate"
        items = list(items)
        self.batches.append(len(items))
        return super().record_many(items)


def test_telemetry_is_written_off_the_turn_and_nothing_is_lost_on_close(
    make_engine: Callable[..., Engine], tmp_path: Path
) -> None:
    store = GatedStore(tmp_path / "t.db")
    engine = make_engine(telemetry=store)
    room = engine.session()
    texts = ["turn off the lights", "dim the lights to 30 percent", "close the blinds"]
    results = [room.handle_text(text) for text in texts]  # the first write is stuck at the gate
    assert store.entered.is_set() and not store.gate.is_set()
    assert all(r.reply.text for r in results)  # every turn answered while its row waited
    store.gate.set()
    engine.close()  # a clean shutdown writes what is queued
    with TelemetryStore(tmp_path / "t.db") as reopened:
        assert {row.turn_id for row in reopened.recent(10)} == {r.request.turn_id for r in results}


def test_the_telemetry_queue_is_bounded_and_counts_what_it_drops(
    make_session: Callable[..., Session], tmp_path: Path
) -> None:
    result = make_session().handle_text("turn off the lights")
    store = GatedStore(tmp_path / "t.db")
    writer = TelemetryWriter(store, max_queue=2, full_wait_s=0.01)
    assert writer.submit(result, pack="hotel", pack_version="1")  # taken by the thread
    assert store.entered.wait(10)
    accepted = [writer.submit(result, pack="hotel", pack_version="1") for _ in range(4)]
    assert accepted == [True, True, False, False]
    assert writer.dropped == 2
    store.gate.set()
    writer.close()
    assert writer.submit(result, pack="hotel", pack_version="1") is False  # closed
    assert writer.dropped == 3
    assert store.batches == [1, 2]  # what queued behind the busy write went in one transaction


def test_a_full_telemetry_queue_waits_briefly_for_the_writer_before_dropping(
    make_session: Callable[..., Session], tmp_path: Path
) -> None:
    room = make_session()
    results = [room.handle_text("turn off the lights") for _ in range(3)]
    store = GatedStore(tmp_path / "t.db")
    writer = TelemetryWriter(store, max_queue=1, full_wait_s=10)
    assert writer.submit(results[0], pack="hotel", pack_version="1")  # taken by the thread
    assert store.entered.wait(10)
    assert writer.submit(results[1], pack="hotel", pack_version="1")  # fills the queue
    threading.Timer(0.2, store.gate.set).start()  # the disk frees up while the next one waits
    assert writer.submit(results[2], pack="hotel", pack_version="1")
    writer.close()
    assert writer.dropped == 0
    assert store.count() == 3


# --------------------------------------------------------------------- bounded history, lifetimes


def test_the_link_history_is_bounded() -> None:
    link = Connectivity()
    for _ in range(MAX_TRANSITIONS * 3):
        link.force(Link.OFFLINE)
        link.force(Link.ONLINE)
    assert len(link.transitions) == MAX_TRANSITIONS
    assert link.transitions[-1][1:] == (Link.OFFLINE, Link.ONLINE)


def test_pack_handlers_stay_out_of_sys_modules(tmp_path: Path, hotel_pack: Pack) -> None:
    """Two versions of a pack in one process keep their own handlers, and loading leaves no
    module behind in ``sys.modules``."""
    import shutil

    copy = tmp_path / "hotel-2"
    shutil.copytree(hotel_pack.root, copy)
    handlers = copy / "handlers.py"
    handlers.write_text(
        handlers.read_text(encoding="utf-8") + "\n\nVERSION = 2\n", encoding="utf-8"
    )
    second = load_engine_pack(copy)
    assert not [name for name in sys.modules if name.startswith("edgepipe_pack_handlers_")]
    assert hotel_pack.handlers_module is not None and second.handlers_module is not None
    assert hotel_pack.handlers_module is not second.handlers_module
    assert getattr(second.handlers_module, "VERSION", None) == 2
    assert not hasattr(hotel_pack.handlers_module, "VERSION")


def test_an_engine_closes_what_it_opened(tmp_path: Path, hotel_pack: Pack) -> None:
    """Closing the engine closes the telemetry store after writing it; closing twice is fine;
    a closed engine gives no new sessions."""
    engine = Engine(hotel_pack, router=None, tiers={"local_model": None, "cloud": None},
                    telemetry=TelemetryStore(tmp_path / "t.db"))  # fmt: skip
    result = engine.session().handle_text("turn off the lights")
    store = engine.telemetry
    assert store is not None
    engine.close()
    engine.close()
    assert store._conn is None
    with sqlite3.connect(tmp_path / "t.db") as db:
        assert db.execute("SELECT turn_id FROM turns").fetchall() == [(result.request.turn_id,)]
    with pytest.raises(Exception, match="closed"):
        engine.session("another")


class CountingModel:
    """Stands in for the llama.cpp model and counts what is asked of it."""

    def __init__(self) -> None:
        self.generations = 0
        self.warmed: list[str] = []

    def warm(self, task: str, system: str) -> None:
        self.warmed.append(task)

    def expected_ms(self, prompt_tokens: int, new_tokens: int = 4) -> float:
        return 0.0

    def complete(self, task: str, system: str, user: str, **_: Any) -> Any:
        from edgepipe.models.llama import Generation

        self.generations += 1
        return Generation(text="ok", prompt_tokens=1, evaluated_tokens=1, completion_tokens=1,
                          ttft_ms=0.0, total_ms=0.0, stopped_by_deadline=False,
                          finish_reason="stop")  # fmt: skip


def test_building_the_local_model_tier_runs_nothing_preparing_it_warms_it(
    hotel_pack: Pack,
) -> None:
    from edgepipe.tiers.local_model import LocalModelTier

    model = CountingModel()
    tier = LocalModelTier(hotel_pack, model, None)
    assert (model.generations, model.warmed) == (0, [])
    tier.prepare()
    assert model.generations == 2 and set(model.warmed) == {"qa", "shape", "slots"}
