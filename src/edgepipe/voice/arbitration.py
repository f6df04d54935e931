"""Choosing a voice turn's transcript: the grammar path's, or the open path's, or neither.

:class:`Arbitrator` gets what the listener heard (the grammar path's hypothesis and the
utterance's samples) and decides, with the pack's text understanding
(:class:`~edgepipe.engine.understanding.Understanding`: template match, the router's reading,
what is high-impact) instead of the engine:

1. the grammar path's hypothesis, when the templates accept it as a whole command and its
   confidence is at least ``voice.grammar.min_ratio``;
2. otherwise the open transcriber's, one of its readings chosen by :class:`~edgepipe.voice.
   open_pick.OpenPicker` (beam alternatives, a second pass, a snap, rescoring), when it is
   confident; a whole grammar-path command heard less surely is used when the open path's
   words match no template;
3. a grammar-path command with a contrast word ("on"/"off") is checked against its swapped
   readings by the transcriber (the contrast check);
4. neither: None, and the guest is asked to repeat.

The :class:`Decision` carries the template match of the chosen transcript, which the voice
session hands to the turn (``Session.handle_text(..., matched=...)``) instead of matching again.
The transcriber's optional abilities are used only when it declares them
(:class:`~edgepipe.voice.contracts.Capability`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from edgepipe.engine.understanding import Understanding
from edgepipe.nlu.templates import TemplateResult
from edgepipe.pack.voice_schema import VoiceSpec
from edgepipe.voice.checks import TextChecks
from edgepipe.voice.contracts import (
    Capability,
    GrammarHypothesis,
    OpenTranscriber,
    Samples,
)
from edgepipe.voice.open_pick import OpenPicker
from edgepipe.voice.record import Alternative, OpenRecord, Scored, SecondPass
from edgepipe.voice.snap import PhoneticSnapper

log = logging.getLogger(__name__)

REPEAT = "Sorry, could you repeat that?"
_MIN_OPEN_WORDS = 1
GRAMMAR_FLOOR = 0.6
"""Below ``voice.grammar.min_ratio`` but above this, a whole-command grammar hypothesis is
still used when the open transcript matches no template."""
_NO_SPEECH = 0.6
"""The open transcriber's no-speech probability at and above which nobody spoke."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """The transcript chosen for one utterance, and how."""

    transcript: str | None
    """The text the turn runs on; None: ask the guest to repeat."""
    path: str | None
    """``grammar`` or ``open``: whose transcript it is (None with no transcript)."""
    matched: TemplateResult | None
    """The template match of exactly :attr:`transcript`, for the turn."""
    open: OpenRecord | None
    """The open path, when it ran."""
    contrast: tuple[Scored, ...] | None
    """The contrast check's readings and scores, when it ran."""
    stages_ms: Mapping[str, float]
    """``open_asr``, ``open_pick``, ``open_second_pass``, ``open_rescore``, ``contrast``: those
    that ran."""


