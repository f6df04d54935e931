"""Hotel questions (packs/hotel/tests/qa.jsonl) through full turns: how they are answered.

For each question: the route, how the local model's answer was produced (generated, repaired,
extractive fallback, nothing retrieved) and whether the reply holds every expected fact. The
turn budget is the pack's own (1,500 ms for text), so skipped generations count as they would
for a guest.

    .venv/bin/python bench/eval_qa.py [--limit N] [--json bench/results/qa.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pack", type=Path, default=ROOT / "packs" / "hotel")
    parser.add_argument("--limit", type=int, default=0, help="first N questions only")
    parser.add_argument("--json", type=Path, help="write the summary here")
    args = parser.parse_args(argv)

    import os

    os.environ.setdefault("EDGEPIPE_HOME", tempfile.mkdtemp(prefix="edgepipe-qa-"))
    from edgepipe.engine.engine import Engine, load_engine_pack
    from edgepipe.eval.stats import percentile

    pack = load_engine_pack(args.pack)
    engine = Engine(pack, tiers={"cloud": None})
    rows = [
        json.loads(line)
        for line in (args.pack / "tests" / "qa.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    if args.limit:
        rows = rows[: args.limit]
    how: Counter[str] = Counter()
    routes: Counter[str] = Counter()
    correct = 0
    totals: list[float] = []
    for row in rows:
        result = engine.session(f"q{len(totals)}").handle_text(row["question"])
        routes[str(result.decision.route)] += 1
        reason = result.decision.reason
        kind = reason.rsplit(":", 1)[-1] if reason.startswith("qa:") else "other"
        if reason.startswith("qa:no_passage"):
            kind = "no_passage"
        how[kind] += 1
        ok = all(f.lower() in result.reply.text.lower() for f in row["facts"])
        correct += ok
        totals.append(result.total_ms)
    engine.close()
    totals.sort()
    summary = {
        "questions": len(rows),
        "all_facts_in_reply": correct,
        "all_facts_rate": round(correct / len(rows), 3),
        "routes": dict(routes),
        "local_model_answers": dict(how),
        "turn_ms_p50": round(statistics.median(totals), 1),
        "turn_ms_p95": round(percentile(totals, 0.95), 1),
    }
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
