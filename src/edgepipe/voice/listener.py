"""The 10 ms frame loop: wake word and its check, VAD and endpointing, the grammar path fed as the
guest speaks.

:meth:`Listener.listen` takes 10 ms PCM frames (a file's or a microphone's) and yields an
:class:`Utterance` each time a listening ends: an utterance the endpointer closed, or a wake
nobody spoke after. What to do with it (the transcript, the turn, the reply) is the voice
session's; the listener only hears.

Every frame is scored by the VAD. While waiting for a wake, frames go to the wake detector;
when it fires, the grammar path decodes the wake phrase just heard and discards the words (its
front end adapts to this speaker and room: ``voice.grammar.adapt_on_wake_s``), and
``voice.wake.verify_delay_ms`` later the open transcriber checks that the audio reads as the
wake phrase (``voice.wake.verify``; a wake it does not keep is dropped and the waiting goes
on). While listening, frames go to the endpointer and, once speech starts, to the grammar path,
whose words so far let a whole command end after a shorter silence, and end it
``voice.endpoint.command_max_s`` after they first formed one whatever the silence.

**The guest, not the room.** A television talking is speech to the VAD: the listening would
never fall silent. A frame counts as the guest's speech only when it is loud enough next to
the wake phrase and the room's level before it (:mod:`edgepipe.voice.level`). A pause is then
a pause even with the television on, and in a pause the end-of-turn model (``voice.turn``) is
asked whether the guest has finished. The wake check hears its audio with the frames the gate
does not pass turned down by 20 dB (the phrase, not the television before it).

**Follow-ups.** When the turn asked a question, :meth:`Listener.expect_answer` opens the next
listening at once, without the wake word (the wake word said in it starts a new request).

Long on purpose: one frame loop whose states (waiting for a wake, checking it, listening,
following up) share the stream's buffers and clock; the endpointer, the level gate and the
backends it drives live in their own modules.

Times are **stream time**: seconds from the stream's first frame, counted by the listener
(the wake detector does not hear the frames of a listening, so its own clock falls behind).
Work that makes the listening fall behind the audio (the wake check, the adaptation, frames
slower than real time) is counted as backlog, which the guest waits through.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

from edgepipe.pack.voice_schema import VoiceSpec
from edgepipe.voice.audio import FRAME_BYTES, FRAME_MS
from edgepipe.voice.contracts import (
    GrammarHypothesis,
    StreamingRecognizer,
    TurnDetector,
    VadScorer,
    WakeDetector,
)
from edgepipe.voice.endpoint import EndpointConfig, Endpointer, Event, may_go_on
from edgepipe.voice.level import LevelGate, RoomLevels, duck

log = logging.getLogger(__name__)

PRE_ROLL_MS = 300
"""Audio before the first voiced frame that belongs to the utterance."""
VERIFY_BEFORE_MS = 1450
"""The wake check hears this much audio up to the detection (the phrase takes ~0.8 s)."""
WakeCheck = Callable[[npt.NDArray[np.int16], str], float]
"""Scores audio as the wake phrase (the open transcriber's ``phrase_logprob``)."""


def _seconds(frames: int) -> float:
    return frames * FRAME_MS / 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class Utterance:
    """What one listening heard."""

    wake_at_s: float | None
    """Stream time of the start of the frame on which the wake detector fired; None for
    push-to-talk."""
    wake_score: float | None = None
    """The wake check's score, when it ran."""
    started: bool = False
    """Whether speech started (False: a wake nobody spoke after, or push-to-talk silence)."""
    endpoint: str | None = None
    """What ended it: ``end``, ``early_end``, ``max_length``, ``stream_end``."""
    speech_start_s: float | None = None
    """Stream time of the first voiced frame."""
    speech_end_s: float | None = None
    """Stream time of the end of the last voiced frame."""
    endpoint_s: float | None = None
    """Stream time at which it ended."""
    grammar: GrammarHypothesis | None = None
    """The grammar path's hypothesis (when speech started)."""
    samples: npt.NDArray[np.int16] = field(default_factory=lambda: np.zeros(0, dtype=np.int16))
    """The utterance from a little before its first voiced frame to the endpoint, trailing
    silence included (a soft last word the VAD scored as silence is still in it)."""
    backlog_ms: float = 0.0
    """How far the processing fell behind the audio while listening."""
    stages_ms: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    """``wake_adapt``, ``wake_verify``, ``turn_model``, ``grammar_finish``: those that ran."""
    turn_scores: tuple[float, ...] = ()
    """What the end-of-turn model answered in the pauses it was asked about, in order."""
    follow_up: bool = False
    """Heard without a wake word: the answer to a question the assistant had just asked."""
    decided_at: float = 0.0
    """``time.perf_counter()`` when the endpointer ended it (the latency counts from here)."""

    @property
    def wake(self) -> bool:
        return self.wake_at_s is not None


_ENDS = frozenset({Event.END, Event.EARLY_END, Event.TURN_END, Event.COMMAND_MAX, Event.MAX_LENGTH})


class _Listening:
    """State of one listening (after a wake, or push-to-talk) while frames come in."""

    def __init__(
        self,
        listener: Listener,
        start_frame: int,
        wake_at_s: float | None,
        floor_db: float | None = None,
        follow_up_s: float | None = None,
    ) -> None:
        spec = listener.spec
        turn = listener.turn
        config = EndpointConfig(
            threshold=spec.vad.threshold,
            min_speech_ms=spec.endpoint.min_speech_ms,
            trailing_silence_ms=spec.endpoint.trailing_silence_ms,
            early_silence_ms=spec.endpoint.early_silence_ms,
            max_utterance_s=spec.endpoint.max_utterance_s,
            timeout_s=spec.endpoint.listen_timeout_s if follow_up_s is None else follow_up_s,
            command_max_s=spec.endpoint.command_max_s,
            turn_pause_ms=spec.turn.pause_ms if turn is not None else None,
            turn_threshold=spec.turn.threshold,
            turn_min_speech_ms=spec.turn.min_speech_ms,
        )
        self.listener = listener
        self.endpointer = Endpointer(config)
        self.start_frame = start_frame
        self.wake_at_s = wake_at_s
        self.follow_up = follow_up_s is not None
        self.wake_score: float | None = None
        self.started = False
        self.done = False
        self.how: str | None = None
        self.endpoint_s: float | None = None
        self.backlog_ms = 0.0
        self.stages: dict[str, float] = {}
        self.checking: list[bytes] | None = None
        """The wake phrase and what followed, for the wake check once it has heard enough."""
        self.check_at = 0
        # enough audio to replay the speech that started the utterance, and the pre-roll
        self._recent: deque[bytes] = deque(
            maxlen=(config.min_speech_ms + PRE_ROLL_MS) // FRAME_MS + 1
        )
        self.floor_db = floor_db
        """The level the guest's speech must reach (None: no gate)."""
        self.gate = LevelGate(floor_db) if floor_db is not None else None
        self.speech: list[bytes] = []
        """The utterance's frames so far, from a little before its first voiced frame (what
        the end-of-turn model hears)."""
        self._finished = self._turn_probability if turn is not None else None

    def _complete(self) -> bool:
        """Whether the grammar path's words so far are a whole command that does not end on a
        word more must follow ("... to twenty": "two" may come)."""
        words = self.listener.grammar.partial()
        return not may_go_on(words) and self.listener.is_complete(words)

    def _turn_probability(self) -> float:
        """The end-of-turn model's answer, unless the words so far end on a word more must
        follow (then 0: the model hears sound, not that "to twenty" goes on)."""
        turn = self.listener.turn
        assert turn is not None
        if may_go_on(self.listener.grammar.partial()):
            return 0.0
        started = time.perf_counter()
        probability = turn.probability(np.frombuffer(b"".join(self.speech), dtype=np.int16))
        # part of this frame's time, which counts as backlog in feed()
        self.stages["turn_model"] = (
            self.stages.get("turn_model", 0.0) + (time.perf_counter() - started) * 1000
        )
        return probability

    def spend(self, stage: str, started: float) -> None:
        """Work from ``started`` on, done for ``stage``: the listening is that much behind."""
        spent_ms = (time.perf_counter() - started) * 1000
        self.stages[stage] = spent_ms
        self.backlog_ms += spent_ms

    def feed(self, frame: bytes, probability: float, index: int, spent_s: float) -> None:
        """Frame ``index`` of the stream, its VAD probability, and the time spent on it so far."""
        started = time.perf_counter()
        grammar = self.listener.grammar
        if self.started:
            grammar.feed(frame)
            self.speech.append(frame)
        else:
            self._recent.append(frame)
        if self.gate is not None and not self.gate.feed(frame):
            probability = 0.0  # too quiet to be the guest: the room, not the guest
        endpointer = self.endpointer
        event = endpointer.feed(probability, complete=self._complete, finished=self._finished)
        spent_s += time.perf_counter() - started
        # processing slower than the audio builds a backlog the guest will wait through
        self.backlog_ms = max(0.0, self.backlog_ms + spent_s * 1000 - FRAME_MS)
        if event is Event.SPEECH_START:
            # the grammar path hears the utterance from a little before its first voiced frame
            # (not the wake word's tail)
            self.started = True
            first = endpointer.start_frame or 0
            keep = endpointer.frames - first + PRE_ROLL_MS // FRAME_MS
            grammar.start()
            for earlier in list(self._recent)[-keep:]:
                grammar.feed(earlier)
                self.speech.append(earlier)
            self._recent.clear()
        elif event in _ENDS:
            self.close(event.value, _seconds(index + 1))
        elif event is Event.TIMEOUT:
            self.done = True

    def close(self, how: str, at_s: float) -> None:
        self.done = True
        self.how = how
        self.endpoint_s = at_s

    def heard(self, buffer: list[bytes], first: int) -> Utterance:
        """What this listening heard, now that it is over (``buffer``: the stream's recent
        frames, ``first``: the stream index of ``buffer[0]``)."""
        decided_at = time.perf_counter()
        if not self.started:
            return Utterance(
                wake_at_s=self.wake_at_s,
                wake_score=self.wake_score,
                follow_up=self.follow_up,
                backlog_ms=self.backlog_ms,
                stages_ms=MappingProxyType(dict(self.stages)),
                decided_at=decided_at,
            )
        grammar = self.listener.grammar.finish()
        self.stages["grammar_finish"] = grammar.finish_ms
        endpointer = self.endpointer
        start = self.start_frame + (endpointer.start_frame or 0) - PRE_ROLL_MS // FRAME_MS
        stop = self.start_frame + endpointer.frames
        lo = max(0, start - first)
        hi = max(lo, min(len(buffer), stop - first))
        last = endpointer.last_voiced_frame
        return Utterance(
            wake_at_s=self.wake_at_s,
            wake_score=self.wake_score,
            started=True,
            endpoint=self.how,
            speech_start_s=_seconds(self.start_frame + (endpointer.start_frame or 0)),
            speech_end_s=None if last is None else _seconds(self.start_frame + last + 1),
            endpoint_s=self.endpoint_s,
            grammar=grammar,
            samples=np.frombuffer(b"".join(buffer[lo:hi]), dtype=np.int16),
            backlog_ms=self.backlog_ms,
            stages_ms=MappingProxyType(dict(self.stages)),
            decided_at=decided_at,
            turn_scores=tuple(endpointer.turn_scores),
            follow_up=self.follow_up,
        )


class Listener:
    """Hears utterances in a stream of 10 ms frames (see the module docstring).

    ``wake_check``: scores audio as the wake phrase; None leaves wakes unchecked (also when
    ``voice.wake.verify`` is off). ``is_complete``: whether words are a whole command the
    pack's templates accept (the early end). ``turn``: the end-of-turn model (None: off).
    """

    def __init__(
        self,
        spec: VoiceSpec,
        *,
        wake: WakeDetector | None,
        vad: VadScorer,
        grammar: StreamingRecognizer,
        is_complete: Callable[[str], bool],
        wake_check: WakeCheck | None = None,
        turn: TurnDetector | None = None,
    ) -> None:
        self.spec = spec
        self.wake = wake
        self.vad = vad
        self.turn = turn
        self.grammar = grammar
        self.is_complete = is_complete
        self.wake_check = wake_check if spec.wake.verify else None
        self.wakes_dropped: list[tuple[float, float]] = []
        """(stream time, score) of each wake the check dropped, this stream."""
        self._answer_s: float | None = None
        self._floor_db: float | None = None
        """The last wake's level floor (a follow-up has no wake phrase of its own)."""
        self.levels = RoomLevels()

    def expect_answer(self, within_s: float) -> None:
        """The assistant asked a question: the next listening opens at once, without the wake
        word, and closes if nobody speaks within ``within_s`` (the reply's length and the time
        the guest has to answer). Called between two utterances of :meth:`listen`."""
        self._answer_s = within_s

    def listen(self, frames: Iterator[bytes], *, require_wake: bool = True) -> Iterator[Utterance]:
        """Utterances as they end, from 10 ms PCM frames. Push-to-talk (``require_wake=False``):
        every utterance, and no :class:`Utterance` for a listening nobody spoke in, except one
        at the end when nothing was heard at all."""
        wake, spec = self.wake, self.spec
        if wake is not None:
            wake.reset()
        self.vad.reset()
        self.grammar.restore_prior()
        self.wakes_dropped = []
        self._answer_s = self._floor_db = None
        self.levels.clear()
        pre_roll = PRE_ROLL_MS // FRAME_MS
        adapt_frames = int(spec.grammar.adapt_on_wake_s * 1000) // FRAME_MS
        keep = max(adapt_frames, VERIFY_BEFORE_MS // FRAME_MS)
        heard: deque[bytes] = deque(maxlen=max(1, keep))
        buffer: list[bytes] = []  # the stream's recent frames; ``first`` is buffer[0]'s index
        first = 0
        index = 0
        yielded = 0
        listening = None if require_wake else _Listening(self, 0, None)
        for frame in frames:
            if len(frame) < FRAME_BYTES:
                frame = frame + b"\0" * (FRAME_BYTES - len(frame))
            started = time.perf_counter()
            buffer.append(frame)
            probability = self.vad.score(frame)
            if listening is None:
                event = wake.process(frame) if wake is not None else None
                index += 1
                heard.append(frame)
                self.levels.hear(frame)
                if event is not None:
                    # stream time of the frame it fired on (its own clock skips the listenings)
                    listening = self._woken(index, _seconds(index - 1), list(heard), adapt_frames)
                    heard.clear()
                if len(buffer) > pre_roll:
                    del buffer[: len(buffer) - pre_roll]
                first = index - len(buffer)
                continue
            if listening.follow_up and wake is not None:
                # the wake word said during a follow-up starts a request of its own
                heard.append(frame)
                if wake.process(frame) is not None:
                    index += 1
                    listening = self._woken(index, _seconds(index - 1), list(heard), adapt_frames)
                    heard.clear()
                    del buffer[: max(0, len(buffer) - pre_roll)]
                    first = index - len(buffer)
                    continue
            listening.feed(frame, probability, index, time.perf_counter() - started)
            index += 1
            if listening.checking is not None:
                listening.checking.append(frame)
                if wake is not None:
                    wake.process(frame)  # its stream stays whole if the wake is dropped
                if index >= listening.check_at and not self._check(listening):
                    listening = None
                    del buffer[: max(0, len(buffer) - pre_roll)]
                    first = index - len(buffer)
                    continue
            if listening.done:
                utterance = listening.heard(buffer, first)
                # nobody answered a follow-up: back to waiting for the wake word, quietly
                if utterance.started or (require_wake and not utterance.follow_up):
                    yielded += 1
                    yield utterance
                del buffer[: max(0, len(buffer) - pre_roll)]
                first = index - len(buffer)
                if self._answer_s is not None:
                    listening = _Listening(
                        self, index, None, self._floor_db, follow_up_s=self._answer_s
                    )
                    self._answer_s = None
                else:
                    listening = None if require_wake else _Listening(self, index, None)
        if listening is not None and listening.checking is not None and not self._check(listening):
            listening = None  # the stream ended before the check had heard all it waits for
        if listening is not None and (listening.started or listening.wake_at_s is not None):
            if listening.started:
                listening.close("stream_end", _seconds(index))
            yielded += 1
            yield listening.heard(buffer, first)
        if not require_wake and yielded == 0:
            yield Utterance(wake_at_s=None, decided_at=time.perf_counter())

    def _woken(self, index: int, at_s: float, heard: list[bytes], adapt_frames: int) -> _Listening:
        """The listening a wake at stream time ``at_s`` starts (``heard``: the audio up to it)."""
        endpoint = self.spec.endpoint
        floor = (
            self.levels.floor_db(endpoint.level_gate_db, endpoint.room_margin_db)
            if endpoint.level_gate_db > 0
            else None
        )
        self._floor_db = floor
        listening = _Listening(self, index, at_s, floor)
        if adapt_frames > 0:
            # the grammar path adapts to the wake phrase just heard; its time is backlog
            started = time.perf_counter()
            self.grammar.adapt(b"".join(heard[-adapt_frames:]))
            listening.spend("wake_adapt", started)
        if self.wake_check is not None:
            listening.checking = heard[-(VERIFY_BEFORE_MS // FRAME_MS) :]
            listening.check_at = index + self.spec.wake.verify_delay_ms // FRAME_MS
        return listening

    def _check(self, listening: _Listening) -> bool:
        """The wake check: whether the audio around the detection reads as the wake phrase. Its
        time is backlog, like the adaptation's."""
        assert self.wake is not None and self.wake_check is not None
        assert listening.checking is not None
        started = time.perf_counter()
        frames = listening.checking
        listening.checking = None
        if listening.floor_db is not None:
            # the room ducked: what the check hears is the guest's phrase, not the television
            pcm = duck(frames, listening.floor_db)
        else:
            pcm = np.frombuffer(b"".join(frames), dtype=np.int16)
        score = self.wake_check(pcm, self.wake.wake_phrase)
        listening.spend("wake_verify", started)
        listening.wake_score = score
        if score >= self.spec.wake.verify_min_logprob:
            return True
        # the wake phrase itself may follow at once ("OK, I'm up. Okay Nabu, ...")
        self.wake.release()
        at_s = listening.wake_at_s if listening.wake_at_s is not None else 0.0
        self.wakes_dropped.append((at_s, score))
        log.info("wake at %.2f s dropped: the check scored it %.2f", at_s, score)
        return False
