"""The privacy gate through real turns: what reaches the stand-in cloud, and what the gate costs.

``bench_privacy.py`` asks the gate alone; here every line of the hotel pack's PII files is a real
turn of the hotel pack (learned router "auto", the local model tier as the pack configures it, the
cloud tier on) with the stand-in cloud up: :class:`~edgepipe.testing.cloud.StandInCloud` (the real
``llama_cpp.server`` with SmolLM2 on loopback) behind its pass-through
:class:`~edgepipe.testing.faultproxy.FaultProxy`, which keeps the body of every chat request it
forwards. The engine's cloud points at the proxy (``EDGEPIPE_CLOUD_BASE_URL``); its files (audit
log, outbox, ledger) go to a temporary ``EDGEPIPE_HOME``; the clock is fixed at Wednesday
2026-11-25 10:00 in the pack's time zone. Each file runs on a fresh engine (models shared; the
cloud client's circuit breaker closed at its start), each line in a session of its own, after
one uncounted warm-up turn that goes to the cloud.

Two runs: with the pack's text deadline (``budgets.text_ms``), where a slow stand-in cloud times
out and three failures open the circuit breaker, so that later turns pass the gate and send
nothing; and with a long deadline (``--long-budget-ms``, default 10 s), so that every turn the
gate lets through is sent and checked.

Per turn: the route, whether the cloud tier's gate ran (a ``privacy`` span) and how long it took,
whether it blocked (``privacy_blocked``), whether a request reached the cloud (bodies captured by
the proxy during the turn; the captured list is cleared before each turn) and whether any of the
line's PII strings is in what reached it: the leak test of ``bench_privacy.py`` (the string, its
digits or its letters-and-digits) on the raw JSON body and on its decoded message contents.

Per file (patterns' own set, development, held out): the lines, the turns that reached the cloud,
the PII strings that reached it (each with its line), the lines blocked by the gate, the gate's
milliseconds per escalated turn (median, p95, max), and turn milliseconds (escalated; all).
Timings are wall time on a shared machine: other work running at the same time weighs on them.

    python bench/bench_privacy_turns.py [--json PATH] [--limit N] [--long-budget-ms MS]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from bench_privacy import FILES, leaks, load_jsonl
from edgepipe.core.paths import cache_home
from edgepipe.core.resources import Resources
from edgepipe.engine.engine import Engine, load_engine_pack
from edgepipe.eval.stats import percentile
from edgepipe.pack.loader import Pack
from edgepipe.testing.cloud import StandInCloud
from edgepipe.testing.faultproxy import FaultProxy

ROOT = Path(__file__).resolve().parent.parent
HOTEL = ROOT / "packs" / "hotel"
WARM_UP = "What's a good seafood restaurant in Cascais for tonight?"


def user_text(body: str) -> str:
    """The last message's content (the guest's request as it left)."""
    try:
        return str(json.loads(body)["messages"][-1]["content"])
    except (ValueError, KeyError, IndexError, TypeError):
        return body


def contents(body: str) -> str:
    """The message contents of a chat request body, JSON escapes decoded."""
    try:
        messages = json.loads(body).get("messages", [])
        return "\n".join(str(m.get("content", "")) for m in messages)
    except (ValueError, AttributeError):
        return ""


def run_turn(
    engine: Engine, proxy: FaultProxy, sid: str, row: dict[str, Any] | str, budget_ms: float | None
) -> dict[str, Any]:
    row = {"text": row, "pii": []} if isinstance(row, str) else row
    proxy.reset_stats()
    result = engine.session(sid).handle_text(row["text"], budget_ms=budget_ms)
    bodies = proxy.captured()
    spans = result.trace.spans
    gate = [s for s in spans if s.stage == "privacy"]
    leaked = [p for p in row["pii"] if any(leaks(p, b) or leaks(p, contents(b)) for b in bodies)]
    return {
        "text": row["text"],
        "route": str(result.decision.route),
        "reason": result.decision.reason,
        "response_key": result.reply.response_key,
        "gate_ran": bool(gate),
        "gate_ms": round(sum(s.duration_ms for s in gate), 3) if gate else None,
        "blocked": any(str(s.outcome) == "violation" for s in gate)
        or result.reply.response_key == "privacy_blocked",
        "cloud_calls": [f"{s.outcome}:{s.error_code or ''}" for s in spans if s.stage == "cloud"],
        "bodies_sent": len(bodies),
        "pii": row["pii"],
        "leaked": leaked,
        "sent": [user_text(b) for b in bodies],
        "total_ms": round(result.total_ms, 1),
    }


def stats_ms(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"n": 0, "median": None, "p95": None, "max": None}
    return {
        "n": len(values),
        "median": round(statistics.median(values), 2),
        "p95": round(percentile(values, 0.95), 2),
        "max": round(max(values), 2),
    }


def summarise(turns: list[dict[str, Any]]) -> dict[str, Any]:
    sent = [t for t in turns if t["bodies_sent"]]
    gated = [t for t in turns if t["gate_ran"]]
    return {
        "lines": len(turns),
        "gate_ran": len(gated),
        "reached_cloud": len(sent),
        "reached_cloud_share": round(len(sent) / len(turns), 4) if turns else None,
        "pii_strings": sum(len(t["pii"]) for t in turns),
        "pii_strings_in_escalated_lines": sum(len(t["pii"]) for t in sent),
        "pii_leaked": sum(len(t["leaked"]) for t in turns),
        "leaks": [
            {"line": t["line"], "text": t["text"], "leaked": t["leaked"], "sent": t["sent"]}
            for t in turns
            if t["leaked"]
        ],
        "blocked": sum(t["blocked"] for t in turns),
        "gate_passed_not_sent": sum(
            t["gate_ran"] and not t["blocked"] and not t["bodies_sent"] for t in turns
        ),
        "cloud_calls": dict(sorted(Counter(c for t in turns for c in t["cloud_calls"]).items())),
        "routes": dict(sorted(Counter(t["route"] for t in turns).items())),
        "gate_ms_escalated": stats_ms([t["gate_ms"] for t in sent if t["gate_ms"] is not None]),
        "gate_ms_all_gated": stats_ms([t["gate_ms"] for t in gated]),
        "turn_ms_escalated": stats_ms([t["total_ms"] for t in sent]),
        "turn_ms_all": stats_ms([t["total_ms"] for t in turns]),
    }


def run_files(
    pack: Pack,
    resources: Resources,
    proxy: FaultProxy,
    home: Path,
    budget: float | None,
    limit: int | None,
) -> dict[str, Any]:
    """Every file through a fresh engine each (the circuit breaker closed at its start)."""
    moment = datetime(2026, 11, 25, 10, 0, tzinfo=pack.timezone)
    run: dict[str, Any] = {"budget_ms": budget or pack.spec.budgets.text_ms, "files": {}}
    for label, name in FILES.items():
        with Engine(pack, clock=lambda: moment, home=home, resources=resources) as engine:
            gate = getattr(engine.tiers.get("cloud"), "gate", None)
            run["detectors"] = list(getattr(gate, "detector_names", ()))
            warm = run_turn(engine, proxy, "warm-up", WARM_UP, budget)  # not counted
            run.setdefault("warm_up_turn", warm)
            turns = [
                {"line": n, **run_turn(engine, proxy, f"{name}:{n}", row, budget)}
                for n, row in enumerate(load_jsonl(name)[:limit], start=1)
            ]
        run["files"][label] = {"file": name, **summarise(turns), "turns": turns}
        print_file(f"{label}, budget {run['budget_ms']:.0f} ms", run["files"][label])
    every = [t for f in run["files"].values() for t in f["turns"]]
    run["all_turns"] = {k: v for k, v in summarise(every).items() if k != "leaks"}
    return run


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--json", type=Path, default=ROOT / "bench" / "results" / "privacy_turns.json"
    )
    parser.add_argument("--limit", type=int, default=None, help="lines per file (quick run)")
    parser.add_argument(
        "--long-budget-ms",
        type=float,
        default=10000,
        help="the second run's turn deadline (0: only the pack's)",
    )
    args = parser.parse_args()

    os.environ["EDGEPIPE_CACHE"] = str(cache_home())  # reuse built models; files go elsewhere
    home = tempfile.TemporaryDirectory(prefix="edgepipe-bench-home-")
    os.environ["EDGEPIPE_HOME"] = home.name
    started = time.perf_counter()
    cloud = StandInCloud().start()
    resources = Resources()
    try:
        assert cloud.proxy is not None
        os.environ["EDGEPIPE_CLOUD_BASE_URL"] = cloud.base_url
        pack = load_engine_pack(HOTEL)
        runs = {}
        for label, budget in (("pack budget", None), ("long budget", args.long_budget_ms)):
            if label == "pack budget" or budget:
                runs[label] = run_files(
                    pack, resources, cloud.proxy, Path(home.name), budget, args.limit
                )
    finally:
        resources.close()
        cloud.stop()
        home.cleanup()
    report = {
        "when": datetime.now().isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, load {os.getloadavg()[0]:.2f} at the end",
        "setup": "hotel pack, router auto, local model as the pack configures it, stand-in "
        "cloud (SmolLM2-135M, llama_cpp.server) behind its pass-through fault proxy; "
        "a fresh engine per file and run, a session per line",
        "cloud_startup_s": round(cloud.startup_s or 0.0, 2),
        "wall_s": round(time.perf_counter() - started, 1),
        "runs": runs,
    }
    print(f"\nwall {report['wall_s']} s")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"written: {args.json}")


def print_file(label: str, f: dict[str, Any]) -> None:
    g, te, ta = f["gate_ms_escalated"], f["turn_ms_escalated"], f["turn_ms_all"]
    print(
        f"\n== {label} ({f['file']}): {f['lines']} lines, gate ran {f['gate_ran']}, "
        f"reached cloud {f['reached_cloud']} ({100 * (f['reached_cloud_share'] or 0):.0f}%), "
        f"blocked {f['blocked']}, gate passed but not sent {f['gate_passed_not_sent']}"
        f"\n   PII strings {f['pii_strings']} "
        f"({f['pii_strings_in_escalated_lines']} in escalated lines), leaked {f['pii_leaked']}"
        f"\n   gate ms per escalated turn: median {g['median']} p95 {g['p95']} max {g['max']}"
        f"\n   turn ms escalated: median {te['median']} p95 {te['p95']}; "
        f"all: median {ta['median']} p95 {ta['p95']}\n   routes {f['routes']}"
        f"\n   cloud calls {f['cloud_calls']}"
    )
    for leak in f["leaks"]:
        print(f"   LEAK L{leak['line']}: {leak['leaked']} in {leak['text']!r}")


if __name__ == "__main__":
    main()
