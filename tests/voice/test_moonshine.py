"""Moonshine base-en as the open transcriber: its conversion, what it declares, on spoken audio,
and in real voice turns when a pack selects it (``voice.open.backend: moonshine``).

The model loads once for the module, through the test session's resources, as a voice session
loads it (the voice turns below find it there)."""

from __future__ import annotations

import importlib.util
import logging
import shutil
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from edgepipe.core.resources import Resources
from edgepipe.engine.engine import Engine, load_engine_pack
from edgepipe.voice.backends.moonshine import (
    MoonshineTranscriber,
    converted_models,
    join_numbers,
    moonshine_model_dir,
)
from edgepipe.voice.contracts import (
    TRANSCRIBERS,
    AsrError,
    BackendContext,
    Capability,
    OpenTranscriber,
)

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("moonshine_cpp") is None
    or importlib.util.find_spec("moonshine_onnx") is None,
    reason="Moonshine needs moonshine-cpp (weights) and useful-moonshine-onnx (tokenizer)",
)

HOTEL = Path(__file__).resolve().parents[2] / "packs" / "hotel"


def test_moonshine_declares_what_it_implements() -> None:
    assert issubclass(MoonshineTranscriber, OpenTranscriber)
    assert MoonshineTranscriber.capabilities == {
        Capability.ALTERNATIVES,
        Capability.PHRASE_SCORE,
        Capability.SENTENCE_SCORES,
        Capability.ENCODE,
    }
    # no previous text: no prompt, no second pass after the grammar path's words
    assert Capability.CONTEXT not in MoonshineTranscriber.capabilities
    assert "moonshine" in TRANSCRIBERS.names()


def test_numbers_written_in_words_lose_the_comma_inside_them() -> None:
    # "eighteen" on its own after a comma reads as a clause: a temperature
    said = "Who won the World Cup in two thousand, eighteen?"
    assert join_numbers(said) == "Who won the World Cup in two thousand eighteen?"
    assert join_numbers("one hundred, and twenty") == "one hundred and twenty"
    assert join_numbers("two thousand, please") == "two thousand, please"


@pytest.fixture(scope="module")
def moonshine(in_test_home, voice_pack, resources: Resources) -> MoonshineTranscriber:  # type: ignore[no-untyped-def]
    """The registry's Moonshine, its model in the test session's resources."""
    from edgepipe.core.paths import cache_home

    with in_test_home():
        context = BackendContext(
            pack=voice_pack,
            voice=voice_pack.spec.voice.with_settings({"open.backend": "moonshine"}),
            resources=resources,
            cache_dir=cache_home(),
        )
        transcriber = TRANSCRIBERS.get("moonshine")(context)
    assert isinstance(transcriber, MoonshineTranscriber)
    return transcriber


@pytest.fixture(scope="module")
def say(piper_speech):  # type: ignore[no-untyped-def]
    def speak(text: str, fixtures=piper_speech) -> np.ndarray:  # type: ignore[no-untyped-def]
        audio = np.concatenate([np.zeros(4000), fixtures.speech(text), np.zeros(4000)])
        return (np.clip(audio, -1, 1) * 32767).astype(np.int16)

    return speak


@pytest.mark.slow
def test_the_int8_weights_are_converted_once_into_the_cache(tmp_path: Path) -> None:
    source = moonshine_model_dir()
    encoder, decoder = converted_models(source, tmp_path)
    assert encoder.parent.parent == tmp_path and encoder.parent.name.startswith("moonshine-")
    stamps = (encoder.stat().st_mtime_ns, decoder.stat().st_mtime_ns)
    assert converted_models(source, tmp_path) == (encoder, decoder)
    assert (encoder.stat().st_mtime_ns, decoder.stat().st_mtime_ns) == stamps
    import onnx

    graph = onnx.load(str(decoder), load_external_data=False).graph
    ops = {node.op_type for node in graph.node}
    branches = [a.g for node in graph.node for a in node.attribute if a.type == a.GRAPH]
    inner = {node.op_type for branch in branches for node in branch.node}
    # the per-run dequantization is gone: products read the int8 weights directly
    assert "Cast" not in ops and "MatMulNBits" in inner and "MatMul" in inner


