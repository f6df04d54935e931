"""The voice turn record: frozen once built, its JSON written from its fields."""

from __future__ import annotations

import dataclasses
import inspect
import json
from types import MappingProxyType

import numpy as np
import pytest

from edgepipe.voice import record
from edgepipe.voice.record import (
    Alternative,
    AsrRecord,
    GrammarRecord,
    Latency,
    OpenRecord,
    Scored,
    VoiceOutcome,
    VoiceTurn,
    to_json,
)
from edgepipe.voice.snap import Snap


def a_turn() -> VoiceTurn:
    return VoiceTurn(
        wake=True,
        wake_at_s=1.2100000001,
        wake_score=-0.21234,
        outcome=VoiceOutcome.TURN,
        transcript="tv off",
        asr_path="open",
        route="rules",
        reason="template:exact",
        intent="tv_off",
        slots=MappingProxyType({"level": 0.3333333}),
        response="Turning off the TV.",
        handler_executed=True,
        tts_voice="piper",
        asr=AsrRecord(
            grammar=GrammarRecord(text="team off", ratio=0.61234),
            open=OpenRecord(
                text="Team me off.",
                avg_logprob=-0.61234,
                no_speech_prob=0.1,
                window_s=12.3,
                alternatives=(Alternative(text="Team be off.", avg_logprob=-0.8),),
                second_pass=None,
                used_rank=0,
                snapped=Snap("tv off", "tv_off", 0.2857, 4),
                rescored=(
                    Scored(text="team me off", score=-2.76),
                    Scored(text="tv off", score=-10.84),
                ),
            ),
        ),
        endpoint="end",
        speech_start_s=1.75,
        speech_end_s=2.78,
        endpoint_s=3.48,
        latency_ms=Latency(
            end_of_speech_to_first_audio=1237.34,
            first_audio_after_endpoint=537.34,
            backlog=0.0,
            stages=MappingProxyType({"wake_adapt": 114.26, "open_rescore": 112.04}),
        ),
        reply_audio=np.zeros(10, dtype=np.float32),
        reply_rate=22050,
    )


def test_a_turn_cannot_be_changed_once_built() -> None:
    turn = a_turn()
    with pytest.raises(dataclasses.FrozenInstanceError):
        turn.transcript = "tv on"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        turn.latency_ms.backlog = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        turn.stages_ms["turn"] = 1.0  # type: ignore[index]


def test_the_json_is_written_from_the_fields() -> None:
    shown = a_turn().as_dict()
    assert json.loads(json.dumps(shown)) == shown
    assert list(shown) == [
        "wake", "follow_up", "wake_at_s", "wake_score", "outcome", "transcript", "asr_path",
        "route", "reason", "intent", "slots", "response", "handler_executed", "tts_voice", "asr",
        "contrast", "endpoint", "turn_scores", "speech_start_s", "speech_end_s", "endpoint_s",
        "latency_ms", "trace",
    ]  # fmt: skip
    assert (
        shown["wake_at_s"] == 1.21 and shown["wake_score"] == -0.212 and shown["outcome"] == "turn"
    )
    assert shown["slots"] == {"level": 0.3333333}  # slot values as the turn read them
    assert shown["asr"]["grammar"] == {"text": "team off", "ratio": 0.612}
    opened = shown["asr"]["open"]
    assert opened["alternatives"] == [{"text": "Team be off.", "avg_logprob": -0.8}]
    assert opened["snapped"] == {
        "text": "tv off",
        "intent": "tv_off",
        "distance": 0.286,
        "margin": 4,
    }
    assert opened["rescored"][1] == {"text": "tv off", "score": -10.84}
    # latency: one digit, the stages beside the three figures
    assert shown["latency_ms"] == {
        "end_of_speech_to_first_audio": 1237.3,
        "first_audio_after_endpoint": 537.3,
        "backlog": 0.0,
        "wake_adapt": 114.3,
        "open_rescore": 112.0,
    }
    assert "reply_audio" not in shown and "result" not in shown and "reply_rate" not in shown
    assert shown["trace"] == []


def test_a_turn_measured_from_a_known_speech_end() -> None:
    turn = a_turn()
    assert turn.latency_from(2.48) == pytest.approx(1000 + 537.34)
    assert turn.end_of_speech_to_first_audio_ms == 1237.34
    assert dataclasses.replace(turn, endpoint_s=None).latency_from(2.48) is None


def test_every_record_is_frozen_with_a_docstring_per_field() -> None:
    classes = [
        value
        for value in vars(record).values()
        if inspect.isclass(value)
        and dataclasses.is_dataclass(value)
        and value.__module__ == record.__name__
    ]
    assert len(classes) >= 8
    for cls in classes:
        params = cls.__dataclass_params__  # type: ignore[attr-defined]
        assert params.frozen and hasattr(cls, "__slots__"), cls
        source = inspect.getsource(cls)
        for item in dataclasses.fields(cls):
            after = source.split(f"    {item.name}:", 1)[1].split("\n", 2)
            documented = after[1].strip().startswith('"""') or after[2].strip().startswith('"""')
            assert documented, f"{cls.__name__}.{item.name} has no docstring"


def test_to_json_refuses_what_it_cannot_write() -> None:
    with pytest.raises(TypeError):
        to_json(object())
    assert to_json((1.23456, VoiceOutcome.CLARIFY), 2) == [1.23, "clarify"]
