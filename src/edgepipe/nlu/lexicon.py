"""English words and how they sound: the CMU pronouncing dictionary that pocketsphinx ships
(``cmudict-en-us.dict``, 126,000 words, read in about 0.3 s).

The text side uses it to tell a misspelling from a real word the pack does not use ("flight" is
not a typo of "light"; "pilow" is one of "pillow"), and to hear a recogniser's spelling of a pack
word that sounds the same ("what time does the jim open": "jim" sounds like "gym"). The voice
side builds its phonetic snapper from it. Without the voice extra (no pocketsphinx) there is no
dictionary, and spelling correction falls back to the pack's vocabulary alone.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgepipe.core.resources import Resources

log = logging.getLogger(__name__)

Pronunciations = Mapping[str, tuple[str, ...]]
"""word (lowercase) -> its phonemes (first pronunciation, no stress marks)."""


def load_pronunciations(path: Path) -> dict[str, tuple[str, ...]]:
    """word -> phonemes (first pronunciation) from a CMU-format dictionary (about 0.3 s for
    pocketsphinx's)."""
    out: dict[str, tuple[str, ...]] = {}
    with path.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            word, _, phones = line.strip().partition(" ")
            if phones and "(" not in word:
                out.setdefault(word.lower(), tuple(phones.split()))
    return out


def dictionary_path() -> Path | None:
    """pocketsphinx's English dictionary, or None when pocketsphinx is not installed."""
    spec = importlib.util.find_spec("pocketsphinx")
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = Path(root) / "model" / "en-us" / "cmudict-en-us.dict"
        if path.is_file():
            return path
    return None


def shared_pronunciations(resources: Resources) -> Pronunciations | None:
    """The dictionary, read once per ``resources`` (the voice session shares it), or None."""
    path = dictionary_path()
    if path is None:
        log.info("no English pronouncing dictionary (pocketsphinx not installed)")
        return None
    return resources.get(("voice", "pronunciations", str(path)), lambda: load_pronunciations(path))
