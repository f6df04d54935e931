"""``voice:`` in pack.yaml: one section per stage of ``edgepipe listen``, each naming its backend.

::

    voice:
      wake:     {backend: microwakeword, model: okay_nabu, cutoff: 0.2, verify: true, ...}
      vad:      {backend: silero, threshold: 0.5}
      endpoint: {trailing_silence_ms: 700, early_silence_ms: 200, level_gate_db: 9, ...}
      turn:     {backend: smart_turn, threshold: 0.5, pause_ms: 250}
      grammar:  {backend: pocketsphinx, min_ratio: 0.75, contrast_words: [[on, off], ...]}
      open:     {backend: whisper, prompt: auto, beam_size: 5, ...}
      tts:      {backend: piper, fallback: espeak, threads: 2}

A backend is a name in the registry of its kind (:mod:`edgepipe.voice.contracts`): edgepipe's
own, or one a package adds through the entry-point group of that kind (``edgepipe.wake``,
``edgepipe.vad``, ``edgepipe.turn``, ``edgepipe.recognizers``, ``edgepipe.transcribers``,
``edgepipe.synthesizers``). ``options`` holds the settings of a package's backend; edgepipe's
own backends take theirs from the section's named keys.

This module stands alone (its own base model) because :mod:`edgepipe.pack.schema` imports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class _Stage(_Model):
    """A stage whose work a named backend does."""

    kind: ClassVar[str] = ""
    """Which registry of :mod:`edgepipe.voice.contracts` the backend's name is looked up in."""

    backend: Name
    options: dict[str, Any] = Field(default_factory=dict)
    """Settings for a backend a package adds (edgepipe's own read the keys of the section)."""

    @field_validator("backend")
    @classmethod
    def _known(cls, name: str) -> str:
        return _known_backend(cls.kind, name)


def _known_backend(kind: str, name: str) -> str:
    """``name`` if the registry of ``kind`` resolves it (a built-in needs no entry-point scan)."""
    # imported here: the registries live with the voice front end, which imports this module
    from edgepipe.voice.backends import registry_of

    registry = registry_of(kind)
    if name not in registry:
        known = ", ".join(registry.names())
        raise ValueError(
            f"unknown {registry.kind} '{name}' (known: {known}; a package adds one through "
            f"the '{registry.group}' entry-point group)"
        )
    return name


class WakeSpec(_Stage):
    """The wake word, and the check of every wake."""

    kind: ClassVar[str] = "wake"
    backend: Name = "microwakeword"
    model: Literal["okay_nabu", "hey_jarvis", "hey_mycroft", "alexa"] = "okay_nabu"
    """A microWakeWord model bundled with pymicro-wakeword."""
    cutoff: float = Field(default=0.85, gt=0, lt=1)
    """Averaged wake-word probability above which the device wakes."""
    refractory_s: float = Field(default=2.0, ge=0)
    """After a wake, further detections are ignored for this long."""
    verify: bool = True
    """Check every wake a second time with the open transcriber before listening on: the audio
    up to ``verify_delay_ms`` after the detection must score ``verify_min_logprob`` as the
    wake phrase, or the wake is dropped ("OK, I'm up" wakes the okay_nabu model at 0.95).
    Needs a transcriber that scores a phrase (``phrase_logprob``); without one the check is
    skipped, and the log says so."""
    verify_min_logprob: float = Field(default=-1.3, le=0)
    """The transcriber's mean token log-probability of writing the wake phrase for that audio
    (:meth:`~edgepipe.voice.backends.whisper.WhisperTranscriber.phrase_logprob`)."""
    verify_delay_ms: int = Field(default=150, ge=0, le=1000)
    """How much audio after the detection the check hears: the model fires before the phrase
    has ended, and "OK, I'm..." only differs from "Okay Na..." in what follows."""


class VadSpec(_Stage):
    """Voice activity: a speech probability for every 10 ms frame."""

    kind: ClassVar[str] = "vad"
    backend: Name = "silero"
    threshold: float = Field(default=0.5, gt=0, lt=1)
    """Speech probability that counts as voiced."""


