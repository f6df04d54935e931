"""Sentence-template matching with hassil, plus slot normalisation.

Matching runs in two passes:

1. ``exact``: the whole request (after the pack's word replacements and symbol folding, e.g.
   ``15%`` -> ``15 percent``) against every template.
2. ``clause``: when the whole request matches nothing, each clause of it (split at ``, ; . ! ?``
   and at `` and ``/`` but ``/`` so ``) is matched on its own. When every clause that matched
   agrees on one intent, that is the request ("bit chilly, bump the heat up"); when two or three
   clauses match different intents, each is a request of its own (``clauses``: "turn off the
   lights and open the blinds" runs both, in order).
3. ``corrected``: when both fail, misspelt words are corrected towards the pack's vocabulary
   (every word of its templates, lists and skip words; :class:`Speller`), and passes 1-2 run
   again: "clsoe the blinds", "what time does the jim open".
4. ``sounds_like``: when that fails too, a word that sounds like another word of the pack is
   read as that word, one word at a time, and the whole sentence is matched again, the way a
   speech recogniser confuses them ("twenty to degrees": "two"); used when every reading that
   matches is of one intent.

Every match hassil finds is normalised by :func:`edgepipe.nlu.values.normalise_value` (numbers
to ``int``, count and level words to theirs, list values to their output value, wildcard times
parsed to ``HH:MM``). A match whose slot cannot be interpreted is not used; if it
was the only reading, the caller gets the intent and the unusable slot so it can ask the guest
again instead of guessing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from hassil import Intents, RecognizeResult, recognize_all

from edgepipe.core.types import IntentMatch, SlotScalar, SlotValue
from edgepipe.nlu.clauses import take_backs
from edgepipe.nlu.lexicon import Pronunciations
from edgepipe.nlu.quantities import TENS, UNITS
from edgepipe.nlu.spelling import WORD, Speller
from edgepipe.nlu.timeparse import VOCABULARY as TIME_WORDS
from edgepipe.nlu.timeparse import mark_until
from edgepipe.nlu.values import normalise_value
from edgepipe.pack.content_schema import SlotListSpec, SlotSpec
from edgepipe.pack.loader import Pack


def _hassil_list(spec: SlotListSpec) -> dict[str, Any]:
    if spec.range is not None:
        return {"range": {"from": spec.range.from_, "to": spec.range.to, "step": spec.range.step}}
    if spec.wildcard:
        return {"wildcard": True}
    values: list[Any] = []
    for value in spec.values or []:
        if isinstance(value, str):
            values.append(value)
        else:
            values.append({"in": value.in_, "out": value.out})
    return {"values": values}


def build_intents(pack: Pack) -> Intents:
    """The pack's templates as a hassil ``Intents`` collection."""
    return Intents.from_dict(
        {
            "language": pack.spec.language,
            "intents": {
                name: {"data": [{"sentences": list(intent.hassil_templates)}]}
                for name, intent in pack.intents.items()
            },
            "lists": {name: _hassil_list(spec) for name, spec in pack.lists.items()},
            "expansion_rules": dict(pack.expansion_rules),
            "skip_words": list(pack.spec.skip_words),
        }
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class TemplateResult:
    """Outcome of template matching."""

    match: IntentMatch | None
    """The best usable match, if any."""
    invalid_intent: str | None = None
    """When only unusable matches were found: the intent they were for..."""
    invalid_slot: str | None = None
    """...and the slot whose words could not be interpreted."""
    candidates: int = 0
    """How many raw matches hassil produced."""
    how: str = "exact"
    """Which pass produced the match: ``exact``, ``clause``, ``clauses``, ``corrected`` or
    ``sounds_like``."""
    also: tuple[IntentMatch, ...] = ()
    """Further requests in the same sentence ("lights off and close the blinds"), in order."""
    unmatched: tuple[str, ...] = ()
    """Clauses of a clause-pass match that no template claimed (the router may read them)."""
    final: str | None = None
    """With no match: what the guest said after taking the rest back ("dim the lights, no,
    actually, just switch them off": "just switch them off"), for the router to read instead
    of the whole sentence; None when nothing was taken back."""


def _distinct(matches: list[IntentMatch]) -> list[IntentMatch]:
    """One match per request: the same intent twice is one request unless the slot values
    differ ("two pillows and a toothbrush"); a match whose slots another one's include is
    that one ("bit chilly, bump the heat up")."""
    out: list[IntentMatch] = []
    for m in matches:
        values = {k: v.value for k, v in m.slots.items()}
        same = next(
            (
                i
                for i, d in enumerate(out)
                if d.name == m.name
                and all(values.get(k) == v.value for k, v in d.slots.items() if k in values)
            ),
            None,
        )
        if same is None:
            out.append(m)
        elif len(m.slots) > len(out[same].slots):
            out[same] = m
    return out


class _InvalidSlot(Exception):
    def __init__(self, slot: str) -> None:
        self.slot = slot


def normalise_slot(
    name: str,
    spec: SlotSpec,
    raw: Any,
    text: str,
    now: datetime,
    context: str = "",
    *,
    slot_list: SlotListSpec | None = None,
) -> SlotScalar:
    """Normalise one raw slot value (:func:`edgepipe.nlu.values.normalise_value`); raises
    ``ValueError`` when it cannot be used. ``context``: the rest of the request, for a time
    slot's half of the day ("tonight") or a time from now ("in {twenty minutes}"), and a
    level's direction ("dim them all the way"); ``slot_list``: the slot's list, for a number's
    range."""
    value = normalise_value(spec, raw, slot_list=slot_list, now=now, context=context)
    if value is None:
        if spec.type == "time":
            raise ValueError(f"'{text}' is not a time of day")
        if spec.type == "number":
            raise ValueError(f"'{raw}' is not a number the slot '{name}' can hold")
        raise ValueError(f"slot '{name}' is empty or not one of its list's values")
    return value


_SYMBOLS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"[\u2018\u2019\u02bc`´]"), "'"),
    (re.compile(r"[\u201c\u201d]"), '"'),
    (re.compile(r"(\d)\s*%"), r"\1 percent"),
    (re.compile(r"(\d)\s*(?:°\s*c\b|°|degrees? c\b)", re.IGNORECASE), r"\1 degrees"),
    (re.compile(r"\s&\s"), " and "),
    (re.compile(r"(?<=[a-z])-(?=[a-z])", re.IGNORECASE), " "),
)
_CLAUSE_SPLIT = re.compile(
    r"\s*(?:[,;!?]|(?<!\d)\.(?!\d)|\s-\s)\s*(?:(?:and|but|so|also|then)\s+)?"
    r"|\s+(?:and|but|so|also|then)\s+",
    re.IGNORECASE,
)


