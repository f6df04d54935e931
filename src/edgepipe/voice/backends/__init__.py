"""edgepipe's own voice backends in the registries, and the backends a pack's voice settings name.

Each backend lives in a module of its own, imported when it is built:

* wake ``microwakeword`` (:mod:`.microwakeword`), vad ``silero`` (:mod:`.silero`), turn
  detector ``smart_turn`` (:mod:`.smart_turn`),
* recognizer ``pocketsphinx`` (:mod:`.pocketsphinx`), transcribers ``whisper`` (:mod:`.whisper`)
  and ``moonshine`` (:mod:`.moonshine`),
* synthesizers ``piper`` (:mod:`.piper`) and ``espeak`` (:mod:`.espeak`); ``voice.tts.fallback``
  puts one behind another (:mod:`.fallback`: Piper with espeak-ng behind it, by default).

The heavy parts are loaded through the :class:`~edgepipe.core.resources.Resources` a voice
session is built with, so that sessions with other settings (and a test session's many) share
them: the Whisper model, the Piper voice, the pocketsphinx decoders (stateful: sessions that
share them must not stream at the same time; each stream starts from the primed state) and
Silero's ONNX session. The light parts (a wake detector's stream state, a VAD's, Whisper's prompt
and beam width) are built per session.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgepipe.core.registry import BackendError, Registry
from edgepipe.voice.contracts import (
    RECOGNIZERS,
    SYNTHESIZERS,
    TRANSCRIBERS,
    TURNS,
    VAD,
    WAKE,
    BackendContext,
    OpenTranscriber,
    StreamingRecognizer,
    Synthesizer,
    TurnDetector,
    VadScorer,
    WakeDetector,
)

if TYPE_CHECKING:
    from edgepipe.core.resources import Resources
    from edgepipe.pack.loader import Pack
    from edgepipe.pack.voice_schema import VoiceSpec

log = logging.getLogger(__name__)


def _microwakeword(context: BackendContext) -> WakeDetector:
    from edgepipe.voice.backends.microwakeword import MicroWakeWord

    wake = context.voice.wake
    return MicroWakeWord(wake.model, cutoff=wake.cutoff, refractory_s=wake.refractory_s)


def _silero(context: BackendContext) -> VadScorer:
    from edgepipe.voice.backends.silero import SileroScorer, silero_session

    return SileroScorer(context.resources.get(("voice", "silero"), silero_session))


def _smart_turn(context: BackendContext) -> TurnDetector:
    from edgepipe.voice.backends.smart_turn import SmartTurn, smart_turn_session

    return SmartTurn(context.resources.get(("voice", "smart_turn"), smart_turn_session))


def _pocketsphinx(context: BackendContext) -> StreamingRecognizer:
    from edgepipe.voice.backends.pocketsphinx import PocketsphinxGrammar

    pack, cache_dir = context.pack, context.cache_dir
    key = ("voice", "pocketsphinx", str(pack.root.resolve()), pack.content_hash, str(cache_dir))
    return context.resources.get(key, lambda: PocketsphinxGrammar(pack, cache_dir))


def _whisper(context: BackendContext) -> OpenTranscriber:
    from edgepipe.voice.backends.whisper import (
        WhisperTranscriber,
        load_whisper_model,
        pack_prompt,
        whisper_model_dir,
    )

    spec = context.voice.open
    prompt = pack_prompt(context.pack, spec.prompt)

    def load() -> Any:
        model = load_whisper_model(threads=spec.threads)
        # first-call costs (CTranslate2's kernels) are paid here, never in a turn
        warm = WhisperTranscriber(model=model, beam_size=spec.beam_size, prompt=prompt)
        warm.transcribe(np.zeros(8000, dtype=np.int16))
        return model

    model = context.resources.get(
        ("voice", "whisper", str(whisper_model_dir()), spec.threads), load
    )
    return WhisperTranscriber(
        threads=spec.threads, beam_size=spec.beam_size, prompt=prompt, model=model
    )


def _moonshine(context: BackendContext) -> OpenTranscriber:
    from edgepipe.voice.backends.moonshine import (
        MoonshineTranscriber,
        load_moonshine_model,
        moonshine_model_dir,
    )

    spec = context.voice.open
    models = context.cache_dir / "models"

    def load() -> Any:
        model = load_moonshine_model(threads=spec.threads, cache_dir=models)
        # first-call costs (onnxruntime's kernels) are paid here, never in a turn
        MoonshineTranscriber(model, beam_size=spec.beam_size).transcribe(
            np.zeros(8000, dtype=np.int16)
        )
        return model

    model = context.resources.get(
        ("voice", "moonshine", str(moonshine_model_dir()), str(models), spec.threads), load
    )
    return MoonshineTranscriber(model, beam_size=spec.beam_size)


def _piper(context: BackendContext) -> Synthesizer:
    from edgepipe.voice.backends.piper import PiperSynthesizer

    threads = context.voice.tts.threads

    def load() -> PiperSynthesizer:
        voice = PiperSynthesizer(threads=threads)
        voice.warm_up()
        return voice

    return context.resources.get(("voice", "piper", "default", threads), load)


def _espeak(context: BackendContext) -> Synthesizer:
    from edgepipe.voice.backends.espeak import EspeakSynthesizer

    return EspeakSynthesizer()


WAKE.add("microwakeword", _microwakeword)
VAD.add("silero", _silero)
TURNS.add("smart_turn", _smart_turn)
RECOGNIZERS.add("pocketsphinx", _pocketsphinx)
TRANSCRIBERS.add("whisper", _whisper)
TRANSCRIBERS.add("moonshine", _moonshine)
SYNTHESIZERS.add("piper", _piper)
SYNTHESIZERS.add("espeak", _espeak)

_REGISTRIES: dict[str, Registry[Any]] = {
    "wake": WAKE,
    "vad": VAD,
    "turn": TURNS,
    "recognizer": RECOGNIZERS,
    "transcriber": TRANSCRIBERS,
    "synthesizer": SYNTHESIZERS,
}


def registry_of(kind: str) -> Registry[Any]:
    """The registry of ``kind`` (``wake``, ``vad``, ``turn``, ``recognizer``, ``transcriber``,
    ``synthesizer``), with edgepipe's own backends in it."""
    return _REGISTRIES[kind]


