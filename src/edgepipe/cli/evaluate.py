"""``edgepipe eval``: measure a pack's templates and router against labelled data."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from edgepipe.cli.app import (
    EXIT_FAILED,
    EXIT_USAGE,
    AtOpt,
    JsonOpt,
    PackArg,
    clock_at,
    err,
    eval_app,
    fail,
    load,
    out,
)
from edgepipe.core.types import TurnResult
from edgepipe.eval.turns import TurnsReport


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

    pack = load(pack_path, as_json=as_json)
    path = data or pack.root / "tests" / "utterances.jsonl"
    try:
        examples = load_examples(path)
    except DatasetError as exc:
        fail(str(exc), code=exc.code, exit_code=EXIT_FAILED, as_json=as_json)
    clock = clock_at(pack, at)
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
    paraphrases: Annotated[
        int | None,
        typer.Option(
            "--paraphrases",
            min=0,
            max=8,
            help="Rule-written variants per training line (default: the pack's "
            "router.paraphrases; 0, none, for a JSONL file).",
        ),
    ] = None,
) -> None:
    """Train a router from scratch on TRAIN, calibrate it on TRAIN only, and measure it on TEST."""
    from dataclasses import replace

    from edgepipe.eval.datasets import DatasetError, load_examples
    from edgepipe.eval.router import evaluate_router, plot
    from edgepipe.nlu.learned.calibrate import parse_target
    from edgepipe.nlu.learned.model import RouterConfig

    if not train.exists():
        fail(
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
        fail(str(exc), code=getattr(exc, "code", "usage"), exit_code=EXIT_FAILED, as_json=as_json)
    config = None
    if target is not None or no_encoder or paraphrases is not None or not train.is_dir():
        base = RouterConfig()
        if train.is_dir():
            from edgepipe.nlu.learned.router import router_config

            base = router_config(load(train, as_json=as_json))
        config = replace(
            base,
            calibration=target or base.calibration,
            use_encoder=base.use_encoder and not no_encoder,
            paraphrases=base.paraphrases if paraphrases is None else paraphrases,
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
        "latency_ms_p50", "latency_ms_p95", "train_s", "n_train", "n_paraphrases", "n_test",
        "templates_matched",
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


@eval_app.command("turns")
def eval_turns(
    pack_path: PackArg,
    files: Annotated[
        list[Path] | None,
        typer.Option(
            "--file",
            help="Labelled JSONL (repeatable; default: the pack's tests/flex_holdout_utterances"
            ".jsonl and tests/holdout_utterances.jsonl).",
        ),
    ] = None,
    cloud_url: Annotated[
        str | None,
        typer.Option(
            "--cloud-url",
            help="The cloud's base URL for this run (default: a closed loopback port, i.e. the "
            "cloud is down).",
        ),
    ] = None,
    at: AtOpt = "10:00",
    misses: Annotated[bool, typer.Option("--misses", help="List the lines it got wrong.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Full turns through the real engine: how many labelled lines reach the right action."""
    import os
    import tempfile

    from edgepipe.engine.engine import Engine
    from edgepipe.eval.datasets import DatasetError, load_examples
    from edgepipe.eval.turns import evaluate_turns
    from edgepipe.testing.cloud import closed_base_url

    pack = load(pack_path, as_json=as_json)
    paths = files or [
        p
        for p in (
            pack.root / "tests" / "flex_holdout_utterances.jsonl",
            pack.root / "tests" / "holdout_utterances.jsonl",
        )
        if p.is_file()
    ]
    if not paths:
        fail("no labelled file: give --file", code="usage", exit_code=EXIT_USAGE, as_json=as_json)
    try:
        loaded = {path: load_examples(path) for path in paths}
    except DatasetError as exc:
        fail(str(exc), code=exc.code, exit_code=EXIT_FAILED, as_json=as_json)
    clock = clock_at(pack, at)
    previous = os.environ.get("EDGEPIPE_CLOUD_BASE_URL")
    os.environ["EDGEPIPE_CLOUD_BASE_URL"] = cloud_url or closed_base_url()
    results: dict[str, object] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="edgepipe-eval-") as home:
            engine = Engine(pack, clock=clock, home=Path(home))
            count = iter(range(10**9))

            def fresh_turn(text: str) -> TurnResult:
                return engine.session(f"eval-{next(count)}").handle_text(text)

            try:
                for path, examples in loaded.items():
                    report = evaluate_turns(pack, examples, fresh_turn)
                    results[str(path)] = report.as_dict()
                    if not as_json:
                        _print_turns(path, report, misses)
            finally:
                engine.close()
    finally:
        if previous is None:
            os.environ.pop("EDGEPIPE_CLOUD_BASE_URL", None)
        else:
            os.environ["EDGEPIPE_CLOUD_BASE_URL"] = previous
    if as_json:
        out.print_json(data={"cloud": "up" if cloud_url else "down", "files": results})


def _print_turns(path: Path, report: TurnsReport, misses: bool) -> None:
    from edgepipe.eval.turns import describe_wanted

    table = Table(title=f"full turns · {path}")
    for col in ("style", "lines", "right", "rate"):
        table.add_column(col)
    for style, (right, lines) in report.by_style().items():
        table.add_row(style, str(lines), str(right), f"{right / lines:.1%}")
    out.print(table)
    summary = report.as_dict()
    out.print(
        f"routes {summary['routes']} · crashes {summary['crashes']} · "
        f"p50 {summary['latency']['p50_ms']} ms, p95 {summary['latency']['p95_ms']} ms",
        markup=False,
    )
    if misses:
        for j in report.judged:
            if not j.right:
                out.print(
                    f"  miss [{j.example.style}] {j.example.text!r}: want "
                    f"{describe_wanted(j.example)}, got {j.got} ({j.reason})",
                    markup=False,
                )
