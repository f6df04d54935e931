"""One engine, many rooms at once: sessions do not see each other's questions or state, and
the shared parts (matcher, router, rules, tiers, telemetry writer) give every thread the answer
it would have got alone."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edgepipe.core.types import TurnResult
from edgepipe.engine.engine import Engine
from edgepipe.engine.session import Session
from edgepipe.telemetry.store import TelemetryStore

TESTS = Path(__file__).resolve().parents[2] / "packs" / "hotel" / "tests"
THREADS = 8
TURNS = 200
FOLLOW_UPS = (
    "yes",
    "yes please",
    "no",
    "no thanks",
    "the second one",
    "the first one",
    "at seven please",
    "half past six",
    "two please",
    "to the airport",
)
"""Answers to the questions the assistant asks (confirmations, choices, missing slots): mixed
in at random, so that some land on a question of their own session, and would be misread if
another session's question were taken for it."""


def _pool() -> list[str]:
    lines: list[str] = []
    for name in (
        "utterances.jsonl",
        "holdout_utterances.jsonl",
        "dev_utterances.jsonl",
        "flex_utterances.jsonl",
        "flex_holdout_utterances.jsonl",
    ):
        for raw in (TESTS / name).read_text(encoding="utf-8").splitlines():
            if raw.strip():
                lines.append(json.loads(raw)["text"])
    for raw in (TESTS / "qa.jsonl").read_text(encoding="utf-8").splitlines()[::6]:
        lines.append(json.loads(raw)["question"])
    return lines


def _script(seed: int, pool: list[str]) -> list[str]:
    rng = random.Random(seed)
    return [
        rng.choice(FOLLOW_UPS) if rng.random() < 0.3 else rng.choice(pool) for _ in range(TURNS)
    ]


def _outcome(result: TurnResult) -> tuple[Any, ...]:
    intent = result.intent
    return (
        str(result.decision.route),
        result.decision.reason,
        intent.name if intent else None,
        tuple(sorted(intent.slot_values().items())) if intent else (),
        result.reply.text,
        result.handler_executed,
    )


def _run(session: Session, script: list[str]) -> list[tuple[Any, ...]]:
    return [_outcome(session.handle_text(text)) for text in script]


@pytest.mark.slow
def test_eight_rooms_at_once_answer_as_each_would_alone(
    make_engine: Callable[..., Engine], tmp_path: Path
) -> None:
    engine = make_engine(telemetry=TelemetryStore(tmp_path / "turns.db"))
    pool = _pool()
    scripts = [_script(seed, pool) for seed in range(THREADS)]
    alone = [_run(engine.session(f"alone-{i}"), script) for i, script in enumerate(scripts)]

    together: list[list[tuple[Any, ...]] | None] = [None] * THREADS
    errors: list[str] = []
    start = threading.Barrier(THREADS)

    def room(i: int) -> None:
        try:
            session = engine.session(f"room-{i}")
            start.wait(30)
            together[i] = _run(session, scripts[i])
        except BaseException as exc:  # collected and asserted below
            errors.append(f"room {i}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=room, args=(i,), name=f"room-{i}") for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(600)
    assert not errors, errors
    assert all(not t.is_alive() for t in threads)

    for i in range(THREADS):
        differences = [
            (n, scripts[i][n], a, b)
            for n, (a, b) in enumerate(zip(alone[i], together[i] or [], strict=True))
            if a != b
        ]
        assert not differences, differences[:5]
    # the mix exercised what it is meant to: questions, their answers, and several routes
    reasons = [row[1] for rows in alone for row in rows]
    assert (
        sum(r.startswith(("answered:", "confirmed", "chosen:", "declined")) for r in reasons) >= 8
    )
    assert len({row[0] for rows in alone for row in rows}) >= 4
    # every turn of both runs was recorded, each under its own session
    assert engine.flush_telemetry(60)
    assert engine.telemetry is not None
    assert engine.telemetry.count() == 2 * THREADS * TURNS
    assert engine.telemetry_dropped == 0


@pytest.mark.slow
def test_rooms_asking_the_local_model_at_once_get_their_own_answers(
    make_engine: Callable[..., Engine],
) -> None:
    """The local model serves one request at a time; rooms that ask it together each get the
    answer to their own question (a budget large enough that waiting for it is no failure)."""
    engine = make_engine(local_model="auto")
    questions = [
        "is there parking at the hotel",
        "can I bring my dog",
        "how do I get to the airport from here",
        "is there room service",
    ]
    alone = [
        _outcome(engine.session(f"alone-{i}").handle_text(q, budget_ms=60_000))
        for i, q in enumerate(questions)
    ]
    together: list[tuple[Any, ...] | None] = [None] * len(questions)

    def ask(i: int) -> None:
        together[i] = _outcome(
            engine.session(f"room-{i}").handle_text(questions[i], budget_ms=60_000)
        )

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(questions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert together == alone
    assert {row[0] for row in alone} == {"local_model"}
