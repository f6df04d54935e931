"""How the wake check (``voice.wake_verify``) was chosen: the table in docs/voice.md.

    python bench/study_wake_check.py [--minutes 40] [--json out.json]

* Positives: "Okay Nabu." + a command in seven voices (Piper joe at length scales 1, 0.85 and
  1.2; espeak-ng en-us, en-us+m3, en+f3, en-us+m7), clean and under fan / music / water /
  blender noise at 20, 10 and 5 dB (three seeds each). The window is taken where the detector
  first passes 0.4, as the voice pipeline takes it.
* Negatives: the hotel pack's test lines and phrases chosen to sound like "okay nabu", in the
  same voices, 60 % of them under noise, concatenated to ``--minutes``; every place the
  detector passes 0.3 (2 s apart).

Each window (the last 1.45 s up to the detection + a delay) is scored by
:meth:`~edgepipe.voice.backends.whisper.WhisperTranscriber.phrase_logprob`; the table gives, per delay and
threshold, the share of wake phrases kept and the number of look-alikes kept.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from edgepipe.testing.voicedata import FIXTURE_SEED, VoiceFixtures, command_clip  # noqa: E402
from edgepipe.voice.audio import from_float  # noqa: E402
from edgepipe.voice.backends.espeak import EspeakSynthesizer  # noqa: E402
from edgepipe.voice.backends.microwakeword import MicroWakeWord  # noqa: E402
from edgepipe.voice.backends.piper import PiperSynthesizer  # noqa: E402
from edgepipe.voice.backends.whisper import WhisperTranscriber  # noqa: E402
from edgepipe.voice.noise import NOISES, mix_at_snr  # noqa: E402

TESTS = ROOT / "packs" / "hotel" / "tests"
RATE = 16000
BEFORE_S = 1.45
DELAYS_S = (0.0, 0.15, 0.3)
THRESHOLDS = (-1.6, -1.5, -1.4, -1.3, -1.2, -1.1)
COMMANDS = ("turn on the lights", "what time is checkout", "close the blinds", "more towels")
LOOK_ALIKES = (
    "ok I'm up, people can knock again",
    "okay, now what",
    "okay, no thanks",
    "okay, a new towel please",
    "ok, I'm up",
    "okay nap",
    "okay, Nadia",
    "okay, thank you",
    "oh, can I book a taxi",
    "okay, nevermind",
    "okay, now boot the tv",
    "hey, nabu",
    "okay, bye",
    "okay, noon checkout",
    "okay then, bananas",
)


def voices() -> dict[str, VoiceFixtures]:
    return {
        "piper": VoiceFixtures(PiperSynthesizer(seed=FIXTURE_SEED)),
        "piper-fast": VoiceFixtures(PiperSynthesizer(length_scale=0.85, seed=FIXTURE_SEED)),
        "piper-slow": VoiceFixtures(PiperSynthesizer(length_scale=1.2, seed=FIXTURE_SEED)),
        "espeak": VoiceFixtures(EspeakSynthesizer("en-us", speed=160)),
        "espeak-m3": VoiceFixtures(EspeakSynthesizer("en-us+m3", speed=150)),
        "espeak-f3": VoiceFixtures(EspeakSynthesizer("en+f3", speed=170)),
        "espeak-m7": VoiceFixtures(EspeakSynthesizer("en-us+m7", speed=140)),
    }


def pcm_of(samples: np.ndarray) -> np.ndarray:
    return from_float(np.clip(samples, -1, 1), RATE).samples


def probabilities(detector: MicroWakeWord, pcm: np.ndarray) -> list[float]:
    detector.reset()
    detector.record = []
    data = pcm.tobytes()
    for i in range(0, len(data), 320):
        detector.process(data[i : i + 320])
    return detector.record


def crossings(record: list[float], cutoff: float, step_s: float, apart_s: float) -> list[float]:
    """Seconds at which the recorded probability first passes ``cutoff`` (``apart_s`` apart)."""
    out: list[float] = []
    for i, p in enumerate(record):
        at = (i + 1) * step_s
        if p > cutoff and (not out or at - out[-1] > apart_s):
            out.append(at)
    return out


def window(pcm: np.ndarray, at_s: float, delay_s: float) -> np.ndarray:
    end = int((at_s + delay_s) * RATE)
    return pcm[max(0, end - int(BEFORE_S * RATE)) : end]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=40.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    fixtures = voices()
    detector = MicroWakeWord("okay_nabu", cutoff=0.4)
    step = detector.step_s

    positives: list[tuple[np.ndarray, float]] = []
    clips = 0
    for fx in fixtures.values():
        k = 0
        for snr in (None, 20.0, 10.0, 5.0):
            for j, noise in enumerate(NOISES if snr else [None]):
                for seed in range(3 if snr else 1):
                    k += 1
                    clip, meta = command_clip(
                        fx, COMMANDS[k % 4], noise=noise, snr_db=snr, seed=seed * 7 + j
                    )
                    pcm = pcm_of(clip)
                    clips += 1
                    found = crossings(probabilities(detector, pcm), 0.4, step, 2.0)
                    found = [t for t in found if t <= meta["wake_end_s"] + 1.0]
                    if found:
                        positives.append((pcm, found[0]))

    texts = [
        json.loads(line)["text"]
        for name in ("utterances.jsonl", "dev_utterances.jsonl")
        for line in (TESTS / name).read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    pool = texts + list(LOOK_ALIKES) * 4
    rng = random.Random(3)
    pieces: list[np.ndarray] = []
    total = 0.0
    names = list(NOISES)
    while total < args.minutes * 60:
        fx = fixtures[rng.choice(list(fixtures))]
        speech = fx.speech(rng.choice(pool))
        if rng.random() < 0.6:
            noise = NOISES[rng.choice(names)](len(speech) / RATE + 0.1, rng.randrange(99))
            speech = mix_at_snr(speech, noise, rng.choice([20.0, 10.0, 5.0]))
        pieces.append((speech * rng.uniform(0.3, 0.9)).astype(np.float32))
        pieces.append(np.zeros(int(RATE * rng.uniform(0.2, 1.0)), np.float32))
        total += (len(pieces[-2]) + len(pieces[-1])) / RATE
    stream = pcm_of(np.concatenate(pieces))
    negatives = crossings(probabilities(detector, stream), 0.3, step, 2.0)

    whisper = WhisperTranscriber()
    phrase = detector.wake_phrase
    rows = []
    for delay in DELAYS_S:
        pos = np.array(
            [whisper.phrase_logprob(window(p, at, delay), phrase) for p, at in positives]
        )
        neg = np.array(
            [whisper.phrase_logprob(window(stream, at, delay), phrase) for at in negatives]
        )
        for threshold in THRESHOLDS:
            rows.append(
                {
                    "delay_ms": round(delay * 1000),
                    "threshold": threshold,
                    "wake_phrases_kept": round(float(np.mean(pos >= threshold)), 3),
                    "look_alikes_kept": int(np.sum(neg >= threshold)),
                }
            )
    results = {
        "positive_clips": clips,
        "positives_detected_at_0.4": len(positives),
        "negative_minutes": round(len(stream) / RATE / 60, 1),
        "negatives_detected_at_0.3": len(negatives),
        "table": rows,
    }
    print(f"{len(positives)} of {clips} wake phrases detected at 0.4; {len(negatives)} detections")
    print(f"at 0.3 in {results['negative_minutes']} min of look-alikes and pack lines")
    print("delay_ms threshold kept look_alikes_kept")
    for row in rows:
        print(
            f"{row['delay_ms']:>8} {row['threshold']:>9} {row['wake_phrases_kept']:>5.1%}"
            f" {row['look_alikes_kept']:>3}/{len(negatives)}"
        )
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
