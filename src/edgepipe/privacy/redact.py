"""Redaction of personal data from request text.

Used for the telemetry store's ``text_redacted`` column (raw text is only kept when a pack opts
in) and by the privacy gate (:mod:`edgepipe.privacy.gate`) for anything that leaves the device.
Patterns are deliberately greedy: a redacted digit that was harmless costs little; a phone number
in a log costs a lot.

Kinds, in the order the passes run (each writes ``<KIND>`` in place of what it found):

======  =======================================================================================
EMAIL   e-mail addresses
IBAN    bank account numbers (two letters, two check digits, 11-30 more characters)
NAME    the given names, whole words, case-insensitive; for a full name also each part alone
        ("Jane Doe" also redacts "Jane" and "Doe"); then words introduced as a name
        ("my name is ...", "Mr ...", "I'm Ana", "a table for Ana Costa", "a taxi for Sra.
        Lima", "my husband João", "my wife is called Inês", "a friend named Rui", "the
        reservation should be under Kowalski")
ADDRESS street lines with a house number and postcodes ("221B Baker Street", "Rua Garrett 120",
        "Friedrichstraße 43", "NW1 6XE", "1200-205"; :mod:`edgepipe.privacy.address`); the
        city and the country stay
DATE    dates with a year ("12/03/1985", "1985-03-12", "12 March 1985", "March 12, 1985") and
        any date or year after "born", "DOB", "date of birth", "birthday"; a date without a
        year ("14/07", "March 20") is left alone unless a birth cue precedes it
ID      passport and national ID numbers: 1-2 letters and 6-9 digits ("X1234567"); 9
        upper-case letters and digits ("C01X00T47", "12345678Z"); 7-8 digits and a letter;
        US SSNs; any number after "passport", "ID", "licence", "NIF"...; then any token shaped
        like a document number, whatever its label: six letters and digits or more, with a
        letter and two digits ("RSSMRA85T10A562S", "ABCDE1234F"), but not a flight, a
        quantity or a model ("TP1234", "1500mAh", "iPhone15"; :mod:`edgepipe.privacy.documents`)
CARD    13-19 digits, grouped or not (payment cards); a 3-4 digit CVV shortly after "cvv",
        "cvc", "security code", "card code", "three-digit code" ("the security code on the
        back is 482")
PHONE   grouped numbers (``+351 21 555 0140``, ``(555) 123-4567``, ``(+351) 912 345 678``,
        ``555-0140``), ``+`` or ``00`` and 8-15 digits, and 7-15 digits after "call",
        "phone", "mobile", "number"...
ROOM    the number in "room 412", "suite 12", "rm. 7", "I'm in 1203", "we're staying in 305"
NUMBER  any remaining run of 5+ digits (booking references, long numbers)
======  =======================================================================================

A time ("6:30", "0700"), a small count ("3 towels"), a temperature ("22") or a date without a
year survives.

Besides the redacted text, :func:`redact` says where in the original text each placeholder
stands (:class:`Span`): the privacy gate joins these with what other detectors found
(:mod:`edgepipe.privacy.detect`).

Long on purpose: it is a catalogue of patterns, each with the examples that shaped it, run in
one order; splitting it would hide the order that decides which kind wins.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field

from edgepipe.privacy.address import ADDRESS as _ADDRESS
from edgepipe.privacy.documents import DOCUMENT_NUMBER as _DOCUMENT_NUMBER
from edgepipe.privacy.documents import is_document_number

KINDS: tuple[str, ...] = (
    "EMAIL", "IBAN", "NAME", "ADDRESS", "DATE", "ID", "CARD", "PHONE", "ROOM", "NUMBER",
)  # fmt: skip
"""Every kind :func:`redact` can report, in the order its passes run."""

_Replacer = Callable[[re.Match[str]], str | None]
"""Returns the replacement for a match, or None to leave the match as it is."""

# ------------------------------------------------------------------------------------- patterns

# (the look-behind starts a match only where a run of address characters starts: linear time)
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)

_IBAN = re.compile(
    r"\b[A-Za-z]{2}\d{2}(?:[ -]?[A-Za-z0-9]{4}){2,7}(?:[ -]?[A-Za-z0-9]{1,3})?\b",
)

# Words that follow a name cue but are not names ("I'm Sorry", "a table for Tuesday").
_NOT_NAMES = frozenset(
    [
        "i",
        "me",
        "my",
        "we",
        "us",
        "our",
        "you",
        "your",
        "he",
        "she",
        "they",
        "it",
        "a",
        "an",
        "the",
        "this",
        "that",
        "these",
        "those",
        "and",
        "or",
        "but",
        "so",
        "if",
        "in",
        "on",
        "at",
        "to",
        "of",
        "for",
        "from",
        "by",
        "with",
        "about",
        "into",
        "onto",
        "over",
        "under",
        "up",
        "down",
        "out",
        "off",
        "as",
        "is",
        "am",
        "are",
        "be",
        "was",
        "were",
        "been",
        "not",
        "no",
        "yes",
        "ok",
        "okay",
        "just",
        "very",
        "really",
        "also",
        "too",
        "here",
        "there",
        "now",
        "then",
        "when",
        "what",
        "who",
        "where",
        "why",
        "how",
        "which",
        "please",
        "thanks",
        "thank",
        "sorry",
        "hi",
        "hello",
        "hey",
        "dear",
        "sir",
        "madam",
        "room",
        "suite",
        "floor",
        "hotel",
        "reception",
        "lobby",
        "bar",
        "pool",
        "spa",
        "gym",
        "restaurant",
        "breakfast",
        "lunch",
        "dinner",
        "table",
        "taxi",
        "car",
        "airport",
        "station",
        "beach",
        "city",
        "centre",
        "center",
        "downtown",
        "today",
        "tonight",
        "tomorrow",
        "yesterday",
        "morning",
        "afternoon",
        "evening",
        "night",
        "noon",
        "midnight",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
        "weekend",
        "week",
        "month",
        "year",
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "back",
        "away",
        "home",
        "done",
        "fine",
        "good",
        "great",
        "sure",
        "tired",
        "hungry",
        "cold",
        "hot",
        "late",
        "early",
        "ready",
        "here",
        "staying",
        "calling",
        "looking",
        "trying",
        "going",
        "leaving",
        "checking",
        "arriving",
        "travelling",
        "traveling",
    ]
)
_PARTICLES = frozenset(
    [
        "da", "de", "do", "dos", "das", "di", "del", "della", "dela", "van", "von", "der", "den",
        "ten", "ter", "le", "la", "du", "bin", "ibn", "al", "el", "y", "e", "st",
    ]
)  # fmt: skip
_TITLES = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "miss",
        "mx",
        "dr",
        "prof",
        "sir",
        "madam",
        "mme",
        "mlle",
        "sr",
        "sra",
        "srta",
        "herr",
        "frau",
    ]
)

_CAP_WORD = r"[A-ZÀ-ÖØ-Þ][^\W\d_]*(?:['’-][^\W\d_]+)*"
_ANY_WORD = r"[^\W\d_]+(?:['’-][^\W\d_]+)*"
_PARTICLE = r"(?:" + "|".join(sorted(_PARTICLES, key=len, reverse=True)) + r")"
_TITLE = r"(?:mr|mrs|ms|miss|mx|dr|prof|sir|madam|mme|mlle|sra?|srta|herr|frau)\.?"
_RELATIVE = (
    r"(?:wife|husband|partner|business\s+partner|son|daughter|friend|colleague|mother|father|"
    r"mum|mom|dad|sister|brother|boss|kid|child|guest|assistant|boyfriend|girlfriend|"
    r"fianc[eé]e?|cousin|aunt|uncle|niece|nephew|grandmother|grandfather|grandma|grandpa|"
    r"granny|nanny|manager|client|neighbou?r|driver|secretary|coworker|co-worker)"
)
# Capitalised words after a weak cue ("I'm", "this is", "Mr", "a table for", "my wife").
_NAME_AFTER_WEAK_CUE = re.compile(
    r"(?<![\w<])((?i:" + _TITLE + r"|i'?m|i\s+am|this\s+is|it'?s|call\s+me|ask\s+for|"
    r"(?:table|booking|reservation|room|taxi|message|package|parcel|letter|delivery|note|"
    r"visitor|guest)\s+(?:(?:is|was|'s|will\s+be|should\s+be|must\s+be)\s+)?"
    r"(?:for|from|under)|(?:book|put|reserve|hold)\s+(?:it|that|this|them|the\s+table)\s+under|"
    # "my wife Ana", "my wife is called Ana", "a friend named Rui"
    r"my\s+" + _RELATIVE + r"s?(?:\s+(?:(?:is|was)\s+)?(?:called|named))?,?|"
    r"(?:someone|somebody|a\s+(?:man|woman|guy|lady|gentleman|person|friend|girl|boy)|"
    + _RELATIVE
    + r")\s+(?:(?:is|was)\s+)?(?:called|named))"
    # a title after the cue belongs to the cue: "a taxi for Sra. Fernanda Lima"
    r"(?:\s+(?i:" + _TITLE + r"))?\s+)"
    rf"({_CAP_WORD}(?:\s+(?:{_PARTICLE}\s+)?{_CAP_WORD}){{0,2}})"
)
# Any words after a strong cue ("my name is maria santos", "under the name of okonkwo").
_NAME_AFTER_STRONG_CUE = re.compile(
    r"(?<![\w<])((?i:(?:my\s+)?name\s+is|name'?s|my\s+name'?s|under\s+(?:the\s+)?name(?:\s+of)?|"
    r"in\s+the\s+name\s+of|surname\s+is|first\s+name\s+is|last\s+name\s+is|"
    r"(?:sur|first\s+|last\s+|family\s+)?name\s*:)\s*)"
    rf"({_ANY_WORD}(?:\s+(?:{_PARTICLE}\s+)?{_ANY_WORD}){{0,2}})"
)

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_DAY = r"(?:0?[1-9]|[12]\d|3[01])"
_MON = r"(?:0?[1-9]|1[0-2])"
_ORD = r"(?:st|nd|rd|th)?"
_YEAR = r"(?:1[89]\d\d|20\d\d)"
_TEXT_DATE = (
    rf"{_DAY}{_ORD}\s+(?:of\s+)?{_MONTH},?\s+(?:{_YEAR}|'\d\d)"
    rf"|{_MONTH}\s+{_DAY}{_ORD},?\s+(?:{_YEAR}|'\d\d)"
)
_NUM_DATE = (
    rf"{_DAY}[/.-]{_DAY}[/.-](?:{_YEAR}|\d\d)"  # 12/03/1985, 03-12-85 (day and month either way)
    rf"|{_YEAR}[/.-]{_MON}[/.-]{_DAY}"  # 1985-03-12
)
_DATE = re.compile(rf"\b(?:{_NUM_DATE}|{_TEXT_DATE})\b", re.IGNORECASE)
# After a birth cue, a date without a year, a month and year, or a year alone is enough.
_BIRTH_DATE = re.compile(
    r"(\b(?:born(?:\s+(?:on|in))?(?:\s+the)?|d\.?o\.?b\.?|date\s+of\s+birth|birth\s*date|"
    r"birthday|b[-.]?day)(?:\s*(?:is|was|on|:|-|['’]s)\s*)*\s*(?:the\s+)?)"
    rf"({_NUM_DATE}|{_TEXT_DATE}|{_DAY}[/.-]{_DAY}|{_DAY}{_ORD}\s+(?:of\s+)?{_MONTH}"
    rf"|{_MONTH}\s+{_DAY}{_ORD}|{_MONTH}\s+{_YEAR}|{_YEAR})\b",
    re.IGNORECASE,
)

_ID_CUE = re.compile(
    r"(\b(?:passport|id|i\.d\.|id\s+card|identity\s+card|identity|national\s+id|citizen\s+card|"
    r"cart[aã]o\s+de\s+cidad[aã]o|document|doc|licen[cs]e|driver'?s\s+licen[cs]e|"
    r"driving\s+licen[cs]e|nif|nie|dni|ssn|social\s+security|tax\s+(?:id|number)|"
    r"personal\s+(?:id|number))"
    r"(?:\s+(?:number|num|no\.?|nr\.?|#|is|was|:))*\s*[:#]?\s*)"
    # the number: groups of letters and digits, each holding a digit (an optional short
    # letter prefix before them: "AB 1234567"), at least 5 characters in all
    r"((?=(?:[A-Za-z0-9][ -]?){5})(?:[A-Za-z]{1,3}[ -])?"
    r"[A-Za-z]*\d[A-Za-z0-9]*(?:[ -][A-Za-z]*\d[A-Za-z0-9]*)*)\b",
    re.IGNORECASE,
)
_ID = re.compile(
    r"\b[A-Za-z]{1,2}\d{6,9}\b"  # X1234567, AB1234567
    r"|\b\d{7,8}[A-Za-z]\b"  # 12345678z (a DNI typed in lower case)
    r"|\b(?=[A-Z0-9]{9}\b)(?=[A-Z]*\d)(?=[0-9]*[A-Z])[A-Z0-9]{9}\b"  # C01X00T47, 12345678Z
    r"|\b\d{3}-\d{2}-\d{4}\b"  # US social security number
)

_CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
# 3-4 digits a little after "cvv", "security code", "the three-digit code on the back"...
_CVV = re.compile(
    r"(\b(?:cvv2?|cvc2?|cv2|csc|security\s+(?:code|number|digits)|card\s+code|"
    r"verification\s+(?:code|number|value)|(?:three|four|3|4)[- ]digits?\s+(?:code|number))"
    r"\b[^\d\n<>]{0,25}?)(?<!\d)\d{3,4}\b(?![:.,/-]\d)",
    re.IGNORECASE,
)

_PHONE = re.compile(
    # +351 21 555 0140 / 555-123-4567 / +1 (555) 123-4567 / (555) 123-4567 / 555-0140
    r"\(\+\d{1,3}\)[ .-]?\d{2,4}(?:[ .-]\d{2,4}){1,4}\b"  # (+351) 912 345 678
    r"|(?:\+\d{1,3}[ .-]?)?\(\d{1,4}\)[ .-]?\d{2,4}(?:[ .-]\d{2,4}){1,3}\b"
    r"|(?:\+\d{1,3}[ .-]?)?\b\d{2,4}(?:[ .-]\d{2,4}){2,4}\b"
    r"|\b\d{3}[ .-]\d{4}\b"
    # +351912345678 / 00351912345678
    r"|\+\d{8,15}\b|\b00\d{8,14}\b"
)
# 7-15 digits after a phone cue, however grouped: "call me on 912345678", "mobile 91 234 5678"
_PHONE_CUE = re.compile(
    r"(\b(?:call|ring|phone|telephone|tel|mobile|cell|cellphone|whats\s*app|text|sms|reach|"
    r"contact|number|no\.|nr\.)\b[^\d\n<>@]{0,25}?)"
    r"(\+?\d[\d ()./-]{5,24}\d)(?!\d)",
    re.IGNORECASE,
)

_ROOM = re.compile(
    r"(\b(?:room|suite|rm\.?)\s*(?:(?:number|nr\.?|no\.?|is|was|=)\s*)*#?\s*)\d{1,5}\b",
    re.IGNORECASE,
)
# "I'm in 1203", "we're staying in 305", "I am at 12": a room, not a time or a quantity
_ROOM_STAY = re.compile(
    r"(\b(?:i'?m|i\s+am|we'?re|we\s+are|i'?m\s+staying|we'?re\s+staying|staying|stay)"
    r"\s+(?:in|at)\s+#?)\d{2,5}\b"
    r"(?![:.,]\d|\s*(?:%|percent|degrees|minutes?|mins?|hours?|hrs?|h\b|seconds?|secs?|am\b|"
    r"pm\b|a\.m|p\.m|o'?clock|days?|weeks?|nights?|people|persons|guests|steps|euros?|dollars?))",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"\b\d{5,}\b")


# ------------------------------------------------------------------------------------- helpers


@dataclass(frozen=True, slots=True)
class Span:
    """Personal data found in a text: ``text[start:end]``, of kind ``kind``, is to be replaced
    by ``<KIND>``."""

    start: int
    end: int
    kind: str


@dataclass(frozen=True, slots=True)
class Redaction:
    """Result of redacting one text."""

    text: str
    """The text with each personal datum replaced by ``<KIND>``."""
    kinds: tuple[str, ...]
    """The kinds replaced, one entry per replacement, in the order the passes ran."""
    spans: tuple[Span, ...] = field(default=(), compare=False)
    """Where each placeholder of ``text`` stands in the original text, in order: replacing
    each span of the original by ``<KIND>`` gives ``text``."""


@dataclass(slots=True)
class _Mark:
    """A placeholder in the text being redacted: ``[start, end)`` there, ``[ostart, oend)`` in
    the original."""

    start: int
    end: int
    ostart: int
    oend: int
    kind: str


class _Marked:
    """The text being redacted, and where each of its placeholders came from."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.marks: list[_Mark] = []

    def spans(self) -> tuple[Span, ...]:
        return tuple(Span(m.ostart, m.oend, m.kind) for m in self.marks)

    def replace(self, regions: list[tuple[int, int, str]]) -> None:
        """Replace each ``(start, end, kind)`` of the current text (in order, not overlapping)
        by ``<KIND>``. A region that cuts into a placeholder takes it whole."""
        if not regions:
            return
        text, old = self.text, self.marks
        pieces: list[str] = []
        marks: list[_Mark] = []
        size = 0  # length of the new text so far
        pos = 0  # how much of the current text is consumed
        shift = 0  # original position = current position + shift, at ``pos``
        mi = 0

        def emit(piece: str) -> int:
            nonlocal size
            pieces.append(piece)
            size += len(piece)
            return size - len(piece)

        for a, b, kind in regions:
            if a < pos and b <= pos:  # inside a region widened over a placeholder
                continue
            a = max(a, pos)
            while mi < len(old) and old[mi].end <= a:  # placeholders before: copied
                m = old[mi]
                emit(text[pos : m.start])
                start = emit(text[m.start : m.end])
                marks.append(_Mark(start, size, m.ostart, m.oend, m.kind))
                shift += (m.oend - m.ostart) - (m.end - m.start)
                pos = m.end
                mi += 1
            if mi < len(old) and old[mi].start < a:  # starts inside a placeholder
                a = old[mi].start
            b = max(a, b)
            emit(text[pos:a])
            ostart = a + shift
            while mi < len(old) and old[mi].start < b:  # placeholders inside: taken whole
                m = old[mi]
                b = max(b, m.end)
                shift += (m.oend - m.ostart) - (m.end - m.start)
                mi += 1
            start = emit(f"<{kind}>")
            marks.append(_Mark(start, size, ostart, b + shift, kind))
            pos = b
        for m in old[mi:]:
            emit(text[pos : m.start])
            start = emit(text[m.start : m.end])
            marks.append(_Mark(start, size, m.ostart, m.oend, m.kind))
            pos = m.end
        emit(text[pos:])
        self.text = "".join(pieces)
        self.marks = marks


