"""The pack router: encoder, training set, cache."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from edgepipe.core.resources import Resources
from edgepipe.nlu.learned.encoder import DIM, shared_encoder
from edgepipe.nlu.learned.model import OOS_LABEL, IntentClassifier
from edgepipe.nlu.learned.router import LearnedRouter, pack_training_set


def test_encoder_features_mean_something(resources: Resources) -> None:
    encoder = shared_encoder(resources)
    a, b, c = (
        encoder.encode_one(t)
        for t in ["turn off the lights", "switch the lamps off", "what is the capital of Peru"]
    )
    assert a.shape == (DIM,)
    assert abs(float(np.linalg.norm(a)) - 1.0) < 1e-3
    assert float(a @ b) > float(a @ c) + 0.1
    assert np.allclose(encoder.encode_one("turn off the lights"), a, atol=1e-6)
    assert encoder.encode_many(["turn off the lights", "switch the lamps off"]).shape == (2, DIM)


def test_training_set_has_examples_samples_and_negatives(hotel_pack) -> None:  # type: ignore[no-untyped-def]
    texts, labels = pack_training_set(hotel_pack, samples_per_intent=10)
    assert len(texts) == len(labels)
    assert labels.count(OOS_LABEL) == len(hotel_pack.out_of_scope_examples) >= 200
    assert set(labels) == {*hotel_pack.intents, OOS_LABEL}
    assert all(labels.count(name) >= 30 for name in hotel_pack.intents)


def test_router_is_cached_on_disk_and_retrained_when_damaged(
    hotel_pack,
    shared_cache: Path,
    tmp_path: Path,
    resources: Resources,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # type: ignore[no-untyped-def]
    encoder = shared_encoder(resources)
    first = LearnedRouter.for_pack(hotel_pack, encoder=encoder)  # trained once per session
    assert first.path is not None and (first.path / "model.npz").exists()
    cache = tmp_path / "router-cache"  # a copy of the session's, to damage
    shutil.copytree(first.path, cache / first.path.name)

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cached router must be loaded, not trained")

    # what "cached" means: loaded without any training (how long loading takes is measured by
    # bench/bench_router.py, router_load_s, not asserted here)
    with monkeypatch.context() as patch:
        patch.setattr(IntentClassifier, "train", no_training)
        loaded = LearnedRouter.for_pack(hotel_pack, encoder=encoder, cache_dir=cache)
    assert not loaded.trained and loaded.report is None
    assert loaded.path == cache / first.path.name
    assert loaded.classifier.classes == first.classifier.classes
    text = "I'd like the curtains drawn please"
    assert loaded.classify(text).top == first.classify(text).top
    (loaded.path / "model.json").write_text("garbage")  # type: ignore[operator]
    retrained = LearnedRouter.for_pack(hotel_pack, encoder=encoder, cache_dir=cache)
    assert retrained.trained and retrained.report is not None
    assert retrained.report.calibration.threshold == first.classifier.threshold
