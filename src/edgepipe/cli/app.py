"""The Typer application, its shared options, and the pieces every command uses.

Exit codes: 0 success; 1 the pack or a data file is invalid, or the run failed; 2 bad usage or
unusable input (empty, too long, not UTF-8). Errors are one clear message on stderr (and, with
``--json``, an ``{"error": {...}}`` object on stdout), never a traceback unless ``--debug``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, time
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.logging import RichHandler

from edgepipe import __version__
from edgepipe.core.errors import PackError
from edgepipe.engine.engine import Engine, load_engine_pack
from edgepipe.pack.loader import Pack
from edgepipe.telemetry.store import TelemetryStore

app = typer.Typer(
    name="edgepipe",
    help="Run local-first assistant packs: rules first, models where they earn it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
eval_app = typer.Typer(help="Measure a pack against labelled data.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")

log = logging.getLogger("edgepipe.cli")
out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False, soft_wrap=True)
state: dict[str, bool] = {"debug": False}

EXIT_FAILED = 1
EXIT_USAGE = 2
DEFAULT_PACK = Path("packs/hotel")

PackArg = Annotated[Path, typer.Argument(help="Pack folder (or its pack.yaml).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
AtOpt = Annotated[
    str | None,
    typer.Option("--at", help="Pretend the local time is HH:MM today, or an ISO date-time."),
]
NoTelemetryOpt = Annotated[
    bool, typer.Option("--no-telemetry", help="Do not record turns in the telemetry store.")
]
DbOpt = Annotated[
    Path | None,
    typer.Option("--db", help="Telemetry database (default $EDGEPIPE_HOME/telemetry.db)."),
]


def fail(message: str, *, code: str, exit_code: int, as_json: bool = False) -> NoReturn:
    """Print a coded error (and its JSON form with ``--json``) and exit."""
    if as_json:
        out.print_json(data={"error": {"code": code, "message": message}})
    err.print(f"[bold red]error:[/] {message}", markup=True, highlight=False)
    raise typer.Exit(exit_code)


def load(pack_path: Path, *, as_json: bool = False) -> Pack:
    """Load a pack, or exit 1 listing every problem in it."""
    try:
        return load_engine_pack(pack_path)
    except PackError as exc:
        if as_json:
            out.print_json(
                data={
                    "error": {
                        "code": exc.code,
                        "message": str(exc),
                        "issues": [str(i) for i in exc.issues],
                    }
                }
            )
        err.print(f"[bold red]error:[/] pack {pack_path} is invalid:", markup=True)
        for issue in exc.issues:
            err.print(f"  {issue}", markup=False)
        raise typer.Exit(EXIT_FAILED) from None


def clock_at(pack: Pack, at: str | None) -> Callable[[], datetime] | None:
    """The ``--at`` clock: a fixed local time, or None for the real one."""
    if at is None:
        return None
    tz = pack.timezone
    try:
        if len(at) <= 5 and ":" in at:
            parsed = time.fromisoformat(at.zfill(5))
            moment = datetime.now(tz).replace(
                hour=parsed.hour, minute=parsed.minute, second=0, microsecond=0
            )
        else:
            moment = datetime.fromisoformat(at)
            moment = moment.replace(tzinfo=tz) if moment.tzinfo is None else moment.astimezone(tz)
    except ValueError:
        fail(f"--at {at!r} is not HH:MM or an ISO date-time", code="usage", exit_code=EXIT_USAGE)
    return lambda: moment


def telemetry_store(pack: Pack, disabled: bool, db: Path | None = None) -> TelemetryStore | None:
    """The store a command records turns in (None with ``--no-telemetry`` or when the pack
    turns telemetry off)."""
    if disabled or not pack.spec.telemetry.enabled:
        return None
    path = db or (Path(pack.spec.telemetry.path) if pack.spec.telemetry.path else None)
    return TelemetryStore(
        path,
        store_raw_text=pack.spec.telemetry.store_raw_text,
        redact_names=[n for n in [pack.spec.context.room.guest_name] if n],
    )


@contextmanager
def engine_for(
    pack: Pack,
    *,
    no_telemetry: bool,
    db: Path | None,
    clock: Callable[[], datetime] | None = None,
) -> Iterator[Engine]:
    """An engine for a command, closed (telemetry written, tiers and models released) however
    the command ends."""
    engine = Engine(pack, telemetry=telemetry_store(pack, no_telemetry, db), clock=clock)
    try:
        yield engine
    finally:
        engine.close()


def read_stdin(as_json: bool) -> str:
    """Standard input as UTF-8 text, or exit 2 naming the first bad byte."""
    data = sys.stdin.buffer.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        fail(
            f"stdin is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})",
            code="input_not_utf8",
            exit_code=EXIT_USAGE,
            as_json=as_json,
        )


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")] = False,
    version: Annotated[bool, typer.Option("--version", help="Print the version.")] = False,
) -> None:
    state["debug"] = debug
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=err, show_path=debug, rich_tracebacks=debug)],
    )
    if version:
        out.print(f"edgepipe {__version__}")
        raise typer.Exit(0)