@pytest.mark.slow
def test_moonshine_transcribes_a_spoken_command(moonshine, say, voice_engine) -> None:  # type: ignore[no-untyped-def]
    heard = moonshine.transcribe(say("Turn off the lights in the bedroom."))
    # the words, not a pinned string: the templates read the same command from them
    matched = voice_engine.understanding.match(heard.text).match
    assert matched is not None and matched.name == "lights_off", heard.text
    assert matched.slot_values() == {"zone": "bedroom"}
    assert -1.0 < heard.avg_logprob <= 0 and heard.no_speech_prob < 0.1
    assert heard.window_s == pytest.approx((32000 + 4000 * 2) / 16000, abs=2)
    # n-best: distinct in their words, best first
    texts = [heard.text] + [text for text, _ in heard.alternatives]
    assert 1 <= len(texts) <= moonshine.beam_size
    plain = [
        " ".join("".join(c for c in t.lower() if c.isalnum() or c == " ").split()) for t in texts
    ]
    assert len(set(plain)) == len(plain)
    scores = [heard.avg_logprob] + [score for _, score in heard.alternatives]
    assert scores == sorted(scores, reverse=True)
    greedy = MoonshineTranscriber(moonshine.model, beam_size=1)
    single = greedy.transcribe(say("Turn off the lights in the bedroom."))
    assert single.alternatives == () and "bedroom" in single.text.lower()


@pytest.mark.slow
def test_moonshine_hears_nothing_in_silence_and_refuses_bad_input(moonshine) -> None:  # type: ignore[no-untyped-def]
    for samples in (np.zeros(0, dtype=np.int16), np.zeros(800, dtype=np.int16)):
        nothing = moonshine.transcribe(samples)  # under Moonshine's 0.1 s
        assert nothing.text == "" and nothing.no_speech_prob == 1.0
        assert nothing.avg_logprob == -np.inf
    silent = moonshine.transcribe(np.zeros(16000, dtype=np.int16))
    assert silent.text == "" or silent.no_speech_prob > 0.5 or silent.avg_logprob < -1.0
    noise = (np.random.default_rng(0).normal(0, 0.05, 32000) * 32767).astype(np.int16)
    assert moonshine.transcribe(noise).no_speech_prob > 0.6
    with pytest.raises(AsrError, match="mono"):
        moonshine.transcribe(np.zeros((2, 16000), dtype=np.int16))
    with pytest.raises(AsrError, match="at most 64 s"):
        moonshine.transcribe(np.zeros(65 * 16000, dtype=np.int16))


@pytest.mark.slow
def test_moonshine_decodes_one_encoding_again(moonshine, say) -> None:  # type: ignore[no-untyped-def]
    pcm = say("Could you recommend a nice restaurant nearby?")
    audio = moonshine.encode(pcm)
    assert audio.frames == audio.window == len(pcm) * 100 // 16000
    ready, fresh = moonshine.transcribe(pcm, audio=audio), moonshine.transcribe(pcm)
    assert (ready.text, ready.alternatives) == (fresh.text, fresh.alternatives)
    assert ready.avg_logprob == pytest.approx(fresh.avg_logprob)
    assert "restaurant" in ready.text.lower()
    # float input reads the same as int16
    as_float = moonshine.transcribe(pcm.astype(np.float32) / 32768.0)
    assert as_float.text == fresh.text


@pytest.mark.slow
def test_moonshine_phrase_score_ranks_the_wake_phrase_above_look_alikes(  # type: ignore[no-untyped-def]
    moonshine, espeak_speech, piper_speech
) -> None:
    from edgepipe.testing.voicedata import compose

    def score(fixtures, text: str) -> float:  # type: ignore[no-untyped-def]
        return moonshine.phrase_logprob(compose([0.3, fixtures.speech(text), 0.15]), "Okay Nabu")

    for fixtures in (espeak_speech, piper_speech):
        wake = score(fixtures, "Okay Nabu.")
        # all of these wake the okay_nabu model at 0.9 or more in espeak-ng's voice
        for text in ("ok, I'm up", "okay, now what", "okay, a new towel please"):
            assert score(fixtures, text) < wake - 1.0, (fixtures.voice_id, text)
    assert moonshine.phrase_logprob(np.zeros(0, dtype=np.int16), "Okay Nabu") == -np.inf
    assert moonshine.phrase_logprob(np.zeros(8000, dtype=np.int16), "") == -np.inf


