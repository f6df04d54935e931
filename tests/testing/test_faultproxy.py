"""FaultProxy: every fault kind, observed from an httpx client, against a tiny in-process upstream.

The same faults against the real llama_cpp.server are checked in test_cloud.py.
"""

from __future__ import annotations

import collections
import itertools
import json
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from edgepipe.testing.faultproxy import (
    FAULT_KINDS,
    FaultError,
    FaultProxy,
    make_fault_mode,
    parse_fault_header,
)

from ._chat import FAKE_MODEL, FAKE_WORDS, FakeUpstream, chat_body, fake_sse_events, read_sse

SHORT = httpx.Timeout(5.0, connect=2.0, read=0.5)
DISCONNECTED = (httpx.RemoteProtocolError, httpx.ReadError, httpx.ConnectError)


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture
def fake(upstream: FakeUpstream) -> FakeUpstream:
    upstream.event_gap_s = 0.0
    upstream.requests.clear()
    upstream.aborted_streams = 0
    return upstream


@pytest.fixture
def proxy(fake: FakeUpstream) -> Iterator[FaultProxy]:
    with FaultProxy(fake.url, seed=1) as p:
        yield p


@pytest.fixture
def client(proxy: FaultProxy) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=proxy.url + "/v1", timeout=httpx.Timeout(5.0, connect=2.0)) as c:
        yield c


def chat(client: httpx.Client, **headers: str) -> httpx.Response:
    return client.post("/chat/completions", json=chat_body(FAKE_MODEL), headers=headers)


def wait_for(condition: object, timeout_s: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.02)
    return False


# --------------------------------------------------------------------- parsing


def test_fault_header_parsing() -> None:
    assert parse_fault_header("latency:250") == ("latency", 250)
    assert parse_fault_header(" reset ") == ("reset", 0)
    assert parse_fault_header("random:5") == ("random", 5)
    for bad in ("explode", "latency:abc", "latency:-5", ""):
        with pytest.raises(FaultError):
            parse_fault_header(bad)


def test_fault_mode_validation() -> None:
    assert make_fault_mode("stall", ms=10, rate=0.5, count=3).as_dict() == {
        "kind": "stall",
        "ms": 10,
        "rate": 0.5,
        "count": 3,
        "weights": None,
    }
    for kwargs in ({"ms": -1}, {"rate": 1.5}, {"rate": -0.1}, {"count": 0}, {"ms": True}):
        with pytest.raises(FaultError):
            make_fault_mode("latency", **kwargs)
    assert set(FAULT_KINDS) == {
        "none",
        "latency",
        "http_500",
        "http_503",
        "http_429",
        "malformed_json",
        "reset",
        "stall",
        "slow_stream",
    }


def test_random_mode_validation() -> None:
    default = make_fault_mode("random")
    assert {kind for kind, _ in default.weights} == set(FAULT_KINDS) - {"none"}
    mode = make_fault_mode("random", rate=0.3, weights={"reset": 1, "http_503": 2, "latency": 0})
    assert mode.as_dict()["weights"] == {"http_503": 2.0, "reset": 1.0}  # zero weights dropped
    for weights in (
        {"explode": 1},
        {"reset": -1},
        {"reset": float("nan")},
        {"reset": float("inf")},
        {"reset": "1"},
        {"reset": 0},
        {},
        ["reset"],
    ):
        with pytest.raises(FaultError):
            make_fault_mode("random", weights=weights)  # type: ignore[arg-type]
    with pytest.raises(FaultError, match="only apply"):
        make_fault_mode("reset", weights={"reset": 1})


# --------------------------------------------------------------------- pass-through


def test_none_forwards_request_and_response_unchanged(
    proxy: FaultProxy, fake: FakeUpstream
) -> None:
    response = httpx.post(
        proxy.url + "/echo/x?a=1&b=2",
        content=b'{"hello": "world"}',
        headers={"X-Custom": "yes", "X-Edgepipe-Fault": "none", "Content-Type": "text/plain"},
        timeout=5,
    )
    assert response.status_code == 200
    assert "x-edgepipe-fault-injected" not in response.headers
    seen = response.json()
    assert seen["method"] == "POST"
    assert seen["path"] == "/echo/x?a=1&b=2"
    assert seen["body"] == '{"hello": "world"}'
    assert seen["headers"]["x-custom"] == "yes"
    assert seen["headers"]["content-type"] == "text/plain"
    assert seen["headers"]["host"] == fake.url.removeprefix("http://")
    assert "x-edgepipe-fault" not in seen["headers"]  # the control header is not forwarded
    assert proxy.stats()["faults"]["none"] == 1
    assert proxy.stats()["requests"] == 1


