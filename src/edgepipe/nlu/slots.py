"""Slot spotting for requests the templates missed but the classifier recognised.

The classifier says *which* intent; this finds the slot values in the free wording: the longest
spoken form of a list value ("hair dryer", "sitting area"), a number inside a range list's
bounds ("twenty two", "22"), a count ("we have two, bring two more": 2) or a level ("half") for
a slot that declares its ``quantity`` (:mod:`edgepipe.nlu.quantities`), a time of day ("at half
past six", "in twenty minutes": :func:`edgepipe.nlu.timeparse.find_time`). Only values the pack
declares are produced, so a spotted slot is as valid as a template-matched one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from hassil.intents import RangeSlotList, SlotList, TextSlotList, WildcardSlotList
from hassil.sample import sample_expression

from edgepipe.core.types import SlotScalar, SlotValue
from edgepipe.nlu.lexicon import Pronunciations, shared_pronunciations
from edgepipe.nlu.quantities import Found, find_count, find_level, number_spans
from edgepipe.nlu.spelling import Speller
from edgepipe.nlu.templates import apply_defaults, build_intents, pack_vocabulary
from edgepipe.nlu.timeparse import find_time
from edgepipe.pack.content_schema import SlotSpec
from edgepipe.pack.loader import Pack

if TYPE_CHECKING:
    from edgepipe.core.resources import Resources

_TOKEN = re.compile(r"[a-z0-9]+(?:[:.][0-9]+)?|[^\sa-z0-9]", re.IGNORECASE)


def with_digits(text: str) -> str:
    """``text`` with its spelled-out numbers written as digits ("thermostat twenty three
    please" -> "thermostat 23 please"), the way a speech recogniser writes them."""
    tokens = text.split()
    spans = number_spans(tokens)
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


_CORRECTED = (
    "not ",
    "not the ",
    "not a ",
    "not my ",
    "instead of ",
    "instead of the ",
    "rather than ",
    "rather than the ",
)


def _corrected(lowered: str, spoken: str) -> bool:
    """Whether every mention of ``spoken`` is one the guest takes back ("not the pool, I
    meant the gym", "the gym instead of the pool")."""
    at = lowered.find(f" {spoken} ")
    while at >= 0:
        before = lowered[: at + 1]
        if not before.endswith(tuple(f" {c}" for c in _CORRECTED)):
            return False
        at = lowered.find(f" {spoken} ", at + 1)
    return True


class SlotSpotter:
    """Finds a pack's slot values in free text."""

    def __init__(self, pack: Pack, pronunciations: Pronunciations | None = None) -> None:
        """``pronunciations``: an English pronouncing dictionary, for values the guest
        misspelt (:class:`edgepipe.nlu.spelling.Speller`)."""
        self._pack = pack
        intents = build_intents(pack)
        self._lists = intents.slot_lists
        self._speller = Speller(pack_vocabulary(pack), pronunciations)
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
        spelled: str | None = None
        found: dict[str, SlotValue] = {}
        for name, spec in specs.items():
            list_name = spec.list or name
            slot_list = self._lists.get(list_name)
            value: SlotValue | None = None
            if spec.type == "time" or isinstance(slot_list, WildcardSlotList):
                value = self._time(name, spec, text, now) if spec.type == "time" else None
            elif isinstance(slot_list, TextSlotList):
                value = self._listed(name, list_name, lowered)
                if value is None:  # a misspelt value ("an other pilow")
                    if spelled is None:
                        spelled = " " + " ".join(_TOKEN.findall(self._speller.correct(text))) + " "
                    value = self._listed(name, list_name, spelled) if spelled != lowered else None
            elif isinstance(slot_list, RangeSlotList):
                value = self._amount(name, spec, slot_list, text, tokens)
            if value is not None:
                found[name] = value
        with_defaults = apply_defaults(specs, found)
        missing = [n for n, s in specs.items() if s.required and n not in with_defaults]
        return with_defaults, missing

    @property
    def lists(self) -> Mapping[str, SlotList]:
        """The pack's slot lists, by name, as hassil reads them."""
        return self._lists

    def _listed(self, name: str, list_name: str, lowered: str) -> SlotValue | None:
        """The longest spoken form of a value of the list in ``lowered`` (not taken back)."""
        for spoken, out in self._forms.get(list_name, []):
            if f" {spoken} " in lowered and not _corrected(lowered, spoken):
                return SlotValue(name=name, value=out, text=spoken)
        return None

    @staticmethod
    def _time(name: str, spec: SlotSpec, text: str, now: datetime) -> SlotValue | None:
        """The time of day the request says (the longest reading; "in 20 minutes" too)."""
        found = find_time(text, prefer=spec.prefer, now=now)
        if found is None:
            return None
        return SlotValue(name=name, value=found[0].hhmm, text=found[1])

    @staticmethod
    def _amount(
        name: str, spec: SlotSpec, slot_list: RangeSlotList, text: str, tokens: list[str]
    ) -> SlotValue | None:
        """A number inside the range list's bounds; a count ("two more") or a level ("half")
        when the slot declares its ``quantity``."""
        low, high = slot_list.start, slot_list.stop
        found: Found | None = None
        if spec.quantity == "count":
            found = find_count(text, minimum=low, maximum=high)
        elif spec.quantity == "level":
            found = find_level(text, minimum=low, maximum=high)
        else:
            for number, start, end in number_spans(tokens):
                if low <= number <= high:
                    found = Found(number, " ".join(tokens[start:end]))
                    break
        return SlotValue(name=name, value=found.value, text=found.text) if found else None


def shared_spotter(pack: Pack, resources: Resources) -> SlotSpotter:
    """The pack's spotter, built once per ``resources`` (with the English dictionary there is
    one)."""
    return resources.get(
        ("spotter", str(pack.root.resolve()), pack.content_hash),
        lambda: SlotSpotter(pack, shared_pronunciations(resources)),
    )
