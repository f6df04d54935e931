"""End-to-end voice turns with the real models: wake word, Silero VAD, pocketsphinx, Whisper,
Piper. Test audio is synthesized here (Piper and espeak-ng voices, with noise).

Each test asserts the outcome against the text the audio says (intent, slots). Where a test is
about one mechanism (the contrast check, rescoring, the second beam), the clip it uses is one
where that mechanism decides the outcome *today*: what the recognisers made of the clip is
asserted too, marked "regression pin". A pin that fails after a model or decoder update means
the clip no longer exercises the mechanism, not that the mechanism broke: find another clip.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgepipe.nlu.slots import with_digits
from edgepipe.testing.voicedata import command_clip, command_stream, compose
from edgepipe.voice.audio import from_float, write_wav
from edgepipe.voice.noise import NOISES
from edgepipe.voice.record import VoiceTurn
from edgepipe.voice.session import REPEAT, VoiceSession

ROOT = Path(__file__).resolve().parents[2]
HOTEL = ROOT / "packs" / "hotel"
COMMANDS = [
    ("Turn off the lights in the bedroom.", "lights_off", {"zone": "bedroom"}),
    ("Set the thermostat to twenty three degrees.", "thermostat_set", {"degrees": 23}),
    ("Close the blinds.", "blinds_close", {}),
    ("Could I get two more towels please?", "request_towels", {"count": 2}),
]


def _one(voice: VoiceSession, clip: np.ndarray, **kw: bool) -> VoiceTurn:
    voice.session.pending = None  # this test's own room: no question of an earlier turn waits
    turns = voice.process(from_float(clip, 16000), **kw)
    assert len(turns) == 1, [t.as_dict() for t in turns]
    return turns[0]


def _words(text: str) -> list[str]:
    return "".join(c if c.isalnum() else " " for c in text.lower()).split()


@pytest.mark.slow
@pytest.mark.parametrize(("text", "intent", "slots"), COMMANDS)
def test_clean_piper_commands_run_the_right_intent(
    voice, piper_speech, text, intent, slots
) -> None:  # type: ignore[no-untyped-def]
    clip, meta = command_clip(piper_speech, text)
    turn = _one(voice, clip)
    assert turn.wake and turn.outcome == "turn"
    assert turn.intent == intent and dict(turn.slots) == slots
    assert turn.result is not None and turn.result.handler_executed
    assert turn.reply_audio is not None and len(turn.reply_audio) > 0
    latency = turn.latency_from(meta["speech_end_s"])
    assert latency is not None and latency > 0
    # the endpoint comes after the speech, never before it (stream time, not wall time)
    assert turn.endpoint_s is not None and turn.endpoint_s >= meta["speech_end_s"]


@pytest.mark.slow
def test_grammar_path_ends_a_complete_command_early(voice, piper_speech) -> None:  # type: ignore[no-untyped-def]
    clip, meta = command_clip(piper_speech, "Close the blinds.")
    turn = _one(voice, clip)
    assert turn.intent == "blinds_close"
    assert turn.asr_path == "grammar"
    assert turn.endpoint == "early_end"
    # ended by the early silence (0.2 s), not the trailing one (0.7 s): stream time
    assert turn.endpoint_s - meta["speech_end_s"] < 0.5  # type: ignore[operator]


@pytest.mark.slow
def test_wake_times_are_stream_time_over_ten_commands(voice, piper_speech) -> None:  # type: ignore[no-untyped-def]
    # The true wake time of a command is the end of its wake phrase in the stream (the last
    # sample of "Okay Nabu." above 1 % of its peak): the detector fires as the phrase ends.
    # Before wake_at_s was counted by the listener it was the detector's own clock, which does
    # not run while a command is listened to: each turn's wake_at_s fell further behind.
    commands = [
        "Close the blinds.",
        "Turn on the TV.",
        "Open the blinds.",
        "Turn off the TV.",
        "Lights off please.",
        "Lights on please.",
        "Close the blinds.",
        "Turn on the TV.",
        "Open the blinds.",
        "Turn off the TV.",
    ]
    clip, metas = command_stream(piper_speech, commands, pause_s=2.0)
    voice.session.pending = None
    turns = voice.process(from_float(clip, 16000))
    assert len(turns) == len(commands), [t.as_dict() for t in turns]
    errors = []
    for turn, meta in zip(turns, metas, strict=True):
        assert turn.wake and turn.wake_at_s is not None
        errors.append(abs(turn.wake_at_s - meta["wake_end_s"]))
        # every time of the turn is on the same clock
        assert turn.wake_at_s < turn.speech_start_s < turn.endpoint_s  # type: ignore[operator]
        assert abs(turn.speech_start_s - meta["speech_start_s"]) < 0.3  # type: ignore[operator]
    assert max(errors) < 0.3, errors


@pytest.mark.slow
def test_espeak_voice_and_noise(voice, espeak_speech) -> None:  # type: ignore[no-untyped-def]
    ok = 0
    for i, (text, intent, _slots) in enumerate(COMMANDS):
        clip, _ = command_clip(espeak_speech, text, noise="fan", snr_db=20, seed=i)
        turn = _one(voice, clip)
        ok += turn.intent == intent
    assert ok >= 2


@pytest.mark.slow
def test_no_wake_word_means_no_turn(voice, piper_speech) -> None:  # type: ignore[no-untyped-def]
    clip, _ = command_clip(piper_speech, "Turn off the lights in the bedroom.", wake_word_text=None)
    assert voice.process(from_float(clip, 16000)) == []


@pytest.mark.slow
@pytest.mark.parametrize("noise", sorted(NOISES))
def test_non_speech_noise_never_runs_a_handler(voice, noise) -> None:  # type: ignore[no-untyped-def]
    clip = NOISES[noise](12.0, 3) * 0.8
    turns = voice.process(from_float(clip, 16000), require_wake=False)
    assert not any(t.handler_executed for t in turns)
    assert voice.process(from_float(clip, 16000)) == []  # and it never wakes the device


@pytest.mark.slow
def test_silence_is_a_clean_no_speech_outcome(voice) -> None:  # type: ignore[no-untyped-def]
    turn = _one(voice, np.zeros(16000 * 3, dtype=np.float32), require_wake=False)
    assert turn.outcome == "no_speech" and turn.result is None


@pytest.mark.slow
def test_mumble_after_wake_asks_to_repeat_or_times_out(voice, piper_speech) -> None:  # type: ignore[no-untyped-def]
    wake = piper_speech.speech("Okay Nabu.")
    hum = NOISES["fan"](5.0, 1) * 0.05
    clip = compose([0.5, wake, 0.3])
    clip = np.concatenate([clip, hum])
    turn = _one(voice, clip)
    assert turn.wake
    assert turn.outcome in ("timeout", "clarify")
    if turn.outcome == "clarify":
        assert turn.response == REPEAT and turn.result is None


def _cli(
    *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "edgepipe.cli", *args],
        input=stdin,
        capture_output=True,
        timeout=240,
        check=False,
        env=None if env is None else {**os.environ, **env},
    )


JSON_KEYS = [
    "wake", "follow_up", "wake_at_s", "wake_score", "outcome", "transcript", "asr_path", "route",
    "reason", "intent", "slots", "response", "handler_executed", "tts_voice", "asr", "contrast",
    "endpoint", "turn_scores", "speech_start_s", "speech_end_s", "endpoint_s", "latency_ms",
    "trace",
]  # fmt: skip
"""``listen --json``'s keys, in order (bench/bench_voice.py and scripts read them)."""


