"""Which reading of the open transcriber's hypotheses the open path goes on with.

:meth:`OpenPicker.pick` weighs the best hypothesis and the beam alternatives whose mean token
log-probability is within ``voice.open.alternative_margin`` of it, in beam order:

1. The first a template accepts as a whole sentence; failing that, the first a template accepts
   in part (one clause of it, or after spelling correction): the pack's commands break Whisper
   tiny's near-ties ("can you end up some sleepers?" first, "can you send up some slippers?"
   second; "Can so do not disturb." matched in part, "Cancel do not disturb." whole). When none
   is a whole command and the grammar path heard words, the transcriber decodes the utterance
   once more with those words as context (the second pass); its hypotheses within the margin
   join the list, after the first beam's, here and in the steps below.
2. Otherwise the pack sentence the best transcript sounds like (a snap; "Team me off." ->
   "tv off"), if one is near and unambiguous.
3. Otherwise the nearest sentences of the few intents nearest in sound to each hypothesis are
   scored by the transcriber beside its own transcript, and the likeliest is taken if it is
   nearly as likely as what it wrote (:mod:`edgepipe.voice.rescore`). The grammar path's
   command competes with them.
4. Otherwise an alternative the learned router reads confidently as the intent it only guesses
   for the best transcript ("I don't want to end it when I'm parking." below the threshold as
   do-not-disturb; "...I don't want to turn the one parking." above).

A snap of either kind is used only when :meth:`~edgepipe.voice.checks.TextChecks.may_replace`
allows it. Alternatives are weighed from a transcriber that declares
:attr:`~edgepipe.voice.contracts.Capability.ALTERNATIVES`, the second pass needs
:attr:`~edgepipe.voice.contracts.Capability.CONTEXT`, step 3
:attr:`~edgepipe.voice.contracts.Capability.SENTENCE_SCORES`; without them they are skipped.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from edgepipe.nlu.learned.model import OOS_LABEL, Prediction
from edgepipe.nlu.slots import with_digits
from edgepipe.pack.voice_schema import OpenSpec
from edgepipe.voice.checks import TextChecks
from edgepipe.voice.contracts import (
    Capability,
    EncodedAudio,
    OpenHypothesis,
    OpenTranscriber,
    Samples,
)
from edgepipe.voice.record import Scored
from edgepipe.voice.rescore import Rescorer
from edgepipe.voice.snap import PhoneticSnapper, Snap

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class Pick:
    """The reading the open path goes on with."""

    text: str
    """The text."""
    rank: int
    """Which hypothesis it is: 0 the best; past the first beam's alternatives, the second
    pass's, its best first. 0 for a snap."""
    snap: Snap | None = None
    """The pack sentence the text is, when it was snapped or rescored."""
    second: OpenHypothesis | None = None
    """The second pass, when it ran."""
    context: str | None = None
    """The grammar path's words as the second pass was given them."""
    rescored: tuple[Scored, ...] | None = None
    """The sentences rescoring scored, the transcriber's own first, when it scored any."""
    stages_ms: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    """``open_second_pass``, ``open_rescore``: those that ran."""


