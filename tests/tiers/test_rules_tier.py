"""The deterministic tier with a pack whose handlers misbehave."""

from __future__ import annotations

from pathlib import Path

import yaml

from edgepipe.core.types import Outcome, Route
from edgepipe.engine.engine import load_engine_pack

HANDLERS = """
from edgepipe.actions.handlers import HandlerResult
from edgepipe.core.errors import HandlerError


def explode(ctx):
    raise ZeroDivisionError("division by zero")


def wrong_type(ctx):
    return {"response": "default"}


def coded(ctx):
    raise HandlerError("the PMS is down", code="pms_unavailable")


def missing_var(ctx):
    return HandlerResult(data={})


def refuse(ctx):
    ctx.rules.check_value("limit", 99)
    return HandlerResult()
"""


def make_pack(root: Path) -> Path:
    intents = {
        name: {
            "description": name,
            "handler": f"pack:{name}",
            "templates": [
                name.replace("_", " "),
                f"please {name.replace('_', ' ')}",
                f"do {name}",
                f"run {name}",
                f"try {name}",
            ],
        }
        for name in ["explode", "wrong_type", "coded", "missing_var", "refuse"]
    }
    files = {
        "pack.yaml": {"name": "broken", "timezone": "UTC"},
        "intents/all.yaml": {"intents": intents},
        "rules.yaml": {
            "rules": {
                "limit": {
                    "kind": "range",
                    "intents": ["refuse"],
                    "max": 10,
                    "reply": "No more than {{ max }}, not {{ value }}.",
                }
            }
        },
        "responses.yaml": {
            "intents": {
                **{name: {"default": "Done."} for name in intents},
                "missing_var": {"default": "Value is {{ nowhere }}."},
            }
        },
    }
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(content))
    (root / "handlers.py").write_text(HANDLERS)
    return root


def test_handler_failures_still_answer(tmp_path: Path, make_session) -> None:  # type: ignore[no-untyped-def]
    assistant = make_session(pack=load_engine_pack(make_pack(tmp_path)), router=None)
    for text, code in [
        ("explode", "handler_failed"),
        ("wrong type", "handler_bad_result"),
        ("coded", "pms_unavailable"),
    ]:
        result = assistant.handle_text(text)
        assert result.decision.route is Route.FALLBACK, text
        assert result.decision.reason == f"template:exact>{code}"
        assert result.reply.text.startswith("Sorry, something went wrong")
        span = result.trace.stage("handler")
        assert span is not None and span.outcome is Outcome.ERROR and span.error_code == code


def test_reply_that_cannot_render_falls_back(tmp_path: Path, make_session) -> None:  # type: ignore[no-untyped-def]
    session = make_session(pack=load_engine_pack(make_pack(tmp_path)), router=None)
    result = session.handle_text("missing var")
    span = result.trace.stage("respond")
    assert span is not None and span.error_code == "response_render_failed"
    assert result.reply.text.startswith("Sorry, something went wrong")


def test_handler_can_refuse_through_a_rule(tmp_path: Path, make_session) -> None:  # type: ignore[no-untyped-def]
    session = make_session(pack=load_engine_pack(make_pack(tmp_path)), router=None)
    result = session.handle_text("refuse")
    assert result.decision.route is Route.REJECTED
    assert result.reply.text == "No more than 10, not 99."
