"""WAV and PCM input: any rate, width and channel count in; 16 kHz mono int16 out; clear errors."""

from __future__ import annotations

import struct
import wave
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("soxr")
pytest.importorskip("scipy")

import scipy.io.wavfile

from edgepipe.voice.audio import (
    SAMPLE_RATE,
    Audio,
    AudioError,
    chunks,
    from_float,
    from_pcm,
    load_wav,
    read_wav_bytes,
    resample,
    write_wav,
)


def sine(freq: float, seconds: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float64)


def write_pcm_wav(path: Path, x: np.ndarray, rate: int, kind: str) -> None:
    """Write float ``x`` (frames,) or (frames, ch) in the given encoding."""
    frames = x if x.ndim == 2 else x[:, None]
    channels = frames.shape[1]
    if kind in ("f32", "f64"):
        scipy.io.wavfile.write(
            path, rate, frames.astype(np.float32 if kind == "f32" else np.float64)
        )
        return
    width = {"u8": 1, "s16": 2, "s24": 3, "s32": 4}[kind]
    if kind == "u8":
        data = np.clip(np.rint(frames * 128 + 128), 0, 255).astype(np.uint8).tobytes()
    elif kind == "s24":
        ints = np.clip(np.rint(frames * 2**23), -(2**23), 2**23 - 1).astype("<i4")
        data = ints.view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    else:
        bits = width * 8
        top = 2 ** (bits - 1)
        data = np.clip(np.rint(frames * top), -top, top - 1).astype(f"<i{width}").tobytes()
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(width)
        out.setframerate(rate)
        out.writeframes(data)


def peak_hz(samples: np.ndarray, rate: int = SAMPLE_RATE) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[np.argmax(spectrum)])


def riff(*chunks: tuple[bytes, bytes], form: bytes = b"WAVE", riff_id: bytes = b"RIFF") -> bytes:
    body = form + b"".join(
        cid + struct.pack("<I", len(data)) + data + b"\0" * (len(data) & 1) for cid, data in chunks
    )
    return riff_id + struct.pack("<I", len(body)) + body


def fmt_chunk(
    tag: int = 1, channels: int = 1, rate: int = 16000, bits: int = 16
) -> tuple[bytes, bytes]:
    align = channels * bits // 8
    return b"fmt ", struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits)


# --- decoding ------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100, 48000])
@pytest.mark.parametrize("kind", ["u8", "s16", "s24", "s32", "f32", "f64"])
def test_any_rate_and_width_becomes_16k_mono(tmp_path: Path, rate: int, kind: str) -> None:
    path = tmp_path / f"tone-{rate}-{kind}.wav"
    source = sine(440, 1.0, rate)
    write_pcm_wav(path, source, rate, kind)

    audio = load_wav(path)

    assert audio.samples.dtype == np.int16
    assert audio.samples.ndim == 1
    assert abs(len(audio.samples) - SAMPLE_RATE) <= 1
    assert audio.duration_s == pytest.approx(1.0, abs=1 / SAMPLE_RATE)
    assert (audio.source_rate, audio.source_channels) == (rate, 1)
    assert audio.source_width == {"u8": 1, "s16": 2, "s24": 3, "s32": 4, "f32": 4, "f64": 8}[kind]
    assert peak_hz(audio.samples) == pytest.approx(440, abs=2)
    # Level survives: a 0.5 sine peaks near 16384.
    assert 15500 < audio.peak < 17300
    assert not audio.clipped
    assert not audio.is_silent


@pytest.mark.parametrize("kind", ["s16", "s24", "f32"])
def test_stereo_is_averaged_to_mono(tmp_path: Path, kind: str) -> None:
    left = sine(440, 0.5, 44100, amplitude=0.6)
    right = sine(1000, 0.5, 44100, amplitude=0.2)
    path = tmp_path / "stereo.wav"
    write_pcm_wav(path, np.stack([left, right], axis=1), 44100, kind)

    audio = load_wav(path)

    assert audio.source_channels == 2
    assert abs(len(audio.samples) - 8000) <= 1
    spectrum = np.abs(np.fft.rfft(audio.samples.astype(np.float64)))
    freqs = np.fft.rfftfreq(len(audio.samples), 1 / SAMPLE_RATE)
    at = {f: spectrum[np.argmin(np.abs(freqs - f))] for f in (440, 1000)}
    assert at[440] / at[1000] == pytest.approx(3.0, rel=0.1)  # mean of channels, not one channel


