"""Router evaluation: train from scratch, calibrate without test data, measure on the test file.

``TRAIN`` is a JSONL file (its intents are the label set; lines labelled ``oos`` train the
explicit out-of-scope class) or a pack folder (its training set, see
:func:`edgepipe.nlu.learned.router.pack_training_set`; the pack's templates are then tried first on
every test line, as in a real turn). In ``TEST`` the label ``oos`` marks out-of-scope lines.

Metrics (rates are fractions 0-1):

* ``in_scope_accuracy``: share of non-oos test lines given the right intent and not abstained;
* ``oos_recall``: share of oos lines abstained; ``oos_precision``: share of abstentions that
  were oos lines;
* ``macro_f1``: macro F1 over the test labels, abstention counting as the label ``oos``;
* ``latency_ms_p50/p95``: one decision at a time, request text in, decision out (sentence
  encoding included; with a pack, template matching too).

With ``RouterConfig.paraphrases`` (``--paraphrases N``; a pack's ``router.paraphrases``) the
training set gets that many rule-written variants of each line before training, as a pack's
router does: ``n_paraphrases`` of ``n_train``, written and filtered in ``augment_s`` (not part
of ``train_s``). The baseline (``--baseline``) is trained on the lines alone.

The threshold sweep re-scores the same predictions at other thresholds.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from edgepipe.eval.datasets import OOS, Example
from edgepipe.eval.stats import percentile
from edgepipe.nlu.learned.model import OOS_LABEL, IntentClassifier, RouterConfig

SWEEP = tuple(round(t, 2) for t in np.arange(0.0, 1.0, 0.05))


@dataclass(frozen=True, slots=True)
class Decision:
    """One test line's outcome before thresholding."""

    label: str
    template: str | None
    """Intent from a template match (pack mode), which is never abstained."""
    best: str
    """The classifier's top class (may be ``oos``)."""
    best_in_scope: str
    confidence: float
    ms: float

    def predicted(self, threshold: float) -> str:
        if self.template is not None:
            return self.template
        if self.best == OOS_LABEL or self.confidence < threshold:
            return OOS
        return self.best_in_scope


