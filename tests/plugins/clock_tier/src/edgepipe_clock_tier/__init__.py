"""A tier another package adds to edgepipe through the ``edgepipe.tiers`` entry point.

It answers a question about the time with the room's local time and passes on everything else.
A pack selects it by name (``policy.out_of_scope: [clock, ...]`` or an intent's ``tier``) and
sets it up under ``tiers.clock`` in pack.yaml (``say``: the reply, with ``{time}``).
"""

from __future__ import annotations

import re

from edgepipe.core.deadline import Deadline
from edgepipe.core.trace import TraceRecorder
from edgepipe.core.types import Outcome, Reply
from edgepipe.tiers.base import Passed, TierContext, TierOutcome, TierRequest, options_of

ASKS_THE_TIME = re.compile(
    r"\bwhat(?:'s| is)? the time\b|\bwhat time is it\b|\bthe time (?:now|please)\b",
    re.IGNORECASE,
)


class ClockTier:
    name = "clock"

    def __init__(self, say: str) -> None:
        self.say = say
        self.prepared = False
        self.closed = False

    def prepare(self) -> None:
        self.prepared = True

    def close(self) -> None:
        self.closed = True

    def run(
        self, request: TierRequest, deadline: Deadline, trace: TraceRecorder
    ) -> TierOutcome | Passed:
        with trace.span(self.name) as span:
            if not ASKS_THE_TIME.search(request.text):
                span.set(Outcome.SKIPPED, detail="not a question about the time")
                return Passed(tier=self.name, code="clock:not_the_time", failed=False)
            text = self.say.format(time=request.now.strftime("%H:%M"))
            span.set(Outcome.OK, detail=request.now.isoformat(timespec="minutes"))
        return TierOutcome(
            route=self.name, reason="clock:time", reply=Reply(text=text, response_key="clock:time")
        )


def build(context: TierContext) -> ClockTier:
    options = options_of(context.pack, context.name)
    return ClockTier(str(options.get("say", "It's {time}.")))
