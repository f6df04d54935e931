"""A voice turn's record: what was heard, how the transcript was chosen, what was answered and
said. Frozen once built; its JSON form (``edgepipe listen --json``) comes from its fields.

:func:`to_json` writes any of these records field by field: a nested record becomes an object,
a tuple a list, a float is rounded (3 digits; a field's ``digits`` metadata changes that for
everything under it), and field metadata leaves a field out (``json: False``), merges a mapping
into its parent (``inline``) or passes a value as it is (``raw``). A value of another module
that knows its own JSON form (a trace span's ``as_dict``) gives that.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt

from edgepipe.core.types import Span, TurnResult
from edgepipe.voice.snap import Snap

NOT_IN_JSON: Mapping[str, Any] = MappingProxyType({"json": False})
INLINE: Mapping[str, Any] = MappingProxyType({"inline": True})
RAW: Mapping[str, Any] = MappingProxyType({"raw": True})

_EMPTY: Mapping[str, Any] = MappingProxyType({})


class VoiceOutcome(StrEnum):
    """How a voice turn ended."""

    TURN = "turn"
    """A text turn ran."""
    CLARIFY = "clarify"
    """Nothing was heard surely enough: the guest was asked to repeat."""
    NO_SPEECH = "no_speech"
    """Push-to-talk, and nobody spoke."""
    TIMEOUT = "timeout"
    """Woken, and nobody spoke before the listening window closed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Scored:
    """A sentence scored against the utterance."""

    text: str
    """The sentence."""
    score: float
    """The open transcriber's total log-probability of writing it for the utterance."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Alternative:
    """One of the open transcriber's other hypotheses."""

    text: str
    """What it wrote."""
    avg_logprob: float
    """Its mean log-probability per token."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GrammarRecord:
    """The grammar path's hypothesis."""

    text: str
    """The words it heard (empty when none)."""
    ratio: float
    """Its confidence: per-frame acoustic score over that of a free phone loop."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SecondPass:
    """The open transcriber's second decode, after the grammar path's words."""

    context: str
    """The grammar path's words as they were given to it."""
    text: str
    """Its best hypothesis."""
    avg_logprob: float
    """The best hypothesis's mean log-probability per token."""
    alternatives: tuple[Alternative, ...]
    """Its other hypotheses, best first."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenRecord:
    """The open path: what the transcriber heard, and which reading of it was used."""

    text: str
    """The transcriber's best hypothesis."""
    avg_logprob: float
    """Its mean log-probability per token (the open path's confidence)."""
    no_speech_prob: float
    """The transcriber's probability that nobody spoke."""
    window_s: float
    """The audio window the transcriber used."""
    alternatives: tuple[Alternative, ...]
    """Its other hypotheses (the beam), best first."""
    second_pass: SecondPass | None
    """The second decode after the grammar path's words, when it ran."""
    used_rank: int
    """Which hypothesis was used: 0 the best; ranks past :attr:`alternatives` count on into
    :attr:`second_pass`'s hypotheses, its best first."""
    snapped: Snap | None
    """The pack sentence the transcript was replaced by (snapped or rescored), when it was."""
    rescored: tuple[Scored, ...] | None
    """The candidate sentences rescoring scored, the transcriber's own transcript first (as the
    pack writes sentences), when it scored any."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AsrRecord:
    """What each recognition path heard."""

    grammar: GrammarRecord | None = None
    """The grammar path (None when no speech was heard)."""
    open: OpenRecord | None = None
    """The open path (None when the grammar path was sure enough on its own)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Latency:
    """Where the time went, in milliseconds."""

    end_of_speech_to_first_audio: float | None = None
    """What the guest waits: audio time from the last voiced frame to the endpoint, plus the
    processing backlog, plus wall time from the endpoint to the first reply sample."""
    first_audio_after_endpoint: float | None = None
    """Wall time from the endpoint decision to the first reply sample."""
    backlog: float = 0.0
    """Processing that fell behind the audio while listening (the wake check, the adaptation
    to the wake phrase, frames slower than real time)."""
    stages: Mapping[str, float] = field(default_factory=lambda: _EMPTY, metadata=INLINE)
    """Each stage's time: ``wake_adapt``, ``wake_verify``, ``grammar_finish``, ``open_asr``,
    ``open_pick``, ``open_second_pass``, ``open_rescore``, ``contrast``, ``turn``,
    ``tts_first``, ``tts_total``, those that ran."""