def score(decisions: Sequence[Decision], threshold: float) -> dict[str, float]:
    """The four rates at one threshold."""
    from sklearn.metrics import f1_score

    pred = [d.predicted(threshold) for d in decisions]
    gold = [d.label for d in decisions]
    ins = [i for i, g in enumerate(gold) if g != OOS]
    oos = [i for i, g in enumerate(gold) if g == OOS]
    abstained = [i for i, p in enumerate(pred) if p == OOS]
    return {
        "threshold": threshold,
        "in_scope_accuracy": sum(pred[i] == gold[i] for i in ins) / len(ins) if ins else 0.0,
        "oos_recall": sum(pred[i] == OOS for i in oos) / len(oos) if oos else 0.0,
        "oos_precision": sum(gold[i] == OOS for i in abstained) / len(abstained)
        if abstained
        else 0.0,
        "macro_f1": float(
            f1_score(gold, pred, labels=sorted(set(gold)), average="macro", zero_division=0)
        ),
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class RouterEvaluation:
    """Everything ``edgepipe eval router`` reports."""

    metrics: dict[str, float]
    sweep: list[dict[str, float]]
    threshold: float
    train_s: float
    n_train: int
    n_test: int
    latency_ms_p50: float
    latency_ms_p95: float
    load_s: float
    calibration: dict[str, Any]
    templates_matched: int = 0
    baseline_sweep: list[dict[str, float]] = field(default_factory=list)
    n_paraphrases: int = 0
    """Of ``n_train``, the rule-written variants (see ``RouterConfig.paraphrases``)."""
    augment_s: float = 0.0
    """Of ``train_s``, the time spent writing and filtering them."""
    decisions: list[Decision] = field(default_factory=list)
    """Each test line's outcome, in order (to score parts of the test set: :func:`score`)."""

    def summary(self) -> dict[str, Any]:
        """The ``--json`` object."""
        return {
            "in_scope_accuracy": round(self.metrics["in_scope_accuracy"], 4),
            "oos_recall": round(self.metrics["oos_recall"], 4),
            "oos_precision": round(self.metrics["oos_precision"], 4),
            "macro_f1": round(self.metrics["macro_f1"], 4),
            "latency_ms_p50": round(self.latency_ms_p50, 3),
            "latency_ms_p95": round(self.latency_ms_p95, 3),
            "train_s": round(self.train_s, 2),
            "n_train": self.n_train,
            "n_paraphrases": self.n_paraphrases,
            "augment_s": round(self.augment_s, 2),
            "n_test": self.n_test,
            "threshold": self.threshold,
            "calibration": self.calibration,
            "templates_matched": self.templates_matched,
            "sweep": [{k: round(v, 4) for k, v in row.items()} for row in self.sweep],
            **(
                {
                    "baseline_sweep": [
                        {k: round(v, 4) for k, v in row.items()} for row in self.baseline_sweep
                    ]
                }
                if self.baseline_sweep
                else {}
            ),
        }


def _decide_all(
    model: IntentClassifier,
    test: Sequence[Example],
    matcher: Any = None,
    now: datetime | None = None,
) -> list[Decision]:
    for ex in test[:10]:  # warm-up
        model.predict(ex.text)
    out: list[Decision] = []
    for ex in test:
        t0 = time.perf_counter()
        template = None
        if matcher is not None:
            result = matcher.match(ex.text, now)
            template = result.match.name if result.match is not None else None
        if template is None:
            p = model.predict(ex.text)
            best, best_in, conf = p.best, p.top, p.confidence
        else:
            best, best_in, conf = template, template, 1.0
        ms = (time.perf_counter() - t0) * 1000
        out.append(
            Decision(
                label=ex.intent,
                template=template,
                best=best,
                best_in_scope=best_in,
                confidence=conf,
                ms=ms,
            )
        )
    return out


def evaluate_router(
    train: Path,
    test: Sequence[Example],
    *,
    config: RouterConfig | None = None,
    baseline: bool = False,
) -> RouterEvaluation:
    """Train on ``train`` (JSONL or pack folder), calibrate, and measure on ``test``."""
    from edgepipe.eval.datasets import load_examples
    from edgepipe.nlu.learned.encoder import SentenceEncoder
    from edgepipe.nlu.learned.paraphrase import augment

    matcher = None
    now = None
    if train.is_dir():
        from edgepipe.engine.engine import load_engine_pack
        from edgepipe.nlu.learned.router import pack_training_data, router_config
        from edgepipe.nlu.templates import TemplateMatcher

        pack = load_engine_pack(train)
        config = config or router_config(pack)
        t0 = time.perf_counter()
        data = pack_training_data(pack, config)
        matcher = TemplateMatcher(pack)
        now = datetime(2026, 11, 25, 10, 0, tzinfo=pack.timezone)
    else:
        rows = load_examples(train)
        config = config or RouterConfig()
        t0 = time.perf_counter()
        data = augment(
            [r.text for r in rows],
            [r.intent for r in rows],
            per_example=config.paraphrases,
            seed=config.seed,
        )
    augment_s = time.perf_counter() - t0
    texts, labels = data.texts, data.labels
    t0 = time.perf_counter()
    encoder = SentenceEncoder(threads=2) if config.use_encoder else None
    load_s = time.perf_counter() - t0
    bulk = SentenceEncoder(threads=1) if config.use_encoder else None
    model, report = IntentClassifier.train(
        texts, labels, encoder=bulk, config=config, sources=data.sources
    )
    model.encoder = encoder
    decisions = _decide_all(model, test, matcher, now)
    latencies = sorted(d.ms for d in decisions)
    baseline_sweep: list[dict[str, float]] = []
    if baseline:
        base_cfg = RouterConfig(
            use_encoder=False, C=config.C, calibration=config.calibration, seed=config.seed
        )
        base, _ = IntentClassifier.train(
            data.texts[: data.n_originals],
            data.labels[: data.n_originals],
            encoder=None,
            config=base_cfg,
        )
        base_decisions = _decide_all(base, test, matcher, now)
        baseline_sweep = [score(base_decisions, t) for t in SWEEP]
    return RouterEvaluation(
        metrics=score(decisions, model.threshold),
        sweep=[score(decisions, t) for t in SWEEP],
        threshold=model.threshold,
        train_s=report.train_s,
        n_train=len(texts),
        n_paraphrases=data.n_variants,
        augment_s=augment_s,
        n_test=len(test),
        latency_ms_p50=statistics.median(latencies),
        latency_ms_p95=percentile(latencies, 0.95),
        load_s=load_s,
        calibration={
            "target": report.calibration.target,
            "simulated_in_scope_accuracy": round(report.calibration.in_scope_accuracy, 4),
            "simulated_oos_recall": round(report.calibration.oos_recall, 4),
            "n_in_scope": report.calibration.n_in_scope,
            "n_oos": report.calibration.n_oos,
        },
        templates_matched=sum(d.template is not None for d in decisions),
        baseline_sweep=baseline_sweep,
        decisions=decisions,
    )


def plot(evaluation: RouterEvaluation, out: Path, *, title: str) -> None:
    """In-scope accuracy against out-of-scope recall across thresholds (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=110)
    for sweep, label, style in (
        (evaluation.sweep, "edgepipe router", "o-"),
        (evaluation.baseline_sweep, "TF-IDF + logistic regression", "s--"),
    ):
        if not sweep:
            continue
        xs = [row["oos_recall"] for row in sweep]
        ys = [row["in_scope_accuracy"] for row in sweep]
        ax.plot(xs, ys, style, markersize=3, label=label)
        for row in sweep[::4]:
            ax.annotate(
                f"{row['threshold']:.2f}", (row["oos_recall"], row["in_scope_accuracy"]), fontsize=6
            )
    m = evaluation.metrics
    ax.plot(
        [m["oos_recall"]],
        [m["in_scope_accuracy"]],
        "r*",
        markersize=12,
        label=f"calibrated ({evaluation.threshold:.2f})",
    )
    ax.set_xlabel("out-of-scope recall")
    ax.set_ylabel("in-scope accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
