"""Voice turns: audio, wake word, endpointing, two-path speech recognition, a turn, speech out.

:class:`VoiceAssistant` streams audio 10 ms at a time, the way a microphone delivers it, through
the wake-word detector (each wake checked by Whisper a moment later: does the audio read as the
wake phrase?), then the VAD endpointer with the grammar path decoding alongside. When
the endpointer ends the utterance it decides the transcript (grammar path if it heard a whole
command confidently, else Whisper; neither confident -> "could you repeat that?"), runs the
ordinary text turn (:meth:`edgepipe.pipeline.Assistant.handle_text`), and synthesises the reply
in pieces, first sentence first, handing each to ``reply_sink`` (a speaker) as it is ready.

``end_of_speech_to_first_audio`` is what the guest feels: audio time from the last voiced
frame to the moment the endpointer decided, plus any processing backlog the stream had built
up, plus wall time from that decision to the first synthesised sample of the reply.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edgepipe.frames import InputSource, TurnResult
from edgepipe.pack.schema import VoiceSpec
from edgepipe.pipeline import Assistant
from edgepipe.router.classifier import OOS_LABEL, Prediction, clean_text
from edgepipe.router.slots import with_digits
from edgepipe.router.templates import TemplateResult
from edgepipe.telemetry.store import cache_home
from edgepipe.voice.asr import (
    EncodedAudio,
    GrammarHypothesis,
    GrammarRecognizer,
    OpenHypothesis,
    WhisperRecognizer,
    pack_prompt,
    sphinx_model_dir,
)
from edgepipe.voice.audio import FRAME_BYTES, FRAME_MS, SAMPLE_RATE, Audio, chunks, resample
from edgepipe.voice.endpoint import EndpointConfig, Endpointer, Event, SileroScorer
from edgepipe.voice.snap import PhoneticSnapper, Snap, load_pronunciations
from edgepipe.voice.tts import (
    EspeakSynthesizer,
    FallbackSynthesizer,
    PiperSynthesizer,
    Synthesizer,
)
from edgepipe.voice.wake import WakeWordDetector

log = logging.getLogger(__name__)

REPEAT = "Sorry, could you repeat that?"
_PRE_ROLL_MS = 300
_VERIFY_BEFORE_MS = 1450
"""The wake check hears this much audio up to the detection (the phrase takes ~0.8 s)."""
_MIN_OPEN_WORDS = 1
_GRAMMAR_FLOOR = 0.6
"""Below ``grammar_min_ratio`` but above this, a whole-command grammar hypothesis is still used
when Whisper's transcript matches no template."""
_RESCORE_CANDIDATES = 4
"""How many intents' nearest sentences the open path's rescoring scores at most."""


def _plain(text: str) -> str:
    """``text`` as the pack's sentences are written: lower case, no punctuation but inside
    words and numbers ("Team me off." -> "team me off"), so Whisper scores both alike; "" for
    text without a word."""
    cleaned = clean_text(text).lower()
    return cleaned if any(c.isalnum() for c in cleaned) else ""


