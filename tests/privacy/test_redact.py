"""Table-driven and property tests of :func:`edgepipe.privacy.redact.redact`."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from edgepipe.privacy.redact import KINDS, Redaction, redact

# (text, expected text, expected kinds)
EMAILS = [
    ("mail me at jane.doe@example.com", "mail me at <EMAIL>", ("EMAIL",)),
    ("JANE_DOE+hotel@mail.example.co.uk.", "<EMAIL>.", ("EMAIL",)),
    ("a@b.pt and c-d@e-f.org", "<EMAIL> and <EMAIL>", ("EMAIL", "EMAIL")),
]
CARDS = [
    ("card 4111 1111 1111 1111 thanks", "card <CARD> thanks", ("CARD",)),
    ("card 4111-1111-1111-1111", "card <CARD>", ("CARD",)),
    ("4111111111111111", "<CARD>", ("CARD",)),
    ("amex 3782 822463 10005", "amex <CARD>", ("CARD",)),
    ("5500 0000 0000 0004 exp 12/27", "<CARD> exp 12/27", ("CARD",)),
]
PHONES = [
    ("call +351 21 555 0140", "call <PHONE>", ("PHONE",)),
    ("call +44 20 7946 0958 now", "call <PHONE> now", ("PHONE",)),
    ("ring +1-555-123-4567", "ring <PHONE>", ("PHONE",)),
    ("my number is 555-123-4567", "my number is <PHONE>", ("PHONE",)),
    ("my number is 555.123.4567", "my number is <PHONE>", ("PHONE",)),
    ("local 21 555 0140", "local <PHONE>", ("PHONE",)),
    ("mobile 912 345 678", "mobile <PHONE>", ("PHONE",)),
    ("call (555) 123-4567", "call <PHONE>", ("PHONE",)),
    ("call +1 (555) 123-4567", "call <PHONE>", ("PHONE",)),
]
ROOMS = [
    ("room 412", "room <ROOM>", ("ROOM",)),
    ("send it to Room 412 please", "send it to Room <ROOM> please", ("ROOM",)),
    ("suite 1203", "suite <ROOM>", ("ROOM",)),
    ("rm 7", "rm <ROOM>", ("ROOM",)),
    ("rm. 7", "rm. <ROOM>", ("ROOM",)),
    ("ROOM #12", "ROOM #<ROOM>", ("ROOM",)),
    ("room number 305", "room number <ROOM>", ("ROOM",)),
    ("room no. 5", "room no. <ROOM>", ("ROOM",)),
    ("room412", "room<ROOM>", ("ROOM",)),
]
NUMBERS = [
    ("booking 123456789", "booking <NUMBER>", ("NUMBER",)),
    ("ref 12345 and 678901", "ref <NUMBER> and <NUMBER>", ("NUMBER",) * 2),
    ("passport X1234567", "passport <ID>", ("ID",)),
]
UNCHANGED = [
    "set the thermostat to 22",
    "dim the lights to 30 percent",
    "wake me up at 6:30 tomorrow",
    "bring me 4 towels",
    "pool opens at 0700",
    "the bathroom 12 is fine",
    "late checkout until 12:30 on 14/07",
    "",
    "   ",
    "Olá, está tudo bem? 東京",
]

ALL_CASES = EMAILS + CARDS + PHONES + ROOMS + NUMBERS


@pytest.mark.parametrize(("text", "expected", "kinds"), ALL_CASES)
def test_redacts_personal_data(text, expected, kinds):
    result = redact(text)
    assert isinstance(result, Redaction)
    assert result.text == expected
    assert result.kinds == kinds


@pytest.mark.parametrize("text", UNCHANGED)
def test_text_without_personal_data_comes_back_unchanged(text):
    assert redact(text) == Redaction(text=text, kinds=())


def test_room_number_stated_in_a_sentence_is_redacted():
    """The guest's room number is personal data however it is phrased."""
    result = redact("my email is jane.doe@example.com and my room is 412, call +351 21 555 0140")
    assert "412" not in result.text, result.text
    assert "ROOM" in result.kinds


