"""The privacy gate's detectors: the hand-written patterns, Presidio, and their union.

Lines are taken from the development PII set (``packs/hotel/tests/pii_extra_utterances.jsonl``)
only; the held-out set (``pii_holdout_utterances.jsonl``) is measured by
``bench/bench_privacy.py`` and never asserted on line by line here.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.privacy.test_pii_set import leaks

from edgepipe.core.resources import Resources
from edgepipe.pack.loader import Pack
from edgepipe.pack.schema import PackSpec
from edgepipe.privacy import presidio
from edgepipe.privacy.detect import (
    Detector,
    PatternDetector,
    apply_spans,
    build_detectors,
    merge_spans,
)
from edgepipe.privacy.gate import DataClass, PrivacyGate
from edgepipe.privacy.redact import KINDS, Span, redact

TESTS = Path(__file__).resolve().parents[2] / "packs" / "hotel" / "tests"
DEV = TESTS / "pii_extra_utterances.jsonl"
HOLDOUT = TESTS / "pii_holdout_utterances.jsonl"
GUEST, ROOM = "Maria Santos", "412"


def _load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


DEV_LINES = _load(DEV)


def dev_line(start: str) -> dict[str, Any]:
    """The development line that starts with ``start``."""
    (row,) = [row for row in DEV_LINES if row["text"].startswith(start)]
    return row


def leaked(row: dict[str, Any], sent: str) -> list[str]:
    return [pii for pii in row["pii"] if leaks(pii, sent)]


@pytest.fixture(scope="module")
def gate(presidio_detectors: tuple[Detector, ...]) -> PrivacyGate:
    """The hotel pack's gate with the chosen detectors (patterns + Presidio)."""
    return PrivacyGate(names=[GUEST], room_number=ROOM, detector=presidio_detectors)


def sent(gate: PrivacyGate, text: str, data_class: str = "redact") -> str:
    egress = gate.check(text, data_class=data_class)
    assert egress.allowed, egress.reason
    return egress.text


# ------------------------------------------------------------------------------ the data files


@pytest.mark.parametrize("path", [DEV, HOLDOUT], ids=["dev", "holdout"])
def test_the_extra_pii_sets_are_well_formed(path: Path) -> None:
    rows = _load(path)
    assert len(rows) >= 40
    assert sum(not row["pii"] for row in rows) >= 10
    for row in rows:
        assert set(row) == {"text", "pii", "kinds"}, row
        for pii in row["pii"]:
            assert pii and pii in row["text"], (pii, row["text"])
        assert set(row["kinds"]) <= set(KINDS), row
        assert bool(row["pii"]) == bool(row["kinds"]), row
    kinds = {kind for row in rows for kind in row["kinds"]}
    assert {"ADDRESS", "NAME", "DATE", "ID", "PHONE", "EMAIL", "CARD", "ROOM"} <= kinds
    texts = [row["text"] for row in rows]
    assert len(texts) == len(set(texts))


def test_the_held_out_set_shares_no_line_with_the_others() -> None:
    holdout = {row["text"] for row in _load(HOLDOUT)}
    others = {row["text"] for row in DEV_LINES} | {
        row["text"] for row in _load(TESTS / "pii_utterances.jsonl")
    }
    assert not holdout & others


# ------------------------------------------------------------------------------ patterns alone


@pytest.mark.parametrize(
    "row",
    [row for row in DEV_LINES if "ADDRESS" in row["kinds"]],
    ids=lambda row: row["text"][:40],
)
def test_the_patterns_remove_street_lines_and_postcodes(row: dict[str, Any]) -> None:
    gate = PrivacyGate(names=[GUEST], room_number=ROOM)
    out = sent(gate, row["text"])
    address_pii = [p for p in row["pii"] if any(c.isdigit() for c in p)]
    assert not [p for p in address_pii if leaks(p, out)], out
    assert "<ADDRESS>" in out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Send it to 221B Baker Street, London NW1 6XE please",
            "Send it to <ADDRESS>, London <ADDRESS> please",
        ),
        ("Rua Garrett 120, 1200-205 Lisboa", "<ADDRESS>, <ADDRESS> Lisboa"),
        ("Friedrichstraße 43, 10117 Berlin", "<ADDRESS>, <NUMBER> Berlin"),
        ("12 rue de Rivoli, 75004 Paris", "<ADDRESS>, <NUMBER> Paris"),
        ("ul. Marszałkowska 84, 00-514 Warszawa", "<ADDRESS>, <ADDRESS> Warszawa"),
        ("New York, NY 10118", "New York, <ADDRESS>"),
    ],
)
def test_addresses_keep_their_city(text: str, expected: str) -> None:
    assert redact(text).text == expected


@pytest.mark.parametrize(
    "text",
    [
        "Which shops on Rua Augusta are open on Sunday afternoon?",
        "bring 2 towels to the pool way",
        "Recommend a fado house in Alfama for 4 people on Saturday night.",
        "Is the 28 tram running at 7, and does it stop at Praça do Comércio?",
        "a budget of 50-100 euros for 2 people",
        "the 1990 World Cup, 2024 Olympics",
    ],
)
def test_places_and_numbers_are_not_addresses(text: str) -> None:
    assert redact(text).text == text


