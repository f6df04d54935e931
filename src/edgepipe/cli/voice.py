"""``edgepipe listen``: voice turns from a WAV file, raw PCM or the microphone."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from edgepipe.cli.app import (
    EXIT_FAILED,
    EXIT_USAGE,
    AtOpt,
    DbOpt,
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
)
from edgepipe.core.errors import EdgepipeError
from edgepipe.core.heap import settle_heap
from edgepipe.engine.engine import Engine

if TYPE_CHECKING:
    from edgepipe.voice.audio import Audio


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
    from edgepipe.voice.audio import from_pcm, load_wav

    sources = sum(x is not None for x in (wav, pcm)) + int(mic)
    if sources != 1:
        fail("give exactly one of --wav, --pcm or --mic", code="usage", exit_code=EXIT_USAGE)
    audio: Audio | None = None
    try:
        if wav is not None:
            audio = load_wav(wav)
        elif pcm is not None:
            data = sys.stdin.buffer.read() if pcm == "-" else Path(pcm).read_bytes()
            audio = from_pcm(data, rate=rate, name="<stdin>" if pcm == "-" else pcm)
    except EdgepipeError as exc:
        fail(str(exc), code=exc.code, exit_code=EXIT_USAGE, as_json=as_json)
    except OSError as exc:
        fail(f"cannot read audio: {exc}", code="audio_missing", exit_code=EXIT_USAGE)
    pack = load(pack_path, as_json=as_json)
    with engine_for(pack, no_telemetry=no_telemetry, db=db, clock=clock_at(pack, at)) as engine:
        _listen(engine, audio, mic=mic, no_wake=no_wake, as_json=as_json, speaker=speaker,
                out_path=out_path)  # fmt: skip


def _listen(
    engine: Engine,
    audio: Audio | None,
    *,
    mic: bool,
    no_wake: bool,
    as_json: bool,
    speaker: bool | None,
    out_path: Path | None,
) -> None:
    import json

    import numpy as np

    from edgepipe.voice.audio import chunks, write_wav
    from edgepipe.voice.capture import FrameQueue, microphone_frames
    from edgepipe.voice.playback import Speaker
    from edgepipe.voice.session import VoiceSession

    replies: list[Any] = []
    rate_out = 0
    player: Speaker | None = None
    captured: FrameQueue | None = None
    interrupted = False
    try:
        voice = VoiceSession.build(engine.session())
        log.debug("heap settled in %.0f ms", settle_heap())
        if audio is not None and audio.clipped:
            err.print(f"[yellow]warning:[/] input is clipped ({audio.clipped_fraction:.1%})")
        if speaker if speaker is not None else mic:
            player = Speaker()
            voice.reply_sink = player.play
        if audio is not None:
            turns = voice.stream(chunks(audio), require_wake=not no_wake)
        else:
            captured = FrameQueue()
            frames = microphone_frames(
                captured,
                player.gate if player else None,
                on_open=lambda: err.print("[dim]listening (Ctrl-C to stop)[/]", markup=True),
            )
            turns = voice.stream(frames, require_wake=not no_wake)
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
                    f"{turn.intent or '-'} · {took}[/]",
                    markup=True,
                )
    except EdgepipeError as exc:
        fail(str(exc), code=exc.code, exit_code=EXIT_FAILED, as_json=as_json)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if player is not None:
            if not interrupted:
                player.drain(timeout_s=30)  # let the last reply finish
            player.close()
            if player.error is not None:
                err.print(f"[yellow]warning:[/] replies were not played: {player.error}")
            if player.dropped:
                err.print(
                    f"[yellow]warning:[/] {player.dropped} pieces of replies were not played: "
                    "the speaker fell behind"
                )
        if captured is not None and captured.dropped:
            err.print(
                f"[yellow]warning:[/] {captured.dropped} microphone frames "
                f"({captured.dropped / 100:.1f} s) were dropped: the listening fell behind"
            )
    if out_path is not None:
        silence = np.zeros(int(0.3 * (rate_out or 16000)), dtype=np.float32)
        joined = [part for reply in replies for part in (reply, silence)]
        write_wav(out_path, np.concatenate(joined) if joined else silence, rate_out or 16000)
