"""The composition root: everything a pack needs, built once, shared by its sessions, closed once.

:class:`Engine` builds the template matcher, the slot spotter, the learned router, the reply
renderer, the business rules and every tier the pack's policy names (through the tier
registry), wires the fallback chain and the telemetry writer, and owns their lifetime: ``with
Engine.load("packs/hotel") as engine: ...`` closes the tiers (connections, worker threads,
SQLite files), the telemetry writer (after writing what is queued) and the models it loaded.
Heavy things come from a :class:`~edgepipe.core.resources.Resources`: pass one to share models
between engines (a test session; a service that loads a new version of its pack), otherwise the
engine keeps its own.

An engine holds no conversation: :meth:`Engine.session` gives the session of a room (its device
state and its waiting question), and any number of sessions may run turns at once on one engine.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from edgepipe.actions.business_rules import RuleEngine
from edgepipe.actions.handlers import resolve_handler
from edgepipe.actions.responses import Responder
from edgepipe.actions.state import InMemoryState, StateAdapter
from edgepipe.core.deadline import MonotonicClock
from edgepipe.core.errors import EdgepipeError
from edgepipe.core.paths import edgepipe_home
from edgepipe.core.resources import Resources
from edgepipe.core.types import TurnResult
from edgepipe.engine.session import Session
from edgepipe.engine.turn import TurnRunner, WallClock
from edgepipe.engine.understanding import TextUnderstanding
from edgepipe.nlu.learned.router import LearnedRouter
from edgepipe.nlu.lexicon import shared_pronunciations
from edgepipe.nlu.policy import RoutingPolicy
from edgepipe.nlu.scope import ScopeGuard
from edgepipe.nlu.slots import SlotSpotter, shared_spotter
from edgepipe.nlu.templates import TemplateMatcher
from edgepipe.pack.loader import Pack, load_pack
from edgepipe.pack.schema import RoomSpec
from edgepipe.telemetry.store import TelemetryStore
from edgepipe.telemetry.writer import TelemetryWriter
from edgepipe.tiers.base import (
    ReplyShaper,
    SlotExtractor,
    Tier,
    TierContext,
    TierUnavailable,
    UsesTiers,
)
from edgepipe.tiers.chain import DEGRADED, FallbackChain
from edgepipe.tiers.degraded import DegradedTier
from edgepipe.tiers.registry import TIERS

if TYPE_CHECKING:
    from edgepipe.nlu.learned.neighbours import ValueNeighbours

log = logging.getLogger(__name__)

RouterOption = LearnedRouter | Literal["auto"] | None


def load_engine_pack(path: str | Path) -> Pack:
    """Load a pack and check its handler references against the runtime's handlers."""
    return load_pack(path, resolve_handler=resolve_handler)


