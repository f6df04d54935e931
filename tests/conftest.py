from __future__ import annotations

import dataclasses
import gc
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from edgepipe.core.resources import Resources
from edgepipe.engine.engine import Engine, load_engine_pack
from edgepipe.engine.session import Session
from edgepipe.pack.loader import Pack
from edgepipe.testing.cloud import StandInCloud
from edgepipe.tiers.base import Tier
from tests.fakes import cloud_tier_of

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
def resources() -> Iterator[Resources]:
    """The session's models (encoder, router, matcher, the local model): each is loaded once
    for every engine the tests build, and closed when the session ends."""
    with Resources() as shared:
        yield shared


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
    return load_engine_pack(HOTEL)


_OFF = object()


@pytest.fixture
def make_engine(hotel_pack: Pack, resources: Resources) -> Iterator[Callable[..., Engine]]:
    """An engine on the hotel pack at a fixed local time (default Wednesday 25 Nov 10:00),
    sharing the session's models; closed after the test.

    The local model and the cloud are off unless asked for (``local_model="auto"``, or a tier):
    these tests are about the deterministic path; the model tiers have their own tests."""
    engines: list[Engine] = []

    def make(
        at: str = "10:00",
        day: int = 25,
        router: object = "auto",
        local_model: object = None,
        cloud: object = None,
        pack: Pack | None = None,
        **options: object,
    ) -> Engine:
        the_pack = pack or hotel_pack
        hh, mm = (int(p) for p in at.split(":"))
        moment = datetime(2026, 11, day, hh, mm, tzinfo=the_pack.timezone)
        tiers: dict[str, Tier | None] = {}
        for name, choice in (("local_model", local_model), ("cloud", cloud)):
            if choice is None:
                tiers[name] = None
            elif choice != "auto":
                tiers[name] = choice  # type: ignore[assignment]
        engine = Engine(
            the_pack,
            clock=lambda: moment,
            router=router,  # type: ignore[arg-type]
            tiers=tiers,
            resources=resources,
            **options,  # type: ignore[arg-type]
        )
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.close()


@pytest.fixture
def make_session(make_engine: Callable[..., Engine]) -> Callable[..., Session]:
    """The default room's session on a fresh engine (``make_engine``'s options)."""

    def make(*args: object, **options: object) -> Session:
        return make_engine(*args, **options).session()

    return make


@pytest.fixture
def cloud_assistant(resources: Resources) -> Iterator[Callable[[Pack], Session]]:
    """``cloud_assistant(pack)``: a session on a new engine for ``pack`` (no local model; the
    cloud as the pack says, at ``EDGEPIPE_CLOUD_BASE_URL``), sharing the session's models,
    closed after the test."""
    engines: list[Engine] = []

    def make(pack: Pack) -> Session:
        moment = datetime(2026, 11, 25, 10, 0, tzinfo=pack.timezone)
        engine = Engine(
            pack, clock=lambda: moment, tiers={"local_model": None}, resources=resources
        )
        engines.append(engine)
        return engine.session()

    yield make
    for engine in engines:
        engine.close()


@pytest.fixture
def make_engine_on(
    cloud: StandInCloud,
    hotel_pack: Pack,
    resources: Resources,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[..., Engine]]:
    """``make_engine_on(home=None, **cloud_overrides)``: an engine whose cloud is the stand-in,
    on a copy of the hotel pack with these cloud settings (max_tokens 8 unless given), sharing
    the session's models; its cloud files (audit log, outbox, ledger) in ``home`` when given."""
    monkeypatch.setenv("EDGEPIPE_CLOUD_BASE_URL", cloud.base_url)
    made: list[Engine] = []

    def make(home: Path | None = None, **overrides: Any) -> Engine:
        spec = hotel_pack.spec.cloud.model_copy(update={"max_tokens": 8, **overrides})
        pack = dataclasses.replace(
            hotel_pack, spec=hotel_pack.spec.model_copy(update={"cloud": spec})
        )
        moment = datetime(2026, 11, 25, 10, 0, tzinfo=pack.timezone)
        engine = Engine(
            pack,
            clock=lambda: moment,
            tiers={"local_model": None},
            resources=resources,
            home=home,
        )
        made.append(engine)
        cloud_tier_of(engine)
        return engine

    yield make
    for engine in made:
        engine.close()
