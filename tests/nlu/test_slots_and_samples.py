from __future__ import annotations

from datetime import datetime

import pytest

from edgepipe.nlu.learned.augment import TemplateSampler
from edgepipe.nlu.slots import SlotSpotter, with_digits
from edgepipe.nlu.templates import TemplateMatcher

NOW = datetime(2026, 11, 25, 10, 0)


@pytest.mark.parametrize(
    ("intent", "text", "expected", "missing"),
    [
        (
            "request_amenity",
            "my hair is wet and there is no hair dryer anywhere",
            {"item": "hair_dryer"},
            [],
        ),
        ("request_amenity", "we could use something for the bed", {}, ["item"]),
        ("thermostat_set", "I would prefer it around twenty two in here", {"degrees": 22}, []),
        ("thermostat_set", "make it 99 in here", {}, ["degrees"]),  # outside the list's range
        (
            "wakeup_call",
            "early flight, someone ring the room at 4:30 please",
            {"time": "04:30"},
            [],
        ),
        ("lights_on", "I can barely read my book over here at the desk", {"zone": "desk"}, []),
        (
            "book_taxi",
            "how do I get to the airport by 7 tomorrow",
            {"destination": "airport", "time": "07:00"},
            [],
        ),
        (
            "request_towels",
            "we ran out of the things you dry yourself with",
            {"count": 2},
            [],
        ),  # default
        ("late_checkout", "can we stay longer", {"time": "12:00"}, []),  # default
    ],
)
def test_spots_declared_values_only(
    hotel_pack, intent: str, text: str, expected: dict, missing: list
) -> None:  # type: ignore[no-untyped-def]
    slots, still_missing = SlotSpotter(hotel_pack).spot(intent, text, NOW)
    assert {k: v.value for k, v in slots.items()} == expected
    assert still_missing == missing


def test_template_samples_are_varied_deterministic_and_match_their_intent(hotel_pack) -> None:  # type: ignore[no-untyped-def]
    first = TemplateSampler(hotel_pack, seed=3).sentences("request_towels", 30)
    again = TemplateSampler(hotel_pack, seed=3).sentences("request_towels", 30)
    other = TemplateSampler(hotel_pack, seed=4).sentences("request_towels", 30)
    assert first == again and first != other
    assert len(first) == 30 and len({s.split()[0] for s in first}) > 5
    matcher = TemplateMatcher(hotel_pack)
    matched = [matcher.match(s, NOW).match for s in first]
    # templates generate their own sentences: nearly all of them match back to the intent
    assert sum(m is not None and m.name == "request_towels" for m in matched) >= 27


@pytest.mark.parametrize(
    ("text", "intent", "time"),
    [
        # the template's "tonight" lies outside the {time} slot, which holds only "8"
        ("book a table for two tonight at 8", "book_table", "20:00"),
        ("can you book me a table this evening at 7", "book_table", "19:00"),
        ("book a table for two at 8", "book_table", "08:00"),  # the slot's own preference
        ("I am tired, book a table at 8", "book_table", "08:00"),  # "am" as in "I am"
        ("reserve a table for 4 tonight at half past 7", "book_table", "19:30"),
        ("wake me up tomorrow morning at 6", "wakeup_call", "06:00"),
    ],
)
def test_template_time_slot_reads_the_half_of_the_day_said_beside_it(
    hotel_pack,  # type: ignore[no-untyped-def]
    text: str,
    intent: str,
    time: str,
) -> None:
    found = TemplateMatcher(hotel_pack).match(text, NOW).match
    assert found is not None and found.name == intent
    assert found.slot_values()["time"] == time


@pytest.mark.parametrize(
    ("text", "written"),
    [
        ("thermostat twenty three please", "thermostat 23 please"),
        ("a cab for three at seven", "a cab for 3 at 7"),
        ("set it to 21", "set it to 21"),
        ("twenty", "20"),
        ("close the blinds", "close the blinds"),
        ("", ""),
    ],
)
def test_with_digits_writes_spelled_numbers_as_digits(text: str, written: str) -> None:
    assert with_digits(text) == written
