"""What each voice backend must do, what it hands back, and the registry it is found in.

Six kinds of backend do the voice front end's work, each behind one contract:

============================  ===========================  =========================
contract                      registry (entry-point group)  edgepipe's own
============================  ===========================  =========================
:class:`WakeDetector`         ``edgepipe.wake``             ``microwakeword``
:class:`VadScorer`            ``edgepipe.vad``              ``silero``
:class:`TurnDetector`         ``edgepipe.turn``             ``smart_turn``
:class:`StreamingRecognizer`  ``edgepipe.recognizers``      ``pocketsphinx``
:class:`OpenTranscriber`      ``edgepipe.transcribers``     ``whisper``
:class:`Synthesizer`          ``edgepipe.synthesizers``     ``piper``, ``espeak``
============================  ===========================  =========================

A pack names a backend per stage (``voice.open.backend: whisper``); the registry of that kind
resolves the name to a factory (``BackendContext -> backend``): edgepipe's own first
(:mod:`edgepipe.voice.backends`), then the entry points of installed packages::

    [project.entry-points."edgepipe.transcribers"]
    sphinx_free = "edgepipe_sphinx_free:build"

The open transcriber can do more than transcribe, and what more is **declared**, never probed:
:attr:`OpenTranscriber.capabilities` says which of n-best alternatives, scoring a phrase,
scoring sentences, reusing an encoding and decoding after context it offers, and the front end
uses only what is declared (no wake check and no rescoring with a transcriber that cannot
score; the log says so when the voice session is built).

Every audio argument is 16 kHz mono: ``bytes`` of 16-bit PCM for the streaming stages (10 ms
frames), a numpy array (int16, or float32 in [-1, 1]) for a whole utterance.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from edgepipe.core.errors import EdgepipeError
from edgepipe.core.registry import Registry

if TYPE_CHECKING:
    from edgepipe.core.resources import Resources
    from edgepipe.pack.loader import Pack
    from edgepipe.pack.voice_schema import VoiceSpec

Samples = npt.NDArray[np.int16] | npt.NDArray[np.float32]
"""A whole utterance at 16 kHz: int16, or float32 in [-1, 1]."""


class WakeError(EdgepipeError):
    """The wake-word model could not be loaded."""

    default_code = "wake_unavailable"


class VadError(EdgepipeError):
    default_code = "vad_unavailable"


class EndpointError(EdgepipeError):
    """The end-of-turn model could not be loaded, or was given audio it cannot read."""

    default_code = "endpoint_unavailable"


class AsrError(EdgepipeError):
    default_code = "asr_unavailable"


class TtsError(EdgepipeError):
    """Synthesis failed (``tts_failed``) or a backend is not installed (``tts_unavailable``)."""

    default_code = "tts_failed"


# --------------------------------------------------------------------------- what they return


@dataclass(frozen=True, slots=True)
class WakeEvent:
    """A detection."""

    at_s: float
    """Seconds of audio the detector had been fed since its reset when it fired. Not stream
    time: the listener feeds it only while it waits for a wake (stream time is the
    listener's :attr:`~edgepipe.voice.record.VoiceTurn.wake_at_s`)."""
    probability: float
    """The detector's probability that fired."""


@dataclass(frozen=True, slots=True)
class GrammarHypothesis:
    """What the grammar path heard in one utterance."""

    text: str
    """Best word sequence under the pack's language model (empty when nothing was heard)."""
    ratio: float
    """Per-frame acoustic score of ``text`` over that of a free phone loop (higher = surer)."""
    frames: int
    """10 ms frames decoded."""
    finish_ms: float
    """Work left after the last audio arrived (the streaming decode's tail)."""


@dataclass(frozen=True, slots=True)
class EncodedAudio:
    """A transcriber's encoding of one utterance, to decode more than once
    (:attr:`Capability.ENCODE`); opaque to everyone but the transcriber that made it."""

    output: Any
    """The backend's own encoder output."""
    frames: int
    """Feature frames of the audio itself (100 per second), before any padding."""
    window: int
    """Feature frames of the encoder window, padding included."""


@dataclass(frozen=True, slots=True)
class OpenHypothesis:
    """What the open transcriber heard in one utterance."""

    text: str
    avg_logprob: float
    """Mean log-probability per token (the transcriber's own confidence)."""
    no_speech_prob: float
    """Probability that nobody spoke (0 from a transcriber that cannot tell)."""
    window_s: float
    """Length of the audio window the transcriber used."""
    ms: float
    """Wall time the transcription took."""
    alternatives: tuple[tuple[str, float], ...] = ()
    """Other hypotheses, best first, as ``(text, avg_logprob)`` (:attr:`Capability.
    ALTERNATIVES`; empty otherwise)."""


# --------------------------------------------------------------------------- the contracts


class WakeDetector(Protocol):
    """Listens for the wake phrase, 10 ms at a time."""

    @property
    def wake_phrase(self) -> str:
        """The phrase it listens for, as it is written (``"Okay Nabu"``)."""
        ...

    @property
    def max_probability(self) -> float:
        """The highest probability since :meth:`reset` (benchmarks, tests)."""
        ...

    def reset(self) -> None:
        """Forget the stream (a new file or microphone session)."""
        ...

    def release(self) -> None:
        """Forget the last detection's refractory period: a later check dropped that wake."""
        ...

    def process(self, pcm: bytes) -> WakeEvent | None:
        """Feed PCM (normally one 10 ms frame); an event when the phrase is heard."""
        ...


class VadScorer(Protocol):
    """A speech probability for every 10 ms frame."""

    def reset(self) -> None:
        """Forget the stream."""
        ...

    def score(self, frame: bytes) -> float:
        """The speech probability at this frame (0-1)."""
        ...


class TurnDetector(Protocol):
    """Whether an utterance so far is a finished turn, from its audio (asked in a pause)."""

    name: str

    def probability(self, samples: Samples) -> float:
        """P(the speaker has finished) for the utterance from its start to now."""
        ...


class StreamingRecognizer(Protocol):
    """The grammar path: decodes an utterance while it is spoken, held to the pack's sentences.

    One utterance at a time: :meth:`start`, :meth:`feed` frames, :meth:`finish`. Its front end
    (cepstral mean, noise estimate) carries over from utterance to utterance within a stream
    and starts every stream from the state :meth:`prime` set.
    """

    def prime(self, pcm: bytes) -> None:
        """Set the state a new stream starts from, from speech streamed as a guest's would be."""
        ...

    @property
    def primed(self) -> bool:
        """Whether :meth:`prime` has run."""
        ...

    def restore_prior(self) -> None:
        """Back to the primed state (a new stream)."""
        ...

    def adapt(self, pcm: bytes) -> None:
        """Decode ``pcm`` (the wake phrase just heard) and discard the words: the front end
        moves towards this speaker and room before the command starts."""
        ...

    def start(self) -> None:
        """Begin an utterance (ending one abandoned half-way)."""
        ...

    def feed(self, pcm: bytes) -> None:
        """Decode one more piece of the utterance."""
        ...

    def partial(self) -> str:
        """The best words so far."""
        ...

    def finish(self) -> GrammarHypothesis:
        """End the utterance: what was heard, and how surely."""
        ...

    def recognize(self, pcm: bytes) -> GrammarHypothesis:
        """A whole utterance at once (tests, benchmarks)."""
        ...


class Capability(StrEnum):
    """What an :class:`OpenTranscriber` offers beyond :meth:`~OpenTranscriber.transcribe`."""

    ALTERNATIVES = "alternatives"
    """:attr:`OpenHypothesis.alternatives` holds the other hypotheses of its search (n-best)."""
    PHRASE_SCORE = "phrase_score"
    """:meth:`~OpenTranscriber.phrase_logprob`: how well the audio ends in a given phrase (the
    wake check)."""
    SENTENCE_SCORES = "sentence_scores"
    """:meth:`~OpenTranscriber.sentence_scores`: how likely each of a few given sentences is for
    the audio (rescoring, the contrast check)."""
    ENCODE = "encode"
    """:meth:`~OpenTranscriber.encode`, and ``transcribe(audio=...)`` decoding that encoding
    again without encoding the audio a second time."""
    CONTEXT = "context"
    """``transcribe(context=...)``: decode as if ``context`` had just been said (the second
    pass after the grammar path's words)."""


class CapabilityMissing(EdgepipeError):
    """A caller used a capability the transcriber does not declare."""

    default_code = "capability_missing"


class OpenTranscriber(ABC):
    """Open-vocabulary speech recognition of one utterance.

    A backend implements :meth:`transcribe` and declares in :attr:`capabilities` which of the
    optional methods it implements; the voice front end calls only those. An undeclared method
    raises :class:`CapabilityMissing`.
    """

    name: str = ""
    """The name it is registered under (logs and the turn's JSON)."""
    capabilities: frozenset[Capability] = frozenset()
    """What it offers beyond :meth:`transcribe`."""

    @abstractmethod
    def transcribe(
        self, samples: Samples, *, audio: EncodedAudio | None = None, context: str = ""
    ) -> OpenHypothesis:
        """The transcript of ``samples`` (or of ``audio``, their encoding from :meth:`encode`,
        with :attr:`Capability.ENCODE`). ``context``: text said just before, for this decode
        only (with :attr:`Capability.CONTEXT`; ignored otherwise)."""

    def encode(self, samples: Samples) -> EncodedAudio:
        """Encode ``samples`` once, for :meth:`transcribe` to decode as often as asked."""
        raise CapabilityMissing(f"transcriber {self.name!r} cannot reuse an encoding")

    def phrase_logprob(self, samples: Samples, phrase: str) -> float:
        """Mean log-probability per token of writing ``phrase`` for the end of ``samples``."""
        raise CapabilityMissing(f"transcriber {self.name!r} cannot score a phrase")

    def sentence_scores(self, samples: Samples, sentences: list[str]) -> list[float]:
        """Total log-probability of writing each of ``sentences`` for ``samples``."""
        raise CapabilityMissing(f"transcriber {self.name!r} cannot score sentences")


ReplySink = Callable[[npt.NDArray[np.float32], int], None]
"""Takes each piece of a reply's audio, and its sample rate, as soon as it is synthesized."""


@runtime_checkable
class Synthesizer(Protocol):
    """Text to audio: float32 mono arrays at :attr:`sample_rate`, in order, each a sentence or a
    piece of one (a sentence never shares an array with the next)."""

    name: str

    @property
    def sample_rate(self) -> int: ...

    @property
    def last_used(self) -> str:
        """The voice that spoke the last piece yielded (a fallback names the one that did)."""
        ...

    def synthesize(self, text: str) -> Iterator[npt.NDArray[np.float32]]:
        """Yield the audio in order, each piece as soon as it is ready."""
        ...


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def split_sentences(text: str) -> list[str]:
    """The sentences a :class:`Synthesizer` keeps apart: split on ``.``, ``!`` or ``?`` followed
    by whitespace; blank pieces are dropped."""
    return [part.strip() for part in _SENTENCE_END.split(text) if part.strip()]


# --------------------------------------------------------------------------- the registries


@dataclass(frozen=True, slots=True, kw_only=True)
class BackendContext:
    """What a backend factory may use to build its backend."""

    pack: Pack
    voice: VoiceSpec
    """The pack's voice settings (the factory reads its own stage's section)."""
    options: Mapping[str, Any] = field(default_factory=dict)
    """The stage's ``options`` (settings for a backend a package adds)."""
    resources: Resources
    """Shared models: ``resources.get(key, build)`` loads a model once per owner."""
    cache_dir: Path
    """Where a backend may keep files it derives (language models, split voices)."""


WakeFactory = Callable[[BackendContext], WakeDetector]
VadFactory = Callable[[BackendContext], VadScorer]
TurnFactory = Callable[[BackendContext], TurnDetector]
RecognizerFactory = Callable[[BackendContext], StreamingRecognizer]
TranscriberFactory = Callable[[BackendContext], OpenTranscriber]
SynthesizerFactory = Callable[[BackendContext], Synthesizer]

WAKE: Registry[WakeFactory] = Registry("edgepipe.wake", "wake")
VAD: Registry[VadFactory] = Registry("edgepipe.vad", "vad")
TURNS: Registry[TurnFactory] = Registry("edgepipe.turn", "turn detector")
RECOGNIZERS: Registry[RecognizerFactory] = Registry("edgepipe.recognizers", "recognizer")
TRANSCRIBERS: Registry[TranscriberFactory] = Registry("edgepipe.transcribers", "transcriber")
SYNTHESIZERS: Registry[SynthesizerFactory] = Registry("edgepipe.synthesizers", "synthesizer")
