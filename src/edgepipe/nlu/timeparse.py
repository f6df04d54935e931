"""Spoken and written times of day: "6:30", "8.30", "0830", "20h30", "8 30 pm", "noon", "half
past six", "half eight", "quarter to seven", "ten to nine", "seven tomorrow", "eight tonight",
and, given the turn's time, "in twenty minutes", "in half an hour", "an hour from now".

Template wildcards hand the words after "wake me at" to :func:`parse_time_of_day`, which either
returns a normalised time or ``None``; it never guesses from words it does not understand.
:func:`find_time` finds a time in a whole sentence (the slot spotter), :func:`mark_until` writes
a speech recogniser's "tell noon" / "un till 2" as "until ..." before template matching, and
:func:`due_at` turns a slot's ``HH:MM`` into the next moment it names. Numbers in words are
:mod:`edgepipe.nlu.quantities`'s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from edgepipe.nlu.quantities import TENS, UNITS, number_at

Prefer = Literal["any", "morning", "afternoon", "daytime"]
"""How an hour without am/pm is read.

``morning``: as said (wake-up calls: "seven" is 07:00). ``afternoon``: 1-6 are p.m. (late
checkout: "at two" is 14:00). ``daytime``: 1-4 are p.m., 5-11 a.m. (a taxi "at three" is
15:00, "at seven" is 07:00). ``any``: as said.
"""

NUMBER_WORDS: dict[str, int] = {**UNITS, "oh": 0}
"""Number words up to nineteen ("oh" as in "six oh five")."""
_TENS = TENS
_FILLER = {
    "at", "around", "about", "by", "for", "the", "like", "say", "maybe", "sharp", "on", "um", "uh",
    "please", "pls", "plz", "kindly", "ideally", "roughly", "approximately", "approx", "sometime",
    "latest", "until", "till", "til", "to", "then", "probably", "preferably", "before",
}  # fmt: skip
_MISHEARD_UNTIL = re.compile(r"\b(?:un\s+till?|untill|untel+|intil+|antil+|tell|til|till|until)\b")
"""A speech recogniser's spellings of "until" (the right ones too, so a parse sees one word)."""
_MISHEARD_ONLY = re.compile(r"\b(?:un\s+till?|untill|untel+|intil+|antil+|tell)\b", re.IGNORECASE)
_RELATIVE_UNITS = {"minute": 1, "minutes": 1, "min": 1, "mins": 1, "hour": 60, "hours": 60}
_RELATIVE_UNITS |= {"hr": 60, "hrs": 60}
_TRAILING_OK = {
    "please", "thanks", "thank", "for", "because", "so", "as", "and", "if", "ok", "okay",
    "instead", "thx", "pls",
}  # fmt: skip
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
    | {"minutes", "minute", "hour", "hours", "in", "an", "a", "from", "now", "couple", "of"}
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
    text = re.sub(r"\b(\d{1,2})h\b", r"\1 oclock", text)  # 20h
    text = re.sub(r"\b(\d{3,4})\s*(?:hours|hrs)\b", r"\1", text)  # 1930 hours
    text = re.sub(r"\b(?:12|twelve)\s+(noon|midday|midnight)\b", r"\1", text)
    text = _MISHEARD_UNTIL.sub(" until ", text)
    text = re.sub(r"\b(?:in the|this|in|during the)\s+(morning|afternoon|evening)\b", r" \1 ", text)
    text = re.sub(r"\b(?:at|in the)\s+night\b", " night ", text)
    text = re.sub(r"[^\w:\s-]", " ", text)
    text = text.replace("-", " ")
    return text.split()


