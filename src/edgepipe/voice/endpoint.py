"""Endpointing: a pure state machine over 10 ms speech probabilities.

The probabilities come from the VAD backend (:class:`~edgepipe.voice.contracts.VadScorer`,
Silero by default); the :class:`Endpointer` is I/O-free so it can be tested frame by frame. An
utterance starts after ``min_speech_ms`` of voiced frames and ends after ``trailing_silence_ms``
of silence, or after only ``early_silence_ms`` when the caller says the words so far already
form a whole command (grammar-aware early endpointing), or at ``max_utterance_s``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from edgepipe.voice.audio import FRAME_MS


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
