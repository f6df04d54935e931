"""Phonetic snapping: Whisper's transcript to the pack command it sounds like.

Whisper tiny mishears short commands as other English words that sound alike ("Team me off."
for "tv off", "Curtis, close please." for "curtains closed please", "Blind sound." for "blinds
down"). Spelled, these are far from any template; spoken, they are a phoneme or two away.

The snapper compiles the pack's templates (hassil expressions: alternatives, optional words,
permutations, rules, slot lists) into one graph of phonemes, using the pronunciation dictionary
bundled with pocketsphinx. Word boundaries are dropped, so "blind sound" and "blinds down" line
up. The transcript's phonemes are then aligned against every path through the graph at once
(edit distance: a phoneme heard but not in the sentence, in the sentence but not heard, or heard
as another phoneme costs 1), which gives, per intent, the nearest sentence its templates accept;
no expansion is enumerated (the hotel pack's templates expand to tens of millions of sentences).

A snap is offered only when it is near and unambiguous: the nearest sentence is within
``max_distance`` (edits over the longer of the two phoneme strings), and the nearest sentence of
any other intent is at least ``margin`` edits farther. "turn of the lights" is as close to "turn
on the lights" as to "turn off the lights", so it does not snap.

Numbers are never guessed: a run of digits or number words is one placeholder on both sides, and
the snapped sentence takes the transcript's own numbers, in order ("Give it down to 60%" -> "dim
it down to 60 percent"); a different count of numbers does not snap.

Long on purpose: the graph's construction (hassil expressions to phoneme edges), its compiled
form and the alignment over it (~500 lines, one class of ~380) share one symbol table and one
node numbering, and are one algorithm; split apart, each half would be meaningless alone.
"""

from __future__ import annotations

import itertools
import logging
import re
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from hassil.expression import (
    Alternative,
    Expression,
    Group,
    ListReference,
    Permutation,
    RuleReference,
    TextChunk,
)
from hassil.intents import Intents, RangeSlotList, SlotList, TextSlotList, WildcardSlotList

from edgepipe.nlu.lexicon import Pronunciations, load_pronunciations
from edgepipe.pack.loader import Pack

log = logging.getLogger(__name__)

__all__ = ["PhoneticSnapper", "Snap", "load_pronunciations"]

