from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

from edgepipe.pack.loader import Pack
from edgepipe.pipeline import Assistant, load_assistant_pack

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


@pytest.fixture(scope="session")
def hotel_pack() -> Pack:
    return load_assistant_pack(HOTEL)


@pytest.fixture
def make_assistant(hotel_pack: Pack) -> Callable[..., Assistant]:
    """An assistant on the hotel pack at a fixed local time (default Wednesday 10:00)."""

    def make(at: str = "10:00", day: int = 25, router: object = "auto") -> Assistant:
        hh, mm = (int(p) for p in at.split(":"))
        moment = datetime(2026, 11, day, hh, mm, tzinfo=hotel_pack.timezone)
        return Assistant(hotel_pack, clock=lambda: moment, router=router)

    return make
