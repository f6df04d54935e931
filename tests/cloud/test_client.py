"""CloudClient against the stand-in cloud (real llama_cpp.server + SmolLM2-135M behind the fault
proxy) and against scripted endpoints: answers, metering, retries, deadlines, the circuit
breaker, the budget cap.

No test here asserts how long anything took. Deadlines are tested as behaviour: a
:class:`~tests.fakes.FakeClock` injected into the ``Deadline`` (and into pybreaker's clock for
the reset time), and a backend that stalls, trickles or waits for the test, with assertions on
the outcome: which error, how many attempts reached the server, what the audit figure
``bytes_sent`` says, and that the call returned before the server finished. Timings of the
cloud path (a call's total and time to first token, edgepipe's overhead over bare HTTP, each
per-call piece) are measured by bench/bench_cloud.py.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pybreaker
import pytest
from tests.fakes import (
    Exchange,
    FakeClock,
    ScriptedCloud,
    cloud_tier_of,
    delta,
)

from edgepipe.cloud.client import CloudClient, CloudConfig, CloudError, complete_sentences
from edgepipe.cloud.ledger import CostLedger
from edgepipe.core.deadline import Deadline
from edgepipe.core.types import Route
from edgepipe.engine.engine import Engine
from edgepipe.pack.loader import Pack
from edgepipe.testing.cloud import StandInCloud, closed_base_url

pytestmark = pytest.mark.slow

MESSAGES = [
    {"role": "system", "content": "You are a helpful hotel concierge. Answer in one sentence."},
    {"role": "user", "content": "Say hello to the hotel guest."},
]
BUDGET_MS = 10_000
"""The budget of calls whose deadline runs on a :class:`FakeClock`: it passes only when the
test moves the clock (the caller still stops waiting after this much real time, a safety net
no test here reaches)."""


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


def chat_error(client: CloudClient, deadline: Deadline | None = None) -> CloudError:
    """The CloudError a call raises (default deadline: 10 s that pass only if the test moves
    the fake clock)."""
    with pytest.raises(CloudError) as info:
        client.chat(MESSAGES, deadline=deadline or Deadline(BUDGET_MS, clock=FakeClock()))
    return info.value


def settle(client: CloudClient) -> None:
    """Wait until every worker thread of ``client`` has ended: whatever a call left running has
    then either reached the server or never will (no sleep, no guess). The client takes no
    more calls afterwards."""
    client._pool.shutdown(wait=True)


# --------------------------------------------------------------------- answers


def test_streaming_answer(cloud: StandInCloud, make_client: Callable[..., CloudClient]) -> None:
    client = make_client()
    answer = client.chat(MESSAGES, deadline=Deadline(budget_ms=20_000))
    assert answer.text.strip()
    assert answer.attempts == 1
    assert not answer.cut_at_deadline
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
    assert not make_client(closed_base_url()).probe()
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
    """Every attempt fails the same way; the deadline (on a clock nobody moves) plays no part:
    the error is the fault's, after exactly ``retries + 1`` attempts."""
    client = make_client()
    cloud.set_fault(kind)
    error = chat_error(client)
    settle(client)
    assert error.code == code
    assert error.retryable
    assert cloud.proxy is not None
    assert error.bytes_sent == 3 * len(
        cloud.proxy.captured()[0].encode()
    )  # what left, for the audit
    assert cloud.stats()["faults"][kind] == client.spec.retries + 1 == 3
    assert cloud.stats()["requests"] == 3  # and nothing after the call gave its answer


def test_http_429_message_is_kept(
    cloud: StandInCloud, make_client: Callable[..., CloudClient]
) -> None:
    cloud.set_fault("http_429")
    error = chat_error(make_client(retries=0))
    assert "429" in str(error)
    assert "Rate limit" in str(error)
    assert cloud.stats()["faults"]["http_429"] == 1


def test_a_closed_port_is_unreachable_and_nothing_leaves(
    make_client: Callable[..., CloudClient],
) -> None:
    """Connections refused (a port the test knows is closed): the error says so, not
    "deadline", and the audit figure says no byte left the device."""
    client = make_client(closed_base_url())
    error = chat_error(client)
    settle(client)
    assert error.code == "cloud_unreachable"
    assert error.retryable
    assert error.bytes_sent == 0  # nothing left the device


