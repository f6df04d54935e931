"""The privacy gate: the one door through which request text leaves the device.

Each intent has a data class (pack policy ``privacy``; out-of-scope requests use
``cloud.out_of_scope_privacy``):

``local_only``
    nothing is sent, whatever the router thinks; the caller answers locally.
``redact``
    the request leaves with every kind of personal data replaced by a placeholder
    (see :mod:`edgepipe.privacy.redact`: e-mail, IBAN, names, dates of birth, ID/passport
    numbers, cards, phones, room numbers, long numbers), plus the guest's own room number
    wherever it stands alone.
``allowed``
    the request leaves with its dates and room numbers (they are what the intent is about), but
    still without e-mail addresses, account, card, ID and phone numbers or names.

Every decision, sent or not, is written to the audit log (:mod:`edgepipe.privacy.audit`) by
:meth:`PrivacyGate.record`. The gate fails closed: before a request leaves, the caller writes
what is about to leave (:meth:`PrivacyGate.record_departure`), and when that row cannot be
written nothing is sent.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from edgepipe.privacy.audit import AuditLog
from edgepipe.privacy.redact import redact

log = logging.getLogger(__name__)


class DataClass(StrEnum):
    LOCAL_ONLY = "local_only"
    REDACT = "redact"
    ALLOWED = "allowed"


_KEEP: dict[DataClass, tuple[str, ...]] = {
    DataClass.REDACT: (),
    DataClass.ALLOWED: ("DATE", "ROOM", "NUMBER"),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Egress:
    """What the gate decided for one request."""

    allowed: bool
    text: str
    """What may leave ("" when nothing may)."""
    data_class: DataClass
    redacted: tuple[str, ...]
    """Kinds replaced, one entry per replacement."""
    reason: str

    @property
    def bytes(self) -> int:
        return len(self.text.encode("utf-8"))


def _room_pattern(number: str | None) -> re.Pattern[str] | None:
    number = (number or "").strip()
    if not number:
        return None
    return re.compile(rf"(?<![\w<]){re.escape(number)}(?![\w>])", re.IGNORECASE)


class PrivacyGate:
    """Decides what may leave, redacts it, and writes the audit log."""

    def __init__(
        self,
        *,
        names: Iterable[str] = (),
        room_number: str | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        self.names = [n for n in names if n and n.strip()]
        self.room_number = (room_number or "").strip() or None
        self.audit = audit
        self._room_re = _room_pattern(self.room_number)

    def check(
        self,
        text: str,
        *,
        data_class: DataClass | str,
        names: Iterable[str] | None = None,
        room_number: str | None = None,
    ) -> Egress:
        """Decide what of ``text`` may leave under ``data_class``. ``names`` and
        ``room_number``: the guest and room of this request, when not the gate's own (a
        process serving several rooms)."""
        cls = DataClass(data_class)
        if cls is DataClass.LOCAL_ONLY:
            return Egress(
                allowed=False, text="", data_class=cls, redacted=(), reason="privacy:local_only"
            )
        guests = self.names if names is None else [n for n in names if n and n.strip()]
        room_re = self._room_re if room_number is None else _room_pattern(room_number)
        result = redact(text, names=guests, keep=_KEEP[cls])
        out, kinds = result.text, list(result.kinds)
        if cls is DataClass.REDACT and room_re is not None:
            out, n = room_re.subn("<ROOM>", out)
            kinds.extend(["ROOM"] * n)
        reason = f"privacy:{cls.value}"
        if kinds:
            reason += f":{len(kinds)} redacted"
        return Egress(allowed=True, text=out, data_class=cls, redacted=tuple(kinds), reason=reason)

    def record(
        self,
        *,
        tier: str,
        intent: str | None,
        egress: Egress,
        bytes_sent: int,
        outcome: str,
        destination: str,
        turn_id: str | None = None,
    ) -> None:
        """Write one egress decision to the audit log (never raises)."""
        if self.audit is None:
            return
        try:
            self.audit.record(
                tier=tier,
                intent=intent,
                data_class=egress.data_class.value,
                outcome=outcome,
                redacted=egress.redacted,
                bytes_sent=bytes_sent,
                destination=destination,
                sent_text=egress.text if bytes_sent > 0 else None,
                turn_id=turn_id,
            )
        except Exception:  # the audit must never break a turn; AuditLog already logs sqlite errors
            log.exception("audit record failed")

    def record_departure(
        self,
        *,
        tier: str,
        intent: str | None,
        egress: Egress,
        destination: str,
        turn_id: str | None = None,
        outcome: str = "sending",
    ) -> bool:
        """Write, before it leaves, what is about to leave (outcome ``sending``, with the text;
        ``bytes_sent`` 0: nothing has left yet, the row written after the call says how much
        did). False when it could not be written: then nothing may be sent. Without an audit
        log there is nothing to fail (True)."""
        if self.audit is None:
            return True
        try:
            return self.audit.record(
                tier=tier,
                intent=intent,
                data_class=egress.data_class.value,
                outcome=outcome,
                redacted=egress.redacted,
                bytes_sent=0,
                destination=destination,
                sent_text=egress.text,
                turn_id=turn_id,
                write_ahead=True,
            )
        except Exception:  # an unexpected failure is a failed write: fail closed
            log.exception("audit write-ahead record failed")
            return False