@dataclass(frozen=True, slots=True, kw_only=True)
class VoiceBackends:
    """The backends of one voice session."""

    wake: WakeDetector | None
    """None: push-to-talk only."""
    vad: VadScorer
    turn: TurnDetector | None
    """None: no end-of-turn model (``voice.turn.backend: null``)."""
    grammar: StreamingRecognizer
    transcriber: OpenTranscriber
    tts: Synthesizer


def build_backends(
    pack: Pack,
    spec: VoiceSpec,
    resources: Resources,
    cache_dir: Path,
    *,
    wake: bool = True,
) -> VoiceBackends:
    """Every backend ``spec`` names, built by its registry's factory (``wake=False``: no wake
    detector). Raises :class:`~edgepipe.core.registry.BackendError` for a name no registry
    resolves, or the backend's own coded error when it cannot be built here."""
    base = BackendContext(pack=pack, voice=spec, resources=resources, cache_dir=cache_dir)

    def context(options: dict[str, Any]) -> BackendContext:
        return dataclasses.replace(base, options=options)

    tts = spec.tts
    voice = SYNTHESIZERS.get(tts.backend)(context(tts.options))
    if tts.fallback is not None and tts.fallback != tts.backend:
        from edgepipe.voice.backends.fallback import FallbackSynthesizer

        voice = FallbackSynthesizer(voice, SYNTHESIZERS.get(tts.fallback)(context({})))
    transcriber = TRANSCRIBERS.get(spec.open.backend)(context(spec.open.options))
    if not isinstance(transcriber, OpenTranscriber):
        # its capabilities are read, and its optional methods called, as the base class's
        raise BackendError(
            f"transcriber '{spec.open.backend}' gave a {type(transcriber).__name__}, not an "
            "edgepipe.voice.contracts.OpenTranscriber",
            code="transcriber_broken",
        )
    return VoiceBackends(
        wake=WAKE.get(spec.wake.backend)(context(spec.wake.options)) if wake else None,
        vad=VAD.get(spec.vad.backend)(context(spec.vad.options)),
        turn=(
            TURNS.get(spec.turn.backend)(context(spec.turn.options))
            if spec.turn.backend is not None
            else None
        ),
        grammar=RECOGNIZERS.get(spec.grammar.backend)(context(spec.grammar.options)),
        transcriber=transcriber,
        tts=voice,
    )


__all__ = [
    "RECOGNIZERS",
    "SYNTHESIZERS",
    "TRANSCRIBERS",
    "TURNS",
    "VAD",
    "WAKE",
    "VoiceBackends",
    "build_backends",
    "registry_of",
]