@pytest.mark.parametrize(("budget_ms", "spent_ms"), [(30, 0), (1_000, 960)])
def test_no_time_left_sends_nothing(
    budget_ms: float,
    spent_ms: float,
    cloud: StandInCloud,
    make_client: Callable[..., CloudClient],
) -> None:
    """Under 50 ms left (from the start, or after the turn spent the rest): no attempt, no
    worker, nothing reaches the server."""
    clock = FakeClock()
    deadline = Deadline(budget_ms, clock=clock)
    clock.advance(spent_ms / 1000)
    client = make_client()
    error = chat_error(client, deadline)
    settle(client)
    assert error.code == "cloud_deadline"
    assert not error.retryable
    assert error.bytes_sent == 0
    assert cloud.stats()["requests"] == 0
    assert cloud.proxy is not None and cloud.proxy.captured() == []


def test_odd_response_shapes_are_malformed_not_crashes(
    make_client: Callable[..., CloudClient],
) -> None:
    """Valid JSON of the wrong shape is a ``cloud_malformed`` CloudError like broken JSON; it
    must never escape as an AttributeError (which would break the guest's turn)."""
    shapes: list[tuple[str, bytes]] = [
        ("text/event-stream", _sse({"choices": ["oops"]})),
        ("text/event-stream", _sse({"choices": [{"delta": "oops"}]})),
        ("text/event-stream", _sse({"choices": {"delta": {"content": "x"}}})),
        ("application/json", b'{"choices": [{"message": "oops"}]}'),
    ]
    for kind, body in shapes:
        with ScriptedCloud(lambda ex, b=body, k=kind: ex.reply(200, b, k)) as server:
            error = chat_error(make_client(server.url, retries=0))
        assert error.code == "cloud_malformed", body


def _sse(*events: object) -> bytes:
    return b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + (
        b"data: [DONE]\n\n"
    )


_HELLO = delta("Hello there.")


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
    with ScriptedCloud(lambda ex: ex.reply(200, body, kind)) as server:
        client = make_client(server.url, ledger=True)
        answer = client.chat(MESSAGES, deadline=Deadline(BUDGET_MS, clock=FakeClock()))
    assert answer.text == "Hello there."
    assert answer.usage_estimated
    assert answer.input_tokens > 0
    assert answer.output_tokens > 0
    assert client.ledger is not None
    assert client.ledger.spent() == pytest.approx(answer.cost)


# --------------------------------------------------------------------- deadlines


@pytest.mark.parametrize("near", [False, True])
def test_no_retry_starts_when_the_deadline_is_near(
    near: bool, make_client: Callable[..., CloudClient]
) -> None:
    """A failed attempt is retried only while an attempt's worth of time (100 ms) is left.
    The server moves the turn's clock while it fails the first attempt: with 50 ms left the
    first failure is the answer; with the clock left alone both retries run."""
    clock = FakeClock()

    def fail(exchange: Exchange) -> None:
        if near and exchange.number == 1:
            clock.advance((BUDGET_MS - 50) / 1000)
        exchange.error(503)

    with ScriptedCloud(fail) as server:
        client = make_client(server.url)
        error = chat_error(client, Deadline(BUDGET_MS, clock=clock))
        settle(client)
    assert error.code == "cloud_http_503"
    attempts = 1 if near else client.spec.retries + 1
    assert len(server.requests) == attempts
    assert error.bytes_sent == sum(len(body) for body in server.requests)


def _stream_then_hold(
    clock: FakeClock, before: list[str], after: str, release: threading.Event
) -> Callable[[Exchange], None]:
    """A stream that sends ``before`` (waiting until the client has looked at the time for
    each event), then moves the turn's clock to 90 ms before its deadline, sends ``after``,
    and holds the stream open until ``release``: the server has not finished."""

    def script(exchange: Exchange) -> None:
        seen = clock.reads  # every reading made before the request went out
        exchange.start_stream()
        for n, text in enumerate(before, start=1):
            exchange.event(delta(text))
            clock.wait_for_reads(seen + n)
        # 90 ms left: inside the stream reserve (120 ms) and the attempt reserve (100 ms)
        clock.advance((BUDGET_MS - 90) / 1000)
        exchange.event(delta(after))
        release.wait(30)
        exchange.event(delta(" The end."))
        exchange.done()

    return script