@pytest.mark.slow
def test_cli_listen_json_and_reply_wav(tmp_path: Path, piper_speech) -> None:  # type: ignore[no-untyped-def]
    clip, _ = command_clip(piper_speech, "Turn off the lights in the bedroom.")
    wav = tmp_path / "in.wav"
    write_wav(wav, clip, 16000)
    reply = tmp_path / "reply.wav"
    proc = _cli(
        "listen", str(HOTEL), "--wav", str(wav), "--out", str(reply), "--json", "--no-telemetry"
    )
    assert proc.returncode == 0, proc.stderr.decode()
    lines = [json.loads(line) for line in proc.stdout.decode().splitlines() if line.strip()]
    assert len(lines) == 1
    turn = lines[0]
    assert list(turn) == JSON_KEYS
    assert list(turn["asr"]) == ["grammar", "open"]
    assert turn["wake"] is True and turn["intent"] == "lights_off"
    assert turn["slots"] == {"zone": "bedroom"}
    latency = turn["latency_ms"]
    assert list(latency)[:3] == [
        "end_of_speech_to_first_audio",
        "first_audio_after_endpoint",
        "backlog",
    ]
    assert latency["end_of_speech_to_first_audio"] > 0 and "tts_first" in latency
    assert reply.stat().st_size > 10_000


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"", "audio_empty"),
        (b"RIFF\x00\x00", "audio_malformed"),
        (b"hello world, not audio", "audio_malformed"),
    ],
)
def test_cli_listen_rejects_bad_wav(tmp_path: Path, content: bytes, code: str) -> None:
    wav = tmp_path / "bad.wav"
    wav.write_bytes(content)
    proc = _cli("listen", str(HOTEL), "--wav", str(wav), "--json")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr.decode()
    error = json.loads(proc.stdout.decode())["error"]
    assert error["code"] in (code, "audio_truncated", "audio_malformed", "audio_empty")
    assert "bad.wav" in error["message"]


