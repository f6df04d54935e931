"""What an intent-resolution backend is asked and answers (:mod:`edgepipe.tiers.resolve`).

A :class:`Catalogue` (the pack's intents, the prompt that lists them, the JSON schema of an
answer), a :class:`ResolveQuery` (the request and the router's candidates), a
:class:`Proposal` (the backend's reading, parsed and checked for shape) and the
:class:`IntentResolver` contract the local model and the cloud tiers meet.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from edgepipe.core.deadline import Deadline
from edgepipe.core.trace import TraceRecorder
from edgepipe.tiers.base import Passed, TierRequest

if TYPE_CHECKING:
    from edgepipe.pack.loader import Pack

NONE = "none"

RESOLVE_SYSTEM = (
    "You are the request reader of a hotel room assistant. Map the guest's words onto the "
    "assistant's actions below, including requests the guest only implies by describing a "
    "problem (too dark, too hot, too bright, something is broken or missing). Fill a field only "
    'with what the guest said; use null otherwise. Use intent "none" for anything that is not '
    "one of these actions: general knowledge, chit-chat, things outside the room, or a request "
    "the guest negates or only asks about. Several requests in one sentence: one entry each.\n"
    "Actions:\n{catalogue}"
)


@dataclass(frozen=True, slots=True)
class Catalogue:
    """What a backend may answer: the pack's intents, a prompt that lists them, and the JSON
    schema of an answer (for all intents, or for the router's candidates). Built once per
    pack."""

    intents: tuple[str, ...]
    system: str
    branches: Mapping[str, dict[str, Any]]
    """``intent -> schema`` of one request for it (``{"intent": const, slot: value|null}``)."""
    forms: Mapping[str, Mapping[str, Mapping[str, list[str]]]]
    """``intent -> slot -> value -> spoken forms`` of list slots (for the support check)."""
    max_requests: int = 3

    def schema_json(self, candidates: tuple[str, ...] = ()) -> str:
        """The answer's JSON schema, limited to ``candidates`` (and ``none``) when given. Key
        order is generation order: the intent comes before its slots."""
        names = [n for n in candidates if n in self.branches] or list(self.intents)
        schema = {
            "type": "object",
            "properties": {
                "requests": {
                    "type": "array",
                    "items": {"anyOf": [self.branches[n] for n in [*names, NONE]]},
                    "minItems": 1,
                    "maxItems": self.max_requests,
                }
            },
            "required": ["requests"],
        }
        return json.dumps(schema)

    @classmethod
    def from_pack(cls, pack: Pack, *, max_requests: int = 3) -> Catalogue:
        from edgepipe.nlu.templates import build_intents
        from edgepipe.tiers.slot_filler import slot_property

        lists = build_intents(pack).slot_lists
        lines: list[str] = []
        branches: dict[str, dict[str, Any]] = {}
        forms: dict[str, dict[str, dict[str, list[str]]]] = {}
        for name, intent in pack.intents.items():
            spec = intent.spec
            props: dict[str, Any] = {"intent": {"const": name}}
            fields: list[str] = []
            for slot, slot_spec in spec.slots.items():
                prop, slot_forms = slot_property(slot_spec, lists.get(slot_spec.list or slot))
                props[slot] = prop
                if slot_forms:
                    forms.setdefault(name, {})[slot] = slot_forms
                    fields.append(f"{slot}: {'|'.join(sorted(slot_forms))}")
                elif slot_spec.type == "time":
                    fields.append(f"{slot}: HH:MM")
                else:
                    fields.append(f"{slot}: {slot_spec.type}")
            line = f"- {name}: {spec.description}"
            if fields:
                line += f" Fields: {'; '.join(fields)}."
            examples = list(spec.examples[:2])
            if examples:
                line += " E.g. " + ", ".join(f'"{e}"' for e in examples) + "."
            lines.append(line)
            branches[name] = {"type": "object", "properties": props, "required": list(props)}
        lines.append(f"- {NONE}: anything else.")
        branches[NONE] = {
            "type": "object",
            "properties": {"intent": {"const": NONE}},
            "required": ["intent"],
        }
        system = RESOLVE_SYSTEM.format(catalogue="\n".join(lines))
        return cls(tuple(pack.intents), system, branches, forms, max_requests)


@dataclass(frozen=True, slots=True, kw_only=True)
class ResolveQuery:
    """What a backend is asked."""

    text: str
    catalogue: Catalogue
    candidates: tuple[str, ...]
    """The router's best readings (the answer is limited to these and ``none``); empty: any
    intent of the pack."""
    turn_id: str
    request: TierRequest

    @property
    def prompt(self) -> str:
        """The user turn a model backend is given."""
        if not self.candidates:
            return f"Guest: {self.text}"
        return f"Guest: {self.text}\nLikely actions: {', '.join(self.candidates)}, or {NONE}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Proposal:
    """A backend's reading: requests as ``(intent, raw slots)``; empty means ``none``."""

    backend: str
    requests: tuple[tuple[str, Mapping[str, Any]], ...]
    raw: str = ""

    @property
    def none(self) -> bool:
        return not self.requests

    @classmethod
    def parse(cls, backend: str, text: str, intents: tuple[str, ...]) -> Proposal:
        """Read a backend's JSON answer; raises ``ValueError`` naming what is wrong."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not JSON: {exc.msg}") from exc
        items = data.get("requests") if isinstance(data, dict) else None
        if isinstance(data, dict) and items is None and "intent" in data:
            items = [data]  # one request without the list around it
        if not isinstance(items, list):
            raise ValueError("no 'requests' list")
        found: list[tuple[str, Mapping[str, Any]]] = []
        for item in items:
            if not isinstance(item, dict):
                raise ValueError("a request is not an object")
            name = item.get("intent")
            if name == NONE:
                continue
            if name not in intents:
                raise ValueError(f"unknown intent {name!r}")
            slots = {k: v for k, v in item.items() if k != "intent" and v is not None}
            if all(name != n or dict(slots) != dict(s) for n, s in found):
                found.append((str(name), slots))
        return cls(backend=backend, requests=tuple(found), raw=text)


@runtime_checkable
class IntentResolver(Protocol):
    """A backend that reads a request onto the pack's intents (the local model, the cloud)."""

    name: str

    def resolve_intent(
        self, query: ResolveQuery, deadline: Deadline, trace: TraceRecorder
    ) -> Proposal | Passed: ...
