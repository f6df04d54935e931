"""The cloud client: one OpenAI-compatible Chat Completions endpoint, called under deadlines.

* **Client**: httpx, streaming (server-sent events via httpx-sse), separate connect and read
  timeouts, and the turn's deadline on top: the request runs in a worker thread and the turn
  stops waiting when the deadline passes, whatever the server does (a stalled or trickling
  stream cannot hold a turn).
* **Retries**: tenacity, on connection errors, timeouts, 429 and 5xx, with exponential backoff
  and full jitter, never past the deadline.
* **Circuit breaker**: pybreaker; after ``breaker_failures`` failed turns in a row it opens and
  calls fail fast for ``breaker_reset_s``, then one trial call decides.
* **Metering**: tokens per request (the API's usage figures, or an estimate of 4 characters per
  token when a server does not send them), cost from the pack's price table, recorded in a
  SQLite ledger (:mod:`edgepipe.cloud.ledger`); above the monthly budget nothing is sent.

Everything sent has passed the privacy gate first (:mod:`edgepipe.privacy.gate`); that is the
caller's job (:mod:`edgepipe.tiers.cloud`), and the audit log records each attempt.

Long on purpose: the deadline, the retries, the breaker, the bytes that may have left and the
stream reader are one state machine (an attempt must know whether the caller gave up, what
the earlier attempts sent, and when to cut a stream at a sentence); the ledger, the error
classification and the event parsing are separate functions or modules.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import httpx

from edgepipe.cloud.ledger import CostLedger
from edgepipe.core.deadline import Deadline
from edgepipe.core.errors import EdgepipeError
from edgepipe.pack.schema import CloudSpec

log = logging.getLogger(__name__)

_ATTEMPT_RESERVE_MS = 100.0
"""A retry starts only while at least this much of the deadline is left."""


class CloudError(EdgepipeError):
    """A cloud call failed; ``code`` says how (``cloud_timeout``, ``cloud_http_503``...)."""

    default_code = "cloud_failed"

    def __init__(self, message: str, *, code: str, retryable: bool, bytes_sent: int = 0) -> None:
        super().__init__(message, code=code)
        self.retryable = retryable
        self.bytes_sent = bytes_sent
        """Request bytes that left (or may have left) the device during the failed call, over
        all its attempts: 0 when nothing was sent (breaker open, no connection). Set by
        :meth:`CloudClient.chat`; the audit log records the request text when it is not 0."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CloudAnswer:
    """A completed cloud call."""

    text: str
    input_tokens: int
    output_tokens: int
    usage_estimated: bool
    cost: float
    ttft_ms: float
    total_ms: float
    attempts: int
    bytes_sent: int
    """Request bytes sent over all attempts (a retried request went out more than once)."""
    cut_at_deadline: bool = False
    """The stream was still going when the turn's time ran out: ``text`` is the complete
    sentences received by then."""


_STREAM_RESERVE_MS = 120.0
"""A stream still running this close to the deadline is cut at its last complete sentence."""
_SENTENCE_END = re.compile(r"[.!?…](?:[\"')\]]*)(?=\s|$)")


def complete_sentences(text: str, *, min_chars: int = 20) -> str:
    """``text`` up to its last sentence end ("" when that leaves under ``min_chars``)."""
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    cut = text[: ends[-1]].strip() if ends else ""
    return cut if len(cut) >= min_chars else ""


@dataclass(slots=True)
class _Sent:
    """What one call has sent so far (written by the worker thread, read by the caller)."""

    done: int = 0
    """Bytes of finished attempts whose request reached the server."""
    in_flight: int = 0
    """Bytes of the attempt in progress (it may or may not have gone out yet)."""

    @property
    def at_most(self) -> int:
        """Everything that may have left: the audit log errs on the side of recording it."""
        return self.done + self.in_flight


