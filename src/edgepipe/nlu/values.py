"""A slot's canonical value from what was said or written: the one place that decides it.

The template matcher (every hassil match), the slot spotter's lists, the local model's slot
filler (through :func:`edgepipe.nlu.templates.normalise_slot`) and a checker of a model's answer
all call :func:`normalise_value`, which reads times with :mod:`edgepipe.nlu.timeparse` and
numbers, counts and levels with :mod:`edgepipe.nlu.quantities`:

======================  ==========================================================  =========
slot                    accepts                                                     gives
======================  ==========================================================  =========
``type: time``          "noon", "half eight", "8.30", "in twenty minutes" (``now``)  ``HH:MM``
``type: number``        12, "12", "twelve", "21.5" inside the range list             int/float
``quantity: count``     also "a couple of", "another one", "we have two, two more"  int
``quantity: level``     also "half", "three quarters", "all the way down", "50 %"   int
``type: text``          a list value's output or any of its spoken forms            its output
======================  ==========================================================  =========

``None`` means the value cannot be used (not a time, out of the list's range, not a value of
the list); it never raises.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from functools import lru_cache

from hassil.parse_expression import parse_sentence
from hassil.sample import sample_expression

from edgepipe.core.types import SlotScalar
from edgepipe.nlu.quantities import direction_of, parse_count, parse_level, parse_number
from edgepipe.nlu.timeparse import DAY_PARTS, MERIDIEM_WORDS, parse_time_of_day
from edgepipe.pack.content_schema import SlotListSpec, SlotSpec

_WORD = re.compile(r"[a-z][a-z']*")
_DECIMAL = re.compile(r"[0-9]{1,4}\.[0-9]{1,3}")


def day_part(sentence: str, slot_text: str) -> str:
    """The words of ``sentence`` that say which half of the day a time slot's hour is in, when
    the slot's own words do not: "book a table tonight at 8" fills the slot with "8", and
    "tonight" makes it 20:00."""
    if MERIDIEM_WORDS.intersection(_WORD.findall(slot_text.lower())):
        return ""
    return " ".join(w for w in _WORD.findall(sentence.lower()) if w in DAY_PARTS)


def relative_frame(sentence: str, slot_text: str) -> str | None:
    """``slot_text`` with the words around it that make it a time from now, when the sentence
    has them outside the slot: "a taxi in {twenty minutes}" -> "in twenty minutes", "a taxi
    {an hour} from now" -> "an hour from now"; ``None`` otherwise."""
    said = re.escape(" ".join(slot_text.lower().split()))
    low = " ".join(sentence.lower().split())
    if not said:
        return None
    if re.search(rf"\bin\s+{said}(?!\w)", low):
        return f"in {slot_text}"
    if re.search(rf"(?<!\w){said}\s+from\s+now\b", low):
        return f"{slot_text} from now"
    return None


def normalise_time(
    spec: SlotSpec, raw: str, *, now: datetime | None = None, context: str = ""
) -> str | None:
    """A time slot's ``HH:MM`` from its words (``context``: the whole request, for "tonight"
    or "in" said beside the slot), by the slot's ``prefer``; ``None`` when it is not a time."""
    text = " ".join(raw.split())
    if not text:
        return None
    framed = relative_frame(context, text) if context and now is not None else None
    if framed is not None and (rel := parse_time_of_day(framed, now=now)) is not None:
        return rel.hhmm
    hint = day_part(context, text) if context else ""
    parsed = parse_time_of_day(f"{text} {hint}".strip(), prefer=spec.prefer, now=now)
    return parsed.hhmm if parsed is not None else None


def _bounds(slot_list: SlotListSpec | None) -> tuple[int | None, int | None]:
    if slot_list is None or slot_list.range is None:
        return None, None
    return slot_list.range.from_, slot_list.range.to


def normalise_number(
    spec: SlotSpec,
    raw: str | int | float,
    *,
    slot_list: SlotListSpec | None = None,
    context: str = "",
) -> int | float | None:
    """A number slot's value: a number inside the slot's range list (when given), said as
    digits or words; a count or level word too when the slot declares its ``quantity``."""
    low, high = _bounds(slot_list)
    if isinstance(raw, bool):
        return None
    value: int | float | None
    if isinstance(raw, int | float):
        value = int(raw) if float(raw).is_integer() else raw
    elif spec.quantity == "level":
        way = direction_of(raw) or (direction_of(context) if context else None)
        value = parse_level(
            raw,
            minimum=0 if low is None else low,
            maximum=100 if high is None else high,
            direction=way,
        )
    elif spec.quantity == "count":
        value = parse_count(raw, minimum=1 if low is None else low, maximum=high)
    else:
        value = parse_number(raw)
        if value is None and _DECIMAL.fullmatch(raw.strip()):
            number = float(raw)
            value = int(number) if number.is_integer() else number
    if value is None or not math.isfinite(value):
        return None
    if (low is not None and value < low) or (high is not None and value > high):
        return None
    return value


@lru_cache(maxsize=512)
def spoken_forms(template: str) -> tuple[str, ...]:
    """Every wording a list value's ``in`` template stands for, lower case ("(tv|telly)" ->
    "tv", "telly")."""
    try:
        sentence = parse_sentence(template, keep_text=True)
    except Exception:  # hassil raises ParseError, AssertionError, ValueError
        return (" ".join(template.lower().split()),)
    said = {" ".join(s.lower().split()) for s in sample_expression(sentence.expression)}
    return tuple(sorted(said - {""}))


def normalise_text(raw: str | int, slot_list: SlotListSpec | None = None) -> str | int | None:
    """A text slot's value: with a values list, the output of the value ``raw`` is (its
    output) or says (one of its spoken forms); without one, the stripped text."""
    said = " ".join(str(raw).split())
    if not said:
        return None
    if slot_list is None or slot_list.values is None:
        return raw if isinstance(raw, int) else said
    lowered = said.lower()
    for value in slot_list.values:
        if isinstance(value, str):
            if lowered in spoken_forms(value):
                return said
            continue
        if str(value.out).lower() == lowered or lowered in spoken_forms(value.in_):
            return value.out
    return None


def normalise_value(
    spec: SlotSpec,
    raw: object,
    *,
    slot_list: SlotListSpec | None = None,
    now: datetime | None = None,
    context: str = "",
) -> SlotScalar | None:
    """The canonical value of one slot (``spec``, with its list ``slot_list`` when known) from
    ``raw``, what was said or written for it: ``HH:MM`` for a time, an ``int`` (or a float said
    as one) inside the range for a number, a list value's output for text. ``now`` is the
    turn's local time (needed for "in twenty minutes"); ``context`` the whole request. ``None``
    when ``raw`` is not a usable value."""
    if raw is None:
        return None
    if spec.type == "time":
        return normalise_time(spec, str(raw), now=now, context=context)
    if spec.type == "number":
        if not isinstance(raw, str | int | float):
            return None
        return normalise_number(spec, raw, slot_list=slot_list, context=context)
    if isinstance(raw, bool | float):
        return raw
    if not isinstance(raw, str | int):
        return None
    return normalise_text(raw, slot_list)
