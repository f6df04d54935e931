"""Amounts said in words: numbers ("twenty five"), counts ("a couple of", "two more", "another
one") and levels of a range ("half", "three quarters", "all the way down", "50 %").

Every reader returns the canonical value or ``None``; none of them guesses from words it does
not know. The sizes are explicit: "a couple" and "a pair" are 2, "a dozen" 12; "a few",
"several" and "some" are *not* counts (they name no number), so a slot said that way keeps its
default. Times of day are :mod:`edgepipe.nlu.timeparse`'s; both are used by the template
matcher, the slot spotter, the business rules and :func:`edgepipe.nlu.values.normalise_value`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

UNITS: dict[str, int] = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19,
}  # fmt: skip
TENS: dict[str, int] = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
    "eighty": 80, "ninety": 90,
}  # fmt: skip
MAX_NUMBER = 1000
"""The largest number any reader accepts; longer digit strings are refused, not truncated."""

Direction = Literal["up", "down"]

COUNT_PHRASES: dict[tuple[str, ...], int] = {
    ("a", "couple", "of"): 2, ("a", "couple"): 2, ("couple", "of"): 2, ("couple",): 2,
    ("a", "pair", "of"): 2, ("a", "pair"): 2, ("pair", "of"): 2,
    ("half", "a", "dozen"): 6, ("a", "dozen"): 12, ("dozen",): 12,
    ("another", "one"): 1, ("another",): 1, ("a", "single"): 1, ("single",): 1,
}  # fmt: skip
"""Count words with the number they mean (longest first when read)."""
_MORE = {"more", "extra", "additional", "else"}
_OWNERS = {
    "we", "i", "they", "there", "already", "still", "only", "just", "we've", "i've", "they've",
}  # fmt: skip
_OWN = {"have", "has", "got", "are", "is"}
_OWNED = {"there's", "theres", "we've", "i've", "already", "only", "still"}
"""Words before a number that make it a count the guest already has: "we have two", "there
are two", "we've got two", "only two" (but "can we have two" asks for two)."""
_ASKING = {"can", "could", "may", "might", "would", "will", "please", "do", "did", "shall"}
_PEOPLE = {"people", "persons", "guests", "adults", "kids", "children"}
_SCARCE = {"just", "only", "merely"}
_NOT_ENOUGH = {"isn't", "isnt", "aren't", "arent", "not", "won't", "wont", "doesn't", "doesnt"}
"""Words shortly after a number that say it is what the guest has, and too few: "one pillow
isn't going to cut it", "two towels are not enough"."""
_TOTAL = {"total", "altogether"}
_NOT_A_COUNT_BEFORE = {"room", "number", "floor", "at", "by", "until", "till", "in"}
_NOT_A_COUNT_AFTER = {
    "am", "pm", "oclock", "o'clock", "minutes", "minute", "mins", "hours", "hour", "percent",
    "degrees", "degree", "h",
}  # fmt: skip

_FRACTIONS: dict[tuple[str, ...], float] = {
    ("half",): 0.5, ("a", "half"): 0.5, ("halfway",): 0.5, ("half", "way"): 0.5,
    ("one", "half"): 0.5, ("quarter",): 0.25, ("a", "quarter"): 0.25, ("one", "quarter"): 0.25,
    ("three", "quarters"): 0.75, ("three", "quarter"): 0.75, ("a", "third"): 1 / 3,
    ("one", "third"): 1 / 3, ("two", "thirds"): 2 / 3,
}  # fmt: skip
_TOP = {"full", "fully", "max", "maximum", "highest", "brightest", "top"}
_BOTTOM = {"min", "minimum", "lowest", "dimmest", "bottom"}
_ALL_THE_WAY = {("all", "the", "way"), ("completely",), ("as", "far", "as", "possible")}
_NEEDS_WAY = {("right",)}
"""Says "as far as it goes" only with a direction: "right down", "right up"."""
_LEVEL_LEAD = {
    "to", "at", "about", "around", "roughly", "approximately", "like", "maybe", "the", "its",
    "it's", "on", "up", "down", "just",
}  # fmt: skip
_LEVEL_TAIL = {"brightness", "level", "power", "setting", "please", "mark"}
_DOWN_WORDS = {"down", "dim", "dimmer", "dimmed", "lower", "reduce", "darker", "softer", "low"}
_UP_WORDS = {"up", "brighter", "raise", "increase", "brighten", "higher"}
_PERCENT = {"percent", "pct"}
_TOKEN = re.compile(r"-?[0-9]+(?:[:.,][0-9]+)*|[a-z]+(?:'[a-z]+)?")


def words(text: str) -> list[str]:
    """Lower-case words and numbers of ``text``: ``%`` reads "percent", "per cent" is one word,
    hyphens between words split them ("twenty-five"); "8:30" and "2.5" stay one token (neither
    is a number), a negative number keeps its sign (nor is it)."""
    text = re.sub(r"\bper\s+cent\b", "percent", text.lower()).replace("%", " percent ")
    return _TOKEN.findall(text)