def _region(m: re.Match[str], out: str, kind: str) -> tuple[int, int, str]:
    """The part of match ``m`` that its replacement ``out`` (kept head + ``<KIND>`` + kept
    tail) replaces; the whole match when ``out`` is not of that shape."""
    whole = m.group(0)
    placeholder = f"<{kind}>"
    i = out.find(placeholder)
    if i >= 0:
        head, tail = out[:i], out[i + len(placeholder) :]
        if whole.startswith(head) and whole.endswith(tail) and len(head) + len(tail) <= len(whole):
            return m.start() + len(head), m.end() - len(tail), kind
    return m.start(), m.end(), kind


def _sub(pattern: re.Pattern[str], marked: _Marked, kind: str, replace: _Replacer | None) -> int:
    """Replace what ``pattern`` finds in ``marked`` (``replace`` decides how much of each match
    becomes ``<KIND>``, or None: none of it); returns how many matches were replaced."""
    regions = []
    for m in pattern.finditer(marked.text):
        out = f"<{kind}>" if replace is None else replace(m)
        if out is not None:
            regions.append(_region(m, out, kind))
    marked.replace(regions)
    return len(regions)


def _keep_cue(kind: str) -> _Replacer:
    """Keep group 1 (the cue), replace the rest with ``<KIND>``."""
    return lambda m: f"{m.group(1)}<{kind}>"


