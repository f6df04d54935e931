"""The fallback chain: the order a request tries tiers in, and how the turn's reason is told."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime

import pytest

from edgepipe.actions.responses import Responder
from edgepipe.actions.state import InMemoryState
from edgepipe.core.deadline import Deadline
from edgepipe.core.trace import TraceRecorder
from edgepipe.core.types import IntentMatch, Reply, Route
from edgepipe.engine.engine import Engine
from edgepipe.pack.loader import Pack
from edgepipe.tiers.base import Passed, Tier, TierOutcome, TierRequest
from edgepipe.tiers.chain import FallbackChain, walk_order
from edgepipe.tiers.degraded import DegradedTier

FALLBACK = ["cloud", "local_model", "degraded"]
OUT_OF_SCOPE = ["local_model", "cloud", "degraded"]


@pytest.mark.parametrize(
    ("start", "order"),
    [
        ("cloud", ["cloud", "local_model", "degraded"]),
        ("local_model", ["local_model", "degraded"]),
        ("rules", ["rules", "cloud", "local_model", "degraded"]),
        (None, ["local_model", "cloud", "degraded"]),
    ],
)
def test_a_request_starts_at_its_tier_and_goes_right(start: str | None, order: list[str]) -> None:
    assert walk_order(start, FALLBACK, OUT_OF_SCOPE) == order


def test_the_walk_always_ends_with_the_degraded_answer() -> None:
    assert walk_order("cloud", ["cloud"], OUT_OF_SCOPE) == ["cloud", "degraded"]
    assert walk_order(None, ["cloud"], ["cloud", "degraded", "local_model"]) == [
        "cloud",
        "degraded",
    ]
    assert walk_order("x", ["x", "x"], []) == ["x", "degraded"]


class Scripted:
    """A tier that answers or passes as told, and records what it was asked."""

    def __init__(self, name: str, result: TierOutcome | Passed) -> None:
        self.name = name
        self.result = result
        self.asked: list[TierRequest] = []

    def prepare(self) -> None:
        return None

    def close(self) -> None:
        return None

    def run(
        self, request: TierRequest, deadline: Deadline, trace: TraceRecorder
    ) -> TierOutcome | Passed:
        self.asked.append(request)
        return self.result


def _request(pack: Pack, intent: str | None = None) -> TierRequest:
    match = (
        IntentMatch(name=intent, slots={}, confidence=1.0, source="template") if intent else None
    )
    return TierRequest(
        text="write me a poem",
        intent=match,
        turn_id="t1",
        now=datetime(2026, 11, 25, 10, 0, tzinfo=pack.timezone),
        room=pack.spec.context.room,
        state=InMemoryState(),
        route_reason="oos:class:0.01",
    )


def _chain(pack: Pack, *tiers: Tier) -> FallbackChain:
    return FallbackChain({t.name: t for t in tiers}, DegradedTier(Responder(pack)))


def test_failures_join_the_reason_and_the_latest_reply_is_said(hotel_pack: Pack) -> None:
    offline = Reply(text="I'm offline.", response_key="system:offline")
    local = Scripted("local_model", Passed(tier="local_model", code="page:0.1<0.5", failed=False))
    cloud = Scripted("cloud", Passed(tier="cloud", code="offline", failed=True, say=offline))
    out = _chain(hotel_pack, local, cloud).run(
        _request(hotel_pack),
        ["local_model", "cloud", "degraded"],
        Deadline.never(),
        TraceRecorder(),
    )
    assert out.route is Route.FALLBACK
    assert out.reason == "oos:class:0.01>offline"  # a pass that is no failure is not told
    assert out.reply == offline
    (asked,) = cloud.asked
    assert [p.code for p in asked.passed] == ["page:0.1<0.5"]  # each tier sees what came before


def test_an_answer_after_a_failure_names_the_failure(hotel_pack: Pack) -> None:
    cloud = Scripted("cloud", Passed(tier="cloud", code="cloud_unreachable", failed=True))
    answer = TierOutcome(
        route=Route.LOCAL_MODEL,
        reason="qa:Parking:generate",
        reply=Reply(text="There is a garage.", response_key="local_model:qa"),
    )
    local = Scripted("local_model", answer)
    out = _chain(hotel_pack, local, cloud).run(
        _request(hotel_pack, "hotel_info"),
        ["cloud", "local_model", "degraded"],
        Deadline.never(),
        TraceRecorder(),
    )
    assert out.route is Route.LOCAL_MODEL
    assert out.reason == "cloud_unreachable>qa:Parking:generate"
    assert out.reply.text == "There is a garage."


def test_a_missing_own_tier_is_named_and_a_missing_later_one_skipped(hotel_pack: Pack) -> None:
    out = _chain(hotel_pack).run(
        _request(hotel_pack, "hotel_info"),
        ["local_model", "degraded"],
        Deadline.never(),
        TraceRecorder(),
        own="local_model",
    )
    assert (out.route, out.reason) == (
        Route.FALLBACK,
        "oos:class:0.01>tier_unavailable:local_model",
    )
    assert out.reply.response_key == "system:fallback"
    skipped = _chain(hotel_pack).run(
        _request(hotel_pack),
        ["local_model", "cloud", "degraded"],
        Deadline.never(),
        TraceRecorder(),
    )
    assert skipped.reason == "oos:class:0.01"


def test_an_intent_can_declare_its_own_fallback(
    hotel_pack: Pack, make_engine: Callable[..., Engine]
) -> None:
    """The pack's default order tries the local model after the cloud; an intent that says
    ``fallback: [cloud, degraded]`` does not, and one that says nothing inherits the default."""
    table = hotel_pack.intents["book_table"]
    own = dataclasses.replace(
        table, policy=table.policy.model_copy(update={"fallback": ["cloud", "degraded"]})
    )
    pack = dataclasses.replace(hotel_pack, intents={**hotel_pack.intents, "book_table": own})
    cloud = Scripted("cloud", Passed(tier="cloud", code="offline", failed=True))
    local = Scripted(
        "local_model", Passed(tier="local_model", code="local_model:not_qa", failed=False)
    )
    room = make_engine(pack=pack, local_model=local, cloud=cloud).session()
    result = room.handle_text("book a table for two tonight at 8")
    assert len(cloud.asked) == 1 and local.asked == []
    assert result.decision.reason == "template:exact>offline"
    assert hotel_pack.intents["hotel_info"].policy.fallback == FALLBACK  # the pack default


def test_a_question_the_cloud_may_not_see_is_answered_locally(
    hotel_pack: Pack, make_engine: Callable[..., Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A question-answering intent whose tier is the cloud, but whose data class keeps it on
    the device: the real cloud tier refuses it at the privacy gate (nothing is sent, not even
    attempted), and the chain's next tier, the local model, answers it."""
    monkeypatch.setenv("EDGEPIPE_CLOUD_BASE_URL", "http://127.0.0.1:9/v1")  # never reached
    info = hotel_pack.intents["hotel_info"]
    cloud_first = dataclasses.replace(
        info, policy=info.policy.model_copy(update={"tier": "cloud", "privacy": "local_only"})
    )
    pack = dataclasses.replace(
        hotel_pack, intents={**hotel_pack.intents, "hotel_info": cloud_first}
    )
    answer = TierOutcome(
        route=Route.LOCAL_MODEL,
        reason="qa:Parking:generate",
        reply=Reply(text="There is an underground garage.", response_key="local_model:qa"),
    )
    local = Scripted("local_model", answer)
    result = (
        make_engine(pack=pack, local_model=local, cloud="auto")
        .session()
        .handle_text("is there parking at the hotel")
    )
    assert result.decision.route is Route.LOCAL_MODEL
    assert result.decision.reason == "privacy:local_only>qa:Parking:generate"
    assert result.reply.text == "There is an underground garage."
    privacy = result.trace.stage("privacy")
    assert privacy is not None and privacy.error_code == "privacy_local_only"
    assert result.trace.stage("cloud") is None and result.trace.stage("audit") is None