def number_at(tokens: Sequence[str], i: int) -> tuple[int, int] | None:
    """The number starting at ``tokens[i]`` (digits or words): (value, tokens used)."""
    if i >= len(tokens):
        return None
    tok = tokens[i]
    if tok.isascii() and tok.isdigit():
        return (int(tok), 1) if len(tok) <= 4 and int(tok) <= MAX_NUMBER else None
    nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
    if tok in {"a", "one"} and nxt == "hundred":
        return 100, 2
    if tok in TENS:
        if nxt in UNITS and 0 < UNITS[nxt] < 10:
            return TENS[tok] + UNITS[nxt], 2
        return TENS[tok], 1
    if tok in UNITS:
        return UNITS[tok], 1
    return None


def number_spans(tokens: Sequence[str]) -> list[tuple[int, int, int]]:
    """Every number in ``tokens`` (as split by the caller, any case): (value, start, end) with
    ``end`` exclusive."""
    lowered = [t.lower() for t in tokens]
    found: list[tuple[int, int, int]] = []
    i = 0
    while i < len(lowered):
        num = number_at(lowered, i) if lowered[i] != "a" else None
        if num is not None:
            found.append((num[0], i, i + num[1]))
            i += num[1]
        else:
            i += 1
    return found


def parse_number(text: str) -> int | None:
    """A whole number said alone ("25", "twenty five", "twenty-five", "a hundred"); ``None``
    for anything else, a fraction, a negative number or one over :data:`MAX_NUMBER`."""
    tokens = words(text)
    num = number_at(tokens, 0)
    if num is None or num[1] != len(tokens):
        return None
    return num[0]


# --------------------------------------------------------------------------- counts


@dataclass(frozen=True, slots=True)
class Found:
    """An amount found in a sentence, with the words that said it."""

    value: int
    text: str


def _count_phrase(tokens: Sequence[str], i: int) -> tuple[int, int] | None:
    for length in (3, 2, 1):
        phrase = tuple(tokens[i : i + length])
        if len(phrase) == length and phrase in COUNT_PHRASES:
            if phrase[0] == "another" and (after := number_at(tokens, i + 1)) is not None:
                return after[0], 1 + after[1]  # "another two towels" is 2
            return COUNT_PHRASES[phrase], length
    return None


def _owned(tokens: Sequence[str], i: int) -> bool:
    before = tokens[i - 1] if i >= 1 else ""
    before2 = tokens[i - 2] if i >= 2 else ""
    asked = i >= 3 and tokens[i - 3] in _ASKING  # "can we have two"
    return before in _OWNED or (before in _OWN and before2 in _OWNERS and not asked)


def _party(tokens: Sequence[str], i: int, used: int) -> bool:
    """A number of people: "five of us", "we are four", "for three people"."""
    after = tuple(tokens[i + used : i + used + 2])
    return (
        after == ("of", "us")
        or (after[:1] and after[0] in _PEOPLE)
        or (i >= 2 and (tokens[i - 2], tokens[i - 1]) == ("we", "are"))
        or (i >= 1 and tokens[i - 1] == "we're")
    )


def _too_few(tokens: Sequence[str], i: int, used: int) -> bool:
    """A number the guest has and finds too few: "just two towels", "one pillow isn't enough"."""
    if i >= 1 and tokens[i - 1] in _SCARCE:
        return True
    return any(t in _NOT_ENOUGH for t in tokens[i + used : i + used + 3])


def find_count(text: str, *, minimum: int = 1, maximum: int | None = None) -> Found | None:
    """How many the guest asks for, read from a phrase or a whole sentence.

    A count qualified by "more"/"extra"/"additional" is the number to bring, whatever else is
    said: "we have two, bring two more" is 2, "we have three towels, one more please" is 1. A
    number the guest already has ("we have two", "there are two", "just two towels", "one
    pillow isn't enough") is not a count, unless a total is said beside it ("we have two, we
    need four in total" is 2) or the number of people ("five of us and just two towels" is 3).
    A number of people alone is the count ("a table for four people"). Count words are read
    ("a couple of" 2, "a pair of" 2, "another one" 1); times, percentages and room numbers are
    not counts. ``None`` when no count is said, or it lies outside ``[minimum, maximum]``."""
    tokens = words(text)
    more: list[Found] = []
    plain: list[Found] = []
    owned: list[Found] = []
    party: list[Found] = []
    i = 0
    while i < len(tokens):
        phrase = _count_phrase(tokens, i)
        read = phrase or (number_at(tokens, i) if tokens[i] != "a" else None)
        if read is None:
            i += 1
            continue
        value, used = read
        before = tokens[i - 1] if i else ""
        after = tokens[i + used] if i + used < len(tokens) else ""
        said = Found(value, " ".join(tokens[i : i + used]))
        if phrase is None and (before in _NOT_A_COUNT_BEFORE or after in _NOT_A_COUNT_AFTER):
            pass  # a time, a percentage, a room: not a count
        elif after in _MORE or tokens[i] == "another":
            more.append(said)
        elif phrase is None and _party(tokens, i, used):
            party.append(said)
        elif _owned(tokens, i) or _too_few(tokens, i, used):
            owned.append(said)
        else:
            plain.append(said)
        i += used
    chosen: Found | None = None
    if more:
        chosen = more[0]
    elif party and owned and party[0].value > owned[0].value and not plain:
        chosen = Found(party[0].value - owned[0].value, owned[0].text)
    elif plain and owned and _TOTAL.intersection(tokens):
        chosen = Found(plain[0].value - owned[0].value, plain[0].text)
    elif plain:
        chosen = plain[0]
    elif party and not owned:
        chosen = party[0]
    if chosen is None or chosen.value < minimum or (maximum is not None and chosen.value > maximum):
        return None
    return chosen