@dataclass(slots=True)
class VoiceTurn:
    """One voice interaction: a wake (or push-to-talk) and what followed."""

    wake: bool
    wake_at_s: float | None = None
    outcome: str = "no_speech"
    """``turn`` (a text turn ran), ``clarify`` (asked to repeat), ``no_speech``, ``timeout``."""
    transcript: str = ""
    asr_path: str | None = None
    """``grammar`` or ``open``; None when nothing was recognised."""
    endpoint: str | None = None
    """What ended the utterance: ``end``, ``early_end``, ``max_length``, ``stream_end``."""
    speech_start_s: float | None = None
    speech_end_s: float | None = None
    """Last voiced frame, as the VAD saw it (seconds into the stream)."""
    endpoint_s: float | None = None
    grammar: GrammarHypothesis | None = None
    open: OpenHypothesis | None = None
    open_rank: int = 0
    """Which of Whisper's beam hypotheses the open path used (0: the best; ranks past the
    first beam's alternatives continue into :attr:`open_second`'s hypotheses, its best first)."""
    open_second: OpenHypothesis | None = None
    """Whisper's second decode, with the grammar path's words as context
    (``voice.open_grammar_context``), when it ran."""
    open_context: str | None = None
    """The grammar path's words as they were given to that second decode."""
    open_snap: Snap | None = None
    """The pack sentence Whisper's transcript was snapped to, when it was (see voice/snap.py)."""
    open_rescore: tuple[tuple[str, float], ...] | None = None
    """The open path's candidate sentences and Whisper's scores for them, its own transcript
    first (``voice.open_rescore_*``), when it scored any."""
    result: TurnResult | None = None
    response: str = ""
    tts_voice: str | None = None
    reply_audio: npt.NDArray[np.float32] | None = None
    reply_rate: int = 0
    wake_score: float | None = None
    """The wake check's score (``voice.wake_verify``), when it ran."""
    contrast: tuple[tuple[str, float], ...] | None = None
    """The contrast check's readings and Whisper's scores, the grammar path's own first
    (``voice.contrast_words``), when it ran."""
    stages_ms: dict[str, float] = field(default_factory=dict)
    backlog_ms: float = 0.0
    first_audio_ms: float | None = None
    """Wall time from the endpoint decision to the first reply sample."""

    @property
    def end_of_speech_to_first_audio_ms(self) -> float | None:
        if self.first_audio_ms is None or self.speech_end_s is None or self.endpoint_s is None:
            return None
        silence_ms = max(0.0, (self.endpoint_s - self.speech_end_s) * 1000)
        return silence_ms + self.backlog_ms + self.first_audio_ms

    def latency_from(self, true_speech_end_s: float) -> float | None:
        """The same figure measured from a known last voiced sample (test audio)."""
        if self.first_audio_ms is None or self.endpoint_s is None:
            return None
        silence_ms = max(0.0, (self.endpoint_s - true_speech_end_s) * 1000)
        return silence_ms + self.backlog_ms + self.first_audio_ms

    def as_dict(self) -> dict[str, Any]:
        result = self.result
        out: dict[str, Any] = {
            "wake": self.wake,
            "wake_at_s": _r(self.wake_at_s),
            "wake_score": _r(self.wake_score),
            "outcome": self.outcome,
            "transcript": self.transcript,
            "asr_path": self.asr_path,
            "route": result.decision.route.value if result else None,
            "reason": result.decision.reason if result else None,
            "intent": result.intent.name if result and result.intent else None,
            "slots": result.intent.slot_values() if result and result.intent else {},
            "response": self.response,
            "handler_executed": bool(result and result.handler_executed),
            "tts_voice": self.tts_voice,
            "asr": {
                "grammar": None
                if self.grammar is None
                else {"text": self.grammar.text, "ratio": round(self.grammar.ratio, 3)},
                "open": None
                if self.open is None
                else {
                    "text": self.open.text,
                    "avg_logprob": round(self.open.avg_logprob, 3),
                    "no_speech_prob": round(self.open.no_speech_prob, 3),
                    "window_s": self.open.window_s,
                    "alternatives": _alternatives_json(self.open),
                    "second_pass": None
                    if self.open_second is None
                    else {
                        "context": self.open_context,
                        "text": self.open_second.text,
                        "avg_logprob": round(self.open_second.avg_logprob, 3),
                        "alternatives": _alternatives_json(self.open_second),
                    },
                    "used_rank": self.open_rank,
                    "snapped": None
                    if self.open_snap is None
                    else {
                        "text": self.open_snap.text,
                        "intent": self.open_snap.intent,
                        "distance": self.open_snap.distance,
                        "margin": self.open_snap.margin,
                    },
                    "rescored": None
                    if self.open_rescore is None
                    else [
                        {"text": text, "score": round(score, 3)}
                        for text, score in self.open_rescore
                    ],
                },
            },
            "contrast": None
            if self.contrast is None
            else [{"text": text, "score": round(score, 3)} for text, score in self.contrast],
            "endpoint": self.endpoint,
            "speech_start_s": _r(self.speech_start_s),
            "speech_end_s": _r(self.speech_end_s),
            "endpoint_s": _r(self.endpoint_s),
            "latency_ms": {
                "end_of_speech_to_first_audio": _r(self.end_of_speech_to_first_audio_ms, 1),
                "first_audio_after_endpoint": _r(self.first_audio_ms, 1),
                "backlog": round(self.backlog_ms, 1),
                **{k: round(v, 1) for k, v in self.stages_ms.items()},
            },
            "trace": [span.as_dict() for span in result.trace.spans] if result else [],
        }
        return out


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _alternatives_json(hypothesis: OpenHypothesis) -> list[dict[str, Any]]:
    return [
        {"text": text, "avg_logprob": round(logprob, 3)}
        for text, logprob in hypothesis.alternatives
    ]


