"""Choosing the transcript, with a scripted open transcriber (no audio, no Whisper) and the
hotel pack's real text understanding (templates, router, snapper)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

import numpy as np
import pytest

from edgepipe.engine.engine import Engine
from edgepipe.engine.understanding import Understanding
from edgepipe.nlu.learned.model import Prediction
from edgepipe.nlu.templates import TemplateResult
from edgepipe.pack.loader import Pack
from edgepipe.voice.arbitration import Arbitrator
from edgepipe.voice.checks import TextChecks
from edgepipe.voice.contracts import (
    Capability,
    EncodedAudio,
    GrammarHypothesis,
    OpenHypothesis,
    OpenTranscriber,
    Samples,
)
from edgepipe.voice.open_pick import OpenPicker
from edgepipe.voice.session import load_snapper
from edgepipe.voice.snap import PhoneticSnapper

SILENCE = np.zeros(16000, dtype=np.int16)


class ScriptedTranscriber(OpenTranscriber):
    """Hands out scripted hypotheses, one per :meth:`transcribe`, and scores sentences from a
    table (unknown sentences score -50). Records every call."""

    name = "scripted"

    def __init__(
        self,
        *hypotheses: OpenHypothesis,
        scores: dict[str, float] | None = None,
        capabilities: Iterable[Capability] = tuple(Capability),
    ) -> None:
        self.hypotheses = list(hypotheses)
        self.scores = scores or {}
        self.capabilities = frozenset(capabilities)
        self.calls: list[tuple[str, ...]] = []

    def transcribe(
        self, samples: Samples, *, audio: EncodedAudio | None = None, context: str = ""
    ) -> OpenHypothesis:
        self.calls.append(("transcribe", context))
        if not self.hypotheses:
            raise AssertionError("no more scripted hypotheses")
        return self.hypotheses.pop(0)

    def encode(self, samples: Samples) -> EncodedAudio:
        self.calls.append(("encode",))
        return EncodedAudio(output=None, frames=len(samples) // 160, window=len(samples) // 160)

    def sentence_scores(self, samples: Samples, sentences: list[str]) -> list[float]:
        self.calls.append(("sentence_scores", *sentences))
        return [self.scores.get(sentence, -50.0) for sentence in sentences]

    def called(self, what: str) -> int:
        return sum(call[0] == what for call in self.calls)


def heard(text: str, score: float, *alternatives: tuple[str, float]) -> OpenHypothesis:
    return OpenHypothesis(
        text=text,
        avg_logprob=score,
        no_speech_prob=0.0,
        window_s=12.0,
        ms=1.0,
        alternatives=alternatives,
    )


def grammar(text: str, ratio: float) -> GrammarHypothesis:
    return GrammarHypothesis(text=text, ratio=ratio, frames=100, finish_ms=1.0)


@pytest.fixture
def snapper(voice_pack: Pack, resources) -> PhoneticSnapper:  # type: ignore[no-untyped-def]
    found = load_snapper(voice_pack, voice_pack.spec.voice.open, resources)
    assert found is not None
    return found


@pytest.fixture
def understanding(voice_engine: Engine) -> Understanding:
    return voice_engine.understanding


def picker(
    understanding: Understanding,
    snapper: PhoneticSnapper | None,
    transcriber: OpenTranscriber | None = None,
    **settings: object,
) -> OpenPicker:
    spec = understanding.pack.spec.voice.with_settings(
        {f"open.{k}": v for k, v in settings.items()}
    )
    return OpenPicker(
        TextChecks(understanding), transcriber or ScriptedTranscriber(), spec.open, snapper
    )


def test_a_close_beam_alternative_the_templates_accept_is_preferred(understanding, snapper) -> None:  # type: ignore[no-untyped-def]
    pick = picker(understanding, snapper).pick
    # the best hypothesis is a command already: kept
    found = pick(heard("Close the blinds.", -0.3, ("Close the blind.", -0.35)))
    assert (found.text, found.rank, found.snap) == ("Close the blinds.", 0, None)
    # the best matches no template, the third does and scores within the margin (0.5)
    sleepers = heard(
        "Can you end up some sleepers?",
        -0.40,
        ("Can you end up some slippers?", -0.45),
        ("Can you send up some slippers?", -0.60),
    )
    found = pick(sleepers)
    assert (found.text, found.rank, found.snap) == ("Can you send up some slippers?", 2, None)
    # a command too far below the best is not taken
    assert pick(heard("Is the moon open now?", -0.2, ("Is the pool open now?", -0.9))).rank == 0
    # an open request whose alternatives are no commands either stays as heard
    chat = heard(
        "Could you recommend a nice restaurant nearby?",
        -0.3,
        ("Could you recommend a nice restaurant near by?", -0.4),
    )
    assert (pick(chat).text, pick(chat).rank) == (chat.text, 0)
    # a margin of 0: only the best is weighed
    assert picker(understanding, snapper, alternative_margin=0.0).pick(sleepers).rank == 0


def test_a_whole_sentence_match_comes_before_a_partial_one(understanding, snapper) -> None:  # type: ignore[no-untyped-def]
    pick = picker(understanding, snapper).pick
    # "Can so do not disturb." matches only as its clause "do not disturb" (turn it on); the
    # third hypothesis is a whole command and is taken
    assert understanding.match("Can so do not disturb.").how == "clause"
    found = pick(
        heard(
            "Can so do not disturb.",
            -0.30,
            ("Can I so do not disturb.", -0.35),
            ("Cancel do not disturb.", -0.56),
        )
    )
    assert (found.text, found.rank) == ("Cancel do not disturb.", 2)
    # a whole match stays first: a later whole match is not preferred to it
    assert pick(heard("Cancel do not disturb.", -0.3, ("Can so do not disturb.", -0.35))).rank == 0
    # with no whole match among them, the first partial match is used
    assert (
        pick(heard("Er, can so do not disturb.", -0.3, ("Can so do not disturb.", -0.4))).rank == 0
    )
    # a whole match beyond the margin does not count
    assert pick(heard("Can so do not disturb.", -0.3, ("Cancel do not disturb.", -0.9))).rank == 0


def test_an_alternative_the_router_reads_as_its_guess_is_taken(understanding, snapper) -> None:  # type: ignore[no-untyped-def]
    pick = picker(understanding, snapper).pick
    # espeak-ng in running water: the best hypothesis is read as do-not-disturb, below the
    # router's threshold; the third is read as do-not-disturb above it
    best = "I'm sleeping late. I don't want to end it when I'm parking."
    third = "I'm sleeping late. I don't want to be disturbed parking."
    weak, clear = understanding.classify(best), understanding.classify(third)
    assert weak is not None and weak.abstained and weak.best == "dnd_on"
    assert clear is not None and not clear.abstained and clear.best == "dnd_on"
    found = pick(
        heard(
            best,
            -0.5,
            ("I'm sleeping late. I don't want to end at one parking.", -0.55),
            (third, -0.6),
        )
    )
    assert (found.text, found.rank) == (third, 2)
    # not beyond the margin
    assert pick(heard(best, -0.5, (third, -1.1))).rank == 0
    # an alternative read as another intent is not taken
    other = "I'm sleeping late. The room is freezing cold."
    reading = understanding.classify(other)
    assert reading is not None and not reading.abstained and reading.best == "thermostat_up"
    assert understanding.match(other).match is None
    assert pick(heard(best, -0.5, (other, -0.6))).rank == 0
    # a question the router puts in the pack's out-of-scope class stays a question, whatever
    # its alternatives sound like ("will it rain tomorrow" / "We'll clean tomorrow.")
    question = "Will it rain tomorrow."
    assert understanding.classify(question).best == "oos"  # type: ignore[union-attr]
    assert pick(heard(question, -0.4, ("We'll clean tomorrow.", -0.6))).rank == 0


def test_a_transcript_no_template_accepts_is_snapped_but_never_to_a_booking(  # type: ignore[no-untyped-def]
    understanding, snapper
) -> None:
    pick = picker(understanding, snapper).pick
    # no hypothesis is a command; the best sounds like one, with the guest's number
    found = pick(heard("Set the seat at 24.", -1.05, ("Set the seat at 24", -1.1)))
    assert (found.text, found.rank) == ("set the heat at 24", 0)
    assert found.snap is not None and found.snap.intent == "thermostat_set"
    # a beam alternative the templates accept comes first
    found = pick(heard("Set the seat at 24.", -1.05, ("Set the heat at 24.", -1.2)))
    assert (found.text, found.rank, found.snap) == ("Set the heat at 24.", 1, None)
    # never a high-impact intent: "call me a cab" books a taxi
    assert snapper.snap("Call me a cap.").intent == "book_taxi"  # type: ignore[union-attr]
    assert understanding.high_impact("book_taxi")
    assert pick(heard("Call me a cap.", -0.8)).text == "Call me a cap."
    # an open request that sounds like no command stays as heard
    chat = heard("What's the weather like tomorrow?", -0.2)
    assert (pick(chat).text, pick(chat).snap) == (chat.text, None)
    # without a snapper, nothing is snapped
    assert picker(understanding, None).pick(heard("Set the seat at 24.", -1.05)).snap is None


class EverythingBooks:
    """The hotel's understanding, except that every intent is high-impact."""

    def __init__(self, inner: Understanding) -> None:
        self.inner = inner
        self.pack = inner.pack

    def match(self, text: str) -> TemplateResult:
        return self.inner.match(text)

    def classify(self, text: str) -> Prediction | None:
        return self.inner.classify(text)

    def high_impact(self, intent: str) -> bool:
        return True


