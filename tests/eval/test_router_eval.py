"""`edgepipe eval router`: the hotel acceptance figures and the command's contract."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import HOTEL, ROOT

KEYS = {
    "in_scope_accuracy", "oos_recall", "oos_precision", "macro_f1", "latency_ms_p50",
    "latency_ms_p95", "train_s", "n_train", "n_test", "threshold",
}  # fmt: skip


def run(*args: str, home: Path, cache: Path) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "EDGEPIPE_HOME": str(home), "EDGEPIPE_CACHE": str(cache)}
    return subprocess.run(
        [sys.executable, "-m", "edgepipe.cli", "eval", "router", *args],
        capture_output=True, cwd=ROOT, env=env, timeout=600, check=False,
    )  # fmt: skip


def test_hotel_labelled_file_is_routed(tmp_path: Path, shared_cache: Path) -> None:
    plot = tmp_path / "sweep.png"
    proc = run(
        "--train", str(HOTEL), "--test", str(HOTEL / "tests" / "utterances.jsonl"), "--json", "--plot", str(plot),
        home=tmp_path, cache=shared_cache,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()
    report = json.loads(proc.stdout)
    assert set(report) >= KEYS
    assert report["in_scope_accuracy"] >= 0.95
    assert report["oos_recall"] >= 0.90
    assert report["n_test"] == 220 and 0.0 < report["threshold"] < 1.0
    assert len(report["sweep"]) == 20
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_jsonl_train_with_tf_idf_only(tmp_path: Path, shared_cache: Path) -> None:
    train = tmp_path / "train.jsonl"
    test = tmp_path / "test.jsonl"
    rows = [
        *(
            {"text": t, "intent": "greet"}
            for t in ["hello there", "hi", "good morning", "hey you", "greetings", "hello"]
        ),
        *(
            {"text": t, "intent": "bye"}
            for t in ["goodbye", "bye now", "see you", "farewell", "bye bye", "later"]
        ),
    ]
    train.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    test.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {"text": "hello!", "intent": "greet"},
                {"text": "see you later", "intent": "bye"},
                {"text": "what is 2+2", "intent": "oos"},
            ]
        )
        + "\n"
    )
    proc = run(
        "--train",
        str(train),
        "--test",
        str(test),
        "--json",
        "--no-encoder",
        home=tmp_path,
        cache=shared_cache,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    report = json.loads(proc.stdout)
    assert set(report) >= KEYS and report["n_train"] == 12 and report["n_test"] == 3
    assert all(
        0.0 <= report[k] <= 1.0
        for k in ("in_scope_accuracy", "oos_recall", "oos_precision", "macro_f1")
    )


def test_bad_files_are_clear_errors(tmp_path: Path, shared_cache: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "hi", "intent": "greet"}\nnot json\n')
    proc = run("--train", str(bad), "--test", str(bad), home=tmp_path, cache=shared_cache)
    assert proc.returncode == 1 and b"bad.jsonl:2: not JSON" in proc.stderr
    proc = run(
        "--train",
        str(tmp_path / "missing.jsonl"),
        "--test",
        str(bad),
        home=tmp_path,
        cache=shared_cache,
    )
    assert proc.returncode == 2 and b"no such file" in proc.stderr
    assert b"Traceback" not in proc.stderr
