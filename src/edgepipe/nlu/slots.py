"""Slot spotting for requests the templates missed but the classifier recognised.

The classifier says *which* intent; this finds the slot values in the free wording: the longest
spoken form of a list value ("hair dryer", "sitting area"), a number inside a range list's
bounds ("twenty two", "22"), a time of day ("at half past six"). Only values the pack declares
are produced, so a spotted slot is as valid as a template-matched one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime

from hassil.intents import RangeSlotList, TextSlotList, WildcardSlotList
from hassil.sample import sample_expression

from edgepipe.core.types import SlotScalar, SlotValue
from edgepipe.nlu.templates import apply_defaults, build_intents
from edgepipe.nlu.timeparse import parse_time_of_day
from edgepipe.pack.content_schema import SlotSpec
from edgepipe.pack.loader import Pack

_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19,
}  # fmt: skip
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
         "eighty": 80, "ninety": 90}  # fmt: skip
_TOKEN = re.compile(r"[a-z0-9]+(?:[:.][0-9]+)?|[^\sa-z0-9]", re.IGNORECASE)


def _numbers(tokens: list[str]) -> list[tuple[int, int, int]]:
    """Numbers in the tokens: (value, start, end) with ``end`` exclusive."""
    found: list[tuple[int, int, int]] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i].lower()
        if tok.isascii() and tok.isdigit() and len(tok) <= 4:
            found.append((int(tok), i, i + 1))
        elif tok in _TENS:
            nxt = tokens[i + 1].lower() if i + 1 < len(tokens) else ""
            if nxt in _UNITS and 0 < _UNITS[nxt] < 10:
                found.append((_TENS[tok] + _UNITS[nxt], i, i + 2))
                i += 2
                continue
            found.append((_TENS[tok], i, i + 1))
        elif tok in _UNITS:
            found.append((_UNITS[tok], i, i + 1))
        i += 1
    return found


def with_digits(text: str) -> str:
    """``text`` with its spelled-out numbers written as digits ("thermostat twenty three
    please" -> "thermostat 23 please"), the way a speech recogniser writes them."""
    tokens = text.split()
    spans = _numbers(tokens)
    if not spans:
        return text
    out: list[str] = []
    i = 0
    for value, start, end in spans:
        out.extend(tokens[i:start])
        out.append(str(value))
        i = end
    out.extend(tokens[i:])
    return " ".join(out)


class SlotSpotter:
    """Finds a pack's slot values in free text."""

    def __init__(self, pack: Pack) -> None:
        self._pack = pack
        intents = build_intents(pack)
        self._lists = intents.slot_lists
        # every spoken form of every text-list value, longest first
        self._forms: dict[str, list[tuple[str, SlotScalar]]] = {}
        for name, slot_list in self._lists.items():
            if isinstance(slot_list, TextSlotList):
                forms: list[tuple[str, SlotScalar]] = []
                for value in slot_list.values:
                    out = value.value_out if value.value_out is not None else ""
                    for text in sample_expression(value.text_in):
                        spoken = " ".join(text.lower().split())
                        if spoken:
                            forms.append((spoken, out))
                forms.sort(key=lambda f: len(f[0]), reverse=True)
                self._forms[name] = forms

    def spot(self, intent: str, text: str, now: datetime) -> tuple[dict[str, SlotValue], list[str]]:
        """Slot values found for ``intent`` (defaults applied) and the required slots missing."""
        specs: Mapping[str, SlotSpec] = self._pack.intents[intent].spec.slots
        lowered = " " + " ".join(_TOKEN.findall(text.lower())) + " "
        tokens = lowered.split()
        found: dict[str, SlotValue] = {}
        for name, spec in specs.items():
            list_name = spec.list or name
            slot_list = self._lists.get(list_name)
            value: SlotValue | None = None
            if spec.type == "time" or isinstance(slot_list, WildcardSlotList):
                value = self._time(name, spec, tokens, now) if spec.type == "time" else None
            elif isinstance(slot_list, TextSlotList):
                for spoken, out in self._forms.get(list_name, []):
                    if f" {spoken} " in lowered:
                        value = SlotValue(name=name, value=out, text=spoken)
                        break
            elif isinstance(slot_list, RangeSlotList):
                for number, start, end in _numbers(tokens):
                    if slot_list.start <= number <= slot_list.stop:
                        value = SlotValue(name=name, value=number, text=" ".join(tokens[start:end]))
                        break
            if value is not None:
                found[name] = value
        with_defaults = apply_defaults(specs, found)
        missing = [n for n, s in specs.items() if s.required and n not in with_defaults]
        return with_defaults, missing

    @staticmethod
    def _time(name: str, spec: SlotSpec, tokens: list[str], now: datetime) -> SlotValue | None:
        """The longest run of tokens that reads as a time of day."""
        best: tuple[int, SlotValue] | None = None
        for start in range(len(tokens)):
            for end in range(min(len(tokens), start + 6), start, -1):
                words = " ".join(tokens[start:end])
                if not any(c.isdigit() for c in words) and not any(
                    t in {"noon", "midnight", "half", "quarter", "oclock"}
                    or t in _UNITS
                    or t in _TENS
                    for t in tokens[start:end]
                ):
                    continue
                parsed = parse_time_of_day(words, prefer=spec.prefer)
                if parsed is not None and (best is None or end - start > best[0]):
                    best = (end - start, SlotValue(name=name, value=parsed.hhmm, text=words))
                    break
        return best[1] if best else None