def test_cli_listen_needs_exactly_one_source() -> None:
    proc = _cli("listen", str(HOTEL))
    assert proc.returncode == 2
    assert b"exactly one of" in proc.stderr


@pytest.mark.slow
def test_cli_listen_raw_pcm_on_stdin_push_to_talk(piper_speech, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    clip, _ = command_clip(piper_speech, "Close the blinds.", wake_word_text=None)
    pcm = (np.clip(clip, -1, 1) * 32767).astype("<i2").tobytes()
    # --speaker on a machine without an audio device (sounddevice fails to import, as it does
    # without PortAudio): the turn is still heard and answered, and the warning says why
    # nothing was played
    (tmp_path / "sounddevice.py").write_text('raise OSError("PortAudio library not found")\n')
    proc = _cli(
        "listen",
        str(HOTEL),
        "--pcm",
        "-",
        "--no-wake",
        "--json",
        "--no-telemetry",
        "--speaker",
        stdin=pcm,
        env={"PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"},
    )
    assert proc.returncode == 0, proc.stderr.decode()
    turn = json.loads(proc.stdout.decode().splitlines()[0])
    assert turn["wake"] is False
    assert turn["intent"] == "blinds_close"
    stderr = proc.stderr.decode()
    assert "replies were not played" in stderr and "PortAudio" in stderr
    assert "Traceback" not in stderr


def test_cli_listen_odd_length_pcm_is_an_error() -> None:
    proc = _cli("listen", str(HOTEL), "--pcm", "-", "--json", stdin=b"\x01\x02\x03")
    assert proc.returncode == 2
    assert json.loads(proc.stdout.decode())["error"]["code"] == "audio_truncated"


@pytest.mark.slow
def test_robotic_voice_command_snapped_and_accepted_below_the_free_text_floor(
    voice, espeak_speech
) -> None:  # type: ignore[no-untyped-def]
    # espeak-ng's "set the AC to 24", without the pack's prompt and without the second beam
    # (after the grammar path's words Whisper writes "Set the heat at 24." itself)
    clip, _ = command_clip(espeak_speech, "set the AC to 24")
    # and ending on the trailing silence: ended 0.45 s sooner by the end-of-turn model, the
    # clip is "Set the heat at 24." to Whisper, no snap needed
    bare = voice.with_settings(
        **{"open.prompt": "", "open.grammar_context": False, "turn.backend": None}
    )
    turn = _one(bare, clip)
    assert turn.intent == "thermostat_set" and dict(turn.slots) == {"degrees": 24}
    # regression pin: Whisper tiny hears "Set the seat at 24." at about -1.05, below the
    # free-text floor (-1.0); snapped to a command, it needs only -1.5
    opened = turn.asr.open
    assert turn.asr_path == "open" and opened is not None and opened.snapped is not None
    assert opened.avg_logprob < bare.spec.open.min_logprob
    snapped = turn.as_dict()["asr"]["open"]["snapped"]
    assert snapped["intent"] == "thermostat_set" and snapped["text"] == turn.transcript


@pytest.mark.slow
def test_open_path_rescores_a_transcript_too_far_to_snap(voice, espeak_speech) -> None:  # type: ignore[no-untyped-def]
    # espeak-ng's "tv off", without the second beam (after the grammar path's words Whisper
    # has "T v off." itself)
    clip, _ = command_clip(espeak_speech, "tv off")
    one_beam = voice.with_settings(**{"open.grammar_context": False})
    turn = _one(one_beam, clip)
    assert turn.intent == "tv_off"
    # regression pin: Whisper tiny writes "Team me off.", 0.286 from "tv off" in sound, beyond
    # the snap's 0.2; scored against the audio, "tv off" is within the gap of Whisper's text
    opened = turn.asr.open
    assert opened is not None and opened.snapped is not None and turn.transcript == "tv off"
    assert one_beam.snapper is not None and one_beam.snapper.snap(opened.text) is None
    rescored = turn.as_dict()["asr"]["open"]["rescored"]
    assert rescored[0]["text"] == "team me off"  # Whisper's own, as the pack writes sentences
    best = max(rescored[1:], key=lambda c: c["score"])
    assert best["text"] == "tv off"
    assert rescored[0]["score"] - best["score"] <= one_beam.spec.open.rescore_max_gap
    assert "open_rescore" in turn.stages_ms

    # without rescoring, the same audio runs nothing
    before = _one(
        voice.with_settings(**{"open.rescore_max_distance": 0.0, "open.grammar_context": False}),
        clip,
    )
    assert before.asr.open is not None and before.asr.open.text == opened.text
    assert before.asr.open.rescored is None and before.intent is None
    # a stricter gap keeps Whisper's words
    gap = rescored[0]["score"] - best["score"] - 0.5
    strict = _one(
        voice.with_settings(**{"open.rescore_max_gap": gap, "open.grammar_context": False}), clip
    )
    assert strict.asr.open is not None and strict.asr.open.snapped is None
    assert strict.transcript == before.transcript


@pytest.mark.slow
def test_rescoring_weighs_the_grammar_paths_command_against_the_candidates(
    voice, espeak_speech, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    # espeak-ng's "thermostat 23 please" in music, without the second beam (after the grammar
    # path's words Whisper writes the command itself)
    clip, _ = command_clip(espeak_speech, "thermostat 23 please", noise="music", snr_db=10, seed=33)
    one_beam = voice.with_settings(**{"open.grammar_context": False})
    rescorer = one_beam.arbitrator.picker.rescorer
    assert rescorer is not None
    rescore = rescorer.rescore
    seen: list[tuple[list[str], np.ndarray]] = []

    def spy(hypotheses, samples, grammar=None, reading=None):  # type: ignore[no-untyped-def]
        seen.append((hypotheses, samples))
        return rescore(hypotheses, samples, grammar, reading)

    monkeypatch.setattr(rescorer, "rescore", spy)  # this test's own rescorer
    turn = _one(one_beam, clip)
    assert turn.intent == "thermostat_set" and dict(turn.slots) == {"degrees": 23}
    # regression pin: Whisper writes "Fervous time to 23 please.", its beam "Girl, let's tap to
    # 23, please."; near them in sound, "phone us at 23 please" (a wake-up call at 23:00) is
    # within the gap and clear of the other candidates. The grammar path heard "thermostat
    # [to] twenty three please", not surely enough to skip Whisper: scored too, in digits, it
    # keeps the wake-up call from being set.
    assert turn.asr.grammar is not None and "twenty three" in turn.asr.grammar.text
    assert turn.asr.grammar.text.startswith("thermostat")
    scored = {c.text for c in turn.asr.open.rescored or ()}  # type: ignore[union-attr]
    assert with_digits(turn.asr.grammar.text) in scored
    # without the grammar path's command among them, a candidate for another intent wins
    hypotheses, samples = seen[0]
    alone = rescore(hypotheses, samples)
    assert alone.snap is not None and alone.snap.intent != "thermostat_set"
    # with the second beam, Whisper writes the command after the grammar path's words
    turn = _one(voice, clip)
    assert turn.intent == "thermostat_set" and dict(turn.slots) == {"degrees": 23}
    opened = turn.asr.open
    assert opened is not None and opened.second_pass is not None  # regression pin
    assert opened.used_rank > len(opened.alternatives)


@pytest.mark.slow
def test_rescoring_leaves_an_out_of_scope_question_as_heard(voice, espeak_speech) -> None:  # type: ignore[no-untyped-def]
    # in fan noise "what time is it in Tokyo" sounds near "what time is a dinner open" (scored,
    # it comes 4.1 below Whisper's own words, 3.9 ahead of the next), but the router reads
    # Whisper's words as out of scope and not as a question about opening hours: no candidate
    # could be used, so none is even scored
    clip, _ = command_clip(espeak_speech, "what time is it in Tokyo", noise="fan", snr_db=10)
    turn = _one(voice, clip)
    assert not turn.handler_executed and turn.intent != "facility_hours"
    assert "tokyo" in _words(turn.transcript)
    opened = turn.asr.open
    assert turn.asr_path == "open" and opened is not None
    assert opened.snapped is None and opened.rescored is None
    assert "open_rescore" not in turn.stages_ms
    # regression pin: the clip is near a command in sound, or it would not test the rule
    assert voice.snapper is not None
    near = voice.snapper.nearest(opened.text, 4, voice.spec.open.rescore_max_distance)
    assert any("dinner" in snap.text and snap.intent == "facility_hours" for snap in near)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("text", "word", "intent"),
    [
        # without the prompt: "The third is shining right in my eyes.", "Hey, power off,
        # nutting weed."; neither is near enough to a template to snap (rescoring, off here,
        # recovers the second as "hey power off the telly")
        ("the sun is shining right in my eyes", "sun", "blinds_close"),
        ("hey, power off the tv", "tv", "tv_off"),
    ],
)
def test_the_packs_prompt_lets_whisper_hear_the_rooms_words(
    voice, espeak_speech, text: str, word: str, intent: str
) -> None:  # type: ignore[no-untyped-def]
    clip, _ = command_clip(espeak_speech, text)
    turn = _one(voice, clip)  # voice.open.prompt: auto
    assert turn.intent == intent
    assert turn.asr_path == "open" and word in _words(turn.transcript), turn.transcript
    assert turn.asr.open is not None and turn.asr.open.snapped is None
    # regression pin: without the pack's prompt Whisper tiny misses the word
    bare = _one(voice.with_settings(**{"open.prompt": ""}), clip)
    assert bare.asr.open is not None and word not in _words(bare.asr.open.text)


@pytest.mark.slow
def test_robotic_voice_command_recovered_from_the_beam(voice, espeak_speech) -> None:  # type: ignore[no-untyped-def]
    clip, _ = command_clip(espeak_speech, "is the pool open now")
    turn = _one(voice, clip)
    assert turn.intent == "facility_hours" and dict(turn.slots) == {"facility": "pool"}
    # regression pin: Whisper tiny's best is "Is the pillow open now.", "...pool..." comes later
    assert turn.asr_path == "open" and turn.asr.open is not None and turn.asr.open.used_rank > 0
    asr = turn.as_dict()["asr"]["open"]
    assert asr["used_rank"] == turn.asr.open.used_rank and asr["alternatives"]


@pytest.mark.slow
def test_wake_phrase_adaptation_is_timed_and_can_be_turned_off(voice, piper_speech) -> None:  # type: ignore[no-untyped-def]
    clip, _ = command_clip(piper_speech, "Close the blinds.")
    turn = _one(voice, clip)
    assert "wake_adapt" in turn.stages_ms
    plain = _one(voice.with_settings(**{"grammar.adapt_on_wake_s": 0.0}), clip)
    assert "wake_adapt" not in plain.stages_ms
    assert plain.intent == "blinds_close"


@pytest.mark.slow
def test_wake_check_drops_a_wake_on_words_that_only_sound_like_the_phrase(
    voice,  # type: ignore[no-untyped-def]
    espeak_speech,
) -> None:
    # "ok I'm up" wakes the okay_nabu model (0.95 in this voice); it is also a hotel request
    said = compose([0.5, espeak_speech.speech("ok I'm up, people can knock again"), 1.5])
    assert voice.process(from_float(said, 16000)) == []
    assert voice.wake is not None and voice.wake.max_probability > voice.spec.wake.cutoff
    assert len(voice.wakes_dropped) == 1
    at_s, score = voice.wakes_dropped[0]
    assert 0.5 < at_s < 2.0 and score < voice.spec.wake.verify_min_logprob
    unchecked_voice = voice.with_settings(**{"wake.verify": False})
    unchecked = unchecked_voice.process(from_float(said, 16000))
    assert len(unchecked) == 1 and unchecked[0].wake and unchecked[0].wake_score is None
    assert unchecked_voice.wakes_dropped == []

    # a dropped wake does not hold the refractory period: the wake phrase right after it wakes
    wake = espeak_speech.speech("Okay Nabu.")
    blinds = espeak_speech.speech("Close the blinds.")
    then = compose([0.5, espeak_speech.speech("ok, I'm up"), 0.4, wake, 0.3, blinds, 1.0])
    voice.session.pending = None
    turns = voice.process(from_float(then, 16000))
    assert len(voice.wakes_dropped) == 1 and len(turns) == 1, [t.as_dict() for t in turns]
    assert turns[0].wake_at_s is not None and turns[0].wake_at_s - voice.wakes_dropped[0][0] < 2
    assert turns[0].intent == "blinds_close"

    # the wake phrase itself passes the check, and the turn carries its score and cost
    clip, _ = command_clip(espeak_speech, "Close the blinds.")
    turn = _one(voice, clip)
    assert turn.wake and turn.wake_score is not None
    assert turn.wake_score >= voice.spec.wake.verify_min_logprob
    assert "wake_verify" in turn.stages_ms
    assert turn.as_dict()["wake_score"] == round(turn.wake_score, 3)
    assert turn.intent == "blinds_close"


@pytest.mark.slow
def test_contrast_check_reads_the_grammar_paths_on_as_the_off_the_guest_said(  # type: ignore[no-untyped-def]
    voice, espeak_speech
) -> None:
    clip, _ = command_clip(espeak_speech, "all lights off")
    turn = _one(voice, clip)
    assert turn.intent == "lights_off"
    # regression pin: pocketsphinx hears espeak-ng's final "off" as "on", surely enough to skip
    # Whisper, and "all lights on" is a whole command: the check is what makes it right
    assert turn.asr_path == "grammar" and turn.asr.grammar is not None
    assert turn.asr.grammar.text == "all lights on"
    assert turn.transcript == "all lights off"
    assert turn.contrast is not None
    assert [c.text for c in turn.contrast] == ["all lights on", "all lights off"]
    assert turn.contrast[1].score > turn.contrast[0].score
    shown = turn.as_dict()
    assert [c["text"] for c in shown["contrast"]] == ["all lights on", "all lights off"]
    assert shown["latency_ms"]["contrast"] == round(turn.stages_ms["contrast"], 1)

    # without the check the grammar path's reading stands (regression pin, as above)
    unchecked = _one(voice.with_settings(**{"grammar.contrast_words": []}), clip)
    assert unchecked.contrast is None and "contrast" not in unchecked.stages_ms
    assert unchecked.intent == "lights_on"


@pytest.mark.slow
def test_grammar_paths_words_as_context_give_whisper_a_second_beam(voice, espeak_speech) -> None:  # type: ignore[no-untyped-def]
    clip, _ = command_clip(espeak_speech, "can you book a cab for 3 to take us to the airport")
    turn = _one(voice, clip)
    assert turn.intent == "book_taxi"
    assert dict(turn.slots) == {"destination": "airport", "time": "15:00"}
    # regression pin: Whisper tiny's beam has "camp for free" and "cab for free" only; the
    # grammar path heard "cab for three" among other words. Decoded again after those words,
    # Whisper writes "cab for 3"
    opened = turn.asr.open
    assert turn.asr.grammar is not None and "three" in turn.asr.grammar.text
    assert opened is not None and opened.second_pass is not None
    # the grammar path's words, numbers as Whisper writes them (the rest of what it heard
    # moves with the pack's vocabulary)
    assert "book a cab for 3" in opened.second_pass.context
    assert opened.used_rank > len(opened.alternatives)  # from the second beam
    assert "open_second_pass" in turn.stages_ms
    second = turn.as_dict()["asr"]["open"]["second_pass"]
    assert second["context"] == opened.second_pass.context and second["text"]
    # with one beam the same audio books nothing
    before = _one(voice.with_settings(**{"open.grammar_context": False}), clip)
    assert before.asr.open is not None and before.asr.open.text == opened.text
    assert before.asr.open.second_pass is None and "open_second_pass" not in before.stages_ms
    assert before.intent != "book_taxi"


def test_the_answer_to_a_question_needs_no_wake_word(voice, piper_speech) -> None:  # type: ignore[no-untyped-def]
    # a taxi without "book" is a guess: the assistant asks before booking, and the guest's
    # "yes" comes without the wake word
    first, _ = command_clip(piper_speech, "To the airport.", tail_s=2.0)
    answer = piper_speech.speech("Yes please.")
    stream = compose([first, answer, 1.5])
    turns = voice.process(from_float(stream, 16000))
    assert [(t.wake, t.follow_up) for t in turns] == [(True, False), (False, True)]
    assert turns[0].intent == "book_taxi" and not turns[0].handler_executed
    assert turns[1].intent == "book_taxi" and turns[1].handler_executed
    # with follow-ups off the "yes" is not heard at all
    plain = voice.with_settings(**{"endpoint.follow_up_s": 0})
    plain.session.pending = None
    again = plain.process(from_float(stream, 16000))
    assert [(t.wake, t.follow_up) for t in again] == [(True, False)]
