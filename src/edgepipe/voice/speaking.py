"""Speaking a reply: synthesis streamed in pieces to the reply sink, and when the first came.

:meth:`ReplyVoice.speak` hands every piece the synthesizer yields to :attr:`ReplyVoice.sink`
(a speaker, :meth:`edgepipe.voice.playback.Speaker.play`) as soon as it is ready, so the guest
hears the start of the reply while the rest is synthesized, and measures the wait for the first
sample from the moment the endpointer ended the utterance.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

from edgepipe.voice.contracts import ReplySink, Synthesizer


@dataclass(frozen=True, slots=True, kw_only=True)
class Spoken:
    """A reply, spoken."""

    audio: npt.NDArray[np.float32] | None
    """All of it (None when the synthesizer gave nothing)."""
    rate: int
    """Its sample rate."""
    voice: str
    """The voice that spoke it (the fallback's, when it took over)."""
    first_audio_ms: float | None
    """Wall time from the endpoint decision to the first sample."""
    stages_ms: Mapping[str, float]
    """``tts_first`` (from the start of synthesis to the first sample) and ``tts_total``."""


class ReplyVoice:
    """Speaks replies with ``tts``, each piece to :attr:`sink` as it is ready."""

    def __init__(self, tts: Synthesizer, sink: ReplySink | None = None) -> None:
        self.tts = tts
        self.sink = sink
        """Called with each piece of a reply (and its rate) as soon as it is synthesized."""

    def speak(self, text: str, decided_at: float) -> Spoken:
        """Synthesize ``text``; ``decided_at``: ``time.perf_counter()`` at the endpoint."""
        started = time.perf_counter()
        stages: dict[str, float] = {}
        parts: list[npt.NDArray[np.float32]] = []
        rate = int(self.tts.sample_rate)
        first_audio_ms: float | None = None
        sink = self.sink
        for piece in self.tts.synthesize(text):
            if not parts:
                now = time.perf_counter()
                first_audio_ms = (now - decided_at) * 1000
                stages["tts_first"] = (now - started) * 1000
            parts.append(piece)
            if sink is not None:
                sink(piece, rate)
        stages["tts_total"] = (time.perf_counter() - started) * 1000
        return Spoken(
            audio=np.concatenate(parts) if parts else None,
            rate=rate,
            voice=self.tts.last_used,
            first_audio_ms=first_audio_ms,
            stages_ms=MappingProxyType(stages),
        )
