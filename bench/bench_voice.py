"""Voice benchmark: command success per voice and SNR, false wakes, latency, ASR real-time
factors, wake-word CPU share, peak RSS.

    python bench/bench_voice.py [--n 100] [--snrs clean,20,10,5] [--false-wake-minutes 30]
                                [--voices piper,espeak] [--lines bench|holdout]
                                [--commands-only] [--set SECTION.KEY=VALUE ...] [--json out.json]
    python bench/bench_voice.py --streams [bench_streams.py's options]

``--lines holdout`` speaks packs/hotel/tests/holdout_utterances.jsonl instead: lines no voice
setting was chosen on, for an A/B check of a change with ``--set`` (a ``voice:`` setting by its
dotted path, e.g. ``--set open.prompt=`` or ``--set grammar.contrast_words=[]``; docs/voice.md).

* Commands: direct in-scope lines of packs/hotel/tests/utterances.jsonl whose intent the rules
  tier answers, spoken by Piper (joe) and by espeak-ng (a second, different voice), "Okay Nabu"
  before each (Piper: ten seeded takes in turn), mixed with fan / music / water / blender noise
  at each SNR. Success = the wake
  word fired and the turn ran the labelled intent with the labelled slots.
* Latency: ``end_of_speech_to_first_audio`` from the true last voiced sample of the synthesized
  command (audio time to the endpoint + backlog + wall time to the first reply sample).
* False wakes: speech without the wake word (both voices) and noise, concatenated to N minutes,
  through the wake-word detector alone (accepts per hour, with a sweep of cutoffs) and through
  the whole voice pipeline (wakes the Whisper check keeps = false accepts per hour). Phrases
  that sound like "okay nabu", said alone: detector wakes and wakes after the check. Noise-only
  clips through the whole pipeline in push-to-talk mode: handlers executed must be 0.
* ASR real-time factors: grammar path (pocketsphinx, whole utterance) and open path (Whisper
  tiny.en) with the trimmed window and with the full 30 s window, on the same clean commands.
* Reply synthesis: Piper's first audio and whole reply, streamed in pieces (the assistant's
  voice) against a sentence at a time (Piper's own ``synthesize``), on the replies to the
  commands, in turn in one process.

The local model and the cloud are off: this measures the voice front end and the rules tier.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import resource
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from rapidfuzz.distance import Levenshtein

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from edgepipe.core.heap import settle_heap  # noqa: E402
from edgepipe.engine.engine import Engine, load_engine_pack  # noqa: E402
from edgepipe.engine.session import Session  # noqa: E402
from edgepipe.eval.stats import percentile  # noqa: E402
from edgepipe.testing.voicedata import (  # noqa: E402
    command_clip,
    espeak_voice_fixtures,
    piper_voice_fixtures,
)
from edgepipe.voice.audio import from_float  # noqa: E402
from edgepipe.voice.backends.microwakeword import MicroWakeWord  # noqa: E402
from edgepipe.voice.backends.pocketsphinx import load_dictionary  # noqa: E402
from edgepipe.voice.backends.whisper import WhisperTranscriber  # noqa: E402
from edgepipe.voice.noise import NOISES, mix_at_snr  # noqa: E402
from edgepipe.voice.session import VoiceSession  # noqa: E402

HOTEL = ROOT / "packs" / "hotel"


LINE_SETS = {
    "bench": ("utterances.jsonl", "dev_utterances.jsonl"),
    # lines the voice settings were not chosen on, for checking a change of them
    "holdout": ("holdout_utterances.jsonl",),
}


def command_lines(
    pack: Any,
    n: int,
    session: Session | None = None,
    files: tuple[str, ...] = LINE_SETS["bench"],
) -> list[dict[str, Any]]:
    """Direct lines for rules-tier intents, spoken-word spellings only; with ``session``,
    only lines whose text the text pipeline itself reads right (so the figure is the voice
    front end's, not the router's)."""
    import pocketsphinx

    known = load_dictionary(Path(pocketsphinx.get_model_path()) / "en-us" / "cmudict-en-us.dict")
    rows = [json.loads(line) for name in files for line in (HOTEL / "tests" / name).open()]
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for row in rows:
        intent = pack.intents.get(row.get("intent", ""))
        if intent is None or intent.policy.tier != "rules" or row.get("style") == "oos":
            continue
        words = row["text"].lower().replace("?", "").replace(",", "").replace(".", "").split()
        if not all(w in known or w.isdigit() for w in words) or row["text"] in seen:
            continue
        seen.add(row["text"])
        if session is not None:
            session.pending = None
            result = session.handle_text(row["text"])
            if not (
                result.intent
                and result.intent.name == row["intent"]
                and slots_match(row.get("slots", {}), result.intent.slot_values())
            ):
                continue
        out.append(row)
    random.Random(0).shuffle(out)
    return out[:n]


WAKE_TAKES = 10
"""Piper says "Okay Nabu" ten ways (seeded takes), one per command in turn: wake recall in noise
went from 0.95 to 0.74 at 10 dB between two single takes. espeak-ng has one way."""

CONFUSABLE = (
    "ok I'm up, people can knock again",
    "okay, now what",
    "okay, no thanks",
    "okay, a new towel please",
    "okay, never mind",
    "okay, Nadia",
    "okay, thank you",
    "okay, bye",
    "okay, noon checkout is fine",
    "oh, can I book a taxi",
)
"""Said alone, several of these wake the okay_nabu model (espeak-ng's "ok I'm up": 0.95)."""


def count_wakes(
    probabilities: list[float], cutoff: float, refractory_s: float, step_s: float
) -> int:
    """Detections a cutoff would give over recorded probabilities, with the detector's rule:
    after a detection, refractory time, then a probability at or below the cutoff re-arms."""
    count, last, armed = 0, -1e9, True
    for i, p in enumerate(probabilities):
        recent = i * step_s - last < refractory_s
        if p <= cutoff:
            armed = armed or not recent
        elif armed and not recent:
            count += 1
            last, armed = i * step_s, False
    return count


def norm_words(text: str) -> list[str]:
    """Lower-case words, digits as they are (Whisper writes numbers as digits)."""
    return "".join(c if c.isalnum() or c == "'" else " " for c in text.lower()).split()


def slots_match(expected: dict[str, Any], got: dict[str, Any]) -> bool:
    return all(str(got.get(k)) == str(v) for k, v in expected.items())


def reading(result: Any) -> tuple[Any, str | None]:
    """What a turn made of a request: its route and intent."""
    return result.decision.route, result.intent.name if result.intent else None


def summary(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50": round(statistics.median(values), 1),
        "p95": round(percentile(values, 0.95), 1),
    }


def cli_listen(fixtures: Any) -> dict[str, Any]:
    """The whole voice pipeline as a guest's device runs it: `edgepipe listen` on one spoken
    command in a fresh process (router, local model, wake word, VAD, both recognisers, Piper):
    its peak RSS and wall time including start-up. Needs /usr/bin/time (Debian `time`)."""
    import subprocess
    import tempfile

    from edgepipe.voice.audio import write_wav

    with tempfile.TemporaryDirectory() as tmp:
        clip, _ = command_clip(fixtures, "Turn off the lights in the bedroom.")
        wav = Path(tmp) / "command.wav"
        write_wav(wav, clip, 16000)
        started = time.perf_counter()
        # /usr/bin/time reports the child's own peak (ru_maxrss of a child forked from this
        # large process would include this process's pages from before exec)
        proc = subprocess.run(
            [
                "/usr/bin/time",
                "-f",
                "maxrss_kb=%M",
                sys.executable,
                "-m",
                "edgepipe.cli",
                "listen",
                str(HOTEL),
                "--wav",
                str(wav),
                "--json",
                "--no-telemetry",
            ],
            capture_output=True,
            check=True,
        )
        wall = time.perf_counter() - started
    turn = json.loads(proc.stdout.decode().splitlines()[0])
    kb = int(proc.stderr.decode().rsplit("maxrss_kb=", 1)[1].split()[0])
    return {
        "peak_rss_mb": round(kb / 1024, 1),
        "wall_s_with_startup": round(wall, 2),
        "intent": turn["intent"],
        "asr_path": turn["asr_path"],
    }


def reply_synthesis(session: Session, lines: list[dict[str, Any]], threads: int) -> dict[str, Any]:
    """Piper's first audio and whole reply, streamed against a sentence at a time, on the
    replies to ``lines``: p50/p95 ms and the ratio of the medians (streamed / whole)."""
    from edgepipe.voice.backends.piper import PiperSynthesizer

    synths = {
        "streamed": PiperSynthesizer(threads=threads),
        "whole_sentence": PiperSynthesizer(threads=threads, stream=False),
    }
    replies: list[str] = []
    for row in lines:
        session.pending = None
        reply = session.handle_text(row["text"]).reply.text
        if reply not in replies:
            replies.append(reply)
    first: dict[str, list[float]] = {name: [] for name in synths}
    total: dict[str, list[float]] = {name: [] for name in synths}
    for synth in synths.values():
        synth.warm_up()
    for reply in replies:
        for name, synth in synths.items():
            time.sleep(0.05)  # let the other voice's threads go quiet
            started = time.perf_counter()
            stream = iter(synth.synthesize(reply))
            next(stream)
            first[name].append((time.perf_counter() - started) * 1000)
            for _ in stream:
                pass
            total[name].append((time.perf_counter() - started) * 1000)
    out: dict[str, Any] = {"n_replies": len(replies)}
    for name in synths:
        out[name] = {"first_audio": summary(first[name]), "whole_reply": summary(total[name])}
    out["first_audio_ratio_p50"] = round(
        statistics.median(first["streamed"]) / statistics.median(first["whole_sentence"]), 2
    )
    return out


def with_voice_settings(pack: Any, items: list[str]) -> tuple[Any, dict[str, Any]]:
    """``pack`` as if its ``voice:`` section said ``items`` (``SECTION.KEY=VALUE``, the value in
    YAML as in pack.yaml: "grammar.contrast_words=[]", "wake.cutoff=0.4"), and the overrides;
    everything the benchmark builds is built from it."""
    if not items:
        return pack, {}
    overrides = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in items)}
    voice_spec = pack.spec.voice.with_settings(overrides)
    pack = dataclasses.replace(pack, spec=pack.spec.model_copy(update={"voice": voice_spec}))
    print("voice settings", overrides, flush=True)
    return pack, overrides


