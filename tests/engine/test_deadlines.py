"""Deadlines are behaviour: every stage gets what is left of the turn's budget, and a stage
that finds none left does not start. Tested with a clock the test moves, not with timings
(real timings are measured in bench/)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from edgepipe.core.deadline import Deadline
from edgepipe.core.resources import Resources
from edgepipe.core.trace import TraceRecorder
from edgepipe.core.types import Outcome, Route
from edgepipe.engine.engine import Engine
from edgepipe.models.llama import Generation
from edgepipe.nlu.learned.encoder import shared_encoder
from edgepipe.nlu.learned.model import OOS_LABEL, Prediction
from edgepipe.pack.loader import Pack
from edgepipe.tiers.base import Passed, TierRequest
from edgepipe.tiers.knowledge import KnowledgeBase
from edgepipe.tiers.local_model import LocalModelTier

PARKING = "is there parking at the hotel"


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, ms: float) -> None:
        self.now += ms / 1000


class SlowCloud:
    """A cloud tier that takes ``ms`` of the turn's time and then fails."""

    name = "cloud"

    def __init__(self, clock: FakeClock, ms: float) -> None:
        self.clock, self.ms = clock, ms
        self.remaining: list[float] = []

    def prepare(self) -> None:
        return None

    def close(self) -> None:
        return None

    def run(self, request: TierRequest, deadline: Deadline, trace: TraceRecorder) -> Passed:
        self.remaining.append(deadline.remaining_ms())
        self.clock.advance(self.ms)
        return Passed(tier=self.name, code="cloud_deadline", failed=True)


@dataclass
class CountingModel:
    """Stands in for the llama.cpp model; counts generations (none are expected in time)."""

    calls: list[str] = field(default_factory=list)

    def warm(self, task: str, system: str) -> None:
        return None

    def expected_ms(self, prompt_tokens: int, new_tokens: int = 4) -> float:
        return 0.0

    def complete(self, task: str, system: str, user: str, **_: Any) -> Generation:
        self.calls.append(user)
        return Generation(
            text="The garage is underground.",
            prompt_tokens=40,
            evaluated_tokens=10,
            completion_tokens=5,
            ttft_ms=1.0,
            total_ms=2.0,
            stopped_by_deadline=False,
            finish_reason="stop",
        )


class Abstaining:
    """A router that finds every request out of scope."""

    def classify(self, text: str) -> Prediction:
        return Prediction(
            intent=None, confidence=0.1, best=OOS_LABEL, top=OOS_LABEL, runner_up=None,
            runner_up_confidence=0.0, threshold=0.6,
        )  # fmt: skip


def _cloud_first(pack: Pack) -> Pack:
    policy = pack.spec.policy.model_copy(update={"out_of_scope": ["cloud", "local_model"]})
    return dataclasses.replace(pack, spec=pack.spec.model_copy(update={"policy": policy}))


def test_a_tier_after_a_slow_one_gets_only_what_is_left(
    hotel_pack: Pack, resources: Resources, make_engine: Callable[..., Engine]
) -> None:
    """The cloud used up the budget: the local model, next in the chain, does not start a
    generation; the guest gets the page's own sentences (extractive) at once."""
    clock = FakeClock()
    pack = _cloud_first(hotel_pack)
    spec = pack.spec.local_model
    assert spec.knowledge is not None
    page = KnowledgeBase.from_file(
        pack.root / spec.knowledge, min_score=spec.qa_min_score, encoder=shared_encoder(resources)
    )
    model = CountingModel()
    local = LocalModelTier(pack, model, page)
    local.prepare()
    warm_up_calls = len(model.calls)
    slow = SlowCloud(clock, ms=pack.spec.budgets.text_ms + 10)
    room = make_engine(
        pack=pack, router=Abstaining(), local_model=local, cloud=slow, monotonic=clock
    ).session()

    result = room.handle_text(PARKING)
    assert slow.remaining == [pack.spec.budgets.text_ms]  # the clock had not moved before
    assert len(model.calls) == warm_up_calls  # no generation was started
    assert result.decision.route is Route.LOCAL_MODEL
    assert result.reply.response_key == "local_model:extractive"
    assert result.decision.reason.startswith("cloud_deadline>page:")
    skipped = result.trace.stage("generate")
    assert skipped is not None and skipped.outcome is Outcome.TIMEOUT

    clock_before = clock.now
    slow.ms = 100.0  # a quick failure leaves time: the model answers
    again = room.handle_text(PARKING)
    assert clock.now - clock_before == pytest.approx(0.1)
    assert len(model.calls) == warm_up_calls + 1
    assert again.reply.response_key == "local_model:qa"


def test_each_turn_starts_with_its_whole_budget(
    hotel_pack: Pack, make_engine: Callable[..., Engine]
) -> None:
    clock = FakeClock()
    slow = SlowCloud(clock, ms=300)
    room = make_engine(
        pack=_cloud_first(hotel_pack), router=Abstaining(), cloud=slow, monotonic=clock
    ).session()
    room.handle_text("plan a trip", budget_ms=1000)
    room.handle_text("plan a trip", budget_ms=1000)
    room.handle_text("plan a trip", budget_ms=250)
    assert slow.remaining == [1000, 1000, 250]
