"""The local model tier: a tiny model used narrowly, and never trusted without checking.

Three jobs, each with a validator, at most one repair attempt, and a deterministic fallback:

* **answer** a question about the deployment from its information page: retrieve the section
  (:mod:`edgepipe.knowledge`), let the model phrase one short sentence from it. The answer is
  rejected if it is empty, too long, carries prompt debris, or holds a number (time, price,
  floor) that is not in the passage. Nothing relevant retrieved: "I don't have that
  information". Rejected twice: the passage's most relevant sentence, verbatim.
* **shape** a handler's reply into one friendlier sentence under a length limit; rejected if
  any number of the original is missing or a new one appears; fallback: the template reply.
* **extract slots** the router could not spot, under a JSON-schema grammar (values limited to
  the slot lists, ranges and ``HH:MM`` times); a value is kept only if it passes the slot's own
  normalisation and the request's words support it; otherwise the guest is asked.

Every step is a span in the turn's trace; a rejection is visible as an ``invalid`` span with
the reason as its error code.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from edgepipe.deadline import Deadline
from edgepipe.frames import Outcome, Reply, Route, SlotValue, TraceRecorder
from edgepipe.knowledge import KnowledgeBase, content_words
from edgepipe.models.llama import Generation, LocalModel
from edgepipe.pack.loader import Pack
from edgepipe.tiers.rules import TierOutcome
from edgepipe.timeparse import NUMBER_WORDS

log = logging.getLogger(__name__)

_NUMBER = re.compile(r"\d+(?:[:.,]\d+)*")
_DEBRIS = re.compile(
    r"<\|im_|\bpassage\s*:|\bquestion\s*:|\buser\s*:|\bassistant\s*:|```"
    r"|\bthe passage\b|\bthe (?:guest's )?question\b|\bas an ai\b|\bin-room assistant\b"
    r"|\bthe answer is\b",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+")

QA_SYSTEM = (
    "You are the in-room assistant of {name}. Answer the guest's question in one short, "
    "friendly sentence, using only the facts in the passage. Copy times, prices and numbers "
    "exactly as the passage writes them. If the passage does not answer the question, say so."
)
SHAPE_SYSTEM = (
    "You rewrite a hotel assistant's reply to a guest as one warm, natural sentence of at most "
    "{limit} characters. Keep every time, number, name and fact exactly as given. Do not add "
    "facts, questions or greetings."
)
SLOTS_SYSTEM = (
    "You read a hotel guest's request and fill in the fields of a JSON object. Use null for a "
    "field the request does not mention. Answer with the JSON object only."
)


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


def _deadline_verdict(gen: Generation, verdict: Verdict) -> Verdict:
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


class LocalModelTier:
    """Question answering, reply shaping and slot extraction with a local model."""

    def __init__(self, pack: Pack, model: LocalModel, knowledge: KnowledgeBase | None) -> None:
        self._pack = pack
        self._model = model
        self._kb = knowledge
        spec = pack.spec.local_model
        self._spec = spec
        name = str(pack.facts.get("hotel_name", pack.name))
        self._qa_system = QA_SYSTEM.format(name=name)
        self._shape_system = SHAPE_SYSTEM.format(limit=spec.shape_max_chars)
        for task, system in (
            ("qa", self._qa_system),
            ("shape", self._shape_system),
            ("slots", SLOTS_SYSTEM),
        ):
            model.warm(task, system)
        # one short call: the first generation pays one-off set-up costs, and it seeds the
        # model's time estimates that the deadline checks use
        model.complete("qa", self._qa_system, "Hello", max_tokens=2)
        # the first grammar-constrained call is slow too (seconds): pay that here, not in a turn
        try:
            from llama_cpp.llama_grammar import LlamaGrammar

            schema = '{"type": "object", "properties": {"x": {"type": "string"}}}'
            grammar = LlamaGrammar.from_json_schema(schema, verbose=False)
        except ImportError:  # a stand-in model in unit tests
            grammar = None
        model.complete(
            "slots", SLOTS_SYSTEM, "Request: hi\nFields: x", max_tokens=4, grammar=grammar
        )

    @property
    def model(self) -> LocalModel:
        return self._model

    def retrieval_score(self, question: str) -> float:
        """How well the information page matches ``question`` (0 without a page)."""
        return self._kb.search(question).score if self._kb is not None else 0.0

    def _enough_time(self, deadline: Deadline) -> bool:
        """Start the model only when the deadline leaves room for a useful answer (the model
        itself also declines a call whose prompt it cannot evaluate in the time left)."""
        return deadline.remaining_ms() >= self._spec.min_generation_ms

    # ------------------------------------------------------------------ answering questions

    def answer(self, question: str, deadline: Deadline, trace: TraceRecorder) -> TierOutcome:
        """Answer a question from the information page."""
        if self._kb is None:
            return TierOutcome(
                route=Route.FALLBACK,
                reason="qa:no_knowledge",
                reply=self._reply("no_information", question),
            )
        with trace.span("retrieve") as span:
            found = self._kb.search(question)
            span.set(
                Outcome.MATCH if found.section else Outcome.NO_MATCH,
                detail=f"{found.best_heading}:{found.score:.2f}",
            )
        if found.section is None:
            return TierOutcome(
                route=Route.LOCAL_MODEL,
                reason=f"qa:no_passage:{found.score:.2f}",
                reply=self._reply("no_information", question),
            )
        # the model sees (and may only use numbers from) the few sentences of the section that
        # bear on the question: a shorter prompt is faster, and a tiny model confuses less
        passage = relevant_sentences(question, found.section.passage)
        prompt = f"Passage: {passage}\nQuestion: {question}"
        for attempt in ("generate", "repair"):
            if not self._enough_time(deadline):
                with trace.span(attempt) as span:
                    span.set(
                        Outcome.TIMEOUT, error_code="deadline", detail="no time left to generate"
                    )
                break
            with trace.span(attempt) as span:
                gen = self._model.complete(
                    "qa",
                    self._qa_system,
                    prompt,
                    max_tokens=self._spec.max_answer_tokens,
                    deadline=deadline,
                )
                verdict = check_answer(
                    gen.text,
                    passage,
                    max_chars=self._spec.max_answer_chars,
                    finish_reason=gen.finish_reason,
                )
                if gen.stopped_by_deadline:
                    verdict = _deadline_verdict(gen, verdict)
                self._mark(span, gen, verdict)
            if verdict.code == "deadline":
                break
            if verdict.ok:
                return TierOutcome(
                    route=Route.LOCAL_MODEL,
                    reason=f"qa:{found.section.heading}:{attempt}",
                    reply=Reply(
                        text=gen.text,
                        response_key="local_model:qa",
                        data={"section": found.section.heading},
                    ),
                )
            prompt = (
                f"Passage: {passage}\nQuestion: {question}\n"
                f"(An earlier answer was rejected: {verdict.detail}. Use only the passage.)"
            )
        with trace.span("extractive") as span:
            sentence = best_sentence(question, found.section.text)
            span.set(Outcome.OK, detail=found.section.heading)
        return TierOutcome(
            route=Route.LOCAL_MODEL,
            reason=f"qa:{found.section.heading}:extractive",
            reply=Reply(
                text=sentence,
                response_key="local_model:extractive",
                data={"section": found.section.heading},
            ),
        )

    def _reply(self, key: str, question: str) -> Reply:
        text = self._spec.no_information_reply
        return Reply(
            text=text, response_key=f"local_model:{key}", data={"question_chars": len(question)}
        )

    @staticmethod
    def _mark(span: Any, gen: Generation, verdict: Verdict) -> None:
        cached = gen.prompt_tokens - gen.evaluated_tokens
        detail = f"{gen.completion_tokens} tok, ttft {gen.ttft_ms:.0f} ms, cached prefix {cached}"
        if verdict.ok:
            span.set(Outcome.OK, detail=detail)
        elif verdict.code == "deadline":
            span.set(Outcome.TIMEOUT, error_code="deadline", detail=f"{verdict.detail}; {detail}")
        else:
            span.set(
                Outcome.INVALID, error_code=verdict.code, detail=f"{verdict.detail}; {detail}"[:200]
            )

    # ------------------------------------------------------------------ shaping replies

    def shape(self, reply: Reply, deadline: Deadline, trace: TraceRecorder) -> Reply:
        """A friendlier sentence for a handler's reply, or the reply itself."""
        if not self._enough_time(deadline):
            with trace.span("shape") as span:
                span.set(Outcome.SKIPPED, error_code="deadline", detail="no time left to generate")
            return reply
        limit = self._spec.shape_max_chars
        with trace.span("shape") as span:
            gen = self._model.complete(
                "shape",
                self._shape_system,
                f"Reply: {reply.text}",
                max_tokens=self._spec.max_answer_tokens,
                deadline=deadline,
            )
            verdict = check_shaped(gen.text, reply.text, max_chars=limit)
            if gen.stopped_by_deadline:
                verdict = _deadline_verdict(gen, verdict)
            self._mark(span, gen, verdict)
        if not verdict.ok:
            return reply
        return Reply(text=gen.text, response_key=f"{reply.response_key}+shaped", data=reply.data)

    # ------------------------------------------------------------------ extracting slots

    def extract_slots(
        self,
        intent: str,
        text: str,
        missing: list[str],
        now: datetime,
        deadline: Deadline,
        trace: TraceRecorder,
    ) -> dict[str, SlotValue]:
        """Values for ``missing`` slots the request's words support; {} when none."""
        from llama_cpp.llama_grammar import LlamaGrammar

        from edgepipe.router.templates import normalise_slot

        if not missing or not self._enough_time(deadline):
            return {}
        specs = self._pack.intents[intent].spec.slots
        schema, forms = self._slot_schema(intent, missing)
        with trace.span("extract") as span:
            grammar = LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
            gen = self._model.complete(
                "slots",
                SLOTS_SYSTEM,
                f"Request: {text}\nFields: {', '.join(missing)}",
                max_tokens=48,
                grammar=grammar,
                deadline=deadline,
            )
            found: dict[str, SlotValue] = {}
            problems: list[str] = []
            try:
                data = json.loads(gen.text)
            except json.JSONDecodeError:
                data = {}
                problems.append("not_json")
            lowered = text.lower()
            for name in missing:
                raw = data.get(name) if isinstance(data, dict) else None
                if raw is None:
                    continue
                spec = specs[name]
                try:
                    value = normalise_slot(name, spec, raw, str(raw), now)
                except ValueError:
                    problems.append(f"{name}_invalid")
                    continue
                words = forms.get(name, {}).get(str(value), [str(raw)])
                if (
                    time_supported(str(value), lowered)
                    if spec.type == "time"
                    else any(w.lower() in lowered for w in words) or str(raw) in lowered
                ):
                    found[name] = SlotValue(name=name, value=value, text=str(raw))
                else:
                    problems.append(f"{name}_unsupported")
            if problems and not found:
                span.set(Outcome.INVALID, error_code=problems[0], detail=gen.text[:120])
            else:
                span.set(Outcome.OK if found else Outcome.NO_MATCH, detail=gen.text[:120])
        return found

    def _slot_schema(
        self, intent: str, missing: list[str]
    ) -> tuple[dict[str, Any], dict[str, dict[str, list[str]]]]:
        from hassil.sample import sample_expression

        from edgepipe.router.templates import build_intents

        lists = build_intents(self._pack).slot_lists
        props: dict[str, Any] = {}
        forms: dict[str, dict[str, list[str]]] = {}
        for name in missing:
            spec = self._pack.intents[intent].spec.slots[name]
            slot_list = lists.get(spec.list or name)
            if spec.type == "time":
                props[name] = {
                    "anyOf": [
                        {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$"},
                        {"type": "null"},
                    ]
                }
            elif hasattr(slot_list, "values"):
                outs: dict[str, list[str]] = {}
                for value in slot_list.values:  # type: ignore[union-attr]
                    outs.setdefault(str(value.value_out), []).extend(
                        sample_expression(value.text_in)
                    )
                forms[name] = outs
                props[name] = {"anyOf": [{"enum": sorted(outs)}, {"type": "null"}]}
            elif hasattr(slot_list, "start"):
                props[name] = {
                    "anyOf": [
                        {"type": "integer", "minimum": slot_list.start, "maximum": slot_list.stop},  # type: ignore[union-attr]
                        {"type": "null"},
                    ]
                }
            else:
                props[name] = {"anyOf": [{"type": "string", "maxLength": 40}, {"type": "null"}]}
        return {"type": "object", "properties": props, "required": list(props)}, forms
