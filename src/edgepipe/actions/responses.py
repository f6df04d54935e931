"""The pack's replies: its system replies and each intent's reply templates (Jinja2)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from jinja2 import TemplateError

from edgepipe.core.types import Reply
from edgepipe.pack.loader import Pack
from edgepipe.pack.schema import RoomSpec
from edgepipe.pack.templating import render

log = logging.getLogger(__name__)


class Responder:
    """Renders a pack's reply templates. Stateless: one per engine, shared by its sessions."""

    def __init__(self, pack: Pack) -> None:
        self._pack = pack

    def system(self, key: str, **variables: Any) -> Reply:
        """A runtime reply (``fallback``, ``handler_error``, ``clarify_slot``)."""
        template = getattr(self._pack.responses.system, key)
        try:
            text = render(template, variables)
        except TemplateError:
            log.exception("system reply %r failed to render", key)
            text = "Sorry, I can't help with that right now."
        return Reply(text=text, response_key=f"system:{key}", data=dict(variables))

    def intent(
        self, intent: str, key: str, variables: Mapping[str, Any], *, room: RoomSpec | None = None
    ) -> Reply:
        """An intent's reply; raises ``KeyError``/``TemplateError`` when it cannot be made.
        ``room``: the room the turn is for (default: the pack's)."""
        templates = self._pack.responses.intents[intent]
        template = templates[key] if key in templates else templates["default"]
        context = {
            "facts": self._pack.facts,
            "room": room or self._pack.spec.context.room,
            **variables,
        }
        return Reply(text=render(template, context), response_key=key, data=dict(variables))
