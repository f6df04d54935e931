"""Whole turns through the engine with times and amounts said in words: what a new guest said
that used to get "Sorry, I didn't catch the time" or a wrong number."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from edgepipe.core.types import Route


@pytest.mark.parametrize(
    ("text", "intent", "slots"),
    [
        ("can I have a late checkout until noon", "late_checkout", {"time": "12:00"}),
        ("late checkout tell noon", "late_checkout", {"time": "12:00"}),
        ("can I have a late checkout un till noon please", "late_checkout", {"time": "12:00"}),
        ("taxi at 8:30", "book_taxi", {"time": "08:30"}),
        ("book a taxi at 20h30", "book_taxi", {"time": "20:30"}),
        ("book a taxi to the airport in twenty minutes", "book_taxi", {"time": "10:20"}),
        ("book a taxi an hour from now", "book_taxi", {"time": "11:00"}),
        ("dim the lights to half", "lights_dim", {"level": 50}),
        ("dim the lights to a quarter", "lights_dim", {"level": 25}),
        ("dim the bedroom lights to three quarters", "lights_dim", {"level": 75}),
        ("dim the lights all the way down", "lights_dim", {"level": 0}),
        ("turn the lights down all the way", "lights_dim", {"level": 0}),
        ("set the lights to full", "lights_dim", {"level": 100}),
        ("dim the lights to fifty percent", "lights_dim", {"level": 50}),
        ("bring me another towel", "request_towels", {"count": 1}),
        ("a couple of towels please", "request_towels", {"count": 2}),
    ],
)
def test_template_turns_read_times_and_amounts(
    make_session,  # type: ignore[no-untyped-def]
    text: str,
    intent: str,
    slots: dict[str, Any],
) -> None:
    result = make_session(router=None).handle_text(text)
    assert result.decision.route is Route.RULES, result.decision.reason
    assert result.decision.reason.startswith("template:")
    assert result.intent is not None and result.intent.name == intent
    got = result.intent.slot_values()
    assert {k: got.get(k) for k in slots} == slots
    assert result.handler_executed


def test_dimming_in_words_sets_the_level(make_session) -> None:  # type: ignore[no-untyped-def]
    room = make_session(router=None)
    assert room.handle_text("dim the desk lights to half").reply.text == (
        "The desk lights are dimmed to 50 %."
    )
    assert room.state.get("lights.desk") == 50
    room.handle_text("dim the desk lights all the way")
    assert room.state.get("lights.desk") == 0


def test_a_taxi_at_a_passed_hour_is_tomorrows(make_session) -> None:  # type: ignore[no-untyped-def]
    room = make_session(at="10:00", router=None)
    result = room.handle_text("taxi at 8:30")
    assert result.reply.text.startswith("I've asked the front desk for a taxi at 08:30 tomorrow.")
    (taxi,) = room.state.requests("taxi")
    assert taxi.due_at is not None
    assert taxi.due_at.replace(tzinfo=None) == datetime(2026, 11, 26, 8, 30)
    later = room.handle_text("taxi in twenty minutes please")
    assert "at 10:20 today" in later.reply.text


def test_late_checkout_past_noon_said_in_words_is_refused(make_session) -> None:  # type: ignore[no-untyped-def]
    result = make_session(router=None).handle_text("late checkout untill half past one")
    assert result.decision.route is Route.REJECTED
    assert result.decision.reason == "rule:checkout_cutoff"
    assert "13:30" in result.reply.text


def test_counts_given_as_a_difference_through_the_router(make_session) -> None:  # type: ignore[no-untyped-def]
    """No template says "we have N, bring M more": the router finds the intent and the spotter
    the count to bring."""
    room = make_session()
    result = room.handle_text("we have three towels bring one more")
    assert result.intent is not None and result.intent.name == "request_towels"
    assert result.intent.slot_values()["count"] == 1
    assert result.reply.text == "1 towel is on the way to room 412."
    again = make_session().handle_text("we have two towels bring two more")
    assert again.intent is not None and again.intent.slot_values()["count"] == 2