# ------------------------------------------------------------------------------ spans


_texts = st.one_of(
    st.text(max_size=80),
    st.lists(
        st.sampled_from(
            [
                "Ann ", "room 412 ", "call +351 21 555 0140 ", "a@b.pt ", "<NAME> ", "<", ">",
                "4111 1111 1111 1111 ", "221B Baker Street ", "NW1 6XE ", "1200-205 ", "12 ",
                "my name is ana ", "born 1985 ", "passport X1234567 ", "@", ".", "-", " ",
            ]
        ),
        max_size=14,
    ).map("".join),
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(_texts, st.lists(st.sampled_from(["Ann", "Ann Lee", "a.b", "<NAME>", "x"]), max_size=2))
def test_spans_rebuild_the_redacted_text(text: str, names: list[str]) -> None:
    """Replacing the reported spans of the original gives exactly the redacted text: the
    union with other detectors starts from the same ground."""
    result = redact(text, names=names)
    assert apply_spans(text, result.spans).text == result.text
    for span in result.spans:
        assert 0 <= span.start <= span.end <= len(text)
        assert span.kind in KINDS


def test_spans_point_into_the_original_text() -> None:
    text = "I'm Ana Lima, mail ana@example.com or call +351 912 345 678"
    result = redact(text)
    assert [(text[s.start : s.end], s.kind) for s in result.spans] == [
        ("Ana Lima", "NAME"),
        ("ana@example.com", "EMAIL"),
        ("+351 912 345 678", "PHONE"),
    ]


def test_the_union_joins_overlapping_spans_under_the_longest_kind() -> None:
    spans = [Span(0, 4, "NAME"), Span(2, 10, "PHONE"), Span(12, 14, "ROOM"), Span(14, 16, "ID")]
    assert merge_spans(spans) == [Span(0, 10, "PHONE"), Span(12, 14, "ROOM"), Span(14, 16, "ID")]
    out = apply_spans("abcdefghijklmnop", spans)
    assert out.text == "<PHONE>kl<ROOM><ID>"
    assert out.kinds == ("PHONE", "ROOM", "ID")


def test_a_detector_is_anything_with_a_name_and_find() -> None:
    class Shouting:
        name = "shouting"

        def find(self, text: str, *, names: Any = (), keep: Any = ()) -> list[Span]:
            return [Span(m.start(), m.end(), "NAME") for m in re.finditer(r"\b[A-Z]{3,}\b", text)]

    assert isinstance(Shouting(), Detector) and isinstance(PatternDetector(), Detector)
    gate = PrivacyGate(detector=[PatternDetector(), Shouting()], room_number="412")
    assert sent(gate, "tell BOB in room 412 to call 555-0140") == (
        "tell <NAME> in room <ROOM> to call <PHONE>"
    )


# ------------------------------------------------------------------------------ fallback


def test_without_presidio_the_gate_uses_the_patterns_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="edgepipe.privacy.detect"):
        gate = PrivacyGate(
            names=[GUEST],
            room_number=ROOM,
            detector="patterns+presidio",
            presidio_installed=False,
        )
    assert gate.detector_names == ("patterns",)
    assert "not installed" in caplog.text and "hand-written patterns only" in caplog.text
    row = dev_line("Emeka Eze needs a taxi")
    out = sent(gate, row["text"])
    assert "<ADDRESS>" in out and "<ID>" in out and "A12345678" not in out


def test_the_pack_setting_chooses_the_detectors(hotel_pack: Pack) -> None:
    assert hotel_pack.spec.privacy.detector == "patterns+presidio"  # the default
    gate = PrivacyGate.for_pack(hotel_pack, presidio_installed=False)
    assert gate.detector_names == ("patterns",)
    assert (gate.names, gate.room_number) == ([GUEST], ROOM)
    spec = PackSpec.model_validate({"name": "x", "privacy": {"detector": "patterns"}})
    assert spec.privacy.detector == "patterns"
    with pytest.raises(ValueError, match="detector"):
        PackSpec.model_validate({"name": "x", "privacy": {"detector": "regexes"}})
    with pytest.raises(ValueError, match="unknown privacy detector"):
        PrivacyGate(detector="regexes")
    with pytest.raises(ValueError, match="at least one detector"):
        PrivacyGate(detector=[])


# ------------------------------------------------------------------------------ bad input


class Broken:
    name = "broken"

    def find(self, text: str, *, names: Any = (), keep: Any = ()) -> list[Span]:
        raise RuntimeError("model crashed")


def test_a_failing_detector_sends_nothing() -> None:
    egress = PrivacyGate(detector=[PatternDetector(), Broken()]).check(
        "hello there", data_class="redact"
    )
    assert not egress.allowed and egress.text == "" and egress.bytes == 0
    assert egress.reason == "privacy:detector_failed:broken"


def _bad_input_gates(request: pytest.FixtureRequest) -> PrivacyGate:
    if request.param == "patterns":
        return PrivacyGate(names=[GUEST], room_number=ROOM)
    return PrivacyGate(
        names=[GUEST], room_number=ROOM, detector=request.getfixturevalue("presidio_detectors")
    )


