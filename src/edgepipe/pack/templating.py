"""Reply and key templates (Jinja2, sandboxed, strict about undefined names)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template
from jinja2.sandbox import SandboxedEnvironment

_ENV = SandboxedEnvironment(
    undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False
)


@lru_cache(maxsize=2048)
def compile_template(source: str) -> Template:
    """Compile (and cache) a template; raises ``jinja2.TemplateSyntaxError``."""
    return _ENV.from_string(source)


def render(source: str, variables: Mapping[str, Any]) -> str:
    """Render a template; raises ``jinja2.TemplateError`` (e.g. an undefined name)."""
    return compile_template(source).render(**variables).strip()
