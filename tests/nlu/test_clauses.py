"""Several requests in one sentence: a verb shared by two objects, two values of one intent,
a clause only the router understands, a time that is not the rest of the sentence."""

from __future__ import annotations

import pytest

from edgepipe.core.types import Route


@pytest.mark.parametrize(
    ("text", "wanted"),
    [
        ("Turn off the TV and the lights.", [("tv_off", {}), ("lights_off", {})]),
        (
            "Can you send up two pillows and a toothbrush?",
            [("request_amenity", {"item": "pillow", "count": 2}),
             ("request_amenity", {"item": "toothbrush"})],
        ),
        (
            "turn off the lights in the bedroom and bathroom",
            [("lights_off", {"zone": "bedroom"}), ("lights_off", {"zone": "bathroom"})],
        ),
        (
            "Wake me at 6:45 and book a cab to the airport for 7:30 tomorrow morning.",
            [("wakeup_call", {"time": "06:45"}),
             ("book_taxi", {"destination": "airport", "time": "07:30"})],
        ),
    ],
)  # fmt: skip
def test_each_request_of_a_sentence_is_read(make_session, text, wanted) -> None:  # type: ignore[no-untyped-def]
    result = make_session().handle_text(text)
    got = [(m.name, m.slot_values()) for m in result.requests]
    assert got == wanted


def test_the_same_request_said_twice_is_one(make_session) -> None:  # type: ignore[no-untyped-def]
    result = make_session().handle_text("bit chilly, bump the heat up")
    assert [m.name for m in result.requests] == ["thermostat_up"]


def test_a_clause_no_template_claims_is_read_by_the_router(make_session) -> None:  # type: ignore[no-untyped-def]
    room = make_session()
    result = room.handle_text("The toilet's blocked and I need fresh towels too.")
    assert [m.name for m in result.requests] == ["report_issue", "request_towels"]
    assert result.decision.route is Route.RULES
    assert [s.stage for s in result.trace.spans].count("handler") == 2


def test_without_the_router_the_unclaimed_clause_is_left(make_session) -> None:  # type: ignore[no-untyped-def]
    result = make_session(router=None).handle_text(
        "The toilet's blocked and I need fresh towels too."
    )
    assert [m.name for m in result.requests] == ["report_issue"]


def test_a_rules_request_after_one_another_tier_answers_is_still_done(make_session) -> None:  # type: ignore[no-untyped-def]
    """The table goes to the cloud tier (here down: queued for later); the taxi that follows
    it in the same sentence is the rules tier's, and is booked all the same."""
    room = make_session()
    result = room.handle_text("book us a table for four at 7 and a taxi to the airport")
    got = [(m.name, m.slot_values()) for m in result.requests]
    assert got[0][0] == "book_table" and got[0][1]["count"] == 4
    assert got[1] == ("book_taxi", {"destination": "airport"})
    assert result.handler_executed
    assert "taxi to the airport" in result.reply.text
    assert result.reply.text.index("taxi") > 0  # the table's answer comes first
    assert room.state.requests("taxi")


@pytest.mark.parametrize(
    ("text", "intent", "slots"),
    [
        ("book a cab to the airport, no wait, the train station", "book_taxi",
         {"destination": "train_station"}),
        ("put the thermostat on 20, sorry, I mean 23 degrees", "thermostat_set", {"degrees": 23}),
        ("open the blinds, actually, close the blinds", "blinds_close", {}),
    ],
)  # fmt: skip
def test_a_self_correction_is_the_request(make_session, text, intent, slots) -> None:  # type: ignore[no-untyped-def]
    result = make_session().handle_text(text)
    assert [(m.name, m.slot_values()) for m in result.requests] == [(intent, slots)]


def test_a_take_back_that_nothing_reads_runs_nothing_of_what_was_taken_back(make_session) -> None:  # type: ignore[no-untyped-def]
    room = make_session()
    result = room.handle_text("Dim the lights, no, actually, just switch them off.")
    assert not any(m.name == "lights_dim" for m in result.requests)


def test_no_need_and_make_it_are_not_take_backs(make_session) -> None:  # type: ignore[no-untyped-def]
    result = make_session().handle_text("cancel my wake-up call and make it a degree warmer")
    assert [m.name for m in result.requests] == ["cancel_wakeup_call", "thermostat_up"]
    both = make_session().handle_text("turn off the lights, actually, close the blinds too")
    assert [m.name for m in both.requests] == ["lights_off", "blinds_close"]
