"""Endpointing in a room where something else talks: the level gate against the wake phrase,
the shorter cut once a whole command was heard, the end-of-turn model asked in a pause, words
a sentence goes on after, and the wake check hearing the phrase with the room turned down.

Scripted backends and frames first (no models), then the real Smart Turn model and a real
voice turn with a television under the guest."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from edgepipe.core.registry import BackendError
from edgepipe.pack.voice_schema import VoiceSpec
from edgepipe.voice.audio import FRAME_BYTES, from_float
from edgepipe.voice.contracts import EndpointError
from edgepipe.voice.endpoint import EndpointConfig, Endpointer, Event, may_go_on
from edgepipe.voice.level import MIN_GATE_DB, LevelGate, RoomLevels, duck, frame_power
from edgepipe.voice.listener import Listener
from edgepipe.voice.session import VoiceSession

from .test_listener import ScriptedGrammar, ScriptedWake

# frames: the first sample says what the frame is, the rest is its loudness
SILENCE, WAKE, SPEECH = 0, 1, 2
GUEST, TV = 8000, 2000  # the television 12 dB below the guest


def frame(what: int, amplitude: int = 0) -> bytes:
    samples = np.full(FRAME_BYTES // 2, amplitude, dtype=np.int16)
    samples[0] = what
    return samples.tobytes()


class TalkingVad:
    """Anything not silent is speech, as Silero hears a television."""

    def reset(self) -> None:
        pass

    def score(self, pcm: bytes) -> float:
        return 0.9 if np.frombuffer(pcm, dtype=np.int16)[1] != 0 else 0.0


class WakeOnLoud(ScriptedWake):
    def process(self, pcm: bytes):  # type: ignore[no-untyped-def]
        self.fed += 1
        if np.frombuffer(pcm[:2], dtype=np.int16)[0] == WAKE:
            from edgepipe.voice.contracts import WakeEvent

            return WakeEvent(at_s=(self.fed - 1) / 100, probability=1.0)
        return None


class Words(ScriptedGrammar):
    def __init__(self, words: str = "close the blinds") -> None:
        super().__init__()
        self.words = words

    def partial(self) -> str:
        return self.words


class Turn:
    name = "scripted"

    def __init__(self, probability: float) -> None:
        self.p = probability
        self.asked = 0

    def probability(self, samples: object) -> float:
        self.asked += 1
        return self.p


def tv_stream(after_command: int = 1500) -> Iterator[bytes]:
    """The television all along; the guest says the wake phrase (0.8 s), then a command (1 s)."""
    for _ in range(100):
        yield frame(SILENCE, TV)
    for _ in range(79):
        yield frame(SILENCE, GUEST)
    yield frame(WAKE, GUEST)
    for _ in range(30):
        yield frame(SILENCE, TV)
    for _ in range(100):
        yield frame(SPEECH, GUEST)
    for _ in range(after_command):
        yield frame(SILENCE, TV)


def listener(
    *,
    complete: bool = False,
    words: str = "close the blinds",
    turn: Turn | None = None,
    **settings: object,
) -> Listener:
    spec = VoiceSpec().with_settings({"wake.verify": False, **settings})
    return Listener(
        spec,
        wake=WakeOnLoud(),
        vad=TalkingVad(),
        grammar=Words(words),
        is_complete=lambda text: complete,
        turn=turn,
    )


# ---------------------------------------------------------------- the level gate


def test_the_wake_phrase_sets_the_level_and_a_television_below_it_is_a_pause() -> None:
    heard = list(listener(**{"turn.backend": None}).listen(tv_stream()))
    assert len(heard) == 1 and heard[0].endpoint == "end"
    # the command ends at 3.1 s; the 300 ms window and 700 ms of quiet after it
    assert heard[0].speech_start_s is not None and 2.1 <= heard[0].speech_start_s <= 2.15
    assert heard[0].speech_end_s is not None and 3.1 <= heard[0].speech_end_s <= 3.45
    assert heard[0].endpoint_s is not None and heard[0].endpoint_s <= 3.1 + 0.3 + 0.75


def test_without_the_gate_the_television_runs_the_listening_to_the_cut() -> None:
    ungated = listener(**{"turn.backend": None, "endpoint.level_gate_db": 0})
    # (the gate's floor: the television's level + 3 dB, 9 dB below the guest)
    heard = list(ungated.listen(tv_stream()))
    assert heard[0].endpoint == "max_length"


def test_a_whole_command_cuts_the_listening_short_whatever_the_vad_says() -> None:
    # the television as loud as the guest: no gate helps, the whole command does
    loud_tv = [frame(SILENCE, GUEST)] * 100 + [frame(WAKE, GUEST)] + [frame(SPEECH, GUEST)] * 1500
    spec = {"turn.backend": None, "endpoint.command_max_s": 1.5}
    heard = list(listener(complete=True, **spec).listen(iter(loud_tv)))
    assert heard[0].endpoint == "command_max"
    assert heard[0].endpoint_s is not None and heard[0].endpoint_s < 1.0 + 0.2 + 1.6
    heard = list(listener(complete=False, **spec).listen(iter(loud_tv)))
    assert heard[0].endpoint == "max_length"


def test_the_floor_sits_above_the_room_and_below_the_guest() -> None:
    loud, quiet, silent = frame(SILENCE, GUEST), frame(SILENCE, TV), frame(SILENCE)
    guest_db = 10 * np.log10(frame_power(loud))
    tv_db = 10 * np.log10(frame_power(quiet))
    levels = RoomLevels()
    for _ in range(300):
        levels.hear(quiet)  # the television before the wake phrase
    for _ in range(100):
        levels.hear(loud)
    assert levels.guest_db() == pytest.approx(guest_db)
    assert levels.room_db() == pytest.approx(tv_db)
    assert levels.floor_db(20, 3) == pytest.approx(tv_db + 3)
    # a quiet room: the floor is the guest's level less the gate, the VAD decides
    hushed = RoomLevels()
    for f in [silent] * 300 + [loud] * 100:
        hushed.hear(f)
    assert hushed.room_db() is None and hushed.floor_db(20, 3) == pytest.approx(guest_db - 20)
    # a room as loud as the guest: the floor stays below the guest
    noisy = RoomLevels()
    for f in [loud] * 400:
        noisy.hear(f)
    assert noisy.floor_db(20, 3) == pytest.approx(guest_db - MIN_GATE_DB)
    assert RoomLevels().floor_db(20, 3) is None


def test_level_gate_and_ducking() -> None:
    loud, quiet = frame(SILENCE, GUEST), frame(SILENCE, TV)
    floor = 10 * np.log10(frame_power(quiet)) + 3
    gate = LevelGate(floor)
    assert all(gate.feed(loud) for _ in range(30))
    # the window takes a moment to forget the guest, then the television stays out
    passed = [gate.feed(quiet) for _ in range(60)]
    assert passed[0] and not any(passed[30:])
    ducked = duck([loud] * 30 + [quiet] * 60, floor)
    assert len(ducked) == 90 * FRAME_BYTES // 2
    assert ducked[10 * 160 + 5] == GUEST and ducked[80 * 160 + 5] == TV // 10


# ---------------------------------------------------------------- the end-of-turn model


def test_the_model_ends_a_finished_turn_in_a_pause_and_is_asked_once_per_pause() -> None:
    done = Turn(0.9)
    heard = list(listener(turn=done).listen(tv_stream()))
    assert heard[0].endpoint == "turn_end" and done.asked == 1
    assert heard[0].turn_scores == (0.9,)
    assert heard[0].endpoint_s is not None and heard[0].endpoint_s < 3.1 + 0.3 + 0.35
    assert "turn_model" in heard[0].stages_ms
    unsure = Turn(0.2)
    heard = list(listener(turn=unsure).listen(tv_stream()))
    assert heard[0].endpoint == "end" and unsure.asked == 1


def test_a_pause_after_a_word_more_must_follow_is_no_end() -> None:
    done = Turn(0.99)
    heard = list(listener(turn=done, words="set the thermostat to twenty").listen(tv_stream()))
    assert heard[0].endpoint == "end" and done.asked == 0 and heard[0].turn_scores == (0.0,)
    # nor does a whole command end early on it
    heard = list(
        listener(
            complete=True, words="set the thermostat to twenty", **{"turn.backend": None}
        ).listen(tv_stream())
    )
    assert heard[0].endpoint == "end"


def test_a_short_utterance_is_not_put_to_the_model() -> None:
    # "Hey," and a pause: 0.4 s of speech is an opener more often than a finished request
    ep = Endpointer(EndpointConfig(turn_pause_ms=250, turn_min_speech_ms=1000))
    asked: list[int] = []
    probs = [0.9] * 40 + [0.0] * 30 + [0.9] * 80 + [0.0] * 40
    events = [ep.feed(p, finished=lambda: asked.append(ep.frames) or 0.9) for p in probs]
    assert asked == [40 + 30 + 80 + 25]  # not in the first pause; in the second, after 1.2 s
    assert events.index(Event.TURN_END) == 40 + 30 + 80 + 24


def test_words_a_sentence_goes_on_after() -> None:
    assert may_go_on("set the thermostat to twenty")
    assert may_go_on("turn off the")
    assert not may_go_on("set the thermostat to twenty two")
    assert not may_go_on("close the blinds.")
    assert not may_go_on("")


def test_the_endpointer_asks_again_only_after_speech_resumes() -> None:
    ep = Endpointer(
        EndpointConfig(turn_pause_ms=250, trailing_silence_ms=700, turn_min_speech_ms=0)
    )
    asked: list[int] = []

    def finished() -> float:
        asked.append(ep.frames)
        return 0.1

    probs = [0.9] * 50 + [0.0] * 40 + [0.9] * 30 + [0.0] * 100
    events = [ep.feed(p, finished=finished) for p in probs]
    assert asked == [50 + 25, 50 + 40 + 30 + 25]
    assert Event.END in events and Event.TURN_END not in events


# ---------------------------------------------------------------- the real model and a real room


@pytest.mark.slow
def test_smart_turn_reads_speech_and_refuses_what_it_cannot(piper_speech) -> None:  # type: ignore[no-untyped-def]
    from edgepipe.voice.backends.smart_turn import SmartTurn

    model = SmartTurn()
    speech = piper_speech.speech("Could you please send up two extra towels to my room.")
    p = model.probability(np.concatenate([speech, np.zeros(3200, dtype=np.float32)]))
    assert 0.0 <= p <= 1.0
    # longer than its 8 s window: the end is what it hears
    long = np.concatenate([np.zeros(16000 * 9, dtype=np.float32), speech])
    assert model.probability(long) == pytest.approx(model.probability(long[-8 * 16000 :]), abs=1e-4)
    with pytest.raises(EndpointError, match="no audio"):
        model.probability(np.zeros(0, dtype=np.float32))
    with pytest.raises(EndpointError, match="mono"):
        model.probability(np.zeros((2, 1600), dtype=np.float32))


def test_a_pack_names_its_turn_detector_or_none() -> None:
    assert VoiceSpec().turn.backend == "smart_turn"
    assert VoiceSpec().with_settings({"turn.backend": None}).turn.backend is None
    with pytest.raises(ValueError, match="unknown turn detector 'nope'"):
        VoiceSpec().with_settings({"turn.backend": "nope"})
    assert isinstance(BackendError("x"), Exception)


TELEVISION = (
    "The weather tonight will be mild with clouds moving in from the west. Tomorrow brings a "
    "chance of rain in the afternoon. In sports, the home team won their third game in a row "
    "after a late goal. Now back to our kitchen, where we are making a simple tomato sauce."
)


@pytest.mark.slow
def test_a_television_under_the_guest_no_longer_holds_the_turn_open(  # type: ignore[no-untyped-def]
    voice: VoiceSession, piper_speech, espeak_speech
) -> None:
    from edgepipe.testing.voicedata import command_clip
    from edgepipe.voice.noise import mix_at_snr

    clip, meta = command_clip(piper_speech, "set the thermostat to twenty two", tail_s=6.0)
    tv = np.concatenate([espeak_speech.speech(TELEVISION)] * 3)[: len(clip)]
    room = mix_at_snr(clip, tv, 15.0)
    turns = voice.process(from_float(room, 16000))
    assert len(turns) == 1 and turns[0].wake
    turn = turns[0]
    assert turn.endpoint in {"end", "early_end", "turn_end", "command_max"}
    assert turn.endpoint_s is not None and turn.endpoint_s < meta["speech_end_s"] + 1.5
    assert turn.endpoint_s > meta["speech_end_s"] - 0.15  # not cut off
    assert turn.intent == "thermostat_set" and turn.slots.get("degrees") == 22
    # the same room as before the gate, the model and the cut after a whole command: the
    # television keeps the listening open to the end (the wake unchecked: without the gate the
    # check hears the television too, and drops it)
    settings = {"endpoint.level_gate_db": 0, "endpoint.command_max_s": 0, "turn.backend": None}
    ungated = voice.with_settings(**settings, **{"wake.verify": False})
    held = ungated.process(from_float(room, 16000))
    assert held and held[0].endpoint in {"max_length", "stream_end"}
