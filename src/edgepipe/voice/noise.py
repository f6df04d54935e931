"""Synthetic non-speech noise for tests and benchmarks, and mixing at a given SNR.

Every generator takes ``(seconds, seed)`` and returns float32 at 16 kHz in -1..1, the same
array for the same seed. They imitate the kitchen and living-room sounds a voice front end has
to ignore: a fan, music (harmonic and rhythmic, so a VAD will sometimes call it voiced), running
water and a blender. numpy only.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from edgepipe.voice.audio import SAMPLE_RATE, AudioError

FloatArray = npt.NDArray[np.float32]

_ACTIVE_FRACTION = 0.01
"""Speech samples above this fraction of the peak count as active in :func:`mix_at_snr`."""


def _length(seconds: float) -> int:
    n = round(seconds * SAMPLE_RATE)
    if n < 1:
        raise ValueError(f"noise length must be positive, got {seconds} s")
    return n


def _coloured(
    rng: np.random.Generator, n: int, exponent: float, low: float, high: float
) -> FloatArray:
    """Gaussian noise with a ``1/f**exponent`` power spectrum between ``low`` and ``high`` Hz."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)
    gain = np.zeros_like(freqs)
    band = (freqs >= low) & (freqs <= high)
    gain[band] = freqs[band] ** (-exponent / 2.0)
    # Soft edges (one octave) so the band does not ring.
    below = (freqs >= low / 2) & (freqs < low)
    gain[below] = low ** (-exponent / 2.0) * ((freqs[below] - low / 2) / (low / 2))
    above = (freqs > high) & (freqs <= min(high * 2, SAMPLE_RATE / 2))
    gain[above] = high ** (-exponent / 2.0) * (1.0 - (freqs[above] - high) / high)
    out = np.fft.irfft(spectrum * gain, n)
    return _normalise(out, 1.0)


def _envelope(
    rng: np.random.Generator, n: int, rate_hz: float, low: float, high: float
) -> FloatArray:
    """A smooth random envelope between ``low`` and ``high`` changing about ``rate_hz`` times/s."""
    points = max(2, int(n / SAMPLE_RATE * rate_hz) + 2)
    values = rng.uniform(low, high, points)
    # Raised-cosine interpolation between random control points: smooth, no corners.
    position = np.arange(n) * ((points - 1) / max(n - 1, 1))
    index = np.minimum(position.astype(np.int64), points - 2)
    weight = (1.0 - np.cos(np.pi * (position - index))) / 2.0
    env = values[index] * (1.0 - weight) + values[index + 1] * weight
    return np.asarray(env, dtype=np.float32)


def _normalise(x: npt.NDArray[np.floating], peak: float) -> FloatArray:
    top = float(np.max(np.abs(x))) if x.size else 0.0
    if top == 0.0:
        return np.zeros(x.shape, dtype=np.float32)
    return np.asarray(np.clip(x * (peak / top), -1.0, 1.0), dtype=np.float32)


def fan(seconds: float, seed: int = 0) -> FloatArray:
    """Broadband fan noise (between pink and brown) with a mains/motor hum at 50-120 Hz."""
    rng = np.random.default_rng(seed)
    n = _length(seconds)
    t = np.arange(n) / SAMPLE_RATE
    broadband = _coloured(rng, n, exponent=1.5, low=20.0, high=6000.0)
    hum_f = rng.uniform(50.0, 120.0)
    hum = sum(
        (0.35 / k) * np.sin(2 * np.pi * hum_f * k * t + rng.uniform(0, 2 * np.pi))
        for k in (1, 2, 3)
    )
    blades = 1.0 + 0.1 * np.sin(2 * np.pi * rng.uniform(5.0, 15.0) * t)
    return _normalise((broadband * blades + hum) * _envelope(rng, n, 0.5, 0.9, 1.0), 0.5)


_PENTATONIC = np.array([0, 3, 5, 7, 10])  # minor pentatonic, semitones


def _tone(freq: float, n: int, harmonics: int, decay: float) -> npt.NDArray[np.float64]:
    t = np.arange(n) / SAMPLE_RATE
    out = np.zeros(n)
    for k in range(1, harmonics + 1):
        if freq * k >= SAMPLE_RATE / 2:
            break
        out += decay ** (k - 1) * np.sin(2 * np.pi * freq * k * t)
    return out