@dataclass(frozen=True, slots=True, kw_only=True)
class VoiceTurn:
    """One voice interaction: a wake (or push-to-talk) and what followed."""

    wake: bool
    follow_up: bool = False
    """Heard without the wake word, as the answer to the question the turn before asked."""
    """Whether the wake word started it (False: push-to-talk)."""
    wake_at_s: float | None = None
    """Stream time (seconds from the first frame) of the start of the 10 ms frame on which the
    wake detector fired."""
    wake_score: float | None = None
    """The wake check's score (``voice.wake.verify``), when it ran."""
    outcome: VoiceOutcome = VoiceOutcome.NO_SPEECH
    """How it ended."""
    transcript: str = ""
    """The text the turn ran on ("" when none ran)."""
    asr_path: str | None = None
    """``grammar`` or ``open``: the path whose transcript was used; None when none was."""
    route: str | None = None
    """The text turn's route (``rules``, ``clarify``, ``cloud``...)."""
    reason: str | None = None
    """Why the router chose it."""
    intent: str | None = None
    """The intent the turn read, if any."""
    slots: Mapping[str, Any] = field(default_factory=lambda: _EMPTY, metadata=RAW)
    """Its slot values."""
    response: str = ""
    """What the assistant said."""
    handler_executed: bool = False
    """Whether an intent handler ran (and may have changed the room)."""
    tts_voice: str | None = None
    """The voice that spoke the reply (the fallback's name when it took over)."""
    asr: AsrRecord = field(default_factory=AsrRecord)
    """What the recognisers heard."""
    contrast: tuple[Scored, ...] | None = None
    """The contrast check's readings and their scores, the grammar path's own first
    (``voice.grammar.contrast_words``), when it ran."""
    endpoint: str | None = None
    """What ended the utterance: ``end`` (trailing silence), ``early_end`` (a shorter silence
    after a whole command), ``turn_end`` (the end-of-turn model, in a pause), ``command_max``
    (``voice.endpoint.command_max_s`` after a whole command), ``max_length``, ``stream_end``."""
    turn_scores: tuple[float, ...] = ()
    """The end-of-turn model's answers in the pauses it was asked about, in order."""
    speech_start_s: float | None = None
    """Stream time of the utterance's first voiced frame."""
    speech_end_s: float | None = None
    """Stream time of the end of its last voiced frame, as the VAD (and the level gate) saw it."""
    endpoint_s: float | None = None
    """Stream time at which the endpointer ended the utterance."""
    latency_ms: Latency = field(default_factory=Latency, metadata=MappingProxyType({"digits": 1}))
    """Where the time went."""
    trace: tuple[Span, ...] = ()
    """The text turn's stages."""
    result: TurnResult | None = field(default=None, metadata=NOT_IN_JSON)
    """The text turn, when one ran."""
    reply_audio: npt.NDArray[np.float32] | None = field(default=None, metadata=NOT_IN_JSON)
    """The reply's audio, all of it."""
    reply_rate: int = field(default=0, metadata=NOT_IN_JSON)
    """Its sample rate."""

    @property
    def stages_ms(self) -> Mapping[str, float]:
        return self.latency_ms.stages

    @property
    def end_of_speech_to_first_audio_ms(self) -> float | None:
        return self.latency_ms.end_of_speech_to_first_audio

    def latency_from(self, true_speech_end_s: float) -> float | None:
        """:attr:`Latency.end_of_speech_to_first_audio` measured from a known last voiced
        sample (test audio) instead of the VAD's view of it."""
        return end_of_speech_ms(
            true_speech_end_s,
            self.endpoint_s,
            self.latency_ms.backlog,
            self.latency_ms.first_audio_after_endpoint,
        )

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` form: :func:`to_json` of the fields."""
        return _fields(self, 3)


def end_of_speech_ms(
    speech_end_s: float | None,
    endpoint_s: float | None,
    backlog_ms: float,
    first_audio_ms: float | None,
) -> float | None:
    """Silence from ``speech_end_s`` to the endpoint + backlog + wall time to the first
    sample; None when any part is unknown."""
    if first_audio_ms is None or speech_end_s is None or endpoint_s is None:
        return None
    return max(0.0, (endpoint_s - speech_end_s) * 1000) + backlog_ms + first_audio_ms


def to_json(value: Any, digits: int = 3) -> Any:
    """``value`` as JSON-ready data (see the module docstring)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Span):
        return value.as_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _fields(value, digits)
    if isinstance(value, Mapping):
        return {str(k): to_json(v, digits) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [to_json(v, digits) for v in value]
    raise TypeError(f"no JSON form for {type(value).__name__}")


def _fields(record: Any, digits: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in dataclasses.fields(record):
        meta = item.metadata
        if not meta.get("json", True):
            continue
        value = getattr(record, item.name)
        if meta.get("raw"):
            out[item.name] = dict(value) if isinstance(value, Mapping) else value
            continue
        places = int(meta.get("digits", digits))
        if meta.get("inline"):
            out.update(to_json(value, places))
        else:
            out[item.name] = to_json(value, places)
    return out
