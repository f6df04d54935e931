"""Is this request for this room, and does the guest want it done at all?

The templates and the router read *what* a sentence is about; two things they cannot see decide
whether that reading may be acted on:

* **a negated command**: "don't switch off the TV, I'm still watching" is about ``tv_off`` with
  high confidence, and the guest wants the opposite. A clause that opens with a negation
  ("don't ...", "do not ...", "never ...", "no need to ...", "I don't want you to ...") is read
  on its own; when its reading is the sentence's reading, the sentence's reading came from a
  command the guest negated. The rest of the sentence (if any) is read instead ("don't dim them,
  switch the lights off" -> ``lights_off``); when nothing else is asked, nothing is done and the
  guest hears the pack's ``declined`` reply. An intent that the pack's own examples express
  with a negation alone ("do not disturb please", "don't wake me tomorrow") is exempt: its
  negation is its wording.
* **another room**: a request that names a room number other than this room's ("cancel the
  wake-up call for room 1102"), another room without a number ("switch off the lights next
  door", "the room above us") or someone else's things ("the staff wifi password") is not
  acted on here (the ``other_room`` reply).
* **instructions to the assistant itself**: "ignore all previous instructions", "maintenance
  mode", "system prompt": nothing of such a request is acted on (the pack's ``fallback``
  reply), even when the rest reads as a request.

Exact template matches are trusted as written (a pack's template says what it means). The
checks are a few regular expressions and at most two readings of clause fragments per turn.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from edgepipe.pack.loader import Pack

_NEGATION = re.compile(
    r"(?:^|(?<=[,.;:!?])|\b(?:and|but|so|just|please)\b)\s*"
    r"(?:please\s+)?"
    r"(?:(?:i|we)\s+(?:really\s+)?(?:don't|do not|dont)\s+(?:want|need)\s+(?:you\s+)?(?:to\s+)?"
    r"|you\s+(?:don't|do not|dont)\s+(?:need|have)\s+to\s+"
    r"|(?:there's|there is)\s+no\s+need\s+to\s+|no\s+need\s+to\s+"
    r"|(?:don't|do not|dont|never)\s+(?!forget\b|hesitate\b))"
    r"(?P<body>[^,.;:!?]+?)"
    r"(?=\s*(?:[,.;:!?]|\bbut\b|\bjust\b|\binstead\b|$))",
    re.IGNORECASE,
)
_INJECTION = re.compile(
    r"\b(?:ignore|disregard|forget|override)\s+(?:all\s+|any\s+|your\s+|the\s+)*"
    r"(?:previous|prior|above|earlier|other|system)\s+(?:instructions|rules|prompts?)\b"
    r"|\b(?:maintenance|developer|debug|admin|god|service)\s+mode\b"
    r"|\bsystem\s+prompt\b|\bjailbreak\b",
    re.IGNORECASE,
)
_ROOM = re.compile(r"\broom\s+(?:number\s+|no\.?\s+|#\s*)?(?P<number>\d{2,5})\b", re.IGNORECASE)
_ELSEWHERE = re.compile(
    r"\bnext\s+door\b"
    r"|\b(?:another|other|a\s+different|some(?:one|body)\s+else'?s|(?:my|our|the)\s+neighbou?rs?'?s?)"
    r"\s+(?:guest'?s?\s+)?rooms?\b"
    r"|\bthe\s+rooms?\s+(?:above|below|beneath|under|over|upstairs|downstairs|opposite"
    r"|across\s+the\s+(?:hall|corridor)|next\s+to\s+(?:mine|ours|me|us|this\s+one))\b"
    r"|\b(?:upstairs|downstairs)\s+(?:rooms?|guests?|neighbou?rs?)\b"
    r"|\bthe\s+(?:guests?|people|neighbou?rs?)\s+(?:upstairs|downstairs|above|below"
    r"|across\s+the\s+(?:hall|corridor))\b",
    re.IGNORECASE,
)
"""Another room without its number: "next door", "the room above", "my neighbour's room"."""
_OTHERS = re.compile(
    r"\b(?:staff|employees?'?|admin(?:istrator)?|manager'?s?|management|back[- ]office|office"
    r"|internal|another\s+guest'?s|other\s+guests'?|some(?:one|body)\s+else'?s)"
    r"\s+(?:[\w-]+\s+)?(?:wi-?fi|network|password|account|login|key\s*card|door\s+code"
    r"|room\s+number|details|phone\s+number|bill)\b",
    re.IGNORECASE,
)
"""Someone else's things: "the staff wifi password", "another guest's room number"."""
_WORD = re.compile(r"[a-z0-9']+")
# fmt: off
_FILLER = frozenset([
    "i", "i'm", "im", "it", "it's", "its", "is", "am", "are", "was", "the", "a", "an", "me", "my",
    "we", "us", "you", "your", "that", "this", "just", "still", "now", "ok", "okay", "please",
    "thanks", "thank", "yes", "no", "oh", "so", "and", "but",
])
# fmt: on


