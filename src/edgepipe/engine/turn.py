"""One turn, start to end, with a trace.

    input -> templates -> [dialogue] -> [classifier] -> route -> [scope] -> tiers -> [shape]

Every stage is a span of the turn's trace; every decision carries its reason. Whatever a stage
does, the turn ends with a reply, a trace and a telemetry row: a stage that raises is recorded
as a ``turn`` span with outcome ``error`` and the pack's ``handler_error`` reply is given (the
session's waiting question stays as it was). Only unusable input raises
(:class:`~edgepipe.core.errors.InputError`), before anything else runs.

The telemetry row is handed to the engine's writer thread; nothing of it runs on the turn's
critical path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from edgepipe.core.deadline import Deadline, MonotonicClock
from edgepipe.core.errors import EdgepipeError, InputError
from edgepipe.core.text import normalise_text
from edgepipe.core.trace import TraceRecorder
from edgepipe.core.types import (
    InputSource,
    Outcome,
    Reply,
    Route,
    RouteDecision,
    TurnRequest,
    TurnResult,
)
from edgepipe.nlu.policy import Plan
from edgepipe.nlu.templates import TemplateResult
from edgepipe.tiers.base import TierOutcome, TierRequest, joined_reply
from edgepipe.tiers.chain import walk_order

if TYPE_CHECKING:
    from edgepipe.engine.engine import Engine
    from edgepipe.engine.session import Session

log = logging.getLogger(__name__)


class TurnRunner:
    """Runs turns for an engine's sessions. Holds no per-turn state (shared by threads).

    Long on purpose: a turn's stages (input, templates, dialogue, classifier, route, scope,
    tiers, shape) and what happens when one raises are read in order in this one class."""

    def __init__(self, engine: Engine, monotonic: MonotonicClock) -> None:
        self._engine = engine
        self._monotonic = monotonic

    def run(
        self,
        session: Session,
        text: str,
        *,
        source: InputSource,
        budget_ms: float | None,
        matched: TemplateResult | None,
    ) -> TurnResult:
        engine = self._engine
        pack = engine.pack
        budgets = pack.spec.budgets
        if budget_ms is None:
            budget_ms = budgets.voice_ms if source is InputSource.VOICE else budgets.text_ms
        elif budget_ms < 0:
            raise InputError(f"a turn budget cannot be negative ({budget_ms} ms)", code="usage")
        deadline = Deadline(budget_ms=budget_ms, clock=self._monotonic)
        trace = TraceRecorder()
        with trace.span("input") as span:
            try:
                clean = normalise_text(text, max_chars=pack.spec.limits.max_text_chars)
            except InputError as exc:
                span.set(Outcome.INVALID, error_code=exc.code)
                raise
        request = TurnRequest(
            text=clean, source=source, received_at=engine.now(), session_id=session.id
        )
        if matched is not None and clean != text:
            matched = None  # it was found for other words
        try:
            plan, outcome = self._decide_and_answer(session, request, matched, deadline, trace)
        except Exception as exc:  # a stage is code, sometimes a pack's: the turn still answers
            code = exc.code if isinstance(exc, EdgepipeError) else "turn_failed"
            log.exception("turn %s failed", request.turn_id)
            trace.add(
                "turn", Outcome.ERROR, error_code=code, detail=f"{type(exc).__name__}: {exc}"[:200]
            )
            plan = Plan(decision=RouteDecision(route=Route.FALLBACK, reason=code), chain=False)
            outcome = TierOutcome(
                route=Route.FALLBACK,
                reason=code,
                reply=engine.responder.system("handler_error"),
            )
        decision = plan.decision
        if outcome.route != decision.route or outcome.reason is not None:
            decision = RouteDecision(route=outcome.route, reason=outcome.reason or decision.reason)
        result = TurnResult(
            request=request,
            intent=plan.intent or outcome.intent,
            decision=decision,
            reply=outcome.reply,
            trace=trace.freeze(),
            total_ms=trace.elapsed_ms(),
            handler_executed=outcome.handler_executed,
            also=outcome.also,
        )
        engine.record(result, session)
        return result

    def _decide_and_answer(
        self,
        session: Session,
        request: TurnRequest,
        matched: TemplateResult | None,
        deadline: Deadline,
        trace: TraceRecorder,
    ) -> tuple[Plan, TierOutcome]:
        engine = self._engine
        text, now = request.text, request.received_at
        with trace.span("templates") as span:
            if matched is None:
                matched = engine.matcher.match(text, now)
            if matched.match is not None:
                span.set(Outcome.MATCH, detail=f"{matched.match.name} ({matched.how})")
            elif matched.invalid_slot is not None:
                span.set(
                    Outcome.INVALID,
                    error_code="slot_invalid",
                    detail=f"{matched.invalid_intent}.{matched.invalid_slot}",
                )
            else:
                span.set(Outcome.NO_MATCH)

        pending = session.pending
        plan: Plan | None = None
        if pending is not None and matched.match is None and not pending.expired(now):
            with trace.span("dialogue") as span:
                plan = engine.policy.answer_pending(pending, text, now)
                span.set(
                    Outcome.MATCH if plan is not None else Outcome.NO_MATCH,
                    detail=f"{pending.ask.value}:{'|'.join(pending.intents)}",
                )
        if plan is None:
            plan = self._route(text, matched, now, deadline, trace)
            plan = self._in_scope(session, text, matched, plan, now, deadline, trace)
        outcome = self._answer(plan, session, request, deadline, trace)
        session.pending = outcome.pending if outcome.pending is not None else plan.pending
        return plan, outcome

    def _route(
        self,
        text: str,
        matched: TemplateResult,
        now: datetime,
        deadline: Deadline,
        trace: TraceRecorder,
    ) -> Plan:
        engine = self._engine
        prediction = None
        if matched.match is None and matched.final:
            text = matched.final  # what the guest said after taking the rest back
        if matched.match is None and matched.invalid_slot is None and engine.router is not None:
            with trace.span("classifier") as span:
                prediction = engine.router.classify(text)
                span.set(
                    Outcome.NO_MATCH if prediction.abstained else Outcome.MATCH,
                    detail=f"{prediction.best}:{prediction.confidence:.2f}"
                    + (
                        f" {prediction.runner_up}:{prediction.runner_up_confidence:.2f}"
                        if prediction.runner_up
                        else ""
                    ),
                )
        with trace.span("route") as span:
            plan = engine.policy.plan(text, matched, prediction, now, deadline, trace)
            span.set(Outcome.OK, detail=f"{plan.decision.route}:{plan.decision.reason}")
        return plan

    def _in_scope(
        self,
        session: Session,
        text: str,
        matched: TemplateResult,
        plan: Plan,
        now: datetime,
        deadline: Deadline,
        trace: TraceRecorder,
    ) -> Plan:
        """The plan, unless the request instructs the assistant itself, or its reading is for
        another room or comes from a command the guest negated (:mod:`edgepipe.nlu.scope`;
        exact template matches are taken as written but for the first)."""
        if plan.intent is None:
            return plan
        engine = self._engine
        intent = plan.intent.name
        injected = engine.scope.injected(text)
        if injected is not None:
            with trace.span("scope") as span:
                span.set(Outcome.INVALID, error_code="injection", detail=f"{intent}: {injected!r}")
            return self._refusal("injection", engine.responder.system("fallback"))
        if matched.match is not None and matched.how == "exact":
            return plan
        room = engine.scope.other_room(text, session.room.number)
        elsewhere = engine.scope.elsewhere(text) if room is None else None
        if room is not None or elsewhere is not None:
            said = room or elsewhere
            with trace.span("scope") as span:
                span.set(Outcome.INVALID, error_code="other_room", detail=f"{intent}: {said!r}")
            return self._refusal(
                f"other_room:{said}", engine.responder.system("other_room", room=room or "")
            )
        negated = engine.scope.negated(text)
        if negated is None:
            return plan

        def read(fragment: str) -> str | None:
            found = engine.matcher.match(fragment, now).match
            if found is not None:
                return found.name
            if engine.router is None:
                return None
            prediction = engine.router.classify(fragment)
            return prediction.intent or (prediction.top if prediction.confidence >= 0.5 else None)

        with trace.span("scope") as span:
            kept = tuple(m for m in plan.also if not engine.scope.vetoes(m.name, negated, read))
            if kept != plan.also:  # "turn off the TV, no need to close the blinds"
                plan = replace(plan, also=kept)
            if not engine.scope.vetoes(intent, negated, read):
                span.set(Outcome.OK, detail=f"negated clause is not {intent}")
                return plan
            span.set(Outcome.NO_MATCH, error_code="negated", detail=f"{intent}: {negated.rest!r}")
        if negated.rest_says_something:
            rest = self._route(
                negated.rest, engine.matcher.match(negated.rest, now), now, deadline, trace
            )
            if rest.intent is not None and rest.intent.name != intent:
                return rest
        return self._refusal(f"negated:{intent}", engine.responder.system("declined"))

    @staticmethod
    def _refusal(reason: str, reply: Reply) -> Plan:
        return Plan(
            decision=RouteDecision(route=Route.FALLBACK, reason=reason), reply=reply, chain=False
        )

    def _answer(
        self,
        plan: Plan,
        session: Session,
        request: TurnRequest,
        deadline: Deadline,
        trace: TraceRecorder,
    ) -> TierOutcome:
        engine = self._engine
        if not plan.chain:
            with trace.span("respond") as span:
                reply: Reply = plan.reply or engine.responder.system("fallback")
                span.set(Outcome.OK, detail=reply.response_key)
            route = plan.decision.route if plan.reply is not None else Route.FALLBACK
            return TierOutcome(route=route, reason=None, reply=reply)
        tier_request = TierRequest(
            text=request.text,
            intent=plan.intent,
            also=plan.also,
            turn_id=request.turn_id,
            now=request.received_at,
            room=session.room,
            state=session.state,
            route_reason=plan.decision.reason,
            candidates=plan.candidates,
        )
        order = walk_order(
            plan.start,
            engine.fallback_of(plan.intent.name if plan.intent is not None else None),
            engine.pack.spec.policy.out_of_scope,
        )
        outcome = engine.chain.run(tier_request, order, deadline, trace, own=plan.start)
        if plan.also and plan.start != Route.RULES:
            outcome = self._and_also(outcome, tier_request, deadline, trace)
        return self._shaped(outcome, plan, deadline, trace)

    def _and_also(
        self,
        first: TierOutcome,
        request: TierRequest,
        deadline: Deadline,
        trace: TraceRecorder,
    ) -> TierOutcome:
        """The further requests of a sentence whose first one another tier answered ("book us
        a table at 8 and a taxi at half seven": the table goes to the cloud or is queued, the
        taxi to the rules), run by the rules tier after it; one reply for all."""
        rules = self._engine.tiers.get(Route.RULES)
        if rules is None or not request.also:
            return first
        first_also, *rest = request.also
        later = rules.run(replace(request, intent=first_also, also=tuple(rest)), deadline, trace)
        if not isinstance(later, TierOutcome):
            return first
        return replace(
            first,
            reply=joined_reply((first.reply, later.reply)),
            handler_executed=first.handler_executed or later.handler_executed,
            also=(*first.also, first_also, *later.also),
        )

    def _shaped(
        self, outcome: TierOutcome, plan: Plan, deadline: Deadline, trace: TraceRecorder
    ) -> TierOutcome:
        """Let the local model rephrase a rules reply when the intent asks for it."""
        engine = self._engine
        shaper = engine.shaper
        intent = plan.intent
        if (
            shaper is None
            or intent is None
            or outcome.route != Route.RULES
            or not engine.pack.intents[intent.name].spec.shape_reply
        ):
            return outcome
        reply = shaper.shape(outcome.reply, deadline, trace)
        return TierOutcome(
            route=outcome.route,
            reason=outcome.reason,
            reply=reply,
            handler_executed=outcome.handler_executed,
            intent=outcome.intent,
            also=outcome.also,
            pending=outcome.pending,
        )


WallClock = Callable[[], datetime]
"""The local time (pack time zone) a turn is received at."""
