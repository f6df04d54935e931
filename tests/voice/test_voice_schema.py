"""``voice:`` in pack.yaml: one section per stage, each naming its backend."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from edgepipe.core.registry import BackendError
from edgepipe.pack.voice_schema import VoiceSpec
from edgepipe.voice.backends import registry_of
from edgepipe.voice.contracts import RECOGNIZERS, SYNTHESIZERS, TRANSCRIBERS, VAD, WAKE


def test_the_defaults_are_the_flat_settings_defaults_by_stage() -> None:
    spec = VoiceSpec()
    assert (spec.wake.backend, spec.vad.backend, spec.grammar.backend) == (
        "microwakeword",
        "silero",
        "pocketsphinx",
    )
    assert (spec.open.backend, spec.tts.backend, spec.tts.fallback) == (
        "whisper",
        "piper",
        "espeak",
    )
    assert (spec.wake.model, spec.wake.cutoff, spec.wake.refractory_s) == ("okay_nabu", 0.85, 2.0)
    assert (spec.wake.verify, spec.wake.verify_min_logprob, spec.wake.verify_delay_ms) == (
        True,
        -1.3,
        150,
    )
    assert spec.vad.threshold == 0.5
    endpoint = spec.endpoint
    assert (endpoint.listen_timeout_s, endpoint.min_speech_ms, endpoint.trailing_silence_ms) == (
        4.0,
        200,
        700,
    )
    assert (endpoint.early_silence_ms, endpoint.max_utterance_s) == (200, 10.0)
    assert (spec.grammar.min_ratio, spec.grammar.adapt_on_wake_s) == (0.75, 1.5)
    assert spec.grammar.contrast_words == [["on", "off"], ["up", "down"], ["open", "close"]]
    o = spec.open
    assert (o.threads, o.prompt, o.beam_size, o.min_logprob, o.command_min_logprob) == (
        2,
        "auto",
        5,
        -1.0,
        -1.5,
    )
    assert (o.alternative_margin, o.grammar_context, o.snap_max_distance, o.snap_margin) == (
        0.5,
        True,
        0.2,
        2,
    )
    assert (o.rescore_max_distance, o.rescore_max_gap, o.rescore_margin) == (0.4, 10.0, 4.0)
    assert spec.tts.threads == 2


def test_the_hotel_pack_names_its_backends(voice_pack) -> None:  # type: ignore[no-untyped-def]
    spec = voice_pack.spec.voice
    assert spec.wake.cutoff == 0.2 and spec.grammar.min_ratio == 0.75
    assert spec.open.backend == "whisper" and spec.tts.backend == "piper"


def test_settings_change_by_dotted_path_and_are_validated() -> None:
    spec = VoiceSpec()
    changed = spec.with_settings({"open.prompt": "", "grammar.contrast_words": [["Up", "down"]]})
    assert changed.open.prompt == "" and changed.grammar.contrast_words == [["up", "down"]]
    assert spec.open.prompt == "auto"  # a copy
    with pytest.raises(ValueError, match=r"no setting 'open\.promt'"):
        spec.with_settings({"open.promt": ""})
    with pytest.raises(ValueError, match="no section"):
        spec.with_settings({"speech.prompt": ""})
    with pytest.raises(ValidationError, match="less than 1"):
        spec.with_settings({"open.rescore_max_distance": 1.5})
    with pytest.raises(ValidationError, match="early_silence_ms must not exceed"):
        spec.with_settings({"endpoint.early_silence_ms": 900})
    with pytest.raises(ValidationError, match="needs two or more different words"):
        spec.with_settings({"grammar.contrast_words": [["on"]]})
    with pytest.raises(ValidationError, match="Extra inputs"):
        VoiceSpec.model_validate({"wake_cutoff": 0.2})  # the flat settings are gone


def test_a_backend_name_must_be_one_a_registry_knows() -> None:
    with pytest.raises(ValidationError) as info:
        VoiceSpec.model_validate({"open": {"backend": "vosk"}})
    message = str(info.value)
    assert "unknown transcriber 'vosk'" in message and "edgepipe.transcribers" in message
    with pytest.raises(ValidationError, match="unknown synthesizer 'mary'"):
        VoiceSpec.model_validate({"tts": {"fallback": "mary"}})
    assert (
        VoiceSpec.model_validate({"tts": {"backend": "espeak", "fallback": None}}).tts.fallback
        is None
    )


def test_each_kind_has_a_registry_with_edgepipes_own_backends() -> None:
    groups = {r.group for r in (WAKE, VAD, RECOGNIZERS, TRANSCRIBERS, SYNTHESIZERS)}
    assert groups == {
        "edgepipe.wake",
        "edgepipe.vad",
        "edgepipe.recognizers",
        "edgepipe.transcribers",
        "edgepipe.synthesizers",
    }
    assert registry_of("wake") is WAKE and "microwakeword" in WAKE
    assert "silero" in VAD and "pocketsphinx" in RECOGNIZERS and "whisper" in TRANSCRIBERS
    assert {"piper", "espeak"} <= set(SYNTHESIZERS.names())
    with pytest.raises(BackendError) as info:
        TRANSCRIBERS.get("vosk")
    assert info.value.code == "transcriber_unknown"
