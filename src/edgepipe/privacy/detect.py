"""Personal-data detectors for the privacy gate, and how their findings are joined.

A :class:`Detector` finds spans of personal data in a text (:class:`~edgepipe.privacy.redact.Span`:
start, end, kind). The gate asks each of its detectors, joins what they found (the union: a
character any of them flags is replaced; overlapping spans become one) and replaces each span
with ``<KIND>`` (:func:`apply_spans`).

Two detectors ship with edgepipe:

``patterns`` (:class:`PatternDetector`, always there)
    the hand-written patterns of :func:`edgepipe.privacy.redact.redact`: e-mail, IBAN, the
    guest's name and words introduced as a name, addresses, dates of birth, ID numbers, cards,
    phones, room numbers, long numbers, and any token shaped like a document number. About
    0.4 ms a request; it misses names it has no cue or list for ("Can you check whether
    Chiamaka Okonkwo has landed?").
``presidio`` (:class:`edgepipe.privacy.presidio.PresidioDetector`, optional)
    Microsoft Presidio's analyzer with spaCy's medium English model (the small one where the
    medium one is not installed): people's names without a cue, from the named-entity
    recogniser and from how the sentence uses them (:mod:`edgepipe.privacy.names`, lower-case
    speech-to-text included); its checksum-validated recognisers add cards, phones and IBANs.
    Needs ``pip install 'edgepipe[privacy]'``; 2.8-3.5 s and 330 MB to load (once per process;
    the small model 1.6-1.9 s and 108 MB), 8 ms a request at the median, 13 ms p95
    (``bench/bench_privacy.py``).

A pack chooses with ``privacy.detector`` in ``pack.yaml`` (:data:`DETECTOR_SETTINGS`):
``patterns`` or ``patterns+presidio`` (the default). When Presidio is asked for and not
installed, the gate says so in one log line and uses the patterns alone
(:func:`build_detectors`).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Sequence
from typing import TYPE_CHECKING, Literal, Protocol, get_args, runtime_checkable

from edgepipe.privacy.redact import Redaction, Span, redact

if TYPE_CHECKING:
    from edgepipe.core.resources import Resources

log = logging.getLogger(__name__)

DetectorSetting = Literal["patterns", "patterns+presidio"]
DETECTOR_SETTINGS: tuple[str, ...] = get_args(DetectorSetting)
"""The values of a pack's ``privacy.detector``."""


@runtime_checkable
class Detector(Protocol):
    """Finds personal data in a text."""

    name: str

    def find(
        self, text: str, *, names: Sequence[str] = (), keep: Collection[str] = ()
    ) -> list[Span]:
        """Spans of personal data in ``text`` (offsets into ``text``). ``names``: the guest's
        names, to be found wherever they stand; ``keep``: kinds to leave alone (none of the
        returned spans has one of these kinds)."""
        ...


class PatternDetector:
    """The hand-written patterns (:func:`edgepipe.privacy.redact.redact`)."""

    name = "patterns"

    def find(
        self, text: str, *, names: Sequence[str] = (), keep: Collection[str] = ()
    ) -> list[Span]:
        return list(redact(text, names=names, keep=keep).spans)


def merge_spans(spans: Iterable[Span]) -> list[Span]:
    """The union of ``spans``: overlapping spans become one, which takes the kind of its longest
    part (the first of the longest: pass the most trusted detector's spans first)."""
    ordered = sorted(enumerate(spans), key=lambda item: (item[1].start, item[0]))
    out: list[Span] = []
    best: list[tuple[int, int]] = []  # (length, -order) of the longest part of each merged span
    for order, span in ordered:
        if span.end < span.start:
            continue
        rank = (span.end - span.start, -order)
        if out and span.start < out[-1].end:
            last = out[-1]
            kind = span.kind if rank > best[-1] else last.kind
            best[-1] = max(best[-1], rank)
            out[-1] = Span(last.start, max(last.end, span.end), kind)
        else:
            out.append(span)
            best.append(rank)
    return out


def apply_spans(text: str, spans: Iterable[Span]) -> Redaction:
    """``text`` with each span of the union of ``spans`` replaced by ``<KIND>``."""
    merged = merge_spans(spans)
    pieces: list[str] = []
    pos = 0
    for span in merged:
        pieces.append(text[pos : span.start])
        pieces.append(f"<{span.kind}>")
        pos = max(pos, span.end)
    pieces.append(text[pos:])
    return Redaction(text="".join(pieces), kinds=tuple(s.kind for s in merged), spans=tuple(merged))


def build_detectors(
    setting: str = "patterns",
    *,
    resources: Resources | None = None,
    presidio_installed: bool | None = None,
) -> tuple[Detector, ...]:
    """The detectors for a pack's ``privacy.detector`` setting; the patterns are always among
    them (Presidio alone is for measurements: :func:`presidio_only`). Presidio's analyzer comes
    from ``resources`` (built there once; at most once per process in any case).

    ``presidio_installed``: None to look; False to act as if Presidio were not installed (the
    gate then uses the patterns alone, and says so in the log)."""
    if setting not in DETECTOR_SETTINGS:
        raise ValueError(
            f"unknown privacy detector {setting!r}; expected one of {', '.join(DETECTOR_SETTINGS)}"
        )
    patterns = PatternDetector()
    if setting == "patterns":
        return (patterns,)
    from edgepipe.privacy import presidio

    if presidio_installed is None:
        missing = presidio.missing()
    else:
        missing = [] if presidio_installed else ["presidio_analyzer"]
    if missing:
        log.warning(
            "privacy: %s asked for but %s not installed (pip install 'edgepipe[privacy]'): "
            "the privacy gate uses the hand-written patterns only",
            setting,
            " and ".join(missing),
        )
        return (patterns,)
    detector = presidio.PresidioDetector(presidio.shared_analyzer(resources))
    log.info("privacy: the gate uses the hand-written patterns and %s", detector.describe())
    return (patterns, detector)


def presidio_only(resources: Resources | None = None) -> tuple[Detector, ...]:
    """Presidio alone, with every entity its default recognisers find (for measurements: it
    redacts city names and words like "tomorrow", and knows nothing of the guest's room)."""
    from edgepipe.privacy import presidio

    analyzer = presidio.shared_analyzer(resources)
    return (
        presidio.PresidioDetector(analyzer, entities=None, min_score=None, min_name_words=None),
    )
