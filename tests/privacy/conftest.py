"""Presidio's analyzer (spaCy ``en_core_web_md``, or ``en_core_web_sm`` where it is not installed),
loaded once for the whole test session."""

from __future__ import annotations

import pytest

from edgepipe.core.resources import Resources
from edgepipe.privacy import presidio
from edgepipe.privacy.detect import Detector, build_detectors


@pytest.fixture(scope="session")
def presidio_detectors(resources: Resources) -> tuple[Detector, ...]:
    """The detectors of ``privacy.detector: patterns+presidio``, Presidio from the session's
    shared models (loaded once: 2-4 s)."""
    missing = presidio.missing()
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (pip install 'edgepipe[privacy]')")
    detectors = build_detectors("patterns+presidio", resources=resources)
    assert [d.name for d in detectors] == ["patterns", "presidio"]
    return detectors
