"""The classifier on small data with TF-IDF features only (fast), plus persistence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgepipe.nlu.learned.model import (
    IntentClassifier,
    RouterConfig,
    char_ngrams,
    clean_text,
    word_ngrams,
)

DATA = {
    "lights_on": [
        "turn on the lights",
        "lights on please",
        "switch the lamp on",
        "make it bright",
        "light up the room",
        "put the lights on",
    ],
    "lights_off": [
        "turn off the lights",
        "lights off",
        "switch the lamp off",
        "kill the lights",
        "make it dark",
        "put the lights out",
    ],
    "towels": [
        "more towels please",
        "bring me towels",
        "I need a towel",
        "send up some towels",
        "fresh towels",
        "towels to my room",
    ],
    "taxi": [
        "book a taxi",
        "call me a cab",
        "I need a ride to the airport",
        "get me a taxi",
        "order a cab please",
        "taxi to the station",
    ],
    "oos": [
        "what is the capital of France",
        "tell me a joke",
        "who won the game",
        "play some music",
        "how tall is everest",
        "what's the news",
    ],
}
TEXTS = [t for texts in DATA.values() for t in texts]
LABELS = [label for label, texts in DATA.items() for _ in texts]
CONFIG = RouterConfig(use_encoder=False, calibration="oos_recall:0.3", calibration_rounds=2)


@pytest.fixture(scope="module")
def model() -> IntentClassifier:
    trained, report = IntentClassifier.train(TEXTS, LABELS, encoder=None, config=CONFIG)
    assert report.n_train == len(TEXTS) and report.n_classes == 5
    return trained


def test_analyzers_match_scikit_learn() -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    for text in [
        "Turn ON the   lights, please!",
        "café-au-lait at 7:30",
        "a",
        "x" * 30,
        "¿Qué tal?",
    ]:
        assert word_ngrams(text) == TfidfVectorizer(ngram_range=(1, 2)).build_analyzer()(text)
        assert char_ngrams(text) == TfidfVectorizer(
            analyzer="char_wb", ngram_range=(2, 5)
        ).build_analyzer()(text)


def test_fast_path_matches_training_features(model: IntentClassifier) -> None:
    """Probabilities from the numpy decision path equal scikit-learn's on the training features."""
    from sklearn.linear_model import LogisticRegression

    from edgepipe.nlu.learned.model import _fit_tfidf

    _, _, x = _fit_tfidf(TEXTS)
    lr = LogisticRegression(C=CONFIG.C, max_iter=CONFIG.max_iter).fit(x, LABELS)
    expected = lr.predict_proba(x[:3])
    got = np.stack([model.probabilities(t) for t in TEXTS[:3]])
    assert np.allclose(got, expected, atol=2e-3)


@pytest.mark.parametrize(
    ("text", "cleaned"),
    [
        ("The people across the street can see right into my room.", None),
        ("Is checkout at 11 or 12?!", "Is checkout at 11 or 12"),
        ('"Lights," she said... "off"', "Lights she said off"),
        ("wi-fi code at 7:30, it's 3.5 degrees", "wi-fi code at 7:30 it's 3.5 degrees"),
        ("DROP TABLE rooms;--", "DROP TABLE rooms"),
        ("???", "???"),
        ("🙂", "🙂"),
    ],
)
def test_clean_text_drops_punctuation_outside_words(text: str, cleaned: str | None) -> None:
    assert clean_text(text) == (cleaned or text.rstrip("."))


def test_punctuation_a_recogniser_adds_does_not_move_the_decision(model: IntentClassifier) -> None:
    for text in ("please switch the lights on", "could you call a cab", "tell me another joke"):
        bare = model.probabilities(text)
        for written in (f"{text}.", f"{text[0].upper()}{text[1:]}?", f"{text}!!", f'"{text}"'):
            assert np.allclose(model.probabilities(written), bare, atol=1e-6), written


def test_predicts_and_abstains(model: IntentClassifier) -> None:
    assert model.predict("please switch the lights on").intent == "lights_on"
    assert model.predict("could you call a cab").intent == "taxi"
    joke = model.predict("tell me another joke")
    assert joke.abstained and joke.best == "oos"
    p = model.predict("lights")
    assert p.runner_up in {"lights_on", "lights_off"}
    assert 0.0 <= p.runner_up_confidence <= p.confidence <= 1.0


def test_save_and_load_round_trip(model: IntentClassifier, tmp_path: Path) -> None:
    model.save(tmp_path)
    loaded = IntentClassifier.load(tmp_path, encoder=None)
    assert loaded.classes == model.classes and loaded.threshold == model.threshold
    for text in ["turn the lights off", "book me a taxi", "what's up"]:
        assert np.allclose(loaded.probabilities(text), model.probabilities(text), atol=1e-3)


def test_damaged_model_is_a_clear_error(model: IntentClassifier, tmp_path: Path) -> None:
    model.save(tmp_path)
    (tmp_path / "model.json").write_text("{not json")
    with pytest.raises(ValueError, match="cannot load router model"):
        IntentClassifier.load(tmp_path, encoder=None)
    with pytest.raises(ValueError, match="cannot load router model"):
        IntentClassifier.load(tmp_path / "missing", encoder=None)


def test_training_input_checks() -> None:
    with pytest.raises(ValueError):
        IntentClassifier.train([], [], encoder=None, config=CONFIG)
    with pytest.raises(ValueError, match="two in-scope intents"):
        IntentClassifier.train(["a", "b"], ["x", "oos"], encoder=None, config=CONFIG)
    with pytest.raises(ValueError, match="no encoder"):
        IntentClassifier.train(TEXTS, LABELS, encoder=None, config=RouterConfig())


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_text_gives_a_probability_distribution(model: IntentClassifier, text: str) -> None:
    p = model.probabilities(text)
    assert p.shape == (5,) and np.isfinite(p).all() and abs(float(p.sum()) - 1.0) < 1e-4
