"""Voice activity detection and endpointing: a pure state machine over 10 ms speech probabilities.

The probabilities come from Silero VAD (:class:`SileroScorer`); the :class:`Endpointer` is
I/O-free so it can be tested frame by frame. An utterance starts after ``min_speech_ms`` of
voiced frames and ends after ``trailing_silence_ms`` of silence, or after only
``early_silence_ms`` when the caller says the words so far already form a whole command
(grammar-aware early endpointing), or at ``max_utterance_s``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import numpy as np

from edgepipe.errors import EdgepipeError
from edgepipe.models.onnx import cpu_session
from edgepipe.voice.audio import FRAME_MS


class VadError(EdgepipeError):
    default_code = "vad_unavailable"


class Event(Enum):
    NONE = "none"
    SPEECH_START = "speech_start"
    END = "end"
    """Trailing silence reached: the utterance is over."""
    EARLY_END = "early_end"
    """A shorter silence after a complete command."""
    MAX_LENGTH = "max_length"
    TIMEOUT = "timeout"
    """No speech began within the listening window."""


@dataclass(slots=True)
class EndpointConfig:
    threshold: float = 0.5
    min_speech_ms: int = 200
    trailing_silence_ms: int = 700
    early_silence_ms: int = 200
    max_utterance_s: float = 10.0
    timeout_s: float = 4.0


class Endpointer:
    """Feed one speech probability per 10 ms frame; returns what happened at that frame."""

    def __init__(self, config: EndpointConfig) -> None:
        self.config = config
        self.frames = 0
        self.in_speech = False
        self.voiced_run = 0
        self.silence_run = 0
        self.start_frame: int | None = None
        self.last_voiced_frame: int | None = None
        self.first_voiced_frame: int | None = None

    def feed(self, probability: float, *, complete: bool | Callable[[], bool] = False) -> Event:
        """One frame. ``complete``: whether the hypothesis so far is a whole command; a callable
        is asked only when the silence is long enough for an early end."""
        cfg = self.config
        frame = self.frames
        self.frames += 1
        voiced = probability >= cfg.threshold
        if voiced:
            self.voiced_run += 1
            self.silence_run = 0
            self.last_voiced_frame = frame
            if not self.in_speech and self.voiced_run == 1:
                self.first_voiced_frame = frame
        else:
            self.voiced_run = 0
            self.silence_run += 1
        if not self.in_speech:
            if self.voiced_run * FRAME_MS >= cfg.min_speech_ms:
                self.in_speech = True
                self.start_frame = self.first_voiced_frame
                return Event.SPEECH_START
            if frame * FRAME_MS >= cfg.timeout_s * 1000:
                return Event.TIMEOUT
            return Event.NONE
        assert self.start_frame is not None
        if (frame - self.start_frame) * FRAME_MS >= cfg.max_utterance_s * 1000:
            return Event.MAX_LENGTH
        if self.silence_run * FRAME_MS >= cfg.trailing_silence_ms:
            return Event.END
        if self.silence_run * FRAME_MS >= cfg.early_silence_ms and (
            complete() if callable(complete) else complete
        ):
            return Event.EARLY_END
        return Event.NONE


class SileroScorer:
    """Silero VAD (its bundled ONNX model, run with onnxruntime): a speech probability for
    every 32 ms window, reported for each 10 ms frame. It follows the end of speech within one
    window, where pymicro-vad's smoothed output stayed high for about half a second after the
    last word (measured on synthesized commands), which the guest would wait through."""

    WINDOW = 512
    CONTEXT = 64

    def __init__(self) -> None:
        import importlib.util
        from pathlib import Path

        # only the ONNX file is used: importing the package would import torch
        spec = importlib.util.find_spec("silero_vad")
        if spec is None or not spec.submodule_search_locations:
            raise VadError("VAD needs silero-vad's model: pip install --no-deps silero-vad")
        model = Path(next(iter(spec.submodule_search_locations))) / "data" / "silero_vad.onnx"
        self._session = cpu_session(model, threads=1)
        self._sr = np.array(16000, dtype=np.int64)
        self.reset()

    def reset(self) -> None:
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros(self.CONTEXT, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)
        self._last = 0.0

    def score(self, frame: bytes) -> float:
        samples = np.frombuffer(frame, dtype=np.int16).astype(np.float32) / 32768.0
        self._pending = np.concatenate([self._pending, samples])
        while len(self._pending) >= self.WINDOW:
            window, self._pending = self._pending[: self.WINDOW], self._pending[self.WINDOW :]
            batch = np.concatenate([self._context, window])[None, :]
            out, self._state = self._session.run(
                None, {"input": batch, "state": self._state, "sr": self._sr}
            )
            self._context = window[-self.CONTEXT :]
            self._last = float(out[0][0])
        return self._last
