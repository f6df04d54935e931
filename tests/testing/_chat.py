"""Small helpers shared by the stand-in cloud tests, and a tiny fake OpenAI-style upstream."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

import httpx


def chat_body(model: str, *, stream: bool = False, max_tokens: int = 8) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": "Say hello to the hotel guest."}],
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "stream": stream,
    }


def read_sse(response: httpx.Response) -> list[tuple[float, str]]:
    """The ``data:`` payloads of an SSE response with their arrival times (monotonic)."""
    events: list[tuple[float, str]] = []
    for line in response.iter_lines():
        if line.startswith("data:"):
            events.append((time.monotonic(), line[len("data:") :].strip()))
    return events


def stream_text(events: list[tuple[float, str]]) -> str:
    text = ""
    for _, data in events:
        if data == "[DONE]":
            break
        delta = json.loads(data)["choices"][0]["delta"]
        text += delta.get("content") or ""
    return text


# --------------------------------------------------------------------- fake upstream

FAKE_MODEL = "fake-model"
FAKE_WORDS = ("Hello", " dear", " guest", "!")


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    payload = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "model": FAKE_MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def fake_sse_events() -> list[bytes]:
    """What the fake upstream streams: role, one event per word, finish, ``[DONE]``."""
    return [
        _chunk({"role": "assistant"}),
        *(_chunk({"content": word}) for word in FAKE_WORDS),
        _chunk({}, "stop"),
        b"data: [DONE]\n\n",
    ]


class FakeUpstream:
    """An in-process OpenAI-style HTTP/1.1 server on loopback, for proxy-only tests.

    * ``GET /v1/models`` — one model, ``fake-model``.
    * ``POST /v1/chat/completions`` — a fixed completion; with ``"stream": true`` the events of
      :func:`fake_sse_events`, chunked, ``event_gap_s`` apart (settable per test).
    * ``GET|POST /echo...`` — what arrived: ``{"method", "path", "headers", "body"}``.
    * ``GET /broken`` — headers and one body chunk, then the connection is dropped.

    ``requests`` lists ``(method, path)`` of every request; ``aborted_streams`` counts streams
    whose client went away before the end.
    """

    def __init__(self) -> None:
        self.event_gap_s = 0.0
        self.requests: list[tuple[str, str]] = []
        self.aborted_streams = 0
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out as separate writes

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._handle(b"")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self._handle(self.rfile.read(length))

            def _handle(self, body: bytes) -> None:
                with fake._lock:
                    fake.requests.append((self.command, self.path))
                if self.path.startswith("/echo"):
                    self._json(
                        {
                            "method": self.command,
                            "path": self.path,
                            "headers": {k.lower(): v for k, v in self.headers.items()},
                            "body": body.decode(),
                        }
                    )
                elif self.path == "/v1/models":
                    self._json({"object": "list", "data": [{"id": FAKE_MODEL, "object": "model"}]})
                elif self.path == "/v1/chat/completions" and self.command == "POST":
                    if json.loads(body).get("stream") is True:
                        self._stream()
                    else:
                        self._json(
                            {
                                "id": "chatcmpl-fake",
                                "object": "chat.completion",
                                "model": FAKE_MODEL,
                                "choices": [
                                    {
                                        "index": 0,
                                        "message": {
                                            "role": "assistant",
                                            "content": "".join(FAKE_WORDS),
                                        },
                                        "finish_reason": "stop",
                                    }
                                ],
                                "usage": {
                                    "prompt_tokens": 5,
                                    "completion_tokens": 4,
                                    "total_tokens": 9,
                                },
                            }
                        )
                elif self.path == "/broken":
                    self.send_response(200)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    self.wfile.write(b"5\r\nhello\r\n")
                    self.wfile.flush()
                    self.close_connection = True
                else:
                    self._json({"error": {"message": "not found"}}, status=404)

            def _json(self, payload: dict[str, Any], status: int = 200) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    for index, event in enumerate(fake_sse_events()):
                        if index and fake.event_gap_s:
                            time.sleep(fake.event_gap_s)
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                except OSError:  # BrokenPipeError, ConnectionResetError
                    with fake._lock:
                        fake.aborted_streams += 1
                    self.close_connection = True

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
