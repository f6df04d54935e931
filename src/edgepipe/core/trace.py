"""The per-stage trace of a turn while it runs.

A :class:`TraceRecorder` collects :class:`~edgepipe.core.types.Span` objects as stages finish and
is frozen into a :class:`~edgepipe.core.types.Trace` when the turn ends. It is the one mutable
object of a turn, owned by the turn (never shared between turns or threads).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from edgepipe.core.types import Outcome, Span, Trace


class TraceRecorder:
    """Collects spans while a turn runs; the pipeline freezes it into a :class:`Trace`."""

    __slots__ = ("_spans", "_t0")

    def __init__(self) -> None:
        self._t0 = time.perf_counter()
        self._spans: list[Span] = []

    def add(
        self,
        stage: str,
        outcome: Outcome,
        *,
        error_code: str | None = None,
        detail: str | None = None,
        start_ms: float | None = None,
    ) -> None:
        """Record a stage that was not timed with :meth:`span` (a failure noted after the fact)."""
        now = self.elapsed_ms()
        start = now if start_ms is None else start_ms
        self._spans.append(
            Span(
                stage=stage,
                start_ms=start,
                duration_ms=max(0.0, now - start),
                outcome=outcome,
                error_code=error_code,
                detail=detail,
            )
        )

    def elapsed_ms(self) -> float:
        """Milliseconds since the turn started."""
        return (time.perf_counter() - self._t0) * 1000.0

    @contextmanager
    def span(self, stage: str) -> Iterator[SpanHandle]:
        """Time a stage; the body sets the outcome on the yielded handle.

        An exception escaping the body records the span as ``error`` (with the error's code
        when it has one) and propagates.
        """
        handle = SpanHandle()
        start = self.elapsed_ms()
        try:
            yield handle
        except BaseException as exc:
            handle.outcome = Outcome.ERROR
            handle.error_code = handle.error_code or getattr(exc, "code", type(exc).__name__)
            raise
        finally:
            self._spans.append(
                Span(
                    stage=stage,
                    start_ms=start,
                    duration_ms=self.elapsed_ms() - start,
                    outcome=handle.outcome,
                    error_code=handle.error_code,
                    detail=handle.detail,
                )
            )

    def freeze(self) -> Trace:
        """The spans recorded so far as an immutable trace."""
        return Trace(spans=tuple(self._spans))


class SpanHandle:
    """Mutable outcome holder for a span that is still running."""

    __slots__ = ("detail", "error_code", "outcome")

    def __init__(self) -> None:
        self.outcome: Outcome = Outcome.OK
        self.error_code: str | None = None
        self.detail: str | None = None

    def set(
        self, outcome: Outcome, *, error_code: str | None = None, detail: str | None = None
    ) -> None:
        """Record how the stage ended."""
        self.outcome = outcome
        self.error_code = error_code
        self.detail = detail
