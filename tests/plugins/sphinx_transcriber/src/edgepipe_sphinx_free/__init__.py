"""pocketsphinx decoding freely with its general English language model, as an edgepipe open
transcriber.

It declares no optional capability (no n-best, no scoring of given sentences or phrases, no
reusable encoding, no context): edgepipe then checks no wake, rescores nothing and runs no
contrast check or second pass, and says so in its log. Its confidence is the decoder's
posterior probability of the hypothesis, as a mean log-probability per word.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from edgepipe.voice.contracts import (
    BackendContext,
    EncodedAudio,
    OpenHypothesis,
    OpenTranscriber,
    Samples,
)


class SphinxFree(OpenTranscriber):
    """pocketsphinx with its bundled en-us acoustic and language models."""

    name = "sphinx_free"
    capabilities = frozenset()

    def __init__(self, decoder: Any) -> None:
        self.decoder = decoder
        self.heard: list[str] = []
        """Every transcript, in order (for the test that installs it)."""

    def transcribe(
        self, samples: Samples, *, audio: EncodedAudio | None = None, context: str = ""
    ) -> OpenHypothesis:
        started = time.perf_counter()
        pcm = np.asarray(samples)
        if pcm.dtype != np.int16:
            pcm = (np.clip(pcm, -1.0, 1.0) * 32767).astype(np.int16)
        decoder = self.decoder
        decoder.start_utt()
        decoder.process_raw(pcm.tobytes(), False, True)
        decoder.end_utt()
        hypothesis = decoder.hyp()
        text = hypothesis.hypstr.strip() if hypothesis is not None else ""
        self.heard.append(text)
        words = len(text.split())
        score = math.log(max(float(hypothesis.prob), 1e-12)) / words if words else -math.inf
        return OpenHypothesis(
            text=text,
            avg_logprob=score,
            no_speech_prob=0.0 if words else 1.0,
            window_s=len(pcm) / 16000,
            ms=(time.perf_counter() - started) * 1000,
        )


def build(context: BackendContext) -> SphinxFree:
    """The entry point: a transcriber around one decoder per owner of ``context.resources``."""
    from pocketsphinx import Decoder

    decoder = context.resources.get(
        ("sphinx_free", "decoder"), lambda: Decoder(samprate=16000, loglevel="FATAL")
    )
    return SphinxFree(decoder)
