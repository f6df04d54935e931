"""The last resort: an honest answer that says what still works.

Every chain ends here. The reply is the most specific one a tier before it left (``offline``,
``privacy_blocked``, ``budget_exhausted``, ``cloud_failed``), or the pack's ``fallback`` reply.
"""

from __future__ import annotations

from collections.abc import Sequence

from edgepipe.actions.responses import Responder
from edgepipe.core.deadline import Deadline
from edgepipe.core.trace import TraceRecorder
from edgepipe.core.types import Outcome, Route
from edgepipe.tiers.base import Passed, TierContext, TierOutcome, TierRequest


class DegradedTier:
    """Always answers (route ``fallback``)."""

    name = "degraded"

    def __init__(self, responder: Responder) -> None:
        self._responder = responder

    @classmethod
    def build(cls, context: TierContext) -> DegradedTier:
        return cls(context.responder)

    def prepare(self) -> None:
        return None

    def close(self) -> None:
        return None

    def run(self, request: TierRequest, deadline: Deadline, trace: TraceRecorder) -> TierOutcome:
        return self.answer(request.passed, trace)

    def answer(self, passed: Sequence[Passed], trace: TraceRecorder) -> TierOutcome:
        """The honest reply after ``passed``."""
        with trace.span("respond") as span:
            said = [p.say for p in passed if p.say is not None]
            reply = said[-1] if said else self._responder.system("fallback")
            span.set(Outcome.OK, detail=reply.response_key)
        return TierOutcome(route=Route.FALLBACK, reason=None, reply=reply)