@pytest.mark.slow
def test_moonshine_sentence_scores_prefer_the_reading_the_audio_says(  # type: ignore[no-untyped-def]
    moonshine, espeak_speech, piper_speech
) -> None:
    from edgepipe.testing.voicedata import compose

    for fixtures in (espeak_speech, piper_speech):
        for said, other in (("all lights off", "all lights on"), ("blinds up", "blinds down")):
            clip = compose([0.1, fixtures.speech(said), 0.3])
            right, wrong = moonshine.sentence_scores(clip, [said, other])
            assert right > wrong, (said, right, wrong)
            # the order of the sentences does not matter
            assert moonshine.sentence_scores(clip, [other, said]) == pytest.approx(
                [wrong, right], abs=1e-3
            )
    clip = compose([0.1, piper_speech.speech("Turn off the lights in the bedroom."), 0.3])
    whole, short = moonshine.sentence_scores(
        clip, ["turn off the lights in the bedroom", "turn off the lights"]
    )
    assert whole > short  # a reading that stops short of the audio pays for it
    assert moonshine.sentence_scores(np.zeros(0, dtype=np.int16), ["a", "b"]) == [-np.inf] * 2
    assert moonshine.sentence_scores(np.zeros(8000, dtype=np.int16), []) == []
    assert moonshine.sentence_scores(np.zeros(8000, dtype=np.int16), [" . "])[0] == -np.inf


def _pack_on_moonshine(tmp_path: Path) -> Path:
    """A copy of the hotel pack whose open path is Moonshine (its wake check at Moonshine's
    threshold), and whose grammar path is never sure enough to skip it."""
    root = tmp_path / "hotel"
    shutil.copytree(HOTEL, root, ignore=shutil.ignore_patterns("tests", "__pycache__"))
    manifest = root / "pack.yaml"
    text = manifest.read_text(encoding="utf-8")
    for old, new in (
        ("  open:\n    backend: whisper\n", "  open:\n    backend: moonshine\n"),
        ("    min_ratio: 0.75\n", "    min_ratio: 100\n"),
        ("    verify_min_logprob: -1.3\n", "    verify_min_logprob: -3.0\n"),
    ):
        assert old in text
        text = text.replace(old, new)
    manifest.write_text(text, encoding="utf-8")
    return root


@pytest.mark.slow
def test_a_pack_runs_voice_turns_on_moonshine(  # type: ignore[no-untyped-def]
    tmp_path: Path,
    moonshine,
    voice_engine: Engine,
    resources: Resources,
    piper_speech,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from edgepipe.testing.voicedata import command_clip
    from edgepipe.voice.audio import from_float
    from edgepipe.voice.session import VoiceSession

    pack = load_engine_pack(_pack_on_moonshine(tmp_path))
    assert pack.spec.voice.open.backend == "moonshine"
    at = datetime(2026, 6, 1, 9, 30, tzinfo=pack.timezone)
    engine = Engine(
        pack,
        tiers={"local_model": None, "cloud": None},
        clock=lambda: at,
        router=voice_engine.router,  # the same intents and examples: no second training
        resources=resources,
    )
    try:
        with caplog.at_level(logging.INFO, logger="edgepipe.voice"):
            voice = VoiceSession.build(engine.session())
        transcriber = voice.transcriber
        assert isinstance(transcriber, MoonshineTranscriber)
        assert transcriber.model is moonshine.model  # shared through the resources
        # what it cannot do is not asked of it, and the log says so; what it can is used
        assert "no second pass" in caplog.text
        for used in ("wakes are not checked", "no contrast check", "no rescoring"):
            assert used not in caplog.text, used
        said = [
            ("Turn off the lights in the bedroom.", "lights_off", {"zone": "bedroom"}),
            ("Close the blinds.", "blinds_close", {}),
        ]
        for text, intent, slots in said:
            clip, _ = command_clip(piper_speech, text)
            (turn,) = voice.process(from_float(clip, 16000))
            assert turn.wake and turn.wake_score is not None  # checked by Moonshine
            assert turn.wake_score >= pack.spec.voice.wake.verify_min_logprob
            assert turn.asr_path == "open" and turn.outcome == "turn"
            assert turn.intent == intent and dict(turn.slots) == slots, turn.transcript
            assert turn.handler_executed and turn.reply_audio is not None
            opened = turn.asr.open
            assert opened is not None and opened.second_pass is None
            assert turn.as_dict()["asr"]["open"]["text"] == opened.text
    finally:
        engine.close()