def music(seconds: float, seed: int = 0) -> FloatArray:
    """A melody of harmonic tones over chords, notes every 200-600 ms, with percussion clicks.

    Harmonic, pitched and rhythmic: a VAD will sometimes take it for voice, which is the point.
    """
    rng = np.random.default_rng(seed)
    n = _length(seconds)
    out = np.zeros(n)
    root = 220.0 * 2 ** (rng.integers(-3, 4) / 12)
    beat = int(rng.uniform(0.2, 0.3) * SAMPLE_RATE)
    attack = int(0.01 * SAMPLE_RATE)
    pos = 0
    degree = 0
    while pos < n:
        length = min(n - pos, int(rng.uniform(0.2, 0.6) * SAMPLE_RATE))
        degree = int(np.clip(degree + rng.integers(-2, 3), -5, 9))
        octave, step = divmod(degree, len(_PENTATONIC))
        freq = root * 2 ** (octave + _PENTATONIC[step] / 12)
        note = _tone(freq, length, harmonics=6, decay=0.6)
        if rng.random() < 0.5:  # chord: fifth below the melody and the bass root
            note += 0.5 * _tone(freq * 2 ** (-5 / 12), length, 4, 0.5)
            note += 0.6 * _tone(root / 2, length, 5, 0.7)
        env = np.exp(-np.arange(length) / (0.25 * SAMPLE_RATE))
        env[: min(attack, length)] *= np.linspace(0, 1, min(attack, length))
        env[-min(attack, length) :] *= np.linspace(1, 0, min(attack, length))
        out[pos : pos + length] += note * env
        pos += length
    # Percussion: a decaying noise burst on each beat, louder on the downbeat.
    click_len = int(0.03 * SAMPLE_RATE)
    click_env = np.exp(-np.arange(click_len) / (0.005 * SAMPLE_RATE))
    for i, start in enumerate(range(0, n, beat)):
        length = min(click_len, n - start)
        level = 1.5 if i % 4 == 0 else 0.7
        out[start : start + length] += level * rng.standard_normal(length) * click_env[:length]
    return _normalise(out, 0.7)


def water(seconds: float, seed: int = 0) -> FloatArray:
    """Running water: band-passed noise (300-4000 Hz) with slow and fast random modulation."""
    rng = np.random.default_rng(seed)
    n = _length(seconds)
    hiss = _coloured(rng, n, exponent=0.3, low=300.0, high=4000.0)
    slow = _envelope(rng, n, 1.5, 0.5, 1.0)
    gurgle = _envelope(rng, n, 25.0, 0.7, 1.0)
    return _normalise(hiss * slow * gurgle, 0.6)


def blender(seconds: float, seed: int = 0) -> FloatArray:
    """A loud motor: a jittering harmonic series at 150-300 Hz over broadband noise."""
    rng = np.random.default_rng(seed)
    n = _length(seconds)
    f0 = rng.uniform(150.0, 300.0)
    jitter = _envelope(rng, n, 8.0, -0.03, 0.03)
    phase = 2 * np.pi * np.cumsum(f0 * (1.0 + jitter)) / SAMPLE_RATE
    harmonic = np.zeros(n)
    for k in range(1, 16):
        if f0 * k * 1.03 >= SAMPLE_RATE / 2:
            break
        harmonic += (1.0 / k) * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
    harmonic /= np.max(np.abs(harmonic))
    noise = _coloured(rng, n, exponent=0.5, low=100.0, high=7000.0)
    load = _envelope(rng, n, 2.0, 0.75, 1.0)
    return _normalise((0.7 * harmonic + 0.5 * noise) * load, 0.9)


NOISES: dict[str, Callable[[float, int], FloatArray]] = {
    "fan": fan,
    "music": music,
    "water": water,
    "blender": blender,
}
"""Noise generators by name."""


def fit_noise(noise: npt.ArrayLike, length: int) -> FloatArray:
    """Loop or trim ``noise`` to ``length`` samples."""
    array = np.asarray(noise, dtype=np.float32).reshape(-1)
    if array.size == 0:
        raise AudioError("noise has no samples", code="audio_empty")
    return np.resize(array, length).astype(np.float32)


def speech_power(speech: npt.ArrayLike) -> float:
    """Mean power over the active samples: those with ``|x|`` above 1 % of the peak."""
    array = np.asarray(speech, dtype=np.float64).reshape(-1)
    peak = float(np.max(np.abs(array))) if array.size else 0.0
    if peak == 0.0:
        raise AudioError("speech is silent: SNR is undefined", code="audio_empty")
    active = array[np.abs(array) > _ACTIVE_FRACTION * peak]
    return float(np.mean(active**2))


def mix_at_snr(speech: npt.ArrayLike, noise: npt.ArrayLike, snr_db: float) -> FloatArray:
    """``speech`` plus ``noise`` scaled to the given SNR, as float32 with peak at most 0.9.

    Speech power is measured over the speech's active samples (``|x|`` above 1 % of its peak,
    so leading and trailing silence do not lower it); noise power over the whole noise after it
    is looped or trimmed to the speech's length. If the sum peaks above 0.9 the whole mix is
    scaled down, which keeps the SNR.
    """
    clean = np.asarray(speech, dtype=np.float64).reshape(-1)
    fitted = fit_noise(noise, clean.size).astype(np.float64)
    noise_power = float(np.mean(fitted**2))
    if noise_power == 0.0:
        raise AudioError("noise is silent: SNR is undefined", code="audio_empty")
    gain = np.sqrt(speech_power(clean) / (noise_power * 10.0 ** (snr_db / 10.0)))
    mixed = clean + gain * fitted
    peak = float(np.max(np.abs(mixed)))
    if peak > 0.9:
        mixed *= 0.9 / peak
    return np.asarray(np.clip(mixed, -1.0, 1.0), dtype=np.float32)
