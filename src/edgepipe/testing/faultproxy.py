"""A small fault-injecting HTTP/1.1 reverse proxy.

:class:`FaultProxy` forwards every request to an upstream base URL (with ``httpx``) and, per
request, may inject one fault instead of (or on top of) passing it through. It is built on a raw
``asyncio`` server rather than a web framework so it can misbehave at the transport level
(abort a connection, send headers and then nothing).

Fault kinds (``ms`` is the optional number of milliseconds the fault uses):

``none``
    Pass through unchanged. Streaming (``text/event-stream``) responses are relayed event by
    event as they arrive, not buffered.
``latency``
    Wait ``ms`` milliseconds, then pass through.
``http_500`` / ``http_503`` / ``http_429``
    Answer with that status and an OpenAI-style JSON error body
    (``{"error": {"message", "type", "param", "code"}}``) without calling upstream. ``http_429``
    also sends ``Retry-After: 1``.
``malformed_json``
    Answer ``200`` without calling upstream, with a body that does not parse: for a normal
    request ``Content-Type: application/json`` and a truncated JSON object; for a stream request
    (JSON body with ``"stream": true``) ``text/event-stream`` with a first ``data:`` event whose
    JSON is truncated, followed by ``data: [DONE]``.
``reset``
    Read the request, then close the TCP connection abruptly with no response (``SO_LINGER`` 0 and
    ``transport.abort()``, so the peer gets an RST). Clients see "connection reset" (``httpx``:
    :class:`httpx.ReadError`) or "server disconnected" (:class:`httpx.RemoteProtocolError`).
``stall``
    Send the status line and headers (for a stream request: upstream's real headers and its first
    SSE event; upstream is then disconnected), then send nothing more until the client gives up,
    the proxy stops, or ``ms`` milliseconds pass when ``ms > 0``; then the connection is aborted.
    Clients see a read timeout.
``slow_stream``
    Pass through, but wait ``ms`` milliseconds between consecutive chunks of the response body
    (SSE events for streams, network reads otherwise).

Besides these kinds, the mode ``random`` picks one of them per request: with probability ``rate``
the request gets a fault, drawn in proportion to ``weights`` (a mapping kind → non-negative
weight; default: equal weights for every kind except ``none``), else it passes through. ``ms``
is shared by the drawn kinds. For example ``set_fault("random", rate=0.3, ms=500,
weights={"http_503": 2, "reset": 1})`` gives 20 % HTTP 503, 10 % resets and 70 % untouched
requests. Statistics and the ``X-Edgepipe-Fault-Injected`` header name the kind drawn.

How a fault is chosen for a request:

1. A ``X-Edgepipe-Fault: kind[:ms]`` request header forces that fault for that request (it is not
   forwarded upstream and does not consume the global ``count``). ``random[:ms]`` draws one of
   the fault kinds (not ``none``) with equal weights.
2. Otherwise the global mode applies (set with :meth:`FaultProxy.set_fault` or
   ``POST /_fault``): with probability ``rate`` the request gets ``kind``, else it passes through.
   If ``count`` is set, the mode applies to that many more requests (faulted or not, as ``rate``
   decides) and then reverts to ``none``. Draws use the proxy's own :class:`random.Random`
   (``seed`` makes them repeatable).

Control endpoints on the proxy itself (never faulted, never forwarded):

* ``GET /_fault`` — the global mode: ``{"kind", "ms", "rate", "count", "weights"}`` (``count`` =
  requests left, or ``null``; ``weights`` is ``null`` unless ``kind`` is ``random``).
* ``POST /_fault`` — set it; JSON body ``{"kind": ..., "ms": 0, "rate": 1.0, "count": null,
  "weights": null}`` (omitted fields take these defaults). Invalid specs get a 400.
* ``GET /_stats`` — ``{"requests", "faults": {kind: n}, "upstream_errors", "control"}``;
  ``faults["none"]`` counts requests passed through untouched. ``DELETE /_stats`` zeroes them
  (and forgets the captured request bodies).

Request capture: the bodies of the last ``capture_limit`` (default 500) chat requests
(``POST .../chat/completions``) that were forwarded or faulted are kept, decoded as UTF-8, so
that a test can prove exactly what reached the "cloud": :meth:`FaultProxy.captured`.
:meth:`FaultProxy.reset_stats` clears them.

Responses that carry an injected fault have an ``X-Edgepipe-Fault-Injected: kind`` header
(except ``reset``, which sends nothing). Limitations: HTTP/1.1 over plain TCP only (no TLS, no
HTTP/2, no upgrades); request bodies are read whole before forwarding.

Long on purpose: a testing double, not the runtime; every fault needs its own way of breaking
HTTP at the transport level, and the proxy's request parsing, relaying and counters serve all of
them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import random
import re
import socket
import struct
import threading
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from typing import Any, Final, Literal, Self, cast, get_args

import httpx

FaultKind = Literal[
    "none",
    "latency",
    "http_500",
    "http_503",
    "http_429",
    "malformed_json",
    "reset",
    "stall",
    "slow_stream",
]
"""The faults :class:`FaultProxy` can inject (see the module docstring for what each does)."""

ModeKind = FaultKind | Literal["random"]
"""What a :class:`FaultMode` may be set to: a fault kind, or ``random`` (draw one per request)."""

_log = logging.getLogger(__name__)

FAULT_KINDS: Final[tuple[FaultKind, ...]] = get_args(FaultKind)
RANDOM: Final = "random"
_DEFAULT_WEIGHTS: Final[tuple[tuple[FaultKind, float], ...]] = tuple(
    (kind, 1.0) for kind in FAULT_KINDS if kind != "none"
)
FAULT_HEADER: Final = "x-edgepipe-fault"
INJECTED_HEADER: Final = "X-Edgepipe-Fault-Injected"

_HOP_BY_HOP: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
_NOT_FORWARDED: Final = _HOP_BY_HOP | {"host", "content-length", "accept-encoding", FAULT_HEADER}
_MAX_HEAD: Final = 64 * 1024
_SSE_BOUNDARY: Final = re.compile(rb"\r\n\r\n|\n\n|\r\r")

_ERRORS: Final[dict[FaultKind, tuple[int, str, str, str]]] = {
    "http_500": (500, "The server had an error while processing your request.", "server_error", ""),
    "http_503": (
        503,
        "The engine is currently overloaded, please try again later.",
        "server_error",
        "service_unavailable",
    ),
    "http_429": (
        429,
        "Rate limit reached for requests. Please try again in 1s.",
        "requests",
        "rate_limit_exceeded",
    ),
}


class FaultError(ValueError):
    """An invalid fault specification (unknown kind, negative ms, rate outside 0..1, ...)."""


@dataclass(frozen=True, slots=True)
class FaultMode:
    """The proxy's global fault mode (build it with :func:`make_fault_mode`, which validates)."""

    kind: ModeKind = "none"
    ms: int = 0
    rate: float = 1.0
    count: int | None = None
    """Requests left before the mode reverts to ``none``; ``None`` = no limit."""
    weights: tuple[tuple[FaultKind, float], ...] = ()
    """For ``random``: (kind, weight) pairs to draw from; empty for the other kinds."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "ms": self.ms,
            "rate": self.rate,
            "count": self.count,
            "weights": dict(self.weights) if self.kind == RANDOM else None,
        }


def _is_number(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float)


def make_fault_mode(
    kind: str,
    *,
    ms: int = 0,
    rate: float = 1.0,
    count: int | None = None,
    weights: Mapping[str, float] | None = None,
) -> FaultMode:
    """Validate and build a :class:`FaultMode`; raises :class:`FaultError`.

    ``weights`` is only allowed with ``kind="random"`` (``None``: equal weights for every kind
    except ``none``).
    """
    if kind not in FAULT_KINDS and kind != RANDOM:
        raise FaultError(
            f"unknown fault kind {kind!r}; expected one of {', '.join(FAULT_KINDS)}, {RANDOM}"
        )
    if isinstance(ms, bool) or not isinstance(ms, int) or ms < 0:
        raise FaultError(f"ms must be a non-negative integer, got {ms!r}")
    if not _is_number(rate) or not 0.0 <= rate <= 1.0:
        raise FaultError(f"rate must be a number between 0 and 1, got {rate!r}")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise FaultError(f"count must be a positive integer or null, got {count!r}")
    if kind != RANDOM:
        if weights is not None:
            raise FaultError(f"weights only apply to kind {RANDOM!r}, not {kind!r}")
        return FaultMode(cast(FaultKind, kind), ms, float(rate), count)
    return FaultMode("random", ms, float(rate), count, _check_weights(weights))


def _check_weights(weights: object) -> tuple[tuple[FaultKind, float], ...]:
    if weights is None:
        return _DEFAULT_WEIGHTS
    if not isinstance(weights, Mapping):
        raise FaultError(f"weights must be a mapping of fault kind to weight, got {weights!r}")
    checked: list[tuple[FaultKind, float]] = []
    for kind in FAULT_KINDS:  # canonical order, so that seeded draws do not depend on dict order
        if kind not in weights:
            continue
        weight = weights[kind]
        if not _is_number(weight) or not 0.0 <= weight < float("inf"):
            raise FaultError(f"weight of {kind!r} must be a non-negative number, got {weight!r}")
        if weight > 0:
            checked.append((kind, float(weight)))
    unknown = set(weights) - set(FAULT_KINDS)
    if unknown:
        raise FaultError(
            f"unknown fault kind(s) in weights: {', '.join(sorted(map(str, unknown)))}"
        )
    if not checked:
        raise FaultError("weights must give at least one kind a positive weight")
    return tuple(checked)


def parse_fault_header(value: str) -> tuple[ModeKind, int]:
    """Parse an ``X-Edgepipe-Fault: kind[:ms]`` header value; raises :class:`FaultError`."""
    kind, _, ms_text = value.strip().partition(":")
    try:
        ms = int(ms_text) if ms_text.strip() else 0
    except ValueError:
        raise FaultError(f"bad milliseconds in fault header {value!r}") from None
    mode = make_fault_mode(kind.strip(), ms=ms)
    return mode.kind, mode.ms


@dataclass(slots=True)
class _Request:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    @property
    def keep_alive(self) -> bool:
        connection = (self.header("connection") or "").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" in connection
        return "close" not in connection

    @property
    def is_stream(self) -> bool:
        """Whether this is an OpenAI-style stream request (JSON body with ``"stream": true``)."""
        if not self.body:
            return False
        try:
            payload = json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            return False
        return isinstance(payload, dict) and payload.get("stream") is True


class _BadRequest(Exception):
    pass


@dataclass(slots=True)
class _Stats:
    requests: int = 0
    control: int = 0
    upstream_errors: int = 0
    faults: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FAULT_KINDS, 0))

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "faults": dict(self.faults),
            "upstream_errors": self.upstream_errors,
            "control": self.control,
        }


class FaultProxy:
    """Reverse proxy to ``upstream`` with fault injection, served from a background thread.

    >>> with FaultProxy("http://127.0.0.1:8000") as proxy:   # doctest: +SKIP
    ...     proxy.set_fault("http_503", count=2)             # the next two requests fail
    ...     httpx.get(proxy.url + "/v1/models")
    """

    def __init__(
        self,
        upstream: str,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        seed: int | None = None,
        connect_timeout_s: float = 5.0,
        capture_limit: int = 500,
    ) -> None:
        if capture_limit < 0:
            raise ValueError(f"capture_limit must be >= 0, got {capture_limit}")
        self.upstream = upstream.rstrip("/")
        self.host = host
        self._requested_port = port
        self._connect_timeout_s = connect_timeout_s
        self._lock = threading.Lock()
        self._mode = FaultMode()
        self._rng = random.Random(seed)
        self._stats = _Stats()
        self._captured: deque[str] = deque(maxlen=capture_limit)
        self._port: int | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._client: httpx.AsyncClient | None = None
        self._connections: set[asyncio.Task[None]] = set()

    # ----------------------------------------------------------------- public API

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FaultProxy is not running; call start() first")
        return self._port

    @property
    def url(self) -> str:
        """Base URL of the proxy, e.g. ``http://127.0.0.1:41234`` (no trailing slash)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout_s: float = 10.0) -> Self:
        """Bind the port and start serving in a daemon thread with its own event loop."""
        if self._thread is not None:
            raise RuntimeError("FaultProxy already started")
        self._ready.clear()
        self._startup_error = None
        self._thread = threading.Thread(
            target=self._thread_main, name=f"FaultProxy({self.upstream})", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(timeout_s):
            self.stop()
            raise TimeoutError(f"FaultProxy did not start within {timeout_s}s")
        if self._startup_error is not None:
            error = self._startup_error
            self._thread.join(timeout_s)
            self._thread = None
            raise error
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop serving: close the listener, abort open connections, join the thread."""
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None:
            return
        if loop is not None and stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # loop closed in between
                loop.call_soon_threadsafe(stopping.set)
        thread.join(timeout_s)
        self._thread = None
        self._port = None

    def set_fault(
        self,
        kind: ModeKind | str,
        *,
        ms: int = 0,
        rate: float = 1.0,
        count: int | None = None,
        weights: Mapping[str, float] | None = None,
    ) -> FaultMode:
        """Set the global fault mode (see the module docstring); returns it.

        Raises :class:`FaultError` for an invalid spec (the mode is then unchanged).
        """
        mode = make_fault_mode(kind, ms=ms, rate=rate, count=count, weights=weights)
        with self._lock:
            self._mode = mode
        return mode

    def clear_fault(self) -> None:
        """Back to pass-through (``none``)."""
        self.set_fault("none")

    def fault(self) -> FaultMode:
        """The current global fault mode."""
        with self._lock:
            return self._mode

    def stats(self) -> dict[str, Any]:
        """``{"requests", "faults": {kind: n}, "upstream_errors", "control"}`` (a copy)."""
        with self._lock:
            return self._stats.as_dict()

    def reset_stats(self) -> None:
        """Zero the counters and forget the captured request bodies."""
        with self._lock:
            self._stats = _Stats()
            self._captured.clear()

    def captured(self) -> list[str]:
        """Bodies (UTF-8 text) of the last chat requests forwarded or faulted, oldest first.

        Only ``POST`` requests whose path ends in ``/chat/completions`` are kept, at most
        ``capture_limit`` of them; requests refused for a bad fault header are not.
        """
        with self._lock:
            return list(self._captured)

    def __enter__(self) -> Self:
        if self._thread is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ----------------------------------------------------------------- lifecycle

    def _thread_main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to start()'s caller
            if not self._ready.is_set():
                self._startup_error = exc
        finally:
            self._ready.set()
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        try:
            server = await asyncio.start_server(
                self._on_connection, self.host, self._requested_port, limit=_MAX_HEAD
            )
        except OSError as exc:
            where = f"{self.host}:{self._requested_port}"
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise OSError(exc.errno, f"FaultProxy cannot listen on {where}: {reason}") from exc
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(None, connect=self._connect_timeout_s),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=32),
            follow_redirects=False,
            trust_env=False,
        )
        try:
            self._port = int(server.sockets[0].getsockname()[1])
            self._ready.set()
            await self._stopping.wait()
        finally:
            server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
            with contextlib.suppress(Exception):
                await server.wait_closed()
            await self._client.aclose()

    def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.get_running_loop().create_task(self._connection(reader, writer))
        self._connections.add(task)
        task.add_done_callback(self._connections.discard)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    request = await _read_request(reader, writer)
                except _BadRequest as exc:
                    await _send_json(writer, 400, _error_body(str(exc), "invalid_request_error"))
                    return
                if request is None:
                    return
                if not await self._dispatch(request, reader, writer) or not request.keep_alive:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            _abort(writer)
            raise
        except Exception:  # a bug here: log it, and make it visible to the client as a drop
            _log.exception("FaultProxy: error while handling a connection")
            _abort(writer)
        finally:
            if not writer.is_closing():
                writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    # ----------------------------------------------------------------- requests

    async def _dispatch(
        self, request: _Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Answer one request; returns whether the connection may serve another."""
        path = request.target.split("?", 1)[0]
        if path in ("/_fault", "/_stats"):
            with self._lock:
                self._stats.control += 1
            status, body = self._control(request.method, path, request.body)
            await _send_json(writer, status, body, keep_alive=request.keep_alive)
            return True

        override = request.header(FAULT_HEADER)
        if override is not None:
            try:
                mode_kind, ms = parse_fault_header(override)
            except FaultError as exc:
                await _send_json(writer, 400, _error_body(str(exc), "invalid_request_error"))
                return False
            with self._lock:
                kind = self._pick(mode_kind, _DEFAULT_WEIGHTS)
        else:
            kind, ms = self._draw()
        with self._lock:
            self._stats.requests += 1
            self._stats.faults[kind] += 1
            if request.method == "POST" and path.endswith("/chat/completions"):
                self._captured.append(request.body.decode("utf-8", errors="replace"))

        if kind in _ERRORS:
            status, message, type_, code = _ERRORS[kind]
            extra: list[tuple[str, str]] = [(INJECTED_HEADER, kind)]
            if kind == "http_429":
                extra.append(("Retry-After", "1"))
            body = _error_body(message, type_, code or None)
            await _send_json(writer, status, body, extra, keep_alive=request.keep_alive)
            return True
        if kind == "malformed_json":
            await _send_malformed(writer, request)
            return request.keep_alive
        if kind == "reset":
            _abort(writer)
            return False
        if kind == "stall" and not request.is_stream:
            headers = [("Content-Type", "application/json"), (INJECTED_HEADER, kind)]
            await _write_head(writer, request, 200, headers, chunked=True)
            await self._stall(reader, ms)
            _abort(writer)
            return False
        if kind == "latency" and ms:
            await asyncio.sleep(ms / 1000)
        return await self._forward(request, reader, writer, kind, ms)

    def _draw(self) -> tuple[FaultKind, int]:
        """Pick the fault for one request from the global mode (consuming ``count``)."""
        with self._lock:
            mode = self._mode
            if mode.kind == "none":
                return "none", 0
            if mode.count is not None:
                left = mode.count - 1
                self._mode = FaultMode() if left <= 0 else dataclasses.replace(mode, count=left)
            if mode.rate >= 1.0 or self._rng.random() < mode.rate:
                return self._pick(mode.kind, mode.weights), mode.ms
            return "none", 0

    def _pick(self, kind: ModeKind, weights: tuple[tuple[FaultKind, float], ...]) -> FaultKind:
        """``kind`` itself, or for ``random`` a kind drawn by ``weights`` (hold ``_lock``)."""
        if kind != RANDOM:
            return kind
        kinds = [k for k, _ in weights]
        return self._rng.choices(kinds, weights=[w for _, w in weights])[0]

    def _control(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        if path == "/_stats":
            if method == "GET":
                return 200, self.stats()
            if method == "DELETE":
                self.reset_stats()
                return 200, self.stats()
        elif method == "GET":
            return 200, self.fault().as_dict()
        elif method == "POST":
            try:
                spec = json.loads(body or b"{}")
                if not isinstance(spec, dict):
                    raise FaultError("expected a JSON object")
                unknown = set(spec) - {"kind", "ms", "rate", "count", "weights"}
                if unknown:
                    raise FaultError(f"unknown field(s): {', '.join(sorted(unknown))}")
                mode = self.set_fault(
                    spec.get("kind", "none"),
                    ms=spec.get("ms", 0),
                    rate=spec.get("rate", 1.0),
                    count=spec.get("count"),
                    weights=spec.get("weights"),
                )
            except (ValueError, UnicodeDecodeError) as exc:  # FaultError is a ValueError
                return 400, _error_body(str(exc), "invalid_request_error")
            return 200, mode.as_dict()
        return 405, _error_body(f"{method} not allowed on {path}", "invalid_request_error")

    async def _forward(
        self,
        request: _Request,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        kind: FaultKind,
        ms: int,
    ) -> bool:
        """Relay to upstream (``none``, ``latency``, ``slow_stream``, stream ``stall``)."""
        assert self._client is not None
        target = request.target
        if not target.startswith("/"):  # absolute-form: keep path and query only
            target = "/" + target.split("://", 1)[-1].partition("/")[2]
        headers = [(k, v) for k, v in request.headers if k.lower() not in _NOT_FORWARDED]
        headers.append(("Accept-Encoding", "identity"))
        upstream_request = self._client.build_request(
            request.method, self.upstream + target, headers=headers, content=request.body
        )
        try:
            response = await self._client.send(upstream_request, stream=True)
        except httpx.HTTPError as exc:
            with self._lock:
                self._stats.upstream_errors += 1
            message = f"upstream {self.upstream} unreachable: {type(exc).__name__}: {exc}"
            await _send_json(writer, 502, _error_body(message, "upstream_error"))
            return False

        sent_head = False
        try:
            out_headers = [
                (k, v)
                for k, v in response.headers.multi_items()
                if k.lower() not in _HOP_BY_HOP and k.lower() != "content-length"
            ]
            if kind != "none":
                out_headers.append((INJECTED_HEADER, kind))
            no_body = (
                request.method == "HEAD"
                or response.status_code in (204, 304)
                or response.status_code < 200
            )
            if no_body:
                length = response.headers.get("content-length")
                if length is not None:
                    out_headers.append(("Content-Length", length))
                await _write_head(writer, request, response.status_code, out_headers, chunked=False)
                sent_head = True
                return request.keep_alive
            await _write_head(writer, request, response.status_code, out_headers, chunked=True)
            sent_head = True
            is_sse = response.headers.get("content-type", "").startswith("text/event-stream")
            chunks = _sse_events(response.aiter_raw()) if is_sse else response.aiter_raw()
            first = True
            async for chunk in chunks:
                if not chunk:
                    continue
                if kind == "slow_stream" and not first and ms:
                    await asyncio.sleep(ms / 1000)
                await _write_chunk(writer, request, chunk)
                first = False
                if kind == "stall":
                    await response.aclose()  # free the upstream (it serves one request at a time)
                    await self._stall(reader, ms)
                    _abort(writer)
                    return False
            if kind == "stall":  # empty body: stall after the headers
                await self._stall(reader, ms)
                _abort(writer)
                return False
            await _write_chunk(writer, request, b"")
            return request.keep_alive
        except httpx.HTTPError as exc:
            with self._lock:
                self._stats.upstream_errors += 1
            if not sent_head:
                message = f"upstream error: {type(exc).__name__}: {exc}"
                await _send_json(writer, 502, _error_body(message, "upstream_error"))
            else:
                _abort(writer)  # mid-body: make the truncation visible to the client
            return False
        finally:
            await response.aclose()

    async def _stall(self, reader: asyncio.StreamReader, ms: int) -> None:
        """Send nothing until the client hangs up, the proxy stops, or ``ms`` (if > 0) pass."""
        assert self._stopping is not None

        async def client_gone() -> None:
            while await reader.read(65536):
                pass

        waiters = [
            asyncio.ensure_future(client_gone()),
            asyncio.ensure_future(self._stopping.wait()),
        ]
        try:
            await asyncio.wait(
                waiters, timeout=ms / 1000 if ms else None, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)


# --------------------------------------------------------------------- HTTP helpers


async def _read_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> _Request | None:
    """Read one request; ``None`` on a clean end of stream before any byte of it."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial.strip():
            return None
        raise _BadRequest("incomplete request head") from None
    except asyncio.LimitOverrunError:
        raise _BadRequest("request head too large") from None
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _BadRequest(f"bad request line {lines[0][:100]!r}")
    method, target, version = parts
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise _BadRequest(f"bad header line {line[:100]!r}")
        headers.append((name, value.strip()))
    request = _Request(method.upper(), target, version, headers, b"")

    if (request.header("expect") or "").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await writer.drain()
    if "chunked" in (request.header("transfer-encoding") or "").lower():
        request.body = await _read_chunked(reader)
    else:
        length_text = request.header("content-length")
        if length_text:
            try:
                length = int(length_text)
            except ValueError:
                raise _BadRequest(f"bad Content-Length {length_text!r}") from None
            if length < 0:
                raise _BadRequest(f"bad Content-Length {length_text!r}")
            request.body = await reader.readexactly(length)
    return request


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size_line = await reader.readuntil(b"\r\n")
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise _BadRequest("bad chunk size") from None
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                pass
            return bytes(body)
        body += await reader.readexactly(size)
        await reader.readexactly(2)


async def _write_head(
    writer: asyncio.StreamWriter,
    request: _Request,
    status: int,
    headers: list[tuple[str, str]],
    *,
    chunked: bool,
) -> None:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{k}: {v}" for k, v in headers]
    if chunked and request.version != "HTTP/1.0":
        lines.append("Transfer-Encoding: chunked")
    if not request.keep_alive or (chunked and request.version == "HTTP/1.0"):
        lines.append("Connection: close")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    await writer.drain()


async def _write_chunk(writer: asyncio.StreamWriter, request: _Request, data: bytes) -> None:
    """Write one body chunk (``b""`` ends the body) in the framing :func:`_write_head` chose."""
    if request.version == "HTTP/1.0":
        if data:
            writer.write(data)
    else:
        writer.write(b"%x\r\n%s\r\n" % (len(data), data))
    await writer.drain()


async def _send_json(
    writer: asyncio.StreamWriter,
    status: int,
    body: dict[str, Any],
    extra_headers: list[tuple[str, str]] | None = None,
    *,
    keep_alive: bool = False,
) -> None:
    payload = json.dumps(body).encode()
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [
        f"HTTP/1.1 {status} {reason}",
        "Content-Type: application/json",
        f"Content-Length: {len(payload)}",
        *(f"{k}: {v}" for k, v in extra_headers or []),
        "Connection: keep-alive" if keep_alive else "Connection: close",
    ]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload)
    await writer.drain()


async def _send_malformed(writer: asyncio.StreamWriter, request: _Request) -> None:
    if request.is_stream:
        headers = [("Content-Type", "text/event-stream"), (INJECTED_HEADER, "malformed_json")]
        await _write_head(writer, request, 200, headers, chunked=True)
        broken = (
            b'data: {"id": "chatcmpl-fault", "object": "chat.completion.chunk", '
            b'"choices": [{"index": 0, "delta": {"content": "Hel\n\n'
        )
        await _write_chunk(writer, request, broken)
        await _write_chunk(writer, request, b"data: [DONE]\n\n")
        await _write_chunk(writer, request, b"")
        return
    body = (
        b'{"id": "chatcmpl-fault", "object": "chat.completion", "choices": '
        b'[{"index": 0, "message": {"role": "assistant", "content": "Hel'
    )
    lines = [
        "HTTP/1.1 200 OK",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        f"{INJECTED_HEADER}: malformed_json",
        "Connection: keep-alive" if request.keep_alive else "Connection: close",
    ]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    await writer.drain()


def _error_body(message: str, type_: str, code: str | None = None) -> dict[str, Any]:
    """An OpenAI-style error body."""
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def _abort(writer: asyncio.StreamWriter) -> None:
    """Drop the connection with an RST (no FIN, no pending data)."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _sse_events(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Regroup a byte stream into whole SSE events (each with its blank-line terminator)."""
    buffer = b""
    async for chunk in chunks:
        buffer += chunk
        while match := _SSE_BOUNDARY.search(buffer):
            yield buffer[: match.end()]
            buffer = buffer[match.end() :]
    if buffer:
        yield buffer
