"""espeak-ng (the Debian binary): robotic, but tiny and always there; one process per sentence."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt

from edgepipe.voice.audio import AudioError, read_wav_bytes, resample
from edgepipe.voice.backends._util import quote as _quote
from edgepipe.voice.contracts import TtsError, split_sentences


class EspeakSynthesizer:
    """The ``espeak-ng`` binary, one process per sentence (about 20-50 ms each)."""

    name = "espeak"
    last_used = "espeak"
    sample_rate = 22050

    def __init__(self, voice: str = "en-us", *, speed: int = 160, timeout_s: float = 20.0) -> None:
        executable = shutil.which("espeak-ng")
        if executable is None:
            raise TtsError(
                "espeak-ng not found on PATH; install it with `apt-get install espeak-ng`",
                code="tts_unavailable",
            )
        self._executable = executable
        self.voice = voice
        self.speed = speed
        self.timeout_s = timeout_s
        self.voice_id = f"espeak-{voice}-s{speed}"

    def synthesize(self, text: str) -> Iterator[npt.NDArray[np.float32]]:
        """One array per sentence of :func:`split_sentences`, at :attr:`sample_rate`."""
        for sentence in split_sentences(text):
            yield self._sentence(sentence)

    def _sentence(self, sentence: str) -> npt.NDArray[np.float32]:
        command = [self._executable, "--stdout", "-b", "1", "-v", self.voice, "-s", str(self.speed)]
        try:
            result = subprocess.run(  # noqa: S603 - fixed argv, text on stdin
                command,
                input=sentence.encode("utf-8"),
                capture_output=True,
                timeout=self.timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise TtsError(
                f"espeak-ng took longer than {self.timeout_s:g} s on {_quote(sentence)}"
            ) from exc
        except OSError as exc:
            raise TtsError(f"cannot run espeak-ng ({exc})", code="tts_unavailable") from exc
        stderr = result.stderr.decode("utf-8", "replace").strip()
        if result.returncode != 0 or not result.stdout:
            raise TtsError(
                f"espeak-ng (voice {self.voice!r}) failed with exit code {result.returncode}: "
                f"{stderr or 'no audio produced'}"
            )
        try:
            audio, rate = read_wav_bytes(result.stdout, name="espeak-ng output", streaming=True)
        except AudioError as exc:
            raise TtsError(f"espeak-ng produced unreadable audio: {exc}") from exc
        if rate != self.sample_rate:
            audio = resample(audio, rate, self.sample_rate)
        return audio
