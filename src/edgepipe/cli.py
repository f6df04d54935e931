"""The ``edgepipe`` command line.

Exit codes: 0 success; 1 the pack or a data file is invalid, or the run failed; 2 bad usage or
unusable input (empty, too long, not UTF-8). Errors are one clear message on stderr (and, with
``--json``, an ``{"error": {...}}`` object on stdout), never a traceback unless ``--debug``.
"""

from __future__ import annotations

import logging
import statistics
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime, time
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from edgepipe import __version__
from edgepipe.errors import EdgepipeError, InputError, PackError
from edgepipe.frames import TurnResult
from edgepipe.pack.loader import Pack
from edgepipe.pipeline import Assistant, load_assistant_pack
from edgepipe.runtime import settle_heap
from edgepipe.telemetry.store import TelemetryStore, default_db_path

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
_state: dict[str, bool] = {"debug": False}

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


def _fail(message: str, *, code: str, exit_code: int, as_json: bool = False) -> NoReturn:
    if as_json:
        out.print_json(data={"error": {"code": code, "message": message}})
    err.print(f"[bold red]error:[/] {message}", markup=True, highlight=False)
    raise typer.Exit(exit_code)


def _load(pack_path: Path, *, as_json: bool = False) -> Pack:
    try:
        return load_assistant_pack(pack_path)
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


def _clock(pack: Pack, at: str | None) -> Any:
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
        _fail(f"--at {at!r} is not HH:MM or an ISO date-time", code="usage", exit_code=EXIT_USAGE)
    return lambda: moment


def _telemetry(pack: Pack, disabled: bool, db: Path | None = None) -> TelemetryStore | None:
    if disabled or not pack.spec.telemetry.enabled:
        return None
    path = db or (Path(pack.spec.telemetry.path) if pack.spec.telemetry.path else None)
    return TelemetryStore(
        path,
        store_raw_text=pack.spec.telemetry.store_raw_text,
        redact_names=[n for n in [pack.spec.context.room.guest_name] if n],
    )


def _read_stdin(as_json: bool) -> str:
    data = sys.stdin.buffer.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        _fail(
            f"stdin is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})",
            code="input_not_utf8",
            exit_code=EXIT_USAGE,
            as_json=as_json,
        )


def _stage_summary(result: TurnResult) -> str:
    return " · ".join(f"{s.stage} {s.duration_ms:.1f}" for s in result.trace.spans)


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")] = False,
    version: Annotated[bool, typer.Option("--version", help="Print the version.")] = False,
) -> None:
    _state["debug"] = debug
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=err, show_path=debug, rich_tracebacks=debug)],
    )
    if version:
        out.print(f"edgepipe {__version__}")
        raise typer.Exit(0)


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
            _fail(
                "no request given (pass TEXT, or pipe it on stdin)",
                code="usage",
                exit_code=EXIT_USAGE,
            )
        text = _read_stdin(as_json)
    pack = _load(pack_path, as_json=as_json)
    store = _telemetry(pack, no_telemetry, db)
    assistant = Assistant(pack, telemetry=store, clock=_clock(pack, at))
    try:
        result = assistant.handle_text(text)
    except InputError as exc:
        _fail(str(exc), code=exc.code, exit_code=EXIT_USAGE, as_json=as_json)
    finally:
        if store is not None:
            store.close()
    if as_json:
        out.print_json(data=result.as_dict())
        return
    out.print(result.reply.text, markup=False)
    intent = result.intent.name if result.intent else "-"
    err.print(
        f"[dim]{result.decision.route.value} ({result.decision.reason}) · {intent} · "
        f"{result.total_ms:.1f} ms[/]",
        markup=True,
    )


