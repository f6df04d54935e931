"""Spoken test audio, synthesized on demand and cached on disk (nothing large is committed).

:class:`VoiceFixtures` turns text into 16 kHz float32 speech with a
:class:`~edgepipe.voice.contracts.Synthesizer` and caches each utterance as a WAV file under
``$EDGEPIPE_CACHE/voice-cache/<voice id>/<sha1>.wav`` (default ``$EDGEPIPE_HOME/cache``).
:func:`command_clip` lays out "wake word, pause, command, trailing silence" clips, optionally
mixed with synthetic noise, and reports where the command's speech starts and ends;
:func:`command_stream` puts several in one stream.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edgepipe.core.paths import cache_home
from edgepipe.voice.audio import SAMPLE_RATE, AudioError, load_wav, resample, write_wav
from edgepipe.voice.backends.espeak import EspeakSynthesizer
from edgepipe.voice.backends.piper import PiperSynthesizer
from edgepipe.voice.contracts import Synthesizer
from edgepipe.voice.noise import NOISES, mix_at_snr

FloatArray = npt.NDArray[np.float32]

ACTIVE_FRACTION = 0.01
"""A sample is voiced when ``|x|`` exceeds this fraction of the utterance's peak."""


class VoiceFixtures:
    """Text to 16 kHz float32 speech with one synthesizer, cached on disk and in memory.

    ``voice_id`` names the cache directory; it defaults to the synthesizer's ``voice_id``
    attribute (which includes speed settings) or else its ``name``.
    """

    def __init__(
        self,
        synthesizer: Synthesizer,
        cache_dir: Path | None = None,
        *,
        voice_id: str | None = None,
    ) -> None:
        self.synthesizer = synthesizer
        self.voice_id = voice_id or str(getattr(synthesizer, "voice_id", synthesizer.name))
        self.cache_dir = (
            Path(cache_dir) if cache_dir is not None else cache_home() / "voice-cache"
        ) / self.voice_id
        self._memory: dict[str, FloatArray] = {}

    def cache_path(self, text: str, variant: int = 0) -> Path:
        """Where the utterance for ``text`` is (or will be) cached."""
        digest = hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()
        return self.cache_dir / (f"{digest}.wav" if not variant else f"{digest}-v{variant}.wav")

    def speech(self, text: str, variant: int = 0) -> FloatArray:
        """All sentences of ``text``, concatenated, at 16 kHz (a read-only array).
        ``variant`` > 0: another take of the same text (seeded Piper only)."""
        key = text if not variant else f"{text}\0{variant}"
        if (cached := self._memory.get(key)) is not None:
            return cached
        path = self.cache_path(text, variant)
        audio: FloatArray | None = None
        if path.is_file():
            try:
                audio = load_wav(path).as_float()
            except AudioError:
                audio = None  # a damaged cache entry is rebuilt
        if audio is None:
            if variant:
                takes = getattr(self.synthesizer, "synthesize_variant", None)
                if takes is None:
                    raise ValueError(f"{self.voice_id} has one way of saying each text")
                sentences = list(takes(text, variant))
            else:
                sentences = list(self.synthesizer.synthesize(text))
            if not sentences:
                raise AudioError(f"no speech synthesized for {text!r}", code="audio_empty")
            joined = np.concatenate(sentences).astype(np.float32)
            at_16k = resample(joined, self.synthesizer.sample_rate, SAMPLE_RATE)
            _write_atomic(path, at_16k)
            audio = load_wav(path).as_float()  # identical whether cached or fresh
        audio.setflags(write=False)
        self._memory[key] = audio
        return audio


