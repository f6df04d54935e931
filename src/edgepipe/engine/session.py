"""A session: one room (or device) talking to an engine.

The engine holds what a pack needs, loaded once and shared; a session holds what belongs to one
conversation: the room it is for, that room's device state, and the question it is waiting on
(a confirmation, a choice, a missing slot). One engine serves many sessions at once; one
session runs one turn at a time (a second turn for the same room waits for the first, so an
answer can never be read against a question it was not an answer to).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from edgepipe.actions.state import StateAdapter
from edgepipe.core.types import InputSource, TurnResult
from edgepipe.nlu.dialogue import Pending
from edgepipe.pack.schema import RoomSpec

if TYPE_CHECKING:
    from edgepipe.engine.engine import Engine
    from edgepipe.nlu.templates import TemplateResult


class Session:
    """One room's conversation with an :class:`~edgepipe.engine.engine.Engine`."""

    def __init__(
        self, engine: Engine, session_id: str, room: RoomSpec, state: StateAdapter
    ) -> None:
        self.engine = engine
        self.id = session_id
        """The room or device id (telemetry and traces carry it)."""
        self.room = room
        """The room: its number, type (capabilities) and guest."""
        self.state = state
        """The room's device state and service requests."""
        self.pending: Pending | None = None
        """The question the last turn asked, if it is still waiting for an answer."""
        self._turn = threading.Lock()

    def handle_text(
        self,
        text: str,
        *,
        source: InputSource = InputSource.TEXT,
        budget_ms: float | None = None,
        matched: TemplateResult | None = None,
    ) -> TurnResult:
        """Run one turn for request ``text`` within ``budget_ms`` (default: the pack's budget for
        ``source``). ``matched``: the template match of exactly this text, when the caller has
        it already (the voice front end does). Raises
        :class:`~edgepipe.core.errors.InputError` for unusable input."""
        with self._turn:
            return self.engine.turns.run(
                self, text, source=source, budget_ms=budget_ms, matched=matched
            )

    @property
    def guest_names(self) -> tuple[str, ...]:
        """Names to keep out of telemetry and cloud requests for this room."""
        return tuple(n for n in [self.room.guest_name] if n)
