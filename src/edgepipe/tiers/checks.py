"""What a local model's output must pass before a guest hears it.

Pure functions, no model: an answer must come from its passage (every number in it must be in
the passage), a rephrased reply must keep exactly the original's numbers, a time the model read
from a request must be one the request mentions; and the extractive fallback that answers with
the passage's own sentences when the model's answer is rejected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from edgepipe.models.llama import Generation
from edgepipe.nlu.timeparse import NUMBER_WORDS
from edgepipe.tiers.knowledge import content_words

_NUMBER = re.compile(r"\d+(?:[:.,]\d+)*")
_DEBRIS = re.compile(
    r"<\|im_|\bpassage\s*:|\bquestion\s*:|\buser\s*:|\bassistant\s*:|```"
    r"|\bthe passage\b|\bthe (?:guest's )?question\b|\bas an ai\b|\bin-room assistant\b"
    r"|\bthe answer is\b",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"[a-z0-9]+")


def numbers_in(text: str) -> set[str]:
    """Numbers as written, with a leading zero of an hour dropped ("07:00" ~ "7:00")."""
    return {n.lstrip("0") or "0" for n in _NUMBER.findall(text)}


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    code: str = ""
    detail: str = ""


def check_answer(
    answer: str, passage: str, *, max_chars: int, finish_reason: str = "stop"
) -> Verdict:
    """The rules a generated answer must pass."""
    if not answer.strip():
        return Verdict(False, "empty", "the answer is empty")
    if finish_reason == "length" or answer.count('"') % 2:
        return Verdict(False, "truncated", "the answer was cut off")
    if len(answer) > max_chars:
        return Verdict(
            False, "too_long", f"the answer is {len(answer)} characters; the limit is {max_chars}"
        )
    if _DEBRIS.search(answer):
        return Verdict(False, "prompt_debris", "the answer repeats parts of the prompt")
    invented = sorted(numbers_in(answer) - numbers_in(passage))
    if invented:
        return Verdict(
            False, "number_not_in_passage", f"{', '.join(invented)} is not in the passage"
        )
    if not content_words(answer) & content_words(passage):
        return Verdict(False, "ungrounded", "the answer shares no words with the passage")
    return Verdict(True)


def check_shaped(shaped: str, original: str, *, max_chars: int) -> Verdict:
    """A shaped reply keeps exactly the original's numbers and stays short."""
    if not shaped.strip():
        return Verdict(False, "empty", "the reply is empty")
    if len(shaped) > max_chars:
        return Verdict(
            False, "too_long", f"the reply is {len(shaped)} characters; the limit is {max_chars}"
        )
    if _DEBRIS.search(shaped):
        return Verdict(False, "prompt_debris", "the reply repeats parts of the prompt")
    missing = numbers_in(original) - numbers_in(shaped)
    if missing:
        return Verdict(False, "number_dropped", f"{', '.join(sorted(missing))} was dropped")
    added = numbers_in(shaped) - numbers_in(original)
    if added:
        return Verdict(False, "number_added", f"{', '.join(sorted(added))} was added")
    return Verdict(True)


def time_supported(value: str, text: str) -> bool:
    """Whether ``text`` mentions the hour (and any minutes) of ``value`` ("HH:MM"): a model
    that turns "6:45" into "12:45" must not set a wake-up call."""
    try:
        hour, minute = (int(p) for p in value.split(":"))
    except ValueError:
        return False
    lowered = text.lower()
    numbers = {int(n) for n in re.findall(r"\d+", lowered)}
    clock_runs = re.findall(r"\d{3,4}", lowered)  # "0630", "715"
    words = set(re.findall(r"[a-z]+", lowered))
    h12 = hour % 12 or 12
    hour_ok = (
        bool({hour, h12} & numbers)
        or any(NUMBER_WORDS.get(w) == h12 for w in words)
        or (hour == 12 and "noon" in words)
        or (hour == 0 and "midnight" in words)
        or any(re.fullmatch(rf"0?{h}[0-5]\d", n) for n in clock_runs for h in (hour, h12))
    )
    if minute == 0:
        return hour_ok
    minute_ok = (
        minute in numbers
        or (minute == 30 and "half" in words)
        or (minute in (15, 45) and "quarter" in words)
        or any(n.endswith(f"{minute:02d}") for n in clock_runs)
    )
    return hour_ok and minute_ok


def value_supported(
    slot_type: str, value: object, raw: object, text: str, spoken: list[str] | None
) -> bool:
    """Whether the request ``text`` supports a slot value a model read from it: a time it
    mentions, one of a list value's ``spoken`` forms (or the model's own words), a number it
    says in digits or words, or a word of a free-text value."""
    lowered = text.lower()
    if slot_type == "time":
        return time_supported(str(value), lowered)
    if spoken is not None:
        return any(f.lower() in lowered for f in spoken) or str(raw).lower() in lowered
    words = set(_WORD.findall(lowered))
    if slot_type == "number":
        try:
            number = float(str(value))
        except ValueError:
            return False
        said = {float(n) for n in re.findall(r"\d+(?:\.\d+)?", lowered)}
        said |= {float(NUMBER_WORDS[w]) for w in words if w in NUMBER_WORDS}
        return number in said
    return bool(set(_WORD.findall(str(raw).lower())) & words)


def deadline_verdict(gen: Generation, verdict: Verdict) -> Verdict:
    """What a generation the deadline stopped (or never started) counts as."""
    if gen.finish_reason == "skipped:deadline":
        return Verdict(False, "deadline", "not started: the prompt would not fit in the time left")
    if verdict.ok:
        return Verdict(False, "deadline", "stopped at the deadline")
    return verdict


_ASKS_TIME = re.compile(
    r"\b(when|what time|how late|how early|until|till|hours?|open|close)\b", re.I
)
_ASKS_PRICE = re.compile(r"\b(how much|cost|price|charge|fee|pay|free)\b", re.I)
_TIME = re.compile(r"\d{1,2}:\d\d")
_PRICE = re.compile(r"[€£$]\s?\d|\d\s?(?:eur|euros?)\b|\bfree\b", re.I)


def _sentence_score(question: str, words: set[str], sentence: str) -> int:
    score = 2 * len(words & content_words(sentence))
    if _ASKS_TIME.search(question) and _TIME.search(sentence):
        score += 1
    if _ASKS_PRICE.search(question) and _PRICE.search(sentence):
        score += 1
    return score


def relevant_sentences(question: str, passage: str, k: int = 3) -> str:
    """The ``k`` passage sentences that bear most on the question (shared content words; a
    time for a "when" question, a price for a "how much" one), in passage order."""
    sentences = [s.strip() for s in _SENTENCE.split(passage) if s.strip()]
    if len(sentences) <= k:
        return " ".join(sentences) or passage
    words = content_words(question)
    ranked = sorted(
        range(len(sentences)),
        key=lambda i: (-_sentence_score(question, words, sentences[i]), i),
    )
    return " ".join(sentences[i] for i in sorted(ranked[:k]))


def best_sentence(question: str, passage: str) -> str:
    """The extractive answer: the two passage sentences that bear most on the question."""
    return relevant_sentences(question, passage, k=2)