def _number(tokens: list[str], i: int) -> tuple[int, int] | None:
    """A number of up to two digits (or its words) at ``tokens[i]``: (value, tokens used)."""
    num = number_at(tokens, i)
    return num if num is not None and num[0] < 100 else None


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
        if j < len(tokens) and tokens[j] in {
            "past",
            "after",
            "to",
            "before",
            "til",
            "till",
            "until",
        }:
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

    With ``now``, relative times ("in 20 minutes", "in an hour and a half", "half an hour from
    now") are read too."""
    return _parse(text, prefer, now, exact=False)


def _parse(text: str, prefer: Prefer, now: datetime | None, *, exact: bool) -> TimeOfDay | None:
    """:func:`parse_time_of_day`; ``exact``: no word may follow the time ("please" either)."""
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

    if rest[:1] == ["in"] or rest[-2:] == ["from", "now"]:
        if now is None or meridiem is not None or day_offset is not None:
            return None
        return _relative(rest[1:] if rest[0] == "in" else rest[:-2], now, exact)

    clock = _clock(rest)
    if clock is None:
        return None
    hour, minute, used = clock
    if not _ends_well(rest[used:], exact) or not 0 <= minute <= 59:
        return None
    resolved = _resolve_hour(hour, meridiem, prefer)
    if resolved is None or not 0 <= resolved <= 23:
        return None
    return TimeOfDay(hour=resolved, minute=minute, day_offset=day_offset)


def _ends_well(leftover: list[str], exact: bool = False) -> bool:
    """Nothing left after the time, or only words that may follow one ("please", "so ...")."""
    if exact:
        return not leftover
    return not leftover or leftover[0] in _TRAILING_OK or set(leftover) <= _FILLER


_DURATIONS: dict[tuple[str, ...], int] = {
    ("half", "an", "hour"): 30, ("half", "hour"): 30, ("a", "half", "hour"): 30,
    ("a", "quarter", "of", "an", "hour"): 15, ("quarter", "of", "an", "hour"): 15,
    ("a", "quarter", "hour"): 15, ("quarter", "hour"): 15,
}  # fmt: skip


def _duration(tokens: list[str]) -> tuple[int, int] | None:
    """A duration at the start of ``tokens``: (minutes, tokens used). "twenty minutes", "an
    hour", "half an hour", "a quarter of an hour", "an hour and a half", "two and a half
    hours", "a couple of hours", "1 hour 20 minutes"."""
    for phrase, minutes in _DURATIONS.items():
        if tuple(tokens[: len(phrase)]) == phrase:
            return minutes, len(phrase)
    if tokens[:3] == ["a", "couple", "of"]:
        amount, used = 2, 3
    elif tokens[:1] in (["a"], ["an"]):
        amount, used = 1, 1
    else:
        num = _number(tokens, 0)
        if num is None:
            return None
        amount, used = num
    half = tokens[used : used + 3] == ["and", "a", "half"]  # "two and a half hours"
    used += 3 if half else 0
    unit = _RELATIVE_UNITS.get(tokens[used] if used < len(tokens) else "")
    if unit is None:
        return None
    used += 1
    total = amount * unit + (unit // 2 if half else 0)
    if unit == 60 and not half:
        if tokens[used : used + 3] == ["and", "a", "half"]:  # "an hour and a half"
            return total + 30, used + 3
        skip = 1 if tokens[used : used + 1] == ["and"] else 0
        mins = _number(tokens, used + skip)
        after = used + skip + mins[1] if mins else 0
        if (
            mins is not None
            and mins[0] < 60
            and _RELATIVE_UNITS.get(tokens[after] if after < len(tokens) else "") == 1
        ):  # "an hour and twenty minutes"
            return total + mins[0], after + 1
    return total, used


def _relative(tokens: list[str], now: datetime, exact: bool) -> TimeOfDay | None:
    found = _duration(tokens)
    if found is None or not _ends_well(tokens[found[1] :], exact) or not 0 < found[0] <= 24 * 60:
        return None
    then = now + timedelta(minutes=found[0])
    return TimeOfDay(hour=then.hour, minute=then.minute, day_offset=(then.date() - now.date()).days)


# ---------------------------------------------------------------- sentences, slots and rules

_TOKEN = re.compile(r"[a-z0-9]+(?:[:.][0-9]+)?|[^\sa-z0-9]", re.IGNORECASE)
_TIME_CUES = {"noon", "midday", "midnight", "half", "quarter", "oclock", "o'clock", "hour", "hours"}
_TIME_CUES |= {"minutes", "minute", "mins"} | set(NUMBER_WORDS) | set(_TENS)
_ANCHORS = {"at", "by", "around", "until", "till", "til", "before", "about", "in"}
"""Words that introduce a time: "at 8" is a time more surely than "for two"."""
_STRONG = {
    "am", "pm", "oclock", "o'clock", "noon", "midday", "midnight", "half", "quarter", "past",
    "minutes", "minute", "mins", "hour", "hours", "tonight", "morning", "evening", "afternoon",
}  # fmt: skip
_CLOCK_TOKEN = re.compile(r"[0-9]{1,2}[:.h][0-9]{2}|[0-9]{3,4}|[0-9]{1,2}[ap]m|[0-9]{1,2}h")


def _says_a_time(run: list[str], anchored: bool) -> bool:
    """Whether a run of words says a time by itself, not only a number that parses as one: a
    clock ("8:30", "7pm"), a time word ("noon", "half past"), an hour and its minutes ("seven
    thirty"), or any number introduced by "at"/"by"/... ("at 8")."""
    if anchored:
        return True
    numbers = sum(t in NUMBER_WORDS or t in _TENS or t.isdigit() for t in run)
    return numbers >= 2 or any(t in _STRONG or _CLOCK_TOKEN.fullmatch(t) for t in run)


def find_time(
    text: str, *, prefer: Prefer = "any", now: datetime | None = None
) -> tuple[TimeOfDay, str] | None:
    """The time of day said in a whole sentence, with its words: the longest run of words that
    reads as one, a run introduced by "at"/"by"/"until"/... first ("a taxi for two at 8" is
    08:00, not 02:00). A number alone is a time only so introduced ("bring two towels" says no
    time). Relative times need ``now``."""
    tokens = _TOKEN.findall(text.lower())
    best: tuple[tuple[bool, int], TimeOfDay, str] | None = None
    for start in range(len(tokens)):
        for end in range(min(len(tokens), start + 8), start, -1):
            run = tokens[start:end]
            if not any(any(c.isdigit() for c in t) or t in _TIME_CUES for t in run):
                continue
            anchored = run[0] in _ANCHORS or (start > 0 and tokens[start - 1] in _ANCHORS)
            if not _says_a_time(run, anchored):
                continue
            parsed = _parse(" ".join(run), prefer, now, exact=True)
            if parsed is None:
                continue
            score = (anchored, end - start)
            if best is None or score > best[0]:
                best = (score, parsed, " ".join(run))
            break
    return (best[1], best[2]) if best else None


def mark_until(text: str) -> str:
    """``text`` with a misheard "until" ("tell", "untill", "un till") written "until"
    where a time follows it: "late checkout tell noon" reads "late checkout until noon";
    "tell me the time" is left alone."""
    if not _MISHEARD_ONLY.search(text):
        return text

    def fix(match: re.Match[str]) -> str:
        after = re.split(r"[,;!?]|(?<!\d)\.(?!\d)|\band\b", text[match.end() :], maxsplit=1)[0]
        words = after.split()
        for end in range(min(len(words), 6), 0, -1):
            tail = words[end:]
            if (not tail or tail[0].lower() in _TRAILING_OK | set(_DAY_WORDS)) and (
                parse_time_of_day(" ".join(words[:end])) is not None
            ):
                return "until"
        return match.group(0)

    return _MISHEARD_ONLY.sub(fix, text)


_HHMM = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])")


def hhmm_minutes(value: str) -> int | None:
    """Minutes after midnight of a written ``H:MM``/``HH:MM`` ("24:00", the end of a day, is
    1440); ``None`` for anything else."""
    if value.strip() == "24:00":
        return 24 * 60
    m = _HHMM.fullmatch(value.strip())
    return int(m.group(1)) * 60 + int(m.group(2)) if m else None


def due_at(hhmm: str, now: datetime, *, said: str = "", prefer: Prefer = "any") -> datetime | None:
    """The moment a slot's ``HH:MM`` names from ``now``: the day its words said ("tomorrow",
    "tonight"), else its next occurrence (a taxi "at 8:30" asked for at 10:00 is tomorrow's
    08:30); ``None`` when ``hhmm`` is not a time."""
    minutes = hhmm_minutes(hhmm)
    if minutes is None or minutes == 24 * 60:
        return None
    said_time = parse_time_of_day(said, prefer=prefer) if said else None
    day = said_time.day_offset if said_time is not None else None
    if day is None and said:
        day = next((_DAY_WORDS[w] for w in _normalise(said) if w in _DAY_WORDS), None)
    return TimeOfDay(hour=minutes // 60, minute=minutes % 60, day_offset=day).next_occurrence(now)
