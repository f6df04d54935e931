"""Paraphrase augmentation of the router's training set: rule-written variants, their filter,
and how calibration and the cache treat them."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from edgepipe.nlu.learned import router as learned_router
from edgepipe.nlu.learned.model import OOS_LABEL, IntentClassifier, RouterConfig
from edgepipe.nlu.learned.paraphrase import STYLES, Paraphraser, augment
from edgepipe.nlu.learned.router import (
    cache_key,
    pack_training_data,
    pack_training_set,
    router_config,
    template_conflict,
)
from edgepipe.nlu.templates import TemplateMatcher
from edgepipe.pack.loader import Pack

TEXTS = [
    "turn on the lights",
    "Could you please turn the desk lamp on?",
    "it's way too dark in here",
    "what's the wifi password",
    "I'd like two more towels please",
    "wake me up at 7:30",
    "what is the capital of France",
]
LABELS = ["lights_on", "lights_on", "lights_on", "wifi", "towels", "wakeup", OOS_LABEL]


def test_the_same_seed_gives_the_same_variants_and_another_seed_others() -> None:
    first = augment(TEXTS, LABELS, per_example=3, seed=7)
    again = augment(TEXTS, LABELS, per_example=3, seed=7)
    other = augment(TEXTS, LABELS, per_example=3, seed=8)
    assert first == again
    assert first.texts[: len(TEXTS)] == TEXTS and first.labels[: len(TEXTS)] == LABELS
    assert first.n_originals == len(TEXTS) and first.n_variants > len(TEXTS)
    assert first.texts != other.texts


def test_an_examples_variants_do_not_depend_on_the_other_examples() -> None:
    """Editing one example of a pack leaves the other examples' variants as they were."""
    alone = augment(TEXTS[:1], LABELS[:1], per_example=2, seed=0)
    among = augment(TEXTS, LABELS, per_example=2, seed=0)
    of_first = [t for t, s in zip(among.texts, among.sources, strict=True) if s == 0]
    assert of_first == [t for t, s in zip(alone.texts, alone.sources, strict=True) if s == 0]


def test_variants_are_labelled_like_their_source_and_are_new_wording() -> None:
    data = augment(TEXTS, LABELS, per_example=4, seed=0)
    keys = set()
    for i, (text, label, source, style) in enumerate(
        zip(data.texts, data.labels, data.sources, data.styles, strict=True)
    ):
        key = " ".join(text.lower().replace(",", " ").replace("?", " ").split())
        assert key not in keys, text  # no duplicates, originals included
        keys.add(key)
        if i < len(TEXTS):
            assert (source, style) == (i, "")
        else:
            assert source < len(TEXTS) and label == LABELS[source] and style in STYLES


@pytest.mark.parametrize("style", STYLES)
def test_each_style_writes_what_it_promises(style: str) -> None:
    paraphraser = Paraphraser(0)
    outputs = [
        paraphraser.rewrite(text, style, random.Random(f"{style}{i}"))
        for i in range(20)
        for text in TEXTS
    ]
    assert all(out.strip() for out in outputs)
    if style == "asr":  # lower case, no punctuation, numbers as words, fillers or homophones
        assert all(out == out.lower() and "?" not in out and "," not in out for out in outputs)
        assert not any("7:30" in out for out in outputs)
        assert any(" seven thirty" in out for out in outputs)
        fillers = {"um", "uh", "like", "so", "er", "uhm", "hmm", "well"}
        assert sum(bool(fillers & set(out.split())) for out in outputs) > len(outputs) // 2
        assert any(" to more towel" in out or " too more towel" in out for out in outputs)
    elif style == "messy":  # typos, dropped words, chat spellings: other words
        for i, out in enumerate(outputs):
            source = TEXTS[i % len(TEXTS)]
            assert _words(out) != _words(source), (source, out)
    elif style == "polite":
        courtesy = (
            "please", "thank", "sorry", "excuse", "hello", "hi", "hey", "good", "mind", "kind",
            "could", "cheers", "appreciated", "possible", "chance", "would",
        )  # fmt: skip
        assert all(any(w in out.lower() for w in courtesy) for out in outputs)
    else:
        assert any(
            out.startswith(("I'd like you to", "I need you to", "any chance")) for out in outputs
        )
        assert any("can you" in out or "wondering" in out or "question" in out for out in outputs)


