"""The open path's two transcribers on the same audio: Whisper tiny.en (the default) and
Moonshine base-en (``voice.open.backend: moonshine``).

    python bench/bench_transcribers.py [--parts rss,wake,alone,turns] [--n 100]
                                       [--voices piper,espeak] [--snrs clean,10]
                                       [--moonshine-verify -4.0] [--json out.json]

* ``rss``: each model loaded in a fresh process of its own (Python, numpy and edgepipe's voice
  backends imported first): resident memory before loading, after loading, and the peak after
  transcribing one command.
* ``wake``: the wake check's phrase score (``phrase_logprob``) from each transcriber, on the
  windows the voice pipeline would check: "Okay Nabu." + a command in seven voices, clean and
  under noise at 20 / 10 / 5 dB (where the detector passes 0.4), against look-alike phrases
  and the pack's lines, 60 % under noise (every place the detector passes 0.3); the share of
  wake phrases and the number of look-alikes each threshold keeps (bench/study_wake_check.py's
  data, fewer minutes of negatives).
* ``alone``: each transcriber alone on each utterance (0.3 s of silence before, 0.5 s after;
  noise over the whole clip, the four noises in turn): word error rate (numbers spelled out,
  punctuation and case ignored), latency p50 / p95 and the real-time factor, and for commands
  the share whose best transcript the pack's templates read as the labelled intent and slots.
  Line sets: the benchmark's command lines and open requests (``oos`` lines of
  utterances.jsonl), and the held-out command lines and open requests
  (holdout_utterances.jsonl). Whisper as the voice session has it (the pack's prompt, beam 5);
  Moonshine with beam 5 and greedy; Whisper without the prompt too (the model alone, as
  Moonshine is). The transcribers take turns on each clip (the machine's
  load falls on both alike).
* ``turns``: whole voice turns, one voice session per transcriber (Moonshine's with
  ``wake.verify_min_logprob`` at ``--moonshine-verify``), taking turns on each clip: the
  open requests spoken by Piper (end of speech to first audio, p50 / p95, and whether the turn
  reads the request as its text does), look-alike phrases said alone (wakes the check keeps),
  and noise clips push-to-talk (handlers run: must be 0). Command success is
  ``bench/bench_voice.py --commands-only --set open.backend=moonshine --set
  wake.verify_min_logprob=...``.

The local model and the cloud are off.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from rapidfuzz.distance import Levenshtein

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from bench_voice import summary  # noqa: E402

HOTEL = ROOT / "packs" / "hotel"
TESTS = HOTEL / "tests"
RATE = 16000
VERIFY_MOONSHINE = -4.0
"""Moonshine's wake-check threshold for the ``turns`` part (from the ``wake`` part)."""


# --------------------------------------------------------------------------- shared helpers


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rss_mb() -> float:
    """This process's resident memory now."""
    return _status_mb("VmRSS")


def peak_mb() -> float:
    """This process's peak resident memory (``VmHWM``: unlike ``ru_maxrss``, not inherited
    from the process that forked it)."""
    return _status_mb("VmHWM")


SPELLINGS = {
    "wi fi": "wifi",
    "check out": "checkout",
    "to morrow": "tomorrow",
    "ok": "okay",
    "p m": "pm",
    "a m": "am",
    "t v": "tv",
}
"""One word written two ways, counted as one ("Wi-Fi" and "wifi", "check out" and
"checkout"): spelling, not hearing."""


class Words:
    """Words for the word error rate: lower case, numbers spelled out ("23" and "twenty-three"
    are "twenty three"), punctuation dropped ("o'clock" keeps its apostrophe), and
    :data:`SPELLINGS` made one."""

    def __init__(self) -> None:
        from edgepipe.voice.backends.pocketsphinx import Speller

        self.speller = Speller("en")
        self.spellings = [(re.compile(rf"\b{re.escape(k)}\b"), v) for k, v in SPELLINGS.items()]

    def __call__(self, text: str) -> list[str]:
        text = text.lower().replace("%", " percent ").replace("-", " ").replace("/", " ")
        text = text.replace("\u2019", "'")
        text = re.sub(r"(?<=\d):(?=\d)", " ", text)
        text = re.sub(r"(?<=\d),(?=\d{3})", "", text)
        text = re.sub(r"(?<=\d)(?=[a-z])", " ", text)  # "1pm"
        text = re.sub(r"\d+", self.speller, text)
        text = "".join(c if c.isalnum() or c == "'" else " " for c in text)
        text = " ".join(w.strip("'") for w in text.split() if w.strip("'"))
        for pattern, one in self.spellings:
            text = pattern.sub(one, text)
        return text.split()


