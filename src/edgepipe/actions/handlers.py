"""Intent handlers: the code that acts on a matched intent.

A handler is a function ``(ctx: HandlerContext) -> HandlerResult``. Packs name a built-in
handler (``set_state``, ``adjust_state``, ``create_request``, ``answer_fact``) with arguments in
YAML, or their own function as ``pack:<name>`` from the pack's ``handlers.py``. Handlers raise
:class:`~edgepipe.core.errors.RuleViolation` to refuse politely; anything else they raise becomes a
coded ``handler_failed`` error and an honest reply.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import ModuleType
from typing import Any

from edgepipe.actions.business_rules import RuleEngine
from edgepipe.actions.state import StateAdapter
from edgepipe.core.errors import HandlerError
from edgepipe.core.types import IntentMatch, SlotScalar
from edgepipe.pack.schema import RoomSpec
from edgepipe.pack.templating import render


@dataclass(frozen=True, slots=True, kw_only=True)
class HandlerContext:
    """What a handler may see and touch."""

    intent: IntentMatch
    """The matched intent (slot source words included)."""
    slots: Mapping[str, SlotScalar]
    """Slot values by name (defaults applied)."""
    args: Mapping[str, Any]
    """The intent's ``args`` from the pack."""
    state: StateAdapter
    """Room/device state and service requests."""
    facts: Mapping[str, Any]
    """The pack's ``facts.yaml``."""
    room: RoomSpec
    """The room this assistant serves."""
    now: datetime
    """Current time in the pack's time zone."""
    rules: RuleEngine
    """For checking handler-computed values (``rules.check_value``)."""

    def render(self, template: str, **extra: Any) -> str:
        """Render a pack template against the slots (plus ``extra``)."""
        return render(template, {**self.slots, **extra})

    def arg(self, name: str) -> Any:
        """A required handler argument; a clear error when the pack did not set it."""
        if name not in self.args:
            raise HandlerError(
                f"intent '{self.intent.name}' needs handler argument '{name}'",
                code="handler_misconfigured",
            )
        return self.args[name]


@dataclass(frozen=True, slots=True, kw_only=True)
class HandlerResult:
    """What a handler did, for the reply template."""

    response: str = "default"
    """Response key in ``responses.yaml`` for this intent."""
    data: Mapping[str, Any] = field(default_factory=dict)
    """Variables for the reply template (slots are added automatically)."""


Handler = Callable[[HandlerContext], HandlerResult]


def _coerce(value: Any) -> SlotScalar:
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.lstrip("-").isdigit():
            return int(stripped)
        return stripped
    if isinstance(value, bool | int | float):
        return value
    raise HandlerError(f"state values must be scalars, got {type(value).__name__}")


def set_state(ctx: HandlerContext) -> HandlerResult:
    """Set ``args.key`` (a template) to ``args.value`` (a template or a literal).

    A key ending in ``*`` sets every existing key with that prefix ("all the lights").
    """
    key = ctx.render(str(ctx.arg("key")))
    raw = ctx.arg("value")
    value = _coerce(ctx.render(raw) if isinstance(raw, str) else raw)
    keys = ctx.state.keys(key[:-1]) if key.endswith("*") else [key]
    previous = {k: ctx.state.set(k, value) for k in keys}
    changed = sum(1 for v in previous.values() if v != value)
    return HandlerResult(
        response="default" if changed or not keys else "unchanged",
        data={"value": value, "keys": keys, "changed": changed},
    )


def adjust_state(ctx: HandlerContext) -> HandlerResult:
    """Add ``args.step`` to the numeric ``args.key``, checked against range rule ``args.rule``."""
    key = ctx.render(str(ctx.arg("key")))
    step = float(ctx.arg("step"))
    current = ctx.state.get(key, ctx.args.get("default"))
    if not isinstance(current, int | float) or isinstance(current, bool):
        raise HandlerError(f"state '{key}' is not a number ({current!r})")
    target = current + step
    target = int(target) if float(target).is_integer() else round(target, 1)
    if "rule" in ctx.args:
        ctx.rules.check_value(str(ctx.args["rule"]), target, previous=current)
    ctx.state.set(key, target)
    return HandlerResult(data={"previous": current, "value": target})


def create_request(ctx: HandlerContext) -> HandlerResult:
    """File a service request of kind ``args.kind`` with the slots as details."""
    request = ctx.state.add_request(str(ctx.arg("kind")), ctx.slots, created_at=ctx.now)
    return HandlerResult(data={"request_id": request.request_id})


def answer_fact(ctx: HandlerContext) -> HandlerResult:
    """Answer from ``facts.yaml``: ``args.fact`` is a dotted path, exposed as ``fact``."""
    path = str(ctx.arg("fact"))
    node: Any = ctx.facts
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise HandlerError(f"facts.yaml has no '{path}'", code="fact_missing")
        node = node[part]
    return HandlerResult(data={"fact": node})


BUILTIN_HANDLERS: dict[str, Handler] = {
    "set_state": set_state,
    "adjust_state": adjust_state,
    "create_request": create_request,
    "answer_fact": answer_fact,
}


def resolve_handler(ref: str, module: ModuleType | None) -> Handler:
    """Find the handler a pack names; ``LookupError`` with a clear message if there is none."""
    if ref.startswith("pack:"):
        func_name = ref.removeprefix("pack:")
        if module is None:
            raise LookupError(f"handler '{ref}' needs a handlers.py in the pack, and there is none")
        func = getattr(module, func_name, None)
        if not callable(func):
            raise LookupError(f"handlers.py has no function '{func_name}'")
        return func  # type: ignore[no-any-return]
    if ref not in BUILTIN_HANDLERS:
        known = ", ".join(sorted(BUILTIN_HANDLERS))
        raise LookupError(f"unknown handler '{ref}' (built-ins: {known}; or 'pack:<function>')")
    return BUILTIN_HANDLERS[ref]
