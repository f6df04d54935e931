"""Endpointing: a pure state machine over 10 ms speech probabilities.

The probabilities come from the VAD backend (:class:`~edgepipe.voice.contracts.VadScorer`,
Silero by default); the :class:`Endpointer` is I/O-free so it can be tested frame by frame. An
utterance starts after ``min_speech_ms`` of voiced frames and ends

* after ``trailing_silence_ms`` of silence (``END``);
* after only ``early_silence_ms`` when the caller says the words so far already form a whole
  command (grammar-aware early endpointing, ``EARLY_END``);
* once a pause reaches ``turn_pause_ms``, if the end-of-turn model says the guest has finished
  (``TURN_END``: asked once per pause, so a request that is no command need not wait for the
  whole trailing silence);
* ``command_max_s`` after the words first formed a whole command, whatever the silence
  (``COMMAND_MAX``: a television talking in the room never lets the VAD fall silent);
* at ``max_utterance_s`` (``MAX_LENGTH``).

"Voiced" is the caller's: the listener counts a frame as the guest's speech only when it is
loud enough next to the wake phrase (:mod:`edgepipe.voice.listener`).
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
    TURN_END = "turn_end"
    """The end-of-turn model heard a finished turn in a pause."""
    COMMAND_MAX = "command_max"
    """``command_max_s`` after a whole command was first heard."""
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
    command_max_s: float = 0.0
    """0: off."""
    turn_pause_ms: int | None = None
    """None: no end-of-turn model."""
    turn_threshold: float = 0.7
    """The end-of-turn model's probability that ends the utterance."""
    turn_min_speech_ms: int = 1000
    """The model is asked only once the utterance has run this long (first to last voiced
    frame): a shorter one that is no whole command is more often an opener ("hey", "so",
    the end of the wake phrase) than a finished request."""


COMMAND_CHECK_FRAMES = 10
"""While speech goes on, whether the words form a whole command is asked every 100 ms (for
``command_max_s``)."""


GOES_ON = frozenset(
    [
        "twenty",
        "thirty",
        "forty",
        "fifty",
        "sixty",
        "seventy",
        "eighty",
        "ninety",
        "hundred",
        "thousand",
        "and",
        "or",
        "but",
        "to",
        "the",
        "a",
        "an",
        "of",
        "for",
        "in",
        "on",
        "at",
        "with",
        "from",
        "my",
        "your",
        "our",
        "their",
    ]
)
"""Words a sentence goes on after: a pause after "set the thermostat to twenty" is not its end,
whatever the templates accept ("twenty two" may follow), nor one after "turn off the"."""


def may_go_on(text: str) -> bool:
    """Whether the words so far end on a word that is followed by more (:data:`GOES_ON`)."""
    words = text.lower().split()
    return bool(words) and words[-1].strip(".,?!") in GOES_ON


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
        self.command_frame: int | None = None
        """The frame at which the words were first seen to form a whole command."""
        self.turn_asked = False
        """Whether the end-of-turn model was asked in the current pause."""
        self.turn_scores: list[float] = []
        """What the end-of-turn model answered, in order."""

    def feed(
        self,
        probability: float,
        *,
        complete: bool | Callable[[], bool] = False,
        finished: Callable[[], float] | None = None,
    ) -> Event:
        """One frame. ``complete``: whether the hypothesis so far is a whole command; a callable
        is asked only when the silence is long enough for an early end, and every 100 ms of an
        utterance until it first says yes when ``command_max_s`` is on. ``finished``: the
        end-of-turn model's probability that the guest has finished (asked once per pause)."""
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
            self.turn_asked = False
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
        is_complete: bool | None = None
        if self.silence_run * FRAME_MS >= cfg.early_silence_ms:
            is_complete = complete() if callable(complete) else complete
            if is_complete:
                self._saw_command(frame)
                return Event.EARLY_END
        if cfg.command_max_s > 0:
            if (
                self.command_frame is None
                and is_complete is None
                and (frame - self.start_frame) % COMMAND_CHECK_FRAMES == 0
                and (complete() if callable(complete) else complete)
            ):
                self._saw_command(frame)
            if (
                self.command_frame is not None
                and (frame - self.command_frame) * FRAME_MS >= cfg.command_max_s * 1000
            ):
                return Event.COMMAND_MAX
        if (
            finished is not None
            and cfg.turn_pause_ms is not None
            and not self.turn_asked
            and self.silence_run * FRAME_MS >= cfg.turn_pause_ms
            and self.last_voiced_frame is not None
            and (self.last_voiced_frame - self.start_frame + 1) * FRAME_MS >= cfg.turn_min_speech_ms
        ):
            self.turn_asked = True
            self.turn_scores.append(finished())
            if self.turn_scores[-1] >= cfg.turn_threshold:
                return Event.TURN_END
        return Event.NONE

    def _saw_command(self, frame: int) -> None:
        if self.command_frame is None:
            self.command_frame = frame
