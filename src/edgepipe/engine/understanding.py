"""What the voice front end may ask of the text side: does this match, is it a whole command,
what does the router read, how much is at stake.

A small interface instead of the whole engine: the voice front end weighs transcripts with it
(:mod:`edgepipe.voice.arbitration`), and hands the match it found to the turn
(``Session.handle_text(..., matched=...)``) instead of having it computed again. A test can
give the voice front end any object with these methods.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from edgepipe.nlu.learned.model import Prediction
from edgepipe.nlu.templates import TemplateResult

if TYPE_CHECKING:
    from edgepipe.engine.engine import Engine
    from edgepipe.pack.loader import Pack


class Understanding(Protocol):
    """The text interface the voice front end uses."""

    @property
    def pack(self) -> Pack: ...

    def match(self, text: str) -> TemplateResult:
        """The template matcher's result for ``text`` now."""
        ...

    def classify(self, text: str) -> Prediction | None:
        """The learned router's reading (None without a router)."""
        ...

    def high_impact(self, intent: str) -> bool:
        """Whether ``intent`` books or bills (never acted on a guess)."""
        ...


class TextUnderstanding:
    """An engine's :class:`Understanding`."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @property
    def pack(self) -> Pack:
        return self._engine.pack

    def match(self, text: str) -> TemplateResult:
        return self._engine.matcher.match(text, self._engine.now())

    def classify(self, text: str) -> Prediction | None:
        router = self._engine.router
        return router.classify(text) if router is not None else None

    def high_impact(self, intent: str) -> bool:
        return self._engine.pack.intents[intent].spec.impact == "high"
