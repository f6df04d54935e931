"""Spelling and sound-alike correction towards a pack's words (the template matcher's
``corrected`` and ``sounds_like`` passes, and the slot spotter's second look)."""

from __future__ import annotations

import re

from rapidfuzz.distance import DamerauLevenshtein
from rapidfuzz.process import extract

from edgepipe.nlu.lexicon import Pronunciations

WORD = re.compile(r"[a-z][a-z']*")
"""A word as the pack's vocabulary and the speller see it (lower case)."""


class Speller:
    """Spelling correction towards a vocabulary (the pack's words).

    A word that is in the vocabulary stays. With an English pronouncing dictionary
    (:mod:`edgepipe.nlu.lexicon`), a real English word outside the vocabulary is not a typo: it
    stays too ("flight" is not "light"), unless it sounds exactly like one vocabulary word
    ("jim" -> "gym"). Any other word of four letters or more is replaced by the single
    vocabulary word within one edit (two for words of eight letters or more;
    Damerau-Levenshtein, so a swap of two letters is one edit); a word with no such neighbour,
    or with two equally near, stays.

    :meth:`sound_alikes` gives the other readings of a sentence whose vocabulary words sound
    like other vocabulary words ("a table for too": "two"), for a matcher to try last.
    """

    def __init__(
        self, vocabulary: frozenset[str], pronunciations: Pronunciations | None = None
    ) -> None:
        self.vocabulary = vocabulary
        self._vocab_list = sorted(vocabulary)
        self._lexicon: Pronunciations = pronunciations or {}
        by_sound: dict[tuple[str, ...], set[str]] = {}
        for word in vocabulary:
            phones = self._lexicon.get(word)
            if phones:
                by_sound.setdefault(phones, set()).add(word)
        self._by_sound = {p: frozenset(ws) for p, ws in by_sound.items()}

    def correct(self, text: str) -> str:
        """``text``, lowercased, with its misspelt words corrected."""
        return WORD.sub(lambda m: self._fix(m.group(0)), text.lower())

    def _fix(self, word: str) -> str:
        if word in self.vocabulary:
            return word
        phones = self._lexicon.get(word)
        if phones is not None:
            same = self._by_sound.get(phones, frozenset())
            return next(iter(same)) if len(same) == 1 else word
        if len(word) < 4:
            return word
        limit = 2 if len(word) >= 8 else 1
        found = extract(
            word, self._vocab_list, scorer=DamerauLevenshtein.distance,
            score_cutoff=limit, limit=3,
        )  # fmt: skip
        if not found:
            return word
        best = min(score for _, score, _ in found)
        candidates = {choice for choice, score, _ in found if score == best}
        return candidates.pop() if len(candidates) == 1 else word

    def sound_alikes(self, text: str, limit: int = 8) -> list[str]:
        """``text`` (lowercased) with one word replaced by another vocabulary word that sounds
        the same, for each such word and replacement (at most ``limit`` readings)."""
        lowered = text.lower()
        out: list[str] = []
        for match in WORD.finditer(lowered):
            phones = self._lexicon.get(match.group(0))
            for other in sorted(self._by_sound.get(phones, frozenset()) if phones else ()):
                if other != match.group(0) and len(out) < limit:
                    out.append(f"{lowered[: match.start()]}{other}{lowered[match.end() :]}")
        return out
