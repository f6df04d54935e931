"""Business rules as data: value ranges, per-request limits, time windows, room capabilities.

Rules live in the pack's ``rules.yaml``; changing a limit is a data edit, not a code change.
Times and numbers are read with the same parsers as the slots (:mod:`edgepipe.nlu.timeparse`,
:mod:`edgepipe.nlu.quantities`): "8:30" is before "12:00" however it is written.
Rules that name a slot are checked before the intent's handler runs; handlers check derived
values (a thermostat step) with :meth:`RuleEngine.check_value`. A refusal is a
:class:`~edgepipe.core.errors.RuleViolation` carrying a deterministic, polite reply.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, time
from typing import Any

from jinja2 import TemplateError, UndefinedError

from edgepipe.core.errors import RuleViolation
from edgepipe.core.types import SlotScalar
from edgepipe.nlu.quantities import parse_number
from edgepipe.nlu.timeparse import hhmm_minutes
from edgepipe.pack.content_schema import (
    CapabilityRule,
    RangeRule,
    Rule,
    TimeRangeRule,
    WindowRule,
    WindowSpec,
)
from edgepipe.pack.loader import Pack
from edgepipe.pack.schema import RoomSpec
from edgepipe.pack.templating import render


def _hhmm(value: str) -> time:
    minutes = hhmm_minutes(value)
    if minutes is None:
        raise ValueError(f"{value!r} is not HH:MM")
    return time(0, 0) if minutes == 24 * 60 else time(minutes // 60, minutes % 60)


def in_window(window: WindowSpec, at: time) -> bool:
    """True when ``at`` lies in the daily window (``end`` before ``start`` wraps midnight)."""
    start, end = _hhmm(window.start), _hhmm(window.end)
    if window.end == "24:00":
        return at >= start
    if start <= end:
        return start <= at < end
    return at >= start or at < end


def _amount(value: SlotScalar) -> float | None:
    """A slot's value as a number for a range rule: a number, or one written as text ("4",
    "four") so that a value that skipped normalisation cannot skip the rule either."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    return parse_number(value) if isinstance(value, str) else None


def _number(value: float | None) -> float | int | None:
    if value is None:
        return None
    return int(value) if float(value).is_integer() else value


class RuleEngine:
    """Evaluates a pack's rules."""

    def __init__(self, pack: Pack) -> None:
        self._rules: Mapping[str, Rule] = pack.rules
        self._room_types = pack.spec.context.room_types
        self.capabilities: frozenset[str] = self.capabilities_of(pack.spec.context.room)
        """The pack's own room's capabilities (a session may be another room)."""
        self._by_intent: dict[str, list[tuple[str, Rule]]] = {}
        for name, rule in pack.rules.items():
            for intent in rule.intents:
                self._by_intent.setdefault(intent, []).append((name, rule))

    def capabilities_of(self, room: RoomSpec) -> frozenset[str]:
        """What a room of ``room.type`` has (nothing for a type the pack does not define)."""
        room_type = self._room_types.get(room.type)
        return frozenset(room_type.capabilities if room_type else ())

    def rules_for(self, intent: str) -> list[str]:
        """Names of the rules that apply to an intent."""
        return [name for name, _ in self._by_intent.get(intent, [])]

    def check_request(
        self,
        intent: str,
        slots: Mapping[str, SlotScalar],
        now: datetime,
        *,
        room: RoomSpec | None = None,
    ) -> None:
        """Check every rule of ``intent`` that can be checked before the handler runs, for
        ``room`` (default: the pack's own)."""
        capabilities = self.capabilities if room is None else self.capabilities_of(room)
        for name, rule in self._by_intent.get(intent, []):
            self._check(name, rule, slots, now, capabilities)

    def check_value(self, rule_name: str, value: float, **variables: Any) -> None:
        """Check a handler-computed value against a range rule."""
        rule = self._rules.get(rule_name)
        if not isinstance(rule, RangeRule):
            raise KeyError(f"no range rule named {rule_name!r}")
        self._range(rule_name, rule, value, variables)

    def _check(
        self,
        name: str,
        rule: Rule,
        slots: Mapping[str, SlotScalar],
        now: datetime,
        capabilities: frozenset[str],
    ) -> None:
        if isinstance(rule, RangeRule):
            if rule.slot is not None and rule.slot in slots:
                value = _amount(slots[rule.slot])
                if value is not None:
                    self._range(name, rule, value, slots)
        elif isinstance(rule, TimeRangeRule):
            said = slots.get(rule.slot)
            minute = hhmm_minutes(said) if isinstance(said, str) else None
            if minute is not None:
                earliest = hhmm_minutes(rule.earliest) if rule.earliest is not None else None
                latest = hhmm_minutes(rule.latest) if rule.latest is not None else None
                too_early = earliest is not None and minute < earliest
                too_late = latest is not None and minute > latest
                if too_early or too_late:
                    self._refuse(name, rule, {**slots, "value": said})
        elif isinstance(rule, WindowRule):
            at = now.time()
            if rule.allowed is not None and not in_window(rule.allowed, at):
                self._refuse(name, rule, {**slots, "now": now.strftime("%H:%M")})
            if rule.denied is not None and in_window(rule.denied, at):
                self._refuse(name, rule, {**slots, "now": now.strftime("%H:%M")})
        elif isinstance(rule, CapabilityRule):
            try:
                needed = render(rule.requires, slots)
            except UndefinedError:
                return  # the rule is about a slot this request did not fill
            if needed not in capabilities:
                self._refuse(name, rule, {**slots, "capability": needed})

    def _range(
        self, name: str, rule: RangeRule, value: float, variables: Mapping[str, Any]
    ) -> None:
        if (rule.min is not None and value < rule.min) or (
            rule.max is not None and value > rule.max
        ):
            self._refuse(name, rule, {**variables, "value": _number(value)})

    @staticmethod
    def _refuse(name: str, rule: Rule, variables: Mapping[str, Any]) -> None:
        fields = rule.model_dump(exclude={"reply", "intents", "description", "kind"})
        fields = {k: _number(v) if isinstance(v, float) else v for k, v in fields.items()}
        context = {**fields, **variables}
        try:
            reply = render(rule.reply, context)
        except TemplateError:
            reply = "Sorry, I can't do that here. Please call the front desk."
        raise RuleViolation(name, reply, data=context)
