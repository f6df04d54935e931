from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from edgepipe.core.errors import PackError
from edgepipe.engine.engine import Engine, load_engine_pack

MINIMAL: dict[str, dict] = {
    "pack.yaml": {"name": "mini", "version": "1.0.0", "timezone": "UTC"},
    "intents/main.yaml": {
        "lists": {"temperature": {"range": {"from": 10, "to": 30}}},
        "intents": {
            "set_temperature": {
                "description": "Set the thermostat.",
                "handler": "set_state",
                "args": {"key": "thermostat", "value": "{{ degrees }}"},
                "slots": {"degrees": {"list": "temperature", "type": "number", "required": True}},
                "templates": ["set [the] temperature to {degrees} [degrees]"],
            }
        },
    },
    "responses.yaml": {"intents": {"set_temperature": {"default": "Set to {{ degrees }}."}}},
}


def write_pack(root: Path, files: dict[str, object]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_text(yaml.safe_dump(content, sort_keys=False), encoding="utf-8")
    return root


def issues_of(root: Path) -> list[str]:
    with pytest.raises(PackError) as info:
        load_engine_pack(root)
    return [str(issue) for issue in info.value.issues]


def test_minimal_pack_loads_and_answers(tmp_path: Path) -> None:
    pack = load_engine_pack(write_pack(tmp_path, MINIMAL))
    assert list(pack.intents) == ["set_temperature"]
    with Engine(pack) as engine:
        room = engine.session()
        result = room.handle_text("set the temperature to 22 degrees")
        assert result.reply.text == "Set to 22."
        assert room.state.get("thermostat") == 22
        assert engine.session("other room").state.get("thermostat") is None
    assert len(pack.content_hash) == 64


def test_pack_yaml_path_is_accepted(tmp_path: Path) -> None:
    write_pack(tmp_path, MINIMAL)
    assert load_engine_pack(tmp_path / "pack.yaml").name == "mini"


def test_unknown_slot_list_names_file_key_and_list(tmp_path: Path) -> None:
    files = dict(MINIMAL)
    intents = yaml.safe_load(yaml.safe_dump(MINIMAL["intents/main.yaml"]))
    intents["intents"]["set_temperature"]["slots"]["degrees"]["list"] = "temps"
    files["intents/main.yaml"] = intents
    root = write_pack(tmp_path, files)
    assert (
        f"{root / 'intents/main.yaml'}: intents.set_temperature.slots.degrees: unknown slot list 'temps'"
        in issues_of(root)
    )


def test_template_referencing_missing_list(tmp_path: Path) -> None:
    files = dict(MINIMAL)
    intents = yaml.safe_load(yaml.safe_dump(MINIMAL["intents/main.yaml"]))
    intents["intents"]["set_temperature"]["templates"].append("make it {warmth}")
    files["intents/main.yaml"] = intents
    root = write_pack(tmp_path, files)
    assert (
        f"{root / 'intents/main.yaml'}: intents.set_temperature.templates[1]: unknown slot list 'warmth'"
        in issues_of(root)
    )


def test_broken_yaml_gives_line_and_column(tmp_path: Path) -> None:
    files = dict(MINIMAL)
    files["pack.yaml"] = "name: mini\nversion: [1.0\n"
    root = write_pack(tmp_path, files)
    (issue,) = issues_of(root)
    assert issue.startswith(f"{root / 'pack.yaml'}: broken YAML: line ")
    assert "column" in issue


def test_not_utf8_file(tmp_path: Path) -> None:
    files = dict(MINIMAL)
    files["responses.yaml"] = b"intents:\n  set_temperature:\n    default: caf\xe9\n"
    root = write_pack(tmp_path, files)
    assert f"{root / 'responses.yaml'}: not UTF-8 text (invalid byte at offset 44)" in issues_of(
        root
    )


def test_missing_folder_and_missing_pack_yaml(tmp_path: Path) -> None:
    assert issues_of(tmp_path / "nope") == [f"{tmp_path / 'nope'}: pack folder not found"]
    (tmp_path / "empty").mkdir()
    assert f"{tmp_path / 'empty' / 'pack.yaml'}: file not found" in issues_of(tmp_path / "empty")


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda p: p["pack.yaml"].update(colour="red"), "pack.yaml: unknown key 'colour'"),
        (
            lambda p: p["pack.yaml"].update(name="Bad Name"),
            "pack.yaml: name: String should match pattern",
        ),
        (
            lambda p: p["pack.yaml"].update(timezone="Mars/Olympus"),
            "pack.yaml: timezone: unknown time zone 'Mars/Olympus'",
        ),
        (
            lambda p: p["intents/main.yaml"]["intents"]["set_temperature"].update(
                handler="teleport"
            ),
            "intents.set_temperature.handler: unknown handler 'teleport'",
        ),
        (
            lambda p: p["intents/main.yaml"]["intents"]["set_temperature"].update(
                handler="pack:nothing"
            ),
            "needs a handlers.py in the pack",
        ),
        (
            lambda p: p["intents/main.yaml"]["intents"]["set_temperature"].update(
                templates=["set (the temperature"]
            ),
            "intents.set_temperature.templates[0]: template syntax error",
        ),
        (
            lambda p: p["intents/main.yaml"]["intents"]["set_temperature"].update(
                templates=["set it to <hot>"]
            ),
            "unknown expansion rule '<hot>'",
        ),
        (
            lambda p: p["intents/main.yaml"]["intents"]["set_temperature"].update(templates=[]),
            "intents.set_temperature: an intent needs templates or examples",
        ),
        (
            lambda p: p["intents/main.yaml"]["lists"].update(bad={"range": {"from": 5, "to": 1}}),
            "lists.bad.range: range 'from' (5) is greater than 'to' (1)",
        ),
        (
            lambda p: p["intents/main.yaml"]["lists"].update(
                both={"values": ["a"], "wildcard": True}
            ),
            "lists.both: a slot list needs exactly one of",
        ),
        (
            lambda p: p["responses.yaml"]["intents"].pop("set_temperature"),
            "responses.yaml: intents.set_temperature: missing the 'default' response",
        ),
        (
            lambda p: p["responses.yaml"]["intents"]["set_temperature"].update(
                default="Set to {{ degrees"
            ),
            "responses.yaml: intents.set_temperature.default: template syntax error",
        ),
        (
            lambda p: p.update(
                {
                    "rules.yaml": {
                        "rules": {
                            "r": {
                                "kind": "range",
                                "intents": ["fly"],
                                "slot": "x",
                                "max": 3,
                                "reply": "no",
                            }
                        }
                    }
                }
            ),
            "rules.yaml: rules.r.intents[0]: unknown intent 'fly'",
        ),
        (
            lambda p: p.update(
                {
                    "rules.yaml": {
                        "rules": {
                            "r": {
                                "kind": "range",
                                "intents": ["set_temperature"],
                                "slot": "speed",
                                "max": 3,
                                "reply": "no",
                            }
                        }
                    }
                }
            ),
            "rules.yaml: rules.r.slot: intent 'set_temperature' has no slot 'speed'",
        ),
        (
            lambda p: p.update(
                {
                    "rules.yaml": {
                        "rules": {
                            "r": {
                                "kind": "window",
                                "intents": ["set_temperature"],
                                "allowed": {"start": "25:00", "end": "07:00"},
                                "reply": "no",
                            }
                        }
                    }
                }
            ),
            "rules.r.window.allowed.start: '25:00' is not a time of day in HH:MM form",
        ),
        (
            lambda p: p.update(
                {
                    "rules.yaml": {
                        "rules": {
                            "r": {"kind": "teleport", "intents": ["set_temperature"], "reply": "no"}
                        }
                    }
                }
            ),
            "rules.yaml: rules.r: Input tag 'teleport' found using 'kind' does not match",
        ),
        (
            lambda p: p["pack.yaml"].update(voice={"grammar": {"contrast_words": [["on"]]}}),
            "contrast_words: ['on'] needs two or more different words",
        ),
        (
            lambda p: p["pack.yaml"].update(
                voice={"grammar": {"contrast_words": [["switch on", "off"]]}}
            ),
            "contrast_words: 'switch on' is not a single word",
        ),
        (
            lambda p: p["intents/main.yaml"]["intents"]["set_temperature"].update(
                policy={"tier": "robot"}
            ),
            "intents.set_temperature.policy.tier: unknown tier 'robot'",
        ),
        (
            lambda p: p["pack.yaml"].update(policy={"fallback": ["cloud", "oracle"]}),
            "pack.yaml: policy.fallback[1]: unknown tier 'oracle'",
        ),
        (
            lambda p: p["pack.yaml"].update(voice={"open": {"rescore_max_distance": 1.5}}),
            "voice.open.rescore_max_distance: Input should be less than 1",
        ),
        (
            lambda p: p["pack.yaml"].update(voice={"open": {"rescore_max_gap": -2}}),
            "voice.open.rescore_max_gap: Input should be greater than or equal to 0",
        ),
        (
            lambda p: p.update({"handlers.py": "raise RuntimeError('boom')\n"}),
            "handlers.py: import failed: RuntimeError: boom",
        ),
    ],
)
def test_problems_are_named(tmp_path: Path, mutate, expected: str) -> None:  # type: ignore[no-untyped-def]
    files = yaml.safe_load(yaml.safe_dump(dict(MINIMAL)))
    mutate(files)
    root = write_pack(tmp_path, files)
    found = issues_of(root)
    assert any(expected in issue for issue in found), found


