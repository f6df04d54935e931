"""Audio in and out: WAV files and raw PCM in, 16 kHz mono int16 out.

Everything downstream (wake word, VAD, speech recognition) works on :class:`Audio`: 16 kHz,
mono, little-endian int16. :func:`load_wav` accepts any sample rate, 8/16/24/32-bit PCM and
32/64-bit float WAV with any channel count; channels are averaged and the signal is resampled
with soxr (``HQ``). The header is checked here before scipy decodes the samples, so a broken
file gets an :class:`AudioError` whose message names the file and what is wrong with it.

Long on purpose: most of its ~470 lines are the header checks, one function per way a WAV file
can be wrong, and they belong with the reader that relies on them; no class is large.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt
import scipy.io.wavfile
import soxr  # type: ignore[import-untyped, unused-ignore]

from edgepipe.core.errors import EdgepipeError

SAMPLE_RATE = 16000
"""The rate every :class:`Audio` is at."""
FRAME_MS = 10
"""The streaming unit: wake word, VAD and recognisers are fed 10 ms at a time."""
FRAME_BYTES = SAMPLE_RATE * FRAME_MS // 1000 * 2
"""One frame of 16-bit mono PCM."""

SILENCE_PEAK = 33
"""An :class:`Audio` whose absolute peak is below this (about -60 dBFS) is silent."""

CLIPPED_FRACTION = 0.001
"""An :class:`Audio` with more than this share of source samples at full scale is clipped."""

_FORMAT_PCM = 0x0001
_FORMAT_FLOAT = 0x0003
_FORMAT_EXTENSIBLE = 0xFFFE
_FORMAT_NAMES = {
    0x0002: "Microsoft ADPCM",
    0x0006: "A-law",
    0x0007: "mu-law",
    0x0011: "IMA ADPCM",
    0x0031: "GSM 6.10",
    0x0050: "MPEG",
    0x0055: "MP3",
}
_STREAMING_SIZES = (0xFFFFFFFF, 0x7FFFFFFF, 0x7FFFF000, 0)


class AudioError(EdgepipeError):
    """Audio could not be read or is unusable.

    Codes: ``audio_missing``, ``audio_malformed``, ``audio_truncated``, ``audio_empty``,
    ``audio_format`` (unsupported encoding), ``audio_too_long``.
    """

    default_code = "audio_invalid"


@dataclass(frozen=True, eq=False)
class Audio:
    """16 kHz mono int16 audio plus what the source was."""

    samples: npt.NDArray[np.int16]
    """Mono samples at :data:`SAMPLE_RATE` (read-only)."""
    source_rate: int
    source_channels: int
    source_width: int
    """Bytes per source sample (4 for float32, 8 for float64)."""
    clipped_fraction: float
    """Share of source samples within one LSB of full scale, before any conversion."""

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return len(self.samples) / SAMPLE_RATE

    @property
    def pcm(self) -> bytes:
        """Little-endian int16 PCM bytes."""
        return self.samples.astype("<i2", copy=False).tobytes()

    @property
    def peak(self) -> int:
        """Largest absolute sample value (0..32768)."""
        if len(self.samples) == 0:
            return 0
        return int(np.max(np.abs(self.samples.astype(np.int32))))

    @property
    def is_silent(self) -> bool:
        """Peak below about -60 dBFS."""
        return self.peak < SILENCE_PEAK

    @property
    def clipped(self) -> bool:
        """More than 0.1 % of the source samples sit at full scale."""
        return self.clipped_fraction > CLIPPED_FRACTION

    def as_float(self) -> npt.NDArray[np.float32]:
        """Samples as float32 in -1..1."""
        return (self.samples.astype(np.float32) / 32768.0).astype(np.float32)


@dataclass(frozen=True)
class _WavHeader:
    format_tag: int
    """Resolved tag: 1 (PCM) or 3 (float); extensible files report their sub-format."""
    channels: int
    rate: int
    bits: int
    block_align: int
    data_offset: int
    data_size: int
    """Bytes of sample data actually usable (whole frames)."""


def _parse_header(fh: BinaryIO, total: int, name: str, *, streaming: bool) -> _WavHeader:
    """Walk the RIFF chunks of ``fh`` (``total`` bytes long) and check them."""
    head = fh.read(12)
    if len(head) < 4 or head[:4] != b"RIFF":
        if head[:4] in (b"RIFX", b"RF64"):
            raise AudioError(
                f"unsupported WAV variant ({head[:4].decode()}; only little-endian RIFF is "
                f"read): {name}",
                code="audio_format",
            )
        if len(head) == 0:
            raise AudioError(f"not a WAV file (file is empty): {name}", code="audio_malformed")
        raise AudioError(f"not a WAV file (no RIFF header): {name}", code="audio_malformed")
    if len(head) < 12:
        raise AudioError(
            f"WAV header truncated ({total} bytes, RIFF header needs 12): {name}",
            code="audio_truncated",
        )
    if head[8:12] != b"WAVE":
        raise AudioError(
            f"not a WAV file (RIFF form type {head[8:12]!r}, expected 'WAVE'): {name}",
            code="audio_malformed",
        )
    fmt: tuple[int, int, int, int, int] | None = None  # tag, channels, rate, align, bits
    pos = 12
    while True:
        chunk = fh.read(8)
        if len(chunk) < 8:
            where = "before the data chunk" if fmt else "before the fmt chunk"
            raise AudioError(
                f"WAV file ends {where} ({total} bytes): {name}", code="audio_truncated"
            )
        chunk_id, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
        pos += 8
        if chunk_id == b"fmt ":
            if size < 16:
                raise AudioError(
                    f"WAV fmt chunk too short ({size} bytes, needs 16): {name}",
                    code="audio_malformed",
                )
            body = fh.read(size)
            if len(body) < size:
                raise AudioError(
                    f"WAV header truncated (fmt chunk declares {size} bytes, "
                    f"{len(body)} present): {name}",
                    code="audio_truncated",
                )
            tag, channels, rate, _byte_rate, align, bits = struct.unpack("<HHIIHH", body[:16])
            if tag == _FORMAT_EXTENSIBLE:
                if size < 40:
                    raise AudioError(
                        f"WAV extensible fmt chunk too short ({size} bytes, needs 40): {name}",
                        code="audio_malformed",
                    )
                tag = struct.unpack("<H", body[24:26])[0]
            fmt = (tag, channels, rate, align, bits)
            if size & 1:
                fh.seek(1, os.SEEK_CUR)
        elif chunk_id == b"data":
            if fmt is None:
                raise AudioError(
                    f"WAV data chunk comes before the fmt chunk: {name}", code="audio_malformed"
                )
            return _check_format(fmt, pos, size, total, name, streaming=streaming)
        else:
            fh.seek(size + (size & 1), os.SEEK_CUR)
        pos += size + (size & 1)
        if pos > total:
            raise AudioError(
                f"WAV file ends inside the {chunk_id.decode('latin-1')!r} chunk: {name}",
                code="audio_truncated",
            )


def _check_format(
    fmt: tuple[int, int, int, int, int],
    data_offset: int,
    declared: int,
    total: int,
    name: str,
    *,
    streaming: bool,
) -> _WavHeader:
    tag, channels, rate, align, bits = fmt
    if tag not in (_FORMAT_PCM, _FORMAT_FLOAT):
        label = _FORMAT_NAMES.get(tag, f"format tag 0x{tag:04x}")
        raise AudioError(
            f"unsupported WAV encoding {label} (only PCM and IEEE float are read; convert with "
            f"`sox in.wav -e signed-integer -b 16 out.wav`): {name}",
            code="audio_format",
        )
    supported_bits = (8, 16, 24, 32) if tag == _FORMAT_PCM else (32, 64)
    kind = "PCM" if tag == _FORMAT_PCM else "float"
    if bits not in supported_bits:
        raise AudioError(
            f"unsupported WAV sample size: {bits}-bit {kind}: {name}", code="audio_format"
        )
    if channels < 1:
        raise AudioError(f"WAV header declares {channels} channels: {name}", code="audio_malformed")
    if rate < 1:
        raise AudioError(f"WAV header declares sample rate {rate}: {name}", code="audio_malformed")
    if align != channels * bits // 8:
        raise AudioError(
            f"WAV header inconsistent: block align {align} for {channels} channel(s) of "
            f"{bits}-bit samples: {name}",
            code="audio_malformed",
        )
    present = total - data_offset
    if declared > present:
        if streaming and declared in _STREAMING_SIZES:
            declared = present - present % align
        else:
            raise AudioError(
                f"WAV data truncated: header declares {declared} bytes of audio, "
                f"{present} present: {name}",
                code="audio_truncated",
            )
    elif streaming and declared == 0:
        declared = present - present % align
    if declared % align:
        raise AudioError(
            f"WAV data chunk size {declared} is not a whole number of {align}-byte frames: {name}",
            code="audio_malformed",
        )
    if declared == 0:
        raise AudioError(f"WAV file has no audio (zero frames): {name}", code="audio_empty")
    return _WavHeader(tag, channels, rate, bits, align, data_offset, declared)


def _check_length(frames: int, rate: int, max_seconds: float, name: str) -> None:
    seconds = frames / rate
    if seconds > max_seconds:
        raise AudioError(
            f"audio too long: {seconds:.1f} s, the limit is {max_seconds:g} s: {name}",
            code="audio_too_long",
        )


def _to_float(data: np.ndarray, bits: int) -> tuple[npt.NDArray[np.float32], float]:
    """Source samples (as scipy returns them) to float32 -1..1, plus the clipped fraction."""
    if data.dtype.kind == "f":
        values = data.astype(np.float32)
        if not np.all(np.isfinite(values)):
            raise ValueError("contains NaN or infinite samples")
        clipped = np.count_nonzero(np.abs(values) >= 1.0 - 2.0**-15)
    elif data.dtype == np.uint8:
        centred = data.astype(np.int16) - 128
        clipped = np.count_nonzero((centred >= 126) | (centred <= -127))
        values = centred.astype(np.float32) / 128.0
    else:
        info = np.iinfo(data.dtype)
        # scipy returns 24-bit samples in the top bytes of an int32: one LSB is 2**(32-bits).
        lsb = 1 << (info.bits - bits) if data.dtype == np.int32 else 1
        clipped = np.count_nonzero((data >= info.max - lsb) | (data <= info.min + lsb))
        values = (data.astype(np.float64) / -float(info.min)).astype(np.float32)
    if values.ndim == 2:
        values = values.mean(axis=1, dtype=np.float32)
    size = data.size
    return values, (clipped / size if size else 0.0)


def _to_int16(samples: npt.NDArray[np.floating]) -> npt.NDArray[np.int16]:
    scaled = np.clip(np.rint(samples.astype(np.float64) * 32768.0), -32768, 32767)
    out = scaled.astype(np.int16)
    out.setflags(write=False)
    return out


def _make_audio(
    mono: npt.NDArray[np.float32], rate: int, channels: int, width: int, clipped: float
) -> Audio:
    return Audio(
        samples=_to_int16(resample(mono, rate, SAMPLE_RATE)),
        source_rate=rate,
        source_channels=channels,
        source_width=width,
        clipped_fraction=clipped,
    )


def _decode(
    fh: BinaryIO, total: int, name: str, *, streaming: bool, max_seconds: float | None
) -> tuple[npt.NDArray[np.float32], float, _WavHeader]:
    header = _parse_header(fh, total, name, streaming=streaming)
    if max_seconds is not None:
        _check_length(header.data_size // header.block_align, header.rate, max_seconds, name)
    fh.seek(0)
    raw = bytearray(fh.read(header.data_offset + header.data_size))
    # Give scipy a file whose sizes match what is there (streams from espeak-ng and the like
    # declare a huge data chunk; trailing chunks after the data are dropped).
    struct.pack_into("<I", raw, 4, len(raw) - 8)
    struct.pack_into("<I", raw, header.data_offset - 4, header.data_size)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _rate, data = scipy.io.wavfile.read(io.BytesIO(bytes(raw)))
        mono, clipped = _to_float(np.asarray(data), header.bits)
    except (ValueError, TypeError, struct.error, MemoryError) as exc:
        raise AudioError(f"cannot decode WAV file ({exc}): {name}", code="audio_malformed") from exc
    return mono, clipped, header


def load_wav(path: str | os.PathLike[str], *, max_seconds: float = 600) -> Audio:
    """Read a WAV file into 16 kHz mono :class:`Audio`."""
    name = os.fspath(path)
    try:
        with Path(path).open("rb") as fh:
            total = os.fstat(fh.fileno()).st_size
            mono, clipped, header = _decode(
                fh, total, name, streaming=False, max_seconds=max_seconds
            )
    except FileNotFoundError as exc:
        raise AudioError(f"audio file not found: {name}", code="audio_missing") from exc
    except IsADirectoryError as exc:
        raise AudioError(
            f"audio path is a directory, not a file: {name}", code="audio_missing"
        ) from exc
    except OSError as exc:
        raise AudioError(f"cannot read audio file ({exc.strerror or exc}): {name}") from exc
    return _make_audio(mono, header.rate, header.channels, header.bits // 8, clipped)


def read_wav_bytes(
    data: bytes, *, name: str = "<wav bytes>", streaming: bool = False
) -> tuple[npt.NDArray[np.float32], int]:
    """Decode WAV bytes to mono float32 at the file's own rate; returns ``(samples, rate)``.

    ``streaming=True`` accepts the placeholder data sizes that tools writing to a pipe put in
    the header (``espeak-ng --stdout``) and reads whatever whole frames are there.
    """
    mono, _clipped, header = _decode(
        io.BytesIO(data), len(data), name, streaming=streaming, max_seconds=None
    )
    return mono, header.rate


def from_pcm(
    data: bytes,
    *,
    rate: int = SAMPLE_RATE,
    channels: int = 1,
    width: int = 2,
    max_seconds: float = 600,
    name: str = "<stdin>",
) -> Audio:
    """Raw signed little-endian PCM (unsigned for ``width=1``) to :class:`Audio`."""
    if width not in (1, 2, 3, 4):
        raise AudioError(
            f"unsupported PCM sample width {width} bytes (1-4): {name}", code="audio_format"
        )
    if channels < 1 or rate < 1:
        raise AudioError(
            f"invalid PCM layout: {channels} channel(s) at {rate} Hz: {name}", code="audio_format"
        )
    frame = channels * width
    if not data:
        raise AudioError(f"no audio data (0 bytes): {name}", code="audio_empty")
    if len(data) % frame:
        raise AudioError(
            f"PCM data truncated: {len(data)} bytes is not a whole number of {frame}-byte frames "
            f"({channels} channel(s) x {width} byte(s)): {name}",
            code="audio_truncated",
        )
    _check_length(len(data) // frame, rate, max_seconds, name)
    if width == 1:
        array: np.ndarray = np.frombuffer(data, dtype=np.uint8)
    elif width == 3:
        bytes3 = np.frombuffer(data, dtype=np.uint8).reshape(-1, 3)
        padded = np.zeros((len(bytes3), 4), dtype=np.uint8)
        padded[:, 1:] = bytes3
        array = padded.view("<i4").reshape(-1)
    else:
        array = np.frombuffer(data, dtype=f"<i{width}")
    if channels > 1:
        array = array.reshape(-1, channels)
    mono, clipped = _to_float(array, width * 8)
    return _make_audio(mono, rate, channels, width, clipped)


def from_float(samples: npt.ArrayLike, rate: int) -> Audio:
    """Float audio in -1..1 at any rate, shape ``(frames,)`` or ``(frames, channels)``."""
    array = np.asarray(samples)
    if array.dtype.kind not in "fiu":
        raise AudioError(f"expected float samples, got dtype {array.dtype}", code="audio_format")
    array = array.astype(np.float32, copy=False)
    if array.ndim not in (1, 2):
        raise AudioError(
            f"expected (frames,) or (frames, channels) samples, got shape {array.shape}",
            code="audio_format",
        )
    if rate < 1:
        raise AudioError(f"invalid sample rate {rate}", code="audio_format")
    if array.shape[0] == 0:
        raise AudioError("no audio (zero frames)", code="audio_empty")
    channels = 1 if array.ndim == 1 else array.shape[1]
    try:
        mono, clipped = _to_float(array, 32)
    except ValueError as exc:
        raise AudioError(f"invalid float audio: {exc}", code="audio_malformed") from exc
    return _make_audio(mono, rate, channels, 4, clipped)


def write_wav(
    path: str | os.PathLike[str], samples: npt.ArrayLike, rate: int = SAMPLE_RATE
) -> None:
    """Write int16 PCM WAV. Float input (-1..1) is scaled and clipped; 2-D is (frames, ch)."""
    array = np.asarray(samples)
    if array.ndim not in (1, 2):
        raise AudioError(f"cannot write samples of shape {array.shape}: {os.fspath(path)}")
    if array.dtype.kind == "f":
        array = _to_int16(array)
    elif array.dtype != np.int16:
        raise AudioError(
            f"write_wav takes int16 or float samples, got {array.dtype}: {os.fspath(path)}",
            code="audio_format",
        )
    channels = 1 if array.ndim == 1 else array.shape[1]
    try:
        with wave.open(os.fspath(path), "wb") as out:
            out.setnchannels(channels)
            out.setsampwidth(2)
            out.setframerate(rate)
            out.writeframes(array.astype("<i2", copy=False).tobytes())
    except OSError as exc:
        raise AudioError(
            f"cannot write WAV file ({exc.strerror or exc}): {os.fspath(path)}"
        ) from exc


def resample(samples: npt.ArrayLike, from_rate: int, to_rate: int) -> npt.NDArray[np.float32]:
    """Float32 resampling with soxr (``HQ``); a copy when the rates are equal."""
    array = np.asarray(samples, dtype=np.float32)
    if from_rate == to_rate or array.shape[0] == 0:
        return array.copy()
    out = soxr.resample(array, from_rate, to_rate, quality="HQ")
    return np.asarray(out, dtype=np.float32)


def chunks(audio: Audio, ms: int = FRAME_MS) -> Iterator[bytes]:
    """PCM frames of ``ms`` milliseconds; the last partial frame is zero-padded."""
    size = SAMPLE_RATE * ms // 1000
    if size < 1 or SAMPLE_RATE * ms % 1000:
        raise ValueError(f"frame length {ms} ms is not a whole number of samples at 16 kHz")
    pcm = audio.pcm
    step = size * 2
    for start in range(0, len(pcm), step):
        frame = pcm[start : start + step]
        if len(frame) < step:
            frame += bytes(step - len(frame))
        yield frame
