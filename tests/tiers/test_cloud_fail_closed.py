"""The cloud tier fails closed and cleans up: nothing leaves the device unless what leaves was
written to the audit log first, and closing the tier ends its threads and closes its files."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from tests.fakes import cloud_tier_of

from edgepipe.cloud.connectivity import Link
from edgepipe.core.types import Outcome, Route, TurnResult
from edgepipe.engine.engine import Engine
from edgepipe.privacy.audit import AuditLog
from edgepipe.testing.cloud import StandInCloud

TRIP = "plan a three day trip to Lisbon for me"


def test_nothing_is_sent_when_the_audit_log_cannot_be_written(
    cloud: StandInCloud, make_engine_on: Callable[..., Engine], tmp_path: Path
) -> None:
    (tmp_path / "audit.db").mkdir()  # a directory where the audit file should be: unwritable
    engine = make_engine_on(home=tmp_path)
    tier = cloud_tier_of(engine)
    result = engine.session().handle_text(TRIP)
    assert cloud.proxy is not None and cloud.proxy.captured() == []  # nothing left
    assert result.decision.route is Route.FALLBACK
    assert result.decision.reason.endswith(">audit_unavailable")
    assert result.reply.response_key == "system:cloud_failed"
    audit = result.trace.stage("audit")
    assert audit is not None and audit.outcome is Outcome.ERROR
    assert audit.error_code == "audit_unavailable"
    assert result.trace.stage("cloud") is None

    # a deferred request waiting in the outbox is not delivered either
    assert tier.outbox is not None
    tier.outbox.enqueue(intent="book_table", text="book a table for two at 8pm", slots={})
    assert tier.deliver_deferred() == (0, 1)
    assert cloud.proxy.captured() == []
    (item,) = tier.outbox.items()
    assert item.attempts == 1 and "audit" in (item.result or "")


def test_the_audit_row_is_on_disk_before_the_request_leaves(
    cloud: StandInCloud, make_engine_on: Callable[..., Engine], tmp_path: Path
) -> None:
    """While the server holds the request (the proxy delays its answer), another reader of the
    audit file already sees what was sent; the outcome row follows when the call ends."""
    engine = make_engine_on(home=tmp_path)
    assert cloud.proxy is not None
    cloud.set_fault("latency", ms=1500)
    results: list[TurnResult] = []
    turn = threading.Thread(
        target=lambda: results.append(engine.session().handle_text(TRIP, budget_ms=20_000))
    )
    turn.start()
    try:
        arrived = threading.Event()
        for _ in range(200):  # until the request reaches the server
            if cloud.proxy.captured():
                arrived.set()
                break
            arrived.wait(0.05)
        assert arrived.is_set(), "the request never reached the stand-in cloud"
        reader = AuditLog(tmp_path / "audit.db")
        in_flight = reader.entries()
        reader.close()
    finally:
        turn.join(30)
    assert [(e.outcome, e.sent_text, e.bytes_sent) for e in in_flight] == [("sending", TRIP, 0)]
    (result,) = results
    assert result.decision.route is Route.CLOUD, result.decision
    tier = cloud_tier_of(engine)
    assert tier.gate.audit is not None
    rows = tier.gate.audit.entries()
    assert [r.outcome for r in rows] == ["sending", "sent"] and rows[1].bytes_sent > 0


def test_closing_the_tier_ends_its_threads_and_closes_its_files(
    cloud: StandInCloud, make_engine_on: Callable[..., Engine], tmp_path: Path
) -> None:
    engine = make_engine_on(home=tmp_path)
    tier = cloud_tier_of(engine)
    assert tier.outbox is not None and tier.gate.audit is not None
    tier.outbox.enqueue(intent="book_table", text="book a table for two at 8pm", slots={})
    engine.session().handle_text(TRIP, budget_ms=20_000)  # a worker thread ran the call
    tier.connectivity.force(Link.OFFLINE)
    tier.connectivity.force(Link.ONLINE)  # the link is back: a delivery runs in the background
    assert tier.wait_for_deliveries(30)
    assert tier.outbox.items() == []
    names = {t.name for t in threading.enumerate()}
    assert any(n.startswith("edgepipe-cloud") for n in names)
    assert any(n.startswith("edgepipe-outbox") for n in names)

    engine.close()

    alive = [
        t.name
        for t in threading.enumerate()
        if t.name.startswith(("edgepipe-cloud", "edgepipe-outbox"))
    ]
    assert alive == []
    assert tier.outbox._conn is None
    assert tier.gate.audit._conn is None
    assert tier.client.ledger is not None and tier.client.ledger._conn is None
    tier.connectivity.force(Link.OFFLINE)
    tier.connectivity.force(Link.ONLINE)  # after close: no delivery is started
    assert not [t for t in threading.enumerate() if t.name.startswith("edgepipe-outbox")]
