"""Cloud path overhead: edgepipe's ``CloudClient`` vs bare HTTP calls to the same local server.

One stand-in cloud (``llama_cpp.server`` with SmolLM2-135M on loopback, behind the fault proxy in
pass-through mode; see :mod:`edgepipe.testing.cloud`) serves every request. The same chat (the
hotel pack's cloud system prompt and one guest question, ``max_tokens`` 16 by default, long
enough an answer that every call ends at ``max_tokens``) is sent through each variant in turn,
the order rotated from request to request:

* ``bare_direct_json``: ``httpx.Client.post`` to the server, no streaming;
* ``bare_direct_sse``: the same request body edgepipe sends (streaming, usage included) with
  ``httpx.Client.stream``, server-sent events split by hand, the body read to its end;
* ``bare_proxy_sse``: the same through the proxy;
* ``edgepipe_direct``: ``CloudClient.chat`` straight to the server;
* ``edgepipe_proxy``: ``CloudClient.chat`` through the proxy (the pack's path), with a cost
  ledger in a temporary folder.

All clients are kept for the whole run (keep-alive); ``conn kept`` counts the calls after which
the client still held an open connection for the next one. Total: wall clock around the call.
TTFT: call start to the first content delta. For edgepipe that is ``dispatch`` (``chat()`` to
the request leaving: thread hand-off, breaker, retry set-up, request body) plus
``CloudAnswer.ttft_ms`` (which starts at the HTTP attempt); ``after`` is what follows the HTTP
attempt (metering, the ledger insert, the hand-back from the worker thread). Overheads are
differences of medians and the median of per-request differences (calls next to each other,
same request). A last section times edgepipe's per-call pieces alone, without a server.

The proxy runs in a thread of this process (it shares the interpreter with the clients).

    python bench/bench_cloud.py [--requests 30] [--rounds 1] [--max-tokens 16]
                                [--json bench/results/cloud.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from edgepipe.cloud.client import CloudClient, CloudConfig
from edgepipe.cloud.ledger import CostLedger
from edgepipe.core.deadline import Deadline
from edgepipe.eval.stats import percentile
from edgepipe.pack.loader import load_pack
from edgepipe.testing.cloud import StandInCloud

ROOT = Path(__file__).resolve().parent.parent
PACK = ROOT / "packs" / "hotel"
QUESTION = (
    "We have a free afternoon in Lisbon. Could you describe, in detail, five things we could "
    "do, and why each one is worth it?"
)
VARIANTS = [
    "bare_direct_json",
    "bare_direct_sse",
    "bare_proxy_sse",
    "edgepipe_direct",
    "edgepipe_proxy",
]
OVERHEADS = [  # (measured, baseline)
    ("edgepipe_proxy", "bare_proxy_sse"),  # edgepipe's client on the pack's path
    ("edgepipe_direct", "bare_direct_sse"),  # the same without the proxy
    ("bare_proxy_sse", "bare_direct_sse"),  # the proxy
    ("edgepipe_proxy", "bare_direct_sse"),  # everything between the assistant and the server
    ("bare_direct_sse", "bare_direct_json"),  # streaming
]


def pooled(client: httpx.Client) -> bool:
    """Whether the client kept a connection open for the next request (httpx internals)."""
    try:
        return bool(client._transport._pool.connections)  # type: ignore[attr-defined]
    except AttributeError:
        return False


def bare_sse(client: httpx.Client, payload: bytes) -> dict[str, Any]:
    t0 = time.perf_counter()
    first: float | None = None
    parts: list[str] = []
    usage: dict[str, Any] | None = None
    with client.stream(
        "POST", "/chat/completions", content=payload, headers={"Content-Type": "application/json"}
    ) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":  # read on to the end of the body: the connection stays open
                continue
            chunk = json.loads(data)
            usage = chunk.get("usage") or usage
            for choice in chunk.get("choices") or []:
                delta = (choice.get("delta") or {}).get("content")
                if delta:
                    first = first or time.perf_counter()
                    parts.append(delta)
    end = time.perf_counter()
    return {  # llama_cpp.server sends no usage in streams: then one delta is one token
        "total_ms": (end - t0) * 1000,
        "ttft_ms": ((first or end) - t0) * 1000,
        "tokens": int((usage or {}).get("completion_tokens", len(parts))),
        "kept_connection": pooled(client),
    }


def bare_json(client: httpx.Client, payload: bytes) -> dict[str, Any]:
    t0 = time.perf_counter()
    response = client.post(
        "/chat/completions", content=payload, headers={"Content-Type": "application/json"}
    )
    response.raise_for_status()
    data = response.json()
    end = time.perf_counter()
    return {
        "total_ms": (end - t0) * 1000,
        "tokens": int(data["usage"]["completion_tokens"]),
        "kept_connection": pooled(client),
    }


def edgepipe_call(client: CloudClient, messages: list[dict[str, str]]) -> dict[str, Any]:
    sent: list[float] = []
    client._http.event_hooks = {"request": [lambda _request: sent.append(time.perf_counter())]}
    t0 = time.perf_counter()
    answer = client.chat(messages, deadline=Deadline(budget_ms=60_000))
    end = time.perf_counter()
    dispatch_ms = ((sent[0] if sent else t0) - t0) * 1000
    return {
        "total_ms": (end - t0) * 1000,
        "ttft_ms": dispatch_ms + answer.ttft_ms,  # from the call, as for the bare clients
        "dispatch_ms": dispatch_ms,
        "inner_total_ms": answer.total_ms,
        "tokens": answer.output_tokens,
        "attempts": answer.attempts,
        "estimated": answer.usage_estimated,
        "kept_connection": pooled(client._http),
    }


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"n": len(rows)}
    for key in ("total_ms", "ttft_ms", "dispatch_ms"):
        values = [r[key] for r in rows if key in r]
        if values:
            stem = key.removesuffix("_ms")
            out[f"{stem}_ms_p50"] = round(statistics.median(values), 2)
            out[f"{stem}_ms_p95"] = round(percentile(values, 0.95), 2)
    if "inner_total_ms" in rows[0]:  # after the HTTP attempt: metering, ledger, hand-back
        after = [r["total_ms"] - r["dispatch_ms"] - r["inner_total_ms"] for r in rows]
        out["after_ms_p50"] = round(statistics.median(after), 2)
        out["retries"] = sum(r["attempts"] - 1 for r in rows)
        out["usage_estimated"] = sum(r["estimated"] for r in rows)
    out["tokens_mean"] = round(statistics.fmean(r["tokens"] for r in rows), 1)
    out["connection_kept"] = sum(r["kept_connection"] for r in rows)
    return out


def run_requests(
    cloud: StandInCloud, args: argparse.Namespace, ledger_dir: Path
) -> tuple[dict[str, Any], dict[str, Any]]:
    spec = load_pack(PACK).spec.cloud.model_copy(update={"max_tokens": args.max_tokens})
    messages = [
        {"role": "system", "content": spec.system_prompt},
        {"role": "user", "content": QUESTION},
    ]
    body = {  # what CloudClient sends
        "model": cloud.model,
        "messages": messages,
        "max_tokens": spec.max_tokens,
        "temperature": 0.2,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    sse_payload = json.dumps(body).encode()
    body_json = {k: v for k, v in body.items() if k not in {"stream", "stream_options"}}
    json_payload = json.dumps(body_json).encode()

    direct = httpx.Client(base_url=cloud.direct_url, timeout=30)
    proxied = httpx.Client(base_url=cloud.base_url, timeout=30)
    ep_direct = CloudClient(
        spec,
        CloudConfig(base_url=cloud.direct_url, model=cloud.model, api_key=None),
        ledger=CostLedger(ledger_dir / "direct.db"),
    )
    ep_proxy = CloudClient(
        spec,
        CloudConfig(base_url=cloud.base_url, model=cloud.model, api_key=None),
        ledger=CostLedger(ledger_dir / "proxy.db"),
    )
    runs: dict[str, Callable[[], dict[str, Any]]] = {
        "bare_direct_json": lambda: bare_json(direct, json_payload),
        "bare_direct_sse": lambda: bare_sse(direct, sse_payload),
        "bare_proxy_sse": lambda: bare_sse(proxied, sse_payload),
        "edgepipe_direct": lambda: edgepipe_call(ep_direct, messages),
        "edgepipe_proxy": lambda: edgepipe_call(ep_proxy, messages),
    }
    try:
        for _ in range(2):  # warm-up: connections, the server's prompt cache, imports
            for fn in runs.values():
                fn()
        samples: dict[str, list[dict[str, Any]]] = {name: [] for name in runs}
        start = time.perf_counter()
        load_before = os.getloadavg()[0]
        total = args.rounds * args.requests
        for step in range(total):
            order = VARIANTS[step % len(VARIANTS) :] + VARIANTS[: step % len(VARIANTS)]
            for name in order:
                samples[name].append(runs[name]())
            print(f"  {step + 1}/{total} requests", end="\r", flush=True, file=sys.stderr)
        print(file=sys.stderr)
        wall = time.perf_counter() - start
    finally:
        for client in (ep_direct, ep_proxy):
            client.close()
            if client.ledger is not None:
                client.ledger.close()
        direct.close()
        proxied.close()

    results = {name: summarise(rows) for name, rows in samples.items()}
    overheads: dict[str, dict[str, float]] = {}
    for ours, base in OVERHEADS:
        pairs = list(zip(samples[ours], samples[base], strict=True))
        row: dict[str, float] = {}
        for key in ("total", "ttft"):
            if f"{key}_ms_p50" not in results[base]:
                continue
            mine, theirs = results[ours][f"{key}_ms_p50"], results[base][f"{key}_ms_p50"]
            diffs = [a[f"{key}_ms"] - b[f"{key}_ms"] for a, b in pairs]
            row[f"{key}_p50_diff_ms"] = round(mine - theirs, 2)
            row[f"{key}_paired_median_diff_ms"] = round(statistics.median(diffs), 2)
            row[f"{key}_p50_ratio"] = round(mine / theirs, 3)
        overheads[f"{ours} - {base}"] = row
    meta = {
        "model": cloud.model,
        "server_startup_s": round(cloud.startup_s or 0.0, 1),
        "server_threads": cloud.n_threads,
        "requests": args.requests,
        "rounds": args.rounds,
        "max_tokens": args.max_tokens,
        "request_bytes_stream": len(sse_payload),
        "wall_s": round(wall, 1),
        "loadavg_1m_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "proxy_stats": {k: v for k, v in cloud.stats().items() if not isinstance(v, dict | list)},
    }
    return meta, {"results": results, "overheads": overheads}


def time_us(fn: Callable[[], object], n: int) -> dict[str, float]:
    fn()
    values = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        fn()
        values.append((time.perf_counter_ns() - t0) / 1000)
    return {
        "p50_us": round(statistics.median(values), 1),
        "p95_us": round(percentile(values, 0.95), 1),
    }


def run_components(ledger_dir: Path, n: int) -> dict[str, dict[str, float]]:
    """edgepipe's per-call pieces, without a server."""
    import pybreaker
    from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

    ledger = CostLedger(ledger_dir / "components.db")
    pool = ThreadPoolExecutor(max_workers=4)
    breaker = pybreaker.CircuitBreaker(fail_max=3, reset_timeout=20, name="bench")

    def retrying() -> None:
        for attempt in Retrying(
            stop=stop_after_attempt(3),
            wait=wait_random_exponential(multiplier=0.05, max=0.4),
            retry=retry_if_exception(lambda e: False),
            reraise=True,
        ):
            with attempt:
                return

    out = {
        "ledger_record (SQLite insert, WAL)": time_us(
            lambda: ledger.record(
                model="m", input_tokens=50, output_tokens=16, estimated=False, cost=0.0
            ),
            n,
        ),
        "ledger_spent (SUM over the month)": time_us(ledger.spent, n),
        "thread_pool submit+result": time_us(lambda: pool.submit(int).result(), n),
        "breaker.call": time_us(lambda: breaker.call(int), n),
        "tenacity Retrying, one attempt": time_us(retrying, n),
    }
    pool.shutdown()
    ledger.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=30, help="requests per variant")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--server-threads", type=int, default=1)
    parser.add_argument("--component-calls", type=int, default=300)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    report: dict[str, Any] = {
        "machine": " ".join(
            filter(None, [platform.machine(), platform.processor(), platform.python_version()])
        )
        + f" ({os.cpu_count()} CPUs)",
    }
    with tempfile.TemporaryDirectory() as tmp:
        with StandInCloud(n_threads=args.server_threads) as cloud:
            meta, measured = run_requests(cloud, args, Path(tmp))
        report.update(meta)
        report.update(measured)
        report["components"] = run_components(Path(tmp), args.component_calls)

    print(
        f"{report['requests']} requests x {report['rounds']} rounds per variant, max_tokens "
        f"{report['max_tokens']}, {report['wall_s']} s; load average "
        f"{report['loadavg_1m_before_after']}"
    )
    print(
        f"{'variant':<18} {'total p50':>10} {'total p95':>10} {'TTFT p50':>9} {'TTFT p95':>9} "
        f"{'dispatch p50':>13} {'after p50':>10} {'tokens':>7} {'conn kept':>10}"
    )
    nan = float("nan")
    for name, r in report["results"].items():
        print(
            f"{name:<18} {r['total_ms_p50']:>10.1f} {r['total_ms_p95']:>10.1f} "
            f"{r.get('ttft_ms_p50', nan):>9.1f} {r.get('ttft_ms_p95', nan):>9.1f} "
            f"{r.get('dispatch_ms_p50', nan):>13.2f} {r.get('after_ms_p50', nan):>10.2f} "
            f"{r['tokens_mean']:>7.1f} {r['connection_kept']:>6}/{r['n']:<3}"
        )
    print("overheads, ms (paired: median of the per-request differences)")
    print(
        f"{'':<36} {'total p50 diff':>14} {'paired':>7} {'ratio':>6}  "
        f"{'TTFT p50 diff':>13} {'paired':>7} {'ratio':>6}"
    )
    for key, o in report["overheads"].items():
        ttft = (
            f"{o['ttft_p50_diff_ms']:>13.1f} {o['ttft_paired_median_diff_ms']:>7.1f} "
            f"{o['ttft_p50_ratio']:>6.3f}"
            if "ttft_p50_diff_ms" in o
            else ""
        )
        print(
            f"{key:<36} {o['total_p50_diff_ms']:>14.1f} {o['total_paired_median_diff_ms']:>7.1f} "
            f"{o['total_p50_ratio']:>6.3f}  {ttft}"
        )
    print("edgepipe per-call pieces (no server):")
    for key, c in report["components"].items():
        print(f"  {key:<36} p50 {c['p50_us']:>8.1f} us  p95 {c['p95_us']:>8.1f} us")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
