"""Settling the heap (:mod:`edgepipe.core.heap`)."""

from __future__ import annotations

import gc
import weakref

from edgepipe.core.heap import settle_heap


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def test_settle_heap_collects_garbage_then_freezes_what_is_left() -> None:
    garbage = _Node()
    gone = weakref.ref(garbage)
    del garbage
    kept = [_Node() for _ in range(1000)]
    settle_heap()  # tests/conftest.py unfreezes the heap after each test
    assert gone() is None, "cyclic garbage from before settling was frozen instead of collected"
    assert gc.get_freeze_count() >= len(kept)
    # what a turn allocates afterwards is still collected
    later = _Node()
    later_ref = weakref.ref(later)
    del later
    gc.collect()
    assert later_ref() is None


def test_full_collections_after_settling_do_not_visit_the_frozen_heap() -> None:
    _heap = [[i] for i in range(200_000)]  # tracked containers, like a loaded pipeline's
    before = len(gc.get_objects())
    settle_heap()
    after = len(gc.get_objects())
    assert before - after >= 200_000
    assert len(_heap) == 200_000
