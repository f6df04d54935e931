"""The learned intent classifier: TF-IDF n-grams + MiniLM features -> logistic regression.

Features of a request are two blocks side by side:

* sparse TF-IDF of word 1-2-grams and character 2-5-grams (within words), sublinear tf, each
  block L2-normalised: the surface wording, robust to typos;
* the 1,536 MiniLM layer features (:mod:`edgepipe.nlu.learned.encoder`), scaled by ``alpha``: the
  meaning, robust to paraphrase.

One multinomial logistic regression is trained on both. Its highest class probability is the
confidence; the request is out of scope when the top class is the explicit ``oos`` class (packs
may train one from their out-of-scope examples) or the confidence is below the calibrated
threshold (:mod:`edgepipe.nlu.learned.calibrate`). The choice was made by measurement on HWU64 (see
docs/router.md): this combination beat TF-IDF alone, MiniLM alone, e5-small and score
averaging at every out-of-scope recall.

Training uses scikit-learn; deciding uses only numpy, the tokenizer and onnxruntime. A trained
model is saved as ``model.npz`` (weights, idf) + ``model.json`` (vocabularies, classes,
threshold, figures): no pickle.

Long on purpose: features, training, calibration scores, deciding and the file format are one
model's parts and change together (a new feature block changes all five); the optimiser,
calibration targets and the encoder are modules of their own.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edgepipe.nlu.learned.calibrate import Calibration, choose_threshold
from edgepipe.nlu.learned.encoder import SentenceEncoder

log = logging.getLogger(__name__)

OOS_LABEL = "oos"
FORMAT_VERSION = 2
_TOKEN = re.compile(r"(?u)\b\w\w+\b")
_SPACES = re.compile(r"\s\s+")
_LOOSE_PUNCTUATION = re.compile(r"(?<!\w)[^\w\s']+|[^\w\s']+(?!\w)")


def clean_text(text: str) -> str:
    """The request as the classifier sees it, in training and deciding alike: punctuation that
    is not inside a word or number goes ("room." -> "room", "is it?!" -> "is it"; "wi-fi",
    "7:30" and apostrophes stay). Speech recognisers punctuate at will: Whisper writes "The
    people across the street can see right into my room." with a full stop, and the stop alone
    took the router's confidence from 0.64 to 0.58. Text that is nothing but punctuation is
    kept as it is."""
    cleaned = " ".join(_LOOSE_PUNCTUATION.sub(" ", text).split())
    return cleaned or text


FloatArray = npt.NDArray[np.float32]


def word_ngrams(text: str) -> list[str]:
    """Word 1-2-grams, as scikit-learn's ``TfidfVectorizer(ngram_range=(1, 2))`` analyses."""
    tokens = _TOKEN.findall(text.lower())
    return tokens + [f"{a} {b}" for a, b in pairwise(tokens)]


def char_ngrams(text: str) -> list[str]:
    """Character 2-5-grams inside word boundaries, as ``analyzer='char_wb', ngram_range=(2, 5)``."""
    out: list[str] = []
    for word in _SPACES.sub(" ", text.lower()).split():
        padded = f" {word} "
        length = len(padded)
        for n in range(2, 6):
            offset = 0
            out.append(padded[0:n])
            while offset + n < length:
                offset += 1
                out.append(padded[offset : offset + n])
            if offset == 0:
                break
    return out


ANALYZERS: tuple[Callable[[str], list[str]], ...] = (word_ngrams, char_ngrams)


