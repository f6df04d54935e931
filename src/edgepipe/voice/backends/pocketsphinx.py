"""The grammar path: pocketsphinx held to the pack's own sentences, decoding while the guest speaks.

pocketsphinx with its bundled en-us acoustic model and a trigram language model generated from
the pack's templates and slot lists (random expansions of every template, numbers spelled out,
words the pronunciation dictionary lacks left out). Its vocabulary is the pack's; a hypothesis
counts as a command only when the template matcher accepts it whole. It decodes while the guest
speaks, so little work is left when they stop. Confidence is the per-frame acoustic score of the
hypothesis against that of a free phone loop decoding the same audio (a "generic phone model"
confidence): speech the grammar does not cover scores lower under the pack's language model
than under the phone loop.

A JSGF grammar of the same templates was measured first: the hotel pack's 252 templates made
a 40 kB grammar whose finite-state expansion took 3-4 s to compile and 7-21 s to decode a
2.5 s command, so the language model (0.2 s to build; RTF 0.1 with the phone loop) replaced it.
"""

from __future__ import annotations

import hashlib
import io
import logging
import random
import re
import time
from pathlib import Path

from edgepipe.pack.loader import Pack
from edgepipe.voice.audio import FRAME_BYTES
from edgepipe.voice.contracts import AsrError, GrammarHypothesis

log = logging.getLogger(__name__)

_DIGITS = re.compile(r"\d+")
_STRIP = '.,!?;:"()'
LM_SENTENCES_PER_INTENT = 400


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
    from edgepipe.nlu.learned.augment import TemplateSampler

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


class PocketsphinxGrammar:
    """The pack-grammar path: streaming pocketsphinx with a phone-loop confidence (a
    :class:`~edgepipe.voice.contracts.StreamingRecognizer`). Stateful: one stream at a time."""

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

    @property
    def primed(self) -> bool:
        return self._prime_pcm is not None

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
