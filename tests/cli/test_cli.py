"""The command line, run as a real process where exit codes and stderr matter.

Every run points the pack's cloud at a server the test controls or at a port the test knows is
closed (``EDGEPIPE_CLOUD_BASE_URL``): what happens never depends on whether something listens
on the hotel pack's own endpoint (127.0.0.1:8766), such as a stand-in cloud left running.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tests.conftest import HOTEL, ROOT
from tests.fakes import Exchange, ScriptedCloud, delta

from edgepipe.testing.cloud import closed_base_url

EDGEPIPE = [sys.executable, "-m", "edgepipe.cli"]


def run(
    *args: str, stdin: bytes | None = None, home: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("EDGEPIPE_CLOUD_")},
        "EDGEPIPE_HOME": str(home),
        "EDGEPIPE_CLOUD_BASE_URL": closed_base_url(),
        **(env or {}),
    }
    return subprocess.run(
        [*EDGEPIPE, *args],
        input=stdin,
        capture_output=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=False,
    )


def test_ask_json_acceptance(tmp_path: Path) -> None:
    proc = run("ask", str(HOTEL), "turn off the lights in the bedroom", "--json", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert {
        "text",
        "route",
        "intent",
        "slots",
        "confidence",
        "response",
        "trace",
        "total_ms",
    } <= set(data)
    assert data["route"] == "rules"
    assert data["intent"] == "lights_off"
    assert data["slots"] == {"zone": "bedroom"}
    assert data["response"]
    assert all({"stage", "ms", "outcome"} <= set(span) for span in data["trace"])
    assert (tmp_path / "telemetry.db").exists()


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["ask", str(HOTEL), ""], None, b"request text is empty"),
        (
            ["ask", str(HOTEL), "-"],
            b"x" * 102_400,
            b"request text is 102400 characters; the limit is 500",
        ),
        (
            ["ask", str(HOTEL), "-"],
            b"turn off \xff\xfe the lights",
            b"stdin is not UTF-8 text (byte 0xff at offset 9)",
        ),
    ],
)
def test_bad_input_is_a_clear_usage_error(
    tmp_path: Path, args: list[str], stdin: bytes | None, message: bytes
) -> None:
    proc = run(*args, stdin=stdin, home=tmp_path)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert b"Traceback" not in proc.stderr + proc.stdout


def test_bad_input_with_json_prints_an_error_object(tmp_path: Path) -> None:
    proc = run("ask", str(HOTEL), "", "--json", home=tmp_path)
    assert proc.returncode == 2
    assert json.loads(proc.stdout) == {
        "error": {"code": "input_empty", "message": "request text is empty"}
    }


def _broken_copy(tmp_path: Path, rel: str, edit) -> Path:  # type: ignore[no-untyped-def]
    import shutil

    root = tmp_path / "pack"
    shutil.copytree(HOTEL, root)
    edit(root / rel)
    return root


def test_pack_with_broken_yaml(tmp_path: Path) -> None:
    root = _broken_copy(tmp_path, "rules.yaml", lambda p: p.write_text("rules:\n  x: [unclosed\n"))
    for command in (["ask", str(root), "hello"], ["check", str(root)]):
        proc = run(*command, home=tmp_path)
        assert proc.returncode == 1
        assert f"{root / 'rules.yaml'}: broken YAML: line".encode() in proc.stderr
        assert b"Traceback" not in proc.stderr


def test_pack_with_missing_slot_list(tmp_path: Path) -> None:
    def edit(path: Path) -> None:
        data = yaml.safe_load(path.read_text())
        data["intents"]["thermostat_set"]["slots"]["degrees"]["list"] = "temps"
        path.write_text(yaml.safe_dump(data))

    root = _broken_copy(tmp_path, "intents/room.yaml", edit)
    proc = run("check", str(root), home=tmp_path)
    assert proc.returncode == 1
    assert (
        f"{root / 'intents/room.yaml'}: intents.thermostat_set.slots.degrees: unknown slot list 'temps'".encode()
        in proc.stderr
    )
    assert b"Traceback" not in proc.stderr


def test_check_trace_and_demo(tmp_path: Path) -> None:
    ok = run("check", str(HOTEL), home=tmp_path)
    assert ok.returncode == 0 and b"ok: pack 'hotel'" in ok.stdout
    demo = run("demo", str(HOTEL), home=tmp_path)
    assert demo.returncode == 0, demo.stderr
    assert b"routes: rules" in demo.stdout
    trace = run("trace", "--last", "3", "--json", home=tmp_path)
    assert trace.returncode == 0, trace.stderr
    turns = json.loads(trace.stdout)["turns"]
    assert len(turns) == 3
    assert turns[0]["text_raw"] is None and len(turns[0]["text_hash"]) == 64
    assert turns[0]["trace"][0]["stage"] == "input"


def test_trace_without_database(tmp_path: Path) -> None:
    proc = run("trace", home=tmp_path / "empty")
    assert proc.returncode == 1 and b"no telemetry database" in proc.stderr


def test_eval_templates_json(tmp_path: Path) -> None:
    proc = run("eval", "templates", str(HOTEL), "--json", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["oos_handler_executed"] == 0
    assert report["rate_by_style"]["direct"] >= 0.95


TRIP = "plan a three day trip to Lisbon for me"


def test_cloud_down_is_an_honest_fallback(tmp_path: Path) -> None:
    """The cloud's port is closed (``run``'s default): the refused connection, not the turn's
    deadline, ends the cloud stage, and the guest is told what still works."""
    proc = run("ask", str(HOTEL), TRIP, "--json", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["route"] == "fallback" and data["reason"].endswith(">cloud_unreachable")
    assert "control the room" in data["response"]
    cloud = [s for s in data["trace"] if s["stage"] == "cloud"]
    assert [(s["outcome"], s["error_code"]) for s in cloud] == [("error", "cloud_unreachable")]


CLOUD_ANSWER = "Day one: the castle and Alfama. Day two: Belém. Day three: Sintra."


def test_cloud_up_answers_out_of_scope_requests(tmp_path: Path) -> None:
    """The command line wires ``EDGEPIPE_CLOUD_BASE_URL`` into the cloud tier: the request
    reaches the endpoint (as the pack configures it, through the privacy gate) and its answer is
    the reply. The endpoint is a scripted one that answers at once: the turn's budget is the
    pack's own, and the model's speed is no part of this test (the real stand-in's answers are
    tested in tests/tiers/test_cloud_tier.py; their timings in bench/bench_cloud.py)."""

    def answer(exchange: Exchange) -> None:
        exchange.start_stream()
        exchange.event(delta(CLOUD_ANSWER))
        exchange.done()

    with ScriptedCloud(answer) as server:
        proc = run(
            "ask",
            str(HOTEL),
            TRIP,
            "--json",
            home=tmp_path,
            env={"EDGEPIPE_CLOUD_BASE_URL": server.url},
        )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["route"] == "cloud", data["reason"]
    assert data["reason"] == "cloud:smollm2-135m"  # the pack's model name
    assert data["response"] == CLOUD_ANSWER
    assert [s["stage"] for s in data["trace"]][-1] == "cloud"
    (sent,) = [json.loads(body) for body in server.requests]
    assert sent["model"] == "smollm2-135m" and sent["stream"] is True
    assert sent["messages"][-1] == {"role": "user", "content": TRIP}


def test_pool_hours_from_the_command_line(tmp_path: Path) -> None:
    proc = run("ask", str(HOTEL), "what time does the pool open", "--json", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["route"] in ("rules", "local_model")
    assert "07:00" in data["response"] and "21:00" in data["response"]
