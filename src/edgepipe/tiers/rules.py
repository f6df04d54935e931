"""The deterministic tier: business rules, the intent's handler, the reply template."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jinja2 import TemplateError

from edgepipe.errors import HandlerError, RuleViolation
from edgepipe.frames import IntentMatch, Outcome, Reply, Route, TraceRecorder
from edgepipe.handlers import Handler, HandlerContext, HandlerResult, resolve_handler
from edgepipe.pack.loader import Pack
from edgepipe.rules import RuleEngine
from edgepipe.state import StateAdapter
from edgepipe.templating import render

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class TierOutcome:
    """What a tier produced for a turn."""

    route: Route
    """The route the turn ends up on (a refusal turns ``rules`` into ``rejected``)."""
    reason: str | None
    """Why the route changed, for the trace; None keeps the router's reason."""
    reply: Reply
    """The reply."""
    handler_executed: bool = False
    """Whether the intent's handler ran."""


class Responder:
    """Renders a pack's reply templates."""

    def __init__(self, pack: Pack) -> None:
        self._pack = pack

    def system(self, key: str, **variables: Any) -> Reply:
        """A runtime reply (``fallback``, ``handler_error``, ``clarify_slot``)."""
        template = getattr(self._pack.responses.system, key)
        try:
            text = render(template, variables)
        except TemplateError:
            log.exception("system reply %r failed to render", key)
            text = "Sorry, I can't help with that right now."
        return Reply(text=text, response_key=f"system:{key}", data=dict(variables))

    def intent(self, intent: str, key: str, variables: Mapping[str, Any]) -> Reply:
        """An intent's reply; raises ``KeyError``/``TemplateError`` when it cannot be made."""
        templates = self._pack.responses.intents[intent]
        template = templates[key] if key in templates else templates["default"]
        context = {"facts": self._pack.facts, "room": self._pack.spec.context.room, **variables}
        return Reply(text=render(template, context), response_key=key, data=dict(variables))


class RulesTier:
    """Checks rules, runs the handler and renders the reply, each as a trace span."""

    def __init__(
        self, pack: Pack, state: StateAdapter, engine: RuleEngine, responder: Responder
    ) -> None:
        self._pack = pack
        self._state = state
        self._engine = engine
        self._responder = responder
        self._handlers: dict[str, Handler] = {
            name: resolve_handler(intent.spec.handler, pack.handlers_module)
            for name, intent in pack.intents.items()
            if intent.spec.handler is not None
        }

    def run(self, intent: IntentMatch, now: datetime, trace: TraceRecorder) -> TierOutcome:
        """Answer a matched intent deterministically."""
        slots = intent.slot_values()
        with trace.span("rules") as span:
            try:
                self._engine.check_request(intent.name, slots, now)
                span.set(Outcome.OK, detail=",".join(self._engine.rules_for(intent.name)) or None)
            except RuleViolation as violation:
                span.set(Outcome.VIOLATION, error_code=violation.code, detail=violation.rule)
                return self._refused(violation)

        definition = self._pack.intents[intent.name]
        ctx = HandlerContext(
            intent=intent,
            slots=slots,
            args=definition.spec.args,
            state=self._state,
            facts=self._pack.facts,
            room=self._pack.spec.context.room,
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
                    intent.name, result.response, {**slots, **result.data}
                )
                span.set(Outcome.OK, detail=result.response)
            except (KeyError, TemplateError) as exc:
                log.error("reply for %r/%r failed to render: %s", intent.name, result.response, exc)
                span.set(Outcome.ERROR, error_code="response_render_failed", detail=str(exc)[:200])
                reply = self._responder.system("handler_error")
        return TierOutcome(
            route=Route.RULES,
            reason=None,
            reply=reply,
            handler_executed=True,
        )

    @staticmethod
    def _refused(violation: RuleViolation) -> TierOutcome:
        return TierOutcome(
            route=Route.REJECTED,
            reason=violation.code,
            reply=Reply(text=violation.reply, response_key=violation.code, data=violation.data),
        )
