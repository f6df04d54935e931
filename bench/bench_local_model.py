"""Local model latency: edgepipe's ``LocalModel`` vs raw llama-cpp-python, same prompts, one run.

Hotel questions from packs/hotel/tests/qa.jsonl (one per information-page section first), each
with its section as the passage, in the QA tier's prompt (``QA_SYSTEM`` + ``Passage: ...
Question: ...`` as ChatML). Every prompt goes through every variant in turn, the order rotated
from prompt to prompt; all variants share one ``llama_cpp.Llama`` (the ``LocalModel``'s), and the
KV cache is put in the variant's starting state before the clock starts:

* ``raw_cold``: ``Llama.create_completion(prompt, stream=True)`` after ``Llama.reset()``: the
  whole prompt is evaluated (the baseline without a prefix cache);
* ``raw_prefix``: the same with the system prefix already evaluated in the KV cache
  (llama-cpp-python's own longest-prefix reuse: the floor for any prefix cache);
* ``edgepipe_nocache``: ``LocalModel.complete`` with ``prefix_cache=False`` (resets, evaluates
  the whole prompt);
* ``edgepipe_cache_hit``: prefix cache on, the KV cache already holding the task's prefix (a
  call after a call of the same task);
* ``edgepipe_cache_restore``: prefix cache on, the KV cache holding something else (a call
  after another task's call): the saved prefix state is loaded, then the suffix evaluated.

Greedy decoding (temperature 0, top_k 1), the same ``max_tokens`` and stop string everywhere;
the texts are compared. TTFT: call start to the first token (raw: the first streamed chunk;
edgepipe: ``Generation.ttft_ms``). Decode tokens/s: (tokens - 1) / (total - TTFT). Peak RSS
is measured first, in fresh processes, one per kind (raw, edgepipe with the QA, shape and slot
prefixes cached, edgepipe without the cache), after loading and a few calls: ``VmHWM`` from
/proc (``ru_maxrss`` survives ``exec``, so a child reports its parent's peak if that is higher);
the timing process's own ``ru_maxrss`` (one model, three cached prefixes) is reported too.
A last section times the pieces of ``LocalModel.complete`` that are not generation (prefix
tokenisation, the KV prefix check, saving and restoring a prefix state) on their own.

llama.cpp's worker threads spin at barriers: on a shared 2-core machine two threads can be
10-40x slower than one, so the default is one thread; ``--threads 2`` is the hotel pack's
setting for a dedicated device.

    python bench/bench_local_model.py [--prompts 10] [--rounds 1] [--max-tokens 32]
                                      [--threads 1] [--json bench/results/local_model.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgepipe.eval.stats import percentile

ROOT = Path(__file__).resolve().parent.parent
PACK = ROOT / "packs" / "hotel"
VARIANTS = [
    "raw_cold",
    "raw_prefix",
    "edgepipe_nocache",
    "edgepipe_cache_hit",
    "edgepipe_cache_restore",
]
RATIOS = [  # (edgepipe variant, raw baseline): same KV starting point, unless noted
    ("edgepipe_nocache", "raw_cold"),
    ("edgepipe_cache_hit", "raw_prefix"),
    ("edgepipe_cache_restore", "raw_prefix"),
    ("edgepipe_cache_hit", "raw_cold"),  # what the prefix cache gains
    ("edgepipe_cache_restore", "raw_cold"),
]


def load_prompts(n: int) -> tuple[str, list[tuple[str, str]]]:
    """The QA system prompt, and ``n`` (question, user message) pairs, sections spread out."""
    from edgepipe.pack.loader import load_pack
    from edgepipe.tiers.knowledge import parse_sections
    from edgepipe.tiers.local_model import QA_SYSTEM

    pack = load_pack(PACK)
    name = str(pack.facts.get("hotel_name", pack.name))
    info = PACK / str(pack.spec.local_model.knowledge or "hotel_info.md")
    sections = {s.heading: s for s in parse_sections(info.read_text(encoding="utf-8"))}
    rows = [json.loads(line) for line in (PACK / "tests" / "qa.jsonl").read_text().splitlines()]
    rows = [r for r in rows if r.get("section") in sections]
    picked: list[dict[str, Any]] = []
    seen: set[str] = set()
    for row in rows:  # one question per section first, then the rest in file order
        if row["section"] not in seen:
            seen.add(row["section"])
            picked.append(row)
    picked += [r for r in rows if r not in picked]
    prompts = [
        (r["question"], f"Passage: {sections[r['section']].passage}\nQuestion: {r['question']}")
        for r in picked[:n]
    ]
    return QA_SYSTEM.format(name=name), prompts


def time_ms(fn: Callable[[], object], n: int) -> dict[str, float]:
    fn()
    values = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        fn()
        values.append((time.perf_counter_ns() - t0) / 1e6)
    return {
        "p50_ms": round(statistics.median(values), 3),
        "p95_ms": round(percentile(values, 0.95), 3),
    }


def measure_components(model: Any, system: str, state: Any) -> dict[str, dict[str, float]]:
    """What ``LocalModel.complete`` does per call besides llama.cpp's own work."""
    llm = model.llama
    prefix = model.prefix_text(system)
    return {
        "tokenize the task prefix (every call)": time_ms(lambda: model.tokenize(prefix), 50),
        "KV prefix check (input_ids to list)": time_ms(
            lambda: list(llm._input_ids[: llm.n_tokens]), 50
        ),
        "Llama.load_state (cache restore)": time_ms(lambda: llm.load_state(state), 10),
        "Llama.save_state (prefix warm-up)": time_ms(llm.save_state, 5),
    }


