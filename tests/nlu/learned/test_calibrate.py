from __future__ import annotations

import numpy as np
import pytest

from edgepipe.nlu.learned.calibrate import choose_threshold, parse_target


def test_balanced_threshold_separates_the_two_populations() -> None:
    rng = np.random.default_rng(0)
    in_scores = rng.uniform(0.6, 1.0, 500)
    oos_scores = rng.uniform(0.0, 0.5, 500)
    cal = choose_threshold(in_scores, np.ones(500, dtype=bool), oos_scores, target="balanced")
    assert 0.5 <= cal.threshold <= 0.6
    assert cal.in_scope_accuracy == 1.0 and cal.oos_recall == 1.0


def test_oos_recall_target_is_the_lowest_threshold_reaching_it() -> None:
    oos = np.linspace(0.0, 0.99, 100)  # recall at t is the share below t
    cal = choose_threshold([0.9, 0.95], [True, True], oos, target="oos_recall:0.6")
    assert cal.threshold == pytest.approx(0.6, abs=0.011)
    assert cal.oos_recall >= 0.6


def test_precision_target() -> None:
    scores = [0.2, 0.3, 0.4, 0.9, 0.95]
    correct = [False, False, True, True, True]
    cal = choose_threshold(scores, correct, [], target="precision:0.99")
    assert 0.3 < cal.threshold <= 0.4


def test_unreachable_target_gives_the_strictest_threshold() -> None:
    cal = choose_threshold([0.5], [True], [0.999], target="oos_recall:1.0", grid=[0.0, 0.5, 0.9])
    assert cal.threshold == 0.9


@pytest.mark.parametrize(
    "bad", ["", "precision", "precision:", "recall:0.5", "oos_recall:1.5", "precision:x"]
)
def test_bad_targets(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_target(bad)


def test_needs_in_scope_scores() -> None:
    with pytest.raises(ValueError, match="no in-scope scores"):
        choose_threshold([], [], [0.1])
