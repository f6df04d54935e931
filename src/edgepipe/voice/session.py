"""A voice session: one room's :class:`~edgepipe.engine.session.Session`, spoken to.

:class:`VoiceSession` ties the voice front end's units to a text session:

* the :class:`~edgepipe.voice.listener.Listener` hears utterances in a stream of 10 ms frames
  (wake word and its check, VAD and endpointing, the grammar path);
* the :class:`~edgepipe.voice.arbitration.Arbitrator` chooses each utterance's transcript
  (grammar path or open path, or neither: "could you repeat that?");
* the session's ordinary text turn runs on it, given the template match the arbitration found
  (``Session.handle_text(..., matched=...)``);
* the :class:`~edgepipe.voice.speaking.ReplyVoice` speaks the reply in pieces, first sentence
  first, to ``reply_sink`` (a speaker) as each is ready;

and writes each turn down as a frozen :class:`~edgepipe.voice.record.VoiceTurn`.

``end_of_speech_to_first_audio`` is what the guest feels: audio time from the last voiced frame
to the moment the endpointer decided, plus any processing backlog the stream had built up,
plus wall time from that decision to the first synthesised sample of the reply.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from edgepipe.core.paths import cache_home
from edgepipe.core.resources import Resources
from edgepipe.core.types import InputSource, TurnResult
from edgepipe.engine.session import Session
from edgepipe.nlu.lexicon import shared_pronunciations
from edgepipe.pack.loader import Pack
from edgepipe.pack.voice_schema import OpenSpec, VoiceSpec
from edgepipe.voice.arbitration import REPEAT, Arbitrator, Decision
from edgepipe.voice.audio import SAMPLE_RATE, Audio, chunks, resample
from edgepipe.voice.backends import VoiceBackends, build_backends
from edgepipe.voice.contracts import (
    Capability,
    OpenTranscriber,
    ReplySink,
    StreamingRecognizer,
    Synthesizer,
    WakeDetector,
)
from edgepipe.voice.listener import Listener, Utterance
from edgepipe.voice.record import (
    AsrRecord,
    GrammarRecord,
    Latency,
    VoiceOutcome,
    VoiceTurn,
    end_of_speech_ms,
)
from edgepipe.voice.snap import PhoneticSnapper
from edgepipe.voice.speaking import ReplyVoice

log = logging.getLogger(__name__)

__all__ = ["REPEAT", "VoiceSession", "load_snapper"]

PRIMING_SENTENCE = "Turn on the lights in the bedroom, please."
"""Said in the reply voice once, it gives the grammar path the state every stream starts from."""


class VoiceSession:
    """The voice front end of one :class:`~edgepipe.engine.session.Session`.

    Build one with :meth:`build` (backends by the pack's ``voice:`` names, models shared through
    the engine's resources), or give it ready ``backends`` (tests). One stream at a time.
    """

    def __init__(
        self,
        session: Session,
        *,
        backends: VoiceBackends,
        spec: VoiceSpec | None = None,
        snapper: PhoneticSnapper | None = None,
    ) -> None:
        self.session = session
        self.spec = spec or session.engine.pack.spec.voice
        self.backends = backends
        self.snapper = snapper
        transcriber = backends.transcriber
        self.arbitrator = Arbitrator(session.engine.understanding, transcriber, self.spec, snapper)
        can_check = Capability.PHRASE_SCORE in transcriber.capabilities
        if self.spec.wake.verify and not can_check:
            log.info(
                "transcriber %r cannot score a phrase: wakes are not checked", transcriber.name
            )
        self.listener = Listener(
            self.spec,
            wake=backends.wake,
            vad=backends.vad,
            grammar=backends.grammar,
            is_complete=self.arbitrator.text.is_complete,
            wake_check=transcriber.phrase_logprob if can_check else None,
            turn=backends.turn,
        )
        self.voice = ReplyVoice(backends.tts)
        self._resources: Resources | None = None
        self._cache_dir: Path | None = None

    @classmethod
    def build(
        cls,
        session: Session,
        *,
        spec: VoiceSpec | None = None,
        resources: Resources | None = None,
        cache_dir: Path | None = None,
    ) -> VoiceSession:
        """The voice front end of ``session`` with the backends ``spec`` (default: the pack's
        ``voice:``) names. Models come from ``resources`` (default: the engine's), so voice
        sessions with other settings share them; ``cache_dir``: where derived files are kept
        (default: edgepipe's cache)."""
        engine = session.engine
        pack = engine.pack
        spec = spec or pack.spec.voice
        resources = resources if resources is not None else engine.resources
        cache_dir = cache_dir or cache_home()
        backends = build_backends(pack, spec, resources, cache_dir)
        voice = cls(
            session, backends=backends, spec=spec, snapper=load_snapper(pack, spec.open, resources)
        )
        voice._resources, voice._cache_dir = resources, cache_dir
        voice.prime()
        return voice

    def with_settings(self, **settings: Any) -> VoiceSession:
        """Another voice session of the same text session with some ``voice:`` settings
        changed, by dotted path (``**{"open.prompt": ""}``), sharing the loaded models. This one
        is left as it is."""
        return VoiceSession.build(
            self.session,
            spec=self.spec.with_settings(settings),
            resources=self._resources,
            cache_dir=self._cache_dir,
        )

    def prime(self) -> None:
        """Give the grammar path the state every stream starts from, from a sentence in the
        reply voice (once: a shared recogniser is primed already)."""
        grammar = self.backends.grammar
        if grammar.primed:
            return
        tts = self.backends.tts
        parts = list(tts.synthesize(PRIMING_SENTENCE))
        if parts:
            speech = resample(np.concatenate(parts), int(tts.sample_rate), SAMPLE_RATE)
            speech = speech / max(float(np.max(np.abs(speech))), 1e-6)  # whatever the voice's gain
            grammar.prime((speech * 20000).astype(np.int16).tobytes())

    # ------------------------------------------------------------------ the units' parts

    @property
    def wake(self) -> WakeDetector | None:
        return self.backends.wake

    @property
    def grammar(self) -> StreamingRecognizer:
        return self.backends.grammar

    @property
    def transcriber(self) -> OpenTranscriber:
        return self.backends.transcriber

    @property
    def tts(self) -> Synthesizer:
        return self.backends.tts

    @property
    def reply_sink(self) -> ReplySink | None:
        """Called with each piece of a reply's audio (and its rate) as soon as it is
        synthesized, e.g. :meth:`edgepipe.voice.playback.Speaker.play`."""
        return self.voice.sink

    @reply_sink.setter
    def reply_sink(self, sink: ReplySink | None) -> None:
        self.voice.sink = sink

    @property
    def wakes_dropped(self) -> list[tuple[float, float]]:
        """(stream time, score) of each wake the check dropped in the last stream."""
        return self.listener.wakes_dropped

    # ------------------------------------------------------------------ streaming

    def process(self, audio: Audio, *, require_wake: bool = True) -> list[VoiceTurn]:
        """Every turn in ``audio`` (a file or a recording), streamed 10 ms at a time."""
        return list(self.stream(chunks(audio), require_wake=require_wake))

    def stream(self, frames: Iterator[bytes], *, require_wake: bool = True) -> Iterator[VoiceTurn]:
        """Turns as they complete, from an iterator of 10 ms PCM frames (file or microphone)."""
        for utterance in self.listener.listen(frames, require_wake=require_wake):
            turn = self.turn(utterance)
            if require_wake and self.asks(turn):
                self.listener.expect_answer(reply_seconds(turn) + self.spec.endpoint.follow_up_s)
            yield turn

    def asks(self, turn: VoiceTurn) -> bool:
        """Whether ``turn`` ended on a question the guest answers without the wake word: the
        text turn waits for an answer (a missing detail, a confirmation) or the guest was asked
        to repeat (``voice.endpoint.follow_up_s``; 0: never)."""
        if self.spec.endpoint.follow_up_s <= 0:
            return False
        if turn.outcome is VoiceOutcome.CLARIFY:
            # once: a second "could you repeat that?" waits for the wake word again (what it
            # could not make out may be the room, not a guest)
            return not turn.follow_up
        return turn.outcome is VoiceOutcome.TURN and self.session.pending is not None

    def turn(self, heard: Utterance) -> VoiceTurn:
        """The turn for what the listener heard: transcript, text turn, reply."""
        if not heard.started:
            return VoiceTurn(
                wake=heard.wake,
                follow_up=heard.follow_up,
                wake_at_s=heard.wake_at_s,
                wake_score=heard.wake_score,
                outcome=VoiceOutcome.TIMEOUT if heard.wake else VoiceOutcome.NO_SPEECH,
                latency_ms=Latency(backlog=heard.backlog_ms, stages=heard.stages_ms),
            )
        assert heard.grammar is not None
        decision = self.arbitrator.decide(heard.grammar, heard.samples)
        stages = {**heard.stages_ms, **decision.stages_ms}
        result: TurnResult | None = None
        outcome, response = VoiceOutcome.CLARIFY, REPEAT
        if decision.transcript is not None:
            started = time.perf_counter()
            try:
                result = self.session.handle_text(
                    decision.transcript, source=InputSource.VOICE, matched=decision.matched
                )
            except Exception as exc:  # InputError for unusable text: ask again
                log.info("voice transcript refused: %s", exc)
            else:
                outcome, response = VoiceOutcome.TURN, result.reply.text
            stages["turn"] = (time.perf_counter() - started) * 1000
        return self._record(heard, decision, result, outcome, response, stages)

    def _record(
        self,
        heard: Utterance,
        decision: Decision,
        result: TurnResult | None,
        outcome: VoiceOutcome,
        response: str,
        stages: dict[str, float],
    ) -> VoiceTurn:
        spoken = self.voice.speak(response, heard.decided_at) if response else None
        first_audio = None
        if spoken is not None:
            stages.update(spoken.stages_ms)
            first_audio = spoken.first_audio_ms
        grammar = heard.grammar
        intent = result.intent if result is not None else None
        slots: Mapping[str, Any] = MappingProxyType(intent.slot_values() if intent else {})
        return VoiceTurn(
            wake=heard.wake,
            follow_up=heard.follow_up,
            wake_at_s=heard.wake_at_s,
            wake_score=heard.wake_score,
            outcome=outcome,
            transcript=decision.transcript or "",
            asr_path=decision.path,
            route=str(result.decision.route) if result is not None else None,
            reason=result.decision.reason if result is not None else None,
            intent=intent.name if intent is not None else None,
            slots=slots,
            response=response,
            handler_executed=bool(result is not None and result.handler_executed),
            tts_voice=spoken.voice if spoken is not None else None,
            asr=AsrRecord(
                grammar=None
                if grammar is None
                else GrammarRecord(text=grammar.text, ratio=grammar.ratio),
                open=decision.open,
            ),
            contrast=decision.contrast,
            endpoint=heard.endpoint,
            turn_scores=heard.turn_scores,
            speech_start_s=heard.speech_start_s,
            speech_end_s=heard.speech_end_s,
            endpoint_s=heard.endpoint_s,
            latency_ms=Latency(
                end_of_speech_to_first_audio=end_of_speech_ms(
                    heard.speech_end_s, heard.endpoint_s, heard.backlog_ms, first_audio
                ),
                first_audio_after_endpoint=first_audio,
                backlog=heard.backlog_ms,
                stages=MappingProxyType(stages),
            ),
            trace=result.trace.spans if result is not None else (),
            result=result,
            reply_audio=spoken.audio if spoken is not None else None,
            reply_rate=spoken.rate if spoken is not None else 0,
        )


def reply_seconds(turn: VoiceTurn) -> float:
    """How long the turn's reply takes to say (0 without one)."""
    audio = turn.reply_audio
    return len(audio) / turn.reply_rate if audio is not None and turn.reply_rate else 0.0


def load_snapper(pack: Pack, spec: OpenSpec, resources: Resources) -> PhoneticSnapper | None:
    """The pack's phonetic snapper (its templates as a graph of phonemes, ~0.4 s to build), when
    snapping or rescoring is on; shared through ``resources``."""
    if spec.snap_max_distance <= 0 and spec.rescore_max_distance <= 0:
        return None
    words = shared_pronunciations(resources)
    if words is None:
        from edgepipe.voice.backends.pocketsphinx import sphinx_model_dir

        sphinx_model_dir()  # raises the error that says what to install
        return None
    key = (
        "voice",
        "snapper",
        str(pack.root.resolve()),
        pack.content_hash,
        spec.snap_max_distance,
        spec.snap_margin,
    )
    return resources.get(
        key,
        lambda: PhoneticSnapper(
            pack, words, max_distance=spec.snap_max_distance, margin=spec.snap_margin
        ),
    )
