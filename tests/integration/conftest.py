"""Fixtures for the end-to-end tests (the session-wide ``cloud`` is in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from edgepipe.testing.cloud import StandInCloud


@pytest.fixture(autouse=True)
def _clean_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    """Tests that use the shared cloud start and end with no fault and zeroed counters."""
    if "cloud" not in request.fixturenames:
        yield
        return
    stand_in: StandInCloud = request.getfixturevalue("cloud")
    stand_in.clear_fault()
    assert stand_in.proxy is not None
    stand_in.proxy.reset_stats()
    yield
    stand_in.clear_fault()
