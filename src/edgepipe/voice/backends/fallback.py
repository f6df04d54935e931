"""A synthesizer with another behind it: the second takes over when the first fails."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt

from edgepipe.core.errors import EdgepipeError
from edgepipe.voice.audio import resample
from edgepipe.voice.backends._util import quote as _quote
from edgepipe.voice.contracts import Synthesizer, TtsError, split_sentences

_LOGGER = logging.getLogger(__name__)


class FallbackSynthesizer:
    """``primary`` sentence by sentence; once it raises, ``fallback`` does that sentence and
    the rest of the text. Each :meth:`synthesize` call starts with the primary again.

    The text is split with :func:`split_sentences`. The primary's pieces are passed on as they
    come (Piper streams a sentence in pieces); the fallback's sentences whole. A primary that
    fails part-way through a sentence it has begun to speak is rare (the text has been read by
    then; what is left is decoding), and the fallback then says that sentence again from its
    start: a restart is better than a missing half. Output is at the primary's rate.
    :attr:`last_used` names the backend of the last piece yielded and :attr:`last_error` keeps
    the primary's failure of the last call (``None`` if none).
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
                spoken = False
                try:
                    for piece in self.primary.synthesize(sentence):
                        self.last_used = self.primary.name
                        spoken = True
                        yield np.asarray(piece, dtype=np.float32).reshape(-1)
                except Exception as exc:
                    error = _translate(exc, self.primary.name)
                    self.last_error = error
                    use_fallback = True
                    _LOGGER.warning(
                        "%s failed (%s: %s)%s; using %s for the rest of %s",
                        self.primary.name,
                        error.code,
                        error,
                        " part-way through a sentence" if spoken else "",
                        self.fallback.name,
                        _quote(text),
                    )
                else:
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
