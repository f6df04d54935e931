"""A transcriber from another package, found through the ``edgepipe.transcribers`` entry points
(no edgepipe module names it), chosen by a pack and used in real voice turns: wake word,
listener, arbitration, the text turn, speech synthesis."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from edgepipe.core.errors import PackError
from edgepipe.core.resources import Resources
from edgepipe.engine.engine import Engine, load_engine_pack
from edgepipe.testing.voicedata import command_clip, piper_voice_fixtures
from edgepipe.voice.audio import from_float
from edgepipe.voice.contracts import TRANSCRIBERS, OpenTranscriber
from edgepipe.voice.session import VoiceSession

ROOT = Path(__file__).resolve().parents[2]
HOTEL = ROOT / "packs" / "hotel"
PLUGIN = Path(__file__).resolve().parent / "sphinx_transcriber"


def pack_with_plugin(tmp_path: Path) -> Path:
    """A copy of the hotel pack whose open path is the plugin's, and whose grammar path is never
    sure enough to skip it (so that every turn is the plugin's to transcribe)."""
    root = tmp_path / "hotel"
    shutil.copytree(HOTEL, root, ignore=shutil.ignore_patterns("tests", "__pycache__"))
    manifest = root / "pack.yaml"
    text = manifest.read_text(encoding="utf-8")
    for old, new in (
        ("  open:\n    backend: whisper\n", "  open:\n    backend: sphinx_free\n"),
        ("    min_ratio: 0.75\n", "    min_ratio: 100\n"),
    ):
        assert old in text
        text = text.replace(old, new)
    manifest.write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def engines(resources: Resources) -> Iterator[list[Engine]]:
    made: list[Engine] = []
    yield made
    for engine in made:
        engine.close()


@pytest.mark.slow
def test_a_pack_runs_voice_turns_on_a_transcriber_a_package_adds(  # type: ignore[no-untyped-def]
    tmp_path: Path,
    install_plugin,
    monkeypatch: pytest.MonkeyPatch,
    resources: Resources,
    engines: list[Engine],
    caplog: pytest.LogCaptureFixture,
) -> None:
    root = pack_with_plugin(tmp_path)
    # not installed: the pack names a transcriber nobody provides
    assert "sphinx_free" not in TRANSCRIBERS
    with pytest.raises(PackError, match="unknown transcriber 'sphinx_free'"):
        load_engine_pack(root)

    install_plugin(PLUGIN, tmp_path / "site", monkeypatch)
    assert "sphinx_free" in TRANSCRIBERS.names()
    pack = load_engine_pack(root)
    assert pack.spec.voice.open.backend == "sphinx_free"
    at = datetime(2026, 6, 1, 9, 30, tzinfo=pack.timezone)
    hotel = Engine(
        load_engine_pack(HOTEL), tiers={"local_model": None, "cloud": None}, resources=resources
    )
    engines.append(hotel)
    engine = Engine(
        pack,
        tiers={"local_model": None, "cloud": None},
        clock=lambda: at,
        router=hotel.router,  # the same intents and examples: no second training
        resources=resources,
    )
    engines.append(engine)
    with caplog.at_level(logging.INFO, logger="edgepipe.voice"):
        voice = VoiceSession.build(engine.session())
    transcriber = voice.transcriber
    assert isinstance(transcriber, OpenTranscriber)
    assert type(transcriber).__module__ == "edgepipe_sphinx_free"
    assert transcriber.capabilities == frozenset()
    # what it cannot do is not asked of it, and the log says so
    for missing in ("wakes are not checked", "no contrast check", "no rescoring", "no second pass"):
        assert missing in caplog.text, missing

    speech = piper_voice_fixtures()
    said = [
        ("Turn off the lights in the bedroom.", "lights_off", {"zone": "bedroom"}),
        ("Close the blinds.", "blinds_close", {}),
    ]
    for text, intent, slots in said:
        clip, _ = command_clip(speech, text)
        (turn,) = voice.process(from_float(clip, 16000))
        assert turn.wake and turn.wake_score is None  # woken, not checked
        assert turn.asr_path == "open" and turn.outcome == "turn"
        assert turn.transcript == transcriber.heard[-1]  # type: ignore[attr-defined]
        assert turn.intent == intent and dict(turn.slots) == slots
        assert turn.handler_executed and turn.reply_audio is not None and len(turn.reply_audio)
        opened = turn.asr.open
        assert opened is not None and opened.alternatives == () and opened.rescored is None
        assert opened.second_pass is None and turn.contrast is None
        assert turn.as_dict()["asr"]["open"]["text"] == turn.transcript
