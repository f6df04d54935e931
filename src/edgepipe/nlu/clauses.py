"""Self-corrections inside one sentence: "book a taxi to the train station, no wait, the
airport" asks for the airport (the template matcher's clause pass drops what is taken back)."""

from __future__ import annotations

import re
from collections.abc import Iterable

_TAKE_BACK = re.compile(
    r"^(?:(?:no|nope)(?!\s+(?:need|more|longer|not|problem|rush|worries)\b)(?:\s+wait)?"
    r"|wait|sorry|actually|i mean|i meant|or rather|rather|make that|scratch that"
    r"|correction|let me rephrase)\b[\s,]*",
    re.IGNORECASE,
)
"""Words that open a self-correction: "no wait", "sorry, I mean", "actually", "make that"."""
_ADDING = re.compile(r"\b(?:too|also|as well|and then)\b", re.IGNORECASE)
"""Words that add to what was said rather than replace it ("and actually close the blinds
too")."""


def take_backs(parts: Iterable[str]) -> tuple[list[str], list[bool]]:
    """Clauses without their self-correction openers, and for each whether it corrects what
    was said before it ("set it to 19, sorry, I mean 21": ``21`` corrects). An opener said as
    a clause of its own ("dim the lights, no, actually, switch them off") marks the next. A
    clause that says it adds ("... actually, close the blinds too") corrects nothing."""
    clauses: list[str] = []
    corrects: list[bool] = []
    pending = False
    for part in parts:
        rest = part.strip()
        took_back = False
        while (found := _TAKE_BACK.match(rest)) is not None and found.end() > 0:
            rest, took_back = rest[found.end() :].strip(), True
        if not rest:
            pending = pending or took_back
            continue
        clauses.append(rest)
        corrects.append((took_back or pending) and bool(clauses[:-1]) and not _ADDING.search(rest))
        pending = False
    return clauses, corrects
