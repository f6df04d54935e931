"""Voice test fixtures. The models load once per test session (through the session's
``resources``); every test gets voice objects of its own on top of them, so no test changes what
another sees."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from pathlib import Path

import pytest

from edgepipe.core.resources import Resources
from edgepipe.engine.engine import Engine, load_engine_pack
from edgepipe.pack.loader import Pack
from edgepipe.testing.voicedata import VoiceFixtures, espeak_voice_fixtures, piper_voice_fixtures
from edgepipe.voice.session import VoiceSession

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
def voice_pack() -> Pack:
    return load_engine_pack(HOTEL)


@pytest.fixture
def voice_engine(voice_pack: Pack, resources: Resources) -> Iterator[Engine]:
    """This test's engine on the hotel pack (rules and router; no local model, no cloud) at
    09:30 on 1 June 2026, its models shared with the whole test session."""
    at = datetime(2026, 6, 1, 9, 30, tzinfo=voice_pack.timezone)
    engine = Engine(
        voice_pack,
        tiers={"local_model": None, "cloud": None},
        clock=lambda: at,
        resources=resources,
    )
    yield engine
    engine.close()


@pytest.fixture
def voice(voice_engine: Engine) -> VoiceSession:
    """This test's voice session (a room of its own); Whisper, Piper, pocketsphinx and the
    snapper are the test session's. Other settings: ``voice.with_settings(...)``."""
    return VoiceSession.build(voice_engine.session())


@pytest.fixture(scope="session")
def piper_speech(shared_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> VoiceFixtures:
    with _test_home(shared_cache, tmp_path_factory):
        return piper_voice_fixtures()


@pytest.fixture(scope="session")
def espeak_speech(shared_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> VoiceFixtures:
    with _test_home(shared_cache, tmp_path_factory):
        return espeak_voice_fixtures()
