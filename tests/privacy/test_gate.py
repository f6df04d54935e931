"""The privacy gate decides what leaves; the audit log records every decision, append-only."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from edgepipe.privacy.audit import AuditLog
from edgepipe.privacy.gate import DataClass, PrivacyGate

TEXT = (
    "I'm Maria Santos in room 412, call me on +351 912 345 678 or maria@example.com, "
    "card 4111 1111 1111 1111, born 12/03/1985, passport X1234567 - is 412 quiet?"
)
SECRETS = ("Maria", "Santos", "412", "912 345 678", "maria@example.com", "4111", "1985", "X1234567")


def gate(tmp_path: Path) -> PrivacyGate:
    return PrivacyGate(names=["Maria Santos"], room_number="412", audit=AuditLog(tmp_path / "a.db"))


def test_local_only_sends_nothing(tmp_path: Path) -> None:
    egress = gate(tmp_path).check(TEXT, data_class="local_only")
    assert not egress.allowed and egress.text == "" and egress.bytes == 0
    assert egress.reason == "privacy:local_only"


def test_redact_removes_every_personal_datum(tmp_path: Path) -> None:
    egress = gate(tmp_path).check(TEXT, data_class=DataClass.REDACT)
    assert egress.allowed
    for secret in SECRETS:
        assert secret not in egress.text, (secret, egress.text)
    assert {"NAME", "ROOM", "PHONE", "EMAIL", "CARD", "DATE", "ID"} <= set(egress.redacted)
    assert egress.text.endswith("is <ROOM> quiet?")  # the bare room number too
    assert "redacted" in egress.reason


def test_allowed_keeps_context_but_not_identity(tmp_path: Path) -> None:
    egress = gate(tmp_path).check(
        "book a table for Maria Santos on 12 March 2027, room 412, phone 912 345 678",
        data_class="allowed",
    )
    assert "Maria" not in egress.text and "912 345 678" not in egress.text
    assert "12 March 2027" in egress.text and "room 412" in egress.text


def test_text_without_personal_data_is_unchanged(tmp_path: Path) -> None:
    text = "what should I see in Lisbon in 3 days with 2 kids, under 50 euros, at 9:30?"
    egress = gate(tmp_path).check(text, data_class="redact")
    assert egress.text == text and egress.redacted == ()


def test_unknown_data_class_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="public"):
        gate(tmp_path).check("hi", data_class="public")


def test_every_decision_is_audited_without_the_held_back_values(tmp_path: Path) -> None:
    g = gate(tmp_path)
    sent = g.check(TEXT, data_class="redact")
    g.record(
        tier="cloud",
        intent=None,
        egress=sent,
        bytes_sent=sent.bytes,
        outcome="sent",
        destination="127.0.0.1:8766",
        turn_id="t1",
    )
    blocked = g.check(TEXT, data_class="local_only")
    g.record(
        tier="cloud",
        intent="late_checkout",
        egress=blocked,
        bytes_sent=0,
        outcome="blocked",
        destination="127.0.0.1:8766",
        turn_id="t2",
    )
    assert g.audit is not None
    first, second = g.audit.entries()
    assert (first.turn_id, first.outcome, first.data_class) == ("t1", "sent", "redact")
    assert first.bytes_sent == sent.bytes and first.sent_text == sent.text
    assert first.redacted["NAME"] >= 1 and first.redacted["ROOM"] == 2
    assert (second.outcome, second.intent, second.bytes_sent) == ("blocked", "late_checkout", 0)
    assert second.sent_text is None
    raw = (tmp_path / "a.db").read_bytes()
    for secret in SECRETS:
        assert secret.encode() not in raw


def test_audit_log_is_append_only(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "a.db")
    egress = PrivacyGate().check("hello", data_class="redact")
    PrivacyGate(audit=log).record(
        tier="cloud", intent=None, egress=egress, bytes_sent=5, outcome="sent", destination="x"
    )
    log.close()
    conn = sqlite3.connect(tmp_path / "a.db")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE egress SET bytes_sent = 0")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM egress")
    assert conn.execute("SELECT COUNT(*) FROM egress").fetchone()[0] == 1


def test_locked_audit_log_keeps_the_record_and_writes_it_later(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    log = AuditLog(path)
    assert log.count() == 0
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    egress = PrivacyGate().check("hello", data_class="redact")
    ok = log.record(
        tier="cloud",
        intent=None,
        data_class="redact",
        outcome="sent",
        redacted=egress.redacted,
        bytes_sent=5,
        destination="x",
    )
    assert not ok and log.pending == 1
    locker.execute("ROLLBACK")
    locker.close()
    assert log.record(
        tier="cloud",
        intent=None,
        data_class="redact",
        outcome="sent",
        redacted=(),
        bytes_sent=5,
        destination="x",
    )
    assert log.pending == 0 and log.count() == 2


def test_unwritable_audit_path_never_breaks_the_caller(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    g = PrivacyGate(audit=AuditLog(blocker / "audit.db"))
    egress = g.check("hello", data_class="redact")
    g.record(
        tier="cloud", intent=None, egress=egress, bytes_sent=0, outcome="sent", destination="x"
    )
    assert g.audit is not None and g.audit.pending == 1
