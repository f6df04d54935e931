"""Selective escalation end to end: real turns, the real stand-in cloud (llama_cpp.server on
loopback behind the fault proxy), the privacy gate, connectivity, the outbox and the audit log.

Every engine here points its cloud at a server the test controls (the stand-in, through
``EDGEPIPE_CLOUD_BASE_URL``) or at a port the test knows is closed: none depends on what listens
on the hotel pack's own endpoint (127.0.0.1:8766). Turns that wait for a real SmolLM2 answer get
a budget that cannot run out on a busy machine: these tests are about where a request goes and
what is recorded, not how fast the model writes (bench/bench_cloud.py measures that).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from edgepipe.cloud.connectivity import Link
from edgepipe.core.types import Outcome, Route
from edgepipe.engine.session import Session
from edgepipe.pack.loader import Pack
from edgepipe.privacy.audit import AuditLog
from edgepipe.testing.cloud import StandInCloud, closed_base_url
from edgepipe.tiers.cloud import CloudTier

TRIP = "plan a three day trip to Lisbon for me"
ANSWER_MS = 20_000
"""The budget of a turn that waits for the stand-in's real answer."""
PII = Path(__file__).resolve().parents[2] / "packs" / "hotel" / "tests" / "pii_utterances.jsonl"


def with_cloud(pack: Pack, **cloud: Any) -> Pack:
    spec = pack.spec.model_copy(update={"cloud": pack.spec.cloud.model_copy(update=cloud)})
    return replace(pack, spec=spec)


def cloud_of(session: Session) -> CloudTier:
    tier = session.engine.tiers["cloud"]
    assert isinstance(tier, CloudTier)
    return tier


def sent_outcomes(log: AuditLog) -> list[str]:
    """The audit log's outcomes without the rows written before each call (``sending``)."""
    return [e.outcome for e in log.entries() if not e.outcome.startswith("sending")]


@pytest.fixture
def online(cloud: StandInCloud, monkeypatch: pytest.MonkeyPatch) -> StandInCloud:
    """The stand-in cloud as the pack's endpoint (faults are cleared by tests/conftest.py)."""
    monkeypatch.setenv("EDGEPIPE_CLOUD_BASE_URL", cloud.base_url)
    return cloud


def audit(home: Path) -> AuditLog:
    return AuditLog(home / "audit.db")


def test_out_of_scope_goes_to_the_cloud_when_it_is_up(
    online: StandInCloud,
    hotel_pack: Pack,
    _edgepipe_home: Path,
    cloud_assistant: Callable[[Pack], Session],
) -> None:
    bot = cloud_assistant(with_cloud(hotel_pack, max_tokens=24))
    result = bot.handle_text(TRIP, budget_ms=ANSWER_MS)
    assert result.decision.route is Route.CLOUD, result.decision
    assert result.decision.reason == f"cloud:{online.model}"
    assert result.reply.text.strip() and result.reply.response_key == "cloud"
    stages = [s.stage for s in result.trace.spans]
    assert stages[-5:] == ["privacy", "link", "budget", "audit", "cloud"]
    call = result.trace.stage("cloud")
    assert call is not None and call.outcome is Outcome.OK, call
    assert "cut at the deadline" not in (call.detail or "")
    ahead, entry = audit(_edgepipe_home).entries()
    assert (ahead.outcome, ahead.sent_text, ahead.bytes_sent) == ("sending", TRIP, 0)
    assert (entry.outcome, entry.tier, entry.data_class) == ("sent", "cloud", "redact")
    assert entry.bytes_sent > 0 and entry.turn_id == result.request.turn_id
    assert entry.sent_text == TRIP


def test_unreachable_cloud_is_an_honest_fallback(
    hotel_pack: Pack,
    monkeypatch: pytest.MonkeyPatch,
    _edgepipe_home: Path,
    cloud_assistant: Callable[[Pack], Session],
) -> None:
    """Connections refused (a port the test knows is closed): the turn says so honestly, and
    it ended because nobody answered, not because its time ran out."""
    monkeypatch.setenv("EDGEPIPE_CLOUD_BASE_URL", closed_base_url())
    bot = cloud_assistant(hotel_pack)
    result = bot.handle_text(TRIP, budget_ms=ANSWER_MS)
    assert result.decision.route is Route.FALLBACK
    assert result.decision.reason.endswith(">cloud_unreachable"), result.decision.reason
    assert "can still control the room" in result.reply.text
    call = result.trace.stage("cloud")
    assert call is not None
    assert (call.outcome, call.error_code) == (Outcome.ERROR, "cloud_unreachable")
    assert sent_outcomes(audit(_edgepipe_home)) == ["failed:cloud_unreachable"]
    (failed,) = [e for e in audit(_edgepipe_home).entries() if e.outcome.startswith("failed")]
    assert failed.bytes_sent == 0 and failed.sent_text is None  # nothing left the device