bad_input_gate = pytest.fixture(
    params=["patterns", pytest.param("patterns+presidio", marks=pytest.mark.slow)]
)(_bad_input_gates)


@pytest.mark.parametrize("text", ["", "   ", "\n"])
def test_empty_text_passes_unchanged(bad_input_gate: PrivacyGate, text: str) -> None:
    egress = bad_input_gate.check(text, data_class="redact")
    assert egress.allowed and egress.text == text and egress.redacted == ()


def test_huge_text_is_not_sent(bad_input_gate: PrivacyGate) -> None:
    text = "call Maria on +351 912 345 678. " * 32_768  # 1 MiB
    egress = bad_input_gate.check(text, data_class="redact")
    assert not egress.allowed and egress.text == ""
    assert egress.reason.startswith("privacy:too_long:")


def test_lone_surrogates_are_replaced_and_the_rest_is_checked(
    bad_input_gate: PrivacyGate,
) -> None:
    text = "call me on +351 912 345 678 \udce9\ud800 at 221B Baker Street"
    egress = bad_input_gate.check(text, data_class="redact")
    assert egress.allowed
    assert egress.text == "call me on <PHONE> \ufffd\ufffd at <ADDRESS>"
    assert egress.bytes == len(egress.text.encode("utf-8"))


def test_text_that_is_not_a_string_is_a_type_error(bad_input_gate: PrivacyGate) -> None:
    with pytest.raises(TypeError, match="bytes"):
        bad_input_gate.check(b"call me", data_class="redact")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ Presidio


@pytest.mark.slow
def test_presidio_is_loaded_once(resources: Resources, presidio_detectors: Any) -> None:
    assert ("privacy.presidio", presidio.default_model()) in resources
    assert presidio.shared_analyzer(resources) is presidio.shared_analyzer()
    again = build_detectors("patterns+presidio", resources=resources)
    assert again[1]._analyzer is presidio_detectors[1]._analyzer  # type: ignore[attr-defined]


NAME_LINES = [
    "Can you check whether Chiamaka Okonkwo",
    "Wojciech Kowalczyk will be joining us",
    "Find a nice gift for Nguyen Thi Lan",
    "Remind Hiroshi Tanaka",
    "Please email the itinerary to Fatima Al-Zahra",
    "Li Wei and I",
    "Oluwaseun Adeyemi's flight",
    "Is it rude to call Mohammed bin Rashid",
    "Book a cooking class for Sakura Yamamoto",
    "Send the receipt to Tomasz Nowak",
]


@pytest.mark.slow
@pytest.mark.parametrize("start", NAME_LINES)
def test_names_without_a_cue_are_removed(gate: PrivacyGate, start: str) -> None:
    row = dev_line(start)
    plain = sent(PrivacyGate(names=[GUEST], room_number=ROOM), row["text"])
    assert leaked(row, plain), "the patterns alone already catch this line"
    out = sent(gate, row["text"])
    assert not leaked(row, out), out
    assert "<NAME>" in out


@pytest.mark.slow
@pytest.mark.parametrize(
    "row",
    [row for row in DEV_LINES if {"ADDRESS", "ID", "DATE"} & set(row["kinds"])],
    ids=lambda row: row["text"][:40],
)
def test_addresses_documents_and_birth_dates_are_removed(
    gate: PrivacyGate, row: dict[str, Any]
) -> None:
    out = sent(gate, row["text"])
    missed = [p for p in leaked(row, out) if not p[0].isalpha() or any(c.isdigit() for c in p)]
    assert not missed, out


@pytest.mark.slow
def test_the_dev_set_leaks_little(gate: PrivacyGate) -> None:
    total = leaking = 0
    for row in DEV_LINES:
        out = sent(gate, row["text"])
        total += len(row["pii"])
        leaking += len(leaked(row, out))
    assert total >= 80
    assert leaking / total <= 0.12, f"{leaking} of {total} PII strings leak"


@pytest.mark.slow
@pytest.mark.parametrize(
    "row", [row for row in DEV_LINES if not row["pii"]], ids=lambda row: row["text"][:40]
)
def test_plain_requests_are_left_alone(gate: PrivacyGate, row: dict[str, Any]) -> None:
    assert sent(gate, row["text"]) == row["text"]


@pytest.mark.slow
def test_in_scope_hotel_requests_are_left_alone(gate: PrivacyGate) -> None:
    rows = _load(TESTS / "utterances.jsonl")
    changed = [(r["text"], out) for r in rows if (out := sent(gate, r["text"])) != r["text"]]
    assert changed == []


@pytest.mark.slow
def test_allowed_requests_keep_dates_but_lose_names(gate: PrivacyGate) -> None:
    text = "book a table for Chiamaka Okonkwo on 12 March 2027 in room 412"
    out = sent(gate, text, DataClass.ALLOWED)
    assert "Chiamaka" not in out and "Okonkwo" not in out
    assert "12 March 2027" in out and "room 412" in out