def main() -> None:
    if "--streams" in sys.argv[1:]:
        # the long-stream benchmark (rooms, a television), with the rest of the arguments
        import bench_streams

        bench_streams.main([a for a in sys.argv[1:] if a != "--streams"])
        return
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--streams",
        action="store_true",
        help="run bench/bench_streams.py instead, with the other arguments (see its --help)",
    )
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--snrs", default="clean,20,10,5")
    parser.add_argument("--false-wake-minutes", type=float, default=30.0)
    parser.add_argument("--voices", default="piper,espeak")
    parser.add_argument("--commands-only", action="store_true", help="skip everything else")
    parser.add_argument(
        "--lines", choices=sorted(LINE_SETS), default="bench", help="which labelled lines to speak"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a voice: setting by its dotted path (VALUE in YAML)",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    pack, _ = with_voice_settings(load_engine_pack(HOTEL), args.set)
    clock_at = datetime(2026, 6, 1, 9, 30, tzinfo=pack.timezone)
    engine = Engine(pack, tiers={"local_model": None, "cloud": None}, clock=lambda: clock_at)
    session = engine.session()
    started = time.perf_counter()
    voice = VoiceSession.build(session)
    load_s = time.perf_counter() - started
    settle_ms = settle_heap()  # as `edgepipe listen` does once loaded
    lines = command_lines(pack, args.n, session, LINE_SETS[args.lines])
    makers = {"piper": piper_voice_fixtures, "espeak": espeak_voice_fixtures}
    voices = {name: makers[name]() for name in args.voices.split(",")}
    snrs: list[float | None] = [None if s == "clean" else float(s) for s in args.snrs.split(",")]
    noise_names = list(NOISES)
    results: dict[str, Any] = {
        "n_commands": len(lines),
        "load_s": round(load_s, 2),
        "settle_heap_ms": round(settle_ms, 1),
    }
    success: dict[str, dict[str, float]] = {}
    paths: dict[str, dict[str, int]] = {}
    grammar_latency: list[float] = []
    open_latency: list[float] = []
    failures: list[dict[str, Any]] = []
    by_noise: dict[str, dict[str, list[int]]] = {}
    wake_max: dict[str, list[float]] = {}
    wake_kept: dict[str, list[bool]] = {}
    breakdown: dict[str, list[float]] = {}
    rescore_ms: list[float] = []
    second_ms: list[float] = []
    second_used = 0
    for vname, fx in voices.items():
        success[vname] = {}
        for snr in snrs:
            ok = 0
            label = "clean" if snr is None else f"{snr:g}dB"
            counts: dict[str, int] = {}
            for i, row in enumerate(lines):
                noise = None if snr is None else noise_names[i % len(noise_names)]
                take = i % WAKE_TAKES if vname == "piper" else 0
                clip, meta = command_clip(
                    fx, row["text"], noise=noise, snr_db=snr, seed=i, wake_variant=take
                )
                session.pending = None
                turns = voice.process(from_float(clip, 16000))
                turn = turns[0] if turns else None
                assert voice.wake is not None
                wake_max.setdefault(f"{vname}/{label}", []).append(voice.wake.max_probability)
                woke = bool(turn and turn.wake)
                wake_kept.setdefault(f"{vname}/{label}", []).append(woke)
                good = bool(
                    turn
                    and turn.wake
                    and turn.intent == row["intent"]
                    and slots_match(row.get("slots", {}), dict(turn.slots))
                )
                ok += good
                if noise is not None:
                    cell = by_noise.setdefault(f"{vname}/{label}", {}).setdefault(noise, [0, 0])
                    cell[0] += good
                    cell[1] += 1
                key = (turn.asr_path or str(turn.outcome)) if turn else "no_wake"
                counts[key] = counts.get(key, 0) + 1
                opened = turn.asr.open if turn else None
                if opened is not None and opened.snapped is not None:
                    counts["snapped"] = counts.get("snapped", 0) + 1
                if turn and opened is not None and opened.rescored is not None:
                    counts["rescored"] = counts.get("rescored", 0) + 1
                    rescore_ms.append(turn.stages_ms["open_rescore"])
                if turn and opened is not None and opened.second_pass is not None:
                    counts["second_pass"] = counts.get("second_pass", 0) + 1
                    second_ms.append(turn.stages_ms["open_second_pass"])
                    # the text used came from the second beam
                    second_used += opened.used_rank > len(opened.alternatives)
                if turn and snr is None and good:
                    latency = turn.latency_from(meta["speech_end_s"])
                    if latency is not None:
                        (grammar_latency if turn.asr_path == "grammar" else open_latency).append(
                            latency
                        )
                    if latency is not None and turn.asr_path == "grammar":
                        parts = dict(turn.stages_ms)
                        parts["silence_to_endpoint"] = (
                            turn.endpoint_s - meta["speech_end_s"]  # type: ignore[operator]
                        ) * 1000
                        for k, v in parts.items():
                            breakdown.setdefault(k, []).append(v)
                if (
                    not good
                    and sum(f["voice"] == vname and f["snr"] == label for f in failures) < 8
                ):
                    failures.append(
                        {
                            "voice": vname,
                            "snr": label,
                            "text": row["text"],
                            "heard": turn.transcript if turn else None,
                            "path": key,
                            "intent": turn.intent if turn else None,
                            "snapped": opened.snapped.text if opened and opened.snapped else None,
                        }
                    )
            success[vname][label] = round(ok / len(lines), 3)
            paths[f"{vname}/{label}"] = counts
            print(f"{vname} {label}: {ok}/{len(lines)} {counts}", flush=True)
    results["command_success"] = success
    results["success_by_noise"] = {
        key: {noise: f"{a}/{b}" for noise, (a, b) in cells.items()}
        for key, cells in by_noise.items()
    }
    results["wake_recall"] = {key: round(sum(v) / len(v), 3) for key, v in wake_kept.items()}
    results["wake_recall_by_cutoff"] = {
        key: {
            f"{cut:g}": round(sum(p > cut for p in v) / len(v), 3)
            for cut in (0.15, 0.2, 0.3, 0.4, 0.5, 0.7, 0.85)
        }
        for key, v in wake_max.items()
    }
    results["grammar_path_breakdown_ms_p50"] = {
        k: round(statistics.median(v), 1) for k, v in breakdown.items()
    }
    results["asr_paths"] = paths
    # Whisper scoring the pack sentences near its transcript (every voice and noise level)
    results["open_rescore_ms"] = summary(rescore_ms)
    # Whisper's second decode, after the grammar path's words (every voice and noise level)
    results["open_second_pass"] = {"used": second_used, "ms": summary(second_ms)}
    results["latency_ms"] = {
        "grammar_path": summary(grammar_latency),
        "open_path": summary(open_latency),
    }

    if args.commands_only:
        report(results, failures, args.json)
        return

    # open-vocabulary requests (questions, out-of-scope), clean Piper speech
    rows = [json.loads(line) for line in (HOTEL / "tests" / "utterances.jsonl").open()]
    open_rows = [r for r in rows if r.get("intent") in ("oos", "hotel_info")][:20]
    open_requests: list[float] = []
    same_as_text = alternative_used = snapped = handlers_run = 0
    for i, row in enumerate(open_rows):
        clip, meta = command_clip(voices["piper"], row["text"], seed=i)
        session.pending = None
        as_text = session.handle_text(row["text"])
        session.pending = None
        for turn in voice.process(from_float(clip, 16000)):
            if turn.asr_path == "open":
                latency = turn.latency_from(meta["speech_end_s"])
                if latency is not None:
                    open_requests.append(latency)
            # the beam's command prior must not turn a question into a command
            if turn.result is not None:
                same_as_text += reading(turn.result) == reading(as_text)
            opened = turn.asr.open
            alternative_used += bool(opened is not None and opened.used_rank > 0)
            snapped += bool(opened is not None and opened.snapped is not None)
            handlers_run += bool(turn.result and turn.result.handler_executed)
    results["latency_ms"]["open_vocabulary_requests"] = summary(open_requests)
    results["open_requests"] = {
        "n": len(open_rows),
        "same_route_and_intent_as_text": same_as_text,
        "beam_alternative_used": alternative_used,
        "snapped": snapped,
        "handlers_executed": handlers_run,
    }
    print("latency", results["latency_ms"], flush=True)

    # ASR real-time factors on clean Piper commands
    rtf: dict[str, list[float]] = {"grammar": [], "whisper_trimmed": [], "whisper_30s": []}
    errors: dict[str, int] = {"whisper_trimmed": 0, "whisper_30s": 0}
    said_words = 0
    trimmed = voice.transcriber
    assert isinstance(trimmed, WhisperTranscriber)
    whispers = {
        "whisper_trimmed": trimmed,
        "whisper_30s": WhisperTranscriber(
            model=trimmed.model,
            prompt=trimmed.prompt,
            beam_size=trimmed.beam_size,
            full_window=True,
        ),
    }
    for row in lines[:40]:
        speech = voices["piper"].speech(row["text"])
        pcm = (np.clip(speech, -1, 1) * 32767).astype(np.int16)
        seconds = len(pcm) / 16000
        t0 = time.perf_counter()
        voice.grammar.recognize(pcm.tobytes())
        rtf["grammar"].append((time.perf_counter() - t0) / seconds)
        for key, whisper in whispers.items():
            hyp = whisper.transcribe(pcm)
            rtf[key].append(hyp.ms / 1000 / seconds)
            said = norm_words(row["text"])
            errors[key] += Levenshtein.distance(said, norm_words(hyp.text))
        said_words += len(norm_words(row["text"]))
    results["asr_rtf"] = {k: round(statistics.median(v), 3) for k, v in rtf.items()}
    results["whisper_wer_40_commands"] = {k: round(v / said_words, 3) for k, v in errors.items()}
    print("rtf", results["asr_rtf"], results["whisper_wer_40_commands"], flush=True)

    results["tts_ms"] = reply_synthesis(session, lines, pack.spec.voice.tts.threads)
    print("tts", results["tts_ms"], flush=True)

    # false wakes: speech without the wake word + noise
    minutes = args.false_wake_minutes
    pieces: list[np.ndarray] = []
    total = 0.0
    texts = [r["text"] for r in rows]
    rng = random.Random(1)
    while total < minutes * 60:
        kind = rng.random()
        if kind < 0.6:
            fx = voices["piper" if rng.random() < 0.5 else "espeak"]
            speech = fx.speech(rng.choice(texts))
            if rng.random() < 0.5:
                noise = NOISES[rng.choice(noise_names)](
                    len(speech) / 16000 + 0.1, rng.randrange(99)
                )
                speech = mix_at_snr(speech, noise, rng.choice([20.0, 10.0, 5.0]))
            piece = speech * rng.uniform(0.3, 0.9)
        else:
            seconds = rng.uniform(5, 20)
            piece = NOISES[rng.choice(noise_names)](seconds, rng.randrange(999)) * rng.uniform(
                0.2, 0.9
            )
        pieces.append(piece.astype(np.float32))
        pieces.append(np.zeros(int(16000 * rng.uniform(0.2, 1.5)), dtype=np.float32))
        total += (len(piece) + len(pieces[-1])) / 16000
    stream = np.concatenate(pieces)
    # both passes below hear exactly these samples (the peak can sit within 0.01 of the cutoff)
    stream_audio = from_float(np.clip(stream, -1, 1), 16000)
    pcm_bytes = stream_audio.pcm
    spec = pack.spec.voice.wake
    wake = MicroWakeWord(spec.model, cutoff=spec.cutoff, refractory_s=spec.refractory_s)
    detections = 0
    wake.record = []
    t0 = time.perf_counter()
    for i in range(0, len(pcm_bytes), 320):
        if wake.process(pcm_bytes[i : i + 320]) is not None:
            detections += 1
    wake_s = time.perf_counter() - t0
    hours = len(stream) / 16000 / 3600
    results["false_wakes"] = {
        "audio_minutes": round(hours * 60, 1),
        "cutoff": spec.cutoff,
        "detector_per_hour": round(detections / hours, 2),
        "max_probability": round(max(wake.record), 3),
        "sweep_per_hour": {
            f"{cut:g}": round(
                count_wakes(wake.record, cut, spec.refractory_s, wake.step_s) / hours, 2
            )
            for cut in (0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85)
        },
    }
    results["wake_cpu_share"] = round(wake_s / (hours * 3600), 4)
    # the same stream through the whole voice pipeline: a wake the check keeps is a false wake
    session.pending = None
    woken = voice.process(stream_audio)
    results["false_wakes"].update(
        {
            "detector_accepts": detections,
            "wake_verify": spec.verify,
            "dropped_by_check": len(voice.wakes_dropped),
            "dropped_scores": [round(score, 2) for _, score in voice.wakes_dropped],
            "false_accepts": len(woken),
            "per_hour": round(len(woken) / hours, 2),
            "handlers_executed": sum(t.handler_executed for t in woken),
        }
    )
    print("false wakes", results["false_wakes"], "cpu", results["wake_cpu_share"], flush=True)

    # phrases that sound like the wake phrase, each said alone after silence
    confusable: dict[str, Any] = {"clips": 0, "detector_woke": 0, "woke_after_check": 0}
    kept_texts: list[str] = []
    for vname, fx in voices.items():
        for text in CONFUSABLE:
            said = np.concatenate([np.zeros(8000), fx.speech(text), np.zeros(24000)])
            turns = voice.process(from_float(said, 16000))
            confusable["clips"] += 1
            assert voice.wake is not None
            confusable["detector_woke"] += voice.wake.max_probability > spec.cutoff
            confusable["woke_after_check"] += bool(turns)
            if turns:
                kept_texts.append(f"{vname}: {text}")
    results["confusable_phrases"] = {**confusable, "kept": kept_texts}
    print("confusable phrases", confusable, flush=True)

    # noise-only clips through the whole pipeline, push-to-talk (no wake word needed)
    executed = 0
    turns_seen = 0
    for make in NOISES.values():
        for seed in range(3):
            clip = make(20.0, seed) * 0.8
            for turn in voice.process(from_float(clip, 16000), require_wake=False):
                turns_seen += turn.outcome == "turn"
                executed += turn.handler_executed
    results["noise_clips"] = {
        "clips": 12,
        "seconds_each": 20,
        "turns": turns_seen,
        "handlers_executed": executed,
    }
    results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    results["cli_listen"] = cli_listen(voices["piper"])
    report(results, failures, args.json)


def report(results: dict[str, Any], failures: list[dict[str, Any]], path: Path | None) -> None:
    """The figures on stdout; with the sampled failures in ``path`` when given."""
    print(json.dumps(results, indent=2))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({**results, "failures_sample": failures}, indent=2) + "\n")


if __name__ == "__main__":
    main()