@dataclass(frozen=True, slots=True, kw_only=True)
class RouterConfig:
    """Training settings (part of the cache key)."""

    C: float = 10.0
    """Inverse L2 regularisation of the logistic regression."""
    alpha: float = 2.0
    """Weight of the MiniLM block against the TF-IDF block."""
    use_encoder: bool = True
    """False: TF-IDF only (the baseline)."""
    max_iter: int = 300
    calibration: str = "oos_recall:0.6"
    """Threshold target, see :func:`edgepipe.nlu.learned.calibrate.choose_threshold`."""
    calibration_rounds: int = 3
    """Leave-intents-out rounds used to simulate out-of-scope requests."""
    calibration_max_fit: int = 6000
    """Examples each calibration model is fitted on, at most (a random subset beyond that)."""
    seed: int = 0
    paraphrases: int = 0
    """Variants written per training example before training, by rules
    (:func:`edgepipe.nlu.learned.paraphrase.augment`; 0: none, the default: measured, they cost
    HWU64 out-of-scope recall and gained nothing on the hotel pack's held-out file, see
    docs/router.md). Applied by the callers that build the training set (a pack's router,
    ``edgepipe eval router``), which pass each variant's source to :meth:`IntentClassifier.train`
    so calibration keeps variants with their source."""
    paraphrase_weight: float = 1.0
    """Weight of a variant in the fit, against 1 for an original example."""
    calibrate_on_paraphrases: bool = False
    """Calibration scores the variants of its scored examples too (a scored example's variants
    are never fitted either way)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Prediction:
    """The classifier's reading of one request."""

    intent: str | None
    """Best in-scope intent, or None when the request is out of scope."""
    confidence: float
    """Probability of the best in-scope class."""
    best: str
    """Top class before abstention (may be ``oos``)."""
    top: str
    """Top in-scope class (what ``intent`` would be without abstention)."""
    runner_up: str | None
    runner_up_confidence: float
    threshold: float
    ranked: tuple[tuple[str, float], ...] = ()
    """The in-scope classes with their probabilities, best first (the first five)."""

    @property
    def abstained(self) -> bool:
        return self.intent is None


@dataclass(frozen=True, slots=True, kw_only=True)
class TrainReport:
    """What training measured."""

    n_train: int
    n_classes: int
    train_s: float
    encode_s: float
    calibration: Calibration
    config: RouterConfig = field(default_factory=RouterConfig)


@dataclass(frozen=True, slots=True)
class _Weights:
    classes: list[str]
    w_sparse: FloatArray
    w_dense: FloatArray | None
    bias: FloatArray