def _write_atomic(path: Path, samples: FloatArray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".wav")
    os.close(fd)
    try:
        write_wav(tmp, samples, SAMPLE_RATE)
        Path(tmp).replace(path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def compose(
    parts: list[npt.NDArray[np.floating] | float], *, rate: int = SAMPLE_RATE
) -> FloatArray:
    """Concatenate audio arrays; a float part is that many seconds of silence."""
    pieces: list[FloatArray] = []
    for part in parts:
        if isinstance(part, int | float):
            pieces.append(np.zeros(round(float(part) * rate), dtype=np.float32))
        else:
            pieces.append(np.asarray(part, dtype=np.float32).reshape(-1))
    if not pieces:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate(pieces)


def voiced_span(samples: npt.ArrayLike, rate: int = SAMPLE_RATE) -> tuple[float, float]:
    """Seconds of the first and last sample with ``|x|`` above 1 % of the peak."""
    array = np.abs(np.asarray(samples, dtype=np.float32).reshape(-1))
    peak = float(array.max()) if array.size else 0.0
    if peak == 0.0:
        raise AudioError("audio is silent: no voiced span", code="audio_empty")
    voiced = np.flatnonzero(array > ACTIVE_FRACTION * peak)
    return float(voiced[0]) / rate, float(voiced[-1] + 1) / rate


def command_clip(
    fixtures: VoiceFixtures,
    text: str,
    *,
    wake_word_text: str | None = "Okay Nabu.",
    wake_variant: int = 0,
    noise: str | None = None,
    snr_db: float | None = None,
    seed: int = 0,
    lead_s: float = 0.5,
    gap_s: float = 0.3,
    tail_s: float = 1.0,
) -> tuple[FloatArray, dict[str, Any]]:
    """``lead_s`` silence, wake word, ``gap_s``, command, ``tail_s`` silence; 16 kHz float32.

    ``wake_variant`` picks another take of the wake phrase (seeded Piper: see
    :meth:`~edgepipe.voice.backends.piper.PiperSynthesizer.synthesize_variant`).
    With ``noise`` (a key of :data:`~edgepipe.voice.noise.NOISES`) the whole clip is mixed with
    that noise at ``snr_db`` (default 10 dB). The metadata gives, in seconds of the clip,
    ``speech_start_s``/``speech_end_s`` (first and last voiced sample of the command, from the
    command's own samples), ``command_start_s``/``command_end_s`` (the command's segment),
    ``wake_start_s``/``wake_end_s`` (``None`` without a wake word) and ``duration_s``.
    """
    if noise is not None and noise not in NOISES:
        raise ValueError(f"unknown noise {noise!r}; known: {', '.join(sorted(NOISES))}")
    command = fixtures.speech(text)
    parts: list[npt.NDArray[np.floating] | float] = [lead_s]
    position = round(lead_s * SAMPLE_RATE)  # in samples, rounded as compose() rounds
    wake_start: float | None = None
    wake_end: float | None = None
    if wake_word_text:
        wake = fixtures.speech(wake_word_text, wake_variant)
        span = voiced_span(wake)
        wake_start = position / SAMPLE_RATE + span[0]
        wake_end = position / SAMPLE_RATE + span[1]
        parts += [wake, gap_s]
        position += len(wake) + round(gap_s * SAMPLE_RATE)
    parts += [command, tail_s]
    clip = compose(parts)
    command_start = position / SAMPLE_RATE
    voiced = voiced_span(command)
    if noise is not None:
        snr_db = 10.0 if snr_db is None else snr_db
        clip = mix_at_snr(clip, NOISES[noise](len(clip) / SAMPLE_RATE, seed), snr_db)
    meta: dict[str, Any] = {
        "text": text,
        "wake_word_text": wake_word_text,
        "voice": fixtures.voice_id,
        "speech_start_s": command_start + voiced[0],
        "speech_end_s": command_start + voiced[1],
        "command_start_s": command_start,
        "command_end_s": command_start + len(command) / SAMPLE_RATE,
        "wake_start_s": wake_start,
        "wake_end_s": wake_end,
        "duration_s": len(clip) / SAMPLE_RATE,
        "noise": noise,
        "snr_db": snr_db if noise is not None else None,
        "seed": seed,
    }
    return clip, meta


def command_stream(
    fixtures: VoiceFixtures,
    commands: Sequence[str],
    *,
    wake_word_text: str = "Okay Nabu.",
    lead_s: float = 0.5,
    gap_s: float = 0.3,
    pause_s: float = 2.0,
    tail_s: float = 1.0,
) -> tuple[FloatArray, list[dict[str, Any]]]:
    """One stream of several :func:`command_clip` layouts in a row: ``lead_s`` of silence, then
    for each command the wake phrase, ``gap_s``, the command and ``pause_s`` of silence
    (``tail_s`` after the last). The metadata of each command is :func:`command_clip`'s, its
    times in seconds of the whole stream."""
    parts: list[FloatArray] = [np.zeros(round(lead_s * SAMPLE_RATE), dtype=np.float32)]
    position = len(parts[0])
    metas: list[dict[str, Any]] = []
    for k, text in enumerate(commands):
        clip, meta = command_clip(
            fixtures,
            text,
            wake_word_text=wake_word_text,
            lead_s=0.0,
            gap_s=gap_s,
            tail_s=tail_s if k == len(commands) - 1 else pause_s,
        )
        offset = position / SAMPLE_RATE
        for key, value in list(meta.items()):
            if key.endswith("_s") and key != "duration_s" and value is not None:
                meta[key] = value + offset
        parts.append(clip)
        position += len(clip)
        metas.append(meta)
    return np.concatenate(parts), metas


def espeak_voice_fixtures(
    voice: str = "en-us", *, speed: int = 160, cache_dir: Path | None = None
) -> VoiceFixtures:
    """:class:`VoiceFixtures` speaking with espeak-ng."""
    return VoiceFixtures(EspeakSynthesizer(voice, speed=speed), cache_dir)


FIXTURE_SEED = 7
"""Piper's noise seed for test audio: the same text is the same audio on every machine."""


def piper_voice_fixtures(
    model_path: Path | None = None,
    *,
    length_scale: float | None = None,
    cache_dir: Path | None = None,
    seed: int | None = FIXTURE_SEED,
) -> VoiceFixtures:
    """:class:`VoiceFixtures` speaking with Piper (default voice: en_US joe medium), seeded
    (``seed``; None: Piper's own unseeded noise, different at every call)."""
    return VoiceFixtures(
        PiperSynthesizer(model_path, length_scale=length_scale, seed=seed), cache_dir
    )


def main(argv: list[str] | None = None) -> None:
    """``python -m edgepipe.testing.voicedata OUT.wav "text" [--voice piper|espeak] [--no-wake]``:
    a spoken command clip for trying ``edgepipe listen`` (used by ``make demo``)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m edgepipe.testing.voicedata")
    parser.add_argument("out")
    parser.add_argument("text")
    parser.add_argument("--voice", choices=("piper", "espeak"), default="piper")
    parser.add_argument("--no-wake", action="store_true")
    parser.add_argument("--noise", choices=sorted(NOISES), default=None)
    parser.add_argument("--snr", type=float, default=None)
    args = parser.parse_args(argv)
    fixtures = piper_voice_fixtures() if args.voice == "piper" else espeak_voice_fixtures()
    clip, _ = command_clip(
        fixtures,
        args.text,
        wake_word_text=None if args.no_wake else "Okay Nabu.",
        noise=args.noise,
        snr_db=args.snr,
    )
    write_wav(args.out, clip, SAMPLE_RATE)


if __name__ == "__main__":
    main()
