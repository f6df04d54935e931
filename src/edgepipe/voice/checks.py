"""What the voice front end asks of the text side, with the answers it asks for again kept, and
the rule for replacing what was heard by a pack sentence.

The rule that a guess never books or bills is the router policy's, asked through
:meth:`~edgepipe.engine.understanding.Understanding.high_impact`, not restated here.
"""

from __future__ import annotations

from edgepipe.engine.understanding import Understanding
from edgepipe.nlu.learned.model import OOS_LABEL, Prediction
from edgepipe.nlu.templates import TemplateResult
from edgepipe.voice.snap import Snap

_COMPLETE_CACHE = 2048


class TextChecks:
    """An :class:`Understanding` with the answers the voice front end asks for again and again
    kept: whether a text is a whole command (across turns: the listener asks on every frame of
    a pause), and the template matches of the turn being decided (the open path asks about one
    sentence several times)."""

    def __init__(self, understanding: Understanding) -> None:
        self.understanding = understanding
        self._complete: dict[str, bool] = {}
        self._turn: dict[str, TemplateResult] = {}

    def new_turn(self) -> None:
        """Forget the last turn's matches."""
        self._turn.clear()

    def match(self, text: str) -> TemplateResult:
        """The template match of ``text``, kept for the turn being decided."""
        found = self._turn.get(text)
        if found is None:
            found = self._turn[text] = self.understanding.match(text)
        return found

    def matches(self, text: str) -> bool:
        """Whether any template matches ``text`` (exact or not)."""
        return self.match(text).match is not None

    def is_complete(self, text: str) -> bool:
        """Whether ``text`` is a whole command the pack's templates accept as it is."""
        text = text.strip()
        if not text:
            return False
        cached = self._complete.get(text)
        if cached is None:
            matched = self.understanding.match(text)
            cached = matched.match is not None and matched.how == "exact"
            if len(self._complete) > _COMPLETE_CACHE:
                self._complete.clear()
            self._complete[text] = cached
        return cached

    def classify(self, text: str) -> Prediction | None:
        """The router's reading (None without a router)."""
        return self.understanding.classify(text)

    def high_impact(self, intent: str) -> bool:
        """Whether ``intent`` books or bills: never acted on from a guess."""
        return self.understanding.high_impact(intent)

    def may_replace(
        self,
        heard: str,
        snap: Snap,
        *,
        rescored: bool = False,
        prediction: Prediction | None = None,
    ) -> bool:
        """Whether ``heard`` may be replaced by the pack sentence ``snap``: a guess never books
        or bills (high-impact intents are left to the router, which asks before acting on
        anything but the guest's own words), and an open request the router reads as another
        intent is left as heard. A rescored sentence, the weaker evidence, is also refused when
        the router puts ``heard`` in the pack's out-of-scope class, unless its best in-scope
        guess is still the sentence's intent ("What time is it in Tokyo?" is not "what time
        is a dinner open"). ``prediction``: the router's reading of ``heard``, if at hand."""
        if self.high_impact(snap.intent):
            return False
        if not self.matches(snap.text):
            return False
        prediction = prediction or self.classify(heard)
        if prediction is None:  # no router: the templates' word is all there is
            return True
        if rescored and prediction.best == OOS_LABEL and prediction.top != snap.intent:
            return False
        return prediction.abstained or prediction.best == snap.intent