def run_timing(args: argparse.Namespace) -> dict[str, Any]:
    from llama_cpp import StoppingCriteriaList

    from edgepipe.models.llama import IM_END, LocalModel
    from edgepipe.tiers.local_model import SHAPE_SYSTEM, SLOTS_SYSTEM

    system, prompts = load_prompts(args.prompts)
    model = LocalModel(n_ctx=args.n_ctx, threads=args.threads, prefix_cache=True)
    llm = model.llama
    prefix = model.tokenize(model.prefix_text(system))
    for task, text in (("qa", system), ("shape", SHAPE_SYSTEM.format(limit=160))):
        model.warm(task, text)  # the tier warms its tasks at start-up, as here
    model.warm("slots", SLOTS_SYSTEM)
    llm.reset()
    llm.eval(prefix)
    state = llm.save_state()
    state_sizes = {
        "kv_bytes": int(state.llama_state_size),
        "logits_bytes": int(state.scores.nbytes),
    }
    components = measure_components(model, system, state)

    same_tokens = sum(
        list(
            llm.tokenize(
                (model.prefix_text(system) + model.suffix_text(u)).encode(),
                add_bos=False,
                special=True,
            )
        )
        == prefix + model.tokenize(model.suffix_text(u))
        for _, u in prompts
    )

    def raw(user: str) -> dict[str, float | int | str]:
        calls: list[float] = []

        def count(_ids: Any, _logits: Any) -> bool:
            calls.append(time.perf_counter())
            return False

        text: list[str] = []
        first: float | None = None
        finish = ""
        t0 = time.perf_counter()
        for chunk in llm.create_completion(
            model.prefix_text(system) + model.suffix_text(user),
            max_tokens=args.max_tokens,
            temperature=0.0,
            top_k=1,
            stop=[IM_END],
            stream=True,
            stopping_criteria=StoppingCriteriaList([count]),
        ):
            if first is None:
                first = time.perf_counter()
            choice = chunk["choices"][0]
            text.append(choice["text"])
            finish = choice.get("finish_reason") or finish
        end = time.perf_counter()
        # the criteria run once per sampled token and once more after the loop; a "stop"
        # finish sampled the end-of-turn token, which is not part of the completion
        tokens = len(calls) - 1 - (1 if finish == "stop" else 0)
        return {
            "ttft_ms": ((first or end) - t0) * 1000,
            "total_ms": (end - t0) * 1000,
            "tokens": tokens,
            "text": "".join(text).strip(),
        }

    def edgepipe(user: str) -> dict[str, float | int | str]:
        t0 = time.perf_counter()
        gen = model.complete("qa", system, user, max_tokens=args.max_tokens)
        end = time.perf_counter()
        return {
            "ttft_ms": gen.ttft_ms,
            "total_ms": (end - t0) * 1000,
            "tokens": gen.completion_tokens,
            "text": gen.text,
            "evaluated": gen.evaluated_tokens,
        }

    def with_prefix() -> None:
        llm.reset()
        llm.eval(prefix)

    def cache(on: bool) -> Callable[[], None]:
        def setup() -> None:  # with the cache on: the KV cache no longer holds the prefix
            model.prefix_cache = on
            llm.reset()

        return setup

    def hit_setup() -> None:
        model.prefix_cache = True
        with_prefix()

    runs: dict[str, tuple[Callable[[], None], Callable[[str], dict[str, Any]]]] = {
        "raw_cold": (llm.reset, raw),
        "raw_prefix": (with_prefix, raw),
        "edgepipe_nocache": (cache(False), edgepipe),
        "edgepipe_cache_hit": (hit_setup, edgepipe),
        "edgepipe_cache_restore": (cache(True), edgepipe),
    }
    # warm-up: the first generations pay one-off set-up costs
    llm.reset()
    raw(prompts[0][1])
    cache(False)()
    edgepipe(prompts[0][1])

    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in runs}
    start = time.perf_counter()
    load_before = os.getloadavg()[0]
    step = 0
    for _ in range(args.rounds):
        for _question, user in prompts:
            order = VARIANTS[step % len(VARIANTS) :] + VARIANTS[: step % len(VARIANTS)]
            step += 1
            for name in order:
                setup, call = runs[name]
                setup()
                samples[name].append(call(user))
        print(
            f"  {step}/{args.rounds * len(prompts)} prompts", end="\r", flush=True, file=sys.stderr
        )
    wall = time.perf_counter() - start
    print(file=sys.stderr)
    model.prefix_cache = True

    def rate(s: dict[str, Any]) -> float:
        gen_ms = s["total_ms"] - s["ttft_ms"]
        return (s["tokens"] - 1) / gen_ms * 1000 if s["tokens"] > 1 and gen_ms > 0 else 0.0

    results: dict[str, dict[str, Any]] = {}
    for name, rows in samples.items():
        ttft = [r["ttft_ms"] for r in rows]
        total = [r["total_ms"] for r in rows]
        rates = [rate(r) for r in rows if rate(r) > 0]
        results[name] = {
            "n": len(rows),
            "ttft_ms_p50": round(statistics.median(ttft), 1),
            "ttft_ms_p95": round(percentile(ttft, 0.95), 1),
            "total_ms_p50": round(statistics.median(total), 1),
            "total_ms_p95": round(percentile(total, 0.95), 1),
            "decode_tok_s_p50": round(statistics.median(rates), 1) if rates else None,
            "tokens_mean": round(statistics.fmean(r["tokens"] for r in rows), 1),
        }
        if "evaluated" in rows[0]:
            results[name]["evaluated_tokens_mean"] = round(
                statistics.fmean(r["evaluated"] for r in rows), 1
            )

    ratios: dict[str, dict[str, float]] = {}
    for ours, base in RATIOS:
        a, b = samples[ours], samples[base]
        paired_ttft = [x["ttft_ms"] / y["ttft_ms"] for x, y in zip(a, b, strict=True)]
        paired_rate = [
            rate(x) / rate(y) for x, y in zip(a, b, strict=True) if rate(x) > 0 and rate(y) > 0
        ]
        ratios[f"{ours}/{base}"] = {
            "ttft_p50_ratio": round(results[ours]["ttft_ms_p50"] / results[base]["ttft_ms_p50"], 3),
            "ttft_paired_median": round(statistics.median(paired_ttft), 3),
            "decode_tok_s_paired_median": round(statistics.median(paired_rate), 3)
            if paired_rate
            else float("nan"),
        }
    reference = [r["text"] for r in samples["raw_cold"]]
    same_text = {
        name: sum(r["text"] == t for r, t in zip(rows, reference, strict=True))
        for name, rows in samples.items()
    }
    prompt_tokens = [len(prefix) + len(model.tokenize(model.suffix_text(u))) for _, u in prompts]
    return {
        "model": model.path.name,
        "model_load_s": round(model.load_s, 2),
        "threads": args.threads,
        "n_ctx": args.n_ctx,
        "prompts": len(prompts),
        "rounds": args.rounds,
        "max_tokens": args.max_tokens,
        "prefix_tokens": len(prefix),
        "prompt_tokens_mean": round(statistics.fmean(prompt_tokens), 1),
        "prefix_state": state_sizes,
        "components": components,
        "same_tokenisation": f"{same_tokens}/{len(prompts)}",
        "same_text_as_raw_cold": {k: f"{v}/{len(reference)}" for k, v in same_text.items()},
        "wall_s": round(wall, 1),
        "loadavg_1m_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "results": results,
        "ratios": ratios,
        "timing_process_max_rss_mb": round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
        ),
    }