def test_what_is_high_impact_is_the_understandings_word(understanding, snapper) -> None:  # type: ignore[no-untyped-def]
    # the rule that a guess never books comes from the text side, not from the voice front end
    said = heard("Set the seat at 24.", -1.05)
    assert picker(understanding, snapper).pick(said).snap is not None
    assert picker(EverythingBooks(understanding), snapper).pick(said).snap is None


def test_rescoring_scores_candidates_against_the_audio(understanding, snapper) -> None:  # type: ignore[no-untyped-def]
    # espeak-ng's "tv off": Whisper tiny writes "Team me off.", too far from "tv off" to snap;
    # scored against the audio (here: scripted), "tv off" is within the gap of Whisper's own
    scores = {"team me off": -2.8, "tv off": -10.8}
    transcriber = ScriptedTranscriber(scores=scores)
    found = picker(understanding, snapper, transcriber).pick(heard("Team me off.", -0.6), SILENCE)
    assert found.text == "tv off" and found.snap is not None and found.snap.intent == "tv_off"
    assert found.rescored is not None and found.rescored[0].text == "team me off"
    assert "open_rescore" in found.stages_ms
    # the same hypothesis with a transcriber that cannot score sentences: no rescoring
    plain = ScriptedTranscriber(scores=scores, capabilities=[Capability.ALTERNATIVES])
    found = picker(understanding, snapper, plain).pick(heard("Team me off.", -0.6), SILENCE)
    assert found.text == "Team me off." and found.rescored is None
    assert plain.called("sentence_scores") == 0
    # too much less likely than Whisper's own words (the gap, 10): not used
    far = ScriptedTranscriber(scores={"team me off": -2.0, "tv off": -12.5})
    assert (
        picker(understanding, snapper, far).pick(heard("Team me off.", -0.6), SILENCE).snap is None
    )