def _words(text: str) -> list[str]:
    return [w.strip("?,.!") for w in text.lower().split()]


def test_asr_writes_homophones_and_misheard_words() -> None:
    paraphraser = Paraphraser(0)
    outs = {
        paraphraser.rewrite("tell me the time till checkout", "asr", random.Random(i))
        for i in range(40)
    }
    assert any("till" not in o.split() or "tell" not in o.split() for o in outs)
    assert any(" tell checkout" in f" {o}" or "till me" in o for o in outs)


def test_unknown_styles_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown paraphrase styles"):
        Paraphraser(0, ("shouting",))


def test_rejected_variants_are_dropped_and_counted() -> None:
    data = augment(
        TEXTS, LABELS, per_example=2, seed=0, reject=lambda text, label: "um" in text.split()
    )
    assert data.rejected > 0
    assert not any("um" in t.split() for t in data.texts[len(TEXTS) :])
    assert augment(TEXTS, LABELS, per_example=0).texts == TEXTS


def test_no_paraphrase_carries_another_intents_template_match(hotel_pack: Pack) -> None:
    """A pack's variants (three close intents of the hotel pack and some out-of-scope lines, to
    keep it fast: matching takes ~10 ms a line): every style is there, and the templates read
    none of them as an intent other than its label."""
    names = ("lights_on", "lights_off", "lights_dim")
    spec = hotel_pack.spec.model_copy(
        update={
            "router": hotel_pack.spec.router.model_copy(
                update={"template_samples": 8, "paraphrases": 2}
            )
        }
    )
    pack = replace(
        hotel_pack,
        spec=spec,
        intents={name: hotel_pack.intents[name] for name in names},
        out_of_scope_examples=hotel_pack.out_of_scope_examples[:40],
    )
    config = router_config(pack)
    assert config.paraphrases == 2
    data = pack_training_data(pack, config)
    texts, labels = pack_training_set(pack, samples_per_intent=8)
    assert data.texts[: len(texts)] == texts and data.labels[: len(texts)] == labels
    assert data.n_variants > len(texts)
    variants = [i for i, style in enumerate(data.styles) if style]
    assert {data.styles[i] for i in variants} == set(STYLES)
    conflict = template_conflict(pack)
    for i in variants:
        assert not conflict(data.texts[i], data.labels[i]), (data.texts[i], data.labels[i])
    # the filter does catch words the templates give to another intent
    assert conflict("turn off the lights", "lights_on")
    assert conflict("um turn off the lights please", OOS_LABEL)
    assert not conflict("turn off the lights", "lights_off")
    assert (
        TemplateMatcher(pack).match("um what is the capital of France", _noon(pack)).match is None
    )
    unfiltered = augment(texts, labels, per_example=2, seed=config.seed)
    assert data.rejected == sum(
        conflict(t, label)
        for t, label, style in zip(
            unfiltered.texts, unfiltered.labels, unfiltered.styles, strict=True
        )
        if style
    )


def _noon(pack: Pack):  # type: ignore[no-untyped-def]
    from datetime import datetime

    return datetime(2026, 1, 7, 12, 0, tzinfo=pack.timezone)