def test_all_problems_reported_at_once(tmp_path: Path) -> None:
    files = yaml.safe_load(yaml.safe_dump(MINIMAL))
    spec = files["intents/main.yaml"]["intents"]["set_temperature"]
    spec["handler"] = "teleport"
    spec["slots"]["degrees"]["list"] = "temps"
    files["responses.yaml"]["intents"]["set_temperature"]["default"] = "{{ oops"
    assert len(issues_of(write_pack(tmp_path, files))) >= 3


def test_duplicate_intent_across_files(tmp_path: Path) -> None:
    files = yaml.safe_load(yaml.safe_dump(MINIMAL))
    files["intents/second.yaml"] = {"intents": files["intents/main.yaml"]["intents"]}
    root = write_pack(tmp_path, files)
    assert any("intent also defined in" in issue for issue in issues_of(root))


def test_content_hash_changes_with_content_but_not_tests(tmp_path: Path) -> None:
    root = write_pack(tmp_path, MINIMAL)
    first = load_engine_pack(root).content_hash
    (root / "tests").mkdir()
    (root / "tests" / "utterances.jsonl").write_text('{"text": "x", "intent": "oos"}\n')
    assert load_engine_pack(root).content_hash == first
    (root / "facts.yaml").write_text("wifi: {password: x}\n")
    assert load_engine_pack(root).content_hash != first


