"""Synthetic noise: right length, deterministic per seed; mixing hits the requested SNR."""

from __future__ import annotations

import numpy as np
import pytest

from edgepipe.voice.audio import SAMPLE_RATE, AudioError
from edgepipe.voice.noise import NOISES, fit_noise, mix_at_snr, speech_power


def speechlike(seconds: float = 1.5, lead: float = 0.4, tail: float = 0.6) -> np.ndarray:
    """Syllable-rate modulated harmonic tone between stretches of silence."""
    n = round(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    voice = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 8))
    syllables = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) + 0.1
    x = 0.3 * voice * syllables / np.max(np.abs(voice * syllables))
    return np.concatenate(
        [np.zeros(round(lead * SAMPLE_RATE)), x, np.zeros(round(tail * SAMPLE_RATE))]
    ).astype(np.float32)


@pytest.mark.parametrize("name", sorted(NOISES))
@pytest.mark.parametrize("seconds", [0.5, 1.25, 3.0])
def test_noise_length_range_and_type(name: str, seconds: float) -> None:
    x = NOISES[name](seconds, 0)
    assert x.dtype == np.float32
    assert x.shape == (round(seconds * SAMPLE_RATE),)
    assert np.all(np.abs(x) <= 1.0)
    assert np.sqrt(np.mean(x.astype(np.float64) ** 2)) > 0.02  # audible
    assert np.all(np.isfinite(x))


@pytest.mark.parametrize("name", sorted(NOISES))
def test_noise_is_deterministic_per_seed_and_differs_across_seeds(name: str) -> None:
    a, b, c = NOISES[name](1.0, 7), NOISES[name](1.0, 7), NOISES[name](1.0, 8)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_noises_have_their_character() -> None:
    def centroid(x: np.ndarray) -> float:
        power = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
        return float((power * np.fft.rfftfreq(len(x), 1 / SAMPLE_RATE)).sum() / power.sum())

    sounds = {name: fn(4.0, 1) for name, fn in NOISES.items()}
    # The fan rumbles low; running water hisses high.
    assert centroid(sounds["fan"]) < 500 < 1500 < centroid(sounds["water"])
    # The blender is the loudest.
    rms = {name: float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) for name, x in sounds.items()}
    assert max(rms, key=rms.__getitem__) == "blender"


def measured_snr(mix: np.ndarray, speech: np.ndarray, noise: np.ndarray) -> float:
    """Fit ``mix = a*speech + b*noise`` and report the SNR of the two fitted parts."""
    fitted = fit_noise(noise, len(speech)).astype(np.float64)
    basis = np.stack([speech.astype(np.float64), fitted], axis=1)
    (a, b), *_ = np.linalg.lstsq(basis, mix.astype(np.float64), rcond=None)
    return 10 * np.log10(a**2 * speech_power(speech) / (b**2 * np.mean(fitted**2)))


@pytest.mark.parametrize("name", sorted(NOISES))
@pytest.mark.parametrize("snr_db", [-5.0, 0.0, 10.0, 20.0])
def test_mix_at_snr_hits_the_requested_snr(name: str, snr_db: float) -> None:
    speech = speechlike()
    noise = NOISES[name](2.0, 3)
    mix = mix_at_snr(speech, noise, snr_db)
    assert mix.dtype == np.float32
    assert mix.shape == speech.shape
    assert np.max(np.abs(mix)) <= 0.9 + 1e-6
    assert measured_snr(mix, speech, noise) == pytest.approx(snr_db, abs=0.5)


def test_speech_power_ignores_silence() -> None:
    assert speech_power(speechlike(lead=0.0, tail=0.0)) == pytest.approx(
        speech_power(speechlike(lead=2.0, tail=2.0)), rel=1e-6
    )


def test_short_noise_is_looped() -> None:
    speech = speechlike()
    mix = mix_at_snr(speech, NOISES["fan"](0.3, 0), 0.0)
    silent_tail = mix[-round(0.5 * SAMPLE_RATE) :]
    assert np.sqrt(np.mean(silent_tail.astype(np.float64) ** 2)) > 0.01  # noise all the way


def test_silent_inputs_are_refused() -> None:
    with pytest.raises(AudioError):
        mix_at_snr(np.zeros(1000), NOISES["fan"](0.1, 0), 10.0)
    with pytest.raises(AudioError):
        mix_at_snr(speechlike(), np.zeros(100), 10.0)
