"""The learned router for a pack: its training set and its on-disk cache.

Training examples for a pack are each intent's examples (its own ``examples`` and
``examples.yaml``), ``router.template_samples`` random sentences from its templates, and the
pack's out-of-scope examples under the label ``oos``; then ``router.paraphrases`` variants of
each, written by rules in the wording guests use (:func:`edgepipe.nlu.learned.paraphrase.augment`),
less those the pack's templates read as another intent. The trained model is cached under
``$EDGEPIPE_HOME/cache/router/<key>/`` where the key hashes the pack's content hash, the router
settings, the paraphrase rules' version, the encoder and the model format: editing any pack
file retrains, restarting does not.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from edgepipe.nlu.learned.augment import TemplateSampler
from edgepipe.nlu.learned.encoder import ENCODER_ID, SentenceEncoder
from edgepipe.nlu.learned.model import (
    FORMAT_VERSION,
    OOS_LABEL,
    IntentClassifier,
    Prediction,
    RouterConfig,
    TrainReport,
)
from edgepipe.nlu.learned.paraphrase import PARAPHRASE_VERSION, Augmented, augment
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


def template_conflict(pack: Pack) -> Callable[[str, str], bool]:
    """``conflict(text, label)``: True when the pack's templates read ``text`` as an intent
    other than ``label`` (any intent, for ``oos``). Such a paraphrase would teach the
    classifier the opposite of what a turn does with those words."""
    from edgepipe.nlu.templates import TemplateMatcher

    matcher = TemplateMatcher(pack)
    noon = datetime(2026, 1, 7, 12, 0, tzinfo=pack.timezone)  # fixed: deterministic slots

    def conflict(text: str, label: str) -> bool:
        match = matcher.match(text, noon).match
        return match is not None and match.name != label

    return conflict


def pack_training_data(pack: Pack, config: RouterConfig) -> Augmented:
    """The pack's training set (:func:`pack_training_set`) with ``config.paraphrases``
    variants of every example, filtered against the templates (:func:`template_conflict`)."""
    texts, labels = pack_training_set(pack, samples_per_intent=pack.spec.router.template_samples)
    reject = template_conflict(pack) if config.paraphrases > 0 else None
    return augment(texts, labels, per_example=config.paraphrases, seed=config.seed, reject=reject)


def router_config(pack: Pack) -> RouterConfig:
    spec = pack.spec.router
    return RouterConfig(
        use_encoder=spec.encoder, calibration=spec.calibration, paraphrases=spec.paraphrases
    )


def cache_key(pack: Pack, config: RouterConfig) -> str:
    doc = json.dumps(
        {
            "pack": pack.content_hash,
            "config": config.__repr__(),
            "samples": pack.spec.router.template_samples,
            "format": FORMAT_VERSION,
            "encoder": ENCODER_ID if config.use_encoder else None,
            "paraphrases": PARAPHRASE_VERSION if config.paraphrases > 0 else None,
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
            data = pack_training_data(pack, config)
            log.info(
                "training the router for pack %s on %d examples (%d paraphrases, %d dropped "
                "for another intent's template)",
                pack.name, len(data.texts), data.n_variants, data.rejected,
            )  # fmt: skip
            bulk = SentenceEncoder(threads=1) if encoder is not None else None
            model, report = IntentClassifier.train(
                data.texts, data.labels, encoder=bulk, config=config, sources=data.sources
            )
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
