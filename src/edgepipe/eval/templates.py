"""How well a pack's templates cover a labelled utterance file.

For each in-scope line: did the templates give the labelled intent with the labelled slots?
(Slots the line does not mention may only hold the intent's declared defaults.) For each
out-of-scope line: did any handler run? That must never happen.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from edgepipe.core.types import IntentMatch
from edgepipe.engine.engine import Engine
from edgepipe.eval.datasets import Example
from edgepipe.pack.loader import Pack


@dataclass(frozen=True, slots=True, kw_only=True)
class Miss:
    """An in-scope line the templates did not resolve correctly."""

    text: str
    style: str
    expected_intent: str
    expected_slots: dict[str, Any]
    got_intent: str | None
    got_slots: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class TemplateReport:
    """Coverage figures for one file."""

    total: dict[str, int] = field(default_factory=dict)
    """In-scope lines per style."""
    correct: dict[str, int] = field(default_factory=dict)
    """Correctly resolved in-scope lines per style."""
    oos_lines: int = 0
    oos_matched: int = 0
    """Out-of-scope lines that matched a template."""
    oos_executed: int = 0
    """Out-of-scope lines for which a handler ran (must be 0)."""
    misses: list[Miss] = field(default_factory=list)
    oos_examples: list[str] = field(default_factory=list)
    """Out-of-scope lines that matched, for inspection."""

    def rate(self, styles: Iterable[str] | None = None) -> float:
        """Share of in-scope lines (of the given styles; all when None) resolved correctly."""
        keys = list(self.total) if styles is None else [s for s in styles if s in self.total]
        n = sum(self.total[k] for k in keys)
        return sum(self.correct.get(k, 0) for k in keys) / n if n else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "in_scope": dict(self.total),
            "correct": dict(self.correct),
            "rate_by_style": {
                k: round(self.correct.get(k, 0) / v, 4) for k, v in self.total.items()
            },
            "rate_all": round(self.rate(), 4),
            "oos_lines": self.oos_lines,
            "oos_matched": self.oos_matched,
            "oos_handler_executed": self.oos_executed,
            "misses": [asdict(m) for m in self.misses],
        }


def slots_agree(match: IntentMatch, expected: dict[str, Any], pack: Pack) -> bool:
    """The labelled slots are all there with the labelled values; any others are defaults."""
    got = match.slot_values()
    if any(got.get(name) != value for name, value in expected.items()):
        return False
    specs = pack.intents[match.name].spec.slots
    return all(
        name in expected
        or (name in specs and specs[name].default == value and not match.slots[name].text)
        for name, value in got.items()
    )


def evaluate_templates(pack: Pack, examples: list[Example], *, at: datetime) -> TemplateReport:
    """Run every line through a fresh engine (templates only: no learned router, no model
    tiers; in-memory state, no telemetry) at time ``at``, each line in a session of its own."""
    with Engine(pack, clock=lambda: at, router=None, tiers=_NO_MODELS) as engine:
        return _evaluate(engine, examples)


_NO_MODELS = {"local_model": None, "cloud": None}


def _evaluate(engine: Engine, examples: list[Example]) -> TemplateReport:
    total: Counter[str] = Counter()
    correct: Counter[str] = Counter()
    misses: list[Miss] = []
    oos_lines = oos_matched = oos_executed = 0
    oos_examples: list[str] = []
    for i, ex in enumerate(examples):
        result = engine.session(f"line-{i}").handle_text(ex.text)
        match = (
            result.intent
            if result.intent is not None and result.intent.source == "template"
            else None
        )
        if ex.is_oos:
            oos_lines += 1
            if match is not None:
                oos_matched += 1
                oos_examples.append(f"{ex.text} -> {match.name}")
            oos_executed += int(result.handler_executed)
            continue
        style = ex.style or "unlabelled"
        total[style] += 1
        if (
            match is not None
            and match.name == ex.intent
            and slots_agree(match, dict(ex.slots), engine.pack)
        ):
            correct[style] += 1
        else:
            misses.append(
                Miss(
                    text=ex.text,
                    style=style,
                    expected_intent=ex.intent,
                    expected_slots=dict(ex.slots),
                    got_intent=match.name if match else None,
                    got_slots=match.slot_values() if match else {},
                )
            )
    return TemplateReport(
        total=dict(total),
        correct=dict(correct),
        oos_lines=oos_lines,
        oos_matched=oos_matched,
        oos_executed=oos_executed,
        misses=misses,
        oos_examples=oos_examples,
    )
