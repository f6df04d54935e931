"""Voice test fixtures: the models load once per test session."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from pathlib import Path

import pytest

from edgepipe.pipeline import Assistant, load_assistant_pack
from edgepipe.testing.voicedata import VoiceFixtures, espeak_voice_fixtures, piper_voice_fixtures
from edgepipe.voice.session import VoiceAssistant

HOTEL = Path(__file__).resolve().parents[2] / "packs" / "hotel"


@contextmanager
def _test_home(shared_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The test session's home and cache while a session fixture is built. Session fixtures
    are set up before the per-test ``_edgepipe_home`` applies, so without this they built the
    encoder, trained the router and cached test audio in the real home, and a test that then
    looked for the router in the session's cache did not find it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EDGEPIPE_HOME", str(tmp_path_factory.mktemp("edgepipe-home")))
        patch.setenv("EDGEPIPE_CACHE", str(shared_cache))
        yield


@pytest.fixture(scope="session")
def in_test_home(
    shared_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[], AbstractContextManager[None]]:
    """For module fixtures: ``with in_test_home(): ...`` builds in the session's cache."""
    return lambda: _test_home(shared_cache, tmp_path_factory)


@pytest.fixture(scope="session")
def voice(shared_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> VoiceAssistant:
    """The hotel pack's voice front end (rules and router; no local model, no cloud), at 09:30."""
    with _test_home(shared_cache, tmp_path_factory):
        pack = load_assistant_pack(HOTEL)
        at = datetime(2026, 6, 1, 9, 30, tzinfo=pack.timezone)
        assistant = Assistant(pack, local_model=None, cloud=None, clock=lambda: at)
        return VoiceAssistant.from_assistant(assistant)


@pytest.fixture(scope="session")
def piper_speech(shared_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> VoiceFixtures:
    with _test_home(shared_cache, tmp_path_factory):
        return piper_voice_fixtures()


@pytest.fixture(scope="session")
def espeak_speech(shared_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> VoiceFixtures:
    with _test_home(shared_cache, tmp_path_factory):
        return espeak_voice_fixtures()