def open_rows(name: str) -> list[dict[str, Any]]:
    """The open requests (``oos`` lines) of one line file."""
    rows = [json.loads(line) for line in (TESTS / name).open() if line.strip()]
    return [row for row in rows if row.get("style") == "oos" or row.get("intent") == "oos"]


# --------------------------------------------------------------------------- rss


def rss_child(backend: str, wav: Path) -> None:
    """In a fresh process: load one transcriber, transcribe ``wav``, print the memory."""
    import edgepipe.voice.backends  # noqa: F401  (as a voice session would have it)
    from edgepipe.voice.audio import load_wav

    audio = load_wav(wav).samples
    before = rss_mb()
    started = time.perf_counter()
    transcriber: Any
    if backend == "whisper":
        from edgepipe.voice.backends.whisper import WhisperTranscriber, load_whisper_model

        transcriber = WhisperTranscriber(model=load_whisper_model(threads=2), beam_size=5)
    else:
        from edgepipe.voice.backends.moonshine import MoonshineTranscriber, load_moonshine_model

        transcriber = MoonshineTranscriber(load_moonshine_model(threads=2), beam_size=5)
    load_s = time.perf_counter() - started
    loaded = rss_mb()
    text = transcriber.transcribe(audio).text
    print(
        json.dumps(
            {
                "before_load_mb": round(before, 1),
                "after_load_mb": round(loaded, 1),
                "model_mb": round(loaded - before, 1),
                "peak_mb": round(peak_mb(), 1),
                "load_s": round(load_s, 2),
                "text": text,
            }
        )
    )


def part_rss(fixtures: Any) -> dict[str, Any]:
    from edgepipe.testing.voicedata import compose
    from edgepipe.voice.audio import write_wav
    from edgepipe.voice.backends.moonshine import converted_models

    converted_models()  # the conversion is a one-off; not what a device pays at every start
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "command.wav"
        write_wav(
            wav, compose([0.3, fixtures.speech("Turn off the lights in the bedroom."), 0.5]), RATE
        )
        for backend in ("whisper", "moonshine"):
            run = subprocess.run(
                [sys.executable, __file__, "--rss-child", backend, "--wav", str(wav)],
                capture_output=True,
                text=True,
                check=True,
            )
            out[backend] = json.loads(run.stdout.strip().splitlines()[-1])
            print("rss", backend, out[backend], flush=True)
    return out


# --------------------------------------------------------------------------- wake