RSS_CHILD = r"""
import json, resource, sys
def rss():
    # VmHWM: peak RSS of this process image (ru_maxrss is kept across exec, so a child
    # started by a big parent would report the parent's peak)
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
kind, threads, n_ctx, max_tokens = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
prompts = json.loads(sys.stdin.read())
system, users = prompts["system"], prompts["users"]
if kind == "raw":
    from llama_cpp import Llama
    from edgepipe.models.llama import default_model_path  # locating the file only
    imported = rss()
    llm = Llama(model_path=str(default_model_path()), n_ctx=n_ctx, n_threads=threads,
                n_threads_batch=threads, seed=0, verbose=False)
    loaded = rss()
    for user in users:
        llm.reset()
        prompt = f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"
        for _ in llm.create_completion(prompt, max_tokens=max_tokens, temperature=0.0, top_k=1,
                                       stop=["<|im_end|>"], stream=True):
            pass
else:
    from edgepipe.models.llama import LocalModel
    from edgepipe.tiers.local_model import SHAPE_SYSTEM, SLOTS_SYSTEM
    imported = rss()
    model = LocalModel(n_ctx=n_ctx, threads=threads, prefix_cache=kind == "edgepipe_cache")
    loaded = rss()
    model.warm("qa", system)
    model.warm("shape", SHAPE_SYSTEM.format(limit=160))
    model.warm("slots", SLOTS_SYSTEM)
    for user in users:
        model.complete("qa", system, user, max_tokens=max_tokens)
print(json.dumps({"after_import_mb": imported, "after_load_mb": loaded, "peak_mb": rss()}))
"""