class Engine:
    """A loaded pack, ready to run turns for any number of sessions. Thread-safe."""

    def __init__(
        self,
        pack: Pack,
        *,
        clock: WallClock | None = None,
        monotonic: MonotonicClock = time.monotonic,
        telemetry: TelemetryStore | None = None,
        resources: Resources | None = None,
        router: RouterOption = "auto",
        tiers: Mapping[str, Tier | None] | None = None,
        home: Path | None = None,
    ) -> None:
        """``router``: ``"auto"`` (what the pack enables and the installation provides),
        ``None`` (off) or a ready router. ``tiers``: tiers by name that replace what the pack
        would build (``None``: that tier is off). ``telemetry``: the store turns are recorded
        in (closed with the engine). ``home``: where tiers keep files (default
        ``$EDGEPIPE_HOME``)."""
        self.pack = pack
        self._clock: WallClock = clock or (lambda: datetime.now(pack.timezone))
        self._owns_resources = resources is None
        self.resources = resources if resources is not None else Resources()
        self._closed = False
        self._sessions: dict[str, Session] = {}
        self._sessions_lock = threading.Lock()
        self._own_tiers: list[Tier] = []
        try:
            self.matcher = _matcher(pack, self.resources)
            self.spotter = shared_spotter(pack, self.resources)
            self.rules = RuleEngine(pack)
            self.responder = Responder(pack)
            self.router = _router(pack, self.resources) if router == "auto" else router
            self.tiers = self._build_tiers(dict(tiers or {}), home or edgepipe_home())
            self.chain = FallbackChain(self.tiers, DegradedTier(self.responder))
            self.shaper = next((t for t in self.tiers.values() if isinstance(t, ReplyShaper)), None)
            extractor = next((t for t in self.tiers.values() if isinstance(t, SlotExtractor)), None)
            self.policy = RoutingPolicy(
                pack,
                self.responder,
                self.spotter,
                self.router,
                extractor,
                _neighbours(pack, self.resources, self.spotter, self.router),
            )
            self.scope = ScopeGuard(pack)
            self.understanding = TextUnderstanding(self)
            self._telemetry = TelemetryWriter(telemetry) if telemetry is not None else None
            self.turns = TurnRunner(self, monotonic)
        except BaseException:
            self.close()
            raise

    @classmethod
    def load(cls, path: str | Path, **options: object) -> Engine:
        """Load the pack at ``path`` and build an engine for it (options as for the
        constructor)."""
        return cls(load_engine_pack(path), **options)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ building

    def tier_names(self) -> list[str]:
        """Every tier the pack's policy names, in a stable order (``degraded`` aside)."""
        names: list[str] = ["rules"]
        policies = [self.pack.spec.policy, *(i.policy for i in self.pack.intents.values())]
        for policy in policies:
            names += [policy.tier, *policy.fallback]
        names += self.pack.spec.policy.out_of_scope
        return [n for n in dict.fromkeys(names) if n != DEGRADED]

    def _build_tiers(self, given: dict[str, Tier | None], home: Path) -> dict[str, Tier]:
        """Build the tiers the pack names (``given`` replaces them), let those that use other
        tiers bind to them, then prepare the ones built here."""
        built: dict[str, Tier] = {}
        for name in self.tier_names():
            if name in given:
                tier = given[name]
                if tier is not None:
                    built[name] = tier
                continue
            tier_context = TierContext(
                name=name,
                pack=self.pack,
                responder=self.responder,
                rules=self.rules,
                resources=self.resources,
                home=home,
            )
            try:
                made = TIERS.get(name)(tier_context)
            except (ImportError, TierUnavailable) as exc:
                log.warning("%s tier unavailable: %s", name, exc)
                continue
            if made is None:
                continue
            self._own_tiers.append(made)
            built[name] = made
        for tier in built.values():
            if isinstance(tier, UsesTiers):
                tier.bind(built)
        for name, tier in list(built.items()):
            if tier not in self._own_tiers:
                continue
            try:
                tier.prepare()
            except (ImportError, TierUnavailable) as exc:
                log.warning("%s tier unavailable: %s", name, exc)
                del built[name]
        return built

    # ------------------------------------------------------------------ running

    def session(
        self,
        session_id: str = "default",
        *,
        room: RoomSpec | None = None,
        state: StateAdapter | None = None,
    ) -> Session:
        """The session of ``session_id`` (a room or device), created on first use with
        ``room`` (default: the pack's room) and ``state`` (default: the pack's initial state,
        in memory)."""
        if self._closed:
            raise EdgepipeError("the engine is closed", code="engine_closed")
        with self._sessions_lock:
            existing = self._sessions.get(session_id)
            if existing is not None:
                return existing
            made = Session(
                self,
                session_id,
                room or self.pack.spec.context.room,
                state or InMemoryState(values=dict(self.pack.spec.state.initial)),
            )
            self._sessions[session_id] = made
            return made

    def sessions(self) -> list[Session]:
        with self._sessions_lock:
            return list(self._sessions.values())

    def now(self) -> datetime:
        """The engine's current local time (pack time zone)."""
        return self._clock()

    def fallback_of(self, intent: str | None) -> Sequence[str]:
        """The fallback order for ``intent`` (the pack's default for None)."""
        if intent is None:
            return self.pack.spec.policy.fallback
        return self.pack.intents[intent].policy.fallback

    def record(self, result: TurnResult, session: Session) -> None:
        """Queue a turn for the telemetry writer (a no-op without telemetry)."""
        if self._telemetry is not None:
            self._telemetry.submit(
                result,
                pack=self.pack.name,
                pack_version=self.pack.spec.version,
                names=session.guest_names,
            )

    @property
    def telemetry(self) -> TelemetryStore | None:
        return self._telemetry.store if self._telemetry is not None else None

    @property
    def telemetry_dropped(self) -> int:
        """Turns not recorded because the writer's queue was full."""
        return self._telemetry.dropped if self._telemetry is not None else 0

    def flush_telemetry(self, timeout_s: float | None = 10.0) -> bool:
        """Wait until every turn run so far is recorded."""
        return self._telemetry.flush(timeout_s) if self._telemetry is not None else True

    # ------------------------------------------------------------------ closing

    def close(self) -> None:
        """Close the tiers it built, write and close telemetry, and close its own resources.
        Idempotent."""
        if self._closed:
            return
        self._closed = True
        for tier in reversed(self._own_tiers):
            try:
                tier.close()
            except Exception:  # one tier failing to close must not keep the others open
                log.exception("closing tier %r failed", getattr(tier, "name", tier))
        writer = getattr(self, "_telemetry", None)
        if writer is not None:
            writer.close()
        if self._owns_resources:
            self.resources.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _matcher(pack: Pack, resources: Resources) -> TemplateMatcher:
    def build() -> TemplateMatcher:
        matcher = TemplateMatcher(pack, shared_pronunciations(resources))
        matcher.warm_up()
        return matcher

    return resources.get(("matcher", str(pack.root.resolve()), pack.content_hash), build)


def _neighbours(
    pack: Pack, resources: Resources, spotter: SlotSpotter, router: LearnedRouter | None
) -> ValueNeighbours | None:
    """Slot values read from the pack's examples, with the router's encoder (None without)."""
    # a test's fake router has no classifier
    encoder = getattr(getattr(router, "classifier", None), "encoder", None)
    if encoder is None:
        return None
    from edgepipe.nlu.learned.neighbours import shared_neighbours

    return shared_neighbours(pack, resources, spotter, encoder)


def _router(pack: Pack, resources: Resources) -> LearnedRouter | None:
    """The pack's learned router, or None (disabled, too few intents, packages missing)."""
    if not pack.spec.router.enabled:
        return None
    if len(pack.intents) < 2:
        log.info("pack %s has fewer than two intents: templates only", pack.name)
        return None
    try:
        from edgepipe.nlu.learned.encoder import shared_encoder
        from edgepipe.nlu.learned.router import cache_key, router_config

        config = router_config(pack)
        build: Callable[[], LearnedRouter] = lambda: LearnedRouter.for_pack(  # noqa: E731
            pack, encoder=shared_encoder(resources) if config.use_encoder else None
        )
        return resources.get(("router", cache_key(pack, config)), build)
    except (ImportError, EdgepipeError, ValueError) as exc:
        log.warning("learned router unavailable, using templates only: %s", exc)
        return None