class EndpointSpec(_Model):
    """Where an utterance starts and ends (:mod:`edgepipe.voice.endpoint`)."""

    listen_timeout_s: float = Field(default=4.0, gt=0)
    """After a wake, give up when no speech starts within this long."""
    min_speech_ms: int = Field(default=200, ge=10)
    """Voiced audio shorter than this is not an utterance (a cough, a click)."""
    trailing_silence_ms: int = Field(default=700, ge=50)
    """Silence that ends an utterance."""
    early_silence_ms: int = Field(default=200, ge=10)
    """Silence that ends an utterance early when the grammar path already hears a whole command."""
    max_utterance_s: float = Field(default=10.0, gt=0)
    """The hard cut."""
    command_max_s: float = Field(default=2.0, ge=0)
    """Once the grammar path hears a whole command, the utterance ends at most this long after
    (whatever the VAD says: a television talking never lets it fall silent); 0: off."""
    follow_up_s: float = Field(default=5.0, ge=0, le=30)
    """After the assistant asks a question (a missing detail, a confirmation, "could you repeat
    that?"), listen this long for the answer without the wake word, once the reply has been
    said; 0: off (the guest says the wake word again)."""
    level_gate_db: float = Field(default=20.0, ge=0)
    """A frame counts as the guest's speech only while the mean power of the last 300 ms is
    at most this far below the wake phrase's loud frames, and ``room_margin_db`` above the
    room's own level before the wake (:mod:`edgepipe.voice.level`): a television or another
    voice farther away is speech to the VAD but not the guest's. 0: off (and with
    push-to-talk, which has no wake phrase to compare with)."""
    room_margin_db: float = Field(default=3.0, ge=0)
    """How far above the room's level (its television, its fan) the guest's speech must be."""

    @model_validator(mode="after")
    def _silences(self) -> EndpointSpec:
        if self.early_silence_ms > self.trailing_silence_ms:
            raise ValueError("early_silence_ms must not exceed trailing_silence_ms")
        return self


class TurnSpec(_Stage):
    """The end-of-turn model (:mod:`edgepipe.voice.backends.smart_turn`): asked once a pause
    is ``pause_ms`` long whether the guest has finished, so a finished request need not wait
    for the whole trailing silence, and a pause inside one does not end it early."""

    kind: ClassVar[str] = "turn"
    backend: Name | None = "smart_turn"  # type: ignore[assignment]
    """None: off (an utterance ends on silence, a whole command or a cut only)."""
    threshold: float = Field(default=0.7, gt=0, lt=1)
    """The model's probability of a finished turn that ends the utterance."""
    pause_ms: int = Field(default=250, ge=10)
    """Silence (after the level gate) after which the model is asked; once per pause."""
    min_speech_ms: int = Field(default=1000, ge=0)
    """...once the utterance has run this long: a shorter one that is no whole command is more
    often an opener ("Hey, | power off the tv": the model gave "Hey." 0.97) or the end of the
    wake phrase than a finished request."""

    @field_validator("backend")
    @classmethod
    def _known(cls, name: str | None) -> str | None:  # type: ignore[override]
        return None if name is None else _known_backend(cls.kind, name)


class GrammarSpec(_Stage):
    """The grammar path: a streaming recogniser held to the pack's own sentences."""

    kind: ClassVar[str] = "recognizer"
    backend: Name = "pocketsphinx"
    min_ratio: float = Field(default=0.75, gt=0)
    """Grammar path confidence: per-frame acoustic score against a free phone loop."""
    adapt_on_wake_s: float = Field(default=1.5, ge=0, le=5)
    """When the wake word fires, the grammar path decodes this much of the audio before it (the
    wake phrase) and discards the words, so its front end starts the command adapted to this
    speaker and room (0: off)."""
    contrast_words: list[list[str]] = Field(
        default_factory=lambda: [["on", "off"], ["up", "down"], ["open", "close"]]
    )
    """Words whose swap turns one command into its opposite. A grammar-path command with one of
    them is checked by the open transcriber against each swapped reading the templates accept,
    and the reading the audio supports best is used (espeak-ng's "all lights off" reached the
    grammar path as "all lights on"). ``[]``: no check. Needs a transcriber that scores
    sentences (``sentence_scores``)."""

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


