"""Text commands: ``ask`` one request, ``chat`` interactively, ``check`` a pack, ``trace``
recent turns."""

from __future__ import annotations

import sys
from dataclasses import asdict
from typing import Annotated

import typer
from rich.table import Table

from edgepipe.cli.app import (
    EXIT_FAILED,
    EXIT_USAGE,
    AtOpt,
    DbOpt,
    JsonOpt,
    NoTelemetryOpt,
    PackArg,
    app,
    clock_at,
    engine_for,
    err,
    fail,
    load,
    log,
    out,
    read_stdin,
)
from edgepipe.core.errors import InputError
from edgepipe.core.heap import settle_heap
from edgepipe.core.paths import default_db_path
from edgepipe.core.types import TurnResult
from edgepipe.telemetry.store import TelemetryStore


def stage_summary(result: TurnResult) -> str:
    return " · ".join(f"{s.stage} {s.duration_ms:.1f}" for s in result.trace.spans)


@app.command()
def ask(
    pack_path: PackArg,
    text: Annotated[
        str | None, typer.Argument(help="The request. '-' or nothing: read it from stdin.")
    ] = None,
    as_json: JsonOpt = False,
    at: AtOpt = None,
    no_telemetry: NoTelemetryOpt = False,
    db: DbOpt = None,
) -> None:
    """Answer one request."""
    if text is None or text == "-":
        if text is None and sys.stdin.isatty():
            fail(
                "no request given (pass TEXT, or pipe it on stdin)",
                code="usage",
                exit_code=EXIT_USAGE,
            )
        text = read_stdin(as_json)
    pack = load(pack_path, as_json=as_json)
    with engine_for(pack, no_telemetry=no_telemetry, db=db, clock=clock_at(pack, at)) as engine:
        try:
            result = engine.session().handle_text(text)
        except InputError as exc:
            fail(str(exc), code=exc.code, exit_code=EXIT_USAGE, as_json=as_json)
    if as_json:
        out.print_json(data=result.as_dict())
        return
    out.print(result.reply.text, markup=False)
    intent = result.intent.name if result.intent else "-"
    err.print(
        f"[dim]{result.decision.route} ({result.decision.reason}) · {intent} · "
        f"{result.total_ms:.1f} ms[/]",
        markup=True,
    )


@app.command()
def chat(
    pack_path: PackArg,
    at: AtOpt = None,
    no_telemetry: NoTelemetryOpt = False,
    db: DbOpt = None,
) -> None:
    """Talk to a pack interactively; each turn shows its route and stage timings."""
    pack = load(pack_path)
    with engine_for(pack, no_telemetry=no_telemetry, db=db, clock=clock_at(pack, at)) as engine:
        session = engine.session()
        log.debug("heap settled in %.0f ms", settle_heap())
        out.print(
            f"[bold]{pack.name}[/] {pack.spec.version} · type a request, /state, or /quit",
            markup=True,
        )
        while True:
            try:
                line = input("you> ")
            except (EOFError, KeyboardInterrupt):
                out.print()
                break
            if line.strip() in {"/quit", "/exit", "/q"}:
                break
            if line.strip() == "/state":
                for key in session.state.keys(prefix=""):
                    out.print(f"  {key} = {session.state.get(key)}", markup=False)
                for request in session.state.requests():
                    out.print(
                        f"  request {request.request_id}: {request.kind} {dict(request.details)}",
                        markup=False,
                    )
                continue
            try:
                result = session.handle_text(line)
            except InputError as exc:
                err.print(f"[yellow]{exc}[/]", markup=True)
                continue
            out.print(f"[bold cyan]bot>[/] {result.reply.text}", markup=True)
            intent = result.intent.name if result.intent else "-"
            slots = result.intent.slot_values() if result.intent else {}
            out.print(
                f"[dim]     {result.decision.route} ({result.decision.reason}) · {intent} "
                f"{slots or ''} · {result.total_ms:.1f} ms · {stage_summary(result)}[/]",
                markup=True,
            )


@app.command()
def check(pack_path: PackArg) -> None:
    """Validate a pack; exits 1 listing every problem."""
    pack = load(pack_path)
    templates = sum(len(i.spec.templates) for i in pack.intents.values())
    out.print(
        f"ok: pack '{pack.name}' {pack.spec.version}: {len(pack.intents)} intents, "
        f"{templates} templates, {len(pack.lists)} slot lists, {len(pack.rules)} rules",
        markup=False,
    )


@app.command()
def trace(
    last: Annotated[int, typer.Option("--last", "-n", min=1, help="How many turns.")] = 10,
    as_json: JsonOpt = False,
    db: DbOpt = None,
) -> None:
    """Show the most recent turns from the telemetry store, with their per-stage trace."""
    path = db or default_db_path()
    if not path.exists():
        fail(
            f"no telemetry database at {path}",
            code="no_telemetry",
            exit_code=EXIT_FAILED,
            as_json=as_json,
        )
    store = TelemetryStore(path)
    try:
        rows = store.recent(last)
    except Exception as exc:  # sqlite3 raises several types for a damaged file
        fail(
            f"cannot read {path}: {exc}",
            code="telemetry_unreadable",
            exit_code=EXIT_FAILED,
            as_json=as_json,
        )
    finally:
        store.close()
    if as_json:
        out.print_json(data={"turns": [asdict(row) for row in rows]})
        return
    table = Table(title=f"last {len(rows)} turns · {path}", show_lines=False)
    for col in ("time (UTC)", "request (redacted)", "route", "intent", "ms", "stages"):
        table.add_column(col, overflow="fold")
    for row in reversed(rows):
        stages = " · ".join(f"{s['stage']} {s['ms']:.1f}" for s in row.trace)
        table.add_row(
            row.ts[11:23], row.text_redacted, f"{row.route}\n[dim]{row.reason}[/]",
            row.intent or "-", f"{row.total_ms:.1f}", stages,
        )  # fmt: skip
    out.print(table)
