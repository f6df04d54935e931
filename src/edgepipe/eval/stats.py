"""Summary statistics shared by the evaluation commands and the benchmarks."""

from __future__ import annotations

from collections.abc import Iterable


def percentile(values: Iterable[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0-1): the sorted value at ``round(q * (n - 1))``."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]