def test_no_second_pass_when_the_first_beam_has_a_whole_command(understanding, snapper) -> None:  # type: ignore[no-untyped-def]
    transcriber = ScriptedTranscriber()  # any decode would fail: nothing is scripted
    pick = picker(understanding, snapper, transcriber).pick
    said = heard("Can you end up some sleepers?", -0.4, ("Can you send up some slippers?", -0.45))
    found = pick(said, SILENCE, heard="can you send up some slippers")
    assert (found.text, found.rank, found.second) == ("Can you send up some slippers?", 1, None)
    # no words from the grammar path, or the setting off: no second decode either
    chat = heard("Could you recommend a nice restaurant nearby?", -0.3)
    assert pick(chat, SILENCE, heard="").text == chat.text
    off = picker(understanding, snapper, transcriber, grammar_context=False)
    assert off.pick(chat, SILENCE, heard="could you").text == chat.text
    assert transcriber.called("transcribe") == 0


def test_the_second_pass_adds_readings_after_the_grammar_paths_words(
    understanding, snapper
) -> None:  # type: ignore[no-untyped-def]
    second = heard("Can you book a cab for 3 to take us to the airport.", -0.2)
    transcriber = ScriptedTranscriber(second)
    first = heard(
        "Can you book a camp for free to take us to the airport.",
        -0.18,
        ("Can you book a cab for free to take us to the airport.", -0.22),
    )
    found = picker(understanding, snapper, transcriber).pick(
        first, SILENCE, heard="can you book a cab for three today tell the port"
    )
    assert transcriber.calls == [("transcribe", "Can you book a cab for 3 today tell the port.")]
    assert found.text == second.text and found.rank == 2  # past the first beam's one alternative
    assert found.second is second and "open_second_pass" in found.stages_ms
    # a transcriber that cannot decode after context: the first beam is all there is
    plain = ScriptedTranscriber(second, capabilities=[Capability.ALTERNATIVES])
    found = picker(understanding, snapper, plain).pick(
        first, SILENCE, heard="can you book a cab for three today tell the port"
    )
    assert found.second is None and plain.called("transcribe") == 0


