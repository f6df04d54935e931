"""Full turns against labelled lines: did the request reach the right action?

Each line goes through a real engine (templates, router, the model tiers the engine has, the
rules) as a fresh conversation, and is judged on what happened, not on what the router said:

* an in-scope line is **right** when the turn ends on the expected intent with the expected
  slots (a slot the line does not name may only hold its default) and the request was carried
  out: a handler ran, the rules refused it for a reason of their own (``rejected``), the
  question was answered (``task: qa``), or, for an ``impact: high`` intent, the guest is asked
  to confirm exactly that request;
* a multi-request line (``"requests": [...]``) is right when every request was carried out
  right, in any order;
* an out-of-scope or adversarial line (``oos``) is right when no handler ran.

A line that raises is counted as a crash (and wrong). Figures are given per ``style``.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from edgepipe.core.types import IntentMatch, Route, TurnResult
from edgepipe.eval.datasets import Example
from edgepipe.eval.stats import percentile
from edgepipe.pack.loader import Pack


@dataclass(frozen=True, slots=True)
class Judged:
    """One line's verdict."""

    example: Example
    right: bool
    got: str
    """What happened, in a few words (``lights_on{zone=bedroom} rules``)."""
    route: str
    reason: str
    ms: float
    crashed: bool = False


@dataclass
class TurnsReport:
    """Verdicts of a run, with figures per style."""

    judged: list[Judged] = field(default_factory=list)

    def by_style(self) -> dict[str, tuple[int, int]]:
        """``style -> (right, lines)``."""
        lines: Counter[str] = Counter()
        right: Counter[str] = Counter()
        for j in self.judged:
            style = j.example.style or "unlabelled"
            lines[style] += 1
            right[style] += j.right
        return {s: (right[s], lines[s]) for s in sorted(lines)}

    def routes(self) -> dict[str, int]:
        return dict(Counter(j.route for j in self.judged).most_common())

    def share_reason(self, needle: str) -> float:
        """The share of turns whose reason mentions ``needle`` (e.g. ``cloud``)."""
        if not self.judged:
            return 0.0
        return sum(needle in j.reason for j in self.judged) / len(self.judged)

    def latency(self) -> dict[str, float]:
        values = [j.ms for j in self.judged]
        if not values:
            return {"p50_ms": 0.0, "p95_ms": 0.0}
        return {
            "p50_ms": round(percentile(values, 0.5), 1),
            "p95_ms": round(percentile(values, 0.95), 1),
        }

    def as_dict(self) -> dict[str, Any]:
        styles = self.by_style()
        right = sum(r for r, _ in styles.values())
        lines = sum(n for _, n in styles.values())
        return {
            "lines": lines,
            "right": right,
            "rate": round(right / lines, 4) if lines else 0.0,
            "crashes": sum(j.crashed for j in self.judged),
            "styles": {
                s: {"right": r, "lines": n, "rate": round(r / n, 4)} for s, (r, n) in styles.items()
            },
            "routes": self.routes(),
            "latency": self.latency(),
            "misses": [
                {
                    "text": j.example.text,
                    "style": j.example.style,
                    "want": describe_wanted(j.example),
                    "got": j.got,
                    "reason": j.reason,
                }
                for j in self.judged
                if not j.right
            ],
        }


def describe_wanted(example: Example) -> str:
    return " + ".join(_describe(i, s) for i, s in example.requests)


def _describe(intent: str, slots: Mapping[str, Any]) -> str:
    inner = ",".join(f"{k}={v}" for k, v in sorted(slots.items()))
    return f"{intent}{{{inner}}}" if inner else intent


def _same(expected: Any, got: Any) -> bool:
    if isinstance(expected, int | float) and not isinstance(expected, bool):
        try:
            return float(got) == float(expected)
        except (TypeError, ValueError):
            return False
    return str(expected).strip().lower() == str(got).strip().lower()


def slots_right(pack: Pack, intent: str, expected: Mapping[str, Any], got: IntentMatch) -> bool:
    """The expected slots are there with those values; any other slot holds its default."""
    values = got.slot_values()
    specs = pack.intents[intent].spec.slots
    for name, want in expected.items():
        if name not in values or not _same(want, values[name]):
            return False
    for name, value in values.items():
        if name in expected:
            continue
        spec = specs.get(name)
        if spec is None or spec.default is None or not _same(spec.default, value):
            return False
    return True


def _carried_out(pack: Pack, result: TurnResult, intent: str) -> bool:
    loaded = pack.intents[intent]
    spec = loaded.spec
    route = result.decision.route
    if result.handler_executed or route == Route.REJECTED:
        return True
    if spec.impact == "high" and route == Route.CLARIFY:
        return result.reply.response_key == "system:confirm"
    # ``task`` (qa by default) only says how a model tier answers: a rules intent has a handler
    if spec.task == "qa" and loaded.policy.tier != "rules":
        return route in (Route.LOCAL_MODEL, Route.CLOUD) or result.reply.response_key.startswith(
            "local_model"
        )
    return False


def judge(pack: Pack, example: Example, result: TurnResult) -> tuple[bool, str]:
    """Whether ``result`` is right for ``example``, and what happened in a few words."""
    done = list(result.requests)
    got = " + ".join(_describe(m.name, m.slot_values()) for m in done) or "-"
    got += f" {result.decision.route}"
    if example.is_oos:
        return not result.handler_executed, got
    if len(example.requests) == 1:
        intent, slots = example.requests[0]
        match = result.intent
        ok = (
            match is not None
            and match.name == intent
            and slots_right(pack, intent, slots, match)
            and _carried_out(pack, result, intent)
        )
        return ok, got
    # several requests: each one carried out right, in any order
    left = list(done)
    for intent, slots in example.requests:
        hit = next(
            (m for m in left if m.name == intent and slots_right(pack, intent, slots, m)), None
        )
        if hit is None:
            return False, got
        left.remove(hit)
    return not left, got


def evaluate_turns(
    pack: Pack,
    examples: Iterable[Example],
    run: Callable[[str], TurnResult],
    *,
    on_line: Callable[[Judged], None] | None = None,
) -> TurnsReport:
    """Run every line through ``run`` (one fresh conversation per line) and judge it."""
    report = TurnsReport()
    for example in examples:
        start = time.perf_counter()
        try:
            result = run(example.text)
        except Exception as exc:  # a crash is a finding, not the end of the run
            judged = Judged(
                example,
                right=False,
                got=f"crash: {type(exc).__name__}: {exc}"[:200],
                route="crash",
                reason="crash",
                ms=(time.perf_counter() - start) * 1000,
                crashed=True,
            )
        else:
            ok, got = judge(pack, example, result)
            judged = Judged(
                example,
                right=ok,
                got=got,
                route=str(result.decision.route),
                reason=result.decision.reason,
                ms=result.total_ms,
            )
        report.judged.append(judged)
        if on_line is not None:
            on_line(judged)
    return report
