"""Filling slots the router could not spot, with the local model under a JSON-schema grammar.

The schema limits each value to what the slot can hold (a list's values, a range, ``HH:MM``);
a value is kept only if it passes the slot's own normalisation and the request's words support
it (a time the request mentions, a list value whose spoken forms appear in it). Otherwise the
guest is asked.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from edgepipe.core.deadline import Deadline
from edgepipe.core.trace import TraceRecorder
from edgepipe.core.types import Outcome, SlotValue
from edgepipe.models.llama import TextModel
from edgepipe.pack.content_schema import SlotSpec
from edgepipe.pack.loader import Pack
from edgepipe.tiers.checks import value_supported

SLOTS_SYSTEM = (
    "You read a hotel guest's request and fill in the fields of a JSON object. Use null for a "
    "field the request does not mention. Answer with the JSON object only."
)


class SlotFiller:
    """Asks the model for missing slot values and keeps only the ones the request supports."""

    def __init__(self, pack: Pack, model: TextModel) -> None:
        self._pack = pack
        self._model = model

    def extract(
        self,
        intent: str,
        text: str,
        missing: list[str],
        now: datetime,
        deadline: Deadline,
        trace: TraceRecorder,
    ) -> dict[str, SlotValue]:
        """Values for ``missing`` slots the request's words support; {} when none."""
        from llama_cpp.llama_grammar import LlamaGrammar

        from edgepipe.nlu.templates import normalise_slot

        if not missing:
            return {}
        specs = self._pack.intents[intent].spec.slots
        schema, forms = self._slot_schema(intent, missing)
        with trace.span("extract") as span:
            grammar = LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
            gen = self._model.complete(
                "slots",
                SLOTS_SYSTEM,
                f"Request: {text}\nFields: {', '.join(missing)}",
                max_tokens=48,
                grammar=grammar,
                deadline=deadline,
            )
            found: dict[str, SlotValue] = {}
            problems: list[str] = []
            try:
                data = json.loads(gen.text)
            except json.JSONDecodeError:
                data = {}
                problems.append("not_json")
            for name in missing:
                raw = data.get(name) if isinstance(data, dict) else None
                if raw is None:
                    continue
                spec = specs[name]
                try:
                    value = normalise_slot(name, spec, raw, str(raw), now)
                except ValueError:
                    problems.append(f"{name}_invalid")
                    continue
                spoken = forms[name].get(str(value), []) if name in forms else None
                if value_supported(spec.type, value, raw, text, spoken):
                    found[name] = SlotValue(name=name, value=value, text=str(raw))
                else:
                    problems.append(f"{name}_unsupported")
            if problems and not found:
                span.set(Outcome.INVALID, error_code=problems[0], detail=gen.text[:120])
            else:
                span.set(Outcome.OK if found else Outcome.NO_MATCH, detail=gen.text[:120])
        return found

    def _slot_schema(
        self, intent: str, missing: list[str]
    ) -> tuple[dict[str, Any], dict[str, dict[str, list[str]]]]:
        from edgepipe.nlu.templates import build_intents

        lists = build_intents(self._pack).slot_lists
        props: dict[str, Any] = {}
        forms: dict[str, dict[str, list[str]]] = {}
        for name in missing:
            spec = self._pack.intents[intent].spec.slots[name]
            props[name], outs = slot_property(spec, lists.get(spec.list or name))
            if outs:
                forms[name] = outs
        return {"type": "object", "properties": props, "required": list(props)}, forms


def slot_property(spec: SlotSpec, slot_list: object) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The JSON schema of one slot's value (null allowed), and for a list slot its values'
    spoken forms (``value -> forms``, for checking that a request supports a value)."""
    from hassil.sample import sample_expression

    if spec.type == "time":
        return {
            "anyOf": [
                {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$"},
                {"type": "null"},
            ]
        }, {}
    if hasattr(slot_list, "values"):
        outs: dict[str, list[str]] = {}
        for value in slot_list.values:  # a hassil TextSlotList
            outs.setdefault(str(value.value_out), []).extend(sample_expression(value.text_in))
        return {"anyOf": [{"enum": sorted(outs)}, {"type": "null"}]}, outs
    if hasattr(slot_list, "start"):
        return {
            "anyOf": [
                {
                    "type": "integer",
                    "minimum": slot_list.start,
                    "maximum": slot_list.stop,  # type: ignore[attr-defined]
                },
                {"type": "null"},
            ]
        }, {}
    return {"anyOf": [{"type": "string", "maxLength": 40}, {"type": "null"}]}, {}
