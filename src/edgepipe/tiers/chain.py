"""The fallback chain: which tiers a turn tries, in which order, and what it ends with.

The pack declares the order (``policy.fallback``, an intent may set its own) as a list from the
most capable to the last resort, e.g. ``[cloud, local_model, degraded]``. A request starts at its
intent's tier and continues with the tiers to the right of it in that list (a ``rules`` or other
tier not in the list continues with the whole list); a request no intent claims walks the pack's
``policy.out_of_scope`` chain, e.g. ``[local_model, cloud, degraded]`` (the page first, so a
question about the hotel is not sent out). Every tier either answers or passes with a reason;
a tier that raises is recorded (a span named after it, outcome ``error``) and passed over. The
walk always ends with an answer: the ``degraded`` tier's honest reply if it is not in the list.

The turn's reason joins the codes of the tiers that tried and failed with the answering tier's
own (``cloud_unreachable>qa:Parking:generate``); when the answer is a degraded one (route
``fallback``), the router's reason comes first (``oos:class:0.01>offline``,
``template:exact>offline:deferred``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence

from edgepipe.core.deadline import Deadline
from edgepipe.core.errors import EdgepipeError
from edgepipe.core.trace import TraceRecorder
from edgepipe.core.types import Outcome, Route
from edgepipe.tiers.base import Passed, Tier, TierOutcome, TierRequest
from edgepipe.tiers.degraded import DegradedTier

log = logging.getLogger(__name__)

DEGRADED = "degraded"


def walk_order(
    start: str | None, fallback: Sequence[str], out_of_scope: Sequence[str]
) -> list[str]:
    """The tiers a request tries, in order: ``start`` and what lies right of it in
    ``fallback``; ``out_of_scope`` when there is no start. Always ends with ``degraded``."""
    if start is None:
        order = list(out_of_scope)
    elif start in fallback:
        order = list(fallback[fallback.index(start) :])
    else:
        order = [start, *fallback]
    seen: list[str] = []
    for name in order:
        if name not in seen:
            seen.append(name)
    if DEGRADED in seen:
        del seen[seen.index(DEGRADED) + 1 :]
    else:
        seen.append(DEGRADED)
    return seen


class FallbackChain:
    """Walks the engine's tiers for one turn. Holds no per-turn state (shared by threads)."""

    def __init__(self, tiers: Mapping[str, Tier], degraded: DegradedTier) -> None:
        self._tiers = tiers
        self._degraded = degraded

    def run(
        self,
        request: TierRequest,
        order: Sequence[str],
        deadline: Deadline,
        trace: TraceRecorder,
        *,
        own: str | None = None,
    ) -> TierOutcome:
        """Try ``order`` until a tier answers. ``own``: the request's own tier (its intent's):
        when that is not loaded, it is a failure the reason names; another tier that is not
        loaded is skipped."""
        passed: list[Passed] = []
        reading = request.intent
        for name in order:
            if name == DEGRADED:
                break
            tier = self._tiers.get(name)
            if tier is None:
                if name == own:
                    passed.append(Passed(tier=name, code=f"tier_unavailable:{name}", failed=True))
                continue
            asked = dataclasses.replace(request, passed=tuple(passed), intent=reading)
            try:
                result = tier.run(asked, deadline, trace)
            except Exception as exc:  # a tier is a plugin boundary: anything may escape it
                code = exc.code if isinstance(exc, EdgepipeError) else f"{name}_failed"
                log.exception("tier %r failed on turn %s", name, request.turn_id)
                trace.add(
                    name,
                    Outcome.ERROR,
                    error_code=code,
                    detail=f"{type(exc).__name__}: {exc}"[:200],
                )
                passed.append(Passed(tier=name, code=code, failed=True))
                continue
            if isinstance(result, Passed):
                passed.append(result)
                if result.intent is not None:
                    reading = result.intent
                continue
            if result.intent is None and reading is not request.intent:
                result = dataclasses.replace(result, intent=reading)
            return self._reasoned(result, request.route_reason, passed)
        last = self._degraded.answer(passed, trace)
        if reading is not request.intent:
            last = dataclasses.replace(last, intent=reading)
        return self._reasoned(last, request.route_reason, passed)

    @staticmethod
    def _reasoned(outcome: TierOutcome, route_reason: str, passed: list[Passed]) -> TierOutcome:
        failures = [p.code for p in passed if p.failed or p.intent is not None]
        own = [outcome.reason] if outcome.reason else []
        if outcome.route == Route.FALLBACK:
            parts = [route_reason, *failures, *own]
        else:
            parts = [*failures, *own] or [route_reason]
        return dataclasses.replace(outcome, reason=">".join(parts))
