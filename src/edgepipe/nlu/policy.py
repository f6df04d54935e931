"""The routing policy: from the template match and the classifier's reading to a plan.

Routing order: an exact template match, then the learned classifier, then out of scope. Every
decision carries its reason (``template:exact``, ``classifier:0.93>=0.55``, ``oos:0.12<0.55``,
``ambiguous:lights_on|lights_dim:0.46/0.41``, ``confirm:0.62<0.70``...).

The classifier's reading is acted on only when it is above the calibrated threshold, clear of
the runner-up by ``router.clarify_margin``, at least the intent's ``policy.min_confidence``, and
the intent is not ``impact: high``; otherwise the guest is asked (see
:mod:`edgepipe.nlu.dialogue`). High-impact intents (bookings, billing) act without a question
only on a template match. A plan names the tier to start the fallback chain at (the intent's
``policy.tier``; none for out of scope), or carries a reply that needs no tier (a question).

Long on purpose: every routing decision is one class (:class:`RoutingPolicy`), so that the
order in which they are taken is read in one place. The policy holds no per-conversation
state: the question a turn asks is returned in the plan and kept by the session
(:class:`edgepipe.engine.session.Session`), and handed back with the next turn.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from edgepipe.actions.responses import Responder
from edgepipe.core.deadline import Deadline
from edgepipe.core.trace import TraceRecorder
from edgepipe.core.types import IntentMatch, Reply, Route, RouteDecision, SlotValue
from edgepipe.nlu.dialogue import Ask, Pending, expiry, is_no, is_yes, ordinal_choice
from edgepipe.nlu.quantities import number_spans, words
from edgepipe.nlu.slots import SlotSpotter
from edgepipe.nlu.templates import TemplateResult, apply_defaults
from edgepipe.pack.loader import Pack
from edgepipe.tiers.base import SlotExtractor
from edgepipe.tiers.knowledge import content_words

if TYPE_CHECKING:
    from edgepipe.nlu.learned.model import Prediction
    from edgepipe.nlu.learned.neighbours import ValueNeighbours
    from edgepipe.nlu.learned.router import LearnedRouter


_DIGITS = re.compile(r"\d+")
_NO_MATCH = TemplateResult(match=None)
_PARTICLE = re.compile(
    r"\b(?:turn|turns|turned|switch|switched|put|flip|power|shut|leave|keep|kill)\b"
    r"(?:\s+[\w'-]+){0,4}?\s+(on|off)\b"
    r"|\b(?:turn|switch|power|flip)\s+(on|off)\b",
    re.IGNORECASE,
)
"""A verb with its particle: "turn the TV on", "switch off the lights"."""
_ANTONYM = {"on": "off", "off": "on"}


def _particles(text: str) -> list[str]:
    """The particles ``text`` says with a verb, in order ("turn the TV on": ["on"])."""
    return [(m.group(1) or m.group(2)).lower() for m in _PARTICLE.finditer(text)]


_HOW_TO = re.compile(
    r"\s*(?:(?:and|so|ok|okay|hey|um|uh|quick question)[\s,]+)?"
    r"(?:how (?:do|should) (?:i|we|you|one)|how to"
    r"|what(?:'s| is) the (?:best )?way to)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """What the route stage decided."""

    decision: RouteDecision
    intent: IntentMatch | None = None
    start: str | None = None
    """The tier the fallback chain starts at (the intent's); None for a request no intent
    claims (the out-of-scope chain), and for a plan that answers with ``reply``."""
    reply: Reply | None = None
    """Set for clarifying questions and other replies that need no tier."""
    pending: Pending | None = None
    """The question this plan asks, to keep for the next turn."""
    also: tuple[IntentMatch, ...] = ()
    """Further requests of the same sentence, answered after ``intent`` by the rules tier."""
    chain: bool = True
    """False: answer ``reply`` (or the pack's fallback reply) without any tier."""
    candidates: tuple[str, ...] = ()
    """The intents the router ranked highest (best first), for tiers that read the request
    themselves (the resolve tier)."""


def route_of(tier: str) -> str:
    """The route a tier's answers are recorded under (the :class:`Route` member for
    edgepipe's own tiers, so that ``route is Route.RULES`` holds)."""
    try:
        return Route(tier)
    except ValueError:
        return tier


def slot_question(pack: Pack, responder: Responder, intent: str, slot: str) -> Reply:
    """What to ask for a missing slot: the slot's own question, or the pack's generic one."""
    spec = pack.intents[intent].spec.slots.get(slot)
    if spec is not None and spec.question:
        return Reply(text=spec.question, response_key="system:clarify_slot", data={"slot": slot})
    return responder.system("clarify_slot", slot=slot.replace("_", " "))


def summary(pack: Pack, intent: str) -> str:
    """A few words for the intent in a question ("turn the lights on")."""
    spec = pack.intents[intent].spec
    if spec.summary:
        return spec.summary
    first = re.split(r"[,.;(]", spec.description, maxsplit=1)[0].strip()
    return first[:1].lower() + first[1:]


class RoutingPolicy:
    """Turns a request's readings into a :class:`Plan`. Shared by every session (stateless).

    Long on purpose: every routing decision (template, classifier, ambiguity, confirmation,
    missing slot, the answer to a waiting question) is in this one class, so that the order in
    which they are taken can be read in one place."""

    def __init__(
        self,
        pack: Pack,
        responder: Responder,
        spotter: SlotSpotter,
        router: LearnedRouter | None,
        slot_extractor: SlotExtractor | None = None,
        neighbours: ValueNeighbours | None = None,
    ) -> None:
        """``neighbours``: reads a required slot the guest described instead of naming
        (:mod:`edgepipe.nlu.learned.neighbours`)."""
        self.pack = pack
        self._responder = responder
        self._spotter = spotter
        self._router = router
        self._extractor = slot_extractor
        self._neighbours = neighbours
        self._poles = _poles(pack)

    # ------------------------------------------------------------------ a new request

    def plan(
        self,
        text: str,
        matched: TemplateResult,
        prediction: Prediction | None,
        now: datetime,
        deadline: Deadline,
        trace: TraceRecorder,
    ) -> Plan:
        """The plan for a request (not an answer to a question)."""
        plan = self._decide(text, matched, prediction, now)
        if plan.pending is not None and plan.pending.ask is Ask.SLOT and self._extractor:
            plan = self._fill_slots_with_model(plan, text, now, trace, deadline)
        return plan

    def _decide(
        self, text: str, matched: TemplateResult, prediction: Prediction | None, now: datetime
    ) -> Plan:
        if matched.match is not None:
            plan = self.to_tier(matched.match, f"template:{matched.how}")
            if plan.start is not None:  # further requests: the rules tier's, whoever goes first
                also = tuple(
                    m for m in matched.also if self.pack.intents[m.name].policy.tier == "rules"
                )
                also += self._read_clauses(matched, now)
                plan = replace(plan, also=also)
            return plan
        if matched.invalid_slot is not None and matched.invalid_intent is not None:
            return self._ask_slot(
                matched.invalid_intent, {}, matched.invalid_slot, now, reason="slot_invalid"
            )
        if prediction is None:
            # no learned router: nothing tells an unmatched request from an out-of-scope one
            return Plan(
                decision=RouteDecision(route=Route.FALLBACK, reason="no_match"), chain=False
            )
        from edgepipe.nlu.learned.model import OOS_LABEL

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
            return Plan(
                decision=RouteDecision(
                    route=Route.CLARIFY, reason=f"ambiguous:{name}|{runner}:{odds}"
                ),
                reply=self._responder.system(
                    "choose", first=summary(self.pack, name), second=summary(self.pack, runner)
                ),
                pending=Pending(
                    ask=Ask.CHOOSE,
                    intents=(name, runner),
                    confidence=prediction.confidence,
                    expires_at=expiry(now, spec.confirm_ttl_s),
                ),
                chain=False,
            )
        if prediction.abstained:
            reason = (
                f"oos:class:{prediction.confidence:.2f}"
                if prediction.best == OOS_LABEL
                else f"oos:{prediction.confidence:.2f}<{prediction.threshold:.2f}"
            )
            ranked = tuple(name for name, _ in prediction.ranked) or (
                prediction.top,
                *([runner] if runner is not None else []),
            )
            return Plan(
                decision=RouteDecision(route=Route.FALLBACK, reason=reason), candidates=ranked
            )
        assert prediction.intent is not None
        name = prediction.intent
        slots, missing = self._spotter.spot(name, text, now)
        if missing and self._neighbours is not None:
            slots, missing = self._neighbours.fill(name, slots, missing, text)
        policy = self.pack.intents[name].policy
        high_impact = self.pack.intents[name].spec.impact == "high"
        stray = self._stray_number(name, text, slots)
        how_to = self._how_to(name, text)
        opposite = self._opposite(name, text)
        if (
            prediction.confidence < policy.min_confidence
            or high_impact
            or stray
            or how_to
            or opposite
        ):
            if prediction.confidence < policy.min_confidence:
                why = f"confirm:{prediction.confidence:.2f}<{policy.min_confidence:.2f}"
            elif high_impact:
                why = f"confirm:high_impact:{prediction.confidence:.2f}"
            elif stray:
                why = f"confirm:number_unused:{stray}"
            elif opposite:
                why = f"confirm:opposite:{opposite}"
            else:
                why = "confirm:how_to"
            return Plan(
                decision=RouteDecision(route=Route.CLARIFY, reason=why),
                intent=IntentMatch(
                    name=name, slots=slots, confidence=prediction.confidence, source="classifier"
                ),
                reply=self._responder.system("confirm", action=summary(self.pack, name)),
                pending=Pending(
                    ask=Ask.CONFIRM,
                    intents=(name,),
                    slots=slots,
                    confidence=prediction.confidence,
                    expires_at=expiry(now, spec.confirm_ttl_s),
                ),
                chain=False,
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
        return self.to_tier(
            match, f"classifier:{prediction.confidence:.2f}>={prediction.threshold:.2f}"
        )

    def _read_clauses(self, matched: TemplateResult, now: datetime) -> tuple[IntentMatch, ...]:
        """Requests in the clauses no template claimed ("the toilet's blocked and I need fresh
        towels too"), as the router reads them: only a clause this policy would send straight
        to the rules tier on its own (no question to ask: confident, clear, not high-impact,
        its slots found) is added."""
        if self._router is None or not matched.unmatched or matched.match is None:
            return ()
        taken = {matched.match.name, *(m.name for m in matched.also)}
        found: list[IntentMatch] = []
        for clause in matched.unmatched:
            plan = self._decide(clause, _NO_MATCH, self._router.classify(clause), now)
            if plan.intent is None or plan.reply is not None or plan.start != Route.RULES:
                continue
            if plan.intent.name not in taken:
                taken.add(plan.intent.name)
                found.append(plan.intent)
        return tuple(found)

    def _how_to(self, intent: str, text: str) -> bool:
        """A how-to question ("how do I get creases out of a shirt without an iron") asks for
        instructions, not for the action the router reads in it: a classifier reading of an
        intent the rules tier acts on (any handler but answering from the facts) is
        confirmed; questions for the page or the cloud are answered as usual."""
        definition = self.pack.intents[intent]
        return (
            definition.policy.tier == "rules"
            and definition.spec.handler not in (None, "answer_fact")
            and _HOW_TO.match(text) is not None
        )

    def _opposite(self, intent: str, text: str) -> str | None:
        """The particle the request says ("turn the TV on") when ``intent``'s own examples say
        the opposite one ("turn the TV off"): a classifier reading that inverts the request,
        confirmed rather than acted on (the pack may have no intent for what was asked)."""
        pole = self._poles.get(intent)
        if pole is None:
            return None
        said = set(_particles(text))
        return _ANTONYM[pole] if _ANTONYM[pole] in said and pole not in said else None

    def _stray_number(self, intent: str, text: str, slots: Mapping[str, SlotValue]) -> str | None:
        """A number the request says that ``intent`` cannot take: it has no slot for it
        ("switch the TV to channel 5" is not ``tv_off``), or its number slots' ranges do not
        hold it and none of them was filled from the words ("80 towels", "dim to 150 percent":
        not 2 towels and the default level). The classifier's reading misses part of the
        request, so it is confirmed rather than acted on. The room's own number does not
        count."""
        specs = self.pack.intents[intent].spec.slots
        room = self.pack.spec.context.room.number
        if not specs:
            return next((n for n in _DIGITS.findall(text) if n != room), None)
        ranges = []
        for name, spec in specs.items():
            listed = self.pack.lists.get(spec.list or name)
            if listed is not None and listed.range is not None:
                if name in slots and slots[name].text:
                    return None  # the number was read into its slot
                ranges.append((listed.range.from_, listed.range.to))
        if not ranges:
            return None
        for value, _, _ in number_spans(words(text)):
            if str(value) != room and not any(low <= value <= high for low, high in ranges):
                return str(value)
        return None

    def _fill_slots_with_model(
        self, plan: Plan, text: str, now: datetime, trace: TraceRecorder, deadline: Deadline
    ) -> Plan:
        """Before asking the guest for a slot, let the local model try (validated)."""
        assert self._extractor is not None and plan.pending is not None
        intent = plan.pending.intents[0]
        specs = self.pack.intents[intent].spec.slots
        known = dict(plan.pending.slots)
        missing = [n for n, s in specs.items() if s.required and n not in known]
        found = self._extractor.extract_slots(intent, text, missing, now, deadline, trace)
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
        return self.to_tier(match, f"slots:local_model:{','.join(sorted(found))}")

    def to_tier(self, intent: IntentMatch, reason: str) -> Plan:
        """Send ``intent`` to its tier (the chain takes it from there)."""
        tier = self.pack.intents[intent.name].policy.tier
        return Plan(
            decision=RouteDecision(route=route_of(tier), reason=reason), intent=intent, start=tier
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
    ) -> Plan:
        reply = slot_question(self.pack, self._responder, intent, slot)
        return Plan(
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
            chain=False,
        )

    # ------------------------------------------------------------------ an answer to a question

    def answer_pending(self, pending: Pending, text: str, now: datetime) -> Plan | None:
        """Resolve the guest's answer to a clarifying question; None: it is a new request."""
        if pending.ask is Ask.CONFIRM:
            if is_no(text):
                return Plan(
                    decision=RouteDecision(route=Route.RULES, reason="declined"),
                    reply=self._responder.system("declined"),
                    chain=False,
                )
            if is_yes(text):
                return self._complete(pending.intents[0], pending.slots, now, reason="confirmed")
            return None
        if pending.ask is Ask.CHOOSE:
            choice = ordinal_choice(text)
            if choice is None and self._router is not None:
                p = self._router.classifier.probabilities(text)
                index = {c: i for i, c in enumerate(self._router.classifier.classes)}
                a, b = (float(p[index[name]]) for name in pending.intents)
                if max(a, b) >= 0.2 and max(a, b) >= 2 * min(a, b):
                    choice = 0 if a >= b else 1
            if choice is None:
                return None
            name = pending.intents[choice]
            slots, _ = self._spotter.spot(name, text, now)
            return self._complete(name, slots, now, reason=f"chosen:{name}")
        # Ask.SLOT: the answer should hold the slot value
        assert pending.slot is not None
        found, _ = self._spotter.spot(pending.intents[0], text, now)
        if pending.slot not in found or not found[pending.slot].text:
            return None
        # an answer is mostly the value ("at seven please"); a new request that happens to
        # hold one ("plan a three day trip") is not an answer
        extra = content_words(text) - content_words(found[pending.slot].text)
        if len(extra) > 2:
            return None
        slots = {**pending.slots, pending.slot: found[pending.slot]}
        return self._complete(pending.intents[0], slots, now, reason=f"answered:{pending.slot}")

    def _complete(
        self, intent: str, slots: dict[str, SlotValue], now: datetime, *, reason: str
    ) -> Plan:
        specs = self.pack.intents[intent].spec.slots
        full = apply_defaults(specs, slots)
        missing = [n for n, s in specs.items() if s.required and n not in full]
        if missing:
            return self._ask_slot(intent, full, missing[0], now, reason="slot_missing")
        return self.to_tier(
            IntentMatch(name=intent, slots=full, confidence=1.0, source="dialogue"), reason
        )


def _poles(pack: Pack, *, share: float = 0.15, dominance: int = 3) -> dict[str, str]:
    """intent -> "on" or "off": the particle its examples say with a verb ("switch the lights
    off"), when at least ``share`` of them do and the opposite particle is ``dominance`` times
    rarer. Intents whose examples only describe states ("the light won't turn on") seldom
    reach the share and get no pole."""
    poles: dict[str, str] = {}
    for name, intent in pack.intents.items():
        examples = intent.examples
        if not examples:
            continue
        counts = {"on": 0, "off": 0}
        for example in examples:
            for particle in _particles(example):
                counts[particle] += 1
        for pole, other in _ANTONYM.items():
            if counts[pole] >= share * len(examples) and counts[pole] >= dominance * max(
                1, counts[other]
            ):
                poles[name] = pole
    return poles