def test_16k_int16_round_trips_exactly(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    samples = rng.integers(-20000, 20000, 4000).astype(np.int16)
    write_wav(tmp_path / "x.wav", samples)
    audio = load_wav(tmp_path / "x.wav")
    assert np.array_equal(audio.samples, samples)
    assert audio.pcm == samples.astype("<i2").tobytes()


def test_chunks_are_10ms_frames_with_padded_tail() -> None:
    audio = from_float(np.full(16000 + 50, 0.25, dtype=np.float32), SAMPLE_RATE)
    frames = list(chunks(audio))
    assert len(frames) == 101
    assert all(len(frame) == 320 for frame in frames)
    assert frames[-1][100:] == bytes(220)
    assert b"".join(frames)[: len(audio.pcm)] == audio.pcm


def test_extra_chunks_and_odd_padding_are_skipped(tmp_path: Path) -> None:
    pcm = (np.arange(1600, dtype=np.int16) * 7).astype("<i2").tobytes()
    path = tmp_path / "list.wav"
    path.write_bytes(riff(fmt_chunk(), (b"LIST", b"abc"), (b"data", pcm), (b"id3 ", b"tail!")))
    audio = load_wav(path)
    assert np.array_equal(audio.samples, np.frombuffer(pcm, "<i2"))


def test_streaming_wav_bytes_with_placeholder_size() -> None:
    pcm = (sine(300, 0.2, 22050) * 32767).astype("<i2").tobytes()
    header = riff(fmt_chunk(rate=22050), (b"data", b""))[:-8]
    data = header + b"data" + struct.pack("<I", 0x7FFFF000) + pcm
    samples, rate = read_wav_bytes(data, streaming=True)
    assert rate == 22050
    assert len(samples) == len(pcm) // 2
    with pytest.raises(AudioError) as info:
        read_wav_bytes(data, name="espeak.wav")
    assert info.value.code == "audio_truncated"


# --- levels --------------------------------------------------------------------------------


def test_silence_and_near_silence_are_silent() -> None:
    assert from_float(np.zeros(8000), SAMPLE_RATE).is_silent
    quiet = from_float(sine(440, 0.5, SAMPLE_RATE, amplitude=10 ** (-70 / 20)), SAMPLE_RATE)
    assert quiet.is_silent
    audible = from_float(sine(440, 0.5, SAMPLE_RATE, amplitude=10 ** (-50 / 20)), SAMPLE_RATE)
    assert not audible.is_silent


@pytest.mark.parametrize("kind", ["s16", "s24", "f32"])
def test_clipped_square_wave_is_clipped(tmp_path: Path, kind: str) -> None:
    square = np.sign(sine(200, 0.5, 48000)) * 1.0
    path = tmp_path / "square.wav"
    write_pcm_wav(path, square, 48000, kind)
    audio = load_wav(path)
    assert audio.clipped
    assert audio.clipped_fraction > 0.9


def test_float_over_full_scale_counts_as_clipped() -> None:
    x = sine(440, 0.5, SAMPLE_RATE, amplitude=1.5)
    audio = from_float(x, SAMPLE_RATE)
    assert audio.clipped
    assert audio.peak >= 32767


# --- raw PCM -------------------------------------------------------------------------------


def test_pcm_from_stdin() -> None:
    samples = np.array([0, 1000, -1000, 32767, -32768, 5], dtype="<i2")
    audio = from_pcm(samples.tobytes())
    assert np.array_equal(audio.samples, samples)
    stereo = from_pcm(
        (sine(440, 0.5, 48000) * 20000).astype("<i2").repeat(2).tobytes(), rate=48000, channels=2
    )
    assert stereo.source_channels == 2
    assert abs(len(stereo.samples) - 8000) <= 1
    assert peak_hz(stereo.samples) == pytest.approx(440, abs=3)


def test_pcm_odd_length_and_empty_are_errors() -> None:
    with pytest.raises(AudioError) as info:
        from_pcm(b"\x00\x01\x02")
    assert info.value.code == "audio_truncated"
    assert "3 bytes" in str(info.value)
    with pytest.raises(AudioError) as info:
        from_pcm(b"")
    assert info.value.code == "audio_empty"


# --- malformed files -----------------------------------------------------------------------


def good_wav_bytes() -> bytes:
    pcm = (sine(440, 0.25, SAMPLE_RATE) * 20000).astype("<i2").tobytes()
    return riff(fmt_chunk(), (b"data", pcm))


@pytest.mark.parametrize(
    ("name", "content", "code", "words"),
    [
        ("random.wav", np.random.default_rng(0).bytes(4000), "audio_malformed", "no RIFF header"),
        ("notes.wav", b"this is not audio\n" * 20, "audio_malformed", "no RIFF header"),
        ("empty.wav", b"", "audio_malformed", "empty"),
        ("header.wav", good_wav_bytes()[:30], "audio_truncated", "truncated"),
        ("riffonly.wav", b"RIFF\x10\0\0\0WAVE", "audio_truncated", "ends before"),
        (
            "data.wav",
            good_wav_bytes()[:-1000],
            "audio_truncated",
            "declares 8000 bytes of audio, 7000 present",
        ),
        (
            "mulaw.wav",
            riff(fmt_chunk(tag=7, bits=8), (b"data", b"\x7f" * 800)),
            "audio_format",
            "mu-law",
        ),
        (
            "alaw.wav",
            riff(fmt_chunk(tag=6, bits=8), (b"data", b"\x55" * 800)),
            "audio_format",
            "A-law",
        ),
        (
            "adpcm.wav",
            riff(fmt_chunk(tag=0x11, bits=4), (b"data", b"\0" * 800)),
            "audio_format",
            "IMA ADPCM",
        ),
        ("pcm12.wav", riff(fmt_chunk(bits=12), (b"data", b"\0" * 800)), "audio_format", "12-bit"),
        (
            "rifx.wav",
            riff(fmt_chunk(), (b"data", b"\0" * 800), riff_id=b"RIFX"),
            "audio_format",
            "RIFX",
        ),
        (
            "avi.wav",
            riff(fmt_chunk(), (b"data", b"\0" * 800), form=b"AVI "),
            "audio_malformed",
            "WAVE",
        ),
        ("zero.wav", riff(fmt_chunk(), (b"data", b"")), "audio_empty", "zero frames"),
        ("nofmt.wav", riff((b"data", b"\0" * 800)), "audio_malformed", "before the fmt chunk"),
        (
            "frames.wav",
            riff(fmt_chunk(channels=2), (b"data", b"\0" * 802)),
            "audio_malformed",
            "whole number",
        ),
    ],
)
def test_malformed_files_raise_coded_errors_naming_the_file(
    tmp_path: Path, name: str, content: bytes, code: str, words: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(AudioError) as info:
        load_wav(path)
    assert info.value.code == code
    assert str(path) in str(info.value)
    assert words in str(info.value)


def test_zero_frame_file_from_wave_module(tmp_path: Path) -> None:
    write_wav(tmp_path / "zero.wav", np.zeros(0, dtype=np.int16))
    with pytest.raises(AudioError) as info:
        load_wav(tmp_path / "zero.wav")
    assert info.value.code == "audio_empty"


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(AudioError) as info:
        load_wav(tmp_path / "nope.wav")
    assert info.value.code == "audio_missing"
    assert "nope.wav" in str(info.value)
    with pytest.raises(AudioError) as info:
        load_wav(tmp_path)
    assert info.value.code == "audio_missing"


def test_too_long_is_refused_before_decoding(tmp_path: Path) -> None:
    write_wav(tmp_path / "long.wav", sine(440, 2.0, 8000), rate=8000)
    with pytest.raises(AudioError) as info:
        load_wav(tmp_path / "long.wav", max_seconds=1.5)
    assert info.value.code == "audio_too_long"
    assert "2.0 s" in str(info.value)
    with pytest.raises(AudioError) as info:
        from_pcm(bytes(64000), max_seconds=1.0)
    assert info.value.code == "audio_too_long"


def test_non_finite_float_samples_are_malformed(tmp_path: Path) -> None:
    x = sine(440, 0.1, SAMPLE_RATE)
    x[10] = np.nan
    scipy.io.wavfile.write(tmp_path / "nan.wav", SAMPLE_RATE, x.astype(np.float32))
    with pytest.raises(AudioError) as info:
        load_wav(tmp_path / "nan.wav")
    assert info.value.code == "audio_malformed"
    assert "NaN" in str(info.value)


def test_resample_keeps_frequency_and_length() -> None:
    out = resample(sine(1000, 1.0, 44100).astype(np.float32), 44100, SAMPLE_RATE)
    assert out.dtype == np.float32
    assert abs(len(out) - SAMPLE_RATE) <= 1
    assert peak_hz(out) == pytest.approx(1000, abs=2)


def test_audio_is_read_only() -> None:
    audio: Audio = from_float(np.zeros(160), SAMPLE_RATE)
    with pytest.raises(ValueError):
        audio.samples[0] = 1