def test_chat_completion_passes_through(client: httpx.Client, proxy: FaultProxy) -> None:
    response = chat(client)
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "".join(FAKE_WORDS)
    assert client.get("/models").json()["data"][0]["id"] == FAKE_MODEL  # same connection again
    assert proxy.stats()["requests"] == 2


def test_chunked_request_body_is_forwarded(proxy: FaultProxy) -> None:
    def pieces() -> Iterator[bytes]:
        yield b"first,"
        yield b"second"

    response = httpx.post(proxy.url + "/echo", content=pieces(), timeout=5)
    assert response.status_code == 200
    assert response.json()["body"] == "first,second"


def test_stream_is_relayed_event_by_event(client: httpx.Client, fake: FakeUpstream) -> None:
    fake.event_gap_s = 0.1
    started = time.monotonic()
    with client.stream("POST", "/chat/completions", json=chat_body(FAKE_MODEL, stream=True)) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = read_sse(r)
    expected = [e.removeprefix(b"data: ").strip().decode() for e in fake_sse_events()]
    assert [data for _, data in events] == expected
    # Not buffered: the first event arrives long before the upstream has sent the last one.
    assert events[0][0] - started < 0.1 * (len(expected) - 1) / 2
    assert events[-1][0] - started >= 0.1 * (len(expected) - 1)


def test_upstream_truncating_its_body_is_visible(proxy: FaultProxy) -> None:
    with pytest.raises(DISCONNECTED):
        httpx.get(proxy.url + "/broken", timeout=SHORT)
    assert proxy.stats()["upstream_errors"] == 1


def test_upstream_down_is_a_502() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
    with FaultProxy(f"http://127.0.0.1:{dead}") as proxy:
        response = httpx.get(proxy.url + "/v1/models", timeout=5)
        assert response.status_code == 502
        assert response.json()["error"]["type"] == "upstream_error"
        assert proxy.stats()["upstream_errors"] == 1


# --------------------------------------------------------------------- the faults


def test_latency_adds_at_least_ms(client: httpx.Client, proxy: FaultProxy) -> None:
    client.get("/models")  # warm the connection
    proxy.set_fault("latency", ms=300)
    started = time.monotonic()
    response = chat(client)
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert response.json()["object"] == "chat.completion"
    assert response.headers["x-edgepipe-fault-injected"] == "latency"
    assert elapsed >= 0.3  # the fault's delay is its behaviour; how much more is not asserted
    assert proxy.stats()["faults"]["latency"] == 1


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("http_500", 500, None),
        ("http_503", 503, "service_unavailable"),
        ("http_429", 429, "rate_limit_exceeded"),
    ],
)
def test_http_errors(
    client: httpx.Client,
    proxy: FaultProxy,
    fake: FakeUpstream,
    kind: str,
    status: int,
    code: str | None,
) -> None:
    proxy.set_fault(kind)
    response = chat(client)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["message"]
    assert error["type"]
    assert error["code"] == code
    assert "param" in error
    assert response.headers["x-edgepipe-fault-injected"] == kind
    if kind == "http_429":
        assert response.headers["retry-after"] == "1"
    assert fake.requests == []  # answered by the proxy alone
    # The connection stays usable after an injected error.
    proxy.clear_fault()
    assert client.get("/models").status_code == 200


def test_malformed_json(client: httpx.Client, proxy: FaultProxy, fake: FakeUpstream) -> None:
    proxy.set_fault("malformed_json")
    response = chat(client)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-edgepipe-fault-injected"] == "malformed_json"
    with pytest.raises(json.JSONDecodeError):
        response.json()
    assert fake.requests == []


def test_malformed_json_stream(client: httpx.Client, proxy: FaultProxy) -> None:
    proxy.set_fault("malformed_json")
    with client.stream("POST", "/chat/completions", json=chat_body(FAKE_MODEL, stream=True)) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = read_sse(r)
    assert len(events) == 2
    with pytest.raises(json.JSONDecodeError):
        json.loads(events[0][1])
    assert events[1][1] == "[DONE]"


def test_reset_drops_the_connection(client: httpx.Client, proxy: FaultProxy) -> None:
    proxy.set_fault("reset")
    with pytest.raises(DISCONNECTED):
        client.post("/chat/completions", json=chat_body(FAKE_MODEL), timeout=SHORT)
    assert proxy.stats()["faults"]["reset"] == 1
    proxy.clear_fault()
    assert client.get("/models").status_code == 200  # the client recovers on a new connection


