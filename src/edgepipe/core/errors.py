"""Coded errors.

Every error edgepipe raises on purpose is an :class:`EdgepipeError` with a stable ``code`` (used
in traces, telemetry and routing decisions) and a message written for the person who has to fix
the problem. Library exceptions are translated into these at the stage boundary
(``raise StageError(...) from exc``), never swallowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class EdgepipeError(Exception):
    """Base class: a stable machine-readable code plus a human message."""

    default_code = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code or self.default_code
        self.message = message

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True, slots=True, kw_only=True)
class PackIssue:
    """One problem found while loading a pack."""

    file: str
    """The pack file the problem is in (as given, relative or absolute)."""
    path: str
    """Dotted key path inside the file (``intents.lights_off.slots.zone``); empty for the file."""
    message: str
    """What is wrong."""

    def __str__(self) -> str:
        return (
            f"{self.file}: {self.path}: {self.message}"
            if self.path
            else f"{self.file}: {self.message}"
        )


class PackError(EdgepipeError):
    """A pack could not be loaded; ``issues`` lists every problem found."""

    default_code = "pack_invalid"

    def __init__(self, issues: list[PackIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(issue) for issue in issues))


class InputError(EdgepipeError):
    """The request itself is unusable (empty, too long, not text)."""

    default_code = "input_invalid"


class StageError(EdgepipeError):
    """A pipeline stage failed; ``stage`` names it."""

    default_code = "stage_failed"

    def __init__(self, message: str, *, stage: str, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.stage = stage


class HandlerError(StageError):
    """An intent handler raised or returned something unusable."""

    default_code = "handler_failed"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message, stage="handler", code=code)


class SlotError(StageError):
    """A slot value could not be interpreted (e.g. an unparsable time)."""

    default_code = "slot_invalid"

    def __init__(self, message: str, *, slot: str, code: str | None = None) -> None:
        super().__init__(message, stage="templates", code=code)
        self.slot = slot


class RuleViolation(EdgepipeError):
    """A business rule refused the request. Carries the polite reply to give."""

    default_code = "rule_violation"

    def __init__(self, rule: str, reply: str, *, data: Mapping[str, Any] | None = None) -> None:
        super().__init__(f"rule {rule!r} refused the request", code=f"rule:{rule}")
        self.rule = rule
        self.reply = reply
        self.data = dict(data or {})


class TelemetryError(EdgepipeError):
    """The telemetry store could not record a turn (the turn itself still answers)."""

    default_code = "telemetry_failed"
