"""The cloud tier: when (and what) a turn may send to the cloud, and what happens if not.

For a request that reaches the cloud tier (out of scope, an intent whose tier is ``cloud``, or
the fallback after another tier) the checks run in this order, each a span of the turn's trace:

1. **privacy**: the gate decides what may leave (``local_only``: nothing; ``redact``: the
   request with personal data replaced; ``allowed``: the request, still without cards, IDs,
   contact details or the guest's name). Every decision is written to the audit log.
2. **link**: ``offline`` means no attempt (only rate-limited health probes); a ``deferrable``
   intent is queued in the outbox instead, and the guest is told so.
3. **budget**: nothing is sent once the month's spend would pass the budget.
4. **audit**: what is about to leave is written to the audit log first; when that fails,
   nothing is sent (the gate fails closed).
5. **call**: the cloud client, under the turn's deadline, with retries and the circuit breaker.

A refusal or a failure passes the request on with its reason and the honest reply to give if
nobody else answers (:mod:`edgepipe.tiers.chain`); a deferred request is answered here.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import Any

from edgepipe.actions.responses import Responder
from edgepipe.cloud.client import CloudAnswer, CloudClient, CloudConfig, CloudError
from edgepipe.cloud.connectivity import Connectivity, Link
from edgepipe.cloud.courier import Courier
from edgepipe.cloud.ledger import CostLedger
from edgepipe.cloud.outbox import Outbox
from edgepipe.core.deadline import Deadline
from edgepipe.core.trace import TraceRecorder
from edgepipe.core.types import Outcome, Reply, Route
from edgepipe.pack.loader import Pack
from edgepipe.privacy.audit import AuditLog
from edgepipe.privacy.gate import DataClass, Egress, PrivacyGate
from edgepipe.tiers.base import Passed, TierContext, TierOutcome, TierRequest
from edgepipe.tiers.reading import Proposal, ResolveQuery

log = logging.getLogger(__name__)

_DEFER_ON = frozenset(
    {"cloud_unreachable", "cloud_connect_timeout", "cloud_breaker_open", "cloud_connection_reset"}
)
"""Failures after which a deferrable request is queued rather than dropped."""


class CloudTier:
    """The cloud client wrapped in privacy, connectivity, budget and the outbox.

    Long on purpose: everything that leaves the device (an answer, a deferred request, a
    request to read onto the intents) goes through the one ``_clear`` step of this class, so
    that no way out can skip the privacy gate or the audit log."""

    name = "cloud"

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
        self.courier = (
            Courier(pack, outbox, client, gate, self.data_class) if outbox is not None else None
        )
        """Delivers the outbox when the link comes back."""
        if self.courier is not None:
            connectivity.on_change(self.courier.on_link_change)

    @classmethod
    def build(cls, context: TierContext) -> CloudTier | None:
        """The pack's cloud tier, or None when the pack turns it off or names no endpoint. Its
        files (audit log, outbox, cost ledger) are in the engine's home."""
        pack = context.pack
        if not pack.spec.cloud.enabled:
            return None
        config = CloudConfig.resolve(pack.spec.cloud)
        if config is None:
            return None
        home = context.home
        client = CloudClient(pack.spec.cloud, config, ledger=CostLedger(home / "ledger.db"))
        gate = PrivacyGate.for_pack(
            pack, audit=AuditLog(home / "audit.db"), resources=context.resources
        )
        connectivity = Connectivity(
            lambda: client.probe(timeout_s=pack.spec.cloud.connect_timeout_s)
        )
        return cls(pack, client, gate, connectivity, Outbox(home / "outbox.db"), context.responder)

    def prepare(self) -> None:
        return None

    def close(self) -> None:
        """Stop deliveries (one in progress finishes its item), then close the client and the
        outbox and audit files."""
        if self.courier is not None:
            self.courier.close()
        self.client.close()
        if self.outbox is not None:
            self.outbox.close()
        if self.gate.audit is not None:
            self.gate.audit.close()

    def data_class(self, intent: str | None) -> DataClass:
        if intent is None:
            return DataClass(self._pack.spec.cloud.out_of_scope_privacy)
        return DataClass(self._pack.intents[intent].policy.privacy)

    def run(
        self, request: TierRequest, deadline: Deadline, trace: TraceRecorder
    ) -> TierOutcome | Passed:
        """Try to answer the request with the cloud."""
        intent = request.intent.name if request.intent is not None else None
        turn_id = request.turn_id
        deferrable = intent is not None and self._pack.intents[intent].spec.deferrable
        cleared = self._clear(request, intent, deadline, trace, deferrable=deferrable)
        if not isinstance(cleared, Egress):
            return cleared
        egress = cleared
        answer, failure = self._send(egress, intent, turn_id, deadline, trace, sent="sent")
        if answer is not None:
            return TierOutcome(
                route=Route.CLOUD,
                reason=f"cloud:{self.client.config.model}",
                reply=Reply(text=answer.text, response_key="cloud", data={"cost": answer.cost}),
            )
        assert failure is not None
        if deferrable and intent is not None and failure.code in _DEFER_ON:
            return self._defer(
                intent, egress, trace, turn_id, reason=f"{failure.code}:deferred", audited=True
            )
        return self._pass(failure.code, "cloud_failed")

    def _clear(
        self,
        request: TierRequest,
        intent: str | None,
        deadline: Deadline,
        trace: TraceRecorder,
        *,
        deferrable: bool,
        text: str | None = None,
    ) -> Egress | TierOutcome | Passed:
        """Privacy, link, budget and audit, in that order (each a span): what may leave, or
        why nothing does (a deferrable intent offline: queued in the outbox)."""
        spec = self._pack.spec.cloud
        turn_id = request.turn_id
        room = request.room
        with trace.span("privacy") as span:
            egress = self.gate.check(
                request.text if text is None else text,
                data_class=self.data_class(intent),
                names=[n for n in [room.guest_name] if n],
                room_number=room.number,
            )
            span.set(
                Outcome.OK if egress.allowed else Outcome.VIOLATION,
                detail=egress.reason,
                error_code=None if egress.allowed else "privacy_local_only",
            )
        if not egress.allowed:
            self._audit(intent, egress, 0, "blocked", turn_id)
            return self._pass("privacy:local_only", "privacy_blocked")

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
            return self._pass("offline", "offline")

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
            return self._pass("cloud:budget_exhausted", "budget_exhausted")

        with trace.span("audit") as span:
            written = self.gate.record_departure(
                tier="cloud",
                intent=intent,
                egress=egress,
                destination=self.client.config.host,
                turn_id=turn_id,
            )
            span.set(
                Outcome.OK if written else Outcome.ERROR,
                error_code=None if written else "audit_unavailable",
                detail="written before sending" if written else "not written: nothing sent",
            )
        if not written:
            self._audit(intent, egress, 0, "blocked:audit_unavailable", turn_id)
            return self._pass("audit_unavailable", "cloud_failed")
        return egress

    # ------------------------------------------------------------------ reading requests

    def resolve_intent(
        self, query: ResolveQuery, deadline: Deadline, trace: TraceRecorder
    ) -> Proposal | Passed:
        """Read the request onto the pack's intents with the cloud model's structured output
        (the answer's JSON schema: :meth:`Catalogue.schema_json`), through the same privacy
        gate, link, budget and audit as any other request that leaves (the pack's out-of-scope
        privacy class: the request is not yet any intent's)."""
        request = query.request
        cleared = self._clear(request, None, deadline, trace, deferrable=False, text=query.text)
        if not isinstance(cleared, Egress):
            code = cleared.code if isinstance(cleared, Passed) else "resolve:cloud:deferred"
            return Passed(tier=self.name, code=f"resolve:cloud:{code}", failed=True)
        egress = cleared
        prompt = replace(query, text=egress.text).prompt
        catalogue = query.catalogue
        messages = [
            {"role": "system", "content": catalogue.system},
            {"role": "user", "content": prompt},
        ]
        schema = json.loads(catalogue.schema_json(query.candidates))
        answer, failure = self._send(
            egress,
            None,
            request.turn_id,
            deadline,
            trace,
            sent="sent:resolve",
            messages=messages,
            schema=schema,
            max_tokens=self._pack.spec.resolve.max_tokens,
            stage="resolve:cloud",
        )
        if answer is None:
            assert failure is not None
            return Passed(tier=self.name, code=f"resolve:cloud:{failure.code}", failed=True)
        try:
            return Proposal.parse(self.name, answer.text, catalogue.intents)
        except ValueError as exc:
            trace.add("resolve:cloud", Outcome.INVALID, error_code="resolve_malformed",
                      detail=str(exc)[:120])  # fmt: skip
            return Passed(tier=self.name, code="resolve:cloud:malformed", failed=True)

    def _send(
        self,
        egress: Egress,
        intent: str | None,
        turn_id: str,
        deadline: Deadline,
        trace: TraceRecorder,
        *,
        sent: str,
        **call: Any,
    ) -> tuple[CloudAnswer | None, CloudError | None]:
        """:meth:`_call`, then what every call leaves behind: the link's health, and the audit
        log's record of what left (``sent``, or ``failed:<code>``)."""
        answer, failure = self._call(egress, deadline, trace, **call)
        if answer is not None:
            self.connectivity.record_success()
            self._audit(intent, egress, answer.bytes_sent, sent, turn_id)
            return answer, None
        assert failure is not None
        if failure.code != "cloud_breaker_open":
            self.connectivity.record_failure()
        # a failed call may still have sent the request (a 503, a timeout while waiting for the
        # answer, a retry): the audit log records what left, not only what was answered
        self._audit(intent, egress, failure.bytes_sent, f"failed:{failure.code}", turn_id)
        return None, failure

    def _call(
        self,
        egress: Egress,
        deadline: Deadline,
        trace: TraceRecorder,
        *,
        messages: list[dict[str, str]] | None = None,
        schema: dict[str, Any] | None = None,
        max_tokens: int | None = None,
        stage: str = "cloud",
    ) -> tuple[CloudAnswer | None, CloudError | None]:
        spec = self._pack.spec.cloud
        messages = messages or [
            {"role": "system", "content": spec.system_prompt},
            {"role": "user", "content": egress.text},
        ]
        with trace.span(stage) as span:
            try:
                answer = self.client.chat(
                    messages, deadline=deadline, schema=schema, max_tokens=max_tokens
                )
            except CloudError as exc:
                timed_out = "deadline" in exc.code or "timeout" in exc.code
                span.set(
                    Outcome.TIMEOUT if timed_out else Outcome.ERROR,
                    error_code=exc.code,
                    detail=f"breaker {self.client.breaker_state}",
                )
                return None, exc
            usage = f"{answer.input_tokens}+{answer.output_tokens} tok"
            if answer.usage_estimated:
                usage += "~"
            span.set(
                Outcome.OK,
                detail=f"{answer.attempts} attempt(s), {usage}, "
                f"{answer.cost:.5f} {spec.currency}, ttft {answer.ttft_ms:.0f} ms"
                + (", cut at the deadline" if answer.cut_at_deadline else ""),
            )
            return answer, None

    def _pass(self, code: str, reply_key: str) -> Passed:
        return Passed(tier=self.name, code=code, failed=True, say=self._responder.system(reply_key))

    def _defer(
        self,
        intent: str,
        egress: Egress,
        trace: TraceRecorder,
        turn_id: str,
        *,
        reason: str,
        audited: bool = False,
    ) -> TierOutcome | Passed:
        if self.outbox is None:
            return self._pass(reason.replace(":deferred", ""), "offline")
        with trace.span("outbox") as span:
            try:
                item = self.outbox.enqueue(intent=intent, text=egress.text, slots={})
                span.set(Outcome.OK, detail=f"#{item}")
            except Exception as exc:  # sqlite errors, a full disk: the guest still gets an answer
                span.set(Outcome.ERROR, error_code="outbox_failed", detail=str(exc)[:120])
                return self._pass("offline", "offline")
        if not audited:
            self._audit(intent, egress, 0, "deferred", turn_id)
        return TierOutcome(
            route=Route.FALLBACK, reason=reason, reply=self._responder.system("deferred")
        )

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

    def wait_for_deliveries(self, timeout_s: float | None = None) -> bool:
        """Wait until every outbox delivery started so far has ended; False on timeout."""
        return self.courier.wait(timeout_s) if self.courier is not None else True

    def deliver_deferred(self) -> tuple[int, int]:
        """Send the outbox's queued requests now. Returns (delivered, failed)."""
        return self.courier.deliver() if self.courier is not None else (0, 0)
