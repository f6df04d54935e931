"""Wake word: microWakeWord models bundled with pymicro-wakeword, fed 10 ms at a time."""

from __future__ import annotations

from edgepipe.voice.audio import FRAME_MS, SAMPLE_RATE
from edgepipe.voice.contracts import WakeError, WakeEvent


class MicroWakeWord:
    """Streams 16 kHz 16-bit mono PCM through one microWakeWord model (a
    :class:`~edgepipe.voice.contracts.WakeDetector`).

    ``cutoff`` is compared with the model's probability averaged over its sliding window (as
    microWakeWord does on devices); after a detection, ``refractory_s`` seconds pass and the
    probability must fall below the cutoff before the next one can fire, so one "okay nabu"
    wakes the device once. Both count the audio this detector is fed.
    """

    def __init__(self, model: str, *, cutoff: float = 0.85, refractory_s: float = 2.0) -> None:
        try:
            from pymicro_wakeword import MicroWakeWord as Detector
            from pymicro_wakeword import MicroWakeWordFeatures, Model
        except ImportError as exc:  # pragma: no cover - the voice extra is not installed
            raise WakeError(
                "wake word needs pymicro-wakeword: pip install 'edgepipe[voice]'"
            ) from exc
        try:
            builtin = Model(model)
        except ValueError as exc:
            names = ", ".join(m.value for m in Model)
            raise WakeError(f"unknown wake word model {model!r}; bundled: {names}") from exc
        self.model = model
        self.cutoff = cutoff
        self.refractory_s = refractory_s
        self._detector = Detector.from_builtin(builtin)
        self._features = MicroWakeWordFeatures()
        self._seconds = 0.0
        self._last: float | None = None
        self._armed = True
        self._windows = 0
        self._max = 0.0
        self.record: list[float] | None = None
        """Set to a list to collect every probability, one per model step (``step_s``)."""

    @property
    def step_s(self) -> float:
        """Audio time between two probabilities (the model's stride of 10 ms windows)."""
        return int(self._detector.stride) * FRAME_MS / 1000

    @property
    def wake_phrase(self) -> str:
        return str(self._detector.wake_word)

    @property
    def max_probability(self) -> float:
        return self._max

    def reset(self) -> None:
        """Forget the stream (a new file or session); the model state is reloaded."""
        self._detector.reset()
        self._features.reset()
        self._seconds = 0.0
        self._last = None
        self._armed = True
        self._windows = 0
        self._max = 0.0

    def release(self) -> None:
        """Forget the last detection's refractory period (a later check dropped that wake): the
        next rise above the cutoff, after a fall below it, is a detection again."""
        self._last = None

    def process(self, pcm: bytes) -> WakeEvent | None:
        """Feed PCM (any length, normally 10 ms); a :class:`WakeEvent` when the word is heard."""
        event: WakeEvent | None = None
        for features in self._features.process_streaming(pcm):
            probability = self._detector.process_streaming_prob(features)
            self._windows += 1
            if probability is None or self._windows % self._detector.stride:
                # the model runs once every `stride` feature windows; in between it answers 0.0
                continue
            self._max = max(self._max, probability)
            if self.record is not None:
                self.record.append(float(probability))
            recent = self._last is not None and self._seconds - self._last < self.refractory_s
            if probability <= self.cutoff:
                # re-armed only by a low probability after the refractory period, so a
                # phrase still being heard when it ends does not fire again
                self._armed = self._armed or not recent
            elif event is None and self._armed and not recent:
                self._last = self._seconds
                self._armed = False
                event = WakeEvent(at_s=self._seconds, probability=float(probability))
        self._seconds += len(pcm) / (2 * SAMPLE_RATE)
        return event