@dataclass(frozen=True, slots=True)
class Negated:
    """The clauses of a sentence that negate a command, and what is left without them."""

    clauses: tuple[str, ...]
    rest: str
    """The sentence without the negated clauses ("" when nothing else is said)."""

    @property
    def rest_says_something(self) -> bool:
        return any(w not in _FILLER for w in _WORD.findall(self.rest.lower()))


Reader = Callable[[str], str | None]
"""Reads a fragment onto an intent (templates, then the router); None when nothing claims it."""


class ScopeGuard:
    """The two checks above, for one pack. Stateless; shared by every session."""

    def __init__(self, pack: Pack) -> None:
        self._room = pack.spec.context.room.number
        self._negated_wording = frozenset(
            name
            for name, intent in pack.intents.items()
            if any(self._wholly_negated(e) for e in intent.examples)
        )
        """Intents the pack's own examples word with a negation."""

    def _wholly_negated(self, example: str) -> bool:
        found = self.negated(example)
        return found is not None and not found.rest_says_something

    @staticmethod
    def injected(text: str) -> str | None:
        """Words that try to instruct the assistant itself ("ignore all previous
        instructions", "you are in maintenance mode"): nothing of such a request is acted
        on, whatever else it asks."""
        found = _INJECTION.search(text)
        return found.group(0) if found else None

    def other_room(self, text: str, room: str | None = None) -> str | None:
        """The room number the request names when it is not ``room`` (default: the pack's)."""
        ours = (room or self._room).lstrip("0")
        for found in _ROOM.finditer(text):
            number = found.group("number")
            if number.lstrip("0") != ours:
                return number
        return None

    @staticmethod
    def elsewhere(text: str) -> str | None:
        """Words for another room without its number ("the room next door", "the room above
        us") or for someone else's things ("the staff wifi password", "another guest's room
        number"): what the request is about is not this room's guest's."""
        found = _ELSEWHERE.search(text) or _OTHERS.search(text)
        return found.group(0) if found else None

    def negated(self, text: str) -> Negated | None:
        """The negated clauses of ``text`` (None when there are none)."""
        clauses = [m for m in _NEGATION.finditer(text) if m.group("body").strip()]
        if not clauses:
            return None
        rest, last = [], 0
        for m in clauses:
            rest.append(text[last : m.start()])
            last = m.end()
        rest.append(text[last:])
        leftover = re.sub(r"\s+", " ", " ".join(rest))
        leftover = re.sub(r"^[\s,.;:!?]+|(?<=\s)[,.;:!?]+(?=\s)", "", leftover).strip()
        return Negated(tuple(m.group("body").strip() for m in clauses), leftover)

    def vetoes(self, intent: str, negated: Negated, read: Reader) -> bool:
        """Whether the reading ``intent`` comes from a command the guest negated."""
        if intent in self._negated_wording:
            return False
        return any(read(clause) == intent for clause in negated.clauses)
