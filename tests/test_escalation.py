"""Selective escalation end to end: real turns, the real stand-in cloud (llama_cpp.server on
loopback behind the fault proxy), the privacy gate, connectivity, the outbox and the audit log."""

from __future__ import annotations

import json
import re
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from edgepipe.connectivity import Link
from edgepipe.frames import Route
from edgepipe.pack.loader import Pack
from edgepipe.pipeline import Assistant
from edgepipe.privacy.audit import AuditLog
from edgepipe.testing.cloud import StandInCloud

TRIP = "plan a three day trip to Lisbon for me"
PII = Path(__file__).resolve().parent.parent / "packs" / "hotel" / "tests" / "pii_utterances.jsonl"


def with_cloud(pack: Pack, **cloud: Any) -> Pack:
    spec = pack.spec.model_copy(update={"cloud": pack.spec.cloud.model_copy(update=cloud)})
    return replace(pack, spec=spec)


def assistant(pack: Pack) -> Assistant:
    moment = datetime(2026, 11, 25, 10, 0, tzinfo=pack.timezone)
    return Assistant(pack, clock=lambda: moment, local_model=None)


@pytest.fixture
def online(cloud: StandInCloud, monkeypatch: pytest.MonkeyPatch) -> StandInCloud:
    """The stand-in cloud as the pack's endpoint (faults are cleared by tests/conftest.py)."""
    monkeypatch.setenv("EDGEPIPE_CLOUD_BASE_URL", cloud.base_url)
    return cloud


def audit(home: Path) -> AuditLog:
    return AuditLog(home / "audit.db")


def test_out_of_scope_goes_to_the_cloud_when_it_is_up(
    online: StandInCloud, hotel_pack: Pack, _edgepipe_home: Path
) -> None:
    bot = assistant(with_cloud(hotel_pack, max_tokens=24))
    result = bot.handle_text(TRIP)
    assert result.decision.route is Route.CLOUD, result.decision
    assert result.reply.text.strip() and result.total_ms <= hotel_pack.spec.budgets.text_ms
    stages = [s.stage for s in result.trace.spans]
    assert stages[-4:] == ["privacy", "link", "budget", "cloud"]
    (entry,) = audit(_edgepipe_home).entries()
    assert (entry.outcome, entry.tier, entry.data_class) == ("sent", "cloud", "redact")
    assert entry.bytes_sent > 0 and entry.turn_id == result.request.turn_id
    assert entry.sent_text == TRIP


def test_unreachable_cloud_is_an_honest_fallback_within_the_budget(
    hotel_pack: Pack, monkeypatch: pytest.MonkeyPatch, _edgepipe_home: Path
) -> None:
    monkeypatch.setenv("EDGEPIPE_CLOUD_BASE_URL", "http://127.0.0.1:9/v1")
    bot = assistant(hotel_pack)
    result = bot.handle_text(TRIP)
    assert result.decision.route is Route.FALLBACK
    assert "cloud_unreachable" in result.decision.reason
    assert "can still control the room" in result.reply.text
    assert result.total_ms <= hotel_pack.spec.budgets.text_ms
    assert [e.outcome for e in audit(_edgepipe_home).entries()] == ["failed:cloud_unreachable"]


def test_no_pii_reaches_the_cloud(online: StandInCloud, hotel_pack: Pack) -> None:
    """Every line of the PII set as a turn; the proxy records every byte the server got."""
    rows = [json.loads(line) for line in PII.read_text(encoding="utf-8").splitlines()]
    assert len([r for r in rows if r["pii"]]) >= 100
    online.set_fault("http_503")  # fail fast: what matters is what was sent, not the answer
    bot = assistant(with_cloud(hotel_pack, retries=0, breaker_failures=1000))
    escalated: list[dict[str, Any]] = []
    for row in rows:
        result = bot.handle_text(row["text"], budget_ms=5000)
        assert result.reply.text and bot.cloud is not None
        bot.cloud.connectivity.force(Link.ONLINE)  # keep trying: 503s would take the link down
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
    online: StandInCloud, hotel_pack: Pack, _edgepipe_home: Path
) -> None:
    table = hotel_pack.intents["book_table"]
    strict = replace(table, policy=table.policy.model_copy(update={"privacy": "local_only"}))
    pack = replace(hotel_pack, intents={**hotel_pack.intents, "book_table": strict})
    result = assistant(pack).handle_text("book a table for two tonight at 8")
    assert result.intent is not None and result.intent.name == "book_table"
    assert result.decision.route is Route.FALLBACK and "privacy" in result.decision.reason
    assert online.proxy is not None and online.proxy.captured() == []
    assert [e.outcome for e in audit(_edgepipe_home).entries()] == ["blocked"]


def test_offline_answers_locally_and_defers_what_can_wait(
    online: StandInCloud, hotel_pack: Pack, _edgepipe_home: Path
) -> None:
    bot = assistant(with_cloud(hotel_pack, max_tokens=16, retries=0))
    assert bot.cloud is not None and bot.cloud.outbox is not None
    link = bot.cloud.connectivity
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
    (queued,) = bot.cloud.outbox.items()
    assert queued.intent == "book_table"

    online.clear_fault()  # the line comes back; the next probe notices, the outbox drains
    link.probe_interval_s = 0.0
    bot.handle_text(TRIP)
    deadline = time.monotonic() + 30
    while bot.cloud.outbox.items() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert bot.cloud.outbox.items() == [] and len(bot.cloud.outbox.items("delivered")) == 1
    assert any("table for two" in body for body in online.proxy.captured())
    outcomes = [e.outcome for e in audit(_edgepipe_home).entries()]
    assert "skipped:offline" in outcomes and "deferred" in outcomes
    assert "sent:deferred" in outcomes


def test_budget_cap_stops_escalation(online: StandInCloud, hotel_pack: Pack) -> None:
    result = assistant(with_cloud(hotel_pack, monthly_budget=0.0)).handle_text(TRIP)
    assert result.decision.route is Route.FALLBACK and "budget" in result.decision.reason
    assert "budget" in result.reply.text.lower() or "limit" in result.reply.text.lower()
    assert online.proxy is not None and online.proxy.captured() == []
