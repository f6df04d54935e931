from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

from edgepipe.pack.loader import Pack
from edgepipe.pipeline import Assistant, load_assistant_pack
from edgepipe.testing.cloud import StandInCloud

ROOT = Path(__file__).resolve().parent.parent
HOTEL = ROOT / "packs" / "hotel"


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built encoder and trained routers, shared by the whole session (and its subprocesses)."""
    return tmp_path_factory.mktemp("edgepipe-cache")


@pytest.fixture(autouse=True)
def _edgepipe_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, shared_cache: Path
) -> Iterator[Path]:
    """No test writes to the real home directory; derived models are built once per session."""
    home = tmp_path_factory.mktemp("edgepipe-home")
    monkeypatch.setenv("EDGEPIPE_HOME", str(home))
    monkeypatch.setenv("EDGEPIPE_CACHE", str(shared_cache))
    yield home


@pytest.fixture(autouse=True)
def _unfreeze_heap() -> Iterator[None]:
    """The command line freezes the heap once loaded (``settle_heap``); a test that runs it in
    this process must not keep every object alive at that moment out of the collector's reach
    for the rest of the session."""
    yield
    gc.unfreeze()


@pytest.fixture(scope="session")
def cloud() -> Iterator[StandInCloud]:
    """One stand-in cloud (real llama_cpp.server + fault proxy on loopback) per session."""
    with StandInCloud() as stand_in:
        yield stand_in


@pytest.fixture(autouse=True)
def _clean_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    """Tests that use the shared cloud start and end with no fault, zeroed counters and no
    captured requests."""
    if "cloud" not in request.fixturenames:
        yield
        return
    stand_in: StandInCloud = request.getfixturevalue("cloud")
    stand_in.clear_fault()
    assert stand_in.proxy is not None
    stand_in.proxy.reset_stats()
    yield
    stand_in.clear_fault()


@pytest.fixture(scope="session")
def hotel_pack() -> Pack:
    return load_assistant_pack(HOTEL)


@pytest.fixture
def make_assistant(hotel_pack: Pack) -> Callable[..., Assistant]:
    """An assistant on the hotel pack at a fixed local time (default Wednesday 10:00).

    The local model and the cloud are off unless asked for (``local_model="auto"``): these
    tests are about the deterministic path; the model tiers have their own tests."""

    def make(
        at: str = "10:00",
        day: int = 25,
        router: object = "auto",
        local_model: object = None,
        cloud: object = None,
    ) -> Assistant:
        hh, mm = (int(p) for p in at.split(":"))
        moment = datetime(2026, 11, day, hh, mm, tzinfo=hotel_pack.timezone)
        return Assistant(
            hotel_pack,
            clock=lambda: moment,
            router=router,  # type: ignore[arg-type]
            local_model=local_model,  # type: ignore[arg-type]
            cloud=cloud,  # type: ignore[arg-type]
        )

    return make