@app.command()
def listen(
    pack_path: PackArg,
    wav: Annotated[
        Path | None, typer.Option("--wav", help="A WAV file (any rate, width, channels).")
    ] = None,
    pcm: Annotated[
        str | None,
        typer.Option("--pcm", help="Raw signed 16-bit little-endian mono PCM: a file, or '-'."),
    ] = None,
    rate: Annotated[int, typer.Option("--rate", help="Sample rate of --pcm audio.")] = 16000,
    mic: Annotated[bool, typer.Option("--mic", help="Listen to the default microphone.")] = False,
    out_path: Annotated[
        Path | None, typer.Option("--out", help="Write the spoken reply(s) to this WAV file.")
    ] = None,
    no_wake: Annotated[
        bool,
        typer.Option("--no-wake", help="Push-to-talk: no wake word, every utterance is a turn."),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object per turn.")
    ] = False,
    speaker: Annotated[
        bool | None,
        typer.Option(
            "--speaker/--no-speaker",
            help="Play replies on the default output device as they are synthesized "
            "(default: with --mic only). The microphone is muted while a reply plays.",
        ),
    ] = None,
    at: AtOpt = None,
    no_telemetry: NoTelemetryOpt = False,
    db: DbOpt = None,
) -> None:
    """Voice turns: wake word, endpointing, speech recognition, the turn, speech synthesis."""
    import json

    import numpy as np

    from edgepipe.voice.audio import Audio, chunks, from_pcm, load_wav, write_wav
    from edgepipe.voice.playback import Speaker
    from edgepipe.voice.session import VoiceAssistant

    sources = sum(x is not None for x in (wav, pcm)) + int(mic)
    if sources != 1:
        _fail("give exactly one of --wav, --pcm or --mic", code="usage", exit_code=EXIT_USAGE)
    audio: Audio | None = None
    try:
        if wav is not None:
            audio = load_wav(wav)
        elif pcm is not None:
            data = sys.stdin.buffer.read() if pcm == "-" else Path(pcm).read_bytes()
            audio = from_pcm(data, rate=rate, name="<stdin>" if pcm == "-" else pcm)
    except EdgepipeError as exc:
        _fail(str(exc), code=exc.code, exit_code=EXIT_USAGE, as_json=as_json)
    except OSError as exc:
        _fail(f"cannot read audio: {exc}", code="audio_missing", exit_code=EXIT_USAGE)
    pack = _load(pack_path, as_json=as_json)
    store = _telemetry(pack, no_telemetry, db)
    assistant = Assistant(pack, telemetry=store, clock=_clock(pack, at))
    replies: list[Any] = []
    rate_out = 0
    player: Speaker | None = None
    interrupted = False
    try:
        voice = VoiceAssistant.from_assistant(assistant)
        log.debug("heap settled in %.0f ms", settle_heap())
        if audio is not None and audio.clipped:
            err.print(f"[yellow]warning:[/] input is clipped ({audio.clipped_fraction:.1%})")
        if speaker if speaker is not None else mic:
            player = Speaker()
            voice.reply_sink = player.play
        if audio is not None:
            turns = voice.stream(chunks(audio), require_wake=not no_wake)
        else:
            turns = voice.stream(
                _mic_frames(player.gate if player else None), require_wake=not no_wake
            )
        for turn in turns:
            if turn.reply_audio is not None:
                replies.append(turn.reply_audio)
                rate_out = turn.reply_rate
            if as_json:
                print(json.dumps(turn.as_dict(), ensure_ascii=False), flush=True)
            else:
                heard = turn.transcript or "-"
                out.print(f"{turn.response or '(no reply)'}", markup=False)
                latency = turn.end_of_speech_to_first_audio_ms
                took = f"{latency:.0f} ms" if latency is not None else "-"
                err.print(
                    f"[dim]{turn.outcome} · heard {heard!r} via {turn.asr_path or '-'} · "
                    f"{(turn.result.intent.name if turn.result and turn.result.intent else '-')}"
                    f" · {took}[/]",
                    markup=True,
                )
    except EdgepipeError as exc:
        _fail(str(exc), code=exc.code, exit_code=EXIT_FAILED, as_json=as_json)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if store is not None:
            store.close()
        if player is not None:
            if not interrupted:
                player.drain(timeout_s=30)  # let the last reply finish
            player.close()
            if player.error is not None:
                err.print(f"[yellow]warning:[/] replies were not played: {player.error}")
    if out_path is not None:
        silence = np.zeros(int(0.3 * (rate_out or 16000)), dtype=np.float32)
        joined = [part for reply in replies for part in (reply, silence)]
        write_wav(out_path, np.concatenate(joined) if joined else silence, rate_out or 16000)


