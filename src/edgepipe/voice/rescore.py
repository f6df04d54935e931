"""Rescoring: pack sentences too far in sound to snap, scored against the audio.

Phonemes from a transcript only go so far ("Team me off." is 0.286 from "tv off", and the snap
needs 0.2); the audio can settle what the spelling cannot. The nearest sentences of the few
intents nearest in sound to each hypothesis are scored by the open transcriber against the
utterance beside its own transcript, and the likeliest is used if the transcriber finds it
nearly as likely as what it wrote and clearly likelier than anything that asks for something
else (docs/voice.md, "Rescoring"). Needs a transcriber that scores sentences.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass

from edgepipe.nlu.learned.model import OOS_LABEL, Prediction, clean_text
from edgepipe.nlu.slots import with_digits
from edgepipe.pack.voice_schema import OpenSpec
from edgepipe.voice.checks import TextChecks
from edgepipe.voice.contracts import OpenTranscriber, Samples
from edgepipe.voice.record import Scored
from edgepipe.voice.snap import PhoneticSnapper, Snap

log = logging.getLogger(__name__)

CANDIDATE_INTENTS = 4
"""How many intents' nearest sentences are scored at most, per hypothesis."""


def plain(text: str) -> str:
    """``text`` as the pack's sentences are written: lower case, no punctuation but inside
    words and numbers ("Team me off." -> "team me off"), so the transcriber scores both alike;
    "" for text without a word."""
    cleaned = clean_text(text).lower()
    return cleaned if any(c.isalnum() for c in cleaned) else ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Rescored:
    """What rescoring found."""

    snap: Snap | None
    """The candidate to use, if one won clearly enough."""
    scored: tuple[Scored, ...] | None
    """Every sentence scored, the transcriber's own transcript first; None when none was."""
    ms: float | None
    """Time the scoring took, when it ran."""


_NOTHING = Rescored(snap=None, scored=None, ms=None)


class Rescorer:
    """Scores candidate pack sentences against the utterance (see the module docstring)."""

    def __init__(
        self,
        text: TextChecks,
        transcriber: OpenTranscriber,
        spec: OpenSpec,
        snapper: PhoneticSnapper,
    ) -> None:
        self.text = text
        self.transcriber = transcriber
        self.spec = spec
        self.snapper = snapper

    def rescore(
        self,
        hypotheses: list[str],
        samples: Samples,
        grammar: str | None = None,
        reading: Prediction | None = None,
    ) -> Rescored:
        """The candidate sentence the transcriber finds likeliest for ``samples``, if it is at
        most ``rescore_max_gap`` less likely than the transcriber's own ``hypotheses[0]`` and at
        least ``rescore_margin`` likelier than the likeliest candidate that asks for something
        else ("Let some date I do." -> "let some daylight in"). Candidates: for each hypothesis
        (the best and the close alternatives), the nearest sentence of each of the
        :data:`CANDIDATE_INTENTS` intents nearest to it in sound, within
        ``rescore_max_distance``, that the templates accept; and ``grammar``, the grammar path's
        whole command, its numbers in digits as Whisper writes them (a candidate found in the
        transcriber's words does not replace the grammar path's command unless the audio
        prefers it by the margin: "phone us at 23 please" for "thermostat 23 please").
        ``reading``: the router's reading of the best hypothesis, if at hand."""
        spec, text, snapper = self.spec, self.text, self.snapper
        heard = hypotheses[0]
        if reading is None:
            reading = text.classify(heard)
        if reading is not None and reading.best == OOS_LABEL:
            # only the router's best in-scope guess could be used (``may_replace``): look for
            # it near the best words alone, which spares ~30 ms of alignment per alternative on
            # the questions the pack leaves to the cloud
            hypotheses = hypotheses[:1]
        candidates: dict[str, Snap] = {}
        # hypotheses that differ only in case and punctuation sound the same: align one of them
        distinct = {plain(said): said for said in reversed(hypotheses)}
        for said in sorted(distinct.values(), key=hypotheses.index):
            for snap in snapper.nearest(said, CANDIDATE_INTENTS, spec.rescore_max_distance):
                sentence = snapper.said_around(snap.text, said)
                if sentence not in candidates and text.matches(snap.text):
                    candidates[sentence] = dataclasses.replace(snap, text=sentence)
        own = plain(heard)
        if not candidates or not own:
            return _NOTHING
        if grammar:
            said = with_digits(grammar)
            asks = self._asks(said)
            if said not in candidates and asks is not None:
                candidates[said] = Snap(said, asks[0], 0.0, 0)
        found = list(candidates.values())
        # whichever candidate won, none could be used: spare the transcriber the work
        if not any(text.may_replace(heard, c, rescored=True, prediction=reading) for c in found):
            return _NOTHING
        started = time.perf_counter()
        sentences = [own, *(c.text for c in found)]
        scores = self.transcriber.sentence_scores(samples, sentences)
        ms = (time.perf_counter() - started) * 1000
        scored = tuple(Scored(text=t, score=s) for t, s in zip(sentences, scores, strict=True))
        order = sorted(range(len(found)), key=lambda i: -scores[i + 1])
        top = scores[order[0] + 1]
        asks = self._asks(found[order[0]].text)
        # two wordings of one command do not compete ("crank a heating up", "bring the
        # heating up"): the margin is to the likeliest candidate that asks for something else
        runner_up = next(
            (scores[i + 1] for i in order[1:] if self._asks(found[i].text) != asks), -math.inf
        )
        if scores[0] - top > spec.rescore_max_gap or top - runner_up < spec.rescore_margin:
            return Rescored(snap=None, scored=scored, ms=ms)
        log.info(
            "open path: %r (%.2f) rescored as %r (%.2f)",
            heard,
            scores[0],
            found[order[0]].text,
            top,
        )
        return Rescored(snap=found[order[0]], scored=scored, ms=ms)

    def _asks(self, said: str) -> tuple[str, tuple[tuple[str, str], ...]] | None:
        """What the template match of ``said`` asks for: its intent and slot values."""
        match = self.text.match(said).match
        if match is None:
            return None
        values = match.slot_values()
        return match.name, tuple(sorted((k, str(v)) for k, v in values.items()))