def fit_softmax_regression(
    x_sparse: Any,
    x_dense: FloatArray | None,
    y: npt.NDArray[Any],
    *,
    C: float,
    max_iter: int,
    sample_weight: FloatArray | None = None,
) -> _Weights:
    """Multinomial logistic regression on a sparse and a dense block, by L-BFGS.

    The objective is scikit-learn's ``LogisticRegression(C=C)`` (mean log-loss plus
    ``||W||^2 / (2 C n)``, intercepts unpenalised), evaluated block by block in float32: the
    sparse block through sparse products, the dense block through BLAS, minimised by
    :func:`edgepipe.nlu.learned.optim.lbfgs`. Putting the dense block into one CSR matrix for
    scikit-learn's solver made training on 15,000 examples take over three minutes.

    ``sample_weight``: each example's weight (None: all 1); the mean and the penalty are then
    taken over the total weight, so examples of weight 1 plus examples of weight 0 fit as the
    first alone would.
    """
    from edgepipe.nlu.learned.optim import lbfgs

    classes, yi = np.unique(np.asarray(y), return_inverse=True)
    n, k = len(yi), len(classes)
    xs_t = x_sparse.T.tocsr().astype(np.float32)  # (features, n): both products walk it in order
    xs = xs_t.T  # CSC view: X @ W reads W row by row, 4-5x faster than CSR for wide W
    xd = None if x_dense is None else np.ascontiguousarray(x_dense, dtype=np.float32)
    ds, dd = xs.shape[1], 0 if xd is None else xd.shape[1]
    onehot = np.zeros((n, k), dtype=np.float32)
    onehot[np.arange(n), yi] = 1.0
    if sample_weight is None:
        total = float(n)
        weight = None
    else:
        total = float(np.sum(sample_weight))
        weight = np.asarray(sample_weight, dtype=np.float32).reshape(n, 1)
        onehot_w = onehot * weight
    lam = np.float32(1.0 / (C * total))

    def unpack(w: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        return (
            w[: ds * k].reshape(ds, k),
            w[ds * k : (ds + dd) * k].reshape(dd, k),
            w[(ds + dd) * k :],
        )

    def objective(w: npt.NDArray[np.float32]) -> tuple[float, npt.NDArray[np.float32]]:
        ws, wd, b = unpack(w)
        z = xs @ ws + b
        if xd is not None:
            z += xd @ wd
        z -= z.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        penalty = 0.5 * float(lam) * float((ws * ws).sum() + (wd * wd).sum())
        if weight is None:
            loss = -float((onehot * log_p).sum()) / n + penalty
            g = (np.exp(log_p) - onehot) / np.float32(n)
        else:
            loss = -float((onehot_w * log_p).sum()) / total + penalty
            g = (np.exp(log_p) * weight - onehot_w) / np.float32(total)
        grads = [(xs_t @ g + lam * ws).ravel()]
        if xd is not None:
            grads.append((xd.T @ g + lam * wd).ravel())
        grads.append(g.sum(axis=0))
        return loss, np.concatenate(grads).astype(np.float32)

    result = lbfgs(objective, np.zeros((ds + dd + 1) * k, dtype=np.float32), max_iter=max_iter)
    ws, wd, b = unpack(result.x)
    log.debug(
        "softmax regression: n=%d classes=%d iterations=%d evaluations=%d",
        n, k, result.iterations, result.evaluations,
    )  # fmt: skip
    return _Weights(
        classes=[str(c) for c in classes],
        w_sparse=np.ascontiguousarray(ws),
        w_dense=np.ascontiguousarray(wd) if xd is not None else None,
        bias=np.ascontiguousarray(b),
    )


def _fit_tfidf(texts: Sequence[str]) -> tuple[list[dict[str, int]], list[FloatArray], Any]:
    from scipy import sparse
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizers = [
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, dtype=np.float32),
        TfidfVectorizer(
            analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, dtype=np.float32
        ),
    ]
    blocks = [v.fit_transform(texts) for v in vectorizers]
    vocabs = [{str(k): int(i) for k, i in v.vocabulary_.items()} for v in vectorizers]
    idfs = [v.idf_.astype(np.float32) for v in vectorizers]
    return vocabs, idfs, sparse.hstack(blocks).tocsr()


