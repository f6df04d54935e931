"""``edgepipe demo``: the pack's scripted guest requests, with the stand-in cloud up, then down.

The stand-in cloud (llama-cpp-python's server behind the fault proxy, from
:mod:`edgepipe.testing.cloud`) is a testing double: it is imported here, when the demo starts
it, and by nothing the runtime imports.
"""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from edgepipe.cli.app import (
    DEFAULT_PACK,
    EXIT_FAILED,
    DbOpt,
    NoTelemetryOpt,
    app,
    engine_for,
    err,
    fail,
    load,
    out,
)
from edgepipe.cli.text import stage_summary
from edgepipe.core.types import TurnResult
from edgepipe.engine.engine import Engine
from edgepipe.engine.session import Session
from edgepipe.pack.loader import Pack


@app.command()
def demo(
    pack_path: Annotated[Path, typer.Argument(help="Pack folder.")] = DEFAULT_PACK,
    no_telemetry: NoTelemetryOpt = False,
    db: DbOpt = None,
    cloud: Annotated[
        bool,
        typer.Option(
            "--cloud/--no-cloud",
            help="Start the stand-in cloud on the pack's loopback URL for the demo, then show "
            "the same requests with it down.",
        ),
    ] = True,
) -> None:
    """Run the pack's scripted guest requests and show how each was handled."""
    pack = load(pack_path)
    if not pack.spec.demo:
        fail(
            f"pack {pack.name} has no demo script (pack.yaml: demo)",
            code="no_demo",
            exit_code=EXIT_FAILED,
        )
    moment = {
        "now": datetime.now(pack.timezone).replace(hour=9, minute=30, second=0, microsecond=0)
    }
    stand_in = _start_stand_in(pack) if cloud else None
    results: list[TurnResult] = []
    recorded: Path | None = None
    try:
        with engine_for(
            pack, no_telemetry=no_telemetry, db=db, clock=lambda: moment["now"]
        ) as engine:
            recorded = engine.telemetry.path if engine.telemetry is not None else None
            results = _run_demo(engine, pack, moment, stand_in)
    finally:
        if stand_in is not None:
            stand_in.stop()
    routes = Counter(str(r.decision.route) for r in results)
    totals = sorted(r.total_ms for r in results)
    out.print(
        f"{len(results)} turns · routes: "
        + ", ".join(f"{k} {v}" for k, v in routes.most_common())
        + f" · median {statistics.median(totals):.1f} ms, max {totals[-1]:.1f} ms"
        + ("" if recorded is None else f" · recorded in {recorded} (see: edgepipe trace)"),
        markup=False,
    )


def _run_demo(
    engine: Engine, pack: Pack, moment: dict[str, datetime], stand_in: Any
) -> list[TurnResult]:
    """The script in one room; with the stand-in cloud, its cloud turns again with it down."""
    session = engine.session()
    results: list[TurnResult] = []
    script = [
        (turn, None) if isinstance(turn, str) else (turn.text, turn.at) for turn in pack.spec.demo
    ]
    title = f"edgepipe demo · pack '{pack.name}' · room {pack.spec.context.room.number}"
    results += _demo_table(session, script, moment, title)
    if stand_in is not None and "cloud" in engine.tiers:
        stand_in.stop()
        again = [
            (text, at)
            for text, at in script
            if any(r.request.text == text and r.decision.route == "cloud" for r in results)
        ]
        again.append(("book a table for two tonight at 8", "19:00"))
        results += _demo_table(session, again, moment, "the same requests with the cloud down")
    return results


def _demo_table(
    session: Session,
    script: list[tuple[str, str | None]],
    moment: dict[str, datetime],
    title: str,
) -> list[TurnResult]:
    table = Table(title=title)
    for col in ("at", "guest", "route", "intent / slots", "reply", "stages (ms)", "total"):
        table.add_column(col, overflow="fold")
    results: list[TurnResult] = []
    for text, at in script:
        if at is not None:
            hh, mm = (int(p) for p in at.split(":"))
            moment["now"] = moment["now"].replace(hour=hh % 24, minute=mm)
        result = session.handle_text(text)
        results.append(result)
        intent = result.intent.name if result.intent else "-"
        slots = (
            ", ".join(f"{k}={v}" for k, v in result.intent.slot_values().items())
            if result.intent
            else ""
        )
        route = f"{result.decision.route}\n[dim]{result.decision.reason}[/]"
        table.add_row(
            moment["now"].strftime("%H:%M"),
            text,
            route,
            f"{intent}\n[dim]{slots}[/]",
            result.reply.text,
            stage_summary(result),
            f"{result.total_ms:.1f}",
        )
    out.print(table)
    return results


def _start_stand_in(pack: Pack) -> Any:
    """The stand-in cloud on the pack's loopback URL, or None (not configured, not installed,
    not on loopback, or the port is in use: then whatever listens there is the cloud)."""
    import os
    from urllib.parse import urlsplit

    if not pack.spec.cloud.enabled:
        return None
    url = os.environ.get("EDGEPIPE_CLOUD_BASE_URL") or pack.spec.cloud.base_url or ""
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost") or parts.port is None:
        return None
    try:
        from edgepipe.testing.cloud import CloudStartError, StandInCloud, port_in_use
    except ImportError as exc:
        err.print(f"stand-in cloud not available ({exc}); the cloud turns fall back")
        return None
    if port_in_use(parts.hostname, parts.port):
        err.print(f"{url} is already served; using it as the cloud")
        return None
    err.print(f"starting the stand-in cloud (llama_cpp.server + fault proxy) on {url} ...")
    try:
        return StandInCloud(proxy_port=parts.port, n_threads=2).start()
    except (CloudStartError, FileNotFoundError, OSError) as exc:
        err.print(f"stand-in cloud did not start: {exc}; the cloud turns fall back")
        return None
