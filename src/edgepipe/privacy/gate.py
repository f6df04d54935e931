"""The privacy gate: the one door through which request text leaves the device.

Each intent has a data class (pack policy ``privacy``; out-of-scope requests use
``cloud.out_of_scope_privacy``):

``local_only``
    nothing is sent, whatever the router thinks; the caller answers locally.
``redact``
    the request leaves with every kind of personal data replaced by a placeholder
    (see :mod:`edgepipe.privacy.redact`: e-mail, IBAN, names, addresses, dates of birth,
    ID/passport numbers, cards, phones, room numbers, long numbers), plus the guest's own room
    number wherever it stands alone.
``allowed``
    the request leaves with its dates and room numbers (they are what the intent is about), but
    still without e-mail addresses, addresses, account, card, ID and phone numbers or names.

What counts as personal data is decided by the gate's detectors (:mod:`edgepipe.privacy.detect`):
the hand-written patterns always, and Presidio's named-entity recogniser when the pack asks for
it (``privacy.detector``) and it is installed; what any of them finds is replaced.

The gate fails closed on what it cannot check: a text longer than ``max_chars`` or a detector
that raises sends nothing (``privacy:too_long``, ``privacy:detector_failed``). Lone surrogates
(text decoded with ``surrogateescape``) are replaced with U+FFFD before anything is checked: they
cannot be encoded for sending anyway.

Every decision, sent or not, is written to the audit log (:mod:`edgepipe.privacy.audit`) by
:meth:`PrivacyGate.record`. The gate fails closed: before a request leaves, the caller writes
what is about to leave (:meth:`PrivacyGate.record_departure`), and when that row cannot be
written nothing is sent.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from edgepipe.privacy.audit import AuditLog
from edgepipe.privacy.detect import Detector, apply_spans, build_detectors
from edgepipe.privacy.redact import Span

if TYPE_CHECKING:
    from edgepipe.core.resources import Resources
    from edgepipe.pack.loader import Pack

log = logging.getLogger(__name__)

MAX_CHARS = 20_000
"""Longest text the gate checks; a longer one is not sent. Twenty times the hotel pack's
``limits.max_text_chars``; Presidio takes 1-2 s over 20,000 characters on the reference device
(the patterns 0.1 s)."""
_SURROGATE = re.compile(r"[\ud800-\udfff]")


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
    """Decides what may leave, redacts it, and writes the audit log. Thread-safe."""

    def __init__(
        self,
        *,
        names: Iterable[str] = (),
        room_number: str | None = None,
        audit: AuditLog | None = None,
        detector: str | Sequence[Detector] = "patterns",
        resources: Resources | None = None,
        presidio_installed: bool | None = None,
        max_chars: int = MAX_CHARS,
    ) -> None:
        """``detector``: a pack's ``privacy.detector`` setting (``patterns``,
        ``patterns+presidio``...; see :func:`edgepipe.privacy.detect.build_detectors`, which
        loads Presidio once per process, through ``resources`` when given) or the detectors
        themselves. ``presidio_installed=False`` acts as if Presidio were not installed."""
        self.names = [n for n in names if n and n.strip()]
        self.room_number = (room_number or "").strip() or None
        self.audit = audit
        self.max_chars = max_chars
        self._room_re = _room_pattern(self.room_number)
        if isinstance(detector, str):
            self.detectors: tuple[Detector, ...] = build_detectors(
                detector, resources=resources, presidio_installed=presidio_installed
            )
        else:
            self.detectors = tuple(detector)
            if not self.detectors:
                raise ValueError("a privacy gate needs at least one detector")

    @classmethod
    def for_pack(
        cls,
        pack: Pack,
        *,
        audit: AuditLog | None = None,
        resources: Resources | None = None,
        presidio_installed: bool | None = None,
    ) -> PrivacyGate:
        """The gate for ``pack``: its room's guest and number, and the detectors its
        ``privacy.detector`` names (Presidio from ``resources``: loaded once)."""
        room = pack.spec.context.room
        return cls(
            names=[n for n in [room.guest_name] if n],
            room_number=room.number,
            audit=audit,
            detector=pack.spec.privacy.detector,
            resources=resources,
            presidio_installed=presidio_installed,
        )

    @property
    def detector_names(self) -> tuple[str, ...]:
        """The detectors in use (``("patterns", "presidio")``)."""
        return tuple(d.name for d in self.detectors)

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
        if not isinstance(text, str):
            raise TypeError(f"the privacy gate checks text (str), not {type(text).__name__}")
        cls = DataClass(data_class)
        if cls is DataClass.LOCAL_ONLY:
            return self._blocked(cls, "privacy:local_only")
        if len(text) > self.max_chars:
            return self._blocked(cls, f"privacy:too_long:{len(text)}>{self.max_chars}")
        text = _SURROGATE.sub("\ufffd", text)
        guests = self.names if names is None else [n for n in names if n and n.strip()]
        room_re = self._room_re if room_number is None else _room_pattern(room_number)
        keep = _KEEP[cls]
        spans: list[Span] = []
        for detector in self.detectors:
            try:
                spans.extend(detector.find(text, names=guests, keep=keep))
            except Exception:  # fail closed: what was not checked does not leave
                log.exception("privacy detector %s failed: nothing is sent", detector.name)
                return self._blocked(cls, f"privacy:detector_failed:{detector.name}")
        if cls is DataClass.REDACT and room_re is not None:
            spans.extend(Span(m.start(), m.end(), "ROOM") for m in room_re.finditer(text))
        result = apply_spans(text, spans)
        reason = f"privacy:{cls.value}"
        if result.kinds:
            reason += f":{len(result.kinds)} redacted"
        return Egress(
            allowed=True, text=result.text, data_class=cls, redacted=result.kinds, reason=reason
        )

    @staticmethod
    def _blocked(cls: DataClass, reason: str) -> Egress:
        return Egress(allowed=False, text="", data_class=cls, redacted=(), reason=reason)

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