def arbitrator(
    understanding: Understanding,
    transcriber: OpenTranscriber,
    snapper: PhoneticSnapper | None = None,
    **settings: object,
) -> Arbitrator:
    spec = understanding.pack.spec.voice.with_settings(settings)
    return Arbitrator(understanding, transcriber, spec, snapper)


def test_a_sure_whole_grammar_command_needs_no_open_path(understanding) -> None:  # type: ignore[no-untyped-def]
    transcriber = ScriptedTranscriber()
    decision = arbitrator(understanding, transcriber).decide(
        grammar("close the blinds", 0.9), SILENCE
    )
    assert (decision.transcript, decision.path, decision.open) == (
        "close the blinds",
        "grammar",
        None,
    )
    # the match handed to the turn is the template match of exactly that text
    assert decision.matched is not None and decision.matched.match is not None
    assert decision.matched.match.name == "blinds_close"
    # "close" has a contrast word: "open the blinds" was scored against it, and lost
    assert decision.contrast is not None
    assert [c.text for c in decision.contrast] == ["close the blinds", "open the blinds"]
    assert transcriber.called("transcribe") == 0 and transcriber.called("encode") == 0


def test_the_contrast_check_takes_the_reading_the_audio_supports(understanding) -> None:  # type: ignore[no-untyped-def]
    scores = {"all lights on": -5.75, "all lights off": -1.44}
    decision = arbitrator(understanding, ScriptedTranscriber(scores=scores)).decide(
        grammar("all lights on", 0.83), SILENCE
    )
    assert decision.transcript == "all lights off" and decision.path == "grammar"
    assert decision.matched is not None and decision.matched.match is not None
    assert decision.matched.match.name == "lights_off"
    assert "contrast" in decision.stages_ms
    # off, or with a transcriber that cannot score: the grammar path's reading stands
    for made in (
        arbitrator(
            understanding, ScriptedTranscriber(scores=scores), **{"grammar.contrast_words": []}
        ),
        arbitrator(understanding, ScriptedTranscriber(scores=scores, capabilities=())),
    ):
        decision = made.decide(grammar("all lights on", 0.83), SILENCE)
        assert decision.transcript == "all lights on" and decision.contrast is None


