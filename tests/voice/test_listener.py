"""The frame loop with scripted backends: wake times, endpoints and the wake check, frame by
frame (no audio models)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from edgepipe.pack.voice_schema import VoiceSpec
from edgepipe.voice.audio import FRAME_BYTES
from edgepipe.voice.contracts import GrammarHypothesis, WakeEvent
from edgepipe.voice.listener import Listener

SILENCE, WAKE, SPEECH = 0, 1, 2


def frame(kind: int) -> bytes:
    return np.full(FRAME_BYTES // 2, kind, dtype=np.int16).tobytes()


def kind(pcm: bytes) -> int:
    return int(np.frombuffer(pcm[:2], dtype=np.int16)[0])


class ScriptedWake:
    """Fires on a WAKE frame; keeps its own clock of the frames it is fed, as a real one does."""

    wake_phrase = "okay nabu"

    def __init__(self) -> None:
        self.fed = 0
        self.released = 0
        self.max_probability = 0.0

    def reset(self) -> None:
        self.fed = 0

    def release(self) -> None:
        self.released += 1

    def process(self, pcm: bytes) -> WakeEvent | None:
        self.fed += 1
        if kind(pcm) == WAKE:
            self.max_probability = 1.0
            return WakeEvent(at_s=(self.fed - 1) / 100, probability=1.0)
        return None


class ScriptedVad:
    def reset(self) -> None:
        pass

    def score(self, frame: bytes) -> float:
        return 0.9 if kind(frame) == SPEECH else 0.0


class ScriptedGrammar:
    """Hears "close the blinds" in whatever it is fed."""

    primed = True

    def __init__(self) -> None:
        self.frames = 0
        self.adapted = 0

    def prime(self, pcm: bytes) -> None:
        pass

    def restore_prior(self) -> None:
        pass

    def adapt(self, pcm: bytes) -> None:
        self.adapted += 1

    def start(self) -> None:
        self.frames = 0

    def feed(self, pcm: bytes) -> None:
        self.frames += len(pcm) // FRAME_BYTES

    def partial(self) -> str:
        return "close the blinds"

    def finish(self) -> GrammarHypothesis:
        return GrammarHypothesis(
            text="close the blinds", ratio=1.0, frames=self.frames, finish_ms=0
        )

    def recognize(self, pcm: bytes) -> GrammarHypothesis:
        return self.finish()


def stream(*parts: tuple[int, int]) -> Iterator[bytes]:
    for what, count in parts:
        for _ in range(count):
            yield frame(what)


def listener(wake_check=None, **settings: object) -> Listener:  # type: ignore[no-untyped-def]
    spec = VoiceSpec().with_settings({"wake.verify": wake_check is not None, **settings})
    return Listener(
        spec,
        wake=ScriptedWake(),
        vad=ScriptedVad(),
        grammar=ScriptedGrammar(),
        is_complete=lambda text: False,
        wake_check=wake_check,
    )


def test_wake_times_are_stream_time_however_long_each_listening() -> None:
    # three wakes, each followed by half a second of silence, a second of speech and the
    # trailing silence that ends it; the detector hears none of the frames of a listening
    one = [(SILENCE, 100), (WAKE, 1), (SILENCE, 50), (SPEECH, 100), (SILENCE, 100)]
    heard = list(listener().listen(stream(*one * 3)))
    assert [u.wake_at_s for u in heard] == [1.0, 4.51, 8.02]  # the wake frames' stream times
    assert all(u.started and u.endpoint == "end" for u in heard)
    # the frame after the wake is the first of the listening; speech starts half a second on
    assert [u.speech_start_s for u in heard] == [1.51, 5.02, 8.53]
    assert [u.endpoint_s for u in heard] == [3.21, 6.72, 10.23]  # 0.7 s after the speech
    assert [len(u.samples) for u in heard] == [(30 + 100 + 70) * 160] * 3  # pre-roll included


def test_a_dropped_wake_is_stream_time_too_and_the_next_wake_is_heard() -> None:
    scores = iter([-5.0, 0.0])
    checked = listener(wake_check=lambda pcm, phrase: next(scores))
    one = [(SILENCE, 100), (WAKE, 1), (SILENCE, 50), (SPEECH, 100), (SILENCE, 100)]
    heard = list(checked.listen(stream(*one * 2)))
    assert checked.wakes_dropped == [(1.0, -5.0)]
    assert checked.wake is not None and checked.wake.released == 1  # type: ignore[attr-defined]
    assert len(heard) == 1 and heard[0].wake_at_s == 4.51 and heard[0].wake_score == 0.0
    assert "wake_verify" in heard[0].stages_ms and "wake_adapt" in heard[0].stages_ms


def test_a_wake_nobody_speaks_after_times_out() -> None:
    heard = list(listener().listen(stream((SILENCE, 10), (WAKE, 1), (SILENCE, 500))))
    assert len(heard) == 1 and heard[0].wake and not heard[0].started
    assert heard[0].wake_at_s == 0.1 and heard[0].grammar is None


def test_push_to_talk_hears_every_utterance_and_reports_silence_once() -> None:
    talk = [(SILENCE, 20), (SPEECH, 50), (SILENCE, 100)]
    heard = list(listener().listen(stream(*talk * 2), require_wake=False))
    assert [u.wake for u in heard] == [False, False]
    assert [u.speech_start_s for u in heard] == [0.2, 1.9]
    nothing = list(listener().listen(stream((SILENCE, 300)), require_wake=False))
    assert len(nothing) == 1 and not nothing[0].started and not nothing[0].wake


def test_after_a_question_the_answer_needs_no_wake_word() -> None:
    ears = listener()
    one = [(SILENCE, 100), (WAKE, 1), (SILENCE, 50), (SPEECH, 100), (SILENCE, 100)]
    answer = [(SILENCE, 80), (SPEECH, 60), (SILENCE, 100)]
    heard = []
    for utterance in ears.listen(stream(*one, *answer, *one)):
        heard.append(utterance)
        if len(heard) == 1:
            ears.expect_answer(3.0)  # the turn asked a question
    assert [(u.wake, u.follow_up, u.started) for u in heard] == [
        (True, False, True),
        (False, True, True),
        (True, False, True),
    ]
    # the rest of the first one's silence (0.3 s) and the answer's 0.8 s after its endpoint
    assert heard[1].speech_start_s == pytest.approx(heard[0].endpoint_s + 1.1)
    assert heard[2].wake_at_s is not None and heard[2].wake_at_s > heard[1].endpoint_s


def test_an_unanswered_question_goes_back_to_waiting_for_the_wake_word() -> None:
    ears = listener()
    one = [(SILENCE, 100), (WAKE, 1), (SILENCE, 50), (SPEECH, 100), (SILENCE, 100)]
    heard = []
    for utterance in ears.listen(stream(*one, (SILENCE, 400), (SPEECH, 50), (SILENCE, 100), *one)):
        heard.append(utterance)
        if len(heard) == 1:
            ears.expect_answer(2.0)
    # nobody answered within 2 s: nothing is yielded for it, the later speech without a wake
    # word is not heard, and the next wake is
    assert [(u.wake, u.follow_up) for u in heard] == [(True, False), (True, False)]


def test_the_wake_word_during_a_follow_up_starts_a_request_of_its_own() -> None:
    ears = listener()
    one = [(SILENCE, 100), (WAKE, 1), (SILENCE, 50), (SPEECH, 100), (SILENCE, 100)]
    heard = []
    for utterance in ears.listen(
        stream(*one, (SILENCE, 30), (WAKE, 1), (SILENCE, 50), (SPEECH, 100), (SILENCE, 100))
    ):
        heard.append(utterance)
        if len(heard) == 1:
            ears.expect_answer(5.0)
    assert [(u.wake, u.follow_up) for u in heard] == [(True, False), (True, False)]
    # the rest of the first one's silence (0.3 s), 0.3 s more, then the wake frame
    assert heard[1].wake_at_s == pytest.approx(heard[0].endpoint_s + 0.6, abs=0.02)
