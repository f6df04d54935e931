"""The learned router for a pack: its training set and its on-disk cache.

Training examples for a pack are each intent's examples (its own ``examples`` and
``examples.yaml``), ``router.template_samples`` random sentences from its templates, and the
pack's out-of-scope examples under the label ``oos``. The trained model is cached under
``$EDGEPIPE_HOME/cache/router/<key>/`` where the key hashes the pack's content hash, the router
settings and the model format: editing any pack file retrains, restarting does not.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from edgepipe.nlu.learned.augment import TemplateSampler
from edgepipe.nlu.learned.encoder import GRAPH_VERSION, SentenceEncoder
from edgepipe.nlu.learned.model import (
    FORMAT_VERSION,
    OOS_LABEL,
    IntentClassifier,
    Prediction,
    RouterConfig,
    TrainReport,
)
from edgepipe.pack.loader import Pack

log = logging.getLogger(__name__)


def pack_training_set(
    pack: Pack, *, samples_per_intent: int, seed: int = 0
) -> tuple[list[str], list[str]]:
    """(texts, labels) for training a pack's router."""
    sampler = TemplateSampler(pack, seed=seed)
    texts: list[str] = []
    labels: list[str] = []
    for name, intent in pack.intents.items():
        seen: set[str] = set()
        for text in [*intent.examples, *sampler.sentences(name, samples_per_intent)]:
            key = text.strip().lower()
            if key and key not in seen:
                seen.add(key)
                texts.append(text.strip())
                labels.append(name)
    for text in pack.out_of_scope_examples:
        texts.append(text.strip())
        labels.append(OOS_LABEL)
    return texts, labels


def router_config(pack: Pack) -> RouterConfig:
    spec = pack.spec.router
    return RouterConfig(use_encoder=spec.encoder, calibration=spec.calibration)


def cache_key(pack: Pack, config: RouterConfig) -> str:
    doc = json.dumps(
        {
            "pack": pack.content_hash,
            "config": config.__repr__(),
            "samples": pack.spec.router.template_samples,
            "format": FORMAT_VERSION,
            "encoder": GRAPH_VERSION if config.use_encoder else None,
        },
        sort_keys=True,
    )
    return hashlib.sha256(doc.encode()).hexdigest()[:20]


def default_cache_dir() -> Path:
    from edgepipe.core.paths import cache_home

    return cache_home() / "router"


@dataclass
class LearnedRouter:
    """A pack's trained classifier, and how it was obtained."""

    classifier: IntentClassifier
    trained: bool
    """True when this process trained it; False when it came from the cache."""
    seconds: float
    """Time to load (or train) it."""
    report: TrainReport | None = None
    path: Path | None = None

    def classify(self, text: str) -> Prediction:
        return self.classifier.predict(text)

    @classmethod
    def for_pack(
        cls,
        pack: Pack,
        *,
        encoder: SentenceEncoder | None = None,
        cache_dir: Path | None = None,
    ) -> LearnedRouter:
        """Load the pack's router from the on-disk cache, training (and caching) it when
        missing. ``encoder``: the sentence encoder the router's features use, when the pack's
        router settings ask for one (built here when not given)."""
        config = router_config(pack)
        key = cache_key(pack, config)
        directory = (cache_dir or default_cache_dir()) / key
        if config.use_encoder and encoder is None:
            encoder = SentenceEncoder()
        elif not config.use_encoder:
            encoder = None
        t0 = time.perf_counter()
        router: LearnedRouter | None = None
        if (directory / "model.json").exists():
            try:
                model = IntentClassifier.load(directory, encoder=encoder)
                router = cls(
                    classifier=model,
                    trained=False,
                    seconds=time.perf_counter() - t0,
                    path=directory,
                )
            except ValueError as exc:
                log.warning("router cache unusable, retraining: %s", exc)
        if router is None:
            texts, labels = pack_training_set(
                pack, samples_per_intent=pack.spec.router.template_samples
            )
            log.info("training the router for pack %s on %d examples", pack.name, len(texts))
            bulk = SentenceEncoder(threads=1) if encoder is not None else None
            model, report = IntentClassifier.train(texts, labels, encoder=bulk, config=config)
            model.encoder = encoder
            try:
                model.save(directory)
            except OSError as exc:
                log.warning("could not cache the router in %s: %s", directory, exc)
            router = cls(
                classifier=model,
                trained=True,
                seconds=time.perf_counter() - t0,
                report=report,
                path=directory,
            )
        return router
