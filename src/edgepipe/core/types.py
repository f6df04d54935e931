"""Typed data that flows through a turn.

Everything here is a frozen dataclass: a stage receives values and returns new ones, it never
mutates what it was given. The only mutable object in a turn is the
:class:`~edgepipe.core.trace.TraceRecorder` that the turn owns and freezes into a :class:`Trace`
when the turn ends.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

SlotScalar = str | int | float | bool
"""The value types a slot can carry after normalisation."""


class Route(StrEnum):
    """The routes of edgepipe's own tiers and decisions. A tier a package adds routes under its
    own name, so a route is any ``str``; these members compare equal to their values."""

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
    session_id: str = "default"
    """The session (a room or a device) the turn belongs to."""


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

    route: str
    """The chosen tier (a :class:`Route`, or the name of a tier a package adds)."""
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
    """Coded error when the stage failed or refused (see :mod:`edgepipe.core.errors`)."""
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
    also: tuple[IntentMatch, ...] = ()
    """Further requests of the same sentence the turn answered, after ``intent``."""

    @property
    def requests(self) -> tuple[IntentMatch, ...]:
        """Every request the turn answered: ``intent`` and ``also``."""
        return (self.intent, *self.also) if self.intent is not None else self.also

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` form of a turn."""
        return {
            "turn_id": self.request.turn_id,
            "text": self.request.text,
            "session": self.request.session_id,
            "route": str(self.decision.route),
            "reason": self.decision.reason,
            "intent": self.intent.name if self.intent else None,
            "slots": self.intent.slot_values() if self.intent else {},
            "confidence": round(self.intent.confidence, 4) if self.intent else 0.0,
            "also": [{"intent": m.name, "slots": m.slot_values()} for m in self.also],
            "response": self.reply.text,
            "response_key": self.reply.response_key,
            "handler_executed": self.handler_executed,
            "trace": self.trace.as_list(),
            "total_ms": round(self.total_ms, 3),
        }
