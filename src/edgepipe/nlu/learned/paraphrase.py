"""Paraphrases of the router's training examples, written by rules in the wording guests use.

:func:`augment` adds, to a training set, variants of each example in four styles
(:class:`Paraphraser`: speech-recogniser, messy, polite and indirect), labelled like their
source, less duplicates and those a filter rejects (for a pack: variants its templates read as
another intent). A pack's router uses it when ``router.paraphrases`` > 0. Measured, the
variants did not pay on HWU64 or the hotel pack's held-out file (docs/router.md), so it is off
by default.

Long on purpose: most of it is the word tables the rules draw on (homophones, fillers, courtesy
and indirect frames, chat spellings), which change with the rules and are kept beside them.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

PARAPHRASE_VERSION = "para-1"
"""Changes whenever the rules below change what they generate (part of the router cache key)."""

STYLES = ("asr", "messy", "polite", "indirect")
"""The kinds of variant :class:`Paraphraser` writes (see its notes)."""

_WORD_RE = re.compile(r"[\w']+|[^\w\s']+")
_LEAD_RE = re.compile(
    r"^(?:(?:hey|hi|hello|ok|okay|um|uh|so|please|pls|plz|kindly)\b[,!]?\s+)*"
    r"(?:(?:can|could|would|will)\s+(?:you|u)\b(?:\s+(?:please|pls|kindly))?\s+)?"
    r"(?:please\s+|pls\s+|kindly\s+)?",
    re.IGNORECASE,
)
_TRAIL_RE = re.compile(
    r"[\s,]+(?:please|pls|plz|thanks|thank you|for me)[\s.!?]*$|[\s.!?]+$", re.IGNORECASE
)
_IMPERATIVE = frozenset((
    "turn", "switch", "put", "bring", "send", "book", "call", "get", "open", "close", "shut",
    "set", "make", "wake", "give", "tell", "show", "dim", "lower", "raise", "increase",
    "decrease", "reduce", "order", "clean", "change", "start", "stop", "play", "pause",
    "cancel", "remind", "find", "check", "add", "remove", "delete", "read", "help", "let",
    "lock", "unlock", "reserve", "schedule", "keep", "leave", "draw", "pull", "adjust", "mute",
    "unmute", "skip", "text", "email", "search", "look", "do", "arrange", "extend", "fix",
    "repair", "replace", "activate", "deactivate", "enable", "disable", "list", "create",
    "crank", "kill", "brighten", "darken", "heat", "cool", "warm", "drop", "move", "hang",
    "tidy", "vacuum", "refill", "restock", "empty", "take", "grab", "fetch", "organise",
    "organize", "sort", "go", "hold", "ring", "phone", "message", "post", "share", "save",
    "note", "mark",
))  # fmt: skip
_FILLERS = (
    "um", "uh", "like", "so", "you know", "er", "uhm", "hmm", "i mean", "okay so", "well",
    "um like", "uh so",
)  # fmt: skip
_HOMOPHONES: dict[str, tuple[str, ...]] = {
    "to": ("two", "too"), "two": ("to", "too"), "too": ("to", "two"), "for": ("four",),
    "four": ("for",), "till": ("tell",), "tell": ("till",), "there": ("their", "they're"),
    "their": ("there",), "they're": ("there",), "here": ("hear",), "hear": ("here",),
    "know": ("no",), "no": ("know",), "right": ("write",), "write": ("right",),
    "new": ("knew",), "by": ("buy", "bye"), "our": ("hour", "are"), "hour": ("our",),
    "one": ("won",), "won": ("one",), "weather": ("whether",), "wait": ("weight",),
    "see": ("sea",), "week": ("weak",), "eight": ("ate",), "would": ("wood",),
    "through": ("threw",), "wear": ("where",), "where": ("wear",), "which": ("witch",),
    "suite": ("sweet",), "some": ("sum",), "son": ("sun",), "meet": ("meat",),
    "break": ("brake",), "morning": ("mourning",), "board": ("bored",), "flour": ("flower",),
    "plane": ("plain",), "aloud": ("allowed",), "allowed": ("aloud",), "bare": ("bear",),
    "pair": ("pear",), "peace": ("piece",), "piece": ("peace",), "road": ("rode",),
    "sale": ("sail",), "steal": ("steel",), "tea": ("tee",), "tail": ("tale",),
    "waste": ("waist",), "whole": ("hole",), "your": ("you're",), "you're": ("your",),
    "its": ("it's",), "it's": ("its",), "then": ("than",), "than": ("then",),
    "check": ("cheque",), "in": ("inn",), "i'll": ("aisle",),
    "we'll": ("wheel",), "heal": ("heel",), "nose": ("knows",),
    "knows": ("nose",), "not": ("knot",), "night": ("knight",), "way": ("weigh",),
    "red": ("read",), "read": ("red",), "blue": ("blew",), "would've": ("would of",),
    "could've": ("could of",), "want": ("wont",), "wanna": ("want to",), "gonna": ("going to",),
}  # fmt: skip
_NEAR_SOUND = {"b": "p", "p": "b", "d": "t", "t": "d", "g": "c", "c": "g", "k": "g", "v": "f",
               "f": "v", "m": "n", "n": "m", "s": "z", "z": "s"}  # fmt: skip
_STOP = frozenset((
    "the", "a", "an", "to", "of", "in", "on", "off", "up", "down", "out", "for", "is", "are",
    "am", "be", "it", "its", "it's", "this", "that", "my", "me", "i", "you", "your", "we",
    "our", "and", "or", "but", "at", "by", "with", "from", "as", "so", "can", "could", "would",
    "will", "please", "do", "does", "did", "not", "no",
))  # fmt: skip
_DROPPABLE = ("the", "a", "an", "to", "my", "is", "are", "for", "of", "some", "it", "me")
_CHAT = {
    "you": "u", "your": "ur", "are": "r", "please": "pls", "thanks": "thx", "what": "wat",
    "the": "teh", "because": "cuz", "okay": "ok", "tonight": "tonite", "light": "lite",
    "through": "thru", "probably": "prob",
}  # fmt: skip
_KEYBOARD = (
    "qwertyuiop",
    "asdfghjkl",
    "zxcvbnm",
)
_TENS = {20: "twenty", 30: "thirty", 40: "forty", 50: "fifty", 60: "sixty", 70: "seventy",
         80: "eighty", 90: "ninety"}  # fmt: skip
_UNITS = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
]  # fmt: skip
_POLITE_REQUEST = (
    "could you please {c}", "can you {c} please", "would you {c} for me", "please {c}",
    "I was wondering if you could {c}", "would you be so kind as to {c}",
    "if it's not too much trouble, could you {c}", "do you think you could {c}",
    "hi there, could you {c}", "sorry to bother you, but could you {c}", "kindly {c}",
    "{c}, thank you", "{c} if you don't mind", "would you mind helping me {c}",
    "could you {c} when you get a chance",
)  # fmt: skip
_POLITE_PREFIX = (
    "hi", "hello", "hey there", "excuse me", "sorry to bother you", "good evening",
    "good morning", "hi, sorry", "hello there", "sorry", "hi, quick question",
)  # fmt: skip
_POLITE_SUFFIX = (
    "please", "thanks", "thank you", "thank you so much", "if you don't mind",
    "when you get a chance", "if possible", "cheers", "much appreciated", "thanks a lot",
)  # fmt: skip
_INDIRECT_REQUEST = (
    "I'd like you to {c}", "I need you to {c}", "is it possible to {c}",
    "any chance you could {c}", "I was hoping you could {c}",
    "it would be great if you could {c}", "I'd appreciate it if you could {c}",
    "is there a way to {c}", "I want to {c}", "can someone {c}", "I'd really like to {c}",
    "would it be possible to {c}", "could I ask you to {c}", "is it ok if you {c}",
)  # fmt: skip
_INDIRECT_WISH = (
    "any chance I could get {c}", "I was hoping to get {c}", "would it be possible to get {c}",
    "do you think I could have {c}", "I could really use {c}", "is there any way I can get {c}",
    "I'd love {c}", "could someone get me {c}",
)  # fmt: skip
_INDIRECT_QUESTION = (
    "I was just wondering, {x}", "quick question, {x}", "{x}, any idea", "{x}, do you know",
    "I have a question, {x}", "sorry, {x}", "could you tell me, {x}", "one thing, {x}",
)  # fmt: skip
_INDIRECT_STATEMENT = (
    "{x}, can you help", "{x}, can you do something about that", "just so you know, {x}",
    "{x}, what can you do", "hey so {x}", "{x}, could you sort that out", "I think {x}",
    "{x}, help",
)  # fmt: skip
_WISH_RE = re.compile(
    r"^(?:i'd like|i would like|i want|i need|can i get|could i get|can i have|could i have|"
    r"may i have|i'd love)\s+(?:some\s+)?(?P<c>.+)$",
    re.IGNORECASE,
)
_QUESTION_WORDS = frozenset((
    "what", "what's", "whats", "where", "where's", "when", "how", "how's", "who", "why",
    "which", "is", "are", "do", "does", "can", "could", "will", "would", "should", "may",
    "did", "has", "have", "any", "anything",
))  # fmt: skip


def _split_request(text: str) -> tuple[str, bool]:
    """The request without its courtesy ("can you please ..., thanks"), and whether it is an
    imperative (it starts with a verb a guest would command: "turn ...", "bring ...")."""
    core = _LEAD_RE.sub("", text.strip(), count=1)
    core = _TRAIL_RE.sub("", core).strip(" ,")
    if not core:
        return text.strip(), False
    first = core.split()[0].lower()
    return core, first in _IMPERATIVE


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[:2] != "I " and text[:2] != "I'" else text


def _typo(word: str, rng: random.Random) -> str:
    """One keyboard slip in ``word``: two letters swapped, one dropped, one doubled, or a
    neighbouring key hit instead."""
    if len(word) < 4 or not word.isalpha():
        return word
    i = rng.randrange(1, len(word) - 1)
    kind = rng.randrange(4)
    if kind == 0:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == 1:
        return word[:i] + word[i + 1 :]
    if kind == 2:
        return word[:i] + word[i] + word[i:]
    lower = word[i].lower()
    for row in _KEYBOARD:
        j = row.find(lower)
        if j >= 0:
            near = [row[k] for k in (j - 1, j + 1) if 0 <= k < len(row)]
            return word[:i] + rng.choice(near) + word[i + 1 :]
    return word


def _misheard(word: str, rng: random.Random) -> str:
    """What a speech recogniser might write for ``word``: a homophone when it has one, else a
    near-sounding form (plural dropped or added, "-ing" as "-in", a voiced/unvoiced first
    consonant swapped)."""
    lower = word.lower()
    if lower in _HOMOPHONES:
        return rng.choice(_HOMOPHONES[lower])
    if not lower.isalpha():
        return lower
    options: list[str] = []
    if lower.endswith("s") and len(lower) > 4 and not lower.endswith("ss"):
        options.append(lower[:-1])
    elif lower.isalpha() and len(lower) > 3:
        options.append(lower + "s")
    if lower.endswith("ing") and len(lower) > 5:
        options.append(lower[:-1])
    if lower[:1] in _NEAR_SOUND and len(lower) > 3:
        options.append(_NEAR_SOUND[lower[0]] + lower[1:])
    return rng.choice(options) if options else lower


def _number_words(token: str) -> str:
    if token.isdigit() and int(token) < 100:
        n = int(token)
        if n < 20:
            return _UNITS[n]
        tens, units = divmod(n, 10)
        return _TENS[tens * 10] + (f" {_UNITS[units]}" if units else "")
    if re.fullmatch(r"\d{1,2}:\d\d", token):
        hour, minute = token.split(":")
        spoken = _number_words(str(int(hour)))
        return spoken if minute == "00" else f"{spoken} {_number_words(str(int(minute)))}"
    return token


class Paraphraser:
    """Writes variants of a training example in the wording guests produce, from rules.

    Styles (:data:`STYLES`):

    * ``asr``: what a speech recogniser writes: lower case, no punctuation, numbers as words,
      fillers ("um", "uh", "like", "you know"), a homophone ("to"/"two", "till"/"tell") or a
      misheard word, sometimes a repeated word;
    * ``messy``: typed in a hurry or by a non-native speaker: typos, dropped small words ("turn
      off light"), chat spellings ("u", "pls"), non-native turns ("you can ...?", "open the
      TV", "I want ...");
    * ``polite``: courtesy around the request ("I was wondering if you could ...", "sorry to
      bother you, ...", "..., thank you so much");
    * ``indirect``: the request as a wish or a question ("I'd like you to ...", "any chance you
      could ...", "is there a way to ..."), or a statement framed as a problem for the
      assistant ("..., can you do something about that").

    Variants of one text depend only on the seed and that text (not on what else is
    augmented), so editing one example of a pack leaves every other example's variants as
    they were.
    """

    def __init__(self, seed: int = 0, styles: tuple[str, ...] = STYLES) -> None:
        unknown = set(styles) - set(STYLES)
        if unknown or not styles:
            raise ValueError(f"unknown paraphrase styles {sorted(unknown)} (known: {STYLES})")
        self.seed = seed
        self.styles = styles

    def variants(self, text: str, n: int) -> list[tuple[str, str]]:
        """Up to ``n`` (style, variant) pairs for ``text``, each of another style in turn
        (distinct from ``text`` and from each other)."""
        rng = random.Random(f"{PARAPHRASE_VERSION}:{self.seed}:{text}")
        start = rng.randrange(len(self.styles))
        order = [self.styles[(start + i) % len(self.styles)] for i in range(len(self.styles))]
        out: list[tuple[str, str]] = []
        seen = {_key(text)}
        for attempt in range(n * 3):
            style = order[attempt % len(order)]
            variant = self.rewrite(text, style, rng)
            key = _key(variant)
            if key and key not in seen:
                seen.add(key)
                out.append((style, variant))
                if len(out) >= n:
                    break
        return out

    def rewrite(self, text: str, style: str, rng: random.Random) -> str:
        """One variant of ``text`` in ``style``."""
        if style == "asr":
            return self._asr(text, rng)
        if style == "messy":
            return self._messy(text, rng)
        if style == "polite":
            return self._polite(text, rng)
        if style == "indirect":
            return self._indirect(text, rng)
        raise ValueError(f"unknown paraphrase style {style!r}")

    @staticmethod
    def _asr(text: str, rng: random.Random) -> str:
        words = [w for w in _WORD_RE.findall(text.lower()) if w[0].isalnum() or w[0] == "'"]
        words = [_number_words(w) for w in words]
        if not words:
            return text.lower()
        if rng.random() < 0.3:
            words = [w.replace("'", "") for w in words]
        # a homophone or a misheard content word (or both)
        homophones = [i for i, w in enumerate(words) if w in _HOMOPHONES]
        content = [i for i, w in enumerate(words) if w not in _STOP and len(w) > 3]
        did = False
        if homophones and rng.random() < 0.6:
            i = rng.choice(homophones)
            words[i] = rng.choice(_HOMOPHONES[words[i]])
            did = True
        if content and (not did or rng.random() < 0.3):
            i = rng.choice(content)
            words[i] = _misheard(words[i], rng)
        for _ in range(1 + (rng.random() < 0.4)):
            at = 0 if rng.random() < 0.5 else rng.randrange(len(words) + 1)
            words.insert(at, rng.choice(_FILLERS))
        if len(words) > 2 and rng.random() < 0.25:
            i = rng.randrange(len(words) - 1)
            words.insert(i, words[i])
        return " ".join(words)

    @staticmethod
    def _messy(text: str, rng: random.Random) -> str:
        core, imperative = _split_request(text)
        words = core.split()
        if imperative and rng.random() < 0.4:
            lead = words[0].lower()
            if lead == "turn" and len(words) > 1 and words[1].lower() in {"on", "off"}:
                words = ["open" if words[1].lower() == "on" else "close", *words[2:]]
            else:
                frame = rng.choice(("you can {c}?", "{c} for me", "I want that you {c}",
                                    "please to {c}", "{c}, is possible?"))  # fmt: skip
                words = frame.format(c=" ".join(words)).split()
        elif not imperative and rng.random() < 0.3:
            words = text.split()
            if len(words) > 2 and words[0].lower() == "i'd" and words[1].lower() == "like":
                words = ["I", "want", *words[2:]]
        else:
            words = text.split()
        lowered = [w.lower().strip(",.!?") for w in words]
        droppable = [i for i, w in enumerate(lowered) if w in _DROPPABLE]
        rng.shuffle(droppable)
        drop = set(droppable[: rng.randrange(1, 3)]) if droppable and rng.random() < 0.7 else set()
        words = [w for i, w in enumerate(words) if i not in drop]
        out: list[str] = []
        typos = 0
        for w in words:
            low = w.lower()
            if low in _CHAT and rng.random() < 0.35:
                out.append(_CHAT[low])
            elif typos < 2 and len(w) >= 4 and w.isalpha() and rng.random() < 0.25:
                out.append(_typo(w, rng))
                typos += out[-1] != w
            else:
                out.append(w)
        long_words = [i for i, w in enumerate(out) if len(w) >= 4 and w.isalpha()]
        for _ in range(3):  # at least one slip
            if typos or not long_words:
                break
            i = rng.choice(long_words)
            slipped = _typo(out[i], rng)
            typos += slipped != out[i]
            out[i] = slipped
        result = " ".join(out)
        return result.lower() if rng.random() < 0.5 else result

    @staticmethod
    def _polite(text: str, rng: random.Random) -> str:
        core, imperative = _split_request(text)
        if imperative and rng.random() < 0.7:
            return rng.choice(_POLITE_REQUEST).format(c=_lower_first(core))
        body = text.strip().rstrip(".!?")
        if rng.random() < 0.5:
            return f"{rng.choice(_POLITE_PREFIX)}, {_lower_first(body)}"
        return f"{body}, {rng.choice(_POLITE_SUFFIX)}"

    @staticmethod
    def _indirect(text: str, rng: random.Random) -> str:
        core, imperative = _split_request(text)
        if imperative:
            return rng.choice(_INDIRECT_REQUEST).format(c=_lower_first(core))
        wish = _WISH_RE.match(core)
        if wish:
            return rng.choice(_INDIRECT_WISH).format(c=wish.group("c"))
        body = text.strip().rstrip(".!?")
        words = body.split()
        question = text.rstrip().endswith("?") or (
            bool(words) and words[0].lower() in _QUESTION_WORDS
        )
        frames = _INDIRECT_QUESTION if question else _INDIRECT_STATEMENT
        return rng.choice(frames).format(x=_lower_first(body))


def _key(text: str) -> str:
    return " ".join(re.findall(r"[\w']+", text.lower()))


@dataclass(frozen=True, slots=True)
class Augmented:
    """A training set with its paraphrases: parallel lists, originals first."""

    texts: list[str]
    labels: list[str]
    sources: list[int]
    """For each row, the row it was written from (an original points at itself)."""
    styles: list[str]
    """For each row, the variant's style ("" for an original)."""
    rejected: int = 0
    """Variants dropped because the templates give them another intent."""
    duplicates: int = 0
    """Variants dropped because the training set already holds their words."""

    @property
    def n_variants(self) -> int:
        return sum(1 for style in self.styles if style)

    @property
    def n_originals(self) -> int:
        return len(self.texts) - self.n_variants


def augment(
    texts: Sequence[str],
    labels: Sequence[str],
    *,
    per_example: int,
    seed: int = 0,
    reject: Callable[[str, str], bool] | None = None,
    styles: tuple[str, ...] = STYLES,
) -> Augmented:
    """``texts`` and ``labels`` plus up to ``per_example`` variants of each text (see
    :class:`Paraphraser`), labelled like their source. A variant is dropped when its words
    (case and punctuation aside) are already in the set, or when ``reject(variant, label)``
    says so (for a pack: its templates match the variant to another intent)."""
    out = Augmented(
        texts=list(texts),
        labels=list(labels),
        sources=list(range(len(texts))),
        styles=[""] * len(texts),
    )
    if per_example <= 0:
        return out
    paraphraser = Paraphraser(seed, styles)
    seen = {_key(t) for t in texts}
    rejected = duplicates = 0
    for i, (text, label) in enumerate(zip(texts, labels, strict=True)):
        for style, variant in paraphraser.variants(text, per_example):
            key = _key(variant)
            if key in seen:
                duplicates += 1
                continue
            seen.add(key)
            if reject is not None and reject(variant, label):
                rejected += 1
                continue
            out.texts.append(variant)
            out.labels.append(label)
            out.sources.append(i)
            out.styles.append(style)
    return Augmented(
        texts=out.texts,
        labels=out.labels,
        sources=out.sources,
        styles=out.styles,
        rejected=rejected,
        duplicates=duplicates,
    )