def part_wake(transcribers: dict[str, Any], minutes: float) -> dict[str, Any]:
    """The wake check's scores on study_wake_check's windows, for each transcriber."""
    import study_wake_check as study
    from edgepipe.testing.voicedata import command_clip
    from edgepipe.voice.backends.microwakeword import MicroWakeWord
    from edgepipe.voice.noise import NOISES, mix_at_snr

    fixtures = study.voices()
    detector = MicroWakeWord("okay_nabu", cutoff=0.4)
    step = detector.step_s
    positives: list[tuple[np.ndarray, float]] = []
    clips = 0
    for fx in fixtures.values():
        k = 0
        for snr in (None, 20.0, 10.0, 5.0):
            for j, noise in enumerate(NOISES if snr else [None]):
                k += 1
                clip, meta = command_clip(
                    fx, study.COMMANDS[k % 4], noise=noise, snr_db=snr, seed=j
                )
                pcm = study.pcm_of(clip)
                clips += 1
                found = study.crossings(study.probabilities(detector, pcm), 0.4, step, 2.0)
                found = [t for t in found if t <= meta["wake_end_s"] + 1.0]
                if found:
                    positives.append((pcm, found[0]))
    texts = [
        json.loads(line)["text"]
        for name in ("utterances.jsonl", "dev_utterances.jsonl")
        for line in (TESTS / name).read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    pool = texts + list(study.LOOK_ALIKES) * 4
    rng = random.Random(3)
    pieces: list[np.ndarray] = []
    total = 0.0
    names = list(NOISES)
    while total < minutes * 60:
        fx = fixtures[rng.choice(list(fixtures))]
        speech = fx.speech(rng.choice(pool))
        if rng.random() < 0.6:
            noise = NOISES[rng.choice(names)](len(speech) / RATE + 0.1, rng.randrange(99))
            speech = mix_at_snr(speech, noise, rng.choice([20.0, 10.0, 5.0]))
        pieces.append((speech * rng.uniform(0.3, 0.9)).astype(np.float32))
        pieces.append(np.zeros(int(RATE * rng.uniform(0.2, 1.0)), np.float32))
        total += (len(pieces[-2]) + len(pieces[-1])) / RATE
    stream = study.pcm_of(np.concatenate(pieces))
    negatives = study.crossings(study.probabilities(detector, stream), 0.3, step, 2.0)
    phrase = detector.wake_phrase
    out: dict[str, Any] = {
        "positive_clips": clips,
        "positives_detected_at_0.4": len(positives),
        "negative_minutes": round(len(stream) / RATE / 60, 1),
        "negatives_detected_at_0.3": len(negatives),
    }
    delay = 0.15
    for name, transcriber in transcribers.items():
        pos, neg, ms = [], [], []
        for pcm, at in positives:
            started = time.perf_counter()
            pos.append(transcriber.phrase_logprob(study.window(pcm, at, delay), phrase))
            ms.append((time.perf_counter() - started) * 1000)
        for at in negatives:
            neg.append(transcriber.phrase_logprob(study.window(stream, at, delay), phrase))
        pos_a, neg_a = np.array(pos), np.array(neg)
        thresholds = [-1.0, -1.3, -1.6, -2.0, -2.5, -3.0, -3.5, -4.0]
        out[name] = {
            "ms": summary(ms),
            "positives_p5_p50": [round(float(np.percentile(pos_a, q)), 2) for q in (5, 50)],
            "negatives_max_p95": [
                round(float(neg_a.max()), 2) if len(neg_a) else None,
                round(float(np.percentile(neg_a, 95)), 2) if len(neg_a) else None,
            ],
            "table": {
                f"{t:g}": {
                    "wake_phrases_kept": round(float(np.mean(pos_a >= t)), 3),
                    "look_alikes_kept": int(np.sum(neg_a >= t)),
                }
                for t in thresholds
            },
        }
        print("wake", name, out[name], flush=True)
    return out


# --------------------------------------------------------------------------- alone


def part_alone(
    transcribers: dict[str, Any],
    sets: dict[str, list[dict[str, Any]]],
    voices: dict[str, Any],
    snrs: list[float | None],
    reads: Callable[[str, dict[str, Any]], bool],
) -> dict[str, Any]:
    """Word error rate, latency and (commands) template reads of each transcriber alone."""
    from edgepipe.testing.voicedata import compose
    from edgepipe.voice.noise import NOISES, mix_at_snr

    words = Words()
    noise_names = list(NOISES)
    out: dict[str, Any] = {}
    for set_name, rows in sets.items():
        commands = "open" not in set_name
        for vname, fx in voices.items():
            for snr in snrs:
                label = f"{set_name}/{vname}/{'clean' if snr is None else f'{snr:g}dB'}"
                errors = dict.fromkeys(transcribers, 0)
                read = dict.fromkeys(transcribers, 0)
                ms: dict[str, list[float]] = {name: [] for name in transcribers}
                rtf: dict[str, list[float]] = {name: [] for name in transcribers}
                said_words = 0
                heard_all: list[dict[str, str]] = []
                for i, row in enumerate(rows):
                    clip = compose([0.3, fx.speech(row["text"]), 0.5])
                    if snr is not None:
                        noise = NOISES[noise_names[i % len(noise_names)]](len(clip) / RATE, i)
                        clip = mix_at_snr(clip, noise, snr)
                    pcm = (np.clip(clip, -1, 1) * 32767).astype(np.int16)
                    said = words(row["text"])
                    said_words += len(said)
                    order = list(transcribers.items())
                    if i % 2:
                        order.reverse()  # neither always runs first
                    texts = {"said": row["text"]}
                    heard_all.append(texts)
                    for name, transcriber in order:
                        started = time.perf_counter()
                        heard = transcriber.transcribe(pcm)
                        took = (time.perf_counter() - started) * 1000
                        ms[name].append(took)
                        rtf[name].append(took / 1000 / (len(pcm) / RATE))
                        errors[name] += Levenshtein.distance(said, words(heard.text))
                        texts[name] = heard.text
                        if commands:
                            read[name] += reads(heard.text, row)
                cell: dict[str, Any] = {"n": len(rows), "words": said_words, "heard": heard_all}
                for name in transcribers:
                    cell[name] = {
                        "wer": round(errors[name] / max(1, said_words), 3),
                        "ms": summary(ms[name]),
                        "rtf_p50": round(statistics.median(rtf[name]), 3),
                    }
                    if commands:
                        cell[name]["template_reads_right"] = round(read[name] / len(rows), 3)
                out[label] = cell
                shown = {k: v for k, v in cell.items() if k != "heard"}
                print("alone", label, json.dumps(shown), flush=True)
    return out


# --------------------------------------------------------------------------- turns


def part_turns(sessions: dict[str, Any], voices: dict[str, Any]) -> dict[str, Any]:
    """Whole voice turns: open requests, look-alike phrases, noise clips."""
    from bench_voice import CONFUSABLE, reading
    from edgepipe.testing.voicedata import command_clip
    from edgepipe.voice.audio import from_float
    from edgepipe.voice.noise import NOISES

    out: dict[str, Any] = {}
    any_voice = next(iter(sessions.values()))
    session = any_voice.session
    lines = {
        "open_requests": open_rows("utterances.jsonl"),
        "open_requests_holdout": open_rows("holdout_utterances.jsonl"),
    }
    for set_name, rows in lines.items():
        latency: dict[str, list[float]] = {name: [] for name in sessions}
        same = dict.fromkeys(sessions, 0)
        handlers = dict.fromkeys(sessions, 0)
        paths: dict[str, dict[str, int]] = {name: {} for name in sessions}
        for i, row in enumerate(rows):
            clip, meta = command_clip(voices["piper"], row["text"], seed=i, wake_variant=i % 10)
            session.pending = None
            as_text = session.handle_text(row["text"])
            order = list(sessions.items())
            if i % 2:
                order.reverse()
            for name, voice in order:
                session.pending = None
                turns = voice.process(from_float(clip, RATE))
                turn = turns[0] if turns else None
                key = (turn.asr_path or str(turn.outcome)) if turn else "no_wake"
                paths[name][key] = paths[name].get(key, 0) + 1
                if turn is None:
                    continue
                if turn.asr_path == "open":
                    took = turn.latency_from(meta["speech_end_s"])
                    if took is not None:
                        latency[name].append(took)
                if turn.result is not None:
                    same[name] += reading(turn.result) == reading(as_text)
                handlers[name] += bool(turn.result and turn.result.handler_executed)
        out[set_name] = {
            name: {
                "n": len(rows),
                "end_of_speech_to_first_audio_ms": summary(latency[name]),
                "same_route_and_intent_as_text": same[name],
                "handlers_executed": handlers[name],
                "paths": paths[name],
            }
            for name in sessions
        }
        print("turns", set_name, json.dumps(out[set_name]), flush=True)
    # look-alike phrases said alone: wakes the check keeps
    kept = {name: [] for name in sessions}  # type: dict[str, list[str]]
    for vname, fx in voices.items():
        for text in CONFUSABLE:
            said = np.concatenate([np.zeros(8000), fx.speech(text), np.zeros(24000)])
            for name, voice in sessions.items():
                if voice.process(from_float(said, RATE)):
                    kept[name].append(f"{vname}: {text}")
    out["confusable_phrases"] = {
        name: {"clips": len(CONFUSABLE) * len(voices), "woke_after_check": kept[name]}
        for name in sessions
    }
    # noise only, push-to-talk: nothing may run
    noise_out = {name: {"turns": 0, "handlers_executed": 0} for name in sessions}
    for make in NOISES.values():
        for seed in range(3):
            clip = make(20.0, seed) * 0.8
            for name, voice in sessions.items():
                for turn in voice.process(from_float(clip, RATE), require_wake=False):
                    noise_out[name]["turns"] += turn.outcome == "turn"
                    noise_out[name]["handlers_executed"] += turn.handler_executed
    out["noise_clips"] = noise_out
    print("turns", out["confusable_phrases"], noise_out, flush=True)
    return out


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--parts", default="rss,wake,alone,turns")
    parser.add_argument("--n", type=int, default=100, help="benchmark command lines")
    parser.add_argument("--voices", default="piper,espeak")
    parser.add_argument("--snrs", default="clean,10")
    parser.add_argument("--sets", default="commands,open,holdout_commands,holdout_open")
    parser.add_argument("--wake-minutes", type=float, default=10.0)
    parser.add_argument("--moonshine-verify", type=float, default=VERIFY_MOONSHINE)
    parser.add_argument("--no-greedy", action="store_true", help="skip Moonshine's greedy run")
    parser.add_argument(
        "--no-bare-whisper", action="store_true", help="skip Whisper without the pack's prompt"
    )
    parser.add_argument("--json", type=Path)
    parser.add_argument("--rss-child", help=argparse.SUPPRESS)
    parser.add_argument("--wav", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        rss_child(args.rss_child, args.wav)
        return

    from bench_voice import LINE_SETS, command_lines, slots_match
    from edgepipe.engine.engine import Engine, load_engine_pack
    from edgepipe.testing.voicedata import espeak_voice_fixtures, piper_voice_fixtures
    from edgepipe.voice.backends.moonshine import MoonshineTranscriber
    from edgepipe.voice.session import VoiceSession

    parts = args.parts.split(",")
    pack = load_engine_pack(HOTEL)
    at = datetime(2026, 6, 1, 9, 30, tzinfo=pack.timezone)
    engine = Engine(pack, tiers={"local_model": None, "cloud": None}, clock=lambda: at)
    session = engine.session()
    makers = {"piper": piper_voice_fixtures, "espeak": espeak_voice_fixtures}
    voices = {name: makers[name]() for name in args.voices.split(",")}
    results: dict[str, Any] = {}
    if "rss" in parts:
        results["rss"] = part_rss(voices.get("piper") or piper_voice_fixtures())
    if not {"wake", "alone", "turns"} & set(parts):
        report(results, args.json)
        return
    whisper_voice = VoiceSession.build(session)
    moonshine_voice = whisper_voice.with_settings(
        **{"open.backend": "moonshine", "wake.verify_min_logprob": args.moonshine_verify}
    )
    moonshine = moonshine_voice.transcriber
    assert isinstance(moonshine, MoonshineTranscriber)
    transcribers: dict[str, Any] = {
        "whisper": whisper_voice.transcriber,
        "moonshine": moonshine,
    }
    if "wake" in parts:
        results["wake"] = part_wake(transcribers, args.wake_minutes)
    if "alone" in parts:
        if not args.no_greedy:
            transcribers["moonshine_greedy"] = MoonshineTranscriber(moonshine.model, beam_size=1)
        if not args.no_bare_whisper:
            # Whisper without the pack's prompt: the model alone, as Moonshine is
            bare = whisper_voice.with_settings(**{"open.prompt": ""}).transcriber
            transcribers["whisper_no_prompt"] = bare
        text = whisper_voice.arbitrator.text

        def reads(heard: str, row: dict[str, Any]) -> bool:
            matched = text.match(heard).match if heard else None
            return bool(
                matched is not None
                and matched.name == row["intent"]
                and slots_match(row.get("slots", {}), matched.slot_values())
            )

        wanted = args.sets.split(",")
        sets = {
            "commands": command_lines(pack, args.n, session, LINE_SETS["bench"]),
            "open": open_rows("utterances.jsonl"),
            "holdout_commands": command_lines(pack, 200, session, LINE_SETS["holdout"]),
            "holdout_open": open_rows("holdout_utterances.jsonl"),
        }
        snrs: list[float | None] = [
            None if s == "clean" else float(s) for s in args.snrs.split(",")
        ]
        chosen = {name: rows for name, rows in sets.items() if name in wanted}
        results["alone"] = part_alone(transcribers, chosen, voices, snrs, reads)
    if "turns" in parts:
        results["turns"] = part_turns(
            {"whisper": whisper_voice, "moonshine": moonshine_voice}, voices
        )
    report(results, args.json)


def report(results: dict[str, Any], path: Path | None) -> None:
    """The figures on stdout (without the transcripts), and whole in ``path`` when given."""
    shown = json.loads(json.dumps(results))
    for cell in shown.get("alone", {}).values():
        cell.pop("heard", None)
    print(json.dumps(shown, indent=2))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