def _name_words(m: re.Match[str]) -> str | None:
    """The words after a name cue, up to the first one that is not plausibly a name."""
    cue, words = m.group(1), m.group(2)
    kept: list[str] = []
    for word in re.split(r"(\s+)", words):
        if not word.strip():
            kept.append(word)
            continue
        if word.lower().strip("'’-") in _NOT_NAMES:
            break
        kept.append(word)
    name = "".join(kept).rstrip()
    while name and name.split()[-1].lower() in _PARTICLES:  # "Ana da" -> "Ana"
        name = name[: name.rfind(" ")].rstrip() if " " in name else ""
    if not name:
        return None
    return f"{cue}<NAME>{words[len(name) :]}"


def _digits(s: str) -> int:
    return sum(c.isdigit() for c in s)


def _iban(m: re.Match[str]) -> str | None:
    return "<IBAN>" if _digits(m.group(0)) >= 10 else None


def _document_number(m: re.Match[str]) -> str | None:
    return "<ID>" if is_document_number(m.group(0)) else None


def _phone_after_cue(m: re.Match[str]) -> str | None:
    return f"{m.group(1)}<PHONE>" if 7 <= _digits(m.group(2)) <= 15 else None


def _ascii_fold(s: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))


def name_variants(names: Iterable[str]) -> list[str]:
    """The names to redact for the given ones, longest first: each name, each part of a full
    name (not particles, titles or initials: "Maria da Silva" gives "Maria" and "Silva"), the
    parts of a double-barrelled name, and accent-free spellings."""
    out: set[str] = set()
    for raw in names:
        if not isinstance(raw, str):
            continue
        name = raw.strip()
        if not name:
            continue
        variants = {name, " ".join(name.split())}
        parts = name.split()
        if len(parts) > 1:
            variants.update(parts)
        for part in list(variants):
            if "-" in part and " " not in part:
                variants.update(p for p in part.split("-") if p)
        variants |= {_ascii_fold(v) for v in variants}
        for v in variants:
            key = v.lower().strip(".")
            if v != name and (len(key) < 2 or key in _PARTICLES or key in _TITLES):
                continue
            out.add(v)
    return sorted(out, key=lambda s: (-len(s), s))