class VoiceAssistant:
    """The voice front end around one :class:`Assistant`."""

    def __init__(
        self,
        assistant: Assistant,
        *,
        grammar: GrammarRecognizer,
        whisper: WhisperRecognizer,
        tts: Synthesizer,
        wake: WakeWordDetector | None,
        spec: VoiceSpec | None = None,
        snapper: PhoneticSnapper | None = None,
    ) -> None:
        self.assistant = assistant
        self.snapper = snapper
        self.spec = spec or assistant.pack.spec.voice
        self.grammar = grammar
        self.whisper = whisper
        self.tts = tts
        self.wake = wake
        self.vad = SileroScorer()
        self._complete_cache: dict[str, bool] = {}
        self._turn_matches: dict[str, TemplateResult] = {}
        self.wakes_dropped: list[tuple[float, float]] = []
        """(seconds into the stream, score) of each wake the check dropped, this stream."""
        self.reply_sink: Callable[[npt.NDArray[np.float32], int], None] | None = None
        """Called with each piece of a reply's audio (and its rate) as soon as it is
        synthesized, e.g. :meth:`edgepipe.voice.playback.Speaker.play`."""

    @classmethod
    def from_assistant(
        cls, assistant: Assistant, *, cache_dir: Path | None = None
    ) -> VoiceAssistant:
        spec = assistant.pack.spec.voice
        grammar = GrammarRecognizer(assistant.pack, cache_dir or cache_home())
        whisper = WhisperRecognizer(
            threads=spec.whisper_threads,
            beam_size=spec.open_beam_size,
            prompt=pack_prompt(assistant.pack, spec.open_prompt),
        )
        tts = make_synthesizer(spec)
        wake = WakeWordDetector(
            spec.wake_word, cutoff=spec.wake_cutoff, refractory_s=spec.wake_refractory_s
        )
        snapper = None
        if spec.open_snap_max_distance > 0 or spec.open_rescore_max_distance > 0:
            snapper = PhoneticSnapper(
                assistant.pack,
                load_pronunciations(sphinx_model_dir() / "cmudict-en-us.dict"),
                max_distance=spec.open_snap_max_distance,
                margin=spec.open_snap_margin,
            )
        voice = cls(
            assistant,
            grammar=grammar,
            whisper=whisper,
            tts=tts,
            wake=wake,
            spec=spec,
            snapper=snapper,
        )
        voice.warm_up()
        return voice

    def warm_up(self) -> None:
        """Pay first-call costs (ONNX sessions, CTranslate2 kernels) before the first guest, and
        give the grammar path its cepstral-mean prior from a sentence in the reply voice."""
        silence = np.zeros(SAMPLE_RATE // 2, dtype=np.int16)
        self.whisper.transcribe(silence)
        parts = list(self.tts.synthesize("Turn on the lights in the bedroom, please."))
        if parts:
            speech = resample(np.concatenate(parts), int(self.tts.sample_rate), SAMPLE_RATE)
            speech = speech / max(float(np.max(np.abs(speech))), 1e-6)  # whatever the voice's gain
            self.grammar.prime((speech * 20000).astype(np.int16).tobytes())

    # ------------------------------------------------------------------ streaming

    def process(self, audio: Audio, *, require_wake: bool = True) -> list[VoiceTurn]:
        """Every turn in ``audio`` (a file or a recording), streamed 10 ms at a time."""
        return list(self.stream(chunks(audio), require_wake=require_wake))

    def stream(self, frames: Iterator[bytes], *, require_wake: bool = True) -> Iterator[VoiceTurn]:
        """Turns as they complete, from an iterator of 10 ms PCM frames (file or microphone)."""
        if self.wake is not None:
            self.wake.reset()
        self.vad.reset()
        self.grammar.restore_prior()
        self.wakes_dropped = []
        spec = self.spec
        pre_roll = _PRE_ROLL_MS // FRAME_MS
        heard: deque[bytes] = deque(
            maxlen=max(1, int(max(spec.adapt_on_wake_s * 1000, _VERIFY_BEFORE_MS)) // FRAME_MS)
        )
        adapt_frames = int(spec.adapt_on_wake_s * 1000) // FRAME_MS
        verify_frames = spec.wake_verify_delay_ms // FRAME_MS
        checking: list[bytes] | None = None  # the wake phrase and what followed, to check
        check_at = 0  # ...once the stream has reached this frame
        buffer: list[bytes] = []
        first = 0  # stream index of buffer[0]
        index = 0
        yielded = 0
        listening: _Listening | None = None if require_wake else self._listen(0, None)
        for frame in frames:
            if len(frame) < FRAME_BYTES:
                frame = frame + b"\0" * (FRAME_BYTES - len(frame))
            t0 = time.perf_counter()
            buffer.append(frame)
            probability = self.vad.score(frame)
            if listening is None:
                event = self.wake.process(frame) if self.wake is not None else None
                index += 1
                heard.append(frame)
                if event is not None:
                    listening = self._listen(index, event.at_s)
                    if adapt_frames > 0:
                        self._adapt(listening, b"".join(list(heard)[-adapt_frames:]))
                    if spec.wake_verify:
                        checking = list(heard)[-(_VERIFY_BEFORE_MS // FRAME_MS) :]
                        check_at = index + verify_frames
                    heard.clear()
                if len(buffer) > pre_roll:
                    del buffer[: len(buffer) - pre_roll]
                first = index - len(buffer)
                continue
            listening.feed(frame, probability, index * FRAME_MS / 1000, time.perf_counter() - t0)
            index += 1
            if checking is not None:
                checking.append(frame)
                if self.wake is not None:
                    self.wake.process(frame)  # its stream stays whole if the wake is dropped
                if index >= check_at:
                    kept = self._verify(listening, b"".join(checking))
                    checking = None
                    if not kept:
                        listening = None
                        del buffer[: max(0, len(buffer) - pre_roll)]
                        first = index - len(buffer)
                        continue
            if listening.done:
                turn = self._finish(listening, buffer, first)
                if require_wake or turn.outcome != "no_speech":
                    yielded += 1
                    yield turn
                del buffer[: max(0, len(buffer) - pre_roll)]
                first = index - len(buffer)
                listening = None if require_wake else self._listen(index, None)
        if (
            checking is not None
            and listening is not None
            and not self._verify(listening, b"".join(checking))
        ):
            listening = None  # the stream ended before the check had heard all it waits for
        if listening is not None and listening.started:
            listening.close("stream_end", index * FRAME_MS / 1000)
            yielded += 1
            yield self._finish(listening, buffer, first)
        elif listening is not None and listening.wake_at_s is not None:
            yielded += 1
            yield VoiceTurn(wake=True, wake_at_s=listening.wake_at_s, outcome="timeout")
        if not require_wake and yielded == 0:
            yield VoiceTurn(wake=False, outcome="no_speech")

    def _verify(self, listening: _Listening, pcm: bytes) -> bool:
        """The wake check (``voice.wake_verify``): whether the audio around the detection reads
        as the wake phrase to Whisper. Its time is backlog, like ``_adapt``'s."""
        started = time.perf_counter()
        assert self.wake is not None
        score = self.whisper.phrase_logprob(
            np.frombuffer(pcm, dtype=np.int16), self.wake.wake_phrase
        )
        spent_ms = (time.perf_counter() - started) * 1000
        turn = listening.turn
        turn.wake_score = score
        turn.stages_ms["wake_verify"] = spent_ms
        turn.backlog_ms += spent_ms
        if score >= self.spec.wake_verify_min_logprob:
            return True
        # the wake phrase itself may follow at once ("OK, I'm up. Okay Nabu, ...")
        self.wake.release()
        at_s = listening.wake_at_s if listening.wake_at_s is not None else 0.0
        self.wakes_dropped.append((at_s, score))
        log.info("wake at %.2f s dropped: the check scored it %.2f", at_s, score)
        return False

    def _adapt(self, listening: _Listening, pcm: bytes) -> None:
        """Adapt the grammar path's front end to the wake phrase just heard. The time it takes
        is a backlog the listening that follows has to work off (counted in the latency)."""
        started = time.perf_counter()
        self.grammar.adapt(pcm)
        spent_ms = (time.perf_counter() - started) * 1000
        listening.turn.stages_ms["wake_adapt"] = spent_ms
        listening.turn.backlog_ms += spent_ms

    def _listen(self, start_frame: int, wake_at_s: float | None) -> _Listening:
        spec = self.spec
        config = EndpointConfig(
            threshold=spec.vad_threshold,
            min_speech_ms=spec.min_speech_ms,
            trailing_silence_ms=spec.trailing_silence_ms,
            early_silence_ms=spec.early_silence_ms,
            max_utterance_s=spec.max_utterance_s,
            timeout_s=spec.listen_timeout_s,
        )
        return _Listening(self, Endpointer(config), start_frame, wake_at_s)

    def is_complete(self, text: str) -> bool:
        """Whether ``text`` is a whole command the pack's templates accept as it is."""
        text = text.strip()
        if not text:
            return False
        cached = self._complete_cache.get(text)
        if cached is None:
            matched = self.assistant.matcher.match(text, self.assistant.now())
            cached = matched.match is not None and matched.how == "exact"
            if len(self._complete_cache) > 2048:
                self._complete_cache.clear()
            self._complete_cache[text] = cached
        return cached

    def _matches(self, text: str) -> bool:
        """Whether any template matches ``text`` (exact or not)."""
        return self._match(text).match is not None

    def _match(self, text: str) -> TemplateResult:
        """The template matcher's result for ``text``, kept for the turn being decided (the open
        path asks about one sentence several times: does it match, whole or in part, may it be
        used, what does it ask)."""
        if text not in self._turn_matches:
            self._turn_matches[text] = self.assistant.matcher.match(text, self.assistant.now())
        return self._turn_matches[text]

    def _pick_open(
        self,
        opened: OpenHypothesis,
        samples: npt.NDArray[np.int16] | None = None,
        turn: VoiceTurn | None = None,
        grammar: str | None = None,
        *,
        heard: str | None = None,
        audio: EncodedAudio | None = None,
    ) -> tuple[str, int, Snap | None]:
        """What the open path goes on with: ``(text, rank, snap)``. ``grammar``: the grammar
        path's whole command, when it heard one it was not sure enough of to skip Whisper;
        ``heard``: whatever the grammar path heard; ``audio``: Whisper's encoder output for
        ``samples``, when at hand.

        The hypotheses considered are Whisper's best and the beam alternatives whose mean token
        log-probability is within ``open_alternative_margin`` of it, in beam order:

        1. The first a template accepts as a whole sentence; failing that, the first a template
           accepts in part (one clause of it, or after spelling correction): the pack's
           commands break Whisper tiny's near-ties ("can you end up some sleepers?" first,
           "can you send up some slippers?" second; "Can so do not disturb." matched in part,
           "Cancel do not disturb." whole). ``rank`` > 0 is an alternative. When none is a
           whole command and the grammar path heard words (``heard``), Whisper decodes
           ``samples`` once more with those words as context (:meth:`_second_pass`); its
           hypotheses within the margin join the list, after the first beam's, here and in
           the steps below.
        2. Otherwise the pack sentence the best transcript sounds like (``snap``; "Team me
           off." -> "tv off"), if one is near and unambiguous.
        3. Otherwise, with the utterance's ``samples``, the nearest sentences of the few intents
           nearest in sound to each hypothesis are scored by Whisper beside its own transcript,
           and the likeliest is taken if Whisper finds it nearly as likely as what it wrote
           (``_rescore``). The grammar path's command competes with them.
        4. Otherwise an alternative the learned router reads confidently as the intent it only
           guesses for the best transcript ("I don't want to end it when I'm parking." below
           the threshold as do-not-disturb; "...I don't want to turn the one parking." above).

        A snap of either kind is used only if the learned router reads the transcript as that
        sentence's intent or as nothing at all (an open request the router reads as something
        else is left as heard), and the intent is not a high-impact one."""
        best = (opened.text, 0, None)
        self._turn_matches.clear()
        if not opened.text:
            return best
        spec = self.spec
        ranked = [(0, opened.text)]
        floor = opened.avg_logprob - spec.open_alternative_margin
        if spec.open_alternative_margin > 0:
            ranked += [
                (rank, text)
                for rank, (text, logprob) in enumerate(opened.alternatives, 1)
                if text and logprob >= floor
            ]
        hypotheses = [text for _, text in ranked]
        whole = self._first_whole(hypotheses)
        if whole is not None:
            return hypotheses[whole], ranked[whole][0], None
        if heard and samples is not None and spec.open_grammar_context:
            second = self._second_pass(samples, heard, audio, turn)
            seen = {opened.text, *(text for text, _ in opened.alternatives)}
            rank = len(opened.alternatives)
            for text, logprob in ((second.text, second.avg_logprob), *second.alternatives):
                if not text or text in seen:
                    continue
                seen.add(text)
                rank += 1
                if logprob >= floor:
                    ranked.append((rank, text))
            hypotheses = [text for _, text in ranked]
            whole = self._first_whole(hypotheses)
            if whole is not None:
                return hypotheses[whole], ranked[whole][0], None
        partial: int | None = None
        for k, text in enumerate(hypotheses):
            if self._match(text).match is not None:
                partial = k
                break
        if partial is not None:
            return hypotheses[partial], ranked[partial][0], None
        router = self.assistant.router
        reading = router.classify(opened.text) if router is not None else None
        if self.snapper is not None:
            snap = self.snapper.snap(opened.text) if spec.open_snap_max_distance > 0 else None
            rescored = False
            if snap is None and samples is not None and spec.open_rescore_max_distance > 0:
                snap, rescored = self._rescore(hypotheses, samples, turn, grammar, reading), True
            if snap is not None and self._may_snap(
                opened.text, snap, rescored=rescored, prediction=reading
            ):
                return snap.text, 0, snap
        agreeing = self._agreeing_alternative(hypotheses, reading)
        if agreeing is not None:
            return hypotheses[agreeing], ranked[agreeing][0], None
        return best

    def _first_whole(self, hypotheses: list[str]) -> int | None:
        """The index of the first of ``hypotheses`` a template accepts as a whole sentence."""
        for k, text in enumerate(hypotheses):
            found = self._match(text)
            if found.match is not None and found.how == "exact":
                return k
        return None

    def _second_pass(
        self,
        samples: npt.NDArray[np.int16],
        heard: str,
        audio: EncodedAudio | None,
        turn: VoiceTurn | None,
    ) -> OpenHypothesis:
        """Whisper's beam over ``samples`` again, with the grammar path's words ``heard``
        appended to its previous text, written as Whisper writes ("can you book a cab for
        three today tell the port" -> "Can you book a cab for 3 today tell the port."). The
        grammar path is often right in the words Whisper tiny gets wrong in noise ("cab for
        three" / "camp for free"), and Whisper does not copy the words the audio does not
        support. The second beam only adds alternatives: the first beam's are all kept."""
        started = time.perf_counter()
        words = re.sub(r"\bi\b", "I", with_digits(" ".join(heard.split())))
        context = words[:1].upper() + words[1:] + "."
        second = self.whisper.transcribe(samples, audio=audio, context=context)
        if turn is not None:
            turn.open_second, turn.open_context = second, context
            turn.stages_ms["open_second_pass"] = (time.perf_counter() - started) * 1000
        return second

    def _agreeing_alternative(
        self, hypotheses: list[str], reading: Prediction | None
    ) -> int | None:
        """The index of the first alternative the router reads above its threshold as the intent
        it reads the best hypothesis as below it (``reading``). Not when the best hypothesis is
        in the pack's out-of-scope class: an alternative of a question is not a command."""
        router = self.assistant.router
        if router is None or reading is None or len(hypotheses) < 2:
            return None
        if not reading.abstained or reading.best == OOS_LABEL:
            return None
        for k, text in enumerate(hypotheses[1:], 1):
            other = router.classify(text)
            if not other.abstained and other.best == reading.best:
                log.info(
                    "open path: %r (%s %.2f) read as %r (%.2f)",
                    hypotheses[0],
                    reading.best,
                    reading.confidence,
                    text,
                    other.confidence,
                )
                return k
        return None

    def _may_snap(
        self,
        heard: str,
        snap: Snap,
        *,
        rescored: bool = False,
        prediction: Prediction | None = None,
    ) -> bool:
        """Whether ``heard`` may be replaced by the pack sentence ``snap``: a guess never books
        or bills (high-impact intents are left to the router, which asks before acting on
        anything but the guest's own words), and an open request the router reads as another
        intent is left as heard. A rescored sentence, the weaker evidence, is also refused when
        the router puts ``heard`` in the pack's out-of-scope class, unless its best in-scope
        guess is still the sentence's intent ("What time is it in Tokyo?" is not "what time
        is a dinner open"). ``prediction``: the router's reading of ``heard``, if at hand."""
        if self.assistant.pack.intents[snap.intent].spec.impact == "high":
            return False
        if not self._matches(snap.text):
            return False
        router = self.assistant.router
        if router is None:
            return True
        prediction = prediction or router.classify(heard)
        if rescored and prediction.best == OOS_LABEL and prediction.top != snap.intent:
            return False
        return prediction.abstained or prediction.best == snap.intent

    def _rescore(
        self,
        hypotheses: list[str],
        samples: npt.NDArray[np.int16],
        turn: VoiceTurn | None,
        grammar: str | None = None,
        reading: Prediction | None = None,
    ) -> Snap | None:
        """The candidate sentence Whisper finds likeliest for ``samples``, if it is at most
        ``open_rescore_max_gap`` less likely than Whisper's own transcript ``hypotheses[0]`` and
        at least ``open_rescore_margin`` likelier than the likeliest candidate that asks for
        something else ("Let some date I do." -> "let some daylight in"). Candidates: for each
        hypothesis (the best and the beam's close alternatives), the nearest sentence of each
        of the ``_RESCORE_CANDIDATES`` intents nearest to it in sound, within
        ``open_rescore_max_distance``, that the templates accept; and ``grammar``, the
        grammar path's whole command, with its numbers in digits as Whisper writes them (a
        candidate found in Whisper's words does not replace the grammar path's command unless
        Whisper prefers it by the margin: "phone us at 23 please" for "thermostat 23 please").
        ``reading``: the router's reading of Whisper's best words, if at hand."""
        assert self.snapper is not None
        spec = self.spec
        snapper = self.snapper
        heard = hypotheses[0]
        router = self.assistant.router
        if reading is None and router is not None:
            reading = router.classify(heard)
        if reading is not None and reading.best == OOS_LABEL:
            # only the router's best in-scope guess could be used (``_may_snap``): look for it
            # near Whisper's best words alone, which spares ~30 ms of alignment per alternative
            # on the questions the pack leaves to the cloud
            hypotheses = hypotheses[:1]
        candidates: dict[str, Snap] = {}
        # hypotheses that differ only in case and punctuation sound the same: align one of them
        distinct = {_plain(text): text for text in reversed(hypotheses)}
        for text in sorted(distinct.values(), key=hypotheses.index):
            for snap in snapper.nearest(text, _RESCORE_CANDIDATES, spec.open_rescore_max_distance):
                sentence = snapper.said_around(snap.text, text)
                if sentence not in candidates and self._matches(snap.text):
                    candidates[sentence] = dataclasses.replace(snap, text=sentence)
        own = _plain(heard)
        if not candidates or not own:
            return None
        if grammar:
            said = with_digits(grammar)
            asks = self._asks(said)
            if said not in candidates and asks is not None:
                candidates[said] = Snap(said, asks[0], 0.0, 0)
        found = list(candidates.values())
        # whichever candidate won, none could be used: spare Whisper the work
        if not any(self._may_snap(heard, c, rescored=True, prediction=reading) for c in found):
            return None
        started = time.perf_counter()
        scores = self.whisper.sentence_scores(samples, [own, *(c.text for c in found)])
        if turn is not None:
            turn.stages_ms["open_rescore"] = (time.perf_counter() - started) * 1000
            turn.open_rescore = tuple(zip([own, *(c.text for c in found)], scores, strict=True))
        order = sorted(range(len(found)), key=lambda i: -scores[i + 1])
        top = scores[order[0] + 1]
        asks = self._asks(found[order[0]].text)
        # two wordings of one command do not compete ("crank a heating up", "bring the
        # heating up"): the margin is to the likeliest candidate that asks for something else
        runner_up = next(
            (scores[i + 1] for i in order[1:] if self._asks(found[i].text) != asks), -math.inf
        )
        if (
            scores[0] - top > spec.open_rescore_max_gap
            or top - runner_up < spec.open_rescore_margin
        ):
            return None
        log.info(
            "open path: %r (%.2f) rescored as %r (%.2f)",
            heard,
            scores[0],
            found[order[0]].text,
            top,
        )
        return found[order[0]]

    def _asks(self, text: str) -> tuple[str, tuple[tuple[str, str], ...]] | None:
        """What the template match of ``text`` asks for: its intent and slot values."""
        match = self._match(text).match
        if match is None:
            return None
        values = match.slot_values()
        return match.name, tuple(sorted((k, str(v)) for k, v in values.items()))

    # ------------------------------------------------------------------ a finished utterance

    def _finish(self, listening: _Listening, buffer: list[bytes], first: int) -> VoiceTurn:
        turn = listening.turn
        decided = time.perf_counter()
        stages = turn.stages_ms
        if not listening.started:
            turn.outcome = "timeout" if turn.wake else "no_speech"
            return turn
        hyp = self.grammar.finish()
        turn.grammar = hyp
        stages["grammar_finish"] = hyp.finish_ms
        spec = self.spec
        transcript: str | None = None
        if hyp.text and hyp.ratio >= spec.grammar_min_ratio and self.is_complete(hyp.text):
            transcript, turn.asr_path = hyp.text, "grammar"
        else:
            samples = listening.utterance(buffer, first)
            started = time.perf_counter()
            audio = self.whisper.encode(samples)
            opened = self.whisper.transcribe(samples, audio=audio)
            turn.open = opened
            stages["open_asr"] = (time.perf_counter() - started) * 1000
            heard_command = hyp.text and hyp.ratio >= _GRAMMAR_FLOOR and self.is_complete(hyp.text)
            started = time.perf_counter()
            text, turn.open_rank, turn.open_snap = self._pick_open(
                opened,
                samples,
                turn,
                hyp.text if heard_command else None,
                heard=hyp.text,
                audio=audio,
            )
            stages["open_pick"] = (time.perf_counter() - started) * 1000
            words = [w for w in text.split() if any(c.isalnum() for c in w)]
            # how clearly Whisper heard the audio at all: its best hypothesis's score; words
            # the pack's templates accept need less of it than free text
            command = self._matches(text)
            floor = spec.open_command_min_logprob if command else spec.open_min_logprob
            confident = (
                len(words) >= _MIN_OPEN_WORDS
                and opened.avg_logprob >= floor
                and opened.no_speech_prob < 0.6
            )
            if confident and (not heard_command or command):
                transcript, turn.asr_path = text, "open"
            elif heard_command:
                # Whisper's words match no template ("two bathrooms please") but the grammar
                # path heard a whole command, just not confidently enough to skip Whisper
                transcript, turn.asr_path = hyp.text, "grammar"
        if transcript is not None and turn.asr_path == "grammar":
            transcript = self._contrast(turn, transcript, listening, buffer, first)
        if transcript is None:
            turn.outcome = "clarify"
            turn.response = REPEAT
        else:
            turn.transcript = transcript
            started = time.perf_counter()
            try:
                turn.result = self.assistant.handle_text(transcript, source=InputSource.VOICE)
            except Exception as exc:  # InputError for unusable text: ask again
                log.info("voice transcript refused: %s", exc)
                turn.outcome = "clarify"
                turn.response = REPEAT
            else:
                turn.outcome = "turn"
                turn.response = turn.result.reply.text
            stages["turn"] = (time.perf_counter() - started) * 1000
        self._speak(turn, decided)
        return turn

    def contrast_readings(self, text: str) -> list[str]:
        """``text`` with one of its ``voice.contrast_words`` swapped for another of its group,
        each reading the pack's templates accept as a whole command ("all lights on" ->
        ["all lights off"])."""
        groups = self.spec.contrast_words
        words = text.split()
        readings: list[str] = []
        for i, word in enumerate(words):
            for group in groups:
                if word.lower() not in group:
                    continue
                for other in group:
                    if other == word.lower():
                        continue
                    reading = " ".join([*words[:i], other, *words[i + 1 :]])
                    if reading not in readings and self.is_complete(reading):
                        readings.append(reading)
        return readings

    def _contrast(
        self, turn: VoiceTurn, text: str, listening: _Listening, buffer: list[bytes], first: int
    ) -> str:
        """The contrast check (``voice.contrast_words``): of the grammar path's command and its
        swapped readings, the one Whisper finds likeliest for the utterance."""
        readings = self.contrast_readings(text)
        if not readings:
            return text
        started = time.perf_counter()
        candidates = [text, *readings]
        scores = self.whisper.sentence_scores(listening.utterance(buffer, first), candidates)
        turn.stages_ms["contrast"] = (time.perf_counter() - started) * 1000
        turn.contrast = tuple(zip(candidates, scores, strict=True))
        best = max(range(len(candidates)), key=scores.__getitem__)
        if best:
            log.info(
                "contrast check: %r (%.2f) read as %r (%.2f)",
                text,
                scores[0],
                candidates[best],
                scores[best],
            )
        return candidates[best]

    def _speak(self, turn: VoiceTurn, decided: float) -> None:
        if not turn.response:
            return
        started = time.perf_counter()
        parts: list[npt.NDArray[np.float32]] = []
        rate = int(self.tts.sample_rate)
        for piece in self.tts.synthesize(turn.response):
            if not parts:
                now = time.perf_counter()
                turn.first_audio_ms = (now - decided) * 1000
                turn.stages_ms["tts_first"] = (now - started) * 1000
            parts.append(piece)
            if self.reply_sink is not None:
                self.reply_sink(piece, rate)
        turn.stages_ms["tts_total"] = (time.perf_counter() - started) * 1000
        turn.tts_voice = str(getattr(self.tts, "last_used", getattr(self.tts, "name", "")))
        turn.reply_rate = rate
        turn.reply_audio = np.concatenate(parts) if parts else None


class _Listening:
    """State of one utterance being heard."""

    def __init__(
        self,
        voice: VoiceAssistant,
        endpointer: Endpointer,
        start_frame: int,
        wake_at_s: float | None,
    ) -> None:
        self.voice = voice
        self.endpointer = endpointer
        self.start_frame = start_frame
        self.wake_at_s = wake_at_s
        self.turn = VoiceTurn(wake=wake_at_s is not None, wake_at_s=wake_at_s)
        self.started = False
        self.done = False
        config = endpointer.config
        # enough audio to replay the speech that started the utterance, and the pre-roll
        self._recent: deque[bytes] = deque(
            maxlen=(config.min_speech_ms + _PRE_ROLL_MS) // FRAME_MS + 1
        )

    def feed(self, frame: bytes, probability: float, seconds: float, spent_s: float) -> None:
        started = time.perf_counter()
        voice = self.voice
        if self.started:
            voice.grammar.feed(frame)
        else:
            self._recent.append(frame)
        endpointer = self.endpointer
        event = endpointer.feed(
            probability, complete=lambda: voice.is_complete(voice.grammar.partial())
        )
        spent_s += time.perf_counter() - started
        # processing slower than the audio builds a backlog the guest will wait through
        self.turn.backlog_ms = max(0.0, self.turn.backlog_ms + spent_s * 1000 - FRAME_MS)
        if event is Event.SPEECH_START:
            # the grammar path hears the utterance from a little before its first voiced frame
            # (not the wake word's tail)
            self.started = True
            first = endpointer.start_frame or 0
            keep = endpointer.frames - first + _PRE_ROLL_MS // FRAME_MS
            voice.grammar.start()
            for earlier in list(self._recent)[-keep:]:
                voice.grammar.feed(earlier)
            self._recent.clear()
            self.turn.speech_start_s = (self.start_frame + first) * FRAME_MS / 1000
        elif event in (Event.END, Event.EARLY_END, Event.MAX_LENGTH):
            self.close(event.value, seconds + FRAME_MS / 1000)
        elif event is Event.TIMEOUT:
            self.done = True
            self.turn.outcome = "timeout"

    def close(self, how: str, at_s: float) -> None:
        self.done = True
        self.turn.endpoint = how
        self.turn.endpoint_s = at_s
        last = self.endpointer.last_voiced_frame
        if last is not None:
            self.turn.speech_end_s = (self.start_frame + last + 1) * FRAME_MS / 1000

    def utterance(self, buffer: list[bytes], first: int) -> npt.NDArray[np.int16]:
        """The utterance's samples from a little before its first voiced frame to the endpoint,
        from the stream buffer (``first``: stream index of ``buffer[0]``). The trailing silence
        is kept: a soft last word the VAD scored as silence ("...till three") is still in it."""
        endpointer = self.endpointer
        start = self.start_frame + (endpointer.start_frame or 0) - _PRE_ROLL_MS // FRAME_MS
        stop = self.start_frame + endpointer.frames
        lo = max(0, start - first)
        hi = max(lo, min(len(buffer), stop - first))
        return np.frombuffer(b"".join(buffer[lo:hi]), dtype=np.int16)


def make_synthesizer(spec: VoiceSpec) -> Synthesizer:
    """Piper (with espeak-ng behind it when the pack allows), or espeak-ng alone."""
    if spec.tts == "espeak":
        return EspeakSynthesizer()
    primary = PiperSynthesizer(threads=spec.tts_threads)
    if not spec.tts_fallback:
        return primary
    return FallbackSynthesizer(primary, EspeakSynthesizer())
