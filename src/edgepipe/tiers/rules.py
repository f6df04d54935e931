"""The deterministic tier: business rules, the intent's handler, the reply template.

Several requests of one sentence ("turn off the lights and close the blinds") run in order; a
refusal of one is reported and the others still run.
"""

from __future__ import annotations

import logging
from datetime import datetime

from jinja2 import TemplateError

from edgepipe.actions.business_rules import RuleEngine
from edgepipe.actions.handlers import Handler, HandlerContext, HandlerResult, resolve_handler
from edgepipe.actions.responses import Responder
from edgepipe.actions.state import StateAdapter
from edgepipe.core.deadline import Deadline
from edgepipe.core.errors import HandlerError, RuleViolation
from edgepipe.core.trace import TraceRecorder
from edgepipe.core.types import IntentMatch, Outcome, Reply, Route
from edgepipe.pack.loader import Pack
from edgepipe.pack.schema import RoomSpec
from edgepipe.tiers.base import Passed, TierContext, TierOutcome, TierRequest, joined_reply

log = logging.getLogger(__name__)


class RulesTier:
    """Checks rules, runs the handler and renders the reply, each as a trace span."""

    name = "rules"

    def __init__(self, pack: Pack, engine: RuleEngine, responder: Responder) -> None:
        self._pack = pack
        self._engine = engine
        self._responder = responder
        self._handlers: dict[str, Handler] = {
            name: resolve_handler(intent.spec.handler, pack.handlers_module)
            for name, intent in pack.intents.items()
            if intent.spec.handler is not None
        }

    @classmethod
    def build(cls, context: TierContext) -> RulesTier:
        return cls(context.pack, context.rules, context.responder)

    def prepare(self) -> None:
        return None

    def close(self) -> None:
        return None

    def run(
        self, request: TierRequest, deadline: Deadline, trace: TraceRecorder
    ) -> TierOutcome | Passed:
        """Execute the request's intent (and any further requests of the same sentence)."""
        if request.intent is None or request.intent.name not in self._handlers:
            return Passed(tier=self.name, code="rules:no_handler", failed=False)
        first = self.execute(request.intent, request.now, trace, request.state, request.room)
        if not request.also:
            return first
        outcomes = [first]
        done: list[IntentMatch] = []
        for match in request.also:
            if match.name in self._handlers:
                outcomes.append(
                    self.execute(match, request.now, trace, request.state, request.room)
                )
                done.append(match)
        refused = next((o for o in outcomes if o.route != Route.RULES), None)
        return TierOutcome(
            route=refused.route if refused is not None else Route.RULES,
            reason=refused.reason if refused is not None else None,
            reply=joined_reply(o.reply for o in outcomes),
            handler_executed=any(o.handler_executed for o in outcomes),
            also=tuple(done),
        )

    def execute(
        self,
        intent: IntentMatch,
        now: datetime,
        trace: TraceRecorder,
        state: StateAdapter,
        room: RoomSpec,
    ) -> TierOutcome:
        """Answer one matched intent deterministically, in ``room`` with its ``state``."""
        slots = intent.slot_values()
        with trace.span("rules") as span:
            try:
                self._engine.check_request(intent.name, slots, now, room=room)
                span.set(Outcome.OK, detail=",".join(self._engine.rules_for(intent.name)) or None)
            except RuleViolation as violation:
                span.set(Outcome.VIOLATION, error_code=violation.code, detail=violation.rule)
                return self._refused(violation)

        definition = self._pack.intents[intent.name]
        ctx = HandlerContext(
            intent=intent,
            slots=slots,
            args=definition.spec.args,
            state=state,
            facts=self._pack.facts,
            room=room,
            now=now,
            rules=self._engine,
        )
        with trace.span("handler") as span:
            try:
                result = self._handlers[intent.name](ctx)
                if not isinstance(result, HandlerResult):
                    raise HandlerError(
                        f"handler for '{intent.name}' returned {type(result).__name__}, "
                        "not HandlerResult",
                        code="handler_bad_result",
                    )
                span.set(Outcome.OK, detail=definition.spec.handler)
            except RuleViolation as violation:
                span.set(Outcome.VIOLATION, error_code=violation.code, detail=violation.rule)
                return self._refused(violation)
            except Exception as exc:  # a handler is pack code: anything may escape it
                code = exc.code if isinstance(exc, HandlerError) else "handler_failed"
                log.exception("handler for intent %r failed", intent.name)
                span.set(
                    Outcome.ERROR, error_code=code, detail=f"{type(exc).__name__}: {exc}"[:200]
                )
                return TierOutcome(
                    route=Route.FALLBACK,
                    reason=code,
                    reply=self._responder.system("handler_error"),
                    handler_executed=True,
                )

        with trace.span("respond") as span:
            try:
                reply = self._responder.intent(
                    intent.name, result.response, {**slots, **result.data}, room=room
                )
                span.set(Outcome.OK, detail=result.response)
            except (KeyError, TemplateError) as exc:
                log.error("reply for %r/%r failed to render: %s", intent.name, result.response, exc)
                span.set(Outcome.ERROR, error_code="response_render_failed", detail=str(exc)[:200])
                reply = self._responder.system("handler_error")
        return TierOutcome(route=Route.RULES, reason=None, reply=reply, handler_executed=True)

    @staticmethod
    def _refused(violation: RuleViolation) -> TierOutcome:
        return TierOutcome(
            route=Route.REJECTED,
            reason=violation.code,
            reply=Reply(text=violation.reply, response_key=violation.code, data=violation.data),
        )
