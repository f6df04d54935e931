"""Choosing the abstention threshold without test data.

The classifier's confidence for a request is its highest class probability. A request whose
confidence is below the threshold is treated as out of scope. The threshold is chosen on
*simulated* data built from the training set only:

* **in-scope scores**: out-of-fold confidences of the training examples (k-fold: each fold is
  scored by a model trained on the other folds), with whether the prediction was right;
* **out-of-scope scores**: confidences of examples whose whole intent was left out of training
  ("leave-intents-out": in each round a random quarter of the intents is held out, which is how
  unseen out-of-scope requests look to the model), plus out-of-fold confidences of any labelled
  out-of-scope examples (``oos``) the training set has.

On these, each candidate threshold gives a simulated in-scope accuracy (right and not
abstained) and out-of-scope recall (abstained). The chosen threshold is, by ``target``:

* ``balanced`` (default): the one maximising in-scope accuracy + out-of-scope recall;
* ``precision:P``: the lowest threshold at which accepted in-scope predictions are right at
  least P of the time (e.g. ``precision:0.95``);
* ``oos_recall:R``: the lowest threshold whose simulated out-of-scope recall reaches R.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True, kw_only=True)
class Calibration:
    """A chosen threshold and the simulated figures behind it."""

    threshold: float
    target: str
    in_scope_accuracy: float
    """Simulated share of in-scope examples right and not abstained at the threshold."""
    oos_recall: float
    """Simulated share of out-of-scope examples abstained at the threshold."""
    n_in_scope: int
    n_oos: int


def parse_target(target: str) -> tuple[str, float]:
    """``balanced``, ``precision:0.95`` or ``oos_recall:0.6`` -> (kind, value)."""
    if target == "balanced":
        return "balanced", 0.0
    kind, _, raw = target.partition(":")
    if kind not in {"precision", "oos_recall"} or not raw:
        raise ValueError(
            f"unknown calibration target {target!r} (balanced, precision:P, oos_recall:R)"
        )
    value = float(raw)
    if not 0.0 < value <= 1.0:
        raise ValueError(f"calibration target value must be in (0, 1], got {value}")
    return kind, value


def choose_threshold(
    in_scores: Sequence[float] | FloatArray,
    in_correct: Sequence[bool] | npt.NDArray[np.bool_],
    oos_scores: Sequence[float] | FloatArray,
    *,
    target: str = "balanced",
    grid: Sequence[float] | None = None,
) -> Calibration:
    """Pick the threshold on simulated in-scope and out-of-scope confidences."""
    kind, value = parse_target(target)
    s_in = np.asarray(in_scores, dtype=np.float64)
    ok = np.asarray(in_correct, dtype=bool)
    s_oos = np.asarray(oos_scores, dtype=np.float64)
    if s_in.size == 0:
        raise ValueError("no in-scope scores to calibrate on")
    thresholds = np.asarray(grid if grid is not None else np.round(np.arange(0.0, 1.0001, 0.01), 2))
    best: tuple[float, float, float, float] | None = None  # (objective, t, acc, rec)
    for t in thresholds:
        accepted = s_in >= t
        acc = float((ok & accepted).mean())
        rec = float((s_oos < t).mean()) if s_oos.size else 0.0
        if kind == "balanced":
            objective = acc + rec
        elif kind == "precision":
            precision = float(ok[accepted].mean()) if accepted.any() else 1.0
            if precision < value:
                continue
            objective = -t  # lowest threshold meeting the precision
        else:
            if rec < value:
                continue
            objective = -t
        if best is None or objective > best[0] + 1e-12:
            best = (objective, float(t), acc, rec)
    if best is None:  # target unreachable: the strictest threshold
        t = float(thresholds[-1])
        best = (
            0.0,
            t,
            float((ok & (s_in >= t)).mean()),
            float((s_oos < t).mean()) if s_oos.size else 0.0,
        )
    return Calibration(
        threshold=best[1],
        target=target,
        in_scope_accuracy=best[2],
        oos_recall=best[3],
        n_in_scope=int(s_in.size),
        n_oos=int(s_oos.size),
    )
