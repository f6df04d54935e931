"""Local retrieval over a pack's information page (Markdown, one fact area per ``##`` section).

A question is matched against every section by two scores:

* meaning: cosine similarity of all-MiniLM-L6-v2 sentence embeddings (the last-layer block of
  the router's encoder features, which is exactly the sentence-transformers embedding);
* wording: the share of the question's content words (stop words removed, simple stemming)
  that occur in the section.

The combined score is ``0.7 * meaning + 0.3 * wording``. The best section is returned only when
it reaches the pack's ``local_model.qa_min_score``; below that the honest answer is that the
information is not there. Without the encoder (router extra not installed) the wording score
alone is used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgepipe.core.errors import EdgepipeError

if TYPE_CHECKING:
    from edgepipe.nlu.learned.encoder import SentenceEncoder

_WORD = re.compile(r"[a-z0-9€£$]+(?:[:.'][a-z0-9]+)*", re.IGNORECASE)
_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "do",
        "does",
        "did",
        "can",
        "could",
        "would",
        "will",
        "shall",
        "should",
        "may",
        "might",
        "must",
        "i",
        "me",
        "my",
        "we",
        "our",
        "you",
        "your",
        "it",
        "its",
        "this",
        "that",
        "there",
        "here",
        "what",
        "when",
        "where",
        "which",
        "who",
        "whom",
        "how",
        "why",
        "to",
        "of",
        "in",
        "on",
        "at",
        "for",
        "from",
        "by",
        "with",
        "about",
        "as",
        "and",
        "or",
        "but",
        "if",
        "so",
        "not",
        "no",
        "yes",
        "please",
        "thanks",
        "thank",
        "hi",
        "hello",
        "hey",
        "any",
        "some",
        "much",
        "many",
        "get",
        "got",
        "have",
        "has",
        "had",
        "there's",
        "what's",
        "is",
        "it's",
        "im",
        "i'm",
        "tell",
        "know",
        "want",
        "need",
        "like",
        "would",
        "let",
        "us",
        "just",
        "also",
    ]
)


def _stem(word: str) -> str:
    for suffix in ("ing", "ies", "es", "s", "ed"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def content_words(text: str) -> set[str]:
    """Lower-cased, stemmed words that carry meaning."""
    return {_stem(w.lower()) for w in _WORD.findall(text) if w.lower() not in _STOP}


@dataclass(frozen=True, slots=True, kw_only=True)
class Section:
    """One ``##`` section of the page."""

    heading: str
    text: str
    """The section body (without the heading line)."""

    @property
    def passage(self) -> str:
        return f"{self.heading}: {self.text}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Retrieval:
    """The best section for a question, and how sure the match is."""

    section: Section | None
    """None when nothing reached the threshold."""
    score: float
    best_heading: str
    meaning: float
    wording: float


def parse_sections(markdown: str) -> list[Section]:
    """Split a page into its ``##`` sections (text before the first one is ignored)."""
    sections: list[Section] = []
    heading: str | None = None
    body: list[str] = []
    for line in markdown.splitlines():
        if line.startswith("## "):
            if heading is not None:
                sections.append(Section(heading=heading, text=" ".join(" ".join(body).split())))
            heading, body = line[3:].strip(), []
        elif heading is not None:
            body.append(line.strip())
    if heading is not None:
        sections.append(Section(heading=heading, text=" ".join(" ".join(body).split())))
    return [s for s in sections if s.text]


class KnowledgeBase:
    """Sections of one page, indexed for retrieval."""

    def __init__(
        self, sections: list[Section], *, min_score: float, encoder: SentenceEncoder | None = None
    ) -> None:
        """``encoder``: sentence features for matching by meaning as well as by words (the
        router's MiniLM); None: by words only."""
        if not sections:
            raise EdgepipeError(
                "the information page has no '## ' sections", code="knowledge_empty"
            )
        self.sections = sections
        self.min_score = min_score
        self._words = [content_words(s.passage) for s in sections]
        self._encoder = encoder
        self._vectors: np.ndarray | None = None
        if encoder is not None:
            self._vectors = np.stack([self._embed(s.passage) for s in sections])

    @classmethod
    def from_file(
        cls, path: Path, *, min_score: float, encoder: SentenceEncoder | None = None
    ) -> KnowledgeBase:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise EdgepipeError(
                f"{path}: cannot read the information page: {exc}", code="knowledge_unreadable"
            ) from exc
        return cls(parse_sections(text), min_score=min_score, encoder=encoder)

    def _embed(self, text: str) -> np.ndarray:
        assert self._encoder is not None
        from edgepipe.nlu.learned.encoder import HIDDEN

        features = self._encoder.encode_one(text)
        last = features[-HIDDEN:]
        return last / max(float(np.linalg.norm(last)), 1e-9)

    def search(self, question: str) -> Retrieval:
        """The best section for ``question`` (None below the threshold)."""
        words = content_words(question)
        wording = np.array([len(words & w) / len(words) if words else 0.0 for w in self._words])
        if self._vectors is not None:
            meaning = self._vectors @ self._embed(question)
            score = 0.7 * meaning + 0.3 * wording
        else:
            meaning = np.zeros(len(self.sections))
            score = wording
        best = int(np.argmax(score))
        return Retrieval(
            section=self.sections[best] if score[best] >= self.min_score else None,
            score=float(score[best]),
            best_heading=self.sections[best].heading,
            meaning=float(meaning[best]),
            wording=float(wording[best]),
        )