def run_rss(args: argparse.Namespace) -> dict[str, Any]:
    system, prompts = load_prompts(args.rss_prompts)
    payload = json.dumps({"system": system, "users": [u for _, u in prompts]})
    out: dict[str, Any] = {}
    for kind in ("raw", "edgepipe_cache", "edgepipe_nocache"):
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                RSS_CHILD,
                kind,
                str(args.threads),
                str(args.n_ctx),
                str(args.max_tokens),
            ],
            input=payload,
            capture_output=True,
            text=True,
            check=True,
        )
        out[kind] = json.loads(proc.stdout.strip().splitlines()[-1])
    out["calls_per_process"] = len(prompts)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--prompts", type=int, default=10, help="hotel questions (max ~90)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--n-ctx", type=int, default=2048)
    parser.add_argument("--rss-prompts", type=int, default=2, help="calls per RSS process")
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    report: dict[str, Any] = {
        "machine": " ".join(
            filter(None, [platform.machine(), platform.processor(), platform.python_version()])
        )
        + f" ({os.cpu_count()} CPUs)",
    }
    if not args.skip_rss:  # first, while this process is still small
        report["peak_rss"] = run_rss(args)
    report.update(run_timing(args))

    print(
        f"{report['prompts']} prompts x {report['rounds']} rounds, {report['prompt_tokens_mean']} "
        f"prompt tokens on average ({report['prefix_tokens']} prefix), max_tokens "
        f"{report['max_tokens']}, {report['threads']} thread(s), {report['wall_s']} s; "
        f"load average {report['loadavg_1m_before_after']}"
    )
    print(
        f"{'variant':<24} {'TTFT p50':>9} {'TTFT p95':>9} {'total p50':>10} {'total p95':>10} "
        f"{'tok/s p50':>10} {'tokens':>7} {'same text':>10}"
    )
    for name, r in report["results"].items():
        rate = r["decode_tok_s_p50"]
        print(
            f"{name:<24} {r['ttft_ms_p50']:>9.1f} {r['ttft_ms_p95']:>9.1f} "
            f"{r['total_ms_p50']:>10.1f} {r['total_ms_p95']:>10.1f} "
            f"{rate if rate is not None else float('nan'):>10.1f} {r['tokens_mean']:>7.1f} "
            f"{report['same_text_as_raw_cold'][name]:>10}"
        )
    print(f"{'ratio':<47} {'TTFT p50':>9} {'TTFT paired':>12} {'tok/s paired':>13}")
    for key, r in report["ratios"].items():
        print(
            f"{key:<47} {r['ttft_p50_ratio']:>9.2f} {r['ttft_paired_median']:>12.2f} "
            f"{r['decode_tok_s_paired_median']:>13.2f}"
        )
    if "peak_rss" in report:
        print(f"peak RSS, MB (fresh process, {report['peak_rss']['calls_per_process']} calls):")
        for kind in ("raw", "edgepipe_cache", "edgepipe_nocache"):
            r = report["peak_rss"][kind]
            print(
                f"  {kind:<18} imports {r['after_import_mb']:>7.1f}  model loaded "
                f"{r['after_load_mb']:>7.1f}  peak {r['peak_mb']:>7.1f}"
            )
    sizes = report["prefix_state"]
    print(
        f"saved QA prefix state: {sizes['kv_bytes'] / 1e6:.2f} MB KV + "
        f"{sizes['logits_bytes'] / 1e6:.2f} MB logits; timing process peak RSS "
        f"{report['timing_process_max_rss_mb']} MB"
    )
    print("edgepipe per-call pieces (alone):")
    for key, c in report["components"].items():
        print(f"  {key:<44} p50 {c['p50_ms']:>8.3f} ms  p95 {c['p95_ms']:>8.3f} ms")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