@dataclass(frozen=True, slots=True, kw_only=True)
class CloudConfig:
    """Where and how to call, after environment overrides."""

    base_url: str
    model: str
    api_key: str | None

    @property
    def host(self) -> str:
        """Destination host for the audit log (no path, no credentials)."""
        parts = urlsplit(self.base_url)
        return parts.hostname + (f":{parts.port}" if parts.port else "") if parts.hostname else "?"

    @classmethod
    def resolve(cls, spec: CloudSpec) -> CloudConfig | None:
        """The pack's settings with ``EDGEPIPE_CLOUD_*`` overrides; None when not configured."""
        base_url = os.environ.get("EDGEPIPE_CLOUD_BASE_URL") or spec.base_url
        model = os.environ.get("EDGEPIPE_CLOUD_MODEL") or spec.model or "default"
        if not base_url:
            return None
        key = os.environ.get("EDGEPIPE_CLOUD_API_KEY") or os.environ.get(spec.api_key_env)
        return cls(base_url=base_url.rstrip("/"), model=model, api_key=key)


def _delta_text(chunk: dict[str, Any]) -> str:
    """The content of one stream event; raises ``cloud_malformed`` for a shape that is not
    ``{"choices": [{"delta": {"content": ...}}]}`` (missing parts are fine: role and usage
    events have no content)."""
    choices = chunk.get("choices") or []
    if not isinstance(choices, list) or not all(isinstance(c, dict) for c in choices):
        raise CloudError(
            "stream event has malformed choices", code="cloud_malformed", retryable=True
        )
    text = ""
    for choice in choices:
        delta = choice.get("delta") or {}
        if not isinstance(delta, dict):
            raise CloudError(
                "stream event has a malformed delta", code="cloud_malformed", retryable=True
            )
        content = delta.get("content")
        if content:
            text += str(content)
    return text


def _usage_counts(usage: object) -> tuple[int, int] | None:
    """(prompt, completion) tokens from an API usage object; None when it has no usable figures
    (the caller then estimates them)."""
    if not isinstance(usage, dict):
        return None
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens", 0)
    if type(prompt) is not int or type(completion) is not int or min(prompt, completion) < 0:
        return None
    return prompt, completion