class OpenSpec(_Stage):
    """The open path: an open-vocabulary transcriber, and how its transcript is weighed."""

    kind: ClassVar[str] = "transcriber"
    backend: Name = "whisper"
    threads: int = Field(default=2, ge=1)
    prompt: str = Field(default="auto", max_length=2000)
    """The transcriber's previous text (Whisper's ``initial_prompt``), which makes its words
    the likely ones: ``auto`` gives it the first example request of every intent ("Close the
    blinds. Turn off the TV. ..."), "" none; any other text is used as written."""
    beam_size: int = Field(default=5, ge=1, le=16)
    """Whisper's beam width; the beam's hypotheses are the open path's alternatives (1: greedy,
    no alternatives)."""
    min_logprob: float = Field(default=-1.0, le=0)
    """Open path confidence: the transcriber's mean token log-probability."""
    command_min_logprob: float = Field(default=-1.5, le=0)
    """The same for a transcript the pack's templates accept (the transcriber's own, a beam
    alternative or a snap): the templates are the stronger evidence there."""
    alternative_margin: float = Field(default=0.5, ge=0)
    """When the best transcript matches no template, a later beam hypothesis that does is used
    if its mean token log-probability is within this of the best one's (0: never)."""
    grammar_context: bool = True
    """When no hypothesis of the beam is a whole command, the transcriber decodes the utterance
    once more with the grammar path's words appended to its previous text, and that beam's
    hypotheses join the alternatives (espeak-ng at 10 dB: "Can you book a camp for free..."
    first, "...a cab for 3..." with the grammar path's "can you book a cab for three today tell
    the port" as context). False: one decode. Needs a transcriber that decodes with context."""
    snap_max_distance: float = Field(default=0.2, ge=0, lt=1)
    """When no hypothesis matches a template, the pack sentence the best one sounds like is
    used ("Team me off." -> "tv off"; voice/snap.py) if its phoneme edit cost is within this
    share of the most it could be (0: never)..."""
    snap_margin: int = Field(default=2, ge=1)
    """...if the nearest sentence of any other intent costs at least this much more (a phoneme
    heard as a similar one costs 1, any other edit 2)..."""
    rescore_max_distance: float = Field(default=0.4, ge=0, lt=1)
    """When no snap is near and unambiguous, the nearest sentences of the few intents nearest
    to the transcript within this distance are scored by the transcriber against the audio,
    beside its own transcript ("Let some date I do." -> "let some daylight in"; 0: never;
    needs a transcriber that scores sentences)..."""
    rescore_max_gap: float = Field(default=10.0, ge=0)
    """...and the likeliest is used if the transcriber finds it at most this much less likely
    than its own transcript (total log-probability)..."""
    rescore_margin: float = Field(default=4.0, ge=0)
    """...and at least this much likelier than the likeliest candidate that asks for something
    else (another intent or other slot values)."""


class TtsSpec(_Stage):
    """Speech synthesis: the voice, and the one that takes over when it fails."""

    kind: ClassVar[str] = "synthesizer"
    backend: Name = "piper"
    fallback: Name | None = "espeak"
    """Speaks the failing sentence and the rest of the reply when ``backend`` raises (None, or
    the backend itself: no fallback)."""
    threads: int = Field(default=2, ge=1)
    """Piper's ONNX threads: the reply is synthesised after recognition, when the cores are free
    (first sentence of a short reply: ~160 ms with one thread, ~100 ms with two, bench machine)."""

    @field_validator("fallback")
    @classmethod
    def _known_fallback(cls, name: str | None) -> str | None:
        return None if name is None else _known_backend(cls.kind, name)


class VoiceSpec(_Model):
    """Wake word, endpointing, speech recognition and speech synthesis (``edgepipe listen``)."""

    wake: WakeSpec = Field(default_factory=WakeSpec)
    vad: VadSpec = Field(default_factory=VadSpec)
    endpoint: EndpointSpec = Field(default_factory=EndpointSpec)
    turn: TurnSpec = Field(default_factory=TurnSpec)
    grammar: GrammarSpec = Field(default_factory=GrammarSpec)
    open: OpenSpec = Field(default_factory=OpenSpec)
    tts: TtsSpec = Field(default_factory=TtsSpec)

    def with_settings(self, settings: Mapping[str, Any]) -> VoiceSpec:
        """A validated copy with ``settings`` changed, keyed by dotted path
        (``{"open.prompt": "", "grammar.contrast_words": []}``), as ``bench_voice.py --set``
        and the tests change them."""
        data = self.model_dump()
        for dotted, value in settings.items():
            *sections, key = dotted.split(".")
            node = data
            for section in sections:
                child = node.get(section)
                if not isinstance(child, dict):
                    raise ValueError(f"voice: no section {dotted.rsplit('.', 1)[0]!r}")
                node = child
            if key not in node:
                raise ValueError(f"voice: no setting {dotted!r}")
            node[key] = value
        return VoiceSpec.model_validate(data)
