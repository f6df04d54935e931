"""The tier contract: one request in, an answer or a reasoned pass out.

A **tier** answers requests the router hands it: the rules tier executes intents, the local model
answers questions from the deployment's page, the cloud answers what nothing local can, and the
degraded tier gives the honest answer when nobody else did. Every tier has the same shape::

    run(request, deadline, trace) -> TierOutcome   # it answered
                                   | Passed        # it did not; the chain asks the next one

and is built by a factory (``TierContext -> Tier | None``) registered under a name in
:data:`TIERS`: edgepipe's own in :mod:`edgepipe.tiers.registry`, another package's through the
``edgepipe.tiers`` entry-point group. A pack names tiers in its policy (an intent's ``tier``,
the ``fallback`` order, the ``out_of_scope`` chain); the engine builds the ones named, once, and
:class:`~edgepipe.tiers.chain.FallbackChain` walks them.

A tier is shared by every session and thread of an engine: whatever it keeps between turns must
be safe to use from several threads (the local model serialises its calls; the cloud client's
pool is thread-safe).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from edgepipe.core.deadline import Deadline
from edgepipe.core.errors import EdgepipeError
from edgepipe.core.registry import Registry
from edgepipe.core.trace import TraceRecorder
from edgepipe.core.types import IntentMatch, Reply, SlotValue

if TYPE_CHECKING:
    from edgepipe.actions.business_rules import RuleEngine
    from edgepipe.actions.responses import Responder
    from edgepipe.actions.state import StateAdapter
    from edgepipe.core.resources import Resources
    from edgepipe.nlu.dialogue import Pending
    from edgepipe.pack.loader import Pack
    from edgepipe.pack.schema import RoomSpec


class TierUnavailable(EdgepipeError):
    """A tier the pack asks for cannot be built here (a package or model is missing)."""

    default_code = "tier_unavailable"


@dataclass(frozen=True, slots=True, kw_only=True)
class TierContext:
    """What a tier factory may use to build its tier."""

    name: str
    """The name the tier is registered (and routed) under."""
    pack: Pack
    responder: Responder
    """The pack's replies."""
    rules: RuleEngine
    """The pack's business rules."""
    resources: Resources
    """Shared models: ``resources.get(key, build)`` loads a model once per owner."""
    home: Path
    """Where the tier may keep files (``$EDGEPIPE_HOME`` unless the engine says otherwise)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Passed:
    """A tier did not answer; the chain asks the next one."""

    tier: str
    """Which tier passed."""
    code: str
    """Why (``offline``, ``cloud_unreachable``, ``local_model:not_qa``...)."""
    failed: bool
    """True: the tier tried and failed (the code joins the turn's reason). False: the request is
    not one it answers (a chat request for the question answerer), which says nothing about the
    turn."""
    say: Reply | None = None
    """What to tell the guest if no later tier answers (the degraded tier uses the latest)."""
    intent: IntentMatch | None = None
    """A reading the tier found without answering it (the resolve tier: a question for the
    page); the tiers after it get it as the request's intent."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TierRequest:
    """What the chain hands a tier."""

    text: str
    """The request text (normalised)."""
    intent: IntentMatch | None
    """The router's reading; None for a request no intent claims (out of scope)."""
    also: tuple[IntentMatch, ...] = ()
    """Further requests of the same sentence, answered after ``intent`` by the rules tier."""
    turn_id: str
    now: datetime
    """The turn's local time (pack time zone)."""
    room: RoomSpec
    """The room (or device) the turn is for."""
    state: StateAdapter
    """That room's state."""
    route_reason: str
    """Why the router sent the request where it did (``template:exact``, ``oos:0.12<0.57``)."""
    candidates: tuple[str, ...] = ()
    """The intents the router ranked highest for the request (best first; empty without a
    router), for a tier that reads the request itself."""
    passed: tuple[Passed, ...] = ()
    """What the tiers tried before this one said, in order."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TierOutcome:
    """A tier's answer."""

    route: str
    """The route the turn ends on (a :class:`~edgepipe.core.types.Route` for edgepipe's own
    tiers; a plugin tier's name for its own). A refusal turns ``rules`` into ``rejected``."""
    reason: str | None
    """The tier's reason, for the trace; None keeps the router's."""
    reply: Reply
    handler_executed: bool = False
    """Whether an intent handler ran (and may have changed the room's state)."""
    intent: IntentMatch | None = field(default=None)
    """Set when the tier resolved the request's intent itself (a question the router found out
    of scope, answered from the page)."""
    also: tuple[IntentMatch, ...] = ()
    """Further requests of the same sentence this tier answered, after the first."""
    pending: Pending | None = None
    """A question the answer asks (confirm, a missing slot), kept by the session for the
    guest's next turn."""


def joined_reply(replies: Iterable[Reply]) -> Reply:
    """One reply for the requests of one sentence, in order: the texts one after the other, the
    response keys joined by "+"."""
    said = list(replies)
    return Reply(
        text=" ".join(r.text for r in said).strip(),
        response_key="+".join(r.response_key for r in said),
    )


class Tier(Protocol):
    """One tier. Built by a factory, prepared once, run by many threads, closed once."""

    name: str

    def prepare(self) -> None:
        """Load and warm up (first-call costs are paid here, never in a turn)."""
        ...

    def run(
        self, request: TierRequest, deadline: Deadline, trace: TraceRecorder
    ) -> TierOutcome | Passed:
        """Answer ``request`` within ``deadline`` (each stage a span of ``trace``), or pass."""
        ...

    def close(self) -> None:
        """Release what the tier holds (connections, threads, files)."""
        ...


@runtime_checkable
class UsesTiers(Protocol):
    """A tier that uses other tiers' services (the resolve tier asks the model tiers); the
    engine calls :meth:`bind` once, after every tier is built and before any is prepared."""

    def bind(self, tiers: Mapping[str, Tier]) -> None: ...


TierFactory = Callable[[TierContext], "Tier | None"]
"""Builds a tier; None when the pack's settings leave it off. Raises :class:`TierUnavailable`
when it cannot be built here."""

TIERS: Registry[TierFactory] = Registry("edgepipe.tiers", "tier")
"""Tier factories by name (edgepipe's own are added by :mod:`edgepipe.tiers.registry`)."""


@runtime_checkable
class ReplyShaper(Protocol):
    """A tier that can rephrase a rules reply (an intent's ``shape_reply``)."""

    def shape(self, reply: Reply, deadline: Deadline, trace: TraceRecorder) -> Reply: ...


@runtime_checkable
class SlotExtractor(Protocol):
    """A tier that can fill slots the router could not spot, before the guest is asked."""

    def extract_slots(
        self,
        intent: str,
        text: str,
        missing: list[str],
        now: datetime,
        deadline: Deadline,
        trace: TraceRecorder,
    ) -> dict[str, SlotValue]: ...


def options_of(pack: Pack, name: str) -> Mapping[str, object]:
    """A plugin tier's settings: ``tiers.<name>`` in pack.yaml (``{}`` when absent)."""
    return pack.spec.tiers.get(name, {})
