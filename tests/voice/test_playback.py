"""Replies played as they are synthesized, and the microphone muted while they play."""

from __future__ import annotations

import logging
import threading
import time

import numpy as np
import pytest

from edgepipe.testing.voicedata import command_clip
from edgepipe.voice.audio import from_float
from edgepipe.voice.playback import MAX_QUEUED_PIECES, Speaker, SpeakerError


class FakeStream:
    """Records what is written; ``fail_after`` writes, raises."""

    def __init__(self, rate: int, log: list[tuple[str, int, int]], fail_after: int | None) -> None:
        self.rate = rate
        self.log = log
        self.fail_after = fail_after
        self.closed = False

    def write(self, data: np.ndarray) -> None:
        if self.fail_after is not None and len(self.log) >= self.fail_after:
            raise RuntimeError("device unplugged")
        self.log.append(("write", self.rate, len(data)))

    def close(self) -> None:
        self.closed = True
        self.log.append(("close", self.rate, 0))


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _speaker(
    fail_after: int | None = None,
) -> tuple[Speaker, list[tuple[str, int, int]], Clock, list[int]]:
    log: list[tuple[str, int, int]] = []
    opened: list[int] = []
    clock = Clock()

    def open_stream(rate: int) -> FakeStream:
        opened.append(rate)
        return FakeStream(rate, log, fail_after)

    return Speaker(open_stream, tail_s=0.3, clock=clock), log, clock, opened


def test_pieces_are_played_in_order_on_one_stream_per_rate() -> None:
    speaker, log, _clock, opened = _speaker()
    speaker.play(np.zeros(100, dtype=np.float32), 22050)
    speaker.play(np.zeros(200, dtype=np.float32), 22050)
    speaker.play(np.zeros(0, dtype=np.float32), 22050)  # nothing to play
    speaker.play(np.zeros(300, dtype=np.float32), 16000)
    speaker.drain(timeout_s=5)
    assert log == [
        ("write", 22050, 100),
        ("write", 22050, 200),
        ("close", 22050, 0),  # another rate: another stream
        ("write", 16000, 300),
    ]
    assert opened == [22050, 16000]
    speaker.close()
    assert log[-1] == ("close", 16000, 0)


def test_the_microphone_is_muted_while_a_reply_plays_and_for_its_echo() -> None:
    speaker, _log, clock, _opened = _speaker()
    frame = np.arange(160, dtype=np.int16).tobytes()
    assert not speaker.busy() and speaker.gate(frame) == frame
    speaker.play(np.zeros(16000, dtype=np.float32), 16000)  # 1 s
    speaker.play(np.zeros(8000, dtype=np.float32), 16000)  # then 0.5 s more
    assert speaker.busy()
    assert speaker.gate(frame) == bytes(len(frame))  # silence, same length: the clock goes on
    clock.now += 1.7  # 1.5 s of reply and 0.2 s of its tail
    assert speaker.busy()
    clock.now += 0.2
    assert not speaker.busy() and speaker.gate(frame) == frame
    # a reply queued later starts when it is queued, not when the last one was
    clock.now += 10
    speaker.play(np.zeros(1600, dtype=np.float32), 16000)  # 0.1 s
    clock.now += 0.35
    assert speaker.busy()
    clock.now += 0.1
    assert not speaker.busy()
    speaker.close()


def test_a_failing_device_stops_playing_and_keeps_the_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    speaker, log, _clock, _opened = _speaker(fail_after=1)
    speaker.play(np.zeros(100, dtype=np.float32), 16000)
    speaker.play(np.zeros(100, dtype=np.float32), 16000)
    speaker.play(np.zeros(100, dtype=np.float32), 16000)
    speaker.drain(timeout_s=5)
    assert log == [("write", 16000, 100)]
    assert isinstance(speaker.error, SpeakerError)
    assert "device unplugged" in str(speaker.error)
    assert "replies are not spoken" in caplog.text
    assert not speaker.busy()  # the microphone is not left muted
    speaker.play(np.zeros(100, dtype=np.float32), 16000)
    assert not speaker.busy()
    speaker.close()


class StalledStream(FakeStream):
    """A device that stops playing: every write waits until ``resume`` is set."""

    def __init__(self, rate: int, log: list[tuple[str, int, int]], resume: threading.Event) -> None:
        super().__init__(rate, log, None)
        self.resume = resume

    def write(self, data: np.ndarray) -> None:
        self.resume.wait(5)
        super().write(data)


def test_the_queue_of_pieces_is_bounded_and_counts_what_it_drops(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert MAX_QUEUED_PIECES >= 32  # a reply is a handful of pieces: only a stall fills it
    log: list[tuple[str, int, int]] = []
    resume = threading.Event()
    speaker = Speaker(lambda rate: StalledStream(rate, log, resume), max_queued=4, clock=Clock())
    piece = np.zeros(100, dtype=np.float32)
    speaker.play(piece, 16000)  # taken by the player thread, which stalls writing it
    deadline = time.monotonic() + 5
    while speaker._queued and time.monotonic() < deadline:  # until the thread holds it
        time.sleep(0.01)
    with caplog.at_level(logging.WARNING):
        for _ in range(7):
            speaker.play(piece, 16000)
    assert speaker.dropped == 3  # four wait, the rest do not fit
    assert "reply audio is dropped" in caplog.text
    resume.set()
    speaker.drain(timeout_s=5)
    assert len(log) == 5  # the one being written and the four that waited
    speaker.play(piece, 16000)  # room again
    speaker.drain(timeout_s=5)
    assert len(log) == 6 and speaker.dropped == 3
    speaker.close()


def test_without_sounddevice_the_error_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    from edgepipe.voice import playback

    real_import = builtins.__import__

    def no_sounddevice(name: str, *args: object, **kwargs: object) -> object:
        if name == "sounddevice":
            raise ImportError("No module named 'sounddevice'")
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_sounddevice)
    with pytest.raises(SpeakerError) as info:
        playback.sounddevice_output(22050)
    assert info.value.code == "speaker_unavailable"
    assert "pip install sounddevice" in str(info.value)


@pytest.mark.slow
def test_the_reply_reaches_the_sink_piece_by_piece(voice, piper_speech) -> None:  # type: ignore[no-untyped-def]
    pieces: list[tuple[np.ndarray, int]] = []

    def sink(piece: np.ndarray, rate: int) -> None:
        pieces.append((piece, rate))

    clip, _meta = command_clip(piper_speech, "Set the thermostat to twenty three degrees.")
    voice.reply_sink = sink  # this test's own voice session
    (turn,) = voice.process(from_float(clip, 16000))
    assert turn.reply_audio is not None and len(pieces) >= 2
    assert all(rate == turn.reply_rate for _p, rate in pieces)
    assert np.array_equal(np.concatenate([p for p, _r in pieces]), turn.reply_audio)
    assert len(pieces[0][0]) < len(turn.reply_audio) / 2  # the first piece is not the reply
