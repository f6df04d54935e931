"""The resolve tier's cloud backend against the real stand-in (llama_cpp.server behind the fault
proxy): the request is read under structured output (the answer's JSON schema sent as the
pack's ``cloud.structured_output`` says), through the privacy gate, link, budget and audit like
any other request that leaves. The stand-in's SmolLM2 reads poorly; these tests are about the
contract (what is sent, what comes back, what is recorded), not about its reading."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from edgepipe.core.types import Outcome
from edgepipe.engine.session import Session
from edgepipe.pack.loader import Pack
from edgepipe.privacy.audit import AuditLog
from edgepipe.testing.cloud import StandInCloud, closed_base_url

ANSWER_MS = 30_000
"""A budget that cannot run out on a busy machine while the stand-in writes."""
UNCLAIMED = "flibber the wozzle gently"


def _resolving(pack: Pack, **cloud: Any) -> Pack:
    spec = pack.spec
    return replace(
        pack,
        spec=spec.model_copy(
            update={
                "policy": spec.policy.model_copy(update={"out_of_scope": ["resolve", "degraded"]}),
                "resolve": spec.resolve.model_copy(update={"backends": ["cloud"]}),
                "cloud": spec.cloud.model_copy(update=cloud),
            }
        ),
    )


def test_the_cloud_reads_a_request_under_its_json_schema(
    cloud: StandInCloud,
    hotel_pack: Pack,
    monkeypatch: pytest.MonkeyPatch,
    _edgepipe_home: Path,
    cloud_assistant: Callable[[Pack], Session],
) -> None:
    monkeypatch.setenv("EDGEPIPE_CLOUD_BASE_URL", cloud.base_url)
    # the stand-in evaluates the whole catalogue prompt and builds the schema's grammar per
    # call: seconds on a busy machine, so one unhurried attempt
    room = cloud_assistant(_resolving(hotel_pack, read_timeout_s=25.0, retries=0))
    result = room.handle_text(f"{UNCLAIMED}, I am Maria Santos", budget_ms=ANSWER_MS)
    stages = [s.stage for s in result.trace.spans]
    assert stages[stages.index("privacy") :][:5] == [
        "privacy", "link", "budget", "audit", "resolve:cloud",
    ]  # fmt: skip
    span = result.trace.stage("resolve:cloud")
    assert span is not None and span.outcome is Outcome.OK, span
    assert cloud.proxy is not None
    (body,) = [json.loads(b) for b in cloud.proxy.captured()]
    assert body["response_format"]["type"] == "json_object"
    schema = body["response_format"]["schema"]
    branches = schema["properties"]["requests"]["items"]["anyOf"]
    assert {"intent": {"const": "none"}} in [b["properties"] for b in branches]
    assert body["messages"][0]["content"].startswith("You are the request reader")
    said = body["messages"][1]["content"]
    assert UNCLAIMED in said and "Maria" not in said and "Santos" not in said
    # a reading that validates is acted on; otherwise the tier passes with why
    assert result.decision.reason is not None and "resolve:cloud" in result.decision.reason
    rows = [e.outcome for e in AuditLog(_edgepipe_home / "audit.db").entries()]
    assert rows == ["sending", "sent:resolve"]


def test_openai_structured_output_is_the_default_form(
    cloud: StandInCloud,
    hotel_pack: Pack,
    monkeypatch: pytest.MonkeyPatch,
    cloud_assistant: Callable[[Pack], Session],
) -> None:
    """OpenAI's form (``json_schema``) is what a pack gets unless it says otherwise; the
    stand-in (llama.cpp's server) answers it with an HTTP 500, and the turn still answers."""
    monkeypatch.setenv("EDGEPIPE_CLOUD_BASE_URL", cloud.base_url)
    room = cloud_assistant(
        _resolving(hotel_pack, structured_output="json_schema", retries=0, read_timeout_s=25.0)
    )
    result = room.handle_text(UNCLAIMED, budget_ms=ANSWER_MS)
    assert cloud.proxy is not None
    (body,) = [json.loads(b) for b in cloud.proxy.captured()]
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["strict"] is True
    assert "requests" in body["response_format"]["json_schema"]["schema"]["properties"]
    assert not result.handler_executed and result.reply.text
    assert result.decision.reason is not None
    assert result.decision.reason.endswith("resolve:cloud:cloud_http_500")


def test_offline_the_cloud_backend_passes_and_nothing_leaves(
    hotel_pack: Pack,
    monkeypatch: pytest.MonkeyPatch,
    _edgepipe_home: Path,
    cloud_assistant: Callable[[Pack], Session],
) -> None:
    monkeypatch.setenv("EDGEPIPE_CLOUD_BASE_URL", closed_base_url())
    room = cloud_assistant(_resolving(hotel_pack, retries=0))
    result = room.handle_text(UNCLAIMED, budget_ms=5_000)
    assert not result.handler_executed
    assert result.decision.reason is not None
    assert "resolve:cloud:cloud_unreachable" in result.decision.reason, result.decision.reason