# ------------------------------------------------------------------------------------- redact


def redact(text: str, *, names: Iterable[str] = (), keep: Collection[str] = ()) -> Redaction:
    """Replace e-mail addresses, bank account numbers, the given personal names and words
    introduced as a name, dates of birth, passport and ID numbers, card and phone numbers, room
    numbers and long digit runs with placeholders (``<EMAIL>``, ``<NAME>``...).

    ``keep`` names kinds (see :data:`KINDS`) to leave in the text; an unknown kind is a
    ``ValueError``.
    """
    unknown = set(keep) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown redaction kind(s): {', '.join(sorted(unknown))}")
    # A placeholder can expose a neighbour to a pattern ("0@0.0+@0.0": once the first address
    # is replaced, "+@0.0" reads as one): repeat until nothing changes, so redaction is
    # idempotent and what a second pass would catch is never sent.
    variants = name_variants(names)
    marked = _Marked(text)
    kinds = _redact_once(marked, variants, keep)
    for _ in range(3):
        again = _redact_once(marked, variants, keep)
        if not again:
            break
        kinds += again
    return Redaction(text=marked.text, kinds=tuple(kinds), spans=marked.spans())


def _redact_once(marked: _Marked, names: list[str], keep: Collection[str]) -> list[str]:
    kinds: list[str] = []

    def run(kind: str, pattern: re.Pattern[str], replace: _Replacer | None = None) -> None:
        if kind in keep:
            return
        n = _sub(pattern, marked, kind, replace)
        kinds.extend([kind] * n)

    run("EMAIL", _EMAIL)
    run("IBAN", _IBAN, _iban)
    for name in names:
        # whole words only, and never inside a placeholder already written
        run("NAME", re.compile(rf"(?<![\w<]){re.escape(name)}(?![\w>])", re.IGNORECASE))
    run("NAME", _NAME_AFTER_STRONG_CUE, _name_words)
    run("NAME", _NAME_AFTER_WEAK_CUE, _name_words)
    run("ADDRESS", _ADDRESS)
    run("DATE", _BIRTH_DATE, _keep_cue("DATE"))
    run("DATE", _DATE)
    run("ID", _ID_CUE, _keep_cue("ID"))
    run("ID", _ID)
    run("ID", _DOCUMENT_NUMBER, _document_number)
    run("CARD", _CARD)
    run("CARD", _CVV, _keep_cue("CARD"))
    run("PHONE", _PHONE)
    run("PHONE", _PHONE_CUE, _phone_after_cue)
    run("ROOM", _ROOM, _keep_cue("ROOM"))
    run("ROOM", _ROOM_STAY, _keep_cue("ROOM"))
    run("NUMBER", _NUMBER)
    return kinds