def test_hotel_pack_is_valid(hotel_pack) -> None:  # type: ignore[no-untyped-def]
    assert len(hotel_pack.intents) >= 20
    rules = [i for i in hotel_pack.intents.values() if i.policy.tier == "rules"]
    assert len(rules) >= 20
    assert all(len(i.spec.templates) >= 5 for i in rules)
    # intents answered by a model tier are reached through the learned router
    assert all(len(i.examples) >= 20 for i in hotel_pack.intents.values() if i not in rules)


def test_an_intent_policy_overrides_only_what_it_sets(tmp_path: Path) -> None:
    files = yaml.safe_load(yaml.safe_dump(dict(MINIMAL)))
    files["pack.yaml"]["policy"] = {
        "privacy": "redact",
        "min_confidence": 0.6,
        "fallback": ["local_model", "degraded"],
        "out_of_scope": ["degraded"],
    }
    files["intents/main.yaml"]["intents"]["set_temperature"]["policy"] = {"min_confidence": 0.9}
    pack = load_engine_pack(write_pack(tmp_path, files))
    policy = pack.intents["set_temperature"].policy
    assert (policy.tier, policy.privacy, policy.min_confidence) == ("rules", "redact", 0.9)
    assert policy.fallback == ["local_model", "degraded"]
    assert pack.spec.policy.out_of_scope == ["degraded"]
