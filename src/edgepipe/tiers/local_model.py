"""The local model tier: a tiny model used narrowly, and never trusted without checking.

Four jobs, each with a validator, at most one repair attempt, and a deterministic fallback:

* **answer** a question about the deployment from its information page: retrieve the section
  (:mod:`edgepipe.tiers.knowledge`), let the model phrase one short sentence from it. The answer is
  rejected if it is empty, too long, carries prompt debris, or holds a number (time, price,
  floor) that is not in the passage. Nothing relevant retrieved: "I don't have that
  information". Rejected twice: the passage's most relevant sentence, verbatim.
* **shape** a handler's reply into one friendlier sentence under a length limit; rejected if
  any number of the original is missing or a new one appears; fallback: the template reply.
* **extract slots** the router could not spot, under a JSON-schema grammar (values limited to
  the slot lists, ranges and ``HH:MM`` times); a value is kept only if it passes the slot's own
  normalisation and the request's words support it; otherwise the guest is asked.

* **read a request** onto the pack's intents for the resolve tier, under the catalogue's JSON
  grammar (:mod:`edgepipe.tiers.resolve` validates and acts on it).

Every step is a span in the turn's trace; a rejection is visible as an ``invalid`` span with
the reason as its error code. Long on purpose: the four jobs share one model, its lock, its
prefix states and its deadline checks, and their ``build`` loads it (and the reader model).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from datetime import datetime

from edgepipe.core.deadline import Deadline
from edgepipe.core.trace import SpanHandle, TraceRecorder
from edgepipe.core.types import IntentMatch, Outcome, Reply, Route, SlotValue
from edgepipe.models.llama import Generation, LocalModel, TextModel
from edgepipe.pack.loader import Pack
from edgepipe.tiers.base import Passed, TierContext, TierOutcome, TierRequest, TierUnavailable
from edgepipe.tiers.checks import (
    Verdict,
    best_sentence,
    check_answer,
    check_shaped,
    deadline_verdict,
    relevant_sentences,
)
from edgepipe.tiers.knowledge import KnowledgeBase
from edgepipe.tiers.reading import Catalogue, Proposal, ResolveQuery
from edgepipe.tiers.slot_filler import SLOTS_SYSTEM, SlotFiller

log = logging.getLogger(__name__)

_GRAMMARS = 256
"""Grammars kept (least recently used dropped): the answer's schema depends on the router's
candidates, so a long-running process would otherwise keep one per combination it met."""

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


class LocalModelTier:
    """Question answering, reply shaping and slot extraction with a local model.

    As a tier it answers an intent whose ``task`` is ``qa``, and a request the router found out
    of scope when the information page clearly answers it (retrieval score at least
    ``local_model.qa_rescue_score``): a question about the deployment is answered here rather
    than sent out. Everything else it passes on.

    Long on purpose: the four jobs of the one local model (answering, shaping, slot filling,
    reading a request onto the intents) share its lock, its prefix states and its deadline
    checks; each job is a short method with its validator in :mod:`edgepipe.tiers.checks`."""

    name = "local_model"

    def __init__(
        self,
        pack: Pack,
        model: TextModel,
        knowledge: KnowledgeBase | None,
        *,
        reader: TextModel | None = None,
    ) -> None:
        self._pack = pack
        self._model = model
        self._reader = reader or model
        """The model that reads requests onto the intents (``resolve.model``; default: the
        tier's own)."""
        self._kb = knowledge
        spec = pack.spec.local_model
        self._spec = spec
        name = str(pack.facts.get("hotel_name", pack.name))
        self._qa_system = QA_SYSTEM.format(name=name)
        self._shape_system = SHAPE_SYSTEM.format(limit=spec.shape_max_chars)
        self._slots = SlotFiller(pack, model)
        self._grammars: OrderedDict[str, object | None] = OrderedDict()
        self._grammar_lock = threading.Lock()
        self._qa_intent = next(
            (
                intent_name
                for intent_name, intent in pack.intents.items()
                if intent.spec.task == "qa" and intent.policy.tier == self.name
            ),
            None,
        )

    def prepare(self) -> None:
        """Evaluate each task's prompt prefix, and pay the first generation's and the first
        grammar's one-off costs (seconds for the grammar) here rather than in a turn; the
        first call also seeds the model's time estimates that the deadline checks use."""
        model = self._model
        for task, system in (
            ("qa", self._qa_system),
            ("shape", self._shape_system),
            ("slots", SLOTS_SYSTEM),
        ):
            model.warm(task, system)
        model.complete("qa", self._qa_system, "Hello", max_tokens=2)
        try:
            from llama_cpp.llama_grammar import LlamaGrammar

            schema = '{"type": "object", "properties": {"x": {"type": "string"}}}'
            grammar = LlamaGrammar.from_json_schema(schema, verbose=False)
        except ImportError:  # a stand-in model in unit tests
            grammar = None
        model.complete(
            "slots", SLOTS_SYSTEM, "Request: hi\nFields: x", max_tokens=4, grammar=grammar
        )

    def close(self) -> None:
        """The model belongs to the engine's resources, which close it."""
        return

    def run(
        self, request: TierRequest, deadline: Deadline, trace: TraceRecorder
    ) -> TierOutcome | Passed:
        if request.intent is None:
            return self._rescue(request, deadline, trace)
        if self._pack.intents[request.intent.name].spec.task != "qa":
            return Passed(tier=self.name, code="local_model:not_qa", failed=False)
        return self.answer(request.text, deadline, trace)

    def _rescue(
        self, request: TierRequest, deadline: Deadline, trace: TraceRecorder
    ) -> TierOutcome | Passed:
        """An out-of-scope reading that the information page clearly answers."""
        threshold = self._spec.qa_rescue_score
        if threshold is None or self._qa_intent is None or self._kb is None:
            return Passed(tier=self.name, code="local_model:no_rescue", failed=False)
        score = self.retrieval_score(request.text)
        if score < threshold:
            return Passed(tier=self.name, code=f"page:{score:.2f}<{threshold}", failed=False)
        outcome = self.answer(request.text, deadline, trace)
        intent = IntentMatch(name=self._qa_intent, slots={}, confidence=score, source="retrieval")
        return TierOutcome(
            route=outcome.route,
            reason=f"page:{score:.2f}>={threshold}>{outcome.reason}",
            reply=outcome.reply,
            intent=intent,
        )

    @property
    def model(self) -> TextModel:
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
                    verdict = deadline_verdict(gen, verdict)
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
    def _mark(span: SpanHandle, gen: Generation, verdict: Verdict) -> None:
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
                verdict = deadline_verdict(gen, verdict)
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
        """Values for ``missing`` slots the request's words support; {} when none (or when
        the deadline leaves no time for a generation)."""
        if not missing or not self._enough_time(deadline):
            return {}
        return self._slots.extract(intent, text, missing, now, deadline, trace)

    # ------------------------------------------------------------------ reading requests

    def warm_resolver(self, catalogue: Catalogue) -> None:
        """Evaluate the intent catalogue's prompt and build its grammar (seconds) before the
        first turn needs them."""
        self._reader.warm("resolve", catalogue.system)
        self._grammar_for(catalogue.schema_json())

    def _grammar_for(self, key: str) -> object | None:
        """The llama.cpp grammar of a JSON schema (built once: a few milliseconds to seconds)."""
        with self._grammar_lock:
            if key in self._grammars:
                self._grammars.move_to_end(key)
                return self._grammars[key]
            try:
                from llama_cpp.llama_grammar import LlamaGrammar
            except ImportError:  # a stand-in model in unit tests
                grammar = None
            else:
                grammar = LlamaGrammar.from_json_schema(key, verbose=False)
            self._grammars[key] = grammar
            if len(self._grammars) > _GRAMMARS:  # one per set of router candidates: bounded
                self._grammars.popitem(last=False)
            return grammar

    def resolve_intent(
        self, query: ResolveQuery, deadline: Deadline, trace: TraceRecorder
    ) -> Proposal | Passed:
        """Read the request onto the pack's intents under the catalogue's JSON grammar."""
        if not self._enough_time(deadline):
            with trace.span("resolve:local_model") as span:
                span.set(Outcome.TIMEOUT, error_code="deadline", detail="no time left to generate")
            return Passed(tier=self.name, code="resolve:local_model:deadline", failed=True)
        catalogue = query.catalogue
        grammar = self._grammar_for(catalogue.schema_json(query.candidates))
        with trace.span("resolve:local_model") as span:
            gen = self._reader.complete(
                "resolve",
                catalogue.system,
                query.prompt,
                max_tokens=self._pack.spec.resolve.max_tokens,
                grammar=grammar,
                deadline=deadline,
            )
            try:
                proposal = Proposal.parse(self.name, gen.text, catalogue.intents)
            except ValueError as exc:
                self._mark(span, gen, Verdict(False, "resolve_malformed", str(exc)))
                return Passed(tier=self.name, code="resolve:local_model:malformed", failed=True)
            span.set(Outcome.OK, detail=f"{gen.text[:120]}; {gen.completion_tokens} tok")
        return proposal


def build(context: TierContext) -> LocalModelTier | None:
    """The pack's local model tier (None when the pack turns it off); the model and the
    page are loaded through the engine's resources."""
    pack = context.pack
    spec = pack.spec.local_model
    if not spec.enabled:
        return None
    from edgepipe.models.catalog import resolve_model
    from edgepipe.models.llama import ModelUnavailable

    def load(setting: str | None) -> TextModel:
        path = resolve_model(setting, pack.root).resolve()
        return context.resources.get(
            ("llama", str(path), spec.n_ctx, spec.threads),
            lambda: LocalModel(path, n_ctx=spec.n_ctx, threads=spec.threads),
            close=LocalModel.close,
        )

    try:
        model = load(spec.model)
        reading = pack.spec.resolve.model
        reader = load(reading) if reading is not None and reading != spec.model else None
    except ModelUnavailable as exc:
        raise TierUnavailable(str(exc), code=exc.code) from exc
    knowledge = None
    if spec.knowledge is not None:
        from edgepipe.nlu.learned.encoder import shared_encoder

        page = pack.root / spec.knowledge
        knowledge = context.resources.get(
            ("knowledge", str(page.resolve()), pack.content_hash, spec.qa_min_score),
            lambda: KnowledgeBase.from_file(
                page, min_score=spec.qa_min_score, encoder=shared_encoder(context.resources)
            ),
        )
    return LocalModelTier(pack, model, knowledge, reader=reader)