def test_reset_via_raw_socket_sends_no_bytes(proxy: FaultProxy) -> None:
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=2) as sock:
        sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Edgepipe-Fault: reset\r\n\r\n")
        try:
            data = sock.recv(1024)
        except ConnectionResetError:
            data = b""
    assert data == b""


def test_stall_trips_the_read_timeout(client: httpx.Client, proxy: FaultProxy) -> None:
    proxy.set_fault("stall")
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        client.post("/chat/completions", json=chat_body(FAKE_MODEL), timeout=SHORT)
    assert 0.4 <= time.monotonic() - started < 3


def test_stall_stream_sends_headers_and_first_event_only(
    client: httpx.Client, proxy: FaultProxy, fake: FakeUpstream
) -> None:
    fake.event_gap_s = 0.05
    proxy.set_fault("stall")
    received: list[str] = []
    with (
        pytest.raises(httpx.ReadTimeout),
        client.stream(
            "POST", "/chat/completions", json=chat_body(FAKE_MODEL, stream=True), timeout=SHORT
        ) as response,
    ):
        assert response.status_code == 200
        assert response.headers["x-edgepipe-fault-injected"] == "stall"
        for line in response.iter_lines():
            if line.startswith("data:"):
                received.append(line)
    assert len(received) == 1
    assert json.loads(received[0][len("data:") :])["object"] == "chat.completion.chunk"
    # The proxy let go of the upstream stream rather than draining it.
    assert wait_for(lambda: fake.aborted_streams == 1)


def test_stall_with_ms_then_aborts(client: httpx.Client) -> None:
    started = time.monotonic()
    with pytest.raises(DISCONNECTED):
        client.get(
            "/models",
            headers={"X-Edgepipe-Fault": "stall:200"},
            timeout=httpx.Timeout(5.0, read=3.0),
        )
    assert 0.2 <= time.monotonic() - started < 2.5