class IntentClassifier:
    """A trained router model."""

    def __init__(
        self,
        *,
        classes: Sequence[str],
        vocabs: list[dict[str, int]],
        idfs: list[FloatArray],
        w_sparse: FloatArray,
        w_dense: FloatArray | None,
        bias: FloatArray,
        threshold: float,
        config: RouterConfig,
        encoder: SentenceEncoder | None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        self.classes = tuple(classes)
        self._vocabs = vocabs
        self._idfs = idfs
        self._offsets = np.cumsum([0, *[len(v) for v in vocabs]])[:-1].tolist()
        self._w_sparse = w_sparse
        self._w_dense = w_dense
        self._bias = bias
        self.threshold = threshold
        self.config = config
        self.encoder = encoder
        self.meta = meta or {}
        self._oos_index = self.classes.index(OOS_LABEL) if OOS_LABEL in self.classes else None
        if config.use_encoder and (encoder is None or w_dense is None):
            raise ValueError("this model was trained with the sentence encoder; pass one")

    # ------------------------------------------------------------------ deciding

    def _sparse_logits(self, text: str) -> FloatArray:
        z = np.zeros(len(self.classes), dtype=np.float32)
        for analyze, vocab, idf, offset in zip(
            ANALYZERS, self._vocabs, self._idfs, self._offsets, strict=True
        ):
            counts: dict[int, int] = {}
            for gram in analyze(text):
                j = vocab.get(gram)
                if j is not None:
                    counts[j] = counts.get(j, 0) + 1
            if not counts:
                continue
            idx = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
            tf = np.fromiter(counts.values(), dtype=np.float32, count=len(counts))
            values = (1.0 + np.log(tf)) * idf[idx]
            values /= np.sqrt(float((values * values).sum()))
            z += values @ self._w_sparse[idx + offset]
        return z

    def probabilities(self, text: str, features: FloatArray | None = None) -> FloatArray:
        """Class probabilities for one request (``features``: precomputed encoder output of
        ``clean_text(text)``)."""
        text = clean_text(text)
        z = self._sparse_logits(text) + self._bias
        if self._w_dense is not None:
            assert self.encoder is not None or features is not None
            dense = features if features is not None else self.encoder.encode_one(text)  # type: ignore[union-attr]
            z = z + self.config.alpha * (dense @ self._w_dense)
        e = np.exp(z - z.max())
        p: FloatArray = (e / e.sum()).astype(np.float32)
        return p

    def predict(self, text: str, features: FloatArray | None = None) -> Prediction:
        """Classify one request, abstaining below the threshold or on the ``oos`` class."""
        return self._decide(self.probabilities(text, features))

    def _decide(self, p: FloatArray) -> Prediction:
        order = np.argsort(-p)
        best = int(order[0])
        in_scope = [int(i) for i in order if int(i) != self._oos_index]
        top = in_scope[0] if in_scope else best
        second = in_scope[1] if len(in_scope) > 1 else None
        confidence = float(p[top])
        abstain = best == self._oos_index or confidence < self.threshold
        return Prediction(
            intent=None if abstain else self.classes[top],
            confidence=confidence,
            best=self.classes[best],
            top=self.classes[top],
            runner_up=self.classes[second] if second is not None else None,
            runner_up_confidence=float(p[second]) if second is not None else 0.0,
            threshold=self.threshold,
            ranked=tuple((self.classes[i], float(p[i])) for i in in_scope[:5]),
        )

    # ------------------------------------------------------------------ training

    @classmethod
    def train(
        cls,
        texts: Sequence[str],
        labels: Sequence[str],
        *,
        encoder: SentenceEncoder | None,
        config: RouterConfig | None = None,
        features: FloatArray | None = None,
        sources: Sequence[int] | None = None,
    ) -> tuple[IntentClassifier, TrainReport]:
        """Fit on labelled texts (label ``oos`` for out-of-scope examples) and calibrate.

        ``sources``: for each text, the index of the text it was written from when it is a
        paraphrase (its own index otherwise; None: all are originals). Calibration then keeps
        every paraphrase on the same side as its source and scores originals only (unless
        ``config.calibrate_on_paraphrases``)."""
        config = config or RouterConfig()
        if len(texts) != len(labels) or not texts:
            raise ValueError("need the same number of texts and labels, and at least one")
        if sources is not None and (
            len(sources) != len(texts) or any(not 0 <= s <= i for i, s in enumerate(sources))
        ):
            raise ValueError("sources must give, for each text, the index of an earlier text")
        if len({label for label in labels if label != OOS_LABEL}) < 2:
            raise ValueError("need at least two in-scope intents to train a router")
        texts = [clean_text(text) for text in texts]
        t0 = time.perf_counter()
        if config.use_encoder and features is None:
            if encoder is None:
                raise ValueError("config.use_encoder is set but no encoder was given")
            features = encoder.encode_many(list(texts))
        encode_s = time.perf_counter() - t0
        y = np.asarray(labels)
        scores = calibration_scores(texts, y, features, config, sources)
        model = cls._fit(
            list(texts), y, features, config, encoder, 0.0, _sample_weights(sources, config)
        )
        log.debug("calibration and fit done after %.1f s", time.perf_counter() - t0)
        if scores[0]:
            calibration = choose_threshold(*scores, target=config.calibration)
        else:
            calibration = Calibration(
                threshold=0.5,
                target="default",
                in_scope_accuracy=0.0,
                oos_recall=0.0,
                n_in_scope=0,
                n_oos=0,
            )
        model.threshold = calibration.threshold
        train_s = time.perf_counter() - t0
        report = TrainReport(
            n_train=len(texts),
            n_classes=len(model.classes),
            train_s=train_s,
            encode_s=encode_s,
            calibration=calibration,
            config=config,
        )
        model.meta = {"train": {k: v for k, v in asdict(report).items() if k != "config"}}
        return model, report

    @classmethod
    def _fit(
        cls,
        texts: list[str],
        y: npt.NDArray[Any],
        features: FloatArray | None,
        config: RouterConfig,
        encoder: SentenceEncoder | None,
        threshold: float,
        sample_weight: FloatArray | None = None,
    ) -> IntentClassifier:
        vocabs, idfs, x_sparse = _fit_tfidf(texts)
        dense = config.alpha * features if config.use_encoder and features is not None else None
        weights = fit_softmax_regression(
            x_sparse,
            dense,
            y,
            C=config.C,
            max_iter=config.max_iter,
            sample_weight=sample_weight,
        )
        return cls(
            classes=weights.classes,
            vocabs=vocabs,
            idfs=idfs,
            w_sparse=weights.w_sparse,
            w_dense=weights.w_dense,
            bias=weights.bias,
            threshold=threshold,
            config=config,
            encoder=encoder,
        )

    # ------------------------------------------------------------------ persistence

    def save(self, directory: Path) -> None:
        """Write ``model.npz`` and ``model.json`` into ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, FloatArray] = {
            "w_sparse": self._w_sparse.astype(np.float16),
            "bias": self._bias,
        }
        if self._w_dense is not None:
            arrays["w_dense"] = self._w_dense
        for i, idf in enumerate(self._idfs):
            arrays[f"idf{i}"] = idf
        tmp = directory / "model.tmp.npz"
        np.savez(tmp, **arrays)  # type: ignore[arg-type]
        tmp.replace(directory / "model.npz")
        doc = {
            "format": FORMAT_VERSION,
            "classes": list(self.classes),
            "threshold": self.threshold,
            "config": asdict(self.config),
            "vocabs": self._vocabs,
            "meta": _jsonable(self.meta),
        }
        tmp_json = directory / "model.tmp.json"
        tmp_json.write_text(json.dumps(doc))
        tmp_json.replace(directory / "model.json")

    @classmethod
    def load(cls, directory: Path, *, encoder: SentenceEncoder | None) -> IntentClassifier:
        """Load a saved model; ``ValueError`` when it is missing, damaged or of another format."""
        try:
            doc = json.loads((directory / "model.json").read_text())
            if doc.get("format") != FORMAT_VERSION:
                raise ValueError(f"model format {doc.get('format')} is not {FORMAT_VERSION}")
            with np.load(directory / "model.npz") as npz:
                arrays = {k: npz[k] for k in npz.files}
            config = RouterConfig(**doc["config"])
            return cls(
                classes=doc["classes"],
                vocabs=[{str(k): int(v) for k, v in vocab.items()} for vocab in doc["vocabs"]],
                idfs=[arrays[f"idf{i}"] for i in range(len(doc["vocabs"]))],
                w_sparse=arrays["w_sparse"].astype(np.float32),
                w_dense=arrays.get("w_dense"),
                bias=arrays["bias"],
                threshold=float(doc["threshold"]),
                config=config,
                encoder=encoder if config.use_encoder else None,
                meta=doc.get("meta", {}),
            )
        except (OSError, KeyError, TypeError, json.JSONDecodeError, ValueError) as exc:
            raise ValueError(f"cannot load router model from {directory}: {exc}") from exc


def calibration_scores(
    texts: Sequence[str],
    y: npt.NDArray[Any],
    features: FloatArray | None,
    config: RouterConfig,
    sources: Sequence[int] | None = None,
) -> tuple[list[float], list[bool], list[float]]:
    """Leave-intents-out rounds: (in-scope confidences, whether right, out-of-scope confidences).

    See :mod:`edgepipe.nlu.learned.calibrate`. Each round fits a model without a quarter of the
    intents and scores held-out examples in one batch. A top class of ``oos`` scores 0.
    Paraphrases (rows whose ``sources`` entry is another row) are left out of a round's fit
    when their source is scored: a near copy of a scored example in the fit would make the
    simulated requests look more familiar than real ones. They are scored themselves only with
    ``config.calibrate_on_paraphrases``.
    """
    from scipy import sparse
    from sklearn.feature_extraction.text import TfidfVectorizer

    rng = np.random.default_rng(config.seed)
    intents = sorted({str(v) for v in y if v != OOS_LABEL})
    in_scores: list[float] = []
    in_correct: list[bool] = []
    oos_scores: list[float] = []
    per_round = max(1, len(intents) // 4)
    permuted = [str(v) for v in rng.permutation(intents)]
    rows = np.arange(len(y))
    source = rows if sources is None else np.asarray(sources, dtype=np.int64)
    sample_weight = _sample_weights(sources, config)
    original = source == rows
    is_oos = y == OOS_LABEL
    for r in range(config.calibration_rounds):
        start = (r * per_round) % len(intents)
        held = set((permuted + permuted)[start : start + per_round])
        if len(intents) - len(held) < 2:
            held = set(list(held)[: max(0, len(intents) - 2)])
        in_held = np.isin(y, list(held))
        rest = rows[~in_held & original]
        test_mask = rng.random(len(rest)) < 0.2
        eval_rows = rest[test_mask]
        scored = np.zeros(len(y), dtype=bool)
        scored[eval_rows] = True
        fit_rows = rows[~in_held & ~scored[source]]
        if len(fit_rows) > config.calibration_max_fit:
            fit_rows = np.sort(rng.choice(fit_rows, config.calibration_max_fit, replace=False))
        if len({str(v) for v in y[fit_rows] if v != OOS_LABEL}) < 2:
            continue
        if config.calibrate_on_paraphrases:
            score_rows = np.concatenate([rows[~in_held & scored[source]], rows[in_held]])
        else:
            score_rows = np.concatenate([eval_rows, rows[in_held & original]])
        vectorizers = [
            TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, dtype=np.float32),
            TfidfVectorizer(
                analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, dtype=np.float32
            ),
        ]
        fit_texts = [texts[i] for i in fit_rows]
        score_texts = [texts[i] for i in score_rows]
        x_fit = sparse.hstack([v.fit_transform(fit_texts) for v in vectorizers]).tocsr()
        x_score = sparse.hstack([v.transform(score_texts) for v in vectorizers]).tocsr()
        use_dense = config.use_encoder and features is not None
        dense_fit = config.alpha * features[fit_rows] if use_dense else None  # type: ignore[index]
        weights = fit_softmax_regression(
            x_fit,
            dense_fit,
            y[fit_rows],
            C=config.C,
            max_iter=config.max_iter,
            sample_weight=None if sample_weight is None else sample_weight[fit_rows],
        )
        z = x_score @ weights.w_sparse + weights.bias
        if weights.w_dense is not None and features is not None:
            z = z + (config.alpha * features[score_rows]) @ weights.w_dense
        z = np.exp(z - z.max(axis=1, keepdims=True))
        proba = z / z.sum(axis=1, keepdims=True)
        classes = weights.classes
        oos_col = classes.index(OOS_LABEL) if OOS_LABEL in classes else None
        for row, p in zip(score_rows, proba, strict=True):
            best = int(p.argmax())
            in_scope_p = p.copy()
            if oos_col is not None:
                in_scope_p[oos_col] = -1.0
            top = int(in_scope_p.argmax())
            confidence = 0.0 if best == oos_col else float(p[top])
            if in_held[row] or is_oos[row]:
                oos_scores.append(confidence)
            else:
                in_scores.append(confidence)
                in_correct.append(best != oos_col and classes[top] == y[row])
    return in_scores, in_correct, oos_scores


def _sample_weights(sources: Sequence[int] | None, config: RouterConfig) -> FloatArray | None:
    """Per-row fit weights: 1 for an original, ``config.paraphrase_weight`` for a variant
    (None when all weigh 1)."""
    if sources is None or config.paraphrase_weight == 1.0:
        return None
    source = np.asarray(sources, dtype=np.int64)
    variant = source != np.arange(len(source))
    if not variant.any():
        return None
    return np.where(variant, np.float32(config.paraphrase_weight), np.float32(1.0)).astype(
        np.float32
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