def test_contrast_readings_swap_one_word_for_commands_the_templates_accept(understanding) -> None:  # type: ignore[no-untyped-def]
    readings = arbitrator(understanding, ScriptedTranscriber()).contrast_readings
    assert readings("all lights on") == ["all lights off"]
    assert readings("close the blinds") == ["open the blinds"]
    assert readings("turn the heating up") == ["turn the heating down"]
    # a swap no template accepts, or no contrast word
    assert readings("wake me up at seven") == []
    assert readings("the tv won't turn on") == []
    assert readings("two more towels please") == []
    assert readings("") == []
    off = arbitrator(understanding, ScriptedTranscriber(), **{"grammar.contrast_words": []})
    assert off.contrast_readings("all lights on") == []


def test_the_open_path_decides_when_the_grammar_path_is_unsure(understanding, snapper) -> None:  # type: ignore[no-untyped-def]
    transcriber = ScriptedTranscriber(heard("Could I get two more towels please.", -0.17))
    decision = arbitrator(understanding, transcriber, snapper).decide(
        grammar("could i get to more towels please", 1.07), SILENCE
    )
    assert decision.path == "open" and decision.transcript == "Could I get two more towels please."
    assert decision.matched is not None and decision.matched.match is not None
    assert decision.matched.match.slot_values() == {"count": 2}
    assert decision.open is not None and decision.open.used_rank == 0
    assert transcriber.calls[0] == ("encode",)  # encoded once, for every decode of the turn
    assert {"open_asr", "open_pick"} <= set(decision.stages_ms)
    # without the encode capability the transcriber is simply asked for a transcript
    plain = ScriptedTranscriber(heard("Close the blinds.", -0.2), capabilities=())
    decision = arbitrator(understanding, plain, snapper).decide(grammar("close the", 0.5), SILENCE)
    assert decision.transcript == "Close the blinds." and plain.calls == [("transcribe", "")]


def test_unsure_everywhere_asks_to_repeat(understanding, snapper) -> None:  # type: ignore[no-untyped-def]
    # free text below the open path's floor (-1.0), and no whole grammar command
    # (and no pack sentence it could be rescored as: the audio supports the words heard)
    transcriber = ScriptedTranscriber(
        heard("Mumble grumble.", -1.4), scores={"mumble grumble": -1.0}
    )
    decision = arbitrator(understanding, transcriber, snapper).decide(grammar("", 0.0), SILENCE)
    assert decision.transcript is None and decision.path is None and decision.matched is None
    # a command the templates accept needs only -1.5
    transcriber = ScriptedTranscriber(heard("Close the blinds.", -1.4))
    decision = arbitrator(understanding, transcriber, snapper).decide(grammar("", 0.0), SILENCE)
    assert decision.transcript == "Close the blinds."
    # nobody spoke, however the words score
    noise = ScriptedTranscriber(replace(heard("Close the blinds.", -0.1), no_speech_prob=0.9))
    assert (
        arbitrator(understanding, noise, snapper).decide(grammar("", 0.0), SILENCE).transcript
        is None
    )


def test_a_less_sure_grammar_command_beats_open_words_no_template_accepts(
    understanding, snapper
) -> None:  # type: ignore[no-untyped-def]
    # Whisper: "Two bathrooms please." (no template); the grammar path: "two bathrobes please",
    # a whole command at a ratio above 0.6 but below the 0.75 that would have skipped Whisper
    # (no snapper here: "two bathrooms" would snap to the command before the rule is reached;
    # the second pass, after "2 bathrobes please.", hears the same)
    transcriber = ScriptedTranscriber(*[heard("Two bathrooms please.", -0.3)] * 2)
    decision = arbitrator(understanding, transcriber).decide(
        grammar("two bathrobes please", 0.65), SILENCE
    )
    assert decision.path == "grammar" and decision.transcript == "two bathrobes please"
    assert decision.open is not None and decision.open.text == "Two bathrooms please."
