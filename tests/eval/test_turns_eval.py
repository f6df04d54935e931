"""``edgepipe eval turns``: labelled lines through real turns, judged on what was done."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from edgepipe.engine.engine import Engine
from edgepipe.eval.datasets import DatasetError, load_examples
from edgepipe.eval.turns import evaluate_turns
from edgepipe.pack.loader import Pack

TESTS = Path(__file__).resolve().parents[2] / "packs" / "hotel" / "tests"


def _write(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_multi_request_lines_load_in_the_order_spoken(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "l.jsonl",
        [
            {
                "text": "close the blinds and send up a pillow",
                "requests": [
                    {"intent": "blinds_close", "slots": {}},
                    {"intent": "request_amenity", "slots": {"item": "pillow"}},
                ],
                "style": "multi",
            }
        ],
    )
    (line,) = load_examples(path)
    assert line.requests == (("blinds_close", {}), ("request_amenity", {"item": "pillow"}))
    for bad, problem in (
        ({"text": "x", "requests": []}, "non-empty list"),
        ({"text": "x", "requests": ["tv_off"]}, "must be a JSON object"),
        ({"text": "x", "requests": [{"slots": {}}]}, "'intent'"),
    ):
        with pytest.raises(DatasetError, match=problem):
            load_examples(_write(tmp_path / "bad.jsonl", [bad]))


def test_turns_are_judged_on_what_was_done(
    make_engine: Callable[..., Engine], hotel_pack: Pack, tmp_path: Path
) -> None:
    engine = make_engine()
    rows: list[dict[str, object]] = [
        {"text": "turn off the lights in the bedroom", "intent": "lights_off",
         "slots": {"zone": "bedroom"}, "style": "plain"},
        # right intent, wrong slot: wrong
        {"text": "turn off the lights in the bathroom", "intent": "lights_off",
         "slots": {"zone": "bedroom"}, "style": "plain"},
        # a default the line does not name is fine
        {"text": "dim the lights", "intent": "lights_dim", "slots": {}, "style": "plain"},
        {"text": "turn off the tv and open the blinds", "style": "multi",
         "requests": [{"intent": "tv_off"}, {"intent": "blinds_open"}]},
        {"text": "turn off the tv and open the blinds", "style": "multi",
         "requests": [{"intent": "tv_off"}, {"intent": "blinds_close"}]},
        {"text": "who painted the mona lisa", "intent": "oos", "slots": {}, "style": "oos"},
        # a high-impact rules intent the classifier read is confirmed first: right when the
        # question is about exactly the request (every intent has ``task: qa`` by default)
        {"text": "Is posible late check out untill 2 pm?", "intent": "late_checkout",
         "slots": {"time": "14:00"}, "style": "messy"},
        {"text": "Is posible late check out untill 2 pm?", "intent": "late_checkout",
         "slots": {"time": "15:00"}, "style": "messy"},
    ]  # fmt: skip
    examples = load_examples(_write(tmp_path / "l.jsonl", rows))
    count = iter(range(100))
    report = evaluate_turns(
        hotel_pack, examples, lambda t: engine.session(f"s{next(count)}").handle_text(t)
    )
    assert [j.right for j in report.judged] == [True, False, True, True, False, True, True, False]
    assert report.judged[6].route == "clarify"
    summary = report.as_dict()
    assert summary["styles"]["plain"] == {"right": 2, "lines": 3, "rate": 0.6667}
    assert summary["crashes"] == 0 and len(summary["misses"]) == 3
    assert "lights_off{zone=bathroom}" in summary["misses"][0]["got"]


def test_a_line_that_crashes_is_counted_not_fatal(hotel_pack: Pack, tmp_path: Path) -> None:
    examples = load_examples(
        _write(tmp_path / "l.jsonl", [{"text": "hello there", "intent": "oos", "style": "oos"}])
    )

    def broken(_text: str) -> object:
        raise RuntimeError("boom")

    report = evaluate_turns(hotel_pack, examples, broken)  # type: ignore[arg-type]
    assert report.as_dict()["crashes"] == 1 and not report.judged[0].right


def test_the_pack_ships_held_out_flexible_lines_of_every_style() -> None:
    for name in ("flex_utterances.jsonl", "flex_holdout_utterances.jsonl"):
        lines = load_examples(TESTS / name)
        styles = {line.style for line in lines}
        assert {"plain", "implied", "messy", "asr", "multi", "oos", "adversarial"} <= styles
        assert all(len(line.requests) >= 2 for line in lines if line.style == "multi")
    dev = {line.text.lower() for line in load_examples(TESTS / "flex_utterances.jsonl")}
    held = {line.text.lower() for line in load_examples(TESTS / "flex_holdout_utterances.jsonl")}
    assert not dev & held
    assert len(dev) + len(held) >= 150
