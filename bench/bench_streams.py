"""Long-stream voice benchmark: many "Okay Nabu" + command pairs in a row, in hotel rooms, with
a television talking throughout (edgepipe.testing.rooms).

    python bench/bench_streams.py [--n 60] [--conditions dry,room,tv,room+tv]
                                  [--voices piper,heldout] [--split dev|heldout|both]
                                  [--tv-snr 10] [--tv-minutes 15] [--lines bench|holdout]
                                  [--seed 0] [--set SECTION.KEY=VALUE ...] [--json out.json]
    python bench/bench_voice.py --streams ...   (the same)

Small run: ``--n 10 --conditions tv --voices piper --split dev`` (2-3 min). The default run
(60 commands, piper and heldout, 4 conditions, both splits: 14 streams of about 6 min of audio,
and 4 x 15 min of television alone) costs about 35 min of CPU on 2 cores with today's
endpointing (each turn takes 2-5 s: recognition and the reply's synthesis); ``--n 40`` about 25.

Each stream is one ``VoiceSession.process`` call over the whole audio: turns come one after
another, as on a device (the text session's pending question is dropped after each turn, as
bench_voice does between clips). Conditions: ``dry`` (no room, no TV: the same in both
splits, run once), ``room`` (the split's rooms, in equal blocks of commands), ``tv`` (the
split's television, dry, ``--tv-snr`` under the guest's speech), ``room+tv``. Voices: ``piper``
(joe), ``espeak`` (en-us), ``heldout`` (the held-out espeak-ng voices taking turns; ``by_voice``
splits its figures), or one held-out voice by name. Dev rooms and TV are reported apart from the
held-out ones.

A turn belongs to the command whose wake (or speech) its wake was heard on, else to the first
command whose speech its utterance covers; other turns are stray (false wakes within the
stream). Per split / condition / voice:

* ``success``: the command's own turn woke, and ran the labelled intent with the labelled slots;
* ``no_turn``: commands with no turn of their own, of which ``swallowed``: the wake fell inside
  another turn's listening (the listener was still busy), the rest ``wake_missed`` (the
  detector did not fire, or the wake check dropped it: ``wakes_dropped_by_check`` counts the
  drops of the whole stream);
* ``max_length``: turns the 10 s cap ended, ``max_length_ran_on``: those that ran on more than
  1 s after their command's true end of speech;
* ``cut_off``: own turns that ended more than 0.15 s before the command's true end of speech;
* latency (``end_of_speech_to_first_audio`` from the true end of speech) of the successful
  commands, p50/p95 by recognition path; the paths and endpoints of the own turns.

``false_wakes_tv_only``: the television alone (``--tv-minutes`` per split and TV condition, dry
or in the rooms, no wake word in it, as loud as it was in that condition's streams) through the
whole pipeline: turns that woke, per hour (0 minutes: skipped).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent / "src"))

from bench_voice import (  # noqa: E402
    HOTEL,
    LINE_SETS,
    command_lines,
    slots_match,
    summary,
    with_voice_settings,
)
from edgepipe.core.heap import settle_heap  # noqa: E402
from edgepipe.engine.engine import Engine, load_engine_pack  # noqa: E402
from edgepipe.testing.rooms import (  # noqa: E402
    CONDITIONS,
    SPLITS,
    CommandTruth,
    Stream,
    condition_stream,
    guest_voices,
    tv_only,
)
from edgepipe.voice.audio import chunks, from_float  # noqa: E402
from edgepipe.voice.record import VoiceTurn  # noqa: E402
from edgepipe.voice.session import VoiceSession  # noqa: E402

WAKE_EARLY_S = 0.3
"""A wake this long before the wake phrase's first voiced sample still counts as its wake."""
RUN_ON_S = 1.0
"""A max-length turn ran on when it ended this long after its command's true end of speech."""
CUT_TOLERANCE_S = 0.15
"""An own turn that ended this long before the command's true end of speech cut it off."""


def assign(turns: list[VoiceTurn], truth: tuple[CommandTruth, ...]) -> list[int | None]:
    """The command (index into ``truth``) each turn belongs to, None for a stray turn."""
    out: list[int | None] = []
    for turn in turns:
        owner: int | None = None
        at = turn.wake_at_s
        if at is not None:
            owner = next(
                (
                    t.index
                    for t in truth
                    if t.wake_start_s - WAKE_EARLY_S <= at <= t.speech_end_s + CUT_TOLERANCE_S
                ),
                None,
            )
        if owner is None and turn.speech_start_s is not None and turn.endpoint_s is not None:
            lo, hi = turn.speech_start_s, turn.endpoint_s
            owner = next(
                (t.index for t in truth if lo < t.speech_end_s and t.speech_start_s < hi), None
            )
        out.append(owner)
    return out


