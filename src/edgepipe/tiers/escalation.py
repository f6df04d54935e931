"""Selective escalation: when (and what) a turn may send to the cloud, and what happens if not.

For a request routed to the cloud (out of scope, or an intent whose tier is ``cloud``) the
checks run in this order, each a span of the turn's trace:

1. **privacy**: the gate decides what may leave (``local_only``: nothing; ``redact``: the
   request with personal data replaced; ``allowed``: the request, still without cards, IDs,
   contact details or the guest's name). Every decision is written to the audit log.
2. **link**: ``offline`` means no attempt (only rate-limited health probes); a ``deferrable``
   intent is queued in the outbox instead, and the guest is told so.
3. **budget**: nothing is sent once the month's spend would pass the budget.
4. **call**: the cloud client, under the turn's deadline, with retries and the circuit breaker.

Any refusal or failure ends in an honest reply that says what still works; a failed call for an
intent the local model can answer falls back to it (cloud -> local model -> template reply).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from edgepipe.connectivity import Connectivity, Link
from edgepipe.deadline import Deadline
from edgepipe.frames import Outcome, Reply, Route, TraceRecorder
from edgepipe.outbox import Deferred, Outbox
from edgepipe.pack.loader import Pack
from edgepipe.privacy.gate import DataClass, Egress, PrivacyGate
from edgepipe.tiers.cloud import CloudAnswer, CloudClient, CloudError
from edgepipe.tiers.rules import Responder, TierOutcome

log = logging.getLogger(__name__)

_DEFER_ON = frozenset(
    {"cloud_unreachable", "cloud_connect_timeout", "cloud_breaker_open", "cloud_connection_reset"}
)
"""Failures after which a deferrable request is queued rather than dropped."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Escalated:
    """The outcome of an escalation attempt."""

    outcome: TierOutcome
    failed_code: str | None = None
    """Set when the cloud was tried and failed (the caller may fall back to the local model)."""


