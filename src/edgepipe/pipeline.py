"""One turn through the pipeline, with a trace.

    input -> templates -> [dialogue] -> [classifier] -> route -> tier -> reply

:class:`Assistant` owns the pack, the room state, the router, the tiers and the telemetry store,
and runs turns synchronously. Routing order: an exact template match, then the learned
classifier, then out of scope. Every stage is a span of the turn's trace and every decision
carries its reason (``template:exact``, ``classifier:0.93>=0.55``, ``oos:0.12<0.55``,
``ambiguous:lights_on|lights_dim:0.46/0.41``, ``confirm:0.62<0.70``...). Whatever a stage
does, the turn ends with a reply.

The classifier's reading is acted on only when it is above the calibrated threshold, clear of
the runner-up by ``router.clarify_margin``, at least the intent's ``policy.min_confidence``, and
the intent is not ``impact: high``; otherwise the assistant asks (see
:mod:`edgepipe.router.dialogue`). High-impact intents (bookings, billing) act without a question
only on a template match.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from edgepipe.deadline import Deadline
from edgepipe.errors import EdgepipeError, InputError
from edgepipe.frames import (
    InputSource,
    IntentMatch,
    Outcome,
    Reply,
    Route,
    RouteDecision,
    SlotValue,
    TraceRecorder,
    TurnRequest,
    TurnResult,
)
from edgepipe.handlers import resolve_handler

if TYPE_CHECKING:
    from edgepipe.router.classifier import Prediction
    from edgepipe.router.learned import LearnedRouter
    from edgepipe.router.slots import SlotSpotter
    from edgepipe.tiers.escalation import CloudTier
    from edgepipe.tiers.local_model import LocalModelTier
from edgepipe.pack.loader import Pack, load_pack
from edgepipe.router.dialogue import Ask, Pending, expiry, is_no, is_yes, ordinal_choice
from edgepipe.router.templates import TemplateResult, apply_defaults, matcher_for
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


@dataclass
class _Plan:
    """What the route stage decided."""

    decision: RouteDecision
    intent: IntentMatch | None = None
    reply: Reply | None = None
    """Set for clarifying questions and other replies that need no tier."""
    pending: Pending | None = None
    also: tuple[IntentMatch, ...] = ()
    """Further requests of the same sentence, answered after ``intent`` by the same tier."""


class Assistant:
    """Runs turns for one pack (one room, one conversation)."""

    def __init__(
        self,
        pack: Pack,
        *,
        state: StateAdapter | None = None,
        telemetry: TelemetryStore | None = None,
        clock: Clock | None = None,
        router: LearnedRouter | Literal["auto"] | None = "auto",
        local_model: LocalModelTier | Literal["auto"] | None = "auto",
        cloud: CloudTier | Literal["auto"] | None = "auto",
    ) -> None:
        """``router``, ``local_model``, ``cloud``: ``"auto"`` (what the pack enables and the
        installation provides), ``None`` (off), or a ready component."""
        self.pack = pack
        self.state: StateAdapter = state or InMemoryState(values=dict(pack.spec.state.initial))
        self.telemetry = telemetry
        self._clock: Clock = clock or (lambda: datetime.now(pack.timezone))
        self.matcher = matcher_for(pack)
        self.rules = RuleEngine(pack)
        self.responder = Responder(pack)
        self.rules_tier = RulesTier(pack, self.state, self.rules, self.responder)
        self.router: LearnedRouter | None = self._load_router() if router == "auto" else router
        self._spotter: SlotSpotter | None = None
        if self.router is not None:
            from edgepipe.router.slots import spotter_for

            self._spotter = spotter_for(pack)
        self._pending: Pending | None = None
        self.local: LocalModelTier | None = (
            self._load_local() if local_model == "auto" else local_model
        )
        self.cloud: CloudTier | None = self._load_cloud() if cloud == "auto" else cloud

    def _load_local(self) -> LocalModelTier | None:
        spec = self.pack.spec.local_model
        if not spec.enabled:
            return None
        try:
            from edgepipe.runtime import local_tier_for

            return local_tier_for(self.pack)
        except (ImportError, EdgepipeError) as exc:
            log.warning("local model unavailable: %s", exc)
            return None

    def _load_cloud(self) -> CloudTier | None:
        if not self.pack.spec.cloud.enabled:
            return None
        try:
            from edgepipe.runtime import cloud_tier_for

            return cloud_tier_for(self.pack, self.responder)
        except (ImportError, EdgepipeError) as exc:
            log.warning("cloud tier unavailable: %s", exc)
            return None

    def _load_router(self) -> LearnedRouter | None:
        if not self.pack.spec.router.enabled:
            return None
        if len(self.pack.intents) < 2:
            log.info("pack %s has fewer than two intents: templates only", self.pack.name)
            return None
        try:
            from edgepipe.router.learned import LearnedRouter

            return LearnedRouter.for_pack(self.pack)
        except (ImportError, EdgepipeError, ValueError) as exc:
            log.warning("learned router unavailable, using templates only: %s", exc)
            return None

    @classmethod
    def from_path(
        cls,
        path: str | Path,
        *,
        telemetry: TelemetryStore | None = None,
        clock: Clock | None = None,
        router: LearnedRouter | Literal["auto"] | None = "auto",
    ) -> Assistant:
        """Load the pack at ``path`` and build an assistant for it."""
        return cls(load_assistant_pack(path), telemetry=telemetry, clock=clock, router=router)

    def close(self) -> None:
        """Release the cloud client (connections, worker threads)."""
        if self.cloud is not None:
            self.cloud.client.close()

    def now(self) -> datetime:
        """The assistant's current time (pack time zone)."""
        return self._clock()

    # ------------------------------------------------------------------ a turn

    def handle_text(
        self, text: str, *, source: InputSource = InputSource.TEXT, budget_ms: float | None = None
    ) -> TurnResult:
        """Run one turn for request ``text`` within ``budget_ms`` (default: the pack's text
        budget). Raises :class:`InputError` for unusable input."""
        budgets = self.pack.spec.budgets
        deadline = Deadline(
            budget_ms=budget_ms
            or (budgets.voice_ms if source is InputSource.VOICE else budgets.text_ms)
        )
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
                span.set(Outcome.MATCH, detail=f"{matched.match.name} ({matched.how})")
            elif matched.invalid_slot is not None:
                span.set(
                    Outcome.INVALID,
                    error_code="slot_invalid",
                    detail=f"{matched.invalid_intent}.{matched.invalid_slot}",
                )
            else:
                span.set(Outcome.NO_MATCH)

        pending, self._pending = self._pending, None
        plan: _Plan | None = None
        if pending is not None and matched.match is None and not pending.expired(now):
            with trace.span("dialogue") as span:
                plan = self._answer_pending(pending, clean, now)
                span.set(
                    Outcome.MATCH if plan is not None else Outcome.NO_MATCH,
                    detail=f"{pending.ask.value}:{'|'.join(pending.intents)}",
                )

        if plan is None:
            plan = self._route(clean, matched, now, trace, deadline)

        outcome = self._answer(plan, clean, now, trace, deadline, turn_id=request.turn_id)
        self._pending = plan.pending
        decision = plan.decision
        if outcome.route is not decision.route or outcome.reason is not None:
            decision = RouteDecision(route=outcome.route, reason=outcome.reason or decision.reason)
        result = TurnResult(
            request=request,
            intent=plan.intent,
            decision=decision,
            reply=outcome.reply,
            trace=trace.freeze(),
            total_ms=trace.elapsed_ms(),
            handler_executed=outcome.handler_executed,
        )
        if self.telemetry is not None:
            self.telemetry.record(result, pack=self.pack.name, pack_version=self.pack.spec.version)
        return result

    # ------------------------------------------------------------------ routing

    def _route(
        self,
        text: str,
        matched: TemplateResult,
        now: datetime,
        trace: TraceRecorder,
        deadline: Deadline,
    ) -> _Plan:
        prediction = None
        if matched.match is None and matched.invalid_slot is None and self.router is not None:
            with trace.span("classifier") as span:
                prediction = self.router.classify(text)
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
            plan = self._policy(text, matched, prediction, now)
            span.set(Outcome.OK, detail=f"{plan.decision.route.value}:{plan.decision.reason}")
        if plan.pending is not None and plan.pending.ask is Ask.SLOT and self.local is not None:
            plan = self._fill_slots_with_model(plan, text, now, trace, deadline)
        return plan

    def _fill_slots_with_model(
        self, plan: _Plan, text: str, now: datetime, trace: TraceRecorder, deadline: Deadline
    ) -> _Plan:
        """Before asking the guest for a slot, let the local model try (validated)."""
        assert self.local is not None and plan.pending is not None
        intent = plan.pending.intents[0]
        specs = self.pack.intents[intent].spec.slots
        known = dict(plan.pending.slots)
        missing = [n for n, s in specs.items() if s.required and n not in known]
        found = self.local.extract_slots(intent, text, missing, now, deadline, trace)
        if not found:
            return plan
        slots = {**known, **found}
        if any(n not in slots for n in missing):
            return plan
        match = IntentMatch(
            name=intent,
            slots=apply_defaults(specs, slots),
            confidence=plan.pending.confidence,
            source="classifier",
        )
        return self._to_tier(match, f"slots:local_model:{','.join(sorted(found))}", now)

    def _policy(
        self, text: str, matched: TemplateResult, prediction: Prediction | None, now: datetime
    ) -> _Plan:
        if matched.match is not None:
            plan = self._to_tier(matched.match, f"template:{matched.how}", now)
            if plan.decision.route is Route.RULES:
                plan.also = tuple(
                    m for m in matched.also if self.pack.intents[m.name].policy.tier == "rules"
                )
            return plan
        if matched.invalid_slot is not None and matched.invalid_intent is not None:
            return self._ask_slot(
                matched.invalid_intent, {}, matched.invalid_slot, now, reason="slot_invalid"
            )
        if prediction is None:
            return _Plan(decision=RouteDecision(route=Route.FALLBACK, reason="no_match"))
        from edgepipe.router.classifier import OOS_LABEL

        spec = self.pack.spec.router
        runner = prediction.runner_up
        close_call = (
            prediction.best != OOS_LABEL
            and runner is not None
            and prediction.confidence - prediction.runner_up_confidence <= spec.clarify_margin
            and prediction.confidence + prediction.runner_up_confidence >= prediction.threshold
        )
        if close_call:
            assert runner is not None
            name = prediction.top
            odds = f"{prediction.confidence:.2f}/{prediction.runner_up_confidence:.2f}"
            reason = f"ambiguous:{name}|{runner}:{odds}"
            return _Plan(
                decision=RouteDecision(route=Route.CLARIFY, reason=reason),
                reply=self.responder.system(
                    "choose", first=self._summary(name), second=self._summary(runner)
                ),
                pending=Pending(
                    ask=Ask.CHOOSE,
                    intents=(name, runner),
                    confidence=prediction.confidence,
                    expires_at=expiry(now, spec.confirm_ttl_s),
                ),
            )
        if prediction.abstained:
            reason = (
                f"oos:class:{prediction.confidence:.2f}"
                if prediction.best == OOS_LABEL
                else f"oos:{prediction.confidence:.2f}<{prediction.threshold:.2f}"
            )
            rescued = self._qa_rescue(text, reason)
            if rescued is not None:
                return rescued
            route = Route.CLOUD if self.cloud is not None else Route.FALLBACK
            return _Plan(decision=RouteDecision(route=route, reason=reason))
        assert prediction.intent is not None
        name = prediction.intent
        assert self._spotter is not None
        slots, missing = self._spotter.spot(name, text, now)
        policy = self.pack.intents[name].policy
        high_impact = self.pack.intents[name].spec.impact == "high"
        if prediction.confidence < policy.min_confidence or high_impact:
            why = (
                f"confirm:{prediction.confidence:.2f}<{policy.min_confidence:.2f}"
                if prediction.confidence < policy.min_confidence
                else f"confirm:high_impact:{prediction.confidence:.2f}"
            )
            return _Plan(
                decision=RouteDecision(route=Route.CLARIFY, reason=why),
                intent=IntentMatch(
                    name=name, slots=slots, confidence=prediction.confidence, source="classifier"
                ),
                reply=self.responder.system("confirm", action=self._summary(name)),
                pending=Pending(
                    ask=Ask.CONFIRM,
                    intents=(name,),
                    slots=slots,
                    confidence=prediction.confidence,
                    expires_at=expiry(now, spec.confirm_ttl_s),
                ),
            )
        if missing:
            return self._ask_slot(
                name,
                slots,
                missing[0],
                now,
                reason="slot_missing",
                confidence=prediction.confidence,
            )
        match = IntentMatch(
            name=name, slots=slots, confidence=prediction.confidence, source="classifier"
        )
        return self._to_tier(
            match, f"classifier:{prediction.confidence:.2f}>={prediction.threshold:.2f}", now
        )

    def _qa_rescue(self, text: str, reason: str) -> _Plan | None:
        """An out-of-scope reading that the information page clearly answers goes to the local
        question-answering intent instead of the cloud (see ``local_model.qa_rescue_score``)."""
        spec = self.pack.spec.local_model
        if self.local is None or spec.qa_rescue_score is None:
            return None
        qa = next(
            (
                name
                for name, i in self.pack.intents.items()
                if i.spec.task == "qa" and i.policy.tier == "local_model"
            ),
            None,
        )
        if qa is None:
            return None
        score = self.local.retrieval_score(text)
        if score < spec.qa_rescue_score:
            return None
        return _Plan(
            decision=RouteDecision(
                route=Route.LOCAL_MODEL, reason=f"{reason}>page:{score:.2f}>={spec.qa_rescue_score}"
            ),
            intent=IntentMatch(name=qa, slots={}, confidence=score, source="retrieval"),
        )

    def _to_tier(self, intent: IntentMatch, reason: str, now: datetime) -> _Plan:
        tier = self.pack.intents[intent.name].policy.tier
        if tier == "rules":
            return _Plan(decision=RouteDecision(route=Route.RULES, reason=reason), intent=intent)
        if tier == "local_model" and self.local is not None:
            return _Plan(
                decision=RouteDecision(route=Route.LOCAL_MODEL, reason=reason), intent=intent
            )
        if tier == "cloud" and self.cloud is not None:
            return _Plan(decision=RouteDecision(route=Route.CLOUD, reason=reason), intent=intent)
        if (
            tier == "cloud"
            and self.local is not None
            and self.pack.intents[intent.name].spec.task == "qa"
        ):
            return _Plan(
                decision=RouteDecision(route=Route.LOCAL_MODEL, reason=f"{reason}>no_cloud"),
                intent=intent,
            )
        return _Plan(
            decision=RouteDecision(route=Route.FALLBACK, reason=f"tier_unavailable:{tier}"),
            intent=intent,
        )

    def _ask_slot(
        self,
        intent: str,
        slots: dict[str, SlotValue],
        slot: str,
        now: datetime,
        *,
        reason: str,
        confidence: float = 1.0,
    ) -> _Plan:
        spec = self.pack.intents[intent].spec.slots.get(slot)
        if spec is not None and spec.question:
            reply = Reply(
                text=spec.question, response_key="system:clarify_slot", data={"slot": slot}
            )
        else:
            reply = self.responder.system("clarify_slot", slot=slot.replace("_", " "))
        return _Plan(
            decision=RouteDecision(route=Route.CLARIFY, reason=f"{reason}:{slot}"),
            intent=IntentMatch(name=intent, slots=slots, confidence=confidence, source="dialogue")
            if slots
            else None,
            reply=reply,
            pending=Pending(
                ask=Ask.SLOT,
                intents=(intent,),
                slots=slots,
                slot=slot,
                confidence=confidence,
                expires_at=expiry(now, self.pack.spec.router.confirm_ttl_s),
            ),
        )

    def _summary(self, intent: str) -> str:
        spec = self.pack.intents[intent].spec
        if spec.summary:
            return spec.summary
        first = re.split(r"[,.;(]", spec.description, maxsplit=1)[0].strip()
        return first[:1].lower() + first[1:]

    def _answer_pending(self, pending: Pending, text: str, now: datetime) -> _Plan | None:
        """Resolve the guest's answer to a clarifying question; None: it is a new request."""
        if pending.ask is Ask.CONFIRM:
            if is_no(text):
                return _Plan(
                    decision=RouteDecision(route=Route.RULES, reason="declined"),
                    reply=self.responder.system("declined"),
                )
            if is_yes(text):
                return self._complete(pending.intents[0], pending.slots, now, reason="confirmed")
            return None
        if pending.ask is Ask.CHOOSE:
            choice = ordinal_choice(text)
            if choice is None and self.router is not None:
                p = self.router.classifier.probabilities(text)
                index = {c: i for i, c in enumerate(self.router.classifier.classes)}
                a, b = (float(p[index[name]]) for name in pending.intents)
                if max(a, b) >= 0.2 and max(a, b) >= 2 * min(a, b):
                    choice = 0 if a >= b else 1
            if choice is None:
                return None
            name = pending.intents[choice]
            assert self._spotter is not None
            slots, _ = self._spotter.spot(name, text, now)
            return self._complete(name, slots, now, reason=f"chosen:{name}")
        # Ask.SLOT: the answer should hold the slot value
        assert pending.slot is not None
        if self._spotter is None:
            from edgepipe.router.slots import spotter_for

            self._spotter = spotter_for(self.pack)
        found, _ = self._spotter.spot(pending.intents[0], text, now)
        if pending.slot not in found or not found[pending.slot].text:
            return None
        # an answer is mostly the value ("at seven please"); a new request that happens to
        # hold one ("plan a three day trip") is not an answer
        from edgepipe.knowledge import content_words

        extra = content_words(text) - content_words(found[pending.slot].text)
        if len(extra) > 2:
            return None
        slots = {**pending.slots, pending.slot: found[pending.slot]}
        return self._complete(pending.intents[0], slots, now, reason=f"answered:{pending.slot}")

    def _complete(
        self, intent: str, slots: dict[str, SlotValue], now: datetime, *, reason: str
    ) -> _Plan:
        specs = self.pack.intents[intent].spec.slots
        full = apply_defaults(specs, slots)
        missing = [n for n, s in specs.items() if s.required and n not in full]
        if missing:
            return self._ask_slot(intent, full, missing[0], now, reason="slot_missing")
        return self._to_tier(
            IntentMatch(name=intent, slots=full, confidence=1.0, source="dialogue"), reason, now
        )

    # ------------------------------------------------------------------ answering

    def _answer(
        self,
        plan: _Plan,
        text: str,
        now: datetime,
        trace: TraceRecorder,
        deadline: Deadline,
        *,
        turn_id: str,
    ) -> TierOutcome:
        decision = plan.decision
        if decision.route is Route.RULES and plan.intent is not None and plan.reply is None:
            first = self.rules_tier.run(plan.intent, now, trace)
            if not plan.also:
                return self._shaped(first, plan.intent.name, deadline, trace)
            outcomes = [first, *(self.rules_tier.run(m, now, trace) for m in plan.also)]
            refused = next((o for o in outcomes if o.route is not Route.RULES), None)
            joined = " ".join(o.reply.text for o in outcomes)
            return TierOutcome(
                route=refused.route if refused is not None else Route.RULES,
                reason=refused.reason if refused is not None else None,
                reply=Reply(
                    text=joined, response_key="+".join(o.reply.response_key for o in outcomes)
                ),
                handler_executed=any(o.handler_executed for o in outcomes),
            )
        if decision.route is Route.LOCAL_MODEL and plan.reply is None and self.local is not None:
            return self.local.answer(text, deadline, trace)
        if decision.route is Route.CLOUD and plan.reply is None and self.cloud is not None:
            name = plan.intent.name if plan.intent is not None else None
            escalated = self.cloud.escalate(text, name, deadline, trace, turn_id=turn_id)
            local_can = (
                escalated.failed_code is not None
                and name is not None
                and self.local is not None
                and self.pack.intents[name].spec.task == "qa"
            )
            if local_can and self.local is not None:
                answered = self.local.answer(text, deadline, trace)
                return TierOutcome(
                    route=answered.route,
                    reason=f"{escalated.failed_code}>{answered.reason}",
                    reply=answered.reply,
                )
            out = escalated.outcome
            if out.route is Route.CLOUD:
                return out
            return TierOutcome(
                route=out.route, reason=f"{decision.reason}>{out.reason}", reply=out.reply
            )
        with trace.span("respond") as span:
            reply = plan.reply or self.responder.system("fallback")
            span.set(Outcome.OK, detail=reply.response_key)
        return TierOutcome(
            route=decision.route if plan.reply is not None else Route.FALLBACK,
            reason=None,
            reply=reply,
        )

    def _shaped(
        self, outcome: TierOutcome, intent: str, deadline: Deadline, trace: TraceRecorder
    ) -> TierOutcome:
        """Let the local model rephrase a rules reply when the intent asks for it."""
        if (
            self.local is None
            or outcome.route is not Route.RULES
            or not self.pack.intents[intent].spec.shape_reply
        ):
            return outcome
        reply = self.local.shape(outcome.reply, deadline, trace)
        return TierOutcome(
            route=outcome.route,
            reason=outcome.reason,
            reply=reply,
            handler_executed=outcome.handler_executed,
        )
