"""Labelled utterance files: one JSON object per line, ``{"text": ..., "intent": ...}``.

Optional keys: ``slots`` (expected slot values), ``style`` (``direct``, ``indirect``, ``oos``...).
The label ``oos`` marks out-of-scope lines. A line with several requests in one sentence gives
``"requests": [{"intent": ..., "slots": {...}}, ...]`` (in the order spoken) instead of
``intent`` and ``slots``. Problems name the file and line.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgepipe.core.errors import EdgepipeError

OOS = "oos"


class DatasetError(EdgepipeError):
    """A labelled file could not be read."""

    default_code = "dataset_invalid"


@dataclass(frozen=True, slots=True, kw_only=True)
class Example:
    """One labelled utterance."""

    text: str
    intent: str
    slots: Mapping[str, Any] = field(default_factory=dict)
    style: str = ""
    line: int = 0
    also: tuple[tuple[str, Mapping[str, Any]], ...] = ()
    """Further requests of the same sentence (a multi-request line), after ``intent``."""

    @property
    def is_oos(self) -> bool:
        return self.intent == OOS

    @property
    def requests(self) -> tuple[tuple[str, Mapping[str, Any]], ...]:
        """Every request of the line, ``(intent, slots)``, in the order spoken."""
        return ((self.intent, self.slots), *self.also)


def load_examples(path: str | Path, *, max_bytes: int = 200 * 1024 * 1024) -> list[Example]:
    """Read a JSON-lines file of labelled utterances."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise DatasetError(f"{p}: cannot read: {exc.strerror or exc}") from exc
    if size > max_bytes:
        raise DatasetError(f"{p}: file is {size} bytes; the limit is {max_bytes}")
    try:
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{p}: not UTF-8 text (invalid byte at offset {exc.start})") from exc
    out: list[Example] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{p}:{number}: not JSON: {exc.msg} (column {exc.colno})") from exc
        if not isinstance(obj, dict):
            raise DatasetError(f"{p}:{number}: expected a JSON object, got {type(obj).__name__}")
        utterance = obj.get("text")
        if not isinstance(utterance, str) or not utterance.strip():
            raise DatasetError(f"{p}:{number}: 'text' must be a non-empty string")
        if "requests" in obj:
            wanted = obj["requests"]
            if not isinstance(wanted, list) or not wanted:
                raise DatasetError(f"{p}:{number}: 'requests' must be a non-empty list")
            labels = [_label(p, number, item) for item in wanted]
        else:
            labels = [_label(p, number, obj)]
        style = obj.get("style", "")
        (intent, slots), *also = labels
        out.append(
            Example(
                text=utterance,
                intent=intent,
                slots=slots,
                style=str(style),
                line=number,
                also=tuple(also),
            )
        )
    if not out:
        raise DatasetError(f"{p}: no examples")
    return out


def _label(path: Path, number: int, obj: object) -> tuple[str, dict[str, Any]]:
    if not isinstance(obj, dict):
        raise DatasetError(f"{path}:{number}: a request must be a JSON object")
    intent = obj.get("intent")
    if not isinstance(intent, str) or not intent.strip():
        raise DatasetError(f"{path}:{number}: 'intent' must be a non-empty string")
    slots = obj.get("slots", {})
    if not isinstance(slots, dict):
        raise DatasetError(f"{path}:{number}: 'slots' must be an object")
    return intent, slots