class OpenPicker:
    """Picks the open path's reading (see the module docstring)."""

    def __init__(
        self,
        text: TextChecks,
        transcriber: OpenTranscriber,
        spec: OpenSpec,
        snapper: PhoneticSnapper | None,
    ) -> None:
        self.text = text
        self.transcriber = transcriber
        self.spec = spec
        self.snapper = snapper
        capabilities = transcriber.capabilities
        self._n_best = Capability.ALTERNATIVES in capabilities
        self._second_pass = spec.grammar_context and Capability.CONTEXT in capabilities
        if spec.grammar_context and not self._second_pass:
            log.info(
                "transcriber %r does not decode with context: no second pass", transcriber.name
            )
        self.rescorer: Rescorer | None = None
        if snapper is not None and spec.rescore_max_distance > 0:
            if Capability.SENTENCE_SCORES in capabilities:
                self.rescorer = Rescorer(text, transcriber, spec, snapper)
            else:
                log.info("transcriber %r does not score sentences: no rescoring", transcriber.name)

    def pick(
        self,
        opened: OpenHypothesis,
        samples: Samples | None = None,
        grammar: str | None = None,
        *,
        heard: str | None = None,
        audio: EncodedAudio | None = None,
    ) -> Pick:
        """The reading of ``opened`` to go on with. ``samples``: the utterance (no second pass
        and no rescoring without it); ``grammar``: the grammar path's whole command, when it
        heard one it was not sure enough of to skip the open path; ``heard``: whatever the
        grammar path heard; ``audio``: the transcriber's encoding of ``samples``, when at
        hand."""
        best = Pick(text=opened.text, rank=0)
        if not opened.text:
            return best
        spec, text = self.spec, self.text
        stages: dict[str, float] = {}
        alternatives = opened.alternatives if self._n_best else ()
        ranked = [(0, opened.text)]
        floor = opened.avg_logprob - spec.alternative_margin
        if spec.alternative_margin > 0:
            ranked += [
                (rank, said)
                for rank, (said, logprob) in enumerate(alternatives, 1)
                if said and logprob >= floor
            ]
        hypotheses = [said for _, said in ranked]
        whole = self._first_whole(hypotheses)
        if whole is not None:
            return Pick(text=hypotheses[whole], rank=ranked[whole][0])
        second: OpenHypothesis | None = None
        context: str | None = None
        if heard and samples is not None and self._second_pass:
            started = time.perf_counter()
            context = grammar_context(heard)
            second = self.transcriber.transcribe(samples, audio=audio, context=context)
            stages["open_second_pass"] = (time.perf_counter() - started) * 1000
            seen = {opened.text, *(said for said, _ in alternatives)}
            rank = len(alternatives)
            more = second.alternatives if self._n_best else ()
            for said, logprob in ((second.text, second.avg_logprob), *more):
                if not said or said in seen:
                    continue
                seen.add(said)
                rank += 1
                if logprob >= floor:
                    ranked.append((rank, said))
            hypotheses = [said for _, said in ranked]
            whole = self._first_whole(hypotheses)
            if whole is not None:
                return self._done(hypotheses[whole], ranked[whole][0], second, context, stages)
        partial = next((k for k, said in enumerate(hypotheses) if text.matches(said)), None)
        if partial is not None:
            return self._done(hypotheses[partial], ranked[partial][0], second, context, stages)
        reading = text.classify(opened.text)
        rescored: tuple[Scored, ...] | None = None
        if self.snapper is not None:
            snap = self.snapper.snap(opened.text) if spec.snap_max_distance > 0 else None
            by_rescoring = False
            if snap is None and samples is not None and self.rescorer is not None:
                found = self.rescorer.rescore(hypotheses, samples, grammar, reading)
                snap, by_rescoring, rescored = found.snap, True, found.scored
                if found.ms is not None:
                    stages["open_rescore"] = found.ms
            if snap is not None and text.may_replace(
                opened.text, snap, rescored=by_rescoring, prediction=reading
            ):
                return self._done(snap.text, 0, second, context, stages, snap, rescored)
        agreeing = self._agreeing_alternative(hypotheses, reading)
        if agreeing is not None:
            said, rank = hypotheses[agreeing], ranked[agreeing][0]
            return self._done(said, rank, second, context, stages, None, rescored)
        return self._done(opened.text, 0, second, context, stages, None, rescored)

    @staticmethod
    def _done(
        said: str,
        rank: int,
        second: OpenHypothesis | None,
        context: str | None,
        stages: dict[str, float],
        snap: Snap | None = None,
        rescored: tuple[Scored, ...] | None = None,
    ) -> Pick:
        return Pick(
            text=said,
            rank=rank,
            snap=snap,
            second=second,
            context=context,
            rescored=rescored,
            stages_ms=MappingProxyType(stages),
        )

    def _first_whole(self, hypotheses: list[str]) -> int | None:
        """The index of the first of ``hypotheses`` a template accepts as a whole sentence."""
        for k, said in enumerate(hypotheses):
            found = self.text.match(said)
            if found.match is not None and found.how == "exact":
                return k
        return None

    def _agreeing_alternative(
        self, hypotheses: list[str], reading: Prediction | None
    ) -> int | None:
        """The index of the first alternative the router reads above its threshold as the intent
        it reads the best hypothesis as below it (``reading``). Not when the best hypothesis is
        in the pack's out-of-scope class: an alternative of a question is not a command."""
        if reading is None or len(hypotheses) < 2:
            return None
        if not reading.abstained or reading.best == OOS_LABEL:
            return None
        for k, said in enumerate(hypotheses[1:], 1):
            other = self.text.classify(said)
            if other is not None and not other.abstained and other.best == reading.best:
                log.info(
                    "open path: %r (%s %.2f) read as %r (%.2f)",
                    hypotheses[0],
                    reading.best,
                    reading.confidence,
                    said,
                    other.confidence,
                )
                return k
        return None


def grammar_context(heard: str) -> str:
    """The grammar path's words written as Whisper writes ("can you book a cab for three today
    tell the port" -> "Can you book a cab for 3 today tell the port."), for the second pass. The
    grammar path is often right in the words Whisper tiny gets wrong in noise ("cab for three"
    / "camp for free"), and Whisper does not copy the words the audio does not support."""
    words = re.sub(r"\bi\b", "I", with_digits(" ".join(heard.split())))
    return words[:1].upper() + words[1:] + "."
