"""The endpointer state machine, frame by frame (no audio, no models)."""

from __future__ import annotations

from edgepipe.voice.endpoint import EndpointConfig, Endpointer, Event


def run(probs: list[float], complete_from: int | None = None, **kw: float) -> list[Event]:
    ep = Endpointer(EndpointConfig(**kw))  # type: ignore[arg-type]
    events = []
    for i, p in enumerate(probs):
        events.append(ep.feed(p, complete=complete_from is not None and i >= complete_from))
    return events


def test_speech_then_trailing_silence_ends_the_utterance() -> None:
    events = run([0.0] * 10 + [0.9] * 50 + [0.1] * 80)
    assert events.index(Event.SPEECH_START) == 10 + 19  # after min_speech_ms (200 ms)
    assert events.index(Event.END) == 60 + 69  # after trailing_silence_ms (700 ms)


def test_complete_command_ends_early() -> None:
    events = run([0.9] * 50 + [0.1] * 80, complete_from=0)
    assert Event.EARLY_END in events
    assert events.index(Event.EARLY_END) == 50 + 19  # early_silence_ms (200 ms)
    assert Event.END not in events[: events.index(Event.EARLY_END)]


def test_a_click_is_not_an_utterance_and_silence_times_out() -> None:
    events = run([0.9] * 5 + [0.0] * 500, timeout_s=4.0)
    assert Event.SPEECH_START not in events
    assert Event.TIMEOUT in events


def test_endless_speech_is_cut_at_max_length() -> None:
    events = run([0.9] * 1200, max_utterance_s=5.0)
    assert Event.MAX_LENGTH in events
    assert events.index(Event.MAX_LENGTH) <= 520


def test_short_pauses_do_not_end_an_incomplete_utterance() -> None:
    probs = ([0.9] * 40 + [0.1] * 40) * 3 + [0.1] * 80
    events = run(probs)
    assert events.count(Event.SPEECH_START) == 1
    assert events.index(Event.END) > 200
