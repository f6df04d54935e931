"""Clarifying questions and their answers.

When the router is not sure enough to act, the assistant asks, and remembers what it asked for
one answer (or until ``router.confirm_ttl_s`` passes):

* ``confirm``: "Just to check: do you want me to book a taxi?" - yes runs the intent, no drops it;
* ``choose``: "Did you mean turn the lights on, or dim the lights?" - an answer naming or
  ordering one of them ("the second", "dim them") runs that one;
* ``slot``: "What time should I wake you?" - an answer holding the slot value runs the intent.

Any other answer is handled as a new request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from edgepipe.core.types import SlotValue

_YES = re.compile(
    r"^(yes|yeah|yep|yup|sure|ok|okay|correct|right|exactly|please do|please|go ahead|do it|"
    r"that's right|that is right|yes please|sure thing|absolutely|of course|affirmative|"
    r"yes do it|yes go ahead|indeed)\b",
    re.IGNORECASE,
)
_NO = re.compile(
    r"^(no|nope|nah|don't|do not|cancel|never mind|nevermind|no thanks|no thank you|stop|"
    r"forget it|not now|wrong)\b",
    re.IGNORECASE,
)
_FIRST = re.compile(r"\b(first|former|1st|option one|number one|the one)\b", re.IGNORECASE)
_SECOND = re.compile(
    r"\b(second|latter|2nd|option two|number two|other one|the other)\b", re.IGNORECASE
)


class Ask(StrEnum):
    """What a clarifying question asks for."""

    CONFIRM = "confirm"
    CHOOSE = "choose"
    SLOT = "slot"


@dataclass(frozen=True, slots=True, kw_only=True)
class Pending:
    """A question waiting for the guest's answer."""

    ask: Ask
    intents: tuple[str, ...]
    """The intent to confirm or fill, or the two to choose between."""
    slots: dict[str, SlotValue] = field(default_factory=dict)
    """Slots already known."""
    slot: str | None = None
    """For ``slot``: the slot asked for."""
    confidence: float = 0.0
    expires_at: datetime

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at


def is_yes(text: str) -> bool:
    return bool(_YES.match(text.strip())) and not _NO.match(text.strip())


def is_no(text: str) -> bool:
    return bool(_NO.match(text.strip()))


def ordinal_choice(text: str) -> int | None:
    """0 or 1 when the answer picks an option by position."""
    if _SECOND.search(text):
        return 1
    if _FIRST.search(text):
        return 0
    return None


def expiry(now: datetime, ttl_s: float) -> datetime:
    return now + timedelta(seconds=ttl_s)
