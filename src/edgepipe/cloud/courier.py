"""Delivering the outbox: queued requests go out when the link comes back.

A deferrable request that needed the network while it was down waits in the outbox
(:mod:`edgepipe.cloud.outbox`), already redacted by the privacy gate. When the link comes back
(a probe got through, or it is fully up again; not when a call has just failed) the courier
sends each item once, from one worker thread of its own that :meth:`Courier.close` joins. Like
a turn's call, each delivery is written to the audit log before it leaves, and nothing leaves
when that write fails.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from edgepipe.cloud.client import CloudClient, CloudError
from edgepipe.cloud.connectivity import Link
from edgepipe.cloud.outbox import Deferred, Outbox
from edgepipe.core.deadline import Deadline
from edgepipe.pack.loader import Pack
from edgepipe.privacy.gate import DataClass, Egress, PrivacyGate

log = logging.getLogger(__name__)


class Courier:
    """Delivers one outbox through one cloud client."""

    def __init__(
        self,
        pack: Pack,
        outbox: Outbox,
        client: CloudClient,
        gate: PrivacyGate,
        data_class: Callable[[str | None], DataClass],
    ) -> None:
        self._pack = pack
        self.outbox = outbox
        self._client = client
        self._gate = gate
        self.data_class = data_class
        self._delivering = threading.Lock()
        self._delivery = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edgepipe-outbox")
        self._closed = False

    def close(self) -> None:
        """Start no more deliveries and wait for the one in progress (it finishes its item)."""
        self._closed = True
        self._delivery.shutdown(wait=True, cancel_futures=True)

    def on_link_change(self, old: Link, new: Link) -> None:
        """A :class:`~edgepipe.cloud.connectivity.Connectivity` listener."""
        log.info("link %s -> %s", old.value, new.value)
        # deliver when the link comes back (a probe got through, or it is fully up again); not
        # when it degrades (online -> degraded: a call just failed), which would add load just
        # as the cloud struggles
        back = old is Link.OFFLINE or new is Link.ONLINE
        if back and new is not Link.OFFLINE and not self._closed:
            try:
                self._delivery.submit(self.deliver)
            except RuntimeError:  # closed in the meantime
                log.debug("outbox delivery not started: the tier is closed")

    def wait(self, timeout_s: float | None = None) -> bool:
        """Wait until every delivery started so far has ended; False on timeout."""
        if self._closed:
            return True
        try:
            return self._delivery.submit(lambda: None).exception(timeout_s) is None
        except RuntimeError:  # closed meanwhile
            return True
        except TimeoutError:
            return False

    def deliver(self) -> tuple[int, int]:
        """Send queued requests now (one delivery run at a time). Returns (delivered, failed)."""
        if not self._delivering.acquire(blocking=False):
            return 0, 0
        try:
            return self.outbox.deliver(self._send)
        finally:
            self._delivering.release()

    def _send(self, item: Deferred) -> str:
        spec = self._pack.spec.cloud
        # item.text was redacted by the gate before it was queued
        messages = [
            {"role": "system", "content": spec.system_prompt},
            {"role": "user", "content": item.text},
        ]
        egress = Egress(
            allowed=True,
            text=item.text,
            data_class=self.data_class(item.intent),
            redacted=(),
            reason="outbox",
        )
        host = self._client.config.host
        if not self._gate.record_departure(
            tier="cloud",
            intent=item.intent,
            egress=egress,
            destination=host,
            outcome="sending:deferred",
        ):
            raise CloudError(
                "the audit log cannot be written: nothing is sent",
                code="audit_unavailable",
                retryable=False,
            )
        budget_ms = spec.read_timeout_s * 1000 * 2
        try:
            answer = self._client.chat(messages, deadline=Deadline(budget_ms=budget_ms))
        except CloudError as exc:  # every delivery attempt is an egress decision
            self._gate.record(
                tier="cloud",
                intent=item.intent,
                egress=egress,
                bytes_sent=exc.bytes_sent,
                outcome=f"failed:{exc.code}:deferred",
                destination=host,
            )
            raise
        self._gate.record(
            tier="cloud",
            intent=item.intent,
            egress=egress,
            bytes_sent=answer.bytes_sent,
            outcome="sent:deferred",
            destination=host,
        )
        return answer.text
