"""Request text as the pipeline accepts it."""

from __future__ import annotations

import re
import unicodedata

from edgepipe.core.errors import InputError

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\ufeff]")


def normalise_text(text: str, *, max_chars: int) -> str:
    """Validate and normalise request text (NFC, no control characters, single spaces).

    Raises :class:`InputError` with code ``input_empty``, ``input_too_long`` or
    ``input_not_text``.
    """
    if not isinstance(text, str):
        raise InputError(f"request must be text, got {type(text).__name__}", code="input_not_text")
    if len(text) > max_chars * 4:  # cheap bound before normalising a huge string
        raise InputError(
            f"request text is {len(text)} characters; the limit is {max_chars}",
            code="input_too_long",
        )
    cleaned = " ".join(_CONTROL.sub(" ", unicodedata.normalize("NFC", text)).split())
    if not cleaned:
        raise InputError("request text is empty", code="input_empty")
    if len(cleaned) > max_chars:
        raise InputError(
            f"request text is {len(cleaned)} characters; the limit is {max_chars}",
            code="input_too_long",
        )
    return cleaned
