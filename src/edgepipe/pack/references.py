"""The checks between a pack's files: every reference must name something that exists.

Templates must parse and name declared slots, lists and expansion rules; rules must name
intents and their slots; replies must be valid templates; every tier a policy names must be
installed. Each problem is collected (:class:`Collector`) with its file and key path, so that
``edgepipe check`` lists them all at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from hassil import parse_sentence
from hassil.expression import Expression, Group, ListReference, RuleReference
from jinja2 import TemplateSyntaxError

from edgepipe.core.errors import PackIssue
from edgepipe.pack.content_schema import (
    CapabilityRule,
    IntentSpec,
    ResponsesFileSpec,
    Rule,
    SlotListSpec,
    TimeRangeRule,
)
from edgepipe.pack.schema import PackPolicySpec, PolicySpec
from edgepipe.pack.templating import compile_template

if TYPE_CHECKING:
    from edgepipe.pack.loader import IntentDef

_SLOT_REF = re.compile(r"\{([A-Za-z_][\w]*)\}")


class Collector:
    """Accumulates :class:`PackIssue` objects."""

    def __init__(self) -> None:
        self.issues: list[PackIssue] = []

    def add(self, file: str, path: str, message: str) -> None:
        self.issues.append(PackIssue(file=file, path=path, message=message))


def _walk(expr: Expression) -> Iterator[Expression]:
    yield expr
    if isinstance(expr, Group):
        for item in expr.items:
            yield from _walk(item)


def hassil_template(template: str, spec: IntentSpec) -> str:
    """Map ``{slot}`` to ``{list:slot}`` where the slot's list has another name."""

    def repl(match: re.Match[str]) -> str:
        name = match.group(1)
        slot = spec.slots.get(name)
        if slot is not None and slot.list is not None and slot.list != name:
            return "{" + f"{slot.list}:{name}" + "}"
        return match.group(0)

    return _SLOT_REF.sub(repl, template)


def check_intent(
    name: str,
    spec: IntentSpec,
    display: str,
    lists: Mapping[str, SlotListSpec],
    rules: Mapping[str, str],
    issues: Collector,
) -> tuple[str, ...]:
    base = f"intents.{name}"
    reported: set[str] = set()  # unknown lists already named once, at the slot
    for slot_name, slot in spec.slots.items():
        list_name = slot.list or slot_name
        where = f"{base}.slots.{slot_name}"
        if list_name not in lists:
            issues.add(display, where, f"unknown slot list '{list_name}'")
            reported.add(list_name)
            continue
        kind = lists[list_name]
        if slot.type == "number" and kind.range is None:
            issues.add(
                display, where, f"type 'number' needs a range list; '{list_name}' is not one"
            )
        if slot.quantity is not None and slot.type != "number":
            issues.add(display, where, f"'quantity: {slot.quantity}' needs type 'number'")
        if slot.type == "time" and kind.range is not None:
            issues.add(
                display,
                where,
                f"type 'time' needs a wildcard or text list; '{list_name}' is a range",
            )

    used_slots: set[str] = set()
    rewritten: list[str] = []
    for i, template in enumerate(spec.templates):
        where = f"{base}.templates[{i}]"
        text = hassil_template(template, spec)
        try:
            sentence = parse_sentence(text, keep_text=True)
        except Exception as exc:  # hassil raises ParseError, AssertionError, ValueError
            issues.add(display, where, f"template syntax error: {exc}")
            continue
        for expr in _walk(sentence.expression):
            if isinstance(expr, ListReference):
                if expr.list_name not in lists and expr.list_name not in reported:
                    issues.add(display, where, f"unknown slot list '{expr.list_name}'")
                slot_name = expr.slot_name
                used_slots.add(slot_name)
                if (
                    slot_name not in spec.slots
                    and expr.list_name in lists
                    and slot_name != expr.list_name
                ):
                    issues.add(display, where, f"slot '{slot_name}' is not declared in slots")
            elif isinstance(expr, RuleReference) and expr.rule_name not in rules:
                issues.add(display, where, f"unknown expansion rule '<{expr.rule_name}>'")
        rewritten.append(text)

    for slot_name, slot in spec.slots.items():
        if slot.required and slot.default is None and slot_name not in used_slots:
            issues.add(display, f"{base}.slots.{slot_name}", "required slot appears in no template")
    return tuple(rewritten)


def check_tiers(
    display: str, path: str, policy: PolicySpec, issues: Collector, installed: frozenset[str]
) -> None:
    """Every tier a policy names must be ``installed`` (edgepipe's own or a package's entry
    point; the loader looks them up once per pack, not once per intent)."""
    named = [("tier", policy.tier), *((f"fallback[{i}]", n) for i, n in enumerate(policy.fallback))]
    if isinstance(policy, PackPolicySpec):
        named += [(f"out_of_scope[{i}]", n) for i, n in enumerate(policy.out_of_scope)]
    for key, name in named:
        if name not in installed:
            known = ", ".join(sorted(installed))
            issues.add(display, f"{path}.{key}", f"unknown tier '{name}' (known: {known})")


def check_rules(
    rules: Mapping[str, Rule],
    intents: Mapping[str, IntentDef],
    display: str,
    issues: Collector,
) -> None:
    for rule_name, rule in rules.items():
        where = f"rules.{rule_name}"
        for i, intent_name in enumerate(rule.intents):
            if intent_name not in intents:
                issues.add(display, f"{where}.intents[{i}]", f"unknown intent '{intent_name}'")
                continue
            slot = getattr(rule, "slot", None)
            if slot is not None and slot not in intents[intent_name].spec.slots:
                issues.add(display, f"{where}.slot", f"intent '{intent_name}' has no slot '{slot}'")
            if isinstance(rule, TimeRangeRule) and slot is not None:
                spec_slot = intents[intent_name].spec.slots.get(slot)
                if spec_slot is not None and spec_slot.type != "time":
                    issues.add(display, f"{where}.slot", f"slot '{slot}' is not a time slot")
        for key, text in (
            ("reply", rule.reply),
            *([("requires", rule.requires)] if isinstance(rule, CapabilityRule) else []),
        ):
            try:
                compile_template(text)
            except TemplateSyntaxError as exc:
                issues.add(display, f"{where}.{key}", f"template syntax error: {exc.message}")


def check_responses(
    responses: ResponsesFileSpec,
    intents: Mapping[str, IntentDef],
    display: str,
    issues: Collector,
) -> None:
    for name, intent in intents.items():
        if intent.spec.handler is not None and "default" not in responses.intents.get(name, {}):
            issues.add(display, f"intents.{name}", "missing the 'default' response")
    for name, keys in responses.intents.items():
        if name not in intents:
            issues.add(display, f"intents.{name}", f"unknown intent '{name}'")
        for key, text in keys.items():
            try:
                compile_template(text)
            except TemplateSyntaxError as exc:
                issues.add(
                    display, f"intents.{name}.{key}", f"template syntax error: {exc.message}"
                )
    for key, text in responses.system.model_dump().items():
        try:
            compile_template(text)
        except TemplateSyntaxError as exc:
            issues.add(display, f"system.{key}", f"template syntax error: {exc.message}")
