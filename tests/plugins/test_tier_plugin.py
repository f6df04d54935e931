"""A tier from another package, registered through the ``edgepipe.tiers`` entry point, chosen
by a pack and used in real turns, with no change to edgepipe's own modules."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from edgepipe.core.errors import PackError
from edgepipe.core.resources import Resources
from edgepipe.core.types import Route
from edgepipe.engine.engine import Engine, load_engine_pack
from edgepipe.telemetry.store import TelemetryStore

PLUGIN = Path(__file__).resolve().parent / "clock_tier"
HOTEL = Path(__file__).resolve().parents[2] / "packs" / "hotel"


def pack_with_clock(root: Path) -> Path:
    """A copy of the hotel pack that asks the clock tier first about out-of-scope requests."""
    shutil.copytree(HOTEL, root)
    spec: dict[str, Any] = yaml.safe_load((root / "pack.yaml").read_text(encoding="utf-8"))
    spec["policy"]["out_of_scope"] = ["clock", "local_model", "cloud", "degraded"]
    spec["tiers"] = {"clock": {"say": "It is {time} here."}}
    (root / "pack.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return root


def test_a_pack_naming_a_tier_nobody_installed_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PackError) as info:
        load_engine_pack(pack_with_clock(tmp_path / "pack"))
    assert "unknown tier 'clock'" in str(info.value)
    assert "policy.out_of_scope[0]" in str(info.value)


def test_the_installed_tier_answers_real_turns(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    install_plugin: Callable[..., None],
    resources: Resources,
) -> None:
    install_plugin(PLUGIN, tmp_path / "site", monkeypatch)
    pack = load_engine_pack(pack_with_clock(tmp_path / "pack"))
    moment = datetime(2026, 11, 25, 21, 40, tzinfo=pack.timezone)
    engine = Engine(
        pack,
        clock=lambda: moment,
        tiers={"local_model": None, "cloud": None},
        telemetry=TelemetryStore(tmp_path / "turns.db"),
        resources=resources,
    )
    try:
        clock = engine.tiers["clock"]
        assert type(clock).__module__ == "edgepipe_clock_tier"  # from the plugin package
        assert clock.prepared  # type: ignore[attr-defined]
        room = engine.session()

        asked = room.handle_text("sorry, what time is it?")
        assert asked.decision.route == "clock"
        assert asked.decision.reason == "clock:time"
        assert asked.reply.text == "It is 21:40 here."
        span = asked.trace.stage("clock")
        assert span is not None and span.outcome.value == "ok"

        other = room.handle_text("plan a three day trip to Lisbon for me")
        assert other.decision.route is Route.FALLBACK  # the clock passed it on
        assert other.trace.stage("clock") is not None

        lights = room.handle_text("turn off the lights in the bedroom")
        assert lights.decision.route is Route.RULES and lights.trace.stage("clock") is None

        assert engine.flush_telemetry(10) and engine.telemetry is not None
        routes = {row.turn_id: row.route for row in engine.telemetry.recent(10)}
        assert routes[asked.request.turn_id] == "clock"
        assert asked.as_dict()["route"] == "clock"
    finally:
        engine.close()
    assert clock.closed  # type: ignore[attr-defined]
