"""A required slot the guest described instead of naming, read from the pack's own examples.

"My European plug doesn't fit your sockets" is ``request_amenity`` (the router knows), but no
list value is said, so the slot spotter finds no ``item`` and the guest would be asked "What
would you like?". The pack's examples and template sentences for that intent that *do* name a
value ("do you have a power adapter for a UK plug") are its labelled neighbours: the request's
nearest ones, by the router's sentence encoder, vote for a value with their similarities.

A value is taken only when the evidence is strong: the nearest neighbour at least
``min_similarity`` alike and the value holding at least ``min_share`` of the ``k`` nearest
neighbours' votes. Things the pack does not list ("can I get a kettle") sit between several
values' neighbours and are left to the question. Only required slots of text lists are read
this way: an optional slot left out means its default ("turn on the lights": all of them),
never a guess.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from hassil.intents import TextSlotList

from edgepipe.core.types import SlotScalar, SlotValue
from edgepipe.nlu.learned.augment import TemplateSampler
from edgepipe.nlu.learned.encoder import SentenceEncoder
from edgepipe.nlu.slots import SlotSpotter
from edgepipe.pack.loader import Pack

if TYPE_CHECKING:
    from edgepipe.core.resources import Resources

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Reading:
    """A value read from the neighbours, and how sure."""

    value: SlotScalar
    similarity: float
    """The nearest neighbour's cosine similarity."""
    share: float
    """The value's share of the ``k`` nearest neighbours' summed similarity."""


class ValueNeighbours:
    """Labelled neighbours per (intent, required text-list slot) of a pack."""

    def __init__(
        self,
        pack: Pack,
        spotter: SlotSpotter,
        encoder: SentenceEncoder,
        *,
        samples_per_intent: int = 60,
        k: int = 5,
        min_similarity: float = 0.7,
        min_share: float = 0.75,
        now: datetime | None = None,
    ) -> None:
        t0 = time.perf_counter()
        self._encoder = encoder
        self.k, self.min_similarity, self.min_share = k, min_similarity, min_share
        lists = spotter.lists
        sampler = TemplateSampler(pack, seed=0)
        when = now or datetime(2026, 1, 1, 10, 0)
        texts: dict[tuple[str, str], list[str]] = defaultdict(list)
        values: dict[tuple[str, str], list[SlotScalar]] = defaultdict(list)
        for name, intent in pack.intents.items():
            wanted = [
                slot
                for slot, spec in intent.spec.slots.items()
                if spec.required and isinstance(lists.get(spec.list or slot), TextSlotList)
            ]
            if not wanted:
                continue
            seen: set[str] = set()
            for text in [*intent.examples, *sampler.sentences(name, samples_per_intent)]:
                if text.lower() in seen:
                    continue
                seen.add(text.lower())
                found, _ = spotter.spot(name, text, when)
                for slot in wanted:
                    if slot in found and found[slot].text:
                        texts[(name, slot)].append(text)
                        values[(name, slot)].append(found[slot].value)
        self._values = dict(values)
        self._vectors: dict[tuple[str, str], npt.NDArray[np.float32]] = {
            key: encoder.encode_many(group) for key, group in texts.items()
        }
        log.info(
            "slot neighbours: %s in %.1f s",
            {f"{i}.{s}": len(v) for (i, s), v in self._values.items()},
            time.perf_counter() - t0,
        )

    def slots(self) -> list[tuple[str, str]]:
        """The (intent, slot) pairs that have neighbours."""
        return list(self._values)

    def read(self, intent: str, slot: str, text: str) -> Reading | None:
        """The value the request's nearest labelled neighbours agree on, or None."""
        vectors = self._vectors.get((intent, slot))
        if vectors is None or not len(vectors):
            return None
        similarity = vectors @ self._encoder.encode_one(text)
        nearest = np.argsort(-similarity)[: self.k]
        votes: dict[SlotScalar, float] = defaultdict(float)
        for i in nearest:
            votes[self._values[(intent, slot)][i]] += max(0.0, float(similarity[i]))
        value, weight = max(votes.items(), key=lambda kv: kv[1])
        total = sum(votes.values())
        reading = Reading(value, float(similarity[nearest[0]]), weight / total if total else 0.0)
        if reading.similarity < self.min_similarity or reading.share < self.min_share:
            return None
        return reading

    def fill(
        self, intent: str, slots: dict[str, SlotValue], missing: list[str], text: str
    ) -> tuple[dict[str, SlotValue], list[str]]:
        """``slots`` with the missing ones the neighbours read, and what is still missing."""
        still: list[str] = []
        out = dict(slots)
        for slot in missing:
            reading = self.read(intent, slot, text)
            if reading is None:
                still.append(slot)
            else:
                out[slot] = SlotValue(name=slot, value=reading.value, text="")
        return out, still


def shared_neighbours(
    pack: Pack, resources: Resources, spotter: SlotSpotter, encoder: SentenceEncoder | None
) -> ValueNeighbours | None:
    """The pack's neighbours, built once per ``resources`` (about 1 s on 2 cores); None without
    an encoder or without a required text-list slot."""
    if encoder is None:
        return None
    built = resources.get(
        ("slot-neighbours", str(pack.root.resolve()), pack.content_hash),
        lambda: ValueNeighbours(pack, spotter, encoder),
    )
    return built if built.slots() else None