def test_no_pii_reaches_the_cloud(
    online: StandInCloud, hotel_pack: Pack, cloud_assistant: Callable[[Pack], Session]
) -> None:
    """Every line of the PII set as a turn; the proxy records every byte the server got."""
    rows = [json.loads(line) for line in PII.read_text(encoding="utf-8").splitlines()]
    assert len([r for r in rows if r["pii"]]) >= 100
    online.set_fault("http_503")  # fail fast: what matters is what was sent, not the answer
    bot = cloud_assistant(with_cloud(hotel_pack, retries=0, breaker_failures=1000))
    escalated: list[dict[str, Any]] = []
    for row in rows:
        result = bot.handle_text(row["text"], budget_ms=5000)
        assert result.reply.text
        cloud_of(bot).connectivity.force(Link.ONLINE)  # keep trying: 503s would take the link down
        if any(s.stage == "privacy" for s in result.trace.spans):
            escalated.append(row)
    assert online.proxy is not None
    sent = online.proxy.captured()
    assert len(escalated) >= 100 and len(sent) == len(escalated)
    leaked = []
    for row, raw in zip(escalated, sent, strict=True):
        body = json.loads(raw)["messages"][-1]["content"]
        leaked += [(s, body) for s in row["pii"] if _leaks(s, body)]
    assert leaked == []


def _leaks(secret: str, body: str) -> bool:
    """The secret, case-insensitively (a whole word when short), or its digits."""
    if len(secret) < 5:
        found = re.search(rf"(?<!\w){re.escape(secret)}(?!\w)", body, re.IGNORECASE)
    else:
        found = re.search(re.escape(secret), body, re.IGNORECASE)
    digits = re.sub(r"\D", "", secret)
    return bool(found) or (len(digits) >= 6 and digits in re.sub(r"\D", "", body))


def test_local_only_is_never_sent_whatever_the_router_thinks(
    online: StandInCloud,
    hotel_pack: Pack,
    _edgepipe_home: Path,
    cloud_assistant: Callable[[Pack], Session],
) -> None:
    table = hotel_pack.intents["book_table"]
    strict = replace(table, policy=table.policy.model_copy(update={"privacy": "local_only"}))
    pack = replace(hotel_pack, intents={**hotel_pack.intents, "book_table": strict})
    result = cloud_assistant(pack).handle_text("book a table for two tonight at 8")
    assert result.intent is not None and result.intent.name == "book_table"
    assert result.decision.route is Route.FALLBACK and "privacy" in result.decision.reason
    assert online.proxy is not None and online.proxy.captured() == []
    assert [e.outcome for e in audit(_edgepipe_home).entries()] == ["blocked"]  # nothing sent


def test_offline_answers_locally_and_defers_what_can_wait(
    online: StandInCloud,
    hotel_pack: Pack,
    _edgepipe_home: Path,
    cloud_assistant: Callable[[Pack], Session],
) -> None:
    bot = cloud_assistant(with_cloud(hotel_pack, max_tokens=16, retries=0))
    assert cloud_of(bot).outbox is not None
    tier = cloud_of(bot)
    link = tier.connectivity
    link.probe_interval_s = 0.0
    online.set_fault("reset")  # the line goes down
    for _ in range(5):
        failed = bot.handle_text(TRIP)
        assert failed.decision.route is Route.FALLBACK and "control the room" in failed.reply.text
        if link.state is Link.OFFLINE:
            break
    assert link.state is Link.OFFLINE
    link.probe_interval_s = 3600.0  # no more probes while we look at offline behaviour
    assert online.proxy is not None
    online.proxy.reset_stats()

    general = bot.handle_text(TRIP)
    assert general.decision.route is Route.FALLBACK and general.decision.reason.endswith("offline")
    assert "control the room" in general.reply.text and "network" in general.reply.text
    booking = bot.handle_text("book a table for two tonight at 8")
    assert booking.decision.reason.endswith("offline:deferred")
    assert "pass it on" in booking.reply.text
    assert bot.handle_text("turn off the lights in the bedroom").decision.route is Route.RULES
    assert online.proxy.captured() == []  # offline: nothing is even attempted
    (queued,) = tier.outbox.items()
    assert queued.intent == "book_table"

    online.clear_fault()  # the line comes back; the next probe notices, the outbox drains
    link.probe_interval_s = 0.0
    back = bot.handle_text(TRIP, budget_ms=ANSWER_MS)
    assert back.trace.stage("link") is not None
    assert link.state is not Link.OFFLINE  # the probe got through: the delivery has started
    assert tier.wait_for_deliveries(timeout_s=60)  # waits for it to end; no polling
    assert tier.outbox.items() == [] and len(tier.outbox.items("delivered")) == 1
    assert any("table for two" in body for body in online.proxy.captured())
    outcomes = [e.outcome for e in audit(_edgepipe_home).entries()]
    assert "skipped:offline" in outcomes and "deferred" in outcomes
    assert "sent:deferred" in outcomes


def test_budget_cap_stops_escalation(
    online: StandInCloud, hotel_pack: Pack, cloud_assistant: Callable[[Pack], Session]
) -> None:
    result = cloud_assistant(with_cloud(hotel_pack, monthly_budget=0.0)).handle_text(TRIP)
    assert result.decision.route is Route.FALLBACK and "budget" in result.decision.reason
    assert "budget" in result.reply.text.lower() or "limit" in result.reply.text.lower()
    assert online.proxy is not None and online.proxy.captured() == []