class CloudTier:
    """The cloud client wrapped in privacy, connectivity, budget and the outbox."""

    def __init__(
        self,
        pack: Pack,
        client: CloudClient,
        gate: PrivacyGate,
        connectivity: Connectivity,
        outbox: Outbox | None,
        responder: Responder,
    ) -> None:
        self._pack = pack
        self.client = client
        self.gate = gate
        self.connectivity = connectivity
        self.outbox = outbox
        self._responder = responder
        self._delivering = threading.Lock()
        connectivity.on_change(self._on_link_change)

    def _on_link_change(self, old: Link, new: Link) -> None:
        log.info("link %s -> %s", old.value, new.value)
        # deliver when the link comes back (a probe got through, or it is fully up again); not
        # when it degrades (online -> degraded: a call just failed), which would add load just
        # as the cloud struggles
        back = old is Link.OFFLINE or new is Link.ONLINE
        if back and new is not Link.OFFLINE and self.outbox is not None:
            threading.Thread(
                target=self.deliver_deferred, name="edgepipe-outbox", daemon=True
            ).start()

    def data_class(self, intent: str | None) -> DataClass:
        if intent is None:
            return DataClass(self._pack.spec.cloud.out_of_scope_privacy)
        return DataClass(self._pack.intents[intent].policy.privacy)

    def escalate(
        self,
        text: str,
        intent: str | None,
        deadline: Deadline,
        trace: TraceRecorder,
        *,
        turn_id: str,
    ) -> Escalated:
        """Try to answer ``text`` with the cloud."""
        spec = self._pack.spec.cloud
        with trace.span("privacy") as span:
            egress = self.gate.check(text, data_class=self.data_class(intent))
            span.set(
                Outcome.OK if egress.allowed else Outcome.VIOLATION,
                detail=egress.reason,
                error_code=None if egress.allowed else "privacy_local_only",
            )
        if not egress.allowed:
            self._audit(intent, egress, 0, "blocked", turn_id)
            return Escalated(outcome=self._fallback("privacy_blocked", "privacy:local_only"))

        deferrable = intent is not None and self._pack.intents[intent].spec.deferrable
        with trace.span("link") as span:
            # a health probe takes up to connect + read timeouts: only when the turn has room
            probe_ms = 2000 * spec.connect_timeout_s + 200
            state = (
                self.connectivity.maybe_probe()
                if deadline.remaining_ms() > probe_ms
                else self.connectivity.state
            )
            span.set(
                Outcome.OK if state is not Link.OFFLINE else Outcome.SKIPPED, detail=state.value
            )
        if state is Link.OFFLINE:
            if deferrable and intent is not None:
                return self._defer(intent, egress, trace, turn_id, reason="offline:deferred")
            self._audit(intent, egress, 0, "skipped:offline", turn_id)
            return Escalated(outcome=self._fallback("offline", "offline"))

        with trace.span("budget") as span:
            estimate = self.client.estimate_cost(len(egress.text) // 4 + 64, spec.max_tokens)
            left = self.client.budget_left()
            over = left < estimate
            span.set(
                Outcome.VIOLATION if over else Outcome.OK,
                detail=f"left {left:.4f} {spec.currency}",
                error_code="budget_exhausted" if over else None,
            )
        if over:
            self._audit(intent, egress, 0, "skipped:budget", turn_id)
            return Escalated(outcome=self._fallback("budget_exhausted", "cloud:budget_exhausted"))

        messages = [
            {"role": "system", "content": spec.system_prompt},
            {"role": "user", "content": egress.text},
        ]
        failure: CloudError | None = None
        answer: CloudAnswer | None = None
        with trace.span("cloud") as span:
            try:
                answer = self.client.chat(messages, deadline=deadline)
            except CloudError as exc:
                timed_out = "deadline" in exc.code or "timeout" in exc.code
                span.set(
                    Outcome.TIMEOUT if timed_out else Outcome.ERROR,
                    error_code=exc.code,
                    detail=f"breaker {self.client.breaker_state}",
                )
                failure = exc
            else:
                usage = f"{answer.input_tokens}+{answer.output_tokens} tok"
                if answer.usage_estimated:
                    usage += "~"
                span.set(
                    Outcome.OK,
                    detail=f"{answer.attempts} attempt(s), {usage}, "
                    f"{answer.cost:.5f} {spec.currency}, ttft {answer.ttft_ms:.0f} ms"
                    + (", cut at the deadline" if answer.cut_at_deadline else ""),
                )
        if answer is not None:
            self.connectivity.record_success()
            self._audit(intent, egress, answer.bytes_sent, "sent", turn_id)
            return Escalated(
                outcome=TierOutcome(
                    route=Route.CLOUD,
                    reason=f"cloud:{self.client.config.model}",
                    reply=Reply(text=answer.text, response_key="cloud", data={"cost": answer.cost}),
                )
            )
        assert failure is not None
        if failure.code != "cloud_breaker_open":
            self.connectivity.record_failure()
        # a failed call may still have sent the request (a 503, a timeout while waiting for the
        # answer, a retry): the audit log records what left, not only what was answered
        self._audit(intent, egress, failure.bytes_sent, f"failed:{failure.code}", turn_id)
        if deferrable and intent is not None and failure.code in _DEFER_ON:
            return self._defer(
                intent, egress, trace, turn_id, reason=f"{failure.code}:deferred", audited=True
            )
        return Escalated(
            outcome=self._fallback("cloud_failed", failure.code), failed_code=failure.code
        )

    def _defer(
        self,
        intent: str,
        egress: Egress,
        trace: TraceRecorder,
        turn_id: str,
        *,
        reason: str,
        audited: bool = False,
    ) -> Escalated:
        if self.outbox is None:
            return Escalated(outcome=self._fallback("offline", reason.replace(":deferred", "")))
        with trace.span("outbox") as span:
            try:
                item = self.outbox.enqueue(intent=intent, text=egress.text, slots={})
                span.set(Outcome.OK, detail=f"#{item}")
            except Exception as exc:  # sqlite errors, a full disk: the guest still gets an answer
                span.set(Outcome.ERROR, error_code="outbox_failed", detail=str(exc)[:120])
                return Escalated(outcome=self._fallback("offline", "offline"))
        if not audited:
            self._audit(intent, egress, 0, "deferred", turn_id)
        return Escalated(
            outcome=TierOutcome(
                route=Route.FALLBACK, reason=reason, reply=self._responder.system("deferred")
            )
        )

    def _fallback(self, key: str, reason: str) -> TierOutcome:
        return TierOutcome(route=Route.FALLBACK, reason=reason, reply=self._responder.system(key))

    def _audit(
        self, intent: str | None, egress: Egress, bytes_sent: int, outcome: str, turn_id: str
    ) -> None:
        self.gate.record(
            tier="cloud",
            intent=intent,
            egress=egress,
            bytes_sent=bytes_sent,
            outcome=outcome,
            turn_id=turn_id,
            destination=self.client.config.host,
        )

    def deliver_deferred(self) -> tuple[int, int]:
        """Send queued requests now (one delivery run at a time). Returns (delivered, failed)."""
        if self.outbox is None or not self._delivering.acquire(blocking=False):
            return 0, 0
        try:
            spec = self._pack.spec.cloud

            def send(item: Deferred) -> str:
                # item.text was redacted by the gate before it was queued
                messages = [
                    {"role": "system", "content": spec.system_prompt},
                    {"role": "user", "content": item.text},
                ]
                budget_ms = spec.read_timeout_s * 1000 * 2
                egress = Egress(
                    allowed=True,
                    text=item.text,
                    data_class=self.data_class(item.intent),
                    redacted=(),
                    reason="outbox",
                )
                try:
                    answer = self.client.chat(messages, deadline=Deadline(budget_ms=budget_ms))
                except CloudError as exc:  # every delivery attempt is an egress decision
                    self.gate.record(
                        tier="cloud",
                        intent=item.intent,
                        egress=egress,
                        bytes_sent=exc.bytes_sent,
                        outcome=f"failed:{exc.code}:deferred",
                        destination=self.client.config.host,
                    )
                    raise
                self.gate.record(
                    tier="cloud",
                    intent=item.intent,
                    egress=egress,
                    bytes_sent=answer.bytes_sent,
                    outcome="sent:deferred",
                    destination=self.client.config.host,
                )
                return answer.text

            return self.outbox.deliver(send)
        finally:
            self._delivering.release()