def test_a_stream_still_running_at_the_deadline_is_cut_at_its_last_whole_sentence(
    make_client: Callable[..., CloudClient],
) -> None:
    clock = FakeClock()
    release = threading.Event()
    script = _stream_then_hold(
        clock, ["Day 1: see the castle.", " Day 2: go to"], " Belém", release
    )
    with ScriptedCloud(script) as server:
        try:
            answer = make_client(server.url).chat(
                MESSAGES, deadline=Deadline(BUDGET_MS, clock=clock)
            )
            assert server.finished == []  # it returned because of the deadline, not the server
        finally:
            release.set()
    assert answer.cut_at_deadline
    assert answer.text == "Day 1: see the castle."
    assert answer.attempts == 1
    assert [answer.bytes_sent] == [len(body) for body in server.requests]


def test_a_stream_with_no_whole_sentence_by_the_deadline_is_a_deadline_error(
    make_client: Callable[..., CloudClient],
) -> None:
    clock = FakeClock()
    release = threading.Event()
    script = _stream_then_hold(clock, ["Lisbon is", " a city"], " of seven hills.", release)
    with ScriptedCloud(script) as server:
        client = make_client(server.url)
        try:
            error = chat_error(client, Deadline(BUDGET_MS, clock=clock))
            assert server.finished == []
        finally:
            release.set()
        settle(client)
    assert error.code == "cloud_deadline"
    assert not error.retryable
    assert len(server.requests) == 1  # a deadline is not retried
    assert error.bytes_sent == len(server.requests[0])


def test_a_stalled_answer_ends_the_call_at_the_deadline(
    cloud: StandInCloud, make_client: Callable[..., CloudClient]
) -> None:
    """The stall fault sends headers and one event and then nothing until the client hangs
    up: the call can only return because the deadline ended it. Which of the two notices first
    (the caller's wait, or the attempt's read timeout, both cut to the time left) is a race; the
    outcome is the same: one attempt, no retry, and the audit figure counts the request."""
    client = make_client()
    cloud.set_fault("stall")
    error = chat_error(client, Deadline(budget_ms=400))
    settle(client)
    assert error.code in ("cloud_deadline", "cloud_timeout")
    assert cloud.stats()["faults"]["stall"] == 1
    assert cloud.stats()["requests"] == 1
    assert cloud.proxy is not None
    assert error.bytes_sent == len(cloud.proxy.captured()[0].encode())


def test_stall_with_a_short_read_timeout_is_a_timeout(
    cloud: StandInCloud, make_client: Callable[..., CloudClient]
) -> None:
    """Each attempt ends at the read timeout (the deadline, on a clock nobody moves, never
    does): a retryable ``cloud_timeout`` after every attempt was tried."""
    client = make_client(read_timeout_s=0.25)
    cloud.set_fault("stall")
    error = chat_error(client)
    settle(client)
    assert error.code == "cloud_timeout"
    assert error.retryable
    assert cloud.stats()["faults"]["stall"] == 3
    assert cloud.proxy is not None
    assert error.bytes_sent == 3 * len(cloud.proxy.captured()[0].encode())


def test_a_trickling_stream_gives_up_at_the_deadline(
    cloud: StandInCloud, make_client: Callable[..., CloudClient]
) -> None:
    """32 tokens at 300 ms each would take about 10 s; the turn has 0.8 s. The call ends with
    ``cloud_deadline`` (no whole sentence came), tries no second time, and counts the request."""
    client = make_client(max_tokens=32)
    cloud.set_fault("slow_stream", ms=300)
    error = chat_error(client, Deadline(budget_ms=800))
    settle(client)
    assert error.code == "cloud_deadline"
    assert not error.retryable
    assert cloud.stats()["faults"]["slow_stream"] == 1
    assert cloud.proxy is not None
    assert error.bytes_sent == len(cloud.proxy.captured()[0].encode())