def test_slow_stream_spaces_events(client: httpx.Client, proxy: FaultProxy) -> None:
    proxy.set_fault("slow_stream", ms=100)
    started = time.monotonic()
    with client.stream("POST", "/chat/completions", json=chat_body(FAKE_MODEL, stream=True)) as r:
        assert r.headers["x-edgepipe-fault-injected"] == "slow_stream"
        slow = read_sse(r)
    assert slow[-1][1] == "[DONE]"
    assert len(slow) == len(fake_sse_events())
    # The proxy waits 100 ms before each event after the first: the last cannot come sooner.
    assert slow[-1][0] - started >= 0.1 * (len(slow) - 1)
    gaps = sorted(b[0] - a[0] for a, b in itertools.pairwise(slow))
    assert gaps[len(gaps) // 2] >= 0.08  # spread out, not one burst at the end


# --------------------------------------------------------------------- selection


def test_header_override_beats_global_mode(client: httpx.Client, proxy: FaultProxy) -> None:
    proxy.set_fault("http_500")
    response = client.get("/models", headers={"X-Edgepipe-Fault": "none"})
    assert response.status_code == 200
    response = client.get("/models", headers={"X-Edgepipe-Fault": "http_503"})
    assert response.status_code == 503
    proxy.clear_fault()
    started = time.monotonic()
    response = client.get("/models", headers={"X-Edgepipe-Fault": "latency:200"})
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.2


def test_bad_fault_header_is_a_400(client: httpx.Client) -> None:
    response = client.get("/models", headers={"X-Edgepipe-Fault": "explode"})
    assert response.status_code == 400
    assert "unknown fault kind" in response.json()["error"]["message"]


def test_count_reverts_to_none(client: httpx.Client, proxy: FaultProxy) -> None:
    proxy.set_fault("http_503", count=2)
    statuses = [client.get("/models").status_code for _ in range(4)]
    assert statuses == [503, 503, 200, 200]
    assert proxy.fault().kind == "none"


def test_count_counts_requests_not_faults(client: httpx.Client, proxy: FaultProxy) -> None:
    proxy.set_fault("http_500", rate=0.0, count=3)
    assert [client.get("/models").status_code for _ in range(3)] == [200, 200, 200]
    assert proxy.fault().kind == "none"


def test_header_override_does_not_consume_count(client: httpx.Client, proxy: FaultProxy) -> None:
    proxy.set_fault("http_500", count=1)
    assert client.get("/models", headers={"X-Edgepipe-Fault": "none"}).status_code == 200
    assert client.get("/models").status_code == 500
    assert client.get("/models").status_code == 200


def test_rate_is_a_probability(client: httpx.Client, proxy: FaultProxy) -> None:
    proxy.set_fault("http_429", rate=0.0)
    assert all(client.get("/models").status_code == 200 for _ in range(10))
    proxy.set_fault("http_429", rate=1.0)
    assert all(client.get("/models").status_code == 429 for _ in range(10))
    proxy.set_fault("http_429", rate=0.5)
    failures = sum(client.get("/models").status_code == 429 for _ in range(100))
    assert 30 <= failures <= 70
    stats = proxy.stats()
    assert stats["requests"] == 120
    assert stats["faults"]["http_429"] == 10 + failures
    assert stats["faults"]["none"] == 10 + 100 - failures


def test_random_mode_draws_kinds_by_weight(client: httpx.Client, proxy: FaultProxy) -> None:
    proxy.set_fault("random", rate=0.6, weights={"http_503": 2, "http_429": 1})
    seen: collections.Counter[tuple[int, str | None]] = collections.Counter()
    for _ in range(300):
        response = client.get("/models")
        seen[response.status_code, response.headers.get("x-edgepipe-fault-injected")] += 1
    # Expected: 40 % pass through, 40 % HTTP 503, 20 % HTTP 429 (with the matching header).
    assert set(seen) == {(200, None), (503, "http_503"), (429, "http_429")}
    assert 90 <= seen[200, None] <= 150
    assert 90 <= seen[503, "http_503"] <= 150
    assert 35 <= seen[429, "http_429"] <= 85
    stats = proxy.stats()
    assert stats["faults"]["http_503"] == seen[503, "http_503"]
    assert stats["faults"]["http_429"] == seen[429, "http_429"]
    assert stats["faults"]["none"] == seen[200, None]
    assert proxy.fault().kind == "random"  # stays until cleared (no count)


def test_random_header_exercises_every_kind(client: httpx.Client, proxy: FaultProxy) -> None:
    outcomes: collections.Counter[str] = collections.Counter()
    for _ in range(60):
        try:
            response = chat(client, **{"X-Edgepipe-Fault": "random:1"})
            outcomes[str(response.status_code)] += 1
        except httpx.TransportError as exc:
            outcomes[type(exc).__name__] += 1
    stats = proxy.stats()
    assert stats["requests"] == 60
    assert stats["faults"]["none"] == 0
    drawn = {kind for kind, n in stats["faults"].items() if n}
    assert len(drawn) >= 6  # 8 kinds, equal weights
    assert outcomes["500"] == stats["faults"]["http_500"]
    assert outcomes["503"] == stats["faults"]["http_503"]
    assert outcomes["429"] == stats["faults"]["http_429"]


def test_seeded_draws_repeat(fake: FakeUpstream) -> None:
    def sequence() -> list[int]:
        with (
            FaultProxy(fake.url, seed=42) as proxy,
            httpx.Client(base_url=proxy.url, timeout=5) as c,
        ):
            proxy.set_fault("random", rate=0.5, weights={"http_500": 1, "http_503": 1})
            return [c.get("/v1/models").status_code for _ in range(30)]

    first = sequence()
    assert len(set(first)) == 3
    assert sequence() == first


def test_random_mode_with_count(client: httpx.Client, proxy: FaultProxy) -> None:
    proxy.set_fault("random", weights={"http_500": 1}, count=2)
    assert [client.get("/models").status_code for _ in range(3)] == [500, 500, 200]
    assert proxy.fault().kind == "none"


# --------------------------------------------------------------------- control endpoints


def test_control_endpoints(proxy: FaultProxy) -> None:
    with httpx.Client(base_url=proxy.url, timeout=5) as c:
        assert c.get("/_fault").json() == {
            "kind": "none",
            "ms": 0,
            "rate": 1.0,
            "count": None,
            "weights": None,
        }
        posted = c.post("/_fault", json={"kind": "latency", "ms": 50, "rate": 0.5, "count": 4})
        assert posted.status_code == 200
        assert posted.json() == {
            "kind": "latency",
            "ms": 50,
            "rate": 0.5,
            "count": 4,
            "weights": None,
        }
        assert c.get("/_fault").json()["kind"] == "latency"
        assert proxy.fault().ms == 50

        for bad in (
            {"kind": "explode"},
            {"kind": "latency", "ms": -1},
            {"kind": "latency", "rate": 2},
            {"kind": "latency", "count": 0},
            {"kind": "latency", "when": "now"},
            {"kind": "latency", "weights": {"reset": 1}},
            {"kind": "random", "weights": {"explode": 1}},
            [1, 2],
        ):
            response = c.post("/_fault", json=bad)
            assert response.status_code == 400, bad
            assert response.json()["error"]["type"] == "invalid_request_error"
        assert c.post("/_fault", content=b"{not json").status_code == 400
        assert c.put("/_fault", json={}).status_code == 405
        assert c.get("/_fault").json()["kind"] == "latency"  # unchanged by the bad posts

        random_mode = c.post(
            "/_fault", json={"kind": "random", "rate": 0.2, "weights": {"reset": 1, "stall": 3}}
        ).json()
        assert random_mode["weights"] == {"reset": 1.0, "stall": 3.0}
        assert proxy.fault().kind == "random"

        # Control endpoints are never faulted, whatever the global mode.
        c.post("/_fault", json={"kind": "reset"})
        assert c.get("/_fault").json()["kind"] == "reset"
        assert c.get("/_stats", headers={"X-Edgepipe-Fault": "reset"}).status_code == 200
        assert c.post("/_fault", json={}).json()["kind"] == "none"  # default kind: none

        c.get("/v1/models")
        c.get("/v1/models", headers={"X-Edgepipe-Fault": "http_500"})
        stats = c.get("/_stats").json()
        assert stats["requests"] == 2
        assert stats["faults"]["none"] == 1
        assert stats["faults"]["http_500"] == 1
        assert set(stats["faults"]) == set(FAULT_KINDS)
        assert stats["control"] >= 10
        zeroed = c.delete("/_stats").json()
        assert zeroed["requests"] == 0
        assert zeroed["faults"]["http_500"] == 0


# --------------------------------------------------------------------- lifecycle


def test_proxy_lifecycle(fake: FakeUpstream) -> None:
    proxy = FaultProxy(fake.url)
    with pytest.raises(RuntimeError):
        _ = proxy.url
    with proxy:
        assert proxy.running
        assert proxy.url == f"http://127.0.0.1:{proxy.port}"
        assert httpx.get(proxy.url + "/v1/models", timeout=5).status_code == 200
        port = proxy.port
    assert not proxy.running
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2)
    proxy.stop()  # idempotent


