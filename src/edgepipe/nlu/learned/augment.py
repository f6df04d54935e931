"""Random sentences from a pack's templates, as extra training examples for the learned router.

hassil's own sampler enumerates a template's expansions in order, so its first N sentences of a
template with many optional words are near-identical. This walks the same template trees but
picks every alternative, optional word, list value and number at random, giving N varied
sentences per intent from a seeded generator (the same pack and seed give the same sentences).

Rule-written paraphrases of training examples: :mod:`edgepipe.nlu.learned.paraphrase`.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from hassil import Intents
from hassil.expression import (
    Alternative,
    Expression,
    Group,
    ListReference,
    Permutation,
    RuleReference,
    Sentence,
    TextChunk,
)
from hassil.intents import RangeSlotList, TextSlotList, WildcardSlotList

from edgepipe.nlu.templates import build_intents
from edgepipe.pack.loader import Pack

_NUMBER_WORDS = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen", "twenty",
]  # fmt: skip
_TENS = {20: "twenty", 30: "thirty", 40: "forty", 50: "fifty", 60: "sixty", 70: "seventy",
         80: "eighty", 90: "ninety"}  # fmt: skip
_WILDCARD_SAMPLES: dict[str, tuple[str, ...]] = {
    "time": (
        "7",
        "7 am",
        "6:30",
        "half past six",
        "quarter to seven",
        "eight tomorrow",
        "5.45",
        "noon",
        "two pm",
        "10 o'clock",
        "seven thirty",
        "9:15 am",
    ),
    "text": ("it", "that", "something"),
}


def _number_text(value: int, rng: random.Random) -> str:
    if rng.random() < 0.5 or value > 99 or value < 0:
        return str(value)
    if value <= 20:
        return _NUMBER_WORDS[value]
    tens, units = divmod(value, 10)
    return _TENS[tens * 10] + (f" {_NUMBER_WORDS[units]}" if units else "")


class TemplateSampler:
    """Draws random sentences from a pack's templates."""

    def __init__(self, pack: Pack, seed: int = 0) -> None:
        self._pack = pack
        self._intents: Intents = build_intents(pack)
        self._rng = random.Random(seed)

    def sentences(self, intent: str, n: int) -> list[str]:
        """Up to ``n`` distinct random sentences for ``intent``."""
        data = self._intents.intents[intent].data
        templates = [s for d in data for s in d.sentences]
        if not templates:
            return []
        seen: set[str] = set()
        for _ in range(n * 5):
            sentence = self._rng.choice(templates)
            text = " ".join(" ".join(self._walk(sentence.expression, intent)).split())
            if text and text not in seen:
                seen.add(text)
                if len(seen) >= n:
                    break
        return sorted(seen)

    def _walk(self, expr: Expression, intent: str) -> Iterator[str]:
        rng = self._rng
        if isinstance(expr, TextChunk):
            yield expr.original_text or expr.text
        elif isinstance(expr, Alternative):
            if expr.items:
                yield from self._walk(rng.choice(expr.items), intent)
        elif isinstance(expr, Permutation):
            items = list(expr.items)
            rng.shuffle(items)
            for item in items:
                yield from self._walk(item, intent)
        elif isinstance(expr, Group):
            for item in expr.items:
                yield from self._walk(item, intent)
        elif isinstance(expr, RuleReference):
            rule: Sentence | None = self._intents.expansion_rules.get(expr.rule_name)
            if rule is not None:
                yield from self._walk(rule.expression, intent)
        elif isinstance(expr, ListReference):
            yield self._list_value(expr, intent)

    def _list_value(self, ref: ListReference, intent: str) -> str:
        rng = self._rng
        slot_list = self._intents.slot_lists.get(ref.list_name)
        if isinstance(slot_list, TextSlotList) and slot_list.values:
            choice = rng.choice(slot_list.values)
            return " ".join(self._walk(choice.text_in, intent))
        if isinstance(slot_list, RangeSlotList):
            number = rng.randrange(slot_list.start, slot_list.stop + 1, slot_list.step)
            return _number_text(number, rng)
        if isinstance(slot_list, WildcardSlotList):
            spec = self._pack.intents[intent].spec.slots.get(ref.slot_name)
            kind = spec.type if spec is not None and spec.type in _WILDCARD_SAMPLES else "text"
            return rng.choice(_WILDCARD_SAMPLES[kind])
        return ref.slot_name