def test_latency_within_the_deadline_still_answers(
    cloud: StandInCloud, make_client: Callable[..., CloudClient]
) -> None:
    cloud.set_fault("latency", ms=300)
    answer = make_client().chat(MESSAGES, deadline=Deadline(BUDGET_MS, clock=FakeClock()))
    assert answer.text.strip()
    assert answer.attempts == 1
    assert not answer.cut_at_deadline
    assert cloud.stats()["faults"]["latency"] == 1  # the delay was applied, and waited out


def test_no_request_leaves_after_the_call_gave_up(
    cloud: StandInCloud, make_client: Callable[..., CloudClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once a call has returned (given up at its deadline), nothing more reaches the cloud on
    its behalf: a late retry would be egress after the turn's audit entry was written, cost money
    for an answer nobody reads, and keep the one-request-at-a-time server busy for the next turn.
    And the audit figure the call reports covers every request the server ever got from it.

    The backoff is pinned to its longest (full jitter drawing its upper bound) and the budget
    swept so that, for some budgets, the last backoff ends just before the deadline, after the
    caller has stopped waiting. Each call's worker is then waited for (``settle``): whatever it
    would still send, it has sent."""
    monkeypatch.setattr(random, "uniform", lambda low, high: high)
    cloud.set_fault("http_503")
    assert cloud.proxy is not None
    late: dict[int, int] = {}
    unaudited: dict[int, int] = {}
    for budget_ms in range(150, 230, 5):
        client = make_client()
        before = len(cloud.proxy.captured())
        error = chat_error(client, Deadline(budget_ms=budget_ms))
        at_return = len(cloud.proxy.captured())
        settle(client)
        bodies = cloud.proxy.captured()[before:]
        late[budget_ms] = len(bodies) - (at_return - before)
        unaudited[budget_ms] = sum(len(b.encode()) for b in bodies) - error.bytes_sent
    assert not any(late.values()), late
    assert all(n <= 0 for n in unaudited.values()), unaudited


# --------------------------------------------------------------------- circuit breaker


class _BreakerClock:
    """pybreaker's clock (it reads ``datetime.now(UTC)``), moved by the test."""

    def __init__(self) -> None:
        self.time = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)

    def now(self, tz: object = None) -> datetime:
        return self.time

    def advance(self, seconds: float) -> None:
        self.time += timedelta(seconds=seconds)


def test_breaker_opens_fails_fast_and_closes_after_the_reset_time(
    cloud: StandInCloud, make_client: Callable[..., CloudClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    breaker_clock = _BreakerClock()
    monkeypatch.setattr(pybreaker, "datetime", breaker_clock)
    client = make_client(breaker_failures=3, breaker_reset_s=30.0, retries=0)
    cloud.set_fault("http_503")
    codes = [chat_error(client).code for _ in range(3)]
    assert codes == ["cloud_http_503", "cloud_http_503", "cloud_breaker_open"]  # the third trips it
    assert client.breaker_state == "open"
    assert cloud.stats()["faults"]["http_503"] == 3

    error = chat_error(client)  # fails fast: nothing is sent
    assert error.code == "cloud_breaker_open"
    assert not error.retryable
    assert error.bytes_sent == 0
    assert cloud.stats()["requests"] == 3

    breaker_clock.advance(29.0)  # not yet
    assert chat_error(client).code == "cloud_breaker_open"
    assert cloud.stats()["requests"] == 3

    breaker_clock.advance(1.5)  # half-open: one trial call, which fails: open again
    assert chat_error(client).code == "cloud_breaker_open"
    assert cloud.stats()["requests"] == 4
    assert client.breaker_state == "open"

    cloud.clear_fault()
    assert chat_error(client).code == "cloud_breaker_open"  # within the new reset time
    assert cloud.stats()["requests"] == 4
    breaker_clock.advance(30.5)
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


def test_monthly_budget_cap_stops_escalation(
    cloud: StandInCloud, make_engine_on: Callable[..., Engine]
) -> None:
    """The first request spends, the second would pass the cap: the guest is told honestly and
    nothing reaches the cloud."""
    # one answer costs ~0.00004 EUR; the pre-call estimate (64 + text/4 in, 8 out) ~0.00005
    engine = make_engine_on(monthly_budget=0.00006)
    session = engine.session()
    tier = cloud_tier_of(engine)
    first = session.handle_text("write a haiku about the sea", budget_ms=20_000)
    assert first.decision.route is Route.CLOUD, first.decision
    assert first.reply.text.strip()
    ledger = tier.client.ledger
    assert ledger is not None
    assert 0 < ledger.spent() < 0.00006

    second = session.handle_text("plan a three day trip to Lisbon for me", budget_ms=20_000)
    assert second.decision.route is Route.FALLBACK
    assert "budget" in second.decision.reason
    assert second.reply.response_key == "system:budget_exhausted"
    assert second.reply.text == engine.pack.responses.system.budget_exhausted
    budget_span = second.trace.stage("budget")
    assert budget_span is not None
    assert budget_span.error_code == "budget_exhausted"
    assert second.trace.stage("cloud") is None
    assert cloud.proxy is not None
    assert len(cloud.proxy.captured()) == 1  # only the first turn reached the cloud
    assert tier.gate.audit is not None
    outcomes = [e.outcome for e in tier.gate.audit.entries()]
    assert outcomes == ["sending", "sent", "skipped:budget"]


def test_a_failed_escalation_is_audited_with_what_left(
    cloud: StandInCloud, make_engine_on: Callable[..., Engine]
) -> None:
    """A request the cloud received but did not answer (503 after every retry) did leave the
    device: its audit entry keeps the (redacted) text. One the breaker stopped did not. Each
    call is written down before it goes out (``sending``)."""
    engine = make_engine_on(breaker_failures=1, breaker_reset_s=30.0)
    session = engine.session()
    tier = cloud_tier_of(engine)
    assert tier.gate.audit is not None and cloud.proxy is not None
    cloud.set_fault("http_503")
    failed = session.handle_text(
        "write a short poem for Maria Santos in room 412", budget_ms=20_000
    )
    assert failed.decision.route is Route.FALLBACK
    assert failed.decision.reason.endswith(">cloud_breaker_open")  # the call that tripped it
    bodies = cloud.proxy.captured()
    assert len(bodies) == 3
    sent = json.loads(bodies[0])["messages"][1]["content"]
    assert "Maria" not in sent and "412" not in sent
    stopped = session.handle_text("write a haiku about the sea", budget_ms=20_000)
    assert stopped.decision.reason.endswith(">cloud_breaker_open")
    assert len(cloud.proxy.captured()) == 3  # the open breaker sent nothing

    ahead, first, ahead_again, second = tier.gate.audit.entries()
    assert (ahead.outcome, ahead.turn_id, ahead.sent_text) == (
        "sending",
        failed.request.turn_id,
        sent,
    )
    assert ahead.bytes_sent == 0  # nothing had left when it was written
    assert first.turn_id == failed.request.turn_id
    assert first.outcome == "failed:cloud_breaker_open"
    assert first.sent_text == sent
    assert first.bytes_sent == sum(len(b.encode()) for b in bodies)
    assert {"NAME", "ROOM"} <= set(first.redacted)
    assert (ahead_again.outcome, ahead_again.turn_id) == ("sending", stopped.request.turn_id)
    assert second.turn_id == stopped.request.turn_id
    assert second.outcome == "failed:cloud_breaker_open"
    assert second.bytes_sent == 0
    assert second.sent_text is None


def test_a_stream_cut_at_the_deadline_keeps_whole_sentences() -> None:
    assert complete_sentences("Day 1: see the castle. Day 2: go to Belém and") == (
        "Day 1: see the castle."
    )
    assert complete_sentences('She said "go there early." Then') == 'She said "go there early."'
    assert complete_sentences("Too short. And") == ""  # under 20 characters: not an answer
    assert complete_sentences("no sentence end yet") == ""