def _corrected(result: TemplateResult, how: str) -> TemplateResult:
    """A match found on corrected text: never surer than 0.9."""
    assert result.match is not None
    return TemplateResult(
        match=replace(result.match, confidence=min(result.match.confidence, 0.9)),
        also=tuple(replace(m, confidence=0.9) for m in result.also),
        candidates=result.candidates,
        how=how,
    )


class TemplateMatcher:
    """Matches request text against a pack's sentence templates."""

    def __init__(self, pack: Pack, pronunciations: Pronunciations | None = None) -> None:
        """``pronunciations``: an English pronouncing dictionary for spelling correction
        (:class:`Speller`; without one, corrections rest on the pack's vocabulary alone)."""
        self._pack = pack
        self._intents = build_intents(pack)
        self._order = {name: i for i, name in enumerate(pack.intents)}
        words = pack.spec.replacements
        self._replace = (
            re.compile(
                r"(?<![\w'])("
                + "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
                + r")(?![\w'])",
                re.IGNORECASE,
            )
            if words
            else None
        )
        self._replacements = {k.lower(): v for k, v in words.items()}
        self.speller = Speller(pack_vocabulary(pack), pronunciations)
        self.vocabulary = self.speller.vocabulary

    def prepare(self, text: str) -> str:
        """Fold symbols, apply the pack's word replacements and write a misheard "until" as
        such ("checkout tell noon"): what the templates see."""
        for pattern, repl in _SYMBOLS:
            text = pattern.sub(repl, text)
        if self._replace is not None:
            text = self._replace.sub(lambda m: self._replacements[m.group(1).lower()], text)
        return mark_until(text)

    def warm_up(self) -> None:
        """Pay hassil's lazy set-up costs (template parsing, number words) now, not on a turn."""
        for intent in self._intents.intents.values():
            for data in intent.data:
                _ = data.sentences
        self._match_once("set it to 21", datetime.now())

    def match(self, text: str, now: datetime) -> TemplateResult:
        """The best usable template match for ``text``."""
        prepared = self.prepare(text)
        result = self._match_passes(prepared, now)
        if result.match is not None:
            return result
        corrected = self.prepare(self.correct(prepared))
        if corrected != prepared:
            second = self._match_passes(corrected, now)
            if second.match is not None:
                return _corrected(second, "corrected")
        readings: list[TemplateResult] = []
        for heard in self.speller.sound_alikes(corrected):
            third = self._match_once(self.prepare(heard), now)  # whole sentences only: cheap
            if third.match is not None:
                readings.append(third)
        if len({r.match.name for r in readings if r.match is not None}) == 1:
            return _corrected(readings[0], "sounds_like")
        return result

    def correct(self, text: str) -> str:
        """Out-of-vocabulary words replaced by their unique near neighbour (:class:`Speller`)."""
        return self.speller.correct(text)

    def _match_passes(self, prepared: str, now: datetime) -> TemplateResult:
        result = self._match_once(prepared, now)
        if result.match is not None and not self._spans_clauses(result.match):
            return result
        clauses, corrects = take_backs(c for c in _CLAUSE_SPLIT.split(prepared) if c and c.strip())
        if len(clauses) < 2:
            return result
        found: list[TemplateResult] = []
        unmatched: list[str] = []
        final: str | None = None
        for i, clause in enumerate(clauses):
            one = self._match_once(clause, now)
            if one.match is None and i > 0:
                one = self._elided(clauses[i - 1], clause, now) or one
            if corrects[i]:  # "..., no wait, the airport": what came before is taken back
                found, unmatched = [], []
                final = " ".join(clauses[i:])
            if one.match is None:
                unmatched.append(clause)
            found.append(one)
        matches = [r.match for r in found if r.match is not None]
        readings = _distinct(matches)
        candidates = sum(r.candidates for r in found)
        if result.match is not None and len(readings) < 2:
            return result  # a long wildcard value, not two requests
        if len(readings) == 1:  # every clause that matched is one request
            return TemplateResult(
                match=replace(readings[0], confidence=0.95),
                candidates=candidates,
                how="clause",
                unmatched=tuple(unmatched),
            )
        if 1 < len(readings) <= 3:  # several requests in one sentence: each clause is one
            first, *also = (replace(m, confidence=0.95) for m in readings)
            return TemplateResult(
                match=first,
                also=tuple(also),
                candidates=candidates,
                how="clauses",
                unmatched=tuple(unmatched),
            )
        return replace(result, final=final) if result.match is None else result

    @staticmethod
    def _spans_clauses(match: IntentMatch) -> bool:
        """A wildcard value that runs over a clause boundary ("wake me at 6:45 and book a cab
        ..." read as a time of "6:45 and book a cab ...")."""
        return any(
            slot.text and len(_CLAUSE_SPLIT.split(slot.text)) > 1 for slot in match.slots.values()
        )

    def _elided(self, previous: str, clause: str, now: datetime) -> TemplateResult | None:
        """A short clause that leaves out the previous clause's verb ("turn off the TV and the
        lights", "two pillows and a toothbrush"): matched again with the longest opening of
        the previous clause that makes it a request."""
        if len(clause.split()) > 10:
            return None
        words = previous.split()
        for cut in range(len(words) - 1, 0, -1):
            result = self._match_once(f"{' '.join(words[:cut])} {clause}", now)
            if result.match is not None:
                return result
        return None

    def _match_once(self, text: str, now: datetime) -> TemplateResult:
        usable: list[tuple[tuple[int, int, int, int], IntentMatch]] = []
        invalid: tuple[str, str] | None = None
        count = 0
        for result in recognize_all(text, self._intents):
            count += 1
            try:
                match = self._to_match(result, now, text)
            except _InvalidSlot as exc:
                invalid = invalid or (result.intent.name, exc.slot)
                continue
            usable.append((self._score(result), match))
        if usable:
            usable.sort(key=lambda item: item[0])
            return TemplateResult(match=usable[0][1], candidates=count)
        if invalid is not None:
            return TemplateResult(
                match=None, invalid_intent=invalid[0], invalid_slot=invalid[1], candidates=count
            )
        return TemplateResult(match=None, candidates=count)

    def _score(self, result: RecognizeResult) -> tuple[int, int, int, int]:
        wildcards = [e for e in result.entities_list if e.is_wildcard]
        return (
            len(wildcards),
            -result.text_chunks_matched,
            sum(len(e.text or "") for e in wildcards),
            self._order.get(result.intent.name, 0),
        )

    def _to_match(self, result: RecognizeResult, now: datetime, sentence: str) -> IntentMatch:
        intent = self._pack.intents[result.intent.name]
        slots: dict[str, SlotValue] = {}
        for name, entity in result.entities.items():
            spec = intent.spec.slots.get(name) or SlotSpec()
            text = (entity.text or "").strip()
            # a text value comes from the list the template named, which may not be the slot's
            # own ({other_list:slot}); numbers and times are checked against the slot's own
            slot_list = None if spec.type == "text" else self._pack.lists.get(spec.list or name)
            try:
                value = normalise_slot(
                    name, spec, entity.value, text, now, sentence, slot_list=slot_list
                )
            except ValueError as exc:
                raise _InvalidSlot(name) from exc
            slots[name] = SlotValue(name=name, value=value, text=text)
        return IntentMatch(
            name=intent.name,
            slots=apply_defaults(intent.spec.slots, slots),
            confidence=1.0,
            source="template",
        )


def pack_vocabulary(pack: Pack) -> frozenset[str]:
    """Every word a template of the pack can match (templates, rules, lists, skip words)."""
    texts: list[str] = []
    for intent in pack.intents.values():
        texts.extend(intent.spec.templates)
    texts.extend(pack.expansion_rules.values())
    for spec in pack.lists.values():
        for value in spec.values or []:
            texts.append(value if isinstance(value, str) else value.in_)
    texts.extend(pack.spec.skip_words)
    texts.extend(pack.spec.replacements.values())
    texts.extend(pack.spec.replacements)
    words = {w for text in texts for w in WORD.findall(text.lower())}
    return frozenset(words | TIME_WORDS | _NUMBER_WORDS)


_NUMBER_WORDS = frozenset({*UNITS, *TENS, "hundred"})


def apply_defaults(
    specs: Mapping[str, SlotSpec], slots: Mapping[str, SlotValue]
) -> dict[str, SlotValue]:
    """Slots plus declared defaults for the ones the request did not fill."""
    out = dict(slots)
    for name, spec in specs.items():
        if name not in out and spec.default is not None:
            out[name] = SlotValue(name=name, value=spec.default, text="")
    return out
