"""A required slot described instead of named, read from the pack's labelled examples
(:mod:`edgepipe.nlu.learned.neighbours`), with the real router and its sentence encoder."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from edgepipe.core.types import Route
from edgepipe.engine.engine import Engine
from edgepipe.nlu.learned.neighbours import ValueNeighbours


@pytest.fixture
def neighbours(make_engine: Callable[..., Engine]) -> ValueNeighbours:
    found = make_engine().policy._neighbours
    assert found is not None
    return found


def test_only_required_text_slots_have_neighbours(neighbours: ValueNeighbours) -> None:
    pairs = set(neighbours.slots())
    assert ("request_amenity", "item") in pairs and ("facility_hours", "facility") in pairs
    # optional slots are never guessed: no zone for "turn on the lights"
    assert not any(intent.startswith("lights_") for intent, _ in pairs)


@pytest.mark.parametrize(
    ("intent", "slot", "text", "value"),
    [
        ("request_amenity", "item", "my phone battery is nearly flat and I forgot the cable",
         "phone_charger"),
        ("facility_hours", "facility", "when can I get something to eat in the morning",
         "breakfast"),
        # things the pack does not list sit between several values' neighbours
        ("request_amenity", "item", "can I get a kettle", None),
        ("request_amenity", "item", "bring up a crib for the baby", None),
        ("request_amenity", "item", "a bottle of champagne please", None),
        ("lights_on", "zone", "I can't see a thing by the desk", None),
    ],
)  # fmt: skip
def test_a_value_is_read_only_on_strong_evidence(
    neighbours: ValueNeighbours, intent: str, slot: str, text: str, value: str | None
) -> None:
    reading = neighbours.read(intent, slot, text)
    if value is None:
        assert reading is None
    else:
        assert reading is not None and reading.value == value
        assert reading.similarity >= neighbours.min_similarity
        assert reading.share >= neighbours.min_share


def test_a_described_item_is_sent_up_without_a_question(
    make_engine: Callable[..., Engine],
) -> None:
    engine = make_engine()
    result = engine.session("a").handle_text(
        "my phone battery is nearly flat and I forgot the cable"
    )
    assert result.decision.route is Route.RULES, result.decision.reason
    assert result.intent is not None and result.intent.slot_values()["item"] == "phone_charger"
    assert result.handler_executed and "charger" in result.reply.text.lower()
    # without the neighbours the same turn asks which item
    engine.policy._neighbours = None
    again = engine.session("b").handle_text(
        "my phone battery is nearly flat and I forgot the cable"
    )
    assert again.decision.reason == "slot_missing:item"
