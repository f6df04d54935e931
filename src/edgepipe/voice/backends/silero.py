"""Voice activity: Silero VAD (its bundled ONNX model, run with onnxruntime).

It follows the end of speech within one 32 ms window, where pymicro-vad's smoothed output stayed
high for about half a second after the last word (measured on synthesized commands), which the
guest would wait through.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from edgepipe.models.onnx import cpu_session
from edgepipe.voice.contracts import VadError


def silero_model() -> Path:
    """The ONNX file silero-vad ships (only the file: importing the package imports torch)."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise VadError("VAD needs silero-vad's model: pip install --no-deps silero-vad")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "silero_vad.onnx"


def silero_session() -> Any:
    """A one-thread onnxruntime session of the model. It keeps no state between calls (the
    recurrent state is passed in), so scorers may share one."""
    return cpu_session(silero_model(), threads=1)


class SileroScorer:
    """A speech probability for every 32 ms window, reported for each 10 ms frame (a
    :class:`~edgepipe.voice.contracts.VadScorer`). ``session``: a shared
    :func:`silero_session` (default: a new one)."""

    WINDOW = 512
    CONTEXT = 64

    def __init__(self, session: Any | None = None) -> None:
        self._session = session if session is not None else silero_session()
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