def score(
    stream: Stream, turns: list[VoiceTurn], lines: list[dict[str, Any]], dropped: int = 0
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The figures of one stream (see the module docstring), and its failed commands."""
    truth = stream.truth
    owners = assign(turns, truth)
    own: dict[int, VoiceTurn] = {}
    for turn, owner in zip(turns, owners, strict=True):
        if owner is not None:
            own.setdefault(owner, turn)
    listening = [
        (t.wake_at_s, t.endpoint_s)
        for t in turns
        if t.wake_at_s is not None and t.endpoint_s is not None
    ]
    paths: Counter[str] = Counter()
    endpoints: Counter[str] = Counter()
    latency: dict[str, list[float]] = {"grammar": [], "open": []}
    by_voice: dict[str, list[int]] = {}
    ok = swallowed = cut = ran_on = 0
    failures: list[dict[str, Any]] = []
    for t, row in zip(truth, lines, strict=True):
        turn = own.get(t.index)
        good = bool(
            turn is not None
            and turn.wake
            and turn.intent == row["intent"]
            and slots_match(row.get("slots", {}), dict(turn.slots))
        )
        ok += good
        cell = by_voice.setdefault(t.voice, [0, 0])
        cell[0] += good
        cell[1] += 1
        if turn is None:
            busy = any(lo < t.wake_start_s < hi for lo, hi in listening)  # type: ignore[operator]
            swallowed += busy
            paths["no_turn"] += 1
        else:
            paths[turn.asr_path or str(turn.outcome)] += 1
            endpoints[turn.endpoint or "none"] += 1
            if turn.endpoint_s is not None and turn.endpoint_s < t.speech_end_s - CUT_TOLERANCE_S:
                cut += 1
            if good and turn.asr_path in latency:
                value = turn.latency_from(t.speech_end_s)
                if value is not None:
                    latency[turn.asr_path].append(value)
        if not good and len(failures) < 6:
            failures.append(
                {
                    "index": t.index,
                    "text": row["text"],
                    "voice": t.voice,
                    "room": t.room,
                    "heard": turn.transcript if turn else None,
                    "intent": turn.intent if turn else None,
                    "endpoint": turn.endpoint if turn else None,
                    "turn_s": [turn.speech_start_s, turn.endpoint_s] if turn else None,
                    "truth_s": [round(t.speech_start_s, 2), round(t.speech_end_s, 2)],
                }
            )
    for turn, owner in zip(turns, owners, strict=True):
        if turn.endpoint == "max_length" and owner is not None and turn.endpoint_s is not None:
            ran_on += turn.endpoint_s - truth[owner].speech_end_s > RUN_ON_S
    n = len(truth)
    no_turn = n - len(own)
    figures: dict[str, Any] = {
        "commands": n,
        "turns": len(turns),
        "stray_turns": sum(owner is None for owner in owners),
        "success": ok,
        "success_rate": round(ok / n, 3),
        "no_turn": no_turn,
        "swallowed": swallowed,
        "wake_missed": no_turn - swallowed,
        "wakes_dropped_by_check": dropped,
        "max_length": sum(t.endpoint == "max_length" for t in turns),
        "max_length_ran_on": ran_on,
        "cut_off": cut,
        "latency_ms": {path: summary(values) for path, values in latency.items()},
        "asr_paths": dict(paths),
        "endpoints": dict(endpoints),
        "audio_s": round(stream.duration_s, 1),
        "rooms": list(stream.rooms),
    }
    if len(by_voice) > 1:
        figures["by_voice"] = {voice: f"{a}/{b}" for voice, (a, b) in by_voice.items()}
    return figures, failures


def run_stream(voice: VoiceSession, audio: Any) -> list[VoiceTurn]:
    """Every turn of ``audio``, one after another; the pending question dropped after each."""
    turns: list[VoiceTurn] = []
    for turn in voice.stream(chunks(from_float(audio, 16000))):
        turns.append(turn)
        voice.session.pending = None
    return turns


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="bench_streams.py", description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=60, help="commands per stream")
    parser.add_argument("--conditions", default=",".join(CONDITIONS))
    parser.add_argument("--voices", default="piper,heldout")
    parser.add_argument("--split", choices=(*SPLITS, "both"), default="both")
    parser.add_argument("--tv-snr", type=float, default=10.0, help="dB under the guest")
    parser.add_argument(
        "--tv-minutes", type=float, default=15.0, help="TV-only audio per split and condition"
    )
    parser.add_argument("--lines", choices=sorted(LINE_SETS), default="bench")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    conditions = args.conditions.split(",")
    names = args.voices.split(",")
    splits = list(SPLITS) if args.split == "both" else [args.split]
    for condition in conditions:
        if condition not in CONDITIONS:
            parser.error(f"unknown condition {condition!r}; known: {', '.join(CONDITIONS)}")
    try:
        voices = {name: guest_voices(name) for name in names}
    except ValueError as exc:
        parser.error(str(exc))

    started = time.perf_counter()
    pack, overrides = with_voice_settings(load_engine_pack(HOTEL), args.set)
    clock_at = datetime(2026, 6, 1, 9, 30, tzinfo=pack.timezone)
    engine = Engine(pack, tiers={"local_model": None, "cloud": None}, clock=lambda: clock_at)
    session = engine.session()
    voice = VoiceSession.build(session)
    settle_heap()
    lines = command_lines(pack, args.n, session, LINE_SETS[args.lines])
    texts = [row["text"] for row in lines]
    print(f"loaded in {time.perf_counter() - started:.1f} s; {len(lines)} commands", flush=True)

    jobs = [
        (split, condition, name)
        for split in splits
        for condition in conditions
        for name in names
        if not (condition == "dry" and split != splits[0])  # dry is the same in both splits
    ]
    results: dict[str, Any] = {split: {} for split in splits}
    failures: dict[str, Any] = {}
    tv_rms: dict[tuple[str, str], list[float]] = {}  # the television's level in the streams
    for k, (split, condition, name) in enumerate(jobs, 1):
        t0 = time.perf_counter()
        stream = condition_stream(
            condition, split, voices[name], texts, tv_snr_db=args.tv_snr, seed=args.seed
        )
        built = time.perf_counter() - t0
        turns = run_stream(voice, stream.audio)
        wall = time.perf_counter() - t0
        figures, failed = score(stream, turns, lines, len(voice.wakes_dropped))
        figures["wall_s"] = round(wall, 1)
        if "tv" in stream.tracks:
            tv_rms.setdefault((split, condition), []).append(
                float(np.sqrt(np.mean(stream.tracks["tv"].astype(np.float64) ** 2)))
            )
        keys = splits if condition == "dry" else [split]
        for key in keys:
            results[key].setdefault(condition, {})[name] = figures
        failures[f"{split}/{condition}/{name}"] = failed
        print(
            f"[{k}/{len(jobs)}] {'/'.join(keys)} {condition} {name}: "
            f"{figures['success']}/{figures['commands']} ok, turns {figures['turns']}, "
            f"no turn {figures['no_turn']} (swallowed {figures['swallowed']}), "
            f"max_length {figures['max_length']} (ran on {figures['max_length_ran_on']}), "
            f"cut off {figures['cut_off']}, stray {figures['stray_turns']}; "
            f"{figures['audio_s']:.0f} s audio, built {built:.0f} s, {wall:.0f} s",
            flush=True,
        )

    false_wakes: dict[str, Any] = {}
    if args.tv_minutes > 0:
        for split in splits:
            for condition in (c for c in conditions if "tv" in c):
                t0 = time.perf_counter()
                level = statistics.mean(tv_rms[split, condition])  # as loud as under the guest
                audio = tv_only(
                    args.tv_minutes * 60,
                    split,
                    room="room" in condition,
                    seed=args.seed + 1,
                    rms=level,
                )
                turns = run_stream(voice, audio)
                hours = audio.size / 16000 / 3600
                woke = [t for t in turns if t.wake]
                false_wakes.setdefault(split, {})[condition] = {
                    "audio_minutes": round(hours * 60, 1),
                    "rms": round(level, 4),
                    "wakes": len(woke),
                    "per_hour": round(len(woke) / hours, 1),
                    "dropped_by_check": len(voice.wakes_dropped),
                    "handlers_executed": sum(t.handler_executed for t in woke),
                    "max_length": sum(t.endpoint == "max_length" for t in woke),
                    "wall_s": round(time.perf_counter() - t0, 1),
                }
                print(f"false wakes {split} {condition}: {false_wakes[split][condition]}")

    out = {
        "settings": {
            "n": len(lines),
            "conditions": conditions,
            "voices": {name: [fx.voice_id for fx in fxs] for name, fxs in voices.items()},
            "splits": splits,
            "tv_snr_db": args.tv_snr,
            "seed": args.seed,
            "lines": args.lines,
            "voice_settings": overrides,
        },
        "results": results,
        "false_wakes_tv_only": false_wakes,
        "wall_s": round(time.perf_counter() - started, 1),
    }
    print(json.dumps({k: out[k] for k in ("results", "false_wakes_tv_only")}, indent=1))
    print(f"total {out['wall_s']:.0f} s", flush=True)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({**out, "failures_sample": failures}, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
