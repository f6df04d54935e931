"""Fixtures for the stand-in cloud tests (the session-wide ``cloud`` is in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from edgepipe.testing.cloud import StandInCloud


@pytest.fixture
def client(cloud: StandInCloud) -> Iterator[httpx.Client]:
    """A fresh client (own connection pool) on the proxied base URL, with short timeouts."""
    with httpx.Client(base_url=cloud.base_url, timeout=httpx.Timeout(20.0, connect=2.0)) as c:
        yield c
