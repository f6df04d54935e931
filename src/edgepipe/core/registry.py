"""Named backends: the built-in ones, and any a separate package adds through entry points.

Each kind of pluggable part (tiers, wake detectors, VADs, recognisers, transcribers, voices) has
one :class:`Registry`. A pack names the backend it wants; the registry finds the factory among
the built-ins first, then among the installed packages' entry points of the registry's group::

    # pyproject.toml of a separate package
    [project.entry-points."edgepipe.tiers"]
    echo = "edgepipe_echo:EchoTier"

Entry points are looked up when a name is resolved (when an engine is built), not cached, so a
package installed while a process runs is found by the next engine it builds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Generic, TypeVar

from edgepipe.core.errors import EdgepipeError

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., object])


class BackendError(EdgepipeError):
    """A backend name is unknown, or its package failed to load."""

    default_code = "backend_unknown"


class Registry(Generic[F]):
    """Name -> factory for one kind of backend."""

    def __init__(self, group: str, kind: str) -> None:
        self.group = group
        """The entry-point group other packages register under (``edgepipe.tiers``)."""
        self.kind = kind
        """What the backends are, for messages (``tier``, ``transcriber``)."""
        self._builtin: dict[str, F] = {}

    def add(self, name: str, factory: F) -> F:
        """Register a built-in backend (edgepipe's own modules call this)."""
        self._builtin[name] = factory
        return factory

    def _entry_points(self) -> dict[str, EntryPoint]:
        found: dict[str, EntryPoint] = {}
        for point in entry_points(group=self.group):
            found.setdefault(point.name, point)
        return found

    def names(self) -> list[str]:
        """Every name that resolves: built-ins and installed packages'."""
        return sorted({*self._builtin, *self._entry_points()})

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._builtin or name in self._entry_points())

    def get(self, name: str) -> F:
        """The factory registered as ``name``; :class:`BackendError` naming the known ones."""
        if name in self._builtin:
            return self._builtin[name]
        point = self._entry_points().get(name)
        if point is None:
            known = ", ".join(self.names()) or "none"
            raise BackendError(
                f"unknown {self.kind} '{name}' (known: {known}; a package adds one through the "
                f"'{self.group}' entry-point group)",
                code=f"{self.kind}_unknown",
            )
        try:
            factory = point.load()
        except Exception as exc:  # a plugin's import can raise anything
            where = point.dist.name if point.dist is not None else point.value
            raise BackendError(
                f"{self.kind} '{name}' from {where} failed to load: {type(exc).__name__}: {exc}",
                code=f"{self.kind}_broken",
            ) from exc
        if not callable(factory):
            raise BackendError(
                f"{self.kind} '{name}' ({point.value}) is not callable", code=f"{self.kind}_broken"
            )
        log.debug("%s '%s' from entry point %s", self.kind, name, point.value)
        return factory  # type: ignore[no-any-return]