def test_stop_ends_a_stalled_request(fake: FakeUpstream) -> None:
    proxy = FaultProxy(fake.url).start()
    proxy.set_fault("stall")

    outcome: list[BaseException | int] = []

    def call() -> None:
        try:
            outcome.append(httpx.get(proxy.url + "/v1/models", timeout=30).status_code)
        except httpx.HTTPError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    assert wait_for(lambda: proxy.stats()["faults"]["stall"] == 1)
    started = time.monotonic()
    proxy.stop()
    thread.join(10)
    assert time.monotonic() - started < 5
    assert len(outcome) == 1
    assert isinstance(outcome[0], DISCONNECTED)


def test_bind_failure_is_raised_by_start() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        taken = sock.getsockname()[1]
        proxy = FaultProxy("http://127.0.0.1:1", port=taken)
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{taken}.*in use"):
            proxy.start()
        assert not proxy.running


# --------------------------------------------------------------------- request capture


def test_captures_chat_request_bodies_forwarded_or_faulted(
    client: httpx.Client, proxy: FaultProxy
) -> None:
    first = chat_body(FAKE_MODEL) | {"messages": [{"role": "user", "content": "héllo one"}]}
    second = chat_body(FAKE_MODEL) | {"messages": [{"role": "user", "content": "hello two"}]}
    assert client.post("/chat/completions", json=first).status_code == 200
    proxy.set_fault("http_503", count=1)
    assert client.post("/chat/completions", json=second).status_code == 503
    with pytest.raises(DISCONNECTED):
        client.post("/chat/completions", json=second, headers={"X-Edgepipe-Fault": "reset"})
    client.get("/models")  # not a chat request
    client.post("/chat/completions", json=first, headers={"X-Edgepipe-Fault": "bogus"})  # a 400

    captured = proxy.captured()
    assert [json.loads(body) for body in captured] == [first, second, second]
    assert "héllo one" in captured[0]  # decoded text, not bytes
    assert proxy.captured() is not proxy.captured()  # a copy
    proxy.reset_stats()
    assert proxy.captured() == []


def test_capture_keeps_the_last_n(fake: FakeUpstream) -> None:
    with FaultProxy(fake.url, capture_limit=3) as proxy, httpx.Client(timeout=5) as http:
        for n in range(5):
            body = chat_body(FAKE_MODEL) | {"messages": [{"role": "user", "content": f"#{n}"}]}
            http.post(proxy.url + "/v1/chat/completions", json=body)
        contents = [json.loads(b)["messages"][0]["content"] for b in proxy.captured()]
        assert contents == ["#2", "#3", "#4"]
    with pytest.raises(ValueError, match="capture_limit"):
        FaultProxy(fake.url, capture_limit=-1)
