"""Test doubles shared by the cloud tests: a clock the test moves, a port nothing listens on,
a chat endpoint whose every answer the test scripts, and the cloud tier of an engine.

Deadlines are behaviour, so they are tested with these rather than with wall-clock timings:
a :class:`FakeClock` is injected into :class:`~edgepipe.core.deadline.Deadline`, and a
:class:`ScriptedCloud` (or the stand-in cloud's fault proxy) decides when the "cloud" answers,
so that a test asserts what happened (which error, how many attempts, what was sent, whether
the call returned before the server finished), never how many milliseconds it took. How long
things take is measured in bench/ (bench/bench_cloud.py for the cloud path).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from edgepipe.engine.engine import Engine
from edgepipe.tiers.cloud import CloudTier


class FakeClock:
    """A monotonic clock (seconds) that moves only when the test says so.

    It counts its readings, so that a scripted server can wait until the code under test has
    looked at the time (``wait_for_reads``) before moving it: that orders "the client saw this
    event" before "the deadline passed" without a sleep."""

    def __init__(self, start: float = 1_000.0) -> None:
        self._now = start
        self._reads = 0
        self._changed = threading.Condition()

    def __call__(self) -> float:
        with self._changed:
            self._reads += 1
            self._changed.notify_all()
            return self._now

    @property
    def reads(self) -> int:
        with self._changed:
            return self._reads

    def advance(self, seconds: float) -> None:
        with self._changed:
            self._now += seconds

    def wait_for_reads(self, count: int, timeout_s: float = 10.0) -> bool:
        """Block until the clock has been read ``count`` times in all; False on timeout (the
        code under test never looked: the test's own assertions then say what went wrong)."""
        with self._changed:
            return self._changed.wait_for(lambda: self._reads >= count, timeout_s)


def delta(text: str) -> dict[str, Any]:
    """One streamed chat chunk carrying ``text``."""
    return {"choices": [{"index": 0, "delta": {"content": text}}]}


class Exchange:
    """One chat request to a :class:`ScriptedCloud`, and the means to answer it."""

    def __init__(self, handler: BaseHTTPRequestHandler, number: int, raw: bytes) -> None:
        self._handler = handler
        self.number = number
        """1 for the first chat request the server received, 2 for the next..."""
        self.raw = raw
        self.body: dict[str, Any] = json.loads(raw)

    def reply(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        """A whole response at once."""
        h = self._handler
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)
        h.wfile.flush()

    def error(self, status: int, message: str = "scripted failure") -> None:
        self.reply(status, json.dumps({"error": {"message": message}}).encode())

    def start_stream(self) -> None:
        """Headers of a server-sent-event stream that ends when the connection closes."""
        h = self._handler
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Connection", "close")
        h.end_headers()
        h.close_connection = True
        h.wfile.flush()

    def event(self, data: object) -> None:
        """One event (``data`` as JSON), sent at once."""
        self._handler.wfile.write(b"data: " + json.dumps(data).encode() + b"\n\n")
        self._handler.wfile.flush()

    def done(self) -> None:
        self._handler.wfile.write(b"data: [DONE]\n\n")
        self._handler.wfile.flush()


class ScriptedCloud:
    """An OpenAI-compatible endpoint on loopback (a free port) that answers each chat request
    with ``script(exchange)``; ``GET /models`` answers 200. It records every chat request's
    bytes (``requests``) and whether each script ran to its end (``finished``)."""

    def __init__(self, script: Callable[[Exchange], None]) -> None:
        self.requests: list[bytes] = []
        self.finished: list[int] = []
        """Numbers of the exchanges whose script returned (the server got to its end)."""
        self._lock = threading.Lock()
        cloud = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                body = json.dumps({"data": [{"id": "scripted"}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                with cloud._lock:
                    cloud.requests.append(raw)
                    number = len(cloud.requests)
                try:
                    script(Exchange(self, number, raw))
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client went away: what a deadline does
                    return
                with cloud._lock:
                    cloud.finished.append(number)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> ScriptedCloud:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def cloud_tier_of(engine: Engine) -> CloudTier:
    """The engine's cloud tier (it must have loaded, with its audit log)."""
    tier = engine.tiers.get("cloud")
    assert isinstance(tier, CloudTier) and tier.gate.audit is not None
    return tier