class Arbitrator:
    """Decides each utterance's transcript (see the module docstring)."""

    def __init__(
        self,
        understanding: Understanding,
        transcriber: OpenTranscriber,
        spec: VoiceSpec,
        snapper: PhoneticSnapper | None = None,
    ) -> None:
        self.text = TextChecks(understanding)
        self.transcriber = transcriber
        self.spec = spec
        self.picker = OpenPicker(self.text, transcriber, spec.open, snapper)
        self._can_score = Capability.SENTENCE_SCORES in transcriber.capabilities
        self._can_encode = Capability.ENCODE in transcriber.capabilities
        if spec.grammar.contrast_words and not self._can_score:
            log.info("transcriber %r does not score sentences: no contrast check", transcriber.name)

    def decide(self, grammar: GrammarHypothesis, samples: Samples) -> Decision:
        """The transcript for an utterance whose grammar-path hypothesis is ``grammar``."""
        self.text.new_turn()
        stages: dict[str, float] = {}
        spec = self.spec
        text = self.text
        transcript: str | None = None
        path: str | None = None
        record: OpenRecord | None = None
        if (
            grammar.text
            and grammar.ratio >= spec.grammar.min_ratio
            and text.is_complete(grammar.text)
        ):
            transcript, path = grammar.text, "grammar"
        else:
            started = time.perf_counter()
            encoded = self.transcriber.encode(samples) if self._can_encode else None
            opened = self.transcriber.transcribe(samples, audio=encoded)
            stages["open_asr"] = (time.perf_counter() - started) * 1000
            heard_command = bool(
                grammar.text and grammar.ratio >= GRAMMAR_FLOOR and text.is_complete(grammar.text)
            )
            started = time.perf_counter()
            pick = self.picker.pick(
                opened,
                samples,
                grammar.text if heard_command else None,
                heard=grammar.text,
                audio=encoded,
            )
            stages.update(pick.stages_ms)  # the second pass and rescoring, within the pick
            stages["open_pick"] = (time.perf_counter() - started) * 1000
            record = OpenRecord(
                text=opened.text,
                avg_logprob=opened.avg_logprob,
                no_speech_prob=opened.no_speech_prob,
                window_s=opened.window_s,
                alternatives=_alternatives(opened.alternatives),
                second_pass=None
                if pick.second is None or pick.context is None
                else SecondPass(
                    context=pick.context,
                    text=pick.second.text,
                    avg_logprob=pick.second.avg_logprob,
                    alternatives=_alternatives(pick.second.alternatives),
                ),
                used_rank=pick.rank,
                snapped=pick.snap,
                rescored=pick.rescored,
            )
            words = [w for w in pick.text.split() if any(c.isalnum() for c in w)]
            # how clearly the transcriber heard the audio at all: its best hypothesis's score;
            # words the pack's templates accept need less of it than free text
            command = text.matches(pick.text)
            floor = spec.open.command_min_logprob if command else spec.open.min_logprob
            confident = (
                len(words) >= _MIN_OPEN_WORDS
                and opened.avg_logprob >= floor
                and opened.no_speech_prob < _NO_SPEECH
            )
            if confident and (not heard_command or command):
                transcript, path = pick.text, "open"
            elif heard_command:
                # the open path's words match no template ("two bathrooms please") but the
                # grammar path heard a whole command, just not surely enough to skip it
                transcript, path = grammar.text, "grammar"
        contrast: tuple[Scored, ...] | None = None
        if transcript is not None and path == "grammar":
            transcript, contrast = self._contrast(transcript, samples, stages)
        return Decision(
            transcript=transcript,
            path=path,
            matched=None if transcript is None else text.match(transcript),
            open=record,
            contrast=contrast,
            stages_ms=MappingProxyType(stages),
        )

    def contrast_readings(self, text: str) -> list[str]:
        """``text`` with one of its ``voice.grammar.contrast_words`` swapped for another of its
        group, each reading the pack's templates accept as a whole command ("all lights on"
        -> ["all lights off"])."""
        groups = self.spec.grammar.contrast_words
        words = text.split()
        readings: list[str] = []
        for i, word in enumerate(words):
            for group in groups:
                if word.lower() not in group:
                    continue
                for other in group:
                    if other == word.lower():
                        continue
                    reading = " ".join([*words[:i], other, *words[i + 1 :]])
                    if reading not in readings and self.text.is_complete(reading):
                        readings.append(reading)
        return readings

    def _contrast(
        self, text: str, samples: Samples, stages: dict[str, float]
    ) -> tuple[str, tuple[Scored, ...] | None]:
        """The contrast check: of the grammar path's command and its swapped readings, the
        one the transcriber finds likeliest for the utterance."""
        if not self._can_score:
            return text, None
        readings = self.contrast_readings(text)
        if not readings:
            return text, None
        started = time.perf_counter()
        candidates = [text, *readings]
        scores = self.transcriber.sentence_scores(samples, candidates)
        stages["contrast"] = (time.perf_counter() - started) * 1000
        best = max(range(len(candidates)), key=scores.__getitem__)
        if best:
            log.info(
                "contrast check: %r (%.2f) read as %r (%.2f)",
                text,
                scores[0],
                candidates[best],
                scores[best],
            )
        scored = tuple(Scored(text=c, score=s) for c, s in zip(candidates, scores, strict=True))
        return candidates[best], scored


def _alternatives(pairs: tuple[tuple[str, float], ...]) -> tuple[Alternative, ...]:
    return tuple(Alternative(text=text, avg_logprob=logprob) for text, logprob in pairs)
