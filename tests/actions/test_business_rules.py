from __future__ import annotations

from datetime import time

import pytest

from edgepipe.actions.business_rules import in_window
from edgepipe.pack.content_schema import WindowSpec


@pytest.mark.parametrize(
    ("start", "end", "at", "inside"),
    [
        ("08:00", "16:00", "08:00", True),
        ("08:00", "16:00", "15:59", True),
        ("08:00", "16:00", "16:00", False),
        ("08:00", "16:00", "07:59", False),
        ("22:00", "07:00", "23:30", True),
        ("22:00", "07:00", "03:00", True),
        ("22:00", "07:00", "07:00", False),
        ("22:00", "07:00", "12:00", False),
        ("00:00", "24:00", "23:59", True),
    ],
)
def test_daily_windows(start: str, end: str, at: str, inside: bool) -> None:
    assert in_window(WindowSpec(start=start, end=end), time.fromisoformat(at)) is inside
