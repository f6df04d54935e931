"""Deterministic-path latency: edgepipe turns vs raw hassil on the same requests, one process.

Runs every labelled hotel utterance (test, dev and held-out files: matched commands, paraphrases
that fall through to the clause and spelling passes, and out-of-scope requests) through

* ``hassil``: ``recognize_best`` on the same prepared text against the same templates (the
  library edgepipe builds on; the floor for template matching),
* ``edgepipe``: a full ``Session.handle_text`` turn (input checks, three matching passes,
  routing, rules, handler, reply, trace) without telemetry,
* ``edgepipe+telemetry``: the same with every turn written to a SQLite file.

Interpreter start-up and pack loading are excluded; each variant is warmed up once first.
Reports p50/p95/p99 per turn and turns/s, overall and for matched/unmatched requests.

    python bench/bench_rules.py [--rounds 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from hassil import recognize_best

from edgepipe.engine.engine import Engine, load_engine_pack
from edgepipe.eval.datasets import load_examples
from edgepipe.eval.stats import percentile
from edgepipe.telemetry.store import TelemetryStore

ROOT = Path(__file__).resolve().parent.parent
PACK = ROOT / "packs" / "hotel"
FILES = ["utterances.jsonl", "dev_utterances.jsonl", "holdout_utterances.jsonl"]


def summarise(latencies_ms: list[float], wall_s: float | None = None) -> dict[str, float]:
    """Percentiles per turn; turns/s from wall time (or from the mean for a subset)."""
    mean = statistics.fmean(latencies_ms)
    return {
        "n": len(latencies_ms),
        "p50_ms": round(statistics.median(latencies_ms), 3),
        "p95_ms": round(percentile(latencies_ms, 0.95), 3),
        "p99_ms": round(percentile(latencies_ms, 0.99), 3),
        "mean_ms": round(mean, 3),
        "turns_per_s": round(len(latencies_ms) / wall_s if wall_s else 1000 / mean, 1),
    }


def measure(
    fn: Callable[[str], object], texts: list[str], rounds: int
) -> tuple[list[float], float]:
    for text in texts:  # warm-up
        fn(text)
    latencies: list[float] = []
    start = time.perf_counter()
    for _ in range(rounds):
        for text in texts:
            t0 = time.perf_counter_ns()
            fn(text)
            latencies.append((time.perf_counter_ns() - t0) / 1e6)
    return latencies, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    pack = load_engine_pack(PACK)
    texts = [ex.text for name in FILES for ex in load_examples(PACK / "tests" / name)]
    moment = datetime(2026, 11, 25, 10, 0, tzinfo=pack.timezone)
    # the deterministic path: no learned router, no model tiers
    no_models = {"local_model": None, "cloud": None}
    engine = Engine(pack, clock=lambda: moment, router=None, tiers=no_models)
    matcher = engine.matcher
    hassil_intents = matcher._intents  # the same compiled templates edgepipe uses
    matched = {t for t in texts if matcher.match(t, moment).match is not None}

    results: dict[str, dict[str, object]] = {}
    runs: dict[str, Callable[[str], object]] = {
        "hassil": lambda t: recognize_best(matcher.prepare(t), hassil_intents),
        "edgepipe": engine.session().handle_text,
    }
    with tempfile.TemporaryDirectory() as tmp:
        store = TelemetryStore(Path(tmp) / "telemetry.db")
        with_telemetry = Engine(
            pack, telemetry=store, clock=lambda: moment, router=None, tiers=no_models
        )
        runs["edgepipe+telemetry"] = with_telemetry.session().handle_text
        for name, fn in runs.items():
            latencies, wall = measure(fn, texts, args.rounds)
            per_text = {t: [] for t in texts}  # type: dict[str, list[float]]
            for i, value in enumerate(latencies):
                per_text[texts[i % len(texts)]].append(value)
            hit = [v for t, vs in per_text.items() if t in matched for v in vs]
            miss = [v for t, vs in per_text.items() if t not in matched for v in vs]
            results[name] = {
                "all": summarise(latencies, wall),
                "matched": summarise(hit),
                "unmatched": summarise(miss),
            }
        with_telemetry.close()  # writes every queued turn, then closes the store
        recorded = TelemetryStore(Path(tmp) / "telemetry.db").count()
    engine.close()

    ratio = results["edgepipe"]["all"]["p50_ms"] / results["hassil"]["all"]["p50_ms"]  # type: ignore[index]
    report = {
        "machine": f"{platform.machine()} {platform.processor() or ''} {platform.python_version()}".strip(),
        "utterances": len(texts),
        "matched": len(matched),
        "rounds": args.rounds,
        "results": results,
        "edgepipe_vs_hassil_p50": round(ratio, 2),
        "telemetry_rows_written": recorded,
    }
    header = (
        f"{'variant':<20} {'subset':<10} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'turns/s':>9}"
    )
    print(f"{len(texts)} utterances ({len(matched)} matched by templates) x {args.rounds} rounds")
    print(header)
    for name, subsets in results.items():
        for subset, s in subsets.items():
            assert isinstance(s, dict)
            print(
                f"{name:<20} {subset:<10} {s['p50_ms']:>8.2f} {s['p95_ms']:>8.2f} {s['p99_ms']:>8.2f} {s['turns_per_s']:>9.1f}"
            )
    print(f"edgepipe / hassil (p50, all): {ratio:.2f}x · telemetry rows written: {recorded}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
