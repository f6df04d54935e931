"""Numbers, counts and levels said in words (edgepipe.nlu.quantities): what each reader
accepts, and that it refuses what is not one."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgepipe.nlu.quantities import (
    direction_of,
    find_count,
    find_level,
    number_spans,
    parse_count,
    parse_level,
    parse_number,
)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("7", 7),
        ("seven", 7),
        ("zero", 0),
        ("nineteen", 19),
        ("twenty", 20),
        ("twenty five", 25),
        ("twenty-five", 25),
        ("Fifty", 50),
        ("ninety nine", 99),
        ("a hundred", 100),
        ("one hundred", 100),
        (" 42 ", 42),
        ("1000", 1000),
    ],
)
def test_parse_number_accepts(text: str, value: int) -> None:
    assert parse_number(text) == value


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "banana",
        "-5",
        "2.5",
        "1001",  # over MAX_NUMBER
        "99999999999999999999999",
        "seven dwarves",
        "twenty twenty",
        "five five",
        "a",
        "hundred",
        "٣",  # a digit, but not an ASCII one
        "8:30",
    ],
)
def test_parse_number_refuses(text: str) -> None:
    assert parse_number(text) is None


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("two", 2),
        ("2", 2),
        ("two more", 2),
        ("one more pillow", 1),
        ("another one", 1),
        ("another", 1),
        ("another two towels", 2),
        ("a couple of towels", 2),
        ("a couple", 2),
        ("couple of pillows", 2),
        ("a pair of towels", 2),
        ("a dozen", 12),
        ("half a dozen", 6),
        ("three extra blankets", 3),
        # the count qualified by "more" is the one to bring, not the one the guest has
        ("we have two towels bring two more", 2),
        ("we have two, bring two more", 2),
        ("we have three towels, one more please", 1),
        ("we already have two, bring one more", 1),
        ("there are 4 towels, can we get 2 more", 2),
        # a total beside a count the guest has: the difference
        ("we have two towels but need four in total", 2),
        ("there are two, we need five altogether", 3),
        # the number of people against what there is: the difference
        ("we are four and there are only two towels", 2),
        ("there are three of us but just one bathrobe", 2),
        # the number of people alone is the count; a count said beside it wins
        ("a table for four people", 4),
        ("we're six, could we get six towels", 6),
        # asking to have is not having
        ("can we have three towels", 3),
        ("could I have two more", 2),
        # times, room numbers, percentages are not counts
        ("room 412 needs two towels", 2),
        ("two towels at 8:30", 2),
        ("a table for 4 at 8", 4),
    ],
)
def test_find_count_reads_the_count_to_bring(text: str, value: int) -> None:
    found = find_count(text, maximum=50)
    assert found is not None, text
    assert found.value == value
    assert parse_count(text, maximum=50) == value


@pytest.mark.parametrize(
    ("text", "minimum", "maximum"),
    [
        ("", 1, 50),
        ("banana", 1, 50),
        ("some more towels", 1, 50),
        ("a few towels", 1, 50),  # "a few" names no number
        ("several pillows", 1, 50),
        ("we have two towels", 1, 50),  # a count the guest has, not one asked for
        ("there are two towels", 1, 50),
        ("at 8:30", 1, 50),
        ("at 8 pm", 1, 50),
        ("in 20 minutes", 1, 50),
        ("fifty percent", 1, 50),
        ("room 412", 1, 50),
        ("bring 60 towels", 1, 50),  # outside the range
        ("zero towels", 1, 50),
        ("99999999999 towels", 1, 50),
        ("we have four, we need two in total", 1, 50),  # a difference below one
        ("a towel", 1, 50),  # "a" is not a count
        # what the guest has and finds too few names no count to bring
        ("one pillow is not enough", 1, 50),
        ("two towels aren't enough for us", 1, 50),
        ("only one blanket", 1, 50),
        ("there are two of us and just four towels", 1, 50),  # more than people: no difference
    ],
)
def test_find_count_refuses(text: str, minimum: int, maximum: int) -> None:
    assert find_count(text, minimum=minimum, maximum=maximum) is None


@pytest.mark.parametrize(
    ("text", "direction", "value"),
    [
        ("half", None, 50),
        ("halfway", None, 50),
        ("a quarter", None, 25),
        ("quarter", None, 25),
        ("three quarters", None, 75),
        ("a third", None, 33),
        ("two thirds", None, 67),
        ("full", None, 100),
        ("max", None, 100),
        ("the maximum", None, 100),
        ("min", None, 0),
        ("lowest", None, 0),
        ("all the way", None, 100),
        ("all the way", "down", 0),
        ("all the way", "up", 100),
        ("all the way down", None, 0),
        ("all the way down", "up", 0),  # said beats the sentence's direction
        ("all the way up", "down", 100),
        ("completely", "down", 0),
        ("right down", None, 0),
        ("fifty percent", None, 50),
        ("50 %", None, 50),
        ("50%", None, 50),
        ("50 per cent", None, 50),
        ("twenty five pct", None, 25),
        ("100%", None, 100),
        ("0 percent", None, 0),
        ("30", None, 30),
        ("thirty", None, 30),
        ("to about half", None, 50),
        ("down to 30", None, 30),
        ("half brightness", None, 50),
        ("the lowest setting", None, 0),
    ],
)
def test_parse_level_accepts(text: str, direction: str | None, value: int) -> None:
    assert parse_level(text, direction=direction) == value  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "minimum", "maximum", "value"),
    [
        ("half", 10, 30, 20),  # a fraction is of the range, not of 100
        ("a quarter", 0, 40, 10),
        ("full", 10, 30, 30),
        ("all the way down", 10, 30, 10),
        ("50 percent", 0, 30, 15),
        ("20", 10, 30, 20),
    ],
)
def test_parse_level_is_relative_to_the_range(
    text: str, minimum: int, maximum: int, value: int
) -> None:
    assert parse_level(text, minimum=minimum, maximum=maximum) == value


@pytest.mark.parametrize(
    "text",
    [
        "",
        "banana",
        "101",  # above the range
        "150%",
        "-5",
        "2.5",
        "99999999999999999",
        "right",  # "right" says which way only with one
        "down",
        "up",
        "30 down",
        "half past six",
        "a couple",
        "half banana",
        "the",
    ],
)
def test_parse_level_refuses(text: str) -> None:
    assert parse_level(text) is None


def test_parse_level_refuses_an_empty_range() -> None:
    assert parse_level("half", minimum=10, maximum=5) is None


@pytest.mark.parametrize(
    ("text", "value", "said"),
    [
        ("dim the lights to half", 50, "half"),
        ("could you dim them to about half", 50, "half"),
        ("dim the lights all the way", 0, "all the way"),  # the sentence goes down
        ("bring the lights down to about forty percent", 40, "forty percent"),
        ("turn the lights up all the way", 100, "all the way"),
        ("lights to 30 please", 30, "30"),
    ],
)
def test_find_level_in_a_sentence(text: str, value: int, said: str) -> None:
    found = find_level(text)
    assert found is not None and (found.value, found.text) == (value, said)


@pytest.mark.parametrize("text", ["", "dim the lights a bit", "make it darker", "lights 500"])
def test_find_level_refuses(text: str) -> None:
    assert find_level(text) is None


@pytest.mark.parametrize(
    ("text", "direction"),
    [
        ("dim the lights all the way", "down"),
        ("turn it down", "down"),
        ("turn it up", "up"),
        ("make it brighter", "up"),
        ("set the lights", None),
        ("turn it up then down", None),
        ("", None),
    ],
)
def test_direction_of(text: str, direction: str | None) -> None:
    assert direction_of(text) == direction


def test_number_spans() -> None:
    tokens = ["Twenty", "three", "and", "7", "a", "hundred", "12345", "oh"]
    assert number_spans(tokens) == [(23, 0, 2), (7, 3, 4)]
    assert number_spans([]) == []


@settings(deadline=None)
@given(st.text(max_size=60))
def test_readers_never_raise_and_stay_in_range(text: str) -> None:
    level = parse_level(text, minimum=5, maximum=60)
    assert level is None or 5 <= level <= 60
    count = parse_count(text, minimum=1, maximum=4)
    assert count is None or 1 <= count <= 4
    number = parse_number(text)
    assert number is None or 0 <= number <= 1000
