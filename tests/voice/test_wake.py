"""The wake-word detector with its bundled model, on synthesized speech."""

from __future__ import annotations

import numpy as np
import pytest

from edgepipe.voice.backends.microwakeword import MicroWakeWord
from edgepipe.voice.contracts import WakeError


def test_unknown_model_is_a_clear_error() -> None:
    with pytest.raises(WakeError, match="bundled: okay_nabu"):
        MicroWakeWord("hey_toaster")


def _feed(detector: MicroWakeWord, audio: np.ndarray) -> list[float]:
    pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16).tobytes()
    return [e.at_s for i in range(0, len(pcm), 320) if (e := detector.process(pcm[i : i + 320]))]


@pytest.mark.slow
def test_wakes_once_per_phrase_with_refractory_period(piper_speech) -> None:  # type: ignore[no-untyped-def]
    from edgepipe.testing.voicedata import compose

    fixtures = piper_speech
    wake = fixtures.speech("Okay Nabu.")
    detector = MicroWakeWord("okay_nabu", cutoff=0.6, refractory_s=2.0)
    # twice, 0.5 s apart: the second falls inside the refractory period
    close = _feed(detector, compose([0.5, wake, 0.5, wake, 1.0]))
    assert len(close) == 1
    detector.reset()
    apart = _feed(detector, compose([0.5, wake, 3.0, wake, 1.0]))
    assert len(apart) == 2
    assert apart[1] - apart[0] > 2.0
    detector.reset()
    assert (
        _feed(detector, compose([0.5, fixtures.speech("Turn off the lights, please."), 1.0])) == []
    )