def _mic_frames(gate: Callable[[bytes], bytes] | None = None) -> Any:
    """10 ms frames from the default input device (sounddevice; an optional extra). ``gate``:
    applied to each frame as it is captured (the speaker mutes the microphone while a reply
    plays)."""
    import queue

    from edgepipe.voice.audio import FRAME_BYTES, SAMPLE_RATE

    try:
        import sounddevice as sd
    except (ImportError, OSError) as exc:
        raise EdgepipeError(
            f"--mic needs sounddevice and PortAudio ({exc}); pip install sounddevice",
            code="mic_unavailable",
        ) from exc
    frames: queue.Queue[bytes] = queue.Queue()

    def callback(data: Any, _frames: int, _time: Any, _status: Any) -> None:
        frame = bytes(data)
        frames.put(gate(frame) if gate is not None else frame)

    try:
        stream = sd.RawInputStream(
            samplerate=SAMPLE_RATE,
            channels=1,
            dtype="int16",
            blocksize=FRAME_BYTES // 2,
            callback=callback,
        )
    except Exception as exc:
        raise EdgepipeError(f"cannot open the microphone: {exc}", code="mic_unavailable") from exc
    with stream:
        err.print("[dim]listening (Ctrl-C to stop)[/]", markup=True)
        while True:
            yield frames.get()


@app.command()
def chat(
    pack_path: PackArg,
    at: AtOpt = None,
    no_telemetry: NoTelemetryOpt = False,
    db: DbOpt = None,
) -> None:
    """Talk to a pack interactively; each turn shows its route and stage timings."""
    pack = _load(pack_path)
    store = _telemetry(pack, no_telemetry, db)
    assistant = Assistant(pack, telemetry=store, clock=_clock(pack, at))
    log.debug("heap settled in %.0f ms", settle_heap())
    out.print(
        f"[bold]{pack.name}[/] {pack.spec.version} · type a request, /state, or /quit", markup=True
    )
    try:
        while True:
            try:
                line = input("you> ")
            except (EOFError, KeyboardInterrupt):
                out.print()
                break
            if line.strip() in {"/quit", "/exit", "/q"}:
                break
            if line.strip() == "/state":
                for key in assistant.state.keys(prefix=""):
                    out.print(f"  {key} = {assistant.state.get(key)}", markup=False)
                for request in assistant.state.requests():
                    out.print(
                        f"  request {request.request_id}: {request.kind} {dict(request.details)}",
                        markup=False,
                    )
                continue
            try:
                result = assistant.handle_text(line)
            except InputError as exc:
                err.print(f"[yellow]{exc}[/]", markup=True)
                continue
            out.print(f"[bold cyan]bot>[/] {result.reply.text}", markup=True)
            intent = result.intent.name if result.intent else "-"
            slots = result.intent.slot_values() if result.intent else {}
            out.print(
                f"[dim]     {result.decision.route.value} ({result.decision.reason}) · {intent} "
                f"{slots or ''} · {result.total_ms:.1f} ms · {_stage_summary(result)}[/]",
                markup=True,
            )
    finally:
        if store is not None:
            store.close()


