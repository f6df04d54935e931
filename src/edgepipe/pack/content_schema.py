"""Pydantic models of a pack's content files: ``intents/*.yaml``, ``rules.yaml``,
``examples.yaml`` and ``responses.yaml`` (``pack.yaml``'s are in :mod:`edgepipe.pack.schema`).

One model per file kind. They check shape and types only; references between files are checked
by :mod:`edgepipe.pack.references`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from edgepipe.pack.schema import Name, PolicySpec, Scalar, SpecModel, check_hhmm

# --------------------------------------------------------------------------- intents/*.yaml


class ListValueSpec(SpecModel):
    """A slot list entry whose spoken form differs from its value."""

    in_: str = Field(alias="in", min_length=1)
    out: str | int


class RangeSpec(SpecModel):
    """A numeric slot list; numbers may be spoken as digits or words."""

    from_: int = Field(alias="from")
    to: int
    step: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> RangeSpec:
        if self.to < self.from_:
            raise ValueError(f"range 'from' ({self.from_}) is greater than 'to' ({self.to})")
        return self


class SlotListSpec(SpecModel):
    """A slot list: exactly one of ``values``, ``range`` or ``wildcard``."""

    values: list[str | ListValueSpec] | None = None
    range: RangeSpec | None = None
    wildcard: bool = False

    @model_validator(mode="after")
    def _one_kind(self) -> SlotListSpec:
        kinds = [self.values is not None, self.range is not None, self.wildcard]
        if sum(kinds) != 1:
            raise ValueError(
                "a slot list needs exactly one of 'values', 'range' or 'wildcard: true'"
            )
        if self.values is not None and not self.values:
            raise ValueError("'values' is empty")
        return self


class SlotSpec(SpecModel):
    """A slot an intent fills."""

    list: str | None = None
    """Slot list the value comes from; defaults to the slot's own name."""
    type: Literal["text", "number", "time"] = "text"
    """How the raw value is normalised. ``time`` parses spoken times into ``HH:MM``."""
    required: bool = False
    """Without it the request is answered with a clarifying question."""
    default: Scalar | None = None
    """Value used when the request does not say."""
    prefer: Literal["any", "morning", "afternoon", "daytime"] = "any"
    """For ``time`` slots: how to read an hour without am/pm."""
    quantity: Literal["count", "level"] | None = None
    """For ``number`` slots: which amount words it also takes. ``count``: how many ("a couple
    of", "a pair of", "another one", "we have two, bring two more" is 2); ``level``: a point of
    its range list ("half", "a quarter", "three quarters", "full", "all the way down", "50 %").
    Without it, only numbers (digits or words)."""
    question: str | None = None
    """What to ask when the slot is missing ("What time should I wake you?")."""


class IntentSpec(SpecModel):
    """One intent."""

    description: str = Field(min_length=1)
    summary: str | None = None
    """A few words for clarifying questions ("turn the lights on"); default from description."""
    handler: str | None = None
    """A built-in handler name, or ``pack:<function>`` from the pack's ``handlers.py``.
    Required for the ``rules`` tier; the model tiers answer without one."""
    args: dict[str, Any] = Field(default_factory=dict)
    """Handler arguments (key templates, step sizes...)."""
    slots: dict[Name, SlotSpec] = Field(default_factory=dict)
    templates: list[str] = Field(default_factory=list)
    """Sentence templates in the Home Assistant template language (hassil)."""
    examples: list[str] = Field(default_factory=list)
    """Free-form example requests, for the learned router."""
    policy: PolicySpec | None = None
    impact: Literal["low", "high"] = "low"
    """High-impact intents (bookings, billing) are never acted on at low confidence."""
    shape_reply: bool = False
    """Let the local model rephrase the reply (validated; the template reply otherwise)."""
    task: Literal["qa", "chat"] = "qa"
    """For model tiers: ``qa`` answers from the information page; ``chat`` is free text."""
    deferrable: bool = False
    """When the cloud tier is offline, queue the request and deliver it when back online."""

    @field_validator("templates")
    @classmethod
    def _non_blank(cls, value: list[str]) -> list[str]:
        for i, text in enumerate(value):
            if not text.strip():
                raise ValueError(f"template [{i}] is blank")
        return value


class IntentsFileSpec(SpecModel):
    """An ``intents/*.yaml`` file."""

    lists: dict[Name, SlotListSpec] = Field(default_factory=dict)
    expansion_rules: dict[Name, str] = Field(default_factory=dict)
    intents: dict[Name, IntentSpec] = Field(default_factory=dict)


