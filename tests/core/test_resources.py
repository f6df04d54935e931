"""The keyed store of shared models: built once per key, closed once, newest first."""

from __future__ import annotations

import threading

import pytest

from edgepipe.core.resources import Resources


def test_one_build_per_key_even_when_asked_at_once() -> None:
    builds: list[str] = []
    started = threading.Barrier(8)
    store = Resources()

    def build() -> object:
        builds.append("x")
        return object()

    got: list[object] = []

    def ask() -> None:
        started.wait(10)
        got.append(store.get(("model", 1), build))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert builds == ["x"] and len({id(g) for g in got}) == 1
    assert store.get(("model", 2), build) is not got[0]  # another key, another thing


def test_a_failed_build_stores_nothing() -> None:
    store = Resources()

    def broken() -> object:
        raise OSError("no such model")

    with pytest.raises(OSError):
        store.get("m", broken)
    assert "m" not in store
    assert store.get("m", lambda: 7) == 7


def test_close_closes_everything_once_newest_first_despite_errors() -> None:
    closed: list[str] = []
    store = Resources()
    store.get("a", lambda: "a", close=closed.append)

    def bad(_: str) -> None:
        closed.append("b")
        raise RuntimeError("already closed")

    store.get("b", lambda: "b", close=bad)
    store.get("c", lambda: "c", close=closed.append)
    store.close()
    store.close()
    assert closed == ["c", "b", "a"]
    with pytest.raises(RuntimeError, match="closed"):
        store.get("d", lambda: "d")