@app.command()
def check(pack_path: PackArg) -> None:
    """Validate a pack; exits 1 listing every problem."""
    pack = _load(pack_path)
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
        _fail(
            f"no telemetry database at {path}",
            code="no_telemetry",
            exit_code=EXIT_FAILED,
            as_json=as_json,
        )
    store = TelemetryStore(path)
    try:
        rows = store.recent(last)
    except Exception as exc:  # sqlite3 raises several types for a damaged file
        _fail(
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
    pack = _load(pack_path)
    if not pack.spec.demo:
        _fail(
            f"pack {pack.name} has no demo script (pack.yaml: demo)",
            code="no_demo",
            exit_code=EXIT_FAILED,
        )
    store = _telemetry(pack, no_telemetry, db)
    moment = {
        "now": datetime.now(pack.timezone).replace(hour=9, minute=30, second=0, microsecond=0)
    }
    stand_in = _start_stand_in(pack) if cloud else None
    assistant = Assistant(pack, telemetry=store, clock=lambda: moment["now"])
    results: list[TurnResult] = []
    try:
        script = [
            (turn, None) if isinstance(turn, str) else (turn.text, turn.at)
            for turn in pack.spec.demo
        ]
        title = f"edgepipe demo · pack '{pack.name}' · room {pack.spec.context.room.number}"
        results += _demo_table(assistant, script, moment, title)
        if stand_in is not None and assistant.cloud is not None:
            stand_in.stop()
            again = [
                (text, at)
                for text, at in script
                if any(
                    r.request.text == text and r.decision.route.value == "cloud" for r in results
                )
            ]
            again.append(("book a table for two tonight at 8", "19:00"))
            results += _demo_table(
                assistant, again, moment, "the same requests with the cloud down"
            )
    finally:
        if stand_in is not None:
            stand_in.stop()
        assistant.close()
        if store is not None:
            store.close()
    routes = Counter(r.decision.route.value for r in results)
    totals = sorted(r.total_ms for r in results)
    out.print(
        f"{len(results)} turns · routes: "
        + ", ".join(f"{k} {v}" for k, v in routes.most_common())
        + f" · median {statistics.median(totals):.1f} ms, max {totals[-1]:.1f} ms"
        + ("" if store is None else f" · recorded in {store.path} (see: edgepipe trace)"),
        markup=False,
    )


def _demo_table(
    assistant: Assistant,
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
        result = assistant.handle_text(text)
        results.append(result)
        intent = result.intent.name if result.intent else "-"
        slots = (
            ", ".join(f"{k}={v}" for k, v in result.intent.slot_values().items())
            if result.intent
            else ""
        )
        route = f"{result.decision.route.value}\n[dim]{result.decision.reason}[/]"
        table.add_row(
            moment["now"].strftime("%H:%M"),
            text,
            route,
            f"{intent}\n[dim]{slots}[/]",
            result.reply.text,
            _stage_summary(result),
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


@eval_app.command("templates")
def eval_templates(
    pack_path: PackArg,
    data: Annotated[
        Path | None,
        typer.Option("--file", help="Labelled JSONL (default: the pack's tests/utterances.jsonl)."),
    ] = None,
    at: AtOpt = "10:00",
    as_json: JsonOpt = False,
) -> None:
    """How many labelled lines the pack's templates resolve to the right intent and slots."""
    from edgepipe.eval.datasets import DatasetError, load_examples
    from edgepipe.eval.templates import evaluate_templates

    pack = _load(pack_path, as_json=as_json)
    path = data or pack.root / "tests" / "utterances.jsonl"
    try:
        examples = load_examples(path)
    except DatasetError as exc:
        _fail(str(exc), code=exc.code, exit_code=EXIT_FAILED, as_json=as_json)
    clock = _clock(pack, at)
    report = evaluate_templates(
        pack, examples, at=clock() if clock else datetime.now(pack.timezone)
    )
    if as_json:
        out.print_json(data=report.as_dict())
        return
    table = Table(title=f"template coverage · {path}")
    for col in ("style", "lines", "correct", "rate"):
        table.add_column(col)
    for style, n in sorted(report.total.items()):
        ok = report.correct.get(style, 0)
        table.add_row(style, str(n), str(ok), f"{ok / n:.1%}")
    out.print(table)
    out.print(
        f"out of scope: {report.oos_lines} lines, {report.oos_matched} matched a template, "
        f"{report.oos_executed} executed a handler",
        markup=False,
    )
    for miss in report.misses:
        out.print(
            f"  miss [{miss.style}] {miss.text!r}: want {miss.expected_intent} "
            f"{miss.expected_slots}, got {miss.got_intent} {miss.got_slots}",
            markup=False,
        )


@eval_app.command("router")
def eval_router(
    train: Annotated[Path, typer.Option("--train", help="Training JSONL, or a pack folder.")],
    test: Annotated[
        Path, typer.Option("--test", help="Test JSONL; label 'oos' marks out-of-scope lines.")
    ],
    as_json: JsonOpt = False,
    plot_path: Annotated[
        Path | None, typer.Option("--plot", help="Write a PNG of the sweep.")
    ] = None,
    baseline: Annotated[
        bool,
        typer.Option("--baseline", help="Also train TF-IDF + logistic regression for comparison."),
    ] = False,
    target: Annotated[
        str | None,
        typer.Option("--target", help="Calibration: balanced, precision:P or oos_recall:R."),
    ] = None,
    no_encoder: Annotated[
        bool, typer.Option("--no-encoder", help="TF-IDF features only (the baseline model).")
    ] = False,
) -> None:
    """Train a router from scratch on TRAIN, calibrate it on TRAIN only, and measure it on TEST."""
    from dataclasses import replace

    from edgepipe.eval.datasets import DatasetError, load_examples
    from edgepipe.eval.router import evaluate_router, plot
    from edgepipe.router.calibrate import parse_target
    from edgepipe.router.classifier import RouterConfig

    if not train.exists():
        _fail(
            f"--train {train}: no such file or folder",
            code="usage",
            exit_code=EXIT_USAGE,
            as_json=as_json,
        )
    try:
        examples = load_examples(test)
        if not train.is_dir():
            load_examples(train)  # fail early, with the line number
        if target is not None:
            parse_target(target)
    except (DatasetError, ValueError) as exc:
        _fail(str(exc), code=getattr(exc, "code", "usage"), exit_code=EXIT_FAILED, as_json=as_json)
    config = None
    if target is not None or no_encoder or not train.is_dir():
        base = RouterConfig()
        if train.is_dir():
            from edgepipe.router.learned import router_config

            base = router_config(_load(train, as_json=as_json))
        config = replace(
            base,
            calibration=target or base.calibration,
            use_encoder=base.use_encoder and not no_encoder,
        )
    err.print(f"[dim]training on {train} ...[/]", markup=True)
    evaluation = evaluate_router(train, examples, config=config, baseline=baseline)
    if plot_path is not None:
        plot(evaluation, plot_path, title=f"router: {train.name} -> {test.name}")
    summary = evaluation.summary()
    if as_json:
        out.print_json(data=summary)
        return
    table = Table(title=f"router · train {train} · test {test}")
    for col in ("metric", "value"):
        table.add_column(col)
    for key in (
        "in_scope_accuracy", "oos_recall", "oos_precision", "macro_f1", "threshold",
        "latency_ms_p50", "latency_ms_p95", "train_s", "n_train", "n_test", "templates_matched",
    ):  # fmt: skip
        table.add_row(key, str(summary[key]))
    out.print(table)
    sweep = Table(title="threshold sweep (in-scope accuracy / OOS recall)")
    for col in ("threshold", "in-scope acc", "OOS recall", "OOS precision", "macro F1"):
        sweep.add_column(col)
    if evaluation.baseline_sweep:
        sweep.add_column("baseline acc / recall")
    for i, row in enumerate(evaluation.sweep):
        cells = [
            f"{row[key]:.3f}"
            for key in ("threshold", "in_scope_accuracy", "oos_recall", "oos_precision", "macro_f1")
        ]
        if evaluation.baseline_sweep:
            b = evaluation.baseline_sweep[i]
            cells.append(f"{b['in_scope_accuracy']:.3f} / {b['oos_recall']:.3f}")
        sweep.add_row(*cells)
    out.print(sweep)


def main() -> None:
    """Console entry point: coded errors become messages, never tracebacks."""
    try:
        app()
    except EdgepipeError as exc:
        if _state["debug"]:
            raise
        err.print(f"[bold red]error:[/] {exc}", markup=True)
        sys.exit(EXIT_FAILED)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
