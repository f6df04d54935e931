"""Intent resolution by a model: wording nobody templated still reaches the pack's actions.

When the templates do not match and the router is not confident, the request is not out of
scope yet: the ``resolve`` tier (first in the pack's ``out_of_scope`` chain) asks a model to map
it onto the pack's intents and slots. The model only *reads*; it never acts:

1. a **backend** proposes readings: a JSON answer constrained by a schema whose intent is an
   enum of the pack's intents plus ``none`` and whose slot values are limited to the slot's list,
   range or ``HH:MM``, up to ``resolve.max_requests`` requests for one sentence. Backends share
   one contract (:class:`IntentResolver`): the local model (a llama.cpp grammar) and the cloud
   (structured output through the privacy gate). They are tried in the order of
   ``resolve.backends``; offline, the cloud passes and the local answer stands; when a backend
   says ``none`` or its answer does not validate, the next one is asked.
2. every proposed request is **validated** like any other reading: the intent exists, each slot
   value passes the slot's own normalisation and its list or range, and the request's words
   support it (a list value whose spoken forms appear, a time or number the request mentions);
   a value the words do not support is dropped. The deterministic slot spotter's values win
   over the model's.
3. what is left is **executed by the rules tier** (each request of the sentence in turn; one that
   is refused does not undo the others), or, for an intent another tier answers (a question
   for the page, a booking for the cloud), handed on down the chain with its reading. A
   high-impact intent, or a reading the router did not rank among its two best (the model's
   evidence is weak), is confirmed with the guest first; a missing required slot is asked for.

Every step is a span (``resolve:<backend>``, ``validate``) and the turn's reason says which
backend resolved it (``resolve:local_model:lights_dim``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING

from edgepipe.core.deadline import Deadline
from edgepipe.core.trace import TraceRecorder
from edgepipe.core.types import IntentMatch, Outcome, Route, SlotValue
from edgepipe.nlu.dialogue import Ask, Pending, expiry
from edgepipe.tiers.base import Passed, Tier, TierContext, TierOutcome, TierRequest
from edgepipe.tiers.checks import value_supported
from edgepipe.tiers.reading import Catalogue, IntentResolver, Proposal, ResolveQuery

if TYPE_CHECKING:
    from edgepipe.actions.responses import Responder
    from edgepipe.nlu.slots import SlotSpotter
    from edgepipe.pack.loader import Pack
    from edgepipe.tiers.rules import RulesTier

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Checked:
    intent: str
    slots: dict[str, SlotValue]
    dropped: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    problems: tuple[str, ...] = field(default=())


class ResolveTier:
    """Asks the resolution backends, validates their readings, and has the rules execute them."""

    name = "resolve"

    def __init__(
        self,
        pack: Pack,
        rules: RulesTier,
        spotter: SlotSpotter,
        responder: Responder,
        *,
        backends: tuple[str, ...],
        max_requests: int,
        confirm_unranked: bool,
        candidates: int,
    ) -> None:
        self._pack = pack
        self._rules = rules
        self._spotter = spotter
        self._responder = responder
        self._wanted = backends
        self._max_requests = max_requests
        self._confirm_unranked = confirm_unranked
        self._candidates = candidates
        self.catalogue = Catalogue.from_pack(pack, max_requests=max_requests)
        self.backends: list[IntentResolver] = []

    def bind(self, tiers: Mapping[str, Tier]) -> None:
        """Pick the backends among the engine's tiers, in the order the pack names them."""
        self.backends = []
        for name in self._wanted:
            tier: object = tiers.get(name)
            if isinstance(tier, IntentResolver):
                self.backends.append(tier)

    def prepare(self) -> None:
        for backend in self.backends:
            warm = getattr(backend, "warm_resolver", None)
            if callable(warm):
                warm(self.catalogue)

    def close(self) -> None:
        return None

    def run(
        self, request: TierRequest, deadline: Deadline, trace: TraceRecorder
    ) -> TierOutcome | Passed:
        if request.intent is not None:
            return Passed(tier=self.name, code="resolve:resolved", failed=False)
        if not self.backends:
            return Passed(tier=self.name, code="resolve:no_backend", failed=False)
        query = ResolveQuery(
            text=request.text,
            catalogue=self.catalogue,
            candidates=request.candidates[: self._candidates],
            turn_id=request.turn_id,
            request=request,
        )
        codes: list[str] = []
        failed = False
        for backend in self.backends:
            try:
                proposal = backend.resolve_intent(query, deadline, trace)
            except Exception as exc:  # a backend is a model or a network: never break the turn
                log.exception("intent resolution by %s failed", backend.name)
                trace.add(
                    f"resolve:{backend.name}",
                    Outcome.ERROR,
                    error_code="resolve_failed",
                    detail=f"{type(exc).__name__}: {exc}"[:200],
                )
                codes.append(f"resolve:{backend.name}:failed")
                failed = True
                continue
            if isinstance(proposal, Passed):
                codes.append(proposal.code)
                failed = failed or proposal.failed
                continue
            if proposal.none:
                codes.append(f"resolve:{backend.name}:none")
                continue
            checked = self._validate(proposal, request.text, request.now, trace)
            if not checked:
                codes.append(f"resolve:{backend.name}:invalid")
                failed = True
                continue
            return self._act(checked, proposal.backend, request, deadline, trace)
        return Passed(tier=self.name, code=">".join(codes) or "resolve:none", failed=failed)

    # ------------------------------------------------------------------ validation

    def _validate(
        self, proposal: Proposal, text: str, now: datetime, trace: TraceRecorder
    ) -> list[_Checked]:
        """The proposed requests that hold up (intent known, slot values valid and supported
        by the request's words), in order; [] when none does."""
        from edgepipe.nlu.templates import apply_defaults
        from edgepipe.nlu.values import normalise_value

        out: list[_Checked] = []
        with trace.span("validate") as span:
            for intent, raw_slots in proposal.requests[: self._max_requests]:
                definition = self._pack.intents.get(intent)
                if definition is None:
                    continue
                specs = definition.spec.slots
                spotted, _ = self._spotter.spot(intent, text, now)
                slots: dict[str, SlotValue] = {}
                dropped: list[str] = []
                for name, raw in raw_slots.items():
                    spec = specs.get(name)
                    if spec is None:
                        dropped.append(f"{name}:unknown")
                        continue
                    value = normalise_value(
                        spec,
                        raw,
                        slot_list=self._pack.lists.get(spec.list or name),
                        now=now,
                        context=text,
                    )
                    if value is None:
                        dropped.append(f"{name}:invalid")
                        continue
                    if not self._supported(intent, name, value, raw, text):
                        dropped.append(f"{name}:unsupported")
                        continue
                    slots[name] = SlotValue(name=name, value=value, text=str(raw))
                slots.update({k: v for k, v in spotted.items() if v.text})
                full = apply_defaults(specs, slots)
                missing = tuple(n for n, s in specs.items() if s.required and n not in full)
                out.append(_Checked(intent, full, tuple(dropped), missing))
            detail = "; ".join(
                f"{c.intent}{'(-' + ','.join(c.dropped) + ')' if c.dropped else ''}" for c in out
            )
            span.set(Outcome.OK if out else Outcome.INVALID, detail=detail or proposal.raw[:120])
        return out

    def _supported(self, intent: str, name: str, value: object, raw: object, text: str) -> bool:
        spec = self._pack.intents[intent].spec.slots[name]
        forms = self.catalogue.forms.get(intent, {}).get(name)
        spoken = forms.get(str(value), []) if forms is not None else None
        return value_supported(spec.type, value, raw, text, spoken)

    # ------------------------------------------------------------------ acting

    def _act(
        self,
        checked: list[_Checked],
        backend: str,
        request: TierRequest,
        deadline: Deadline,
        trace: TraceRecorder,
    ) -> TierOutcome | Passed:
        first = checked[0]
        reason = f"resolve:{backend}:{'+'.join(c.intent for c in checked)}"
        matches = [
            IntentMatch(name=c.intent, slots=c.slots, confidence=0.0, source=backend)
            for c in checked
        ]
        if len(checked) == 1:
            intent = self._pack.intents[first.intent]
            if first.missing:
                return self._ask_slot(matches[0], first.missing[0], request.now, reason)
            unranked = self._confirm_unranked and first.intent not in request.candidates[:2]
            if intent.spec.impact == "high" or unranked:
                why = "high_impact" if intent.spec.impact == "high" else "unranked"
                return self._confirm(matches[0], request.now, f"{reason}:confirm:{why}")
            if intent.policy.tier != "rules":
                # a question for the page, a booking for the cloud: the next tiers answer it
                return Passed(tier=self.name, code=reason, failed=False, intent=matches[0])
        runnable = [
            m
            for m, c in zip(matches, checked, strict=True)
            if not c.missing and self._pack.intents[c.intent].policy.tier == "rules"
        ]
        if not runnable:
            return Passed(tier=self.name, code=f"{reason}:not_runnable", failed=False)
        first_match, *also = runnable
        asked = replace(request, intent=first_match, also=tuple(also))
        outcome = self._rules.run(asked, deadline, trace)
        if isinstance(outcome, Passed):
            return outcome
        route_reason = outcome.reason if outcome.route != Route.RULES else None
        return replace(
            outcome,
            reason=">".join(p for p in (reason, route_reason) if p),
            intent=first_match,
        )

    def _confirm(self, match: IntentMatch, now: datetime, reason: str) -> TierOutcome:
        from edgepipe.nlu.policy import summary

        return TierOutcome(
            route=Route.CLARIFY,
            reason=reason,
            reply=self._responder.system("confirm", action=summary(self._pack, match.name)),
            intent=match,
            pending=Pending(
                ask=Ask.CONFIRM,
                intents=(match.name,),
                slots=dict(match.slots),
                expires_at=expiry(now, self._pack.spec.router.confirm_ttl_s),
            ),
        )

    def _ask_slot(self, match: IntentMatch, slot: str, now: datetime, reason: str) -> TierOutcome:
        from edgepipe.nlu.policy import slot_question

        return TierOutcome(
            route=Route.CLARIFY,
            reason=f"{reason}:slot_missing:{slot}",
            reply=slot_question(self._pack, self._responder, match.name, slot),
            intent=match,
            pending=Pending(
                ask=Ask.SLOT,
                intents=(match.name,),
                slots=dict(match.slots),
                slot=slot,
                expires_at=expiry(now, self._pack.spec.router.confirm_ttl_s),
            ),
        )


def build(context: TierContext) -> ResolveTier | None:
    """The pack's resolve tier (None when ``resolve.enabled`` is false)."""
    from edgepipe.nlu.slots import shared_spotter
    from edgepipe.tiers.rules import RulesTier

    pack = context.pack
    spec = pack.spec.resolve
    if not spec.enabled:
        return None
    spotter = shared_spotter(pack, context.resources)
    return ResolveTier(
        pack,
        RulesTier.build(context),
        spotter,
        context.responder,
        backends=tuple(spec.backends),
        max_requests=spec.max_requests,
        confirm_unranked=spec.confirm_unranked,
        candidates=spec.candidates,
    )
