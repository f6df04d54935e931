"""Spoken and written times of day: "6:30", "half past six", "quarter to seven", "seven tomorrow".

Template wildcards hand the words after "wake me at" to :func:`parse_time_of_day`, which either
returns a normalised time or ``None``; it never guesses from words it does not understand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

Prefer = Literal["any", "morning", "afternoon", "daytime"]
"""How an hour without am/pm is read.

``morning``: as said (wake-up calls: "seven" is 07:00). ``afternoon``: 1-6 are p.m. (late
checkout: "at two" is 14:00). ``daytime``: 1-4 are p.m., 5-11 a.m. (a taxi "at three" is
15:00, "at seven" is 07:00). ``any``: as said.
"""

NUMBER_WORDS: dict[str, int] = {
    "zero": 0, "oh": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19,
}  # fmt: skip
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50}
_FILLER = {
    "at", "around", "about", "by", "for", "the", "like", "say", "maybe", "sharp", "on", "um", "uh",
    "please", "pls", "plz", "kindly", "ideally", "roughly", "approximately", "approx", "sometime",
    "latest", "until", "till", "til", "to", "then", "probably", "preferably",
}  # fmt: skip
_TRAILING_OK = {
    "please",
    "thanks",
    "thank",
    "for",
    "because",
    "so",
    "as",
    "and",
    "if",
    "ok",
    "okay",
    "instead",
    "thx",
    "pls",
}
_MORNING = {"am", "morning"}
_EVENING = {"pm", "afternoon", "evening", "tonight", "night"}
_DAY_WORDS = {"today": 0, "tonight": 0, "tomorrow": 1}
MERIDIEM_WORDS = frozenset(_MORNING | _EVENING)
"""Words that say which half of the day an hour is in ("7 pm", "8 tonight")."""
DAY_PARTS = MERIDIEM_WORDS - {"am", "pm"}
"""The same, said apart from the hour ("book a table tonight at 8"); "am" also means "I am"."""
VOCABULARY = frozenset(
    {*NUMBER_WORDS, *_TENS, *_FILLER, *_TRAILING_OK, *_MORNING, *_EVENING, *_DAY_WORDS}
    | {"half", "quarter", "past", "after", "to", "before", "noon", "midday", "midnight", "oclock"}
    | {"minutes", "minute", "hour", "hours", "in", "an", "a"}
)
"""Words the time parser understands (spelling correction must not 'fix' them away)."""


@dataclass(frozen=True, slots=True)
class TimeOfDay:
    """A parsed time of day."""

    hour: int
    minute: int
    day_offset: int | None = None
    """0 for "today"/"tonight", 1 for "tomorrow", None when not said."""

    @property
    def hhmm(self) -> str:
        """``HH:MM`` in 24-hour form."""
        return f"{self.hour:02d}:{self.minute:02d}"

    def next_occurrence(self, now: datetime) -> datetime:
        """The datetime this time refers to, from ``now`` (the next one when no day was said)."""
        base = now.replace(hour=self.hour, minute=self.minute, second=0, microsecond=0)
        if self.day_offset is not None:
            return base + timedelta(days=self.day_offset)
        return base if base > now else base + timedelta(days=1)


def _normalise(text: str) -> list[str]:
    text = text.lower()
    text = re.sub(r"\b([ap])\.?\s?m\b\.?", r" \1m ", text)  # 7a.m. / 7 p.m / 7pm
    text = re.sub(r"(\d)([ap]m)\b", r"\1 \2", text)
    text = text.replace("o'clock", " oclock ").replace("o’clock", " oclock ")
    text = re.sub(r"(\d)[.h](\d\d)\b", r"\1:\2", text)  # 6.30 / 6h30
    text = re.sub(r"\b(?:in the|this|in|during the)\s+(morning|afternoon|evening)\b", r" \1 ", text)
    text = re.sub(r"\b(?:at|in the)\s+night\b", " night ", text)
    text = re.sub(r"[^\w:\s-]", " ", text)
    text = text.replace("-", " ")
    return text.split()


def _number(tokens: list[str], i: int) -> tuple[int, int] | None:
    """A number starting at ``tokens[i]``: (value, tokens used)."""
    if i >= len(tokens):
        return None
    tok = tokens[i]
    if tok.isascii() and tok.isdigit() and len(tok) <= 2:
        return int(tok), 1
    if tok in _TENS:
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        if nxt in NUMBER_WORDS and 1 <= NUMBER_WORDS[nxt] <= 9 and nxt != "oh":
            return _TENS[tok] + NUMBER_WORDS[nxt], 2
        return _TENS[tok], 1
    if tok in NUMBER_WORDS and tok != "oh":
        return NUMBER_WORDS[tok], 1
    return None


def _minutes(tokens: list[str], i: int) -> tuple[int, int] | None:
    """Minutes for "<minutes> past/to <hour>": a number, "quarter", "half"."""
    if i < len(tokens) and tokens[i] == "a":
        inner = _minutes(tokens, i + 1)
        return (inner[0], inner[1] + 1) if inner else None
    if i < len(tokens) and tokens[i] == "quarter":
        return 15, 1
    if i < len(tokens) and tokens[i] == "half":
        return 30, 1
    num = _number(tokens, i)
    if num is None:
        return None
    used = num[1]
    if i + used < len(tokens) and tokens[i + used] in {"minutes", "minute", "mins", "min"}:
        used += 1
    return num[0], used


def _clock(tokens: list[str]) -> tuple[int, int, int] | None:
    """Parse the clock part at the start of ``tokens``: (hour, minute, tokens used)."""
    if not tokens:
        return None
    first = tokens[0]
    if first in {"noon", "midday"}:
        return 12, 0, 1
    if first == "midnight":
        return 0, 0, 1
    m = re.fullmatch(r"([0-9]{1,2}):([0-9]{2})", first)
    if m:
        return int(m.group(1)), int(m.group(2)), 1
    m = re.fullmatch(r"([0-9]{1,2})([0-9]{2})", first)  # "0630", "630"
    if m and len(first) in (3, 4):
        return int(m.group(1)), int(m.group(2)), 1
    # "<minutes> past|after|to|before <hour>"
    mins = _minutes(tokens, 0)
    if mins is not None:
        j = mins[1]
        if j < len(tokens) and tokens[j] in {"past", "after", "to", "before", "til", "till"}:
            hour = _number(tokens, j + 1)
            if hour is None:
                return None
            if tokens[j] in {"past", "after"}:
                return hour[0], mins[0], j + 1 + hour[1]
            return (hour[0] - 1) % 24 if hour[0] != 0 else 23, 60 - mins[0], j + 1 + hour[1]
    # "half six" (British: 6:30)
    if first == "half":
        hour = _number(tokens, 1)
        if hour is not None:
            return hour[0], 30, 1 + hour[1]
        return None
    hour = _number(tokens, 0)
    if hour is None:
        return None
    used = hour[1]
    if used < len(tokens) and tokens[used] == "oclock":
        return hour[0], 0, used + 1
    # "six oh five", "seven thirty", "6 30"
    if used < len(tokens) and tokens[used] == "oh":
        minute = _number(tokens, used + 1)
        if minute is not None and minute[0] < 10:
            return hour[0], minute[0], used + 1 + minute[1]
    minute = _number(tokens, used)
    if minute is not None and 10 <= minute[0] <= 59:
        return hour[0], minute[0], used + minute[1]
    return hour[0], 0, used


def _resolve_hour(hour: int, meridiem: str | None, prefer: Prefer) -> int | None:
    if meridiem is not None:
        if not 1 <= hour <= 12:
            return hour if meridiem == "pm" and hour > 12 and hour < 24 else None
        if meridiem == "am":
            return 0 if hour == 12 else hour
        return 12 if hour == 12 else hour + 12
    if hour > 12 or hour == 0:
        return hour if hour < 24 else None
    if prefer == "afternoon" and 1 <= hour <= 6:
        return hour + 12
    if prefer == "daytime" and 1 <= hour <= 4:
        return hour + 12
    return hour


def parse_time_of_day(
    text: str, *, prefer: Prefer = "any", now: datetime | None = None
) -> TimeOfDay | None:
    """Parse a time of day; ``None`` when the words are not (only) a time.

    With ``now``, relative times ("in 20 minutes", "in an hour") are supported too.
    """
    tokens = _normalise(text)
    day_offset: int | None = None
    meridiem: str | None = None
    rest: list[str] = []
    for tok in tokens:
        if tok in _DAY_WORDS:
            day_offset = _DAY_WORDS[tok]
            if tok == "tonight":
                meridiem = meridiem or "pm"
        elif tok in _MORNING or tok in _EVENING:
            meridiem = "am" if tok in _MORNING else "pm"
        else:
            rest.append(tok)
    while rest and rest[0] in _FILLER:
        rest.pop(0)

    if now is not None and rest[:1] == ["in"]:
        return _relative(rest[1:], now)

    clock = _clock(rest)
    if clock is None:
        return None
    hour, minute, used = clock
    leftover = rest[used:]
    if leftover and leftover[0] not in _TRAILING_OK and not set(leftover) <= _FILLER:
        return None
    if not 0 <= minute <= 59:
        return None
    resolved = _resolve_hour(hour, meridiem, prefer)
    if resolved is None or not 0 <= resolved <= 23:
        return None
    return TimeOfDay(hour=resolved, minute=minute, day_offset=day_offset)


def _relative(tokens: list[str], now: datetime) -> TimeOfDay | None:
    if tokens[:1] in (["an"], ["a"]):
        amount, used = 1, 1
    elif tokens[:1] == ["half"] and tokens[1:3] == ["an", "hour"]:
        return _shift(now, timedelta(minutes=30))
    else:
        num = _number(tokens, 0)
        if num is None:
            return None
        amount, used = num
    unit = tokens[used] if used < len(tokens) else ""
    if unit.startswith("min"):
        return _shift(now, timedelta(minutes=amount))
    if unit.startswith("hour"):
        return _shift(now, timedelta(hours=amount))
    return None


def _shift(now: datetime, delta: timedelta) -> TimeOfDay:
    then = now + delta
    return TimeOfDay(hour=then.hour, minute=then.minute, day_offset=(then.date() - now.date()).days)
