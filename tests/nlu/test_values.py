"""A slot's canonical value (edgepipe.nlu.values.normalise_value), as the template matcher, the
slot spotter and a check of a model's answer see it; and the rules reading the same values."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from edgepipe.actions.business_rules import RuleEngine
from edgepipe.core.errors import RuleViolation
from edgepipe.nlu.slots import SlotSpotter
from edgepipe.nlu.templates import normalise_slot
from edgepipe.nlu.values import normalise_value, relative_frame
from edgepipe.pack.content_schema import SlotListSpec, SlotSpec

NOW = datetime(2026, 11, 25, 10, 0)

BRIGHTNESS = SlotListSpec.model_validate({"range": {"from": 0, "to": 100}})
COUNT = SlotListSpec.model_validate({"range": {"from": 1, "to": 50}})
ZONES = SlotListSpec.model_validate(
    {"values": [{"in": "(bedroom|bed room)", "out": "bedroom"}, "(desk|table)"]}
)
LEVEL = SlotSpec.model_validate({"list": "brightness", "type": "number", "quantity": "level"})
HOW_MANY = SlotSpec.model_validate({"list": "count", "type": "number", "quantity": "count"})
NUMBER = SlotSpec.model_validate({"list": "temperature", "type": "number"})
CHECKOUT = SlotSpec.model_validate({"list": "time_expr", "type": "time", "prefer": "afternoon"})
TAXI = SlotSpec.model_validate({"list": "time_expr", "type": "time", "prefer": "daytime"})
ZONE = SlotSpec.model_validate({"list": "zone"})


@pytest.mark.parametrize(
    ("spec", "slot_list", "raw", "context", "value"),
    [
        # times: HH:MM by the slot's preference; a time from now with the words around it
        (CHECKOUT, None, "noon", "", "12:00"),
        (CHECKOUT, None, "2", "", "14:00"),
        (CHECKOUT, None, "tell noon", "", "12:00"),
        (TAXI, None, "8:30", "", "08:30"),
        (TAXI, None, "3", "", "15:00"),
        (TAXI, None, "8", "book a table tonight at 8", "20:00"),
        (TAXI, None, "twenty minutes", "a taxi in twenty minutes", "10:20"),
        (TAXI, None, "an hour", "a taxi an hour from now", "11:00"),
        (TAXI, None, "in half an hour", "", "10:30"),
        (TAXI, None, "8", "a taxi in 8", "08:00"),  # "in 8" is no duration: the hour
        # numbers, counts and levels, inside the range list
        (LEVEL, BRIGHTNESS, "half", "dim the lights to half", 50),
        (LEVEL, BRIGHTNESS, "all the way", "dim the lights all the way", 0),
        (LEVEL, BRIGHTNESS, "all the way", "set the lights all the way", 100),
        (LEVEL, BRIGHTNESS, "three quarters", "", 75),
        (LEVEL, BRIGHTNESS, "50%", "", 50),
        (LEVEL, BRIGHTNESS, 40, "", 40),
        (LEVEL, BRIGHTNESS, 40.0, "", 40),
        (LEVEL, BRIGHTNESS, "forty", "", 40),
        (HOW_MANY, COUNT, "a couple of", "", 2),
        (HOW_MANY, COUNT, "another", "", 1),
        (HOW_MANY, COUNT, "we have two, bring two more", "", 2),
        (HOW_MANY, COUNT, "3", "", 3),
        (HOW_MANY, COUNT, 3, "", 3),
        (NUMBER, None, "twenty two", "", 22),
        (NUMBER, None, "21.5", "", 21.5),
        (NUMBER, None, 21.5, "", 21.5),
        # text: a list value's output, or what one of its wordings says
        (ZONE, ZONES, "bedroom", "", "bedroom"),
        (ZONE, ZONES, "Bed Room", "", "bedroom"),
        (ZONE, ZONES, "table", "", "table"),
        (ZONE, None, "  anything  goes ", "", "anything goes"),
    ],
)
def test_normalise_value_accepts(
    spec: SlotSpec, slot_list: SlotListSpec | None, raw: Any, context: str, value: Any
) -> None:
    got = normalise_value(spec, raw, slot_list=slot_list, now=NOW, context=context)
    assert got == value
    assert type(got) is type(value)


@pytest.mark.parametrize(
    ("spec", "slot_list", "raw"),
    [
        (CHECKOUT, None, ""),
        (CHECKOUT, None, "banana"),
        (CHECKOUT, None, "25:00"),
        (CHECKOUT, None, "24:00"),
        (TAXI, None, "in twenty minutes banana"),
        (LEVEL, BRIGHTNESS, "half banana"),
        (LEVEL, BRIGHTNESS, 101),
        (LEVEL, BRIGHTNESS, "150 %"),
        (LEVEL, BRIGHTNESS, -1),
        (LEVEL, BRIGHTNESS, True),  # a bool is not a number
        (LEVEL, BRIGHTNESS, float("nan")),
        (LEVEL, BRIGHTNESS, float("inf")),
        (LEVEL, BRIGHTNESS, ""),
        (LEVEL, BRIGHTNESS, "a couple"),  # a count is not a level
        (HOW_MANY, COUNT, "half"),  # nor a level a count
        (HOW_MANY, COUNT, "a few"),
        (HOW_MANY, COUNT, 0),
        (HOW_MANY, COUNT, 51),
        (HOW_MANY, COUNT, "99999999999999999999"),
        (HOW_MANY, COUNT, "-3"),
        (NUMBER, None, "half"),  # no quantity declared: numbers only
        (NUMBER, None, "banana"),
        (NUMBER, None, ["22"]),
        (ZONE, ZONES, "garage"),
        (ZONE, ZONES, ""),
        (ZONE, ZONES, "   "),
        (ZONE, ZONES, None),
    ],
)
def test_normalise_value_refuses(spec: SlotSpec, slot_list: SlotListSpec | None, raw: Any) -> None:
    assert normalise_value(spec, raw, slot_list=slot_list, now=NOW) is None


def test_relative_times_need_the_turns_time() -> None:
    assert normalise_value(TAXI, "in twenty minutes") is None
    assert normalise_value(TAXI, "twenty minutes", context="in twenty minutes") is None


@pytest.mark.parametrize(
    ("sentence", "slot", "framed"),
    [
        ("a taxi in twenty minutes please", "twenty minutes", "in twenty minutes"),
        ("a taxi an hour from now", "an hour", "an hour from now"),
        ("a taxi at 8", "8", None),
        ("a taxi in the morning at 8", "8", None),
        ("", "8", None),
        ("anything", "", None),
    ],
)
def test_relative_frame(sentence: str, slot: str, framed: str | None) -> None:
    assert relative_frame(sentence, slot) == framed


def test_normalise_slot_raises_a_value_error_naming_the_problem() -> None:
    with pytest.raises(ValueError, match="not a time of day"):
        normalise_slot("time", CHECKOUT, "banana", "banana", NOW)
    with pytest.raises(ValueError, match="level"):
        normalise_slot("level", LEVEL, "loads", "loads", NOW, slot_list=BRIGHTNESS)
    assert normalise_slot("level", LEVEL, "half", "half", NOW, slot_list=BRIGHTNESS) == 50


@pytest.mark.parametrize(
    ("intent", "text", "expected"),
    [
        ("request_towels", "we have two towels bring two more", {"count": 2}),
        ("request_towels", "we've got three, just one more please", {"count": 1}),
        ("request_towels", "we have two towels but need four in total", {"count": 2}),
        ("request_towels", "could someone drop off a pair of towels", {"count": 2}),
        ("request_towels", "a few more towels would be nice", {"count": 2}),  # the default
        ("request_amenity", "another pillow for the bed", {"item": "pillow", "count": 1}),
        ("lights_dim", "could you take the lamps to about half", {"level": 50}),
        ("lights_dim", "lamps all the way down", {"level": 0}),
        ("lights_dim", "lamps right down please", {"level": 0}),
        ("book_taxi", "we'll need a car to the airport an hour from now", None),
        ("book_taxi", "a cab for two people at 8", {"time": "08:00"}),
        ("late_checkout", "could we keep the room tell noon", {"time": "12:00"}),
    ],
)
def test_spotter_reads_counts_levels_and_times(
    hotel_pack,  # type: ignore[no-untyped-def]
    intent: str,
    text: str,
    expected: dict[str, Any] | None,
) -> None:
    slots, _ = SlotSpotter(hotel_pack).spot(intent, text, NOW)
    values = {k: v.value for k, v in slots.items()}
    if expected is None:  # the taxi: destination and a time from now
        assert values == {"destination": "airport", "time": "11:00"}
    else:
        assert {k: values.get(k) for k in expected} == expected


def test_rules_read_times_and_numbers_as_the_slots_do(hotel_pack) -> None:  # type: ignore[no-untyped-def]
    rules = RuleEngine(hotel_pack)
    # "8:30" (not zero-padded) is before 12:00; as text it sorted after it
    rules.check_request("late_checkout", {"time": "8:30"}, NOW)
    with pytest.raises(RuleViolation) as refused:
        rules.check_request("late_checkout", {"time": "13:00"}, NOW)
    assert refused.value.rule == "checkout_cutoff"
    # a count written as text is still held to the towel limit
    with pytest.raises(RuleViolation) as too_many:
        rules.check_request("request_towels", {"count": "six"}, NOW)
    assert too_many.value.rule == "towel_limit"
    rules.check_request("request_towels", {"count": "3"}, NOW)