def parse_count(text: str, *, minimum: int = 1, maximum: int | None = None) -> int | None:
    """:func:`find_count`'s value."""
    found = find_count(text, minimum=minimum, maximum=maximum)
    return found.value if found is not None else None


# --------------------------------------------------------------------------- levels


def direction_of(text: str) -> Direction | None:
    """Which way a sentence moves a level: "dim them down" is ``down``, "turn it up" ``up``;
    ``None`` when it says neither, or both as often."""
    tokens = words(text)
    down = sum(t in _DOWN_WORDS for t in tokens)
    up = sum(t in _UP_WORDS for t in tokens)
    if down == up:
        return None
    return "down" if down > up else "up"


def _of_range(fraction: float, minimum: int, maximum: int) -> int:
    return minimum + int((maximum - minimum) * fraction + 0.5)


def parse_level(
    text: str,
    *,
    minimum: int = 0,
    maximum: int = 100,
    direction: Direction | None = None,
) -> int | None:
    """A level of the range ``[minimum, maximum]`` said alone.

    A number is the level as said ("30"); a percentage is of the range ("fifty percent",
    "50 %"); "half" is the range's middle, "a quarter", "three quarters" and the thirds the
    points between; "full", "max" and "all the way up" its top; "min", "lowest" and "all the
    way down" its bottom. "All the way" (or "completely") alone goes ``direction``, the top when
    none is given: the caller passes ``down`` for "dim the lights all the way". Words around
    the level ("to", "about", "brightness") are allowed; anything else, or a level outside the
    range, is ``None``."""
    tokens = words(text)
    while tokens and tokens[0] in _LEVEL_LEAD:
        tokens = tokens[1:]
    while tokens and tokens[-1] in _LEVEL_TAIL:
        tokens = tokens[:-1]
    said: Direction | None = None
    if len(tokens) > 1 and tokens[-1] in {"up", "down", "off"}:
        said = "up" if tokens[-1] == "up" else "down"
        tokens = tokens[:-1]
    if not tokens or minimum > maximum:
        return None
    key = tuple(tokens)
    if key in _FRACTIONS and said is None:
        return _of_range(_FRACTIONS[key], minimum, maximum)
    if key in _ALL_THE_WAY or (key in _NEEDS_WAY and said is not None):
        return maximum if (said or direction or "up") == "up" else minimum
    if len(key) == 1 and key[0] in _TOP | _BOTTOM and said is None:
        return maximum if key[0] in _TOP else minimum
    num = number_at(tokens, 0)
    if num is None or said is not None:
        return None
    value, used = num
    rest = tokens[used:]
    if rest in (["percent"], ["pct"]):
        return _of_range(value / 100, minimum, maximum) if value <= 100 else None
    if rest:
        return None
    return value if minimum <= value <= maximum else None


def find_level(
    text: str,
    *,
    minimum: int = 0,
    maximum: int = 100,
    direction: Direction | None = None,
) -> Found | None:
    """The first level said in a sentence (its longest reading at the earliest place), for a
    slot the templates did not fill: "could you dim them to about half" is the middle.
    ``direction`` defaults to the sentence's own (:func:`direction_of`)."""
    tokens = words(text)
    way = direction if direction is not None else direction_of(text)
    for start in range(len(tokens)):
        if tokens[start] in _LEVEL_LEAD:
            continue
        for end in range(min(len(tokens), start + 5), start, -1):
            if tokens[end - 1] in _LEVEL_TAIL or tokens[end - 1] in _LEVEL_LEAD - {"up", "down"}:
                continue  # the words around a level are not part of it
            phrase = " ".join(tokens[start:end])
            value = parse_level(phrase, minimum=minimum, maximum=maximum, direction=way)
            if value is not None:
                return Found(value, phrase)
    return None