_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""Failures before a request could go out."""


def _classify_http_error(exc: Exception) -> CloudError:
    if isinstance(exc, CloudError):
        return exc
    if isinstance(exc, httpx.ConnectTimeout):
        return CloudError(f"connect timeout: {exc}", code="cloud_connect_timeout", retryable=True)
    if isinstance(exc, httpx.TimeoutException):
        return CloudError(f"timeout: {exc}", code="cloud_timeout", retryable=True)
    if isinstance(exc, httpx.ConnectError):
        return CloudError(f"cannot connect: {exc}", code="cloud_unreachable", retryable=True)
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        return CloudError(
            f"connection broken: {exc}", code="cloud_connection_reset", retryable=True
        )
    if isinstance(exc, httpx.HTTPError):
        return CloudError(f"HTTP error: {exc}", code="cloud_http_error", retryable=True)
    return CloudError(f"{type(exc).__name__}: {exc}", code="cloud_failed", retryable=False)


class CloudClient:
    """Calls one OpenAI-compatible endpoint under deadlines, retries and a circuit breaker."""

    def __init__(
        self, spec: CloudSpec, config: CloudConfig, *, ledger: CostLedger | None = None
    ) -> None:
        import pybreaker

        self.spec = spec
        self.config = config
        self.ledger = ledger
        self.breaker = pybreaker.CircuitBreaker(
            fail_max=spec.breaker_failures, reset_timeout=spec.breaker_reset_s, name="cloud"
        )
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self._http = httpx.Client(base_url=config.base_url, headers=headers)
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="edgepipe-cloud")

    def close(self) -> None:
        """Close the connections (a call still running in a worker fails at once), wait for the
        worker threads to end, and close the ledger."""
        self._http.close()
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self.ledger is not None:
            self.ledger.close()

    @property
    def breaker_state(self) -> str:
        return str(self.breaker.current_state)

    # ------------------------------------------------------------------ budget

    def estimate_cost(self, input_tokens: int, output_tokens: int) -> float:
        return (
            input_tokens / 1000 * self.spec.price_input_per_1k
            + output_tokens / 1000 * self.spec.price_output_per_1k
        )

    def budget_left(self) -> float:
        if self.ledger is None:
            return self.spec.monthly_budget
        return self.spec.monthly_budget - self.ledger.spent()

    # ------------------------------------------------------------------ calling

    def probe(self, timeout_s: float = 0.5) -> bool:
        """True when ``GET /models`` answers 200 within ``timeout_s``."""
        try:
            r = self._http.get("/models", timeout=httpx.Timeout(timeout_s))
            return r.status_code == 200
        except httpx.HTTPError:
            return False

    def chat(
        self,
        messages: list[dict[str, str]],
        *,
        deadline: Deadline,
        schema: Mapping[str, Any] | None = None,
        max_tokens: int | None = None,
    ) -> CloudAnswer:
        """One chat completion (with retries) through the breaker, within the deadline.

        ``schema``: the answer must be JSON of this schema (structured output, in the form the
        pack's ``cloud.structured_output`` names); ``max_tokens``: instead of the pack's.

        Raises :class:`CloudError` (``cloud_breaker_open``, ``cloud_deadline``, ``cloud_timeout``,
        ``cloud_http_503``, ``cloud_malformed``...).
        """
        import pybreaker

        if deadline.expired(reserve_ms=50):
            raise CloudError("no time left for the cloud", code="cloud_deadline", retryable=False)
        gave_up = threading.Event()
        sent = _Sent()
        payload = self._payload(messages, schema=schema, max_tokens=max_tokens)
        future = self._pool.submit(
            self._call_with_breaker, messages, payload, deadline, gave_up, sent
        )
        try:
            return future.result(timeout=max(0.0, deadline.remaining_s() - 0.02))
        except FutureTimeout:
            gave_up.set()  # the worker starts no further attempt (and stops backing off)
            future.cancel()
            raise CloudError(
                "the turn's deadline passed while waiting for the cloud",
                code="cloud_deadline",
                retryable=False,
                bytes_sent=sent.at_most,
            ) from None
        except pybreaker.CircuitBreakerError as exc:
            # open: nothing was sent; or this very call failed and tripped it
            raise CloudError(
                "circuit breaker open",
                code="cloud_breaker_open",
                retryable=False,
                bytes_sent=sent.at_most,
            ) from exc
        except CloudError as exc:
            exc.bytes_sent = sent.at_most
            raise
        except Exception as exc:  # a bug or a response shape nobody foresaw: never break a turn
            log.exception("cloud call failed unexpectedly")
            raise CloudError(
                f"unexpected {type(exc).__name__}: {exc}",
                code="cloud_failed",
                retryable=False,
                bytes_sent=sent.at_most,
            ) from exc

    def _call_with_breaker(
        self,
        messages: list[dict[str, str]],
        payload: bytes,
        deadline: Deadline,
        gave_up: threading.Event,
        sent: _Sent,
    ) -> CloudAnswer:
        result: CloudAnswer = self.breaker.call(
            self._call_with_retries, messages, payload, deadline, gave_up, sent
        )
        return result

    def _call_with_retries(
        self,
        messages: list[dict[str, str]],
        payload: bytes,
        deadline: Deadline,
        gave_up: threading.Event,
        sent: _Sent,
    ) -> CloudAnswer:
        """Attempts until one succeeds, the retries are spent, or the deadline is near.

        No attempt starts once the caller has given up (``gave_up``) or less than
        ``_ATTEMPT_RESERVE_MS`` is left, and no backoff sleeps into that reserve: a request that
        leaves after the turn has answered would be egress the audit log does not show, money
        spent on an answer nobody reads, and load on the server when the next turn needs it.
        """
        from tenacity import (
            Retrying,
            retry_if_exception,
            stop_after_attempt,
            wait_random_exponential,
        )
        from tenacity.stop import stop_base

        class _StopAtDeadline(stop_base):
            def __call__(self, retry_state: Any) -> bool:
                return gave_up.is_set() or deadline.expired(reserve_ms=_ATTEMPT_RESERVE_MS)

        backoff = wait_random_exponential(multiplier=0.05, max=0.4)

        def wait(retry_state: Any) -> float:
            room_s = deadline.remaining_s() - _ATTEMPT_RESERVE_MS / 1000
            return max(0.0, min(backoff(retry_state), room_s))

        def sleep(seconds: float) -> None:
            gave_up.wait(seconds)  # a backoff ends early when the caller gives up

        attempts = 0
        for attempt in Retrying(
            stop=stop_after_attempt(self.spec.retries + 1) | _StopAtDeadline(),
            wait=wait,
            sleep=sleep,
            retry=retry_if_exception(lambda e: isinstance(e, CloudError) and e.retryable),
            reraise=True,
        ):
            with attempt:
                attempts += 1
                answer = self._call_once(messages, payload, deadline, gave_up, sent)
                return replace(answer, attempts=attempts, bytes_sent=sent.done)
        raise CloudError(
            "no attempt was made", code="cloud_deadline", retryable=False
        )  # pragma: no cover

    def _call_once(
        self,
        messages: list[dict[str, str]],
        payload: bytes,
        deadline: Deadline,
        gave_up: threading.Event,
        sent: _Sent,
    ) -> CloudAnswer:
        """One attempt; counts its request in ``sent`` unless it never reached the server."""
        # In flight before looking at ``gave_up`` (which the caller sets before it reads
        # ``sent``): either this attempt sees that the caller gave up and sends nothing, or the
        # caller sees it in flight and the audit log records it.
        sent.in_flight = len(payload)
        reached = True
        try:
            if gave_up.is_set() or deadline.expired(reserve_ms=50):
                reached = False
                raise CloudError(
                    "the deadline passed before the attempt", code="cloud_deadline", retryable=False
                )
            return self._attempt(messages, payload, deadline)
        except CloudError as exc:
            reached = reached and not isinstance(exc.__cause__, _NOT_SENT)
            raise
        finally:
            if reached:
                sent.done += sent.in_flight
            sent.in_flight = 0

    def _payload(
        self,
        messages: list[dict[str, str]],
        *,
        schema: Mapping[str, Any] | None = None,
        max_tokens: int | None = None,
    ) -> bytes:
        body: dict[str, Any] = {
            "model": self.config.model,
            "messages": messages,
            "max_tokens": max_tokens or self.spec.max_tokens,
            "temperature": 0.2,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if schema is not None:
            body["temperature"] = 0.0
            if self.spec.structured_output == "json_object":
                # llama.cpp's server (and others): the schema beside the JSON mode
                body["response_format"] = {"type": "json_object", "schema": schema}
            else:
                body["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": "answer", "schema": schema, "strict": True},
                }
        return json.dumps(body).encode()

    def _attempt(
        self, messages: list[dict[str, str]], payload: bytes, deadline: Deadline
    ) -> CloudAnswer:
        from httpx_sse import SSEError, connect_sse

        remaining = max(0.05, deadline.remaining_s())
        timeout = httpx.Timeout(
            connect=min(self.spec.connect_timeout_s, remaining),
            read=min(self.spec.read_timeout_s, remaining),
            write=min(self.spec.read_timeout_s, remaining),
            pool=min(self.spec.connect_timeout_s, remaining),
        )
        t0 = time.perf_counter()
        first: float | None = None
        parts: list[str] = []
        usage: object = None
        try:
            with connect_sse(
                self._http,
                "POST",
                "/chat/completions",
                content=payload,
                timeout=timeout,
                headers={"Content-Type": "application/json"},
            ) as source:
                response = source.response
                if response.status_code != 200:
                    response.read()
                    code = response.status_code
                    raise CloudError(
                        f"HTTP {code}: {response.text[:200]}",
                        code=f"cloud_http_{code}",
                        retryable=code == 429 or code >= 500,
                    )
                content_type = response.headers.get("content-type", "")
                if "text/event-stream" not in content_type:
                    response.read()
                    return self._from_json(response.text, payload, t0, messages)
                done = False
                for event in source.iter_sse():
                    if done:
                        continue  # read to the end, so that the connection can be reused
                    if deadline.expired(reserve_ms=_STREAM_RESERVE_MS):
                        partial = complete_sentences("".join(parts))
                        if partial:  # what a streaming client is for: answer with what came
                            answer = self._meter(partial, usage, payload, t0, first, messages)
                            return replace(answer, cut_at_deadline=True)
                        raise CloudError(
                            "deadline passed during the stream",
                            code="cloud_deadline",
                            retryable=False,
                        )
                    if event.data.strip() == "[DONE]":
                        done = True
                        continue
                    try:
                        chunk = json.loads(event.data)
                    except json.JSONDecodeError as exc:
                        raise CloudError(
                            f"malformed stream event: {event.data[:80]!r}",
                            code="cloud_malformed",
                            retryable=True,
                        ) from exc
                    if not isinstance(chunk, dict):
                        raise CloudError(
                            "stream event is not an object", code="cloud_malformed", retryable=True
                        )
                    if chunk.get("usage"):
                        usage = chunk["usage"]
                    delta = _delta_text(chunk)
                    if delta:
                        if first is None:
                            first = time.perf_counter()
                        parts.append(delta)
        except (httpx.HTTPError, SSEError) as exc:
            if isinstance(exc, SSEError):
                raise CloudError(
                    f"malformed stream: {exc}", code="cloud_malformed", retryable=True
                ) from exc
            raise _classify_http_error(exc) from exc
        text = "".join(parts).strip()
        if not text:
            raise CloudError("empty answer", code="cloud_empty", retryable=True)
        return self._meter(text, usage, payload, t0, first, messages)

    def _from_json(
        self, raw: str, payload: bytes, t0: float, messages: list[dict[str, str]]
    ) -> CloudAnswer:
        try:
            data = json.loads(raw)
            text = str(data["choices"][0]["message"]["content"]).strip()
        except (json.JSONDecodeError, KeyError, IndexError, TypeError) as exc:
            raise CloudError(
                f"malformed response: {raw[:80]!r}", code="cloud_malformed", retryable=True
            ) from exc
        if not text:
            raise CloudError("empty answer", code="cloud_empty", retryable=True)
        return self._meter(text, data.get("usage"), payload, t0, None, messages)

    def _meter(
        self,
        text: str,
        usage: object,
        payload: bytes,
        t0: float,
        first: float | None,
        messages: list[dict[str, str]],
    ) -> CloudAnswer:
        end = time.perf_counter()
        counted = _usage_counts(usage)
        estimated = counted is None
        if counted is None:
            input_tokens = sum(len(m["content"]) for m in messages) // 4 + 8
            output_tokens = max(1, len(text) // 4)
        else:
            input_tokens, output_tokens = counted
        cost = self.estimate_cost(input_tokens, output_tokens)
        if self.ledger is not None:
            self.ledger.record(
                model=self.config.model,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                estimated=estimated,
                cost=cost,
            )
        return CloudAnswer(
            text=text,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            usage_estimated=estimated,
            cost=cost,
            ttft_ms=((first or end) - t0) * 1000,
            total_ms=(end - t0) * 1000,
            attempts=1,
            bytes_sent=len(payload),
        )
