"""The resolve tier: a model reads a request onto the pack's intents; the rules execute it.

The model is scripted (its answers are the test's input); everything after it is real: the
router that hands over its candidates, the validation, the rules and handlers, the dialogue.
The requests are words no template or router reading claims, so every turn reaches the tier.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest
from tests.tiers.test_local_model import ScriptedModel

from edgepipe.core.types import Route
from edgepipe.engine.engine import Engine
from edgepipe.pack.loader import Pack
from edgepipe.tiers.local_model import LocalModelTier
from edgepipe.tiers.reading import Catalogue, Proposal

UNCLAIMED = "flibber the wozzle gently"


def _pack(hotel_pack: Pack, **resolve: Any) -> Pack:
    spec = hotel_pack.spec
    policy = spec.policy.model_copy(update={"out_of_scope": ["resolve", "local_model", "degraded"]})
    settings = spec.resolve.model_copy(update={"confirm_unranked": False, **resolve})
    return dataclasses.replace(
        hotel_pack, spec=spec.model_copy(update={"policy": policy, "resolve": settings})
    )


@pytest.fixture
def resolving(
    make_engine: Callable[..., Engine], hotel_pack: Pack
) -> Callable[..., tuple[Engine, ScriptedModel]]:
    def make(*answers: object, **resolve: Any) -> tuple[Engine, ScriptedModel]:
        pack = _pack(hotel_pack, **resolve)
        model = ScriptedModel([json.dumps(a) if not isinstance(a, str) else a for a in answers])
        tier = LocalModelTier(pack, model, None)
        return make_engine(pack=pack, local_model=tier), model

    return make


def test_a_request_nothing_claims_is_read_by_the_model_and_executed_by_the_rules(
    resolving: Callable[..., tuple[Engine, ScriptedModel]],
) -> None:
    engine, model = resolving({"requests": [{"intent": "blinds_close"}]})
    room = engine.session()
    result = room.handle_text(UNCLAIMED)
    assert result.handler_executed
    assert result.decision.route == Route.RULES
    assert "resolve:local_model:blinds_close" in result.decision.reason
    assert result.intent is not None and result.intent.name == "blinds_close"
    assert room.state.get("blinds") == "closed"
    task, prompt = model.calls[-1]
    assert task == "resolve" and UNCLAIMED in prompt and "Likely actions:" in prompt
    stages = [s.stage for s in result.trace.spans]
    assert stages.index("resolve:local_model") < stages.index("validate") < stages.index("rules")


def test_slot_values_the_words_do_not_support_are_dropped(
    resolving: Callable[..., tuple[Engine, ScriptedModel]],
) -> None:
    answer = {"requests": [{"intent": "lights_dim", "zone": "bathroom", "level": 70}]}
    engine, _ = resolving(answer, answer)
    supported = engine.session().handle_text(f"{UNCLAIMED} in the bathroom to 70")
    assert supported.intent is not None
    assert supported.intent.slot_values() == {"zone": "bathroom", "level": 70}
    unsupported = engine.session().handle_text(UNCLAIMED)
    assert unsupported.handler_executed
    assert unsupported.intent is not None
    assert unsupported.intent.slot_values() == {"level": 30}  # the default; no zone invented
    validate = next(s for s in unsupported.trace.spans if s.stage == "validate")
    assert "zone:unsupported" in (validate.detail or "")
    assert "level:unsupported" in (validate.detail or "")


def test_none_and_malformed_answers_execute_nothing(
    resolving: Callable[..., tuple[Engine, ScriptedModel]],
) -> None:
    engine, _ = resolving({"requests": [{"intent": "none"}]}, "{not json")
    nothing = engine.session().handle_text(UNCLAIMED)
    assert not nothing.handler_executed and nothing.decision.route == Route.FALLBACK
    broken = engine.session().handle_text(UNCLAIMED)
    assert not broken.handler_executed and broken.decision.route == Route.FALLBACK
    assert "resolve:local_model:malformed" in broken.decision.reason


def test_several_requests_are_each_executed_and_answered_once(
    resolving: Callable[..., tuple[Engine, ScriptedModel]],
) -> None:
    answer = {"requests": [{"intent": "tv_off"}, {"intent": "lights_off", "zone": "bedroom"}]}
    engine, _ = resolving(answer)
    room = engine.session()
    result = room.handle_text(f"{UNCLAIMED}, then the bedroom gizmo")
    assert [m.name for m in result.requests] == ["tv_off", "lights_off"]
    assert result.also[0].slot_values() == {"zone": "bedroom"}
    assert room.state.get("tv") == "off"
    assert room.state.get("lights.bedroom") == "off"
    assert result.reply.response_key.count("+") == 1  # one reply for both


def test_high_impact_and_weak_readings_are_confirmed_first(
    resolving: Callable[..., tuple[Engine, ScriptedModel]],
) -> None:
    engine, _ = resolving({"requests": [{"intent": "late_checkout", "time": "13:00"}]})
    room = engine.session()
    asked = room.handle_text(f"{UNCLAIMED} till 1 pm")
    assert asked.decision.route == Route.CLARIFY and not asked.handler_executed
    assert asked.reply.response_key == "system:confirm"
    assert "confirm:high_impact" in asked.decision.reason
    done = room.handle_text("yes please")  # the rules decide (the pack's cut-off refuses it)
    assert done.decision.route in (Route.RULES, Route.REJECTED)
    assert done.intent is not None and done.intent.name == "late_checkout"
    assert done.intent.slot_values()["time"] == "13:00"

    weak, _ = resolving({"requests": [{"intent": "tv_off"}]}, confirm_unranked=True)
    unranked = weak.session().handle_text(UNCLAIMED)  # the router ranks tv_off nowhere near
    assert unranked.decision.route == Route.CLARIFY and not unranked.handler_executed


def test_a_missing_required_slot_is_asked_for(
    resolving: Callable[..., tuple[Engine, ScriptedModel]],
) -> None:
    engine, _ = resolving({"requests": [{"intent": "wakeup_call", "time": None}]})
    room = engine.session()
    asked = room.handle_text(UNCLAIMED)
    assert asked.decision.route == Route.CLARIFY and "slot_missing:time" in asked.decision.reason
    done = room.handle_text("at 7")
    assert done.handler_executed and done.intent is not None
    assert done.intent.slot_values() == {"time": "07:00"}


def test_the_answer_schema_is_limited_to_the_candidates(hotel_pack: Pack) -> None:
    catalogue = Catalogue.from_pack(hotel_pack)
    narrow = json.loads(catalogue.schema_json(("tv_off", "blinds_close", "no_such_intent")))
    branches = narrow["properties"]["requests"]["items"]["anyOf"]
    assert [b["properties"]["intent"]["const"] for b in branches] == [
        "tv_off",
        "blinds_close",
        "none",
    ]
    everything = json.loads(catalogue.schema_json())
    assert (
        len(everything["properties"]["requests"]["items"]["anyOf"]) == len(hotel_pack.intents) + 1
    )
    dim = next(
        b
        for b in everything["properties"]["requests"]["items"]["anyOf"]
        if b["properties"]["intent"]["const"] == "lights_dim"
    )
    assert list(dim["properties"]) == ["intent", "zone", "level"]  # the intent is written first
    assert "lights_dim" in catalogue.system and "none" in catalogue.system


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "not JSON"),
        ("[1, 2]", "no 'requests' list"),
        ('{"requests": [{"intent": "open_the_safe"}]}', "unknown intent"),
        ('{"requests": ["tv_off"]}', "not an object"),
    ],
)
def test_malformed_proposals_name_the_problem(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Proposal.parse("local_model", text, ("tv_off",))


def test_a_proposal_drops_nulls_none_and_repeats() -> None:
    proposal = Proposal.parse(
        "local_model",
        '{"requests": [{"intent": "tv_off", "zone": null}, {"intent": "none"},'
        ' {"intent": "tv_off"}]}',
        ("tv_off",),
    )
    assert proposal.requests == (("tv_off", {}),)
    assert Proposal.parse("cloud", '{"requests": [{"intent": "none"}]}', ("tv_off",)).none