_NUMBER_WORDS = frozenset(
    {
        "zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
        "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
        "eighteen", "nineteen", "twenty", "thirty", "forty", "fifty", "sixty", "seventy",
        "eighty", "ninety", "hundred",
    }
)  # fmt: skip
_TOKEN = re.compile(r"[a-z']+|\d+(?:[:.]\d+)?")
_NUMBER = "#"
_PUNCTUATION = re.compile(r"[^\w'\s]")
_EPS = -1
_INF = np.int32(1 << 20)
_MAX_PERMUTED = 4
# edit costs: a phoneme heard as a similar one (same class) costs 1, any other edit 2
_NEAR, _EDIT = 1, 2
_CLASSES = (
    "AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW",  # vowels
    "P B T D K G",  # stops
    "F V TH DH S Z SH ZH HH CH JH",  # fricatives, affricates
    "M N NG",  # nasals
    "L R W Y",  # liquids, glides
)
# crude letter-to-sound for words the dictionary lacks (names, Whisper's odd spellings)
_LETTERS = {
    "a": "AE", "b": "B", "c": "K", "d": "D", "e": "EH", "f": "F", "g": "G", "h": "HH",
    "i": "IH", "j": "JH", "k": "K", "l": "L", "m": "M", "n": "N", "o": "AA", "p": "P",
    "q": "K", "r": "R", "s": "S", "t": "T", "u": "AH", "v": "V", "w": "W", "x": "K S",
    "y": "Y", "z": "Z",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Snap:
    text: str
    """The pack sentence, with the transcript's own numbers."""
    intent: str
    distance: float
    """Edits over the longer phoneme string (0 = sounds the same)."""
    margin: int
    """Edits by which the nearest sentence of another intent is farther."""


class _Graph:
    """A DAG of phoneme edges; every edge goes from a lower to a higher node number."""

    def __init__(self) -> None:
        self.nodes = 1  # node 0 is the start
        self.src: list[int] = []
        self.dst: list[int] = []
        self.label: list[int] = []
        self.word: list[str] = []  # the word an edge starts ("" inside a word or epsilon)

    def node(self) -> int:
        self.nodes += 1
        return self.nodes - 1

    def edge(self, u: int, v: int, label: int, word: str = "") -> None:
        self.src.append(u)
        self.dst.append(v)
        self.label.append(label)
        self.word.append(word)


class PhoneticSnapper:
    """Nearest pack sentence by phoneme edit distance (see the module docstring)."""

    def __init__(
        self,
        pack: Pack,
        pronunciations: Pronunciations,
        *,
        max_distance: float = 0.2,
        margin: int = 2,
    ) -> None:
        from edgepipe.nlu.templates import build_intents

        started = time.perf_counter()
        self.max_distance = max_distance
        self.margin = margin
        self._words = pronunciations
        self._symbols: dict[str, int] = {_NUMBER: 0}
        self._skip = _skip_pattern(pack.spec.skip_words)
        self._last: tuple[str, tuple[npt.NDArray[np.int32], list[int], list[str]]] | None = None
        self._skip_phrases = sorted(
            {tuple(w.lower().split()) for w in pack.spec.skip_words if w.strip()},
            key=len,
            reverse=True,
        )
        self._intents: Intents = build_intents(pack)
        graph = _Graph()
        self.intent_names: list[str] = []
        finals: list[int] = []
        for name, intent in self._intents.intents.items():
            for data in intent.data:
                for template in data.sentences:
                    end = self._build(graph, template.expression, 0, data.slot_lists, 0)
                    final = graph.node()
                    graph.edge(end, final, _EPS)
                    finals.append(final)
                    self.intent_names.append(name)
        self._compile(graph, finals)
        log.info(
            "phonetic snapper: %d templates, %d nodes, %d edges in %.2f s",
            len(finals),
            graph.nodes,
            len(graph.src),
            time.perf_counter() - started,
        )

    # ------------------------------------------------------------------ building the graph

    def _build(
        self,
        graph: _Graph,
        expr: Expression,
        start: int,
        local_lists: dict[str, SlotList],
        depth: int,
    ) -> int:
        """Add ``expr`` after node ``start``; returns its end node."""
        if depth > 50:
            raise ValueError("template rules nest too deeply")
        if isinstance(expr, TextChunk):
            return self._text(graph, expr.text, start)
        if isinstance(expr, ListReference):
            return self._slot(graph, expr, start, local_lists, depth)
        if isinstance(expr, RuleReference):
            rule = self._intents.expansion_rules.get(expr.rule_name)
            if rule is None:
                return start
            return self._build(graph, rule.expression, start, local_lists, depth + 1)
        if not isinstance(expr, Group):
            return start
        if isinstance(expr, Alternative):
            branches = [[item] for item in expr.items]
        elif isinstance(expr, Permutation) and len(expr.items) <= _MAX_PERMUTED:
            branches = [list(order) for order in itertools.permutations(expr.items)]
        else:  # a sequence (or a permutation too long to spell out: its written order)
            branches = [list(expr.items)]
        ends = []
        for branch in branches:
            node = start
            for item in branch:
                node = self._build(graph, item, node, local_lists, depth + 1)
            ends.append(node)
        if len(ends) == 1:
            return ends[0]
        end = graph.node()
        for node in ends:
            graph.edge(node, end, _EPS)
        return end

    def _slot(
        self,
        graph: _Graph,
        ref: ListReference,
        start: int,
        local_lists: dict[str, SlotList],
        depth: int,
    ) -> int:
        slot_list = local_lists.get(ref.list_name) or self._intents.slot_lists.get(ref.list_name)
        if isinstance(slot_list, TextSlotList):
            ends = [
                self._build(graph, value.text_in, start, local_lists, depth + 1)
                for value in slot_list.values
            ]
            end = graph.node()
            for node in ends:
                graph.edge(node, end, _EPS)
            return end
        if isinstance(slot_list, RangeSlotList | WildcardSlotList):
            end = graph.node()
            graph.edge(start, end, self._symbols[_NUMBER], _NUMBER)
            return end
        return start

    def _text(self, graph: _Graph, text: str, start: int) -> int:
        node = start
        glued = bool(text) and not text[0].isspace()
        for i, (piece, phones) in enumerate(self._tokens(text)):
            word = ("+" if i == 0 and glued and piece == "s" else "") + piece
            for j, phone in enumerate(phones):
                nxt = graph.node()
                graph.edge(node, nxt, phone, word if j == 0 else "")
                node = nxt
        return node

    # ------------------------------------------------------------------ phonemes

    def _phones(self, word: str) -> tuple[str, ...]:
        found = self._words.get(word) or self._words.get(word.strip("'"))
        if found is not None:
            return found
        if word.endswith("'s") and (stem := self._words.get(word[:-2])):
            return (*stem, "Z")
        return tuple(" ".join(_LETTERS.get(c, "") for c in word).split())

    def _symbol(self, phone: str) -> int:
        symbol = self._symbols.get(phone)
        if symbol is None:
            symbol = self._symbols[phone] = len(self._symbols)
        return symbol

    def _tokens(self, text: str) -> list[tuple[str, list[int]]]:
        """Words of ``text`` (skip words dropped; a run of numbers is one ``#``) with their
        phoneme symbols."""
        text = text.lower().replace("a.m.", "am").replace("p.m.", "pm").replace("%", " percent ")
        text = text.replace("-", " ").replace("/", " ")
        if self._skip is not None:
            text = self._skip.sub(" ", text)
        out: list[tuple[str, list[int]]] = []
        for piece in _TOKEN.findall(text):
            in_number = bool(out) and out[-1][0].startswith(_NUMBER)
            if piece[0].isdigit() or piece in _NUMBER_WORDS or (piece == "and" and in_number):
                if in_number:
                    out[-1] = (f"{out[-1][0]} {piece}", out[-1][1])
                else:
                    out.append((_NUMBER + piece, [self._symbols[_NUMBER]]))
            elif piece == "s":  # a plural glued on in a template ("call[s]")
                out.append((piece, [self._symbol("Z")]))
            else:
                out.append((piece, [self._symbol(p) for p in self._phones(piece)]))
        return out

    # ------------------------------------------------------------------ matching

    def _compile(self, graph: _Graph, finals: list[int]) -> None:
        src = np.asarray(graph.src, dtype=np.int32)
        dst = np.asarray(graph.dst, dtype=np.int32)
        if len(src) and not bool(np.all(src < dst)):
            raise RuntimeError("phonetic snapper: template graph out of order")
        label = np.asarray(graph.label, dtype=np.int32)
        n = graph.nodes
        # level of each node: longest path from the start (edges go low -> high, one pass)
        level = np.zeros(n, dtype=np.int32)
        order = np.argsort(dst, kind="stable")
        for e in order:
            level[dst[e]] = max(level[dst[e]], level[src[e]] + 1)
        by_level = np.argsort(level[dst], kind="stable")
        self._n = n
        self._src, self._dst, self._label = src, dst, label
        self._words_of = graph.word
        self._finals = np.asarray(finals, dtype=np.int32)
        bounds = np.searchsorted(level[dst][by_level], np.arange(1, int(level.max()) + 2))
        self._levels = [by_level[a:b] for a, b in itertools.pairwise([0, *bounds]) if b > a]
        self._consuming = np.flatnonzero(label != _EPS)
        self._level_costs = [
            np.where(label[edges] == _EPS, 0, _EDIT).astype(np.int32) for edges in self._levels
        ]
        # per heard symbol, the substitution cost at every consuming edge
        cls = {p: k for k, names in enumerate(_CLASSES) for p in names.split()}
        names = {v: k for k, v in self._symbols.items()}
        table = np.full((len(names), len(names)), _EDIT, dtype=np.int32)
        for a, pa in names.items():
            for b, pb in names.items():
                if a == b:
                    table[a, b] = 0
                elif pa in cls and cls.get(pb) == cls[pa]:
                    table[a, b] = _NEAR
        consuming_labels = label[self._consuming]
        self._costs: list[npt.NDArray[np.int32]] = [
            table[a][consuming_labels] for a in range(len(names))
        ]
        # an edge's index among the consuming edges (the substitution vectors' index)
        self._position = np.full(len(src), -1, dtype=np.int32)
        self._position[self._consuming] = np.arange(len(self._consuming), dtype=np.int32)
        self._incoming: dict[int, list[int]] = {}
        for e in range(len(src)):
            self._incoming.setdefault(int(dst[e]), []).append(e)

    def _close(self, row: npt.NDArray[np.int32]) -> None:
        """Within one input position: epsilon edges (free) and template phonemes not heard
        (an edit each), level by level."""
        src = self._src
        for edges, step in zip(self._levels, self._level_costs, strict=True):
            np.minimum.at(row, self._dst[edges], row[src[edges]] + step)

    def _substitution(self, symbol: int) -> npt.NDArray[np.int32]:
        """Cost of hearing ``symbol`` where each consuming edge's phoneme is."""
        if symbol < len(self._costs):
            return self._costs[symbol]
        unseen: npt.NDArray[np.int32] = np.full(len(self._consuming), _EDIT, dtype=np.int32)
        return unseen

    def _align(self, text: str) -> tuple[npt.NDArray[np.int32], list[int], list[str]]:
        """The alignment table of ``text``'s phonemes against the graph (row i: the least cost
        of reaching each node having heard i phonemes), its symbols and its number runs. The
        last one is kept: the open path asks ``snap`` and then ``nearest`` about one text."""
        if self._last is not None and self._last[0] == text:
            return self._last[1]
        aligned = self._align_new(text)
        self._last = (text, aligned)
        return aligned

    def _align_new(self, text: str) -> tuple[npt.NDArray[np.int32], list[int], list[str]]:
        tokens = self._tokens(text)
        symbols = [s for _, phones in tokens for s in phones]
        numbers = [t[1:] for t, _ in tokens if t.startswith(_NUMBER)]
        rows = np.full((len(symbols) + 1, self._n), _INF, dtype=np.int32)
        rows[0, 0] = 0
        self._close(rows[0])
        consuming = self._consuming
        for i, symbol in enumerate(symbols, 1):
            row = rows[i]
            np.minimum(row, rows[i - 1] + _EDIT, out=row)  # a phoneme heard that is not there
            cost = rows[i - 1][self._src[consuming]] + self._substitution(symbol)
            np.minimum.at(row, self._dst[consuming], cost)
            self._close(row)
        return rows, symbols, numbers

    def snap(self, text: str) -> Snap | None:
        """The pack sentence ``text`` sounds like, or None when none is near and unambiguous."""
        rows, symbols, numbers = self._align(text)
        ranked = self._ranked(rows, symbols)
        if not ranked:
            return None
        intent, template, best = ranked[0]
        rival = ranked[1][2] if len(ranked) > 1 else 1 << 30
        if rival - best < self.margin:
            return None
        found = self._sentence(rows, symbols, numbers, intent, template, best)
        if found is None or found.distance > self.max_distance:
            return None
        return Snap(found.text, intent, found.distance, int(min(rival - best, 99)))

    def nearest(self, text: str, k: int, max_distance: float) -> list[Snap]:
        """The nearest sentence of each of the ``k`` intents nearest to ``text``, nearest first,
        those within ``max_distance`` (and with as many numbers as ``text``): the candidates the
        open path scores with Whisper when no snap is near and unambiguous. ``margin`` is each
        one's edit distance to the next candidate's."""
        rows, symbols, numbers = self._align(text)
        ranked = self._ranked(rows, symbols)[:k]
        out: list[Snap] = []
        for i, (intent, template, cost) in enumerate(ranked):
            following = ranked[i + 1][2] if i + 1 < len(ranked) else cost + 99
            found = self._sentence(rows, symbols, numbers, intent, template, cost)
            if found is not None and found.distance <= max_distance:
                out.append(Snap(found.text, intent, found.distance, int(min(following - cost, 99))))
        return out

    def said_around(self, sentence: str, heard: str) -> str:
        """``sentence`` with the skip words ``heard`` starts and ends with ("Fresh madly didn't
        please." -> "fresh bed linen please"): snapping drops them, but a sentence scored
        against the audio should say all of it."""
        words = _PUNCTUATION.sub(" ", heard.lower()).split()
        head: list[str] = []
        tail: list[str] = []
        for out, at_start in ((head, True), (tail, False)):
            while words:
                for phrase in self._skip_phrases:
                    n = len(phrase)
                    if n < len(words) and tuple(words[:n] if at_start else words[-n:]) == phrase:
                        if at_start:
                            out.extend(phrase)
                            words = words[n:]
                        else:
                            out[:0] = phrase
                            words = words[:-n]
                        break
                else:
                    break
        return " ".join([*head, sentence, *tail])

    def _ranked(
        self, rows: npt.NDArray[np.int32], symbols: list[int]
    ) -> list[tuple[str, int, int]]:
        """``(intent, its nearest template, cost)`` for every intent, nearest first."""
        if not symbols:
            return []
        costs = rows[-1][self._finals].tolist()
        nearest: dict[str, int] = {}  # intent -> its nearest template
        for template, name in enumerate(self.intent_names):
            if name not in nearest or costs[template] < costs[nearest[name]]:
                nearest[name] = template
        ranked = sorted(nearest.items(), key=lambda kv: costs[kv[1]])
        return [(name, template, int(costs[template])) for name, template in ranked]

    def _sentence(
        self,
        rows: npt.NDArray[np.int32],
        symbols: list[int],
        numbers: list[str],
        intent: str,
        template: int,
        cost: int,
    ) -> Snap | None:
        """The sentence along ``template``'s best path, with the transcript's own numbers
        (None when the counts differ); ``margin`` is left 0 for the caller."""
        words, length = self._trace(rows, int(self._finals[template]), symbols)
        distance = cost / (_EDIT * max(len(symbols), length))
        slots = [w for w in words if w.startswith(_NUMBER)]
        if len(slots) != len(numbers):
            return None
        heard = iter(numbers)
        out: list[str] = []
        for word in words:
            if word.startswith(_NUMBER):
                out.append(next(heard))
            elif word.startswith("+") and out:
                out[-1] += word[1:]
            else:
                out.append(word)
        return Snap(text=" ".join(out), intent=intent, distance=round(distance, 3), margin=0)

    def _trace(
        self, rows: npt.NDArray[np.int32], node: int, symbols: list[int]
    ) -> tuple[list[str], int]:
        """The words along one best path ending at ``node``, and its phoneme count."""
        src, label, position = self._src, self._label, self._position
        i = len(symbols)
        words: list[str] = []
        length = 0
        while node != 0 or i != 0:
            here = rows[i, node]
            if i > 0 and rows[i - 1, node] + _EDIT == here:
                i -= 1  # a phoneme heard that is not in the sentence
                continue
            step = None
            for e in self._incoming.get(node, ()):
                u = int(src[e])
                if label[e] == _EPS:
                    if rows[i, u] == here:
                        step = (e, i)
                        break
                    continue
                if rows[i, u] + _EDIT == here:
                    step = (e, i)
                    break
                sub = int(self._substitution(symbols[i - 1])[position[e]]) if i > 0 else _INF
                if i > 0 and rows[i - 1, u] + sub == here:
                    step = (e, i - 1)
                    break
            if step is None:  # cannot happen on a consistent table
                raise RuntimeError("phonetic snapper: broken alignment table")
            e, i = step
            if label[e] != _EPS:
                length += 1
                if self._words_of[e]:
                    words.append(self._words_of[e])
            node = int(src[e])
        words.reverse()
        return words, length


def _skip_pattern(skip_words: list[str] | tuple[str, ...]) -> re.Pattern[str] | None:
    """The pack's skip words ("please", "thank you"), which hassil ignores too."""
    words = sorted({w.lower() for w in skip_words if w.strip()}, key=len, reverse=True)
    if not words:
        return None
    return re.compile(r"\b(?:" + "|".join(re.escape(w) for w in words) + r")\b")
