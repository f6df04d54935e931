"""Typed data that flows through a turn.

Everything here is a frozen dataclass: a stage receives frames and returns new ones, it never
mutates what it was given. The only mutable object in a turn is the :class:`TraceRecorder`
that the pipeline owns and freezes into a :class:`Trace` when the turn ends.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

SlotScalar = str | int | float | bool
"""The value types a slot can carry after normalisation."""


class Route(StrEnum):
    """Which tier answered a turn."""

    RULES = "rules"
    """Deterministic templates, business rules and handlers."""
    LOCAL_MODEL = "local_model"
    """The small on-device language model."""
    CLOUD = "cloud"
    """A remote model, reached through the privacy gate."""
    FALLBACK = "fallback"
    """An honest degraded answer: nothing could handle the request."""
    CLARIFY = "clarify"
    """The assistant asks the guest a short question instead of guessing."""
    REJECTED = "rejected"
    """The request was understood but refused (a business rule, privacy or input policy)."""


class Outcome(StrEnum):
    """How a stage (or a whole turn) ended."""

    OK = "ok"
    MATCH = "match"
    NO_MATCH = "no_match"
    SKIPPED = "skipped"
    VIOLATION = "violation"
    INVALID = "invalid"
    ERROR = "error"
    TIMEOUT = "timeout"


class InputSource(StrEnum):
    """Where the request text came from."""

    TEXT = "text"
    VOICE = "voice"


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnRequest:
    """One guest request entering the pipeline."""

    text: str
    """The request text after input normalisation (Unicode NFC, collapsed whitespace)."""
    turn_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    """Unique id of the turn; also the key of its telemetry row."""
    source: InputSource = InputSource.TEXT
    """Typed text or a speech transcript."""
    received_at: datetime
    """Wall-clock time in the pack's time zone when the turn started."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SlotValue:
    """A slot filled from the request."""

    name: str
    """Slot name as declared by the intent."""
    value: SlotScalar
    """Normalised value (list output value, integer, ``HH:MM`` time...)."""
    text: str
    """The words of the request that produced the value ("" for defaults)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class IntentMatch:
    """The router's reading of a request: which intent, with which slots, how sure."""

    name: str
    """Intent name from the pack."""
    slots: Mapping[str, SlotValue]
    """Filled slots by name, including declared defaults."""
    confidence: float
    """Calibrated confidence in [0, 1]; an exact template match is 1.0."""
    source: str
    """What produced the match: ``template`` or ``classifier``."""

    def slot_values(self) -> dict[str, SlotScalar]:
        """Slot values by name, without the source text."""
        return {name: slot.value for name, slot in self.slots.items()}


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteDecision:
    """Which tier answers the turn, and why."""

    route: Route
    """The chosen tier."""
    reason: str
    """Machine-readable reason, e.g. ``template:lights_off`` or ``no_match``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    """What the assistant says back."""

    text: str
    """The reply text, ready for display or speech synthesis."""
    response_key: str
    """Which response template produced the text (``default``, ``rule:towel_limit``...)."""
    data: Mapping[str, Any] = field(default_factory=dict)
    """Structured result behind the text (handler data, violated rule...)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Span:
    """One stage of one turn."""

    stage: str
    """Stage name (``input``, ``templates``, ``route``, ``rules``, ``handler``, ``respond``...)."""
    start_ms: float
    """Offset of the stage start from the start of the turn, in milliseconds."""
    duration_ms: float
    """Wall time the stage took, in milliseconds."""
    outcome: Outcome
    """How the stage ended."""
    error_code: str | None = None
    """Coded error when the stage failed or refused (see :mod:`edgepipe.errors`)."""
    detail: str | None = None
    """Short human-readable note (a matched intent, a violated rule)."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form: ``{stage, ms, outcome}`` plus the optional fields."""
        out: dict[str, Any] = {
            "stage": self.stage,
            "start_ms": round(self.start_ms, 3),
            "ms": round(self.duration_ms, 3),
            "outcome": self.outcome.value,
        }
        if self.error_code is not None:
            out["error_code"] = self.error_code
        if self.detail is not None:
            out["detail"] = self.detail
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Trace:
    """The stages of one turn, in order."""

    spans: tuple[Span, ...]
    """Completed stages in start order."""

    def as_list(self) -> list[dict[str, Any]]:
        """JSON-ready list of spans."""
        return [span.as_dict() for span in self.spans]

    def stage(self, name: str) -> Span | None:
        """The first span of the named stage, if the turn ran it."""
        return next((span for span in self.spans if span.stage == name), None)


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnResult:
    """Everything a turn produced."""

    request: TurnRequest
    """The request as the pipeline saw it."""
    intent: IntentMatch | None
    """The intent reading, or None when nothing matched."""
    decision: RouteDecision
    """The tier that answered and why."""
    reply: Reply
    """What the assistant says."""
    trace: Trace
    """Per-stage timing and outcomes."""
    total_ms: float
    """Wall time of the whole turn in milliseconds."""
    handler_executed: bool = False
    """True when an intent handler ran (and may have changed room state)."""

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` form of a turn."""
        return {
            "turn_id": self.request.turn_id,
            "text": self.request.text,
            "route": self.decision.route.value,
            "reason": self.decision.reason,
            "intent": self.intent.name if self.intent else None,
            "slots": self.intent.slot_values() if self.intent else {},
            "confidence": round(self.intent.confidence, 4) if self.intent else 0.0,
            "response": self.reply.text,
            "response_key": self.reply.response_key,
            "handler_executed": self.handler_executed,
            "trace": self.trace.as_list(),
            "total_ms": round(self.total_ms, 3),
        }


class TraceRecorder:
    """Collects spans while a turn runs; the pipeline freezes it into a :class:`Trace`."""

    __slots__ = ("_spans", "_t0")

    def __init__(self) -> None:
        self._t0 = time.perf_counter()
        self._spans: list[Span] = []

    def elapsed_ms(self) -> float:
        """Milliseconds since the turn started."""
        return (time.perf_counter() - self._t0) * 1000.0

    @contextmanager
    def span(self, stage: str) -> Iterator[SpanHandle]:
        """Time a stage; the body sets the outcome on the yielded handle.

        An exception escaping the body records the span as ``error`` (with the error's code
        when it has one) and propagates.
        """
        handle = SpanHandle()
        start = self.elapsed_ms()
        try:
            yield handle
        except BaseException as exc:
            handle.outcome = Outcome.ERROR
            handle.error_code = handle.error_code or getattr(exc, "code", type(exc).__name__)
            raise
        finally:
            self._spans.append(
                Span(
                    stage=stage,
                    start_ms=start,
                    duration_ms=self.elapsed_ms() - start,
                    outcome=handle.outcome,
                    error_code=handle.error_code,
                    detail=handle.detail,
                )
            )

    def freeze(self) -> Trace:
        """The spans recorded so far as an immutable trace."""
        return Trace(spans=tuple(self._spans))


class SpanHandle:
    """Mutable outcome holder for a span that is still running."""

    __slots__ = ("detail", "error_code", "outcome")

    def __init__(self) -> None:
        self.outcome: Outcome = Outcome.OK
        self.error_code: str | None = None
        self.detail: str | None = None

    def set(
        self, outcome: Outcome, *, error_code: str | None = None, detail: str | None = None
    ) -> None:
        """Record how the stage ended."""
        self.outcome = outcome
        self.error_code = error_code
        self.detail = detail
