"""End of turn: Smart Turn v3.2, a model that hears whether the guest has finished speaking.

Silence alone cannot say that a turn is over: "can you book a table for" ends in silence too,
and in a room where a television talks there is no silence at all. Smart Turn (pipecat's
open end-of-turn model, BSD-2) reads the last 8 s of the utterance as Whisper's log-mel
features and gives the probability that the speaker is done. It ships in the ``pipecat-ai``
wheel, which is installed ``--no-deps`` for the model file and its numpy feature code only:
importing the framework (loguru, aiohttp, ...) is never needed.

Measured here (one thread): features 17 ms and inference about 105 ms per call on 8 s of audio,
so the listener asks it once per pause, not every frame (:mod:`edgepipe.voice.endpoint`).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from edgepipe.models.onnx import cpu_session
from edgepipe.voice.audio import SAMPLE_RATE
from edgepipe.voice.contracts import EndpointError, Samples

WINDOW_S = 8
"""The model hears this much: the end of longer audio, shorter audio padded in front."""
MODEL = "smart-turn-v3.2-cpu.onnx"


def _pipecat_dir() -> Path:
    """Where pipecat-ai's files are, found without importing the package."""
    spec = importlib.util.find_spec("pipecat")
    if spec is None or not spec.submodule_search_locations:
        raise EndpointError(
            "the end-of-turn model needs pipecat-ai's files: "
            "pip install --no-deps pipecat-ai==1.14.0"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "audio" / "turn" / "smart_turn"


def smart_turn_model() -> Path:
    path = _pipecat_dir() / "data" / MODEL
    if not path.is_file():
        raise EndpointError(f"pipecat-ai has no {MODEL} (needs pipecat-ai 1.14.0): {path}")
    return path


def _features_module() -> ModuleType:
    """pipecat's numpy copy of Whisper's feature extractor, loaded from its file (importing it
    as ``pipecat...`` would import the framework's ``__init__``)."""
    path = _pipecat_dir() / "_whisper_features.py"
    spec = importlib.util.spec_from_file_location("edgepipe_smart_turn_features", path)
    if spec is None or spec.loader is None or not path.is_file():
        raise EndpointError(f"pipecat-ai's feature code is missing: {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class SmartTurn:
    """The probability that an utterance is a finished turn (a
    :class:`~edgepipe.voice.contracts.TurnDetector`). ``session``: a shared onnxruntime
    session of :func:`smart_turn_model` (default: a new one-thread session)."""

    name = "smart_turn"

    def __init__(self, session: Any | None = None) -> None:
        self._session = session if session is not None else smart_turn_session()
        self._features = _features_module().compute_whisper_log_mel_features

    def probability(self, samples: Samples) -> float:
        """P(the speaker has finished) for an utterance, 16 kHz mono (int16 or float32)."""
        audio = np.asarray(samples)
        if audio.ndim != 1:
            raise EndpointError(f"the end-of-turn model needs mono audio, got shape {audio.shape}")
        if audio.size == 0:
            raise EndpointError("the end-of-turn model got no audio", code="audio_empty")
        if audio.dtype == np.int16:
            audio = audio.astype(np.float32) / 32768.0
        audio = audio.astype(np.float32, copy=False)
        window = WINDOW_S * SAMPLE_RATE
        # the end of longer audio; shorter audio padded in front, as the model was trained
        audio = audio[-window:] if audio.size >= window else np.pad(audio, (window - audio.size, 0))
        features = self._features(audio, do_normalize=True)
        batch = np.expand_dims(np.asarray(features, dtype=np.float32), 0)
        (logits,) = self._session.run(None, {"input_features": batch})
        return float(np.asarray(logits).reshape(-1)[0])


def smart_turn_session() -> Any:
    """A one-thread onnxruntime session of the model (stateless: sessions may share it). Its
    thread sleeps between calls: it runs now and then, in turn with the recognisers."""
    return cpu_session(smart_turn_model(), threads=1, spin=False)
