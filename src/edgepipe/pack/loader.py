"""Load a pack folder, validate every file and every reference between files.

All problems are collected before failing, so ``edgepipe check`` shows the whole list at once.
Each problem names the file, the key path inside it and what is wrong, e.g.::

    packs/x/intents/room.yaml: intents.set_temperature.slots.degrees: unknown slot list 'temps'

Long on purpose: :func:`load_pack` reads the files in the order their references need (pack.yaml,
intents, rules, replies, facts, examples, handlers); the checks between files are in
:mod:`edgepipe.pack.references`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from hassil import parse_sentence
from pydantic import BaseModel, ValidationError

from edgepipe.core.errors import PackIssue
from edgepipe.pack.content_schema import (
    ExamplesFileSpec,
    IntentsFileSpec,
    IntentSpec,
    ResponsesFileSpec,
    Rule,
    RulesFileSpec,
    SlotListSpec,
)
from edgepipe.pack.references import (
    Collector,
    check_intent,
    check_responses,
    check_rules,
    check_tiers,
)
from edgepipe.pack.schema import PackSpec, PolicySpec

M = TypeVar("M", bound=BaseModel)

MAX_FILE_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class IntentDef:
    """An intent as the runtime uses it: the spec plus where it came from."""

    name: str
    spec: IntentSpec
    policy: PolicySpec
    """The intent's own policy, or the pack default."""
    source: str
    """Display path of the file that defines it."""
    hassil_templates: tuple[str, ...]
    """Templates rewritten for hassil (slot names mapped to their lists)."""
    examples: tuple[str, ...] = ()
    """Example requests: the intent's own ``examples`` plus those in ``examples.yaml``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Pack:
    """A loaded, validated pack."""

    root: Path
    spec: PackSpec
    intents: Mapping[str, IntentDef]
    lists: Mapping[str, SlotListSpec]
    expansion_rules: Mapping[str, str]
    rules: Mapping[str, Rule]
    responses: ResponsesFileSpec
    facts: Mapping[str, Any]
    out_of_scope_examples: tuple[str, ...]
    """Requests the pack must not act on (``examples.yaml: out_of_scope``), for training."""
    handlers_module: ModuleType | None
    content_hash: str
    """SHA-256 over every file of the pack except its tests; keys caches built from the pack."""
    files: tuple[Path, ...] = field(default=())

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def timezone(self) -> ZoneInfo:
        return ZoneInfo(self.spec.timezone)

    def path(self, relative: str) -> Path:
        """A path inside the pack folder."""
        return self.root / relative


def _loc_to_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


def _validation_issues(exc: ValidationError, display: str, prefix: str = "") -> Iterator[PackIssue]:
    for err in exc.errors():
        loc = tuple(err["loc"])
        kind = err["type"]
        if kind == "extra_forbidden":
            path, message = _loc_to_path(loc[:-1]), f"unknown key '{loc[-1]}'"
        elif kind == "missing":
            path, message = _loc_to_path(loc[:-1]), f"required key '{loc[-1]}' is missing"
        else:
            path = _loc_to_path(loc)
            message = err["msg"].removeprefix("Value error, ")
            if kind not in {"value_error", "assertion_error"} and "input" in err:
                message += f" (got {err['input']!r:.60})"
        if prefix:
            path = f"{prefix}.{path}" if path else prefix
        yield PackIssue(file=display, path=path, message=message)


def _display(path: Path) -> str:
    return str(path)


def read_yaml(path: Path, issues: Collector, *, required: bool = True) -> dict[str, Any] | None:
    """Read one YAML mapping; problems go to ``issues`` and give ``None``."""
    display = _display(path)
    if not path.exists():
        if required:
            issues.add(display, "", "file not found")
        return None
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            issues.add(display, "", f"file is {size} bytes; the limit is {MAX_FILE_BYTES}")
            return None
        raw = path.read_bytes()
    except OSError as exc:
        issues.add(display, "", f"cannot read: {exc.strerror or exc}")
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        issues.add(display, "", f"not UTF-8 text (invalid byte at offset {exc.start})")
        return None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        issues.add(display, "", f"broken YAML: {where}{problem}")
        return None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        issues.add(display, "", f"expected a mapping at the top level, got {type(data).__name__}")
        return None
    return data


def _validate(model: type[M], data: dict[str, Any], display: str, issues: Collector) -> M | None:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        issues.issues.extend(_validation_issues(exc, display))
        return None


def _content_hash(root: Path) -> tuple[str, tuple[Path, ...]]:
    digest = hashlib.sha256()
    files = sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and "__pycache__" not in p.parts
        and p.relative_to(root).parts[0] != "tests"
        and not p.name.startswith(".")
    )
    for p in files:
        digest.update(p.relative_to(root).as_posix().encode())
        digest.update(b"\0")
        digest.update(p.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest(), tuple(files)


def _merged_policy(default: PolicySpec, own: PolicySpec | None) -> PolicySpec:
    """An intent's policy: the pack's default with the keys the intent set replaced."""
    base = PolicySpec.model_validate(default.model_dump(exclude={"out_of_scope"}))
    if own is None:
        return base
    return base.model_copy(update={key: getattr(own, key) for key in own.model_fields_set})


def _import_handlers(path: Path, content_hash: str, issues: Collector) -> ModuleType | None:
    """The pack's ``handlers.py`` as a module of its own, held by the :class:`Pack` and nowhere
    else: two versions of a pack loaded in one process (an update beside the running one) each
    keep their own handlers. The module is in ``sys.modules`` only while its code runs (which
    ``dataclasses`` and ``typing`` need), not afterwards."""
    if not path.exists():
        return None
    module_name = f"edgepipe_pack_handlers_{content_hash[:16]}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        issues.add(_display(path), "", "cannot import")
        return None
    module = importlib.util.module_from_spec(spec)
    previous = sys.modules.get(module_name)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # a pack's code can raise anything while importing
        issues.add(_display(path), "", f"import failed: {type(exc).__name__}: {exc}")
        return None
    finally:
        if previous is None:
            sys.modules.pop(module_name, None)
        else:
            sys.modules[module_name] = previous
    return module


def _intent_files(root: Path, rel: str, issues: Collector) -> list[Path]:
    target = root / rel
    if target.is_file():
        return [target]
    if target.is_dir():
        found = sorted([*target.glob("*.yaml"), *target.glob("*.yml")])
        if not found:
            issues.add(_display(target), "", "no intent files (*.yaml) in this folder")
        return found
    issues.add(_display(target), "", "intents folder or file not found")
    return []


def load_pack(
    path: str | Path, *, resolve_handler: Callable[[str, ModuleType | None], object] | None = None
) -> Pack:
    """Load and validate the pack at ``path`` (its folder, or its ``pack.yaml``).

    Raises :class:`edgepipe.core.errors.PackError` listing every problem found.
    ``resolve_handler`` checks handler references (the runtime passes its registry).
    """
    from edgepipe.core.errors import PackError

    root = Path(path)
    if root.name in {"pack.yaml", "pack.yml"} and root.is_file():
        root = root.parent
    issues = Collector()
    if not root.is_dir():
        raise PackError([PackIssue(file=str(root), path="", message="pack folder not found")])

    pack_file = root / "pack.yaml"
    pack_data = read_yaml(pack_file, issues)
    spec = (
        _validate(PackSpec, pack_data, _display(pack_file), issues)
        if pack_data is not None
        else None
    )
    if spec is None:
        raise PackError(issues.issues)

    try:
        ZoneInfo(spec.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        issues.add(_display(pack_file), "timezone", f"unknown time zone '{spec.timezone}'")
    room = spec.context.room
    if spec.context.room_types and room.type not in spec.context.room_types:
        issues.add(_display(pack_file), "context.room.type", f"unknown room type '{room.type}'")
    from edgepipe.tiers.registry import TIERS

    installed = frozenset(TIERS.names())
    check_tiers(_display(pack_file), "policy", spec.policy, issues, installed)

    # intents: merge every file, remembering where each definition came from
    lists: dict[str, SlotListSpec] = {}
    list_src: dict[str, str] = {}
    rules_text: dict[str, str] = {}
    rules_src: dict[str, str] = {}
    intent_specs: dict[str, tuple[IntentSpec, str]] = {}
    intents_complete = True  # False when an intents file failed: skip "unknown intent" checks
    for file in _intent_files(root, spec.files.intents, issues):
        display = _display(file)
        data = read_yaml(file, issues)
        parsed = _validate(IntentsFileSpec, data, display, issues) if data is not None else None
        if parsed is None:
            intents_complete = False
            continue
        for name, lst in parsed.lists.items():
            if name in lists:
                issues.add(display, f"lists.{name}", f"slot list also defined in {list_src[name]}")
            lists[name], list_src[name] = lst, display
        for name, body in parsed.expansion_rules.items():
            if name in rules_text:
                issues.add(display, f"expansion_rules.{name}", "expansion rule defined twice")
            rules_text[name], rules_src[name] = body, display
        for name, ispec in parsed.intents.items():
            if name in intent_specs:
                issues.add(
                    display, f"intents.{name}", f"intent also defined in {intent_specs[name][1]}"
                )
            intent_specs[name] = (ispec, display)
    if not intent_specs and not issues.issues:
        issues.add(_display(root / spec.files.intents), "", "the pack defines no intents")

    for rule_name, body in rules_text.items():
        try:
            parse_sentence(body, keep_text=True)
        except Exception as exc:  # hassil raises several types for bad syntax
            issues.add(
                rules_src[rule_name],
                f"expansion_rules.{rule_name}",
                f"template syntax error: {exc}",
            )

    content_hash, files = _content_hash(root)
    handlers_module = _import_handlers(root / spec.files.handlers, content_hash, issues)

    intents: dict[str, IntentDef] = {}
    for name, (ispec, display) in intent_specs.items():
        rewritten = check_intent(name, ispec, display, lists, rules_text, issues)
        intents[name] = IntentDef(
            name=name,
            spec=ispec,
            policy=_merged_policy(spec.policy, ispec.policy),
            source=display,
            hassil_templates=rewritten,
            examples=tuple(ispec.examples),
        )
        tier = intents[name].policy.tier
        check_tiers(display, f"intents.{name}.policy", intents[name].policy, issues, installed)
        if ispec.handler is None:
            if tier == "rules":
                issues.add(display, f"intents.{name}.handler", "the rules tier needs a handler")
        elif resolve_handler is not None:
            try:
                resolve_handler(ispec.handler, handlers_module)
            except LookupError as exc:
                issues.add(display, f"intents.{name}.handler", str(exc.args[0]))

    rules_file = root / spec.files.rules
    rules: dict[str, Rule] = {}
    rules_data = read_yaml(rules_file, issues, required=False)
    if rules_data is not None:
        parsed_rules = _validate(RulesFileSpec, rules_data, _display(rules_file), issues)
        if parsed_rules is not None:
            rules = dict(parsed_rules.rules)
            if intents_complete:
                check_rules(rules, intents, _display(rules_file), issues)

    responses_file = root / spec.files.responses
    responses = ResponsesFileSpec()
    responses_data = read_yaml(responses_file, issues)
    if responses_data is not None:
        parsed_responses = _validate(
            ResponsesFileSpec, responses_data, _display(responses_file), issues
        )
        if parsed_responses is not None:
            responses = parsed_responses
            if intents_complete:
                check_responses(responses, intents, _display(responses_file), issues)

    facts = read_yaml(root / spec.files.facts, issues, required=False) or {}
    if spec.local_model.knowledge is not None and not (root / spec.local_model.knowledge).is_file():
        issues.add(
            _display(pack_file),
            "local_model.knowledge",
            f"file not found: {spec.local_model.knowledge}",
        )

    examples_file = root / spec.files.examples
    out_of_scope: tuple[str, ...] = ()
    examples_data = read_yaml(examples_file, issues, required=False)
    if examples_data is not None:
        parsed_examples = _validate(
            ExamplesFileSpec, examples_data, _display(examples_file), issues
        )
        if parsed_examples is not None:
            out_of_scope = tuple(parsed_examples.out_of_scope)
            for name, extra in parsed_examples.intents.items():
                if name not in intents:
                    if intents_complete:
                        issues.add(
                            _display(examples_file), f"intents.{name}", f"unknown intent '{name}'"
                        )
                    continue
                intents[name] = replace(intents[name], examples=(*intents[name].examples, *extra))

    for name, intent in intents.items():
        if not intent.spec.templates and not intent.examples:
            issues.add(
                intent.source,
                f"intents.{name}",
                "an intent needs templates or examples (nothing could ever route to it)",
            )

    if issues.issues:
        raise PackError(issues.issues)
    return Pack(
        root=root,
        spec=spec,
        intents=intents,
        lists=lists,
        expansion_rules=rules_text,
        rules=rules,
        responses=responses,
        facts=facts,
        out_of_scope_examples=out_of_scope,
        handlers_module=handlers_module,
        content_hash=content_hash,
        files=files,
    )