# --------------------------------------------------------------------------- rules.yaml


class _RuleBase(SpecModel):
    intents: list[Name] = Field(min_length=1)
    reply: str = Field(min_length=1)
    """Polite reply when the rule refuses (Jinja2; sees the rule's fields, slots and value)."""
    description: str = ""


class RangeRule(_RuleBase):
    """A numeric slot (or handler-computed value) must lie in [min, max]."""

    kind: Literal["range"]
    slot: Name | None = None
    """Slot checked before the handler runs; None for rules that handlers check themselves."""
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _bounds(self) -> RangeRule:
        if self.min is None and self.max is None:
            raise ValueError("a range rule needs 'min', 'max' or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


class TimeRangeRule(_RuleBase):
    """A time-of-day slot must lie between earliest and latest (``HH:MM``)."""

    kind: Literal["time_range"]
    slot: Name
    earliest: str | None = None
    latest: str | None = None

    @field_validator("earliest", "latest")
    @classmethod
    def _hhmm(cls, value: str | None) -> str | None:
        return None if value is None else check_hhmm(value)


class WindowSpec(SpecModel):
    """A daily window; ``end`` before ``start`` wraps past midnight."""

    start: str
    end: str

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        return check_hhmm(value)


class WindowRule(_RuleBase):
    """The intent is only served inside ``allowed`` (or never inside ``denied``)."""

    kind: Literal["window"]
    allowed: WindowSpec | None = None
    denied: WindowSpec | None = None

    @model_validator(mode="after")
    def _one(self) -> WindowRule:
        if (self.allowed is None) == (self.denied is None):
            raise ValueError("a window rule needs exactly one of 'allowed' or 'denied'")
        return self


class CapabilityRule(_RuleBase):
    """The room must have a capability (a template over slots, e.g. ``lights.{{ zone }}``)."""

    kind: Literal["capability"]
    requires: str = Field(min_length=1)


Rule = Annotated[
    RangeRule | TimeRangeRule | WindowRule | CapabilityRule, Field(discriminator="kind")
]


class RulesFileSpec(SpecModel):
    """``rules.yaml``."""

    rules: dict[Name, Rule] = Field(default_factory=dict)


# --------------------------------------------------------------------------- examples.yaml


class ExamplesFileSpec(SpecModel):
    """``examples.yaml``: free-form requests per intent and out-of-scope requests, for training
    the learned router (in addition to each intent's own ``examples``)."""

    intents: dict[Name, list[Annotated[str, Field(min_length=1)]]] = Field(default_factory=dict)
    out_of_scope: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)


# --------------------------------------------------------------------------- responses.yaml


class SystemRepliesSpec(SpecModel):
    """Replies the runtime itself gives."""

    fallback: str = (
        "Sorry, I can't help with that here. I can control the room and answer questions "
        "about the hotel."
    )
    handler_error: str = (
        "Sorry, something went wrong with that request. Please call the front desk."
    )
    clarify_slot: str = "Sorry, I didn't catch the {{ slot }}. Could you say it again?"
    confirm: str = "Just to check: do you want me to {{ action }}?"
    choose: str = "Sorry, did you mean {{ first }}, or {{ second }}?"
    declined: str = "OK, I won't do that."
    other_room: str = (
        "I can only do that for this room. The front desk (dial 0) can help"
        "{% if room %} with room {{ room }}{% endif %}."
    )
    """``room``: the other room's number, "" when the request did not say one."""
    offline: str = (
        "I'm offline right now, so I can't look that up. I can still control the room and answer "
        "questions about the hotel; general questions need the network."
    )
    cloud_failed: str = (
        "Sorry, I couldn't reach the online assistant just now. I can still control the room and "
        "answer questions about the hotel."
    )
    budget_exhausted: str = (
        "Sorry, this month's budget for online answers is used up, so I can't look that up. I "
        "can still control the room and answer questions about the hotel."
    )
    privacy_blocked: str = (
        "That request has details I keep on this device, so I can't send it online. The front "
        "desk (dial 0) can help."
    )
    deferred: str = (
        "The connection is down, so I've saved that and will pass it on as soon as it's back."
    )


class ResponsesFileSpec(SpecModel):
    """``responses.yaml``: reply templates (Jinja2) per intent and response key."""

    system: SystemRepliesSpec = Field(default_factory=SystemRepliesSpec)
    intents: dict[Name, dict[Name, str]] = Field(default_factory=dict)
