"""Spelling and sound-alike correction towards the pack's words (:class:`Speller`), with the
English pronouncing dictionary pocketsphinx ships (:mod:`edgepipe.nlu.lexicon`)."""

from __future__ import annotations

from datetime import datetime

import pytest

from edgepipe.core.resources import Resources
from edgepipe.nlu.lexicon import dictionary_path, load_pronunciations, shared_pronunciations
from edgepipe.nlu.slots import SlotSpotter
from edgepipe.nlu.spelling import Speller
from edgepipe.nlu.templates import TemplateMatcher
from edgepipe.pack.loader import Pack

NOW = datetime(2026, 11, 25, 10, 0)
SOUNDS = {
    "gym": ("JH", "IH", "M"),
    "jim": ("JH", "IH", "M"),
    "to": ("T", "UW"),
    "too": ("T", "UW"),
    "two": ("T", "UW"),
    "light": ("L", "AY", "T"),
    "flight": ("F", "L", "AY", "T"),
}


@pytest.fixture(scope="module")
def english() -> dict[str, tuple[str, ...]]:
    path = dictionary_path()
    assert path is not None, "the voice extra (pocketsphinx) is part of the test install"
    return load_pronunciations(path)


def test_a_real_word_is_not_a_typo_but_a_sound_alike_is_read_as_the_pack_word() -> None:
    vocabulary = frozenset({"gym", "light", "pillow", "to", "two", "too", "close"})
    plain = Speller(vocabulary)
    heard = Speller(vocabulary, SOUNDS)
    # without a dictionary every word outside the vocabulary is fair game
    assert plain.correct("my flight is late") == "my light is late"
    assert heard.correct("my flight is late") == "my flight is late"
    assert plain.correct("the jim") == "the jim"  # three letters: too short to guess
    assert heard.correct("the jim") == "the gym"
    # a misspelling is corrected either way; two equally near words: kept
    assert heard.correct("Clsoe the pilow") == "close the pillow"
    assert Speller(frozenset({"cat", "bat"})).correct("xat") == "xat"
    assert Speller(frozenset({"lamp", "ramp"})).correct("damp") == "damp"


def test_sound_alikes_swap_one_word_at_a_time() -> None:
    speller = Speller(frozenset({"a", "table", "for", "to", "too", "two"}), SOUNDS)
    readings = speller.sound_alikes("A table for too")
    assert readings == ["a table for to", "a table for two"]
    assert speller.sound_alikes("a table for too", limit=1) == ["a table for to"]
    assert Speller(frozenset({"two"})).sound_alikes("a table for too") == []


def test_the_dictionary_is_read_once_per_resources(english: dict[str, tuple[str, ...]]) -> None:
    assert english["gym"] == english["jim"] and english["two"] == english["too"]
    assert "pilow" not in english and "flight" in english
    with Resources() as resources:
        first = shared_pronunciations(resources)
        assert first is not None and first is shared_pronunciations(resources)


@pytest.mark.parametrize(
    ("text", "intent", "slots", "how"),
    [
        ("what time does the jim open", "facility_hours", {"facility": "gym"}, "corrected"),
        ("set the temperature to twenty to degrees", "thermostat_set", {"degrees": 22},
         "sounds_like"),
        ("clsoe the blinds", "blinds_close", {}, "corrected"),
    ],
)  # fmt: skip
def test_the_matcher_reads_misspelt_and_misheard_words(
    hotel_pack: Pack,
    english: dict[str, tuple[str, ...]],
    text: str,
    intent: str,
    slots: dict[str, object],
    how: str,
) -> None:
    found = TemplateMatcher(hotel_pack, english).match(text, NOW)
    assert found.match is not None and found.match.name == intent
    assert found.how == how and found.match.confidence <= 0.9
    assert {k: found.match.slot_values().get(k) for k in slots} == slots


def test_the_matcher_does_not_invent_requests(
    hotel_pack: Pack, english: dict[str, tuple[str, ...]]
) -> None:
    matcher = TemplateMatcher(hotel_pack, english)
    for text in ("book me a flight to madrid", "who wrote pride and prejudice", "too late"):
        assert matcher.match(text, NOW).match is None, text


def test_the_spotter_finds_a_misspelt_value(
    hotel_pack: Pack, english: dict[str, tuple[str, ...]]
) -> None:
    spotter = SlotSpotter(hotel_pack, english)
    slots, missing = spotter.spot("request_amenity", "i need an other pilow, my neck hurts", NOW)
    assert slots["item"].value == "pillow" and not missing
    # a real word near a value is not that value
    slots, _ = spotter.spot("report_issue", "my flight home is broken", NOW)
    assert "item" not in slots or slots["item"].value != "lights"
