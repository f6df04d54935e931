"""Redaction of personal data from request text.

Used for the telemetry store's ``text_redacted`` column (raw text is only kept when a pack opts
in) and, later, for anything that leaves the device. Patterns are deliberately greedy: a
redacted digit that was harmless costs little; a phone number in a log costs a lot.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_EMAIL = ("EMAIL", re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE))
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    # 13-19 digits, optionally grouped by spaces or dashes: payment cards
    ("CARD", re.compile(r"\b(?:\d[ -]?){12,18}\d\b")),
    (
        "PHONE",
        re.compile(
            # +351 21 555 0140 / 555-123-4567 / +1 (555) 123-4567 / (555) 123-4567 / 555-0140
            r"(?:\+\d{1,3}[ .-]?)?\(\d{1,4}\)[ .-]?\d{2,4}(?:[ .-]\d{2,4}){1,3}\b"
            r"|(?:\+\d{1,3}[ .-]?)?\b\d{2,4}(?:[ .-]\d{2,4}){2,4}\b"
            r"|\b\d{3}[ .-]\d{4}\b"
        ),
    ),
    (
        "ROOM",
        re.compile(
            r"(\b(?:room|suite|rm\.?)\s*(?:(?:number|nr\.?|no\.?|is|was|=)\s*)*#?\s*)\d{1,5}\b",
            re.IGNORECASE,
        ),
    ),
    # any remaining run of 5+ digits (IDs, booking references, long numbers)
    ("NUMBER", re.compile(r"\b\d{5,}\b")),
)


@dataclass(frozen=True, slots=True)
class Redaction:
    """Result of redacting one text."""

    text: str
    """The text with each personal datum replaced by ``<KIND>``."""
    kinds: tuple[str, ...]
    """The kinds replaced, one entry per replacement, in the order the passes ran."""


def redact(text: str, *, names: Iterable[str] = ()) -> Redaction:
    """Replace e-mail addresses, the given personal names, card and phone numbers, room numbers
    and long digit runs with placeholders (``<EMAIL>``, ``<NAME>``...)."""
    kinds: list[str] = []
    out, n = _EMAIL[1].subn("<EMAIL>", text)
    kinds.extend([_EMAIL[0]] * n)
    for name in sorted({n.strip() for n in names if n and n.strip()}, key=len, reverse=True):
        # whole words only, and never inside a placeholder already written
        pattern = re.compile(rf"(?<![\w<]){re.escape(name)}(?![\w>])", re.IGNORECASE)
        out, n = pattern.subn("<NAME>", out)
        kinds.extend(["NAME"] * n)
    for kind, pattern in _PATTERNS:
        if kind == "ROOM":
            out, n = pattern.subn(lambda m: f"{m.group(1)}<ROOM>", out)
        else:
            out, n = pattern.subn(f"<{kind}>", out)
        kinds.extend([kind] * n)
    return Redaction(text=out, kinds=tuple(kinds))