@pytest.mark.parametrize(
    ("text", "names", "expected", "count"),
    [
        ("this is Ann in 412", ["Ann"], "this is <NAME> in 412", 1),
        ("ann, ANN and Ann", ["Ann"], "<NAME>, <NAME> and <NAME>", 3),
        ("the Annual fee", ["Ann"], "the Annual fee", 0),
        ("Joanne and Hannah", ["Ann", "Anna"], "Joanne and Hannah", 0),
        ("Jane Doe and Jane", ["Jane", "Jane Doe"], "<NAME> and <NAME>", 2),
        ("Mr O'Brien called", ["O'Brien"], "Mr <NAME> called", 1),
        ("Zoë Ødegaard", ["zoë", "ødegaard"], "<NAME> <NAME>", 2),
        ("a (b) c", ["(b)"], "a <NAME> c", 1),  # regex characters are literal
        ("ask J.R. about it", ["J.R."], "ask <NAME> about it", 1),
        ("my name is name", ["name"], "my <NAME> is <NAME>", 2),
        ("nothing here", ["", "  "], "nothing here", 0),
    ],
)
def test_names_are_redacted_case_insensitively_as_whole_words(text, names, expected, count):
    result = redact(text, names=names)
    assert result.text == expected
    assert result.kinds == ("NAME",) * count


def test_names_are_stripped_and_regex_characters_are_literal():
    assert redact("ask a.b about it", names=[" a.b "]).text == "ask <NAME> about it"
    assert redact("ask axb about it", names=["a.b"]).text == "ask axb about it"


def test_names_accept_any_iterable():
    assert redact("hi Ann", names=iter(["Ann"])).text == "hi <NAME>"
    assert redact("hi Ann", names=("Ann",)).text == "hi <NAME>"


def test_kinds_are_recorded_one_per_replacement_in_pattern_order():
    text = (
        "Ann in room 412: call 555-123-4567 or +351 21 555 0140, mail guest@example.com, "
        "card 4111 1111 1111 1111, booking 98765432"
    )
    result = redact(text, names=["Ann"])
    assert result.text == (
        "<NAME> in room <ROOM>: call <PHONE> or <PHONE>, mail <EMAIL>, card <CARD>, "
        "booking <NUMBER>"
    )
    assert result.kinds == ("EMAIL", "NAME", "CARD", "PHONE", "PHONE", "ROOM", "NUMBER")


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("write to jane.doe@gmail.com", ["Doe"]),
        ("write to ann@acme-corp.com", ["Ann"]),
    ],
)
def test_a_name_list_never_weakens_email_redaction(text, names):
    """Without names the whole address is replaced; giving a guest name must not leave the
    rest of the address (other name parts, the domain) in the text."""
    assert redact(text).text == "write to <EMAIL>"
    result = redact(text, names=names)
    assert "@" not in result.text, result.text
    assert ".com" not in result.text, result.text


def test_redact_does_not_touch_the_input():
    text = "call 555-123-4567"
    redact(text)
    assert text == "call 555-123-4567"


# ---------------------------------------------------------------------------------- properties

_personal_bits = st.sampled_from(
    [
        "jane.doe@example.com",
        "4111 1111 1111 1111",
        "+351 21 555 0140",
        "555-123-4567",
        "room 412",
        "rm. 7",
        "suite #9",
        "123456",
        "Ann",
        "<EMAIL>",
        "<ROOM>",
        "@",
        ".",
        "-",
        " ",
        "+",
        "(",
        ")",
        "#",
    ]
)
_fragments = st.sampled_from(
    [
        *("1", "12", "123", "1234", "12345", " ", "-", ".", "+", "(", ")", "#", "@", "_", "<", ">"),
        *("room", "rm.", "suite", "no.", "number", "a", "x.y", "\u0663"),
    ]
)
_texty = st.one_of(
    st.text(),
    st.text(alphabet="0123456789 -.+()#@abcmoritesu_<>"),
    st.lists(st.one_of(_personal_bits, st.text(max_size=4)), max_size=12).map("".join),
    st.lists(_fragments, max_size=25).map("".join),
)


@settings(max_examples=400, deadline=None)
@given(_texty)
@example("my email is jane.doe@example.com and my room is 412, call +351 21 555 0140")
@example("room 1 23 45 6789 12345678901234 5")
def test_redact_never_raises_and_is_idempotent(text):
    once = redact(text)
    assert isinstance(once.text, str)
    assert all(kind in KINDS for kind in once.kinds)
    if not once.kinds:
        assert once.text == text
    assert redact(once.text).text == once.text


@settings(max_examples=200, deadline=None)
@given(_texty, st.lists(st.text(max_size=8), max_size=3))
def test_redact_with_arbitrary_names_never_raises(text, names):
    result = redact(text, names=names)
    assert isinstance(result.text, str)
    assert result.kinds.count("NAME") <= result.text.count("<NAME>")
