"""Voice test fixtures: the models load once per test session."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from edgepipe.pipeline import Assistant, load_assistant_pack
from edgepipe.testing.voicedata import VoiceFixtures, espeak_voice_fixtures, piper_voice_fixtures
from edgepipe.voice.session import VoiceAssistant

HOTEL = Path(__file__).resolve().parents[2] / "packs" / "hotel"


@pytest.fixture(scope="session")
def voice() -> VoiceAssistant:
    """The hotel pack's voice front end (rules and router; no local model, no cloud), at 09:30."""
    pack = load_assistant_pack(HOTEL)
    at = datetime(2026, 6, 1, 9, 30, tzinfo=pack.timezone)
    assistant = Assistant(pack, local_model=None, cloud=None, clock=lambda: at)
    return VoiceAssistant.from_assistant(assistant)


@pytest.fixture(scope="session")
def piper_speech() -> VoiceFixtures:
    return piper_voice_fixtures()


@pytest.fixture(scope="session")
def espeak_speech() -> VoiceFixtures:
    return espeak_voice_fixtures()
