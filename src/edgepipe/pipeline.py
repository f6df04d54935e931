"""One turn through the pipeline: input -> templates -> route -> tier -> reply, with a trace.

:class:`Assistant` owns the pack, the room state, the tiers and the telemetry store, and runs
turns synchronously. Every stage is timed as a span of the turn's trace; whatever a stage does,
the turn ends with a reply.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from edgepipe.errors import InputError
from edgepipe.frames import (
    InputSource,
    IntentMatch,
    Outcome,
    Route,
    RouteDecision,
    TraceRecorder,
    TurnRequest,
    TurnResult,
)
from edgepipe.handlers import resolve_handler
from edgepipe.pack.loader import Pack, load_pack
from edgepipe.router.templates import matcher_for
from edgepipe.rules import RuleEngine
from edgepipe.state import InMemoryState, StateAdapter
from edgepipe.telemetry.store import TelemetryStore
from edgepipe.tiers.rules import Responder, RulesTier, TierOutcome

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\ufeff]")


def normalise_text(text: str, *, max_chars: int) -> str:
    """Validate and normalise request text (NFC, no control characters, single spaces).

    Raises :class:`InputError` with code ``input_empty``, ``input_too_long`` or
    ``input_not_text``.
    """
    if not isinstance(text, str):
        raise InputError(f"request must be text, got {type(text).__name__}", code="input_not_text")
    if len(text) > max_chars * 4:  # cheap bound before normalising a huge string
        raise InputError(
            f"request text is {len(text)} characters; the limit is {max_chars}",
            code="input_too_long",
        )
    cleaned = " ".join(_CONTROL.sub(" ", unicodedata.normalize("NFC", text)).split())
    if not cleaned:
        raise InputError("request text is empty", code="input_empty")
    if len(cleaned) > max_chars:
        raise InputError(
            f"request text is {len(cleaned)} characters; the limit is {max_chars}",
            code="input_too_long",
        )
    return cleaned


def load_assistant_pack(path: str | Path) -> Pack:
    """Load a pack and check its handler references against the runtime's handlers."""
    return load_pack(path, resolve_handler=resolve_handler)


class Assistant:
    """Runs turns for one pack."""

    def __init__(
        self,
        pack: Pack,
        *,
        state: StateAdapter | None = None,
        telemetry: TelemetryStore | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.pack = pack
        self.state: StateAdapter = state or InMemoryState(values=dict(pack.spec.state.initial))
        self.telemetry = telemetry
        self._clock: Clock = clock or (lambda: datetime.now(pack.timezone))
        self.matcher = matcher_for(pack)
        self.rules = RuleEngine(pack)
        self.responder = Responder(pack)
        self.rules_tier = RulesTier(pack, self.state, self.rules, self.responder)

    @classmethod
    def from_path(
        cls,
        path: str | Path,
        *,
        telemetry: TelemetryStore | None = None,
        clock: Clock | None = None,
    ) -> Assistant:
        """Load the pack at ``path`` and build an assistant for it."""
        return cls(load_assistant_pack(path), telemetry=telemetry, clock=clock)

    def now(self) -> datetime:
        """The assistant's current time (pack time zone)."""
        return self._clock()

    def handle_text(self, text: str, *, source: InputSource = InputSource.TEXT) -> TurnResult:
        """Run one turn for request ``text``. Raises :class:`InputError` for unusable input."""
        trace = TraceRecorder()
        with trace.span("input") as span:
            try:
                clean = normalise_text(text, max_chars=self.pack.spec.limits.max_text_chars)
            except InputError as exc:
                span.set(Outcome.INVALID, error_code=exc.code)
                raise
        request = TurnRequest(text=clean, source=source, received_at=self.now())
        now = request.received_at

        with trace.span("templates") as span:
            matched = self.matcher.match(clean, now)
            if matched.match is not None:
                span.set(Outcome.MATCH, detail=matched.match.name)
            elif matched.invalid_slot is not None:
                span.set(
                    Outcome.INVALID,
                    error_code="slot_invalid",
                    detail=f"{matched.invalid_intent}.{matched.invalid_slot}",
                )
            else:
                span.set(Outcome.NO_MATCH)

        with trace.span("route") as span:
            intent = matched.match
            if intent is not None:
                tier = self.pack.intents[intent.name].policy.tier
                if tier == "rules":
                    decision = RouteDecision(route=Route.RULES, reason=f"template:{matched.how}")
                else:
                    decision = RouteDecision(
                        route=Route.FALLBACK, reason=f"tier_unavailable:{tier}"
                    )
            elif matched.invalid_slot is not None:
                decision = RouteDecision(
                    route=Route.CLARIFY, reason=f"slot_invalid:{matched.invalid_slot}"
                )
            else:
                decision = RouteDecision(route=Route.FALLBACK, reason="no_match")
            span.set(Outcome.OK, detail=f"{decision.route.value}:{decision.reason}")

        outcome = self._answer(decision, intent, matched.invalid_slot, now, trace)
        if outcome.route is not decision.route or outcome.reason is not None:
            decision = RouteDecision(route=outcome.route, reason=outcome.reason or decision.reason)
        result = TurnResult(
            request=request,
            intent=intent,
            decision=decision,
            reply=outcome.reply,
            trace=trace.freeze(),
            total_ms=trace.elapsed_ms(),
            handler_executed=outcome.handler_executed,
        )
        if self.telemetry is not None:
            self.telemetry.record(result, pack=self.pack.name, pack_version=self.pack.spec.version)
        return result

    def _answer(
        self,
        decision: RouteDecision,
        intent: IntentMatch | None,
        invalid_slot: str | None,
        now: datetime,
        trace: TraceRecorder,
    ) -> TierOutcome:
        if decision.route is Route.RULES and intent is not None:
            return self.rules_tier.run(intent, now, trace)
        with trace.span("respond") as span:
            if decision.route is Route.CLARIFY:
                reply = self.responder.system(
                    "clarify_slot", slot=(invalid_slot or "").replace("_", " ")
                )
            else:
                reply = self.responder.system("fallback")
            span.set(Outcome.OK, detail=reply.response_key)
        return TierOutcome(route=decision.route, reason=None, reply=reply)
