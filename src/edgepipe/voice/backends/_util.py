"""Small helpers the backends share."""

from __future__ import annotations


def quote(text: str, limit: int = 60) -> str:
    """``text`` for a message: quoted, cut to ``limit`` characters."""
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")
