"""Phonetic snapping of Whisper transcripts to the pack's commands (voice/snap.py)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from edgepipe.engine.engine import load_engine_pack
from edgepipe.nlu.templates import TemplateMatcher
from edgepipe.pack.loader import Pack
from edgepipe.voice.backends.pocketsphinx import sphinx_model_dir
from edgepipe.voice.snap import PhoneticSnapper, load_pronunciations

HOTEL = Path(__file__).resolve().parents[2] / "packs" / "hotel"


@pytest.fixture(scope="module")
def hotel() -> Pack:
    return load_engine_pack(HOTEL)


@pytest.fixture(scope="module")
def snapper(hotel: Pack) -> PhoneticSnapper:
    return PhoneticSnapper(hotel, load_pronunciations(sphinx_model_dir() / "cmudict-en-us.dict"))


@pytest.fixture(scope="module")
def matcher(hotel: Pack) -> TemplateMatcher:
    return TemplateMatcher(hotel)


def _reading(matcher: TemplateMatcher, hotel: Pack, text: str) -> tuple[str, dict[str, object]]:
    found = matcher.match(text, datetime(2026, 6, 1, 9, 30, tzinfo=hotel.timezone)).match
    assert found is not None, f"no template accepts {text!r}"
    return found.name, found.slot_values()


@pytest.mark.parametrize(
    ("heard", "intent", "slots"),
    [
        # what Whisper tiny made of espeak-ng's commands
        ("Give it down to 60%", "lights_dim", {"level": 60}),
        ("Set the seat at 24.", "thermostat_set", {"degrees": 24}),
        ("shot my curtains please", "blinds_close", {}),
        ("Turn off, Matty Lee.", "tv_off", {}),
        ("Check out time.", "checkout_time", {}),
    ],
)
def test_misheard_commands_snap_to_the_sentence_they_sound_like(
    snapper: PhoneticSnapper,
    matcher: TemplateMatcher,
    hotel: Pack,
    heard: str,
    intent: str,
    slots: dict[str, object],
) -> None:
    snap = snapper.snap(heard)
    assert snap is not None
    assert snap.intent == intent
    assert 0 <= snap.distance <= snapper.max_distance
    assert snap.margin >= snapper.margin
    # the snapped sentence is one the templates accept, with the numbers the guest said
    assert _reading(matcher, hotel, snap.text) == (intent, slots)


@pytest.mark.parametrize(
    "heard",
    [
        "turn of the lights",  # on or off: as near to both, so neither
        "What's the weather tomorrow?",
        "Tell me a joke",
        "who won the football game last night",
        "",
        "?!.",
        "xyzzy qwrtp zzzk",  # no dictionary word: letter-to-sound fallback, no crash
        "Team me off.",  # "tv off", but 4 edits in 7 phonemes is too far
    ],
)
def test_ambiguous_or_far_transcripts_do_not_snap(snapper: PhoneticSnapper, heard: str) -> None:
    assert snapper.snap(heard) is None


def test_numbers_are_taken_from_the_transcript_never_invented(
    snapper: PhoneticSnapper, matcher: TemplateMatcher, hotel: Pack
) -> None:
    snap = snapper.snap("I'd like the room at 18 degrees, please.")
    assert snap is not None and "18" in snap.text
    assert _reading(matcher, hotel, snap.text) == ("thermostat_set", {"degrees": 18})
    # a different count of numbers than the nearest sentence holds: no snap to it
    twice = snapper.snap("Set the seat at 24 25 26.")
    assert twice is None or "#" not in twice.text


def test_distance_and_margin_limits(hotel: Pack) -> None:
    words = load_pronunciations(sphinx_model_dir() / "cmudict-en-us.dict")
    strict = PhoneticSnapper(hotel, words, max_distance=0.05)
    assert strict.snap("Give it down to 60%") is None  # 3 of 34
    exact = strict.snap("tv off")  # the sentence itself
    assert exact is not None and exact.distance == 0
    lenient = PhoneticSnapper(hotel, words, max_distance=0.3)
    near = lenient.snap("Team me off.")
    assert near is not None and near.text == "tv off"
    wary = PhoneticSnapper(hotel, words, margin=50)
    assert wary.snap("Give it down to 60%") is None


def test_pronunciations_take_the_first_of_each_word(tmp_path: Path) -> None:
    path = tmp_path / "tiny.dict"
    path.write_text("tv T IY V IY\ntv(2) T EH L IY\noff AO F\n\nbroken\n", encoding="utf-8")
    assert load_pronunciations(path) == {"tv": ("T", "IY", "V", "IY"), "off": ("AO", "F")}


def test_nearest_lists_one_sentence_per_intent_nearest_first(
    snapper: PhoneticSnapper, matcher: TemplateMatcher, hotel: Pack
) -> None:
    # too far for a snap (0.286 > 0.2), but the first of the open path's rescoring candidates
    assert snapper.snap("Team me off.") is None
    found = snapper.nearest("Team me off.", 4, 0.45)
    assert found[0].text == "tv off" and found[0].intent == "tv_off"
    assert len({snap.intent for snap in found}) == len(found) <= 4
    distances = [snap.distance for snap in found]
    assert distances == sorted(distances) and distances[-1] <= 0.45
    for snap in found:
        assert _reading(matcher, hotel, snap.text)[0] == snap.intent
    # the distance limit drops the far ones; k limits the count
    assert [s.text for s in snapper.nearest("Team me off.", 4, 0.3)] == ["tv off"]
    assert len(snapper.nearest("Team me off.", 1, 0.45)) == 1
    # numbers come from the transcript, as in a snap
    heard = snapper.nearest("Could we get 3 more blind kids.", 4, 0.4)
    assert heard and heard[0].text == "could we get 3 more blankets"
    assert _reading(matcher, hotel, heard[0].text) == (
        "request_amenity",
        {"item": "blanket", "count": 3},
    )
    assert snapper.nearest("", 4, 0.4) == []


def test_said_around_keeps_the_skip_words_the_transcript_starts_and_ends_with(
    snapper: PhoneticSnapper,
) -> None:
    assert snapper.said_around("fresh bed linen", "Fresh madly didn't please.") == (
        "fresh bed linen please"
    )
    assert snapper.said_around("tv off", "Hey there, team me off now!") == "hey there tv off now"
    assert snapper.said_around("tv off", "Team me off, thank you.") == "tv off thank you"
    # inside the transcript, or only part of a word: not carried over
    assert snapper.said_around("tv off", "Team please me off") == "tv off"
    assert snapper.said_around("tv off", "Displeased team") == "tv off"
    # a transcript that is nothing but skip words keeps the last as its content
    assert snapper.said_around("tv off", "please") == "tv off"