def test_calibration_scores_the_originals_only() -> None:
    """With paraphrases (and their sources) calibration scores exactly the rows it scores
    without them: the simulated requests are real examples, never a variant, and a variant is
    not fitted while its source is scored."""
    from tests.nlu.learned.test_classifier import CONFIG
    from tests.nlu.learned.test_classifier import LABELS as L
    from tests.nlu.learned.test_classifier import TEXTS as T

    data = augment(T, L, per_example=2, seed=0)
    config = replace(CONFIG, paraphrases=2)
    _, plain = IntentClassifier.train(T, L, encoder=None, config=config)
    _, augmented = IntentClassifier.train(
        data.texts, data.labels, encoder=None, config=config, sources=data.sources
    )
    assert augmented.n_train == len(data.texts) > plain.n_train
    assert (augmented.calibration.n_in_scope, augmented.calibration.n_oos) == (
        plain.calibration.n_in_scope,
        plain.calibration.n_oos,
    )
    # scoring the variants too: more rows scored, none of them fitted while scored
    _, with_variants = IntentClassifier.train(
        data.texts,
        data.labels,
        encoder=None,
        config=replace(config, calibrate_on_paraphrases=True),
        sources=data.sources,
    )
    assert (
        with_variants.calibration.n_in_scope + with_variants.calibration.n_oos
        > plain.calibration.n_in_scope + plain.calibration.n_oos
    )
    # weighting variants down keeps training working (and weight 1 is the plain fit)
    _, weighted = IntentClassifier.train(
        data.texts,
        data.labels,
        encoder=None,
        config=replace(config, paraphrase_weight=0.25),
        sources=data.sources,
    )
    assert 0.0 < weighted.calibration.threshold < 1.0
    with pytest.raises(ValueError, match="sources"):
        IntentClassifier.train(T, L, encoder=None, config=config, sources=[0] * (len(T) - 1))
    with pytest.raises(ValueError, match="sources"):
        IntentClassifier.train(T, L, encoder=None, config=config, sources=[len(T)] * len(T))


def test_the_cache_key_follows_paraphrases_and_the_encoder(
    hotel_pack: Pack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A router trained with other paraphrase rules, another paraphrase count or another
    encoder is never loaded from the cache."""
    config = replace(router_config(hotel_pack), paraphrases=2)
    key = cache_key(hotel_pack, config)
    assert cache_key(hotel_pack, config) == key
    assert cache_key(hotel_pack, replace(config, paraphrases=0)) != key
    assert cache_key(hotel_pack, replace(config, paraphrases=3)) != key
    plain = replace(config, paraphrases=0)
    plain_key = cache_key(hotel_pack, plain)
    with monkeypatch.context() as patch:
        patch.setattr(learned_router, "PARAPHRASE_VERSION", "para-next")
        assert cache_key(hotel_pack, config) != key
        assert cache_key(hotel_pack, plain) == plain_key  # rules it does not use
    with monkeypatch.context() as patch:
        patch.setattr(learned_router, "ENCODER_ID", "another-encoder:1")
        assert cache_key(hotel_pack, config) != key
    # the TF-IDF-only router does not depend on the encoder
    tfidf = replace(config, use_encoder=False)
    with monkeypatch.context() as patch:
        before = cache_key(hotel_pack, tfidf)
        patch.setattr(learned_router, "ENCODER_ID", "another-encoder:1")
        assert cache_key(hotel_pack, tfidf) == before


def test_the_pack_setting_reaches_the_router_config(hotel_pack: Pack) -> None:
    spec = hotel_pack.spec.router
    assert router_config(hotel_pack).paraphrases == spec.paraphrases
    other = hotel_pack.spec.model_copy(
        update={"router": spec.model_copy(update={"paraphrases": 0})}
    )
    assert router_config(replace(hotel_pack, spec=other)).paraphrases == 0
    more = hotel_pack.spec.model_copy(update={"router": spec.model_copy(update={"paraphrases": 3})})
    assert router_config(replace(hotel_pack, spec=more)).paraphrases == 3
    # off unless asked for (docs/router.md: measured, they did not pay)
    assert RouterConfig().paraphrases == spec.paraphrases == 0
    assert pack_training_data(hotel_pack, router_config(hotel_pack)).n_variants == 0
