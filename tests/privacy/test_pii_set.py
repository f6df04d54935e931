"""The hotel pack's PII test set (``packs/hotel/tests/pii_utterances.jsonl``) against the
privacy gate (:class:`edgepipe.privacy.gate.PrivacyGate`), built as the cloud tier builds it.

Each line is a guest request that could be escalated to a cloud assistant, with ``pii``: the
exact substrings that must never leave the device, and ``kinds``: the kinds of personal data
involved. Lines without personal data (``pii: []``) hold harmless numbers (times, counts,
prices, dates without a year) that redaction must leave alone.

What is checked is what the gate lets leave for an out-of-scope request of the hotel pack:
``PrivacyGate(names=[the room's guest], room_number=the room's number).check(text,
data_class=cloud.out_of_scope_privacy)``, the very call the cloud tier makes before anything is
sent (the gate redacts with :func:`edgepipe.privacy.redact.redact`, then removes the guest's
room number wherever it stands alone).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from edgepipe.pack.loader import Pack
from edgepipe.privacy.gate import DataClass, PrivacyGate
from edgepipe.privacy.redact import KINDS

PII_FILE = (
    Path(__file__).resolve().parents[2] / "packs" / "hotel" / "tests" / "pii_utterances.jsonl"
)
GUEST_NAME = "Maria Santos"
GUEST_ROOM = "412"
"""The hotel pack's room, which the lines of the file are written for (checked below)."""


def _load() -> list[dict]:
    lines = []
    for n, raw in enumerate(PII_FILE.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        row = json.loads(raw)
        row["line"] = n
        lines.append(row)
    return lines


LINES = _load()
PII_LINES = [row for row in LINES if row["pii"]]
CLEAN_LINES = [row for row in LINES if not row["pii"]]


def _id(row: dict) -> str:
    return f"L{row['line']}:{row['text'][:50]}"


@pytest.fixture(scope="module")
def gate_text(hotel_pack: Pack):  # type: ignore[no-untyped-def]
    """``gate_text(text)``: what the hotel pack's privacy gate lets leave for an out-of-scope
    request (as CloudTier.build makes the gate, and CloudTier.run asks it)."""
    room = hotel_pack.spec.context.room
    assert (room.guest_name, room.number) == (GUEST_NAME, GUEST_ROOM)
    data_class = DataClass(hotel_pack.spec.cloud.out_of_scope_privacy)
    assert data_class is DataClass.REDACT
    gate = PrivacyGate(names=[room.guest_name], room_number=room.number)

    def check(text: str) -> str:
        egress = gate.check(text, data_class=data_class)
        assert egress.allowed
        return egress.text

    return check


def _compact(s: str) -> str:
    """Letters and digits only, lower case: "+351 912-345 678" -> "351912345678"."""
    return re.sub(r"[^0-9a-z]", "", s.lower())


def _digit_runs(s: str) -> str:
    """``s`` with separators between digits removed: "4111 1111-1111" -> "411111111111"."""
    return re.sub(r"(?<=\d)[\s.()/+-]+(?=\d)", "", s)


def leaks(pii: str, out: str) -> list[str]:
    """How ``pii`` (or a respelling of it) still shows in ``out``; empty when it does not."""
    found = []
    # short strings ("12", "Ana", "123") as whole tokens only, longer ones anywhere
    if len(pii) < 5:
        if re.search(rf"(?<![0-9A-Za-z]){re.escape(pii)}(?![0-9A-Za-z])", out, re.IGNORECASE):
            found.append(pii)
    elif pii.lower() in out.lower():
        found.append(pii)
    digits = re.sub(r"\D", "", pii)
    if len(digits) >= 6 and digits in re.sub(r"[^\d<>]", "", _digit_runs(out)):
        found.append(f"digits {digits}")
    compact = _compact(pii)
    if any(c.isdigit() for c in pii) and len(compact) >= 6 and compact in _compact(out):
        found.append(f"compact {compact}")
    return found


# ---------------------------------------------------------------------------------- the file


def test_the_set_is_well_formed_and_large_enough():
    assert len(LINES) >= 120
    assert len(PII_LINES) >= 100
    assert len(CLEAN_LINES) >= 15
    for row in LINES:
        assert set(row) == {"text", "pii", "kinds", "line"}, row
        assert isinstance(row["text"], str) and row["text"].strip(), row
        for pii in row["pii"]:
            assert pii and pii in row["text"], (row["line"], pii)
        assert set(row["kinds"]) <= set(KINDS), row
        assert bool(row["pii"]) == bool(row["kinds"]), row
    texts = [row["text"] for row in LINES]
    assert len(texts) == len(set(texts)), "duplicate lines"


def test_every_kind_is_covered():
    covered = Counter(kind for row in PII_LINES for kind in row["kinds"])
    for kind in ("EMAIL", "IBAN", "NAME", "DATE", "ID", "CARD", "PHONE", "ROOM"):
        assert covered[kind] >= 5, (kind, covered)
    assert sum(len(row["kinds"]) > 1 for row in PII_LINES) >= 10


# ---------------------------------------------------------------------------------- redaction


@pytest.mark.parametrize("row", PII_LINES, ids=_id)
def test_no_pii_leaves_the_device(row, gate_text):
    out = gate_text(row["text"])
    leaked = {pii: how for pii in row["pii"] if (how := leaks(pii, out))}
    assert not leaked, f"line {row['line']} leaks {leaked}: {out!r}"


@pytest.mark.parametrize("row", CLEAN_LINES, ids=_id)
def test_harmless_numbers_survive(row, gate_text):
    text = row["text"]
    out = gate_text(text)
    # times, counts, prices, percentages, temperatures, dates without a year
    numbers = re.findall(r"\d+(?:[:./]\d+)*%?", text)
    assert numbers, f"line {row['line']} has no number to check"
    for number in numbers:
        assert number in out, f"line {row['line']}: {number!r} lost: {out!r}"
    assert out == text, f"line {row['line']} changed: {out!r}"


def test_no_pii_string_leaks_in_aggregate(gate_text):
    total, leaked = 0, []
    for row in PII_LINES:
        out = gate_text(row["text"])
        for pii in row["pii"]:
            total += 1
            if leaks(pii, out):
                leaked.append((row["line"], pii, out))
    assert total >= 150
    assert leaked == [], f"{len(leaked)} of {total} PII strings leaked: {leaked}"


def test_leak_check_sees_respellings():
    assert leaks("4111 1111 1111 1111", "card 4111-1111-1111-1111")
    assert leaks("+351 912 345 678", "call 00351912345678 or")
    assert leaks("PT50 0002 0123 1234 5678 9015 4", "iban pt500002012312345678 90154")
    assert leaks("12", "suite 12, please")
    assert not leaks("412", "room <ROOM> at 16:00")
    assert not leaks("12", "room <ROOM> for 120 euros")
    assert not leaks("Maria", "<NAME> from <ROOM>")
