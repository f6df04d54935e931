"""Named backends: built-ins first, then installed packages' entry points."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from edgepipe.core.registry import BackendError, Registry


def test_builtins_resolve_and_unknown_names_are_explained() -> None:
    registry: Registry[Callable[[], str]] = Registry("edgepipe.tests.nothing", "widget")
    registry.add("plain", lambda: "plain")
    assert registry.get("plain")() == "plain"
    assert "plain" in registry and "fancy" not in registry
    with pytest.raises(BackendError) as info:
        registry.get("fancy")
    assert info.value.code == "widget_unknown"
    assert "plain" in str(info.value) and "edgepipe.tests.nothing" in str(info.value)


def _dist(site: Path, name: str, entry: str) -> None:
    info = site / f"{name}-0.0.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.0.0\n")
    (info / "entry_points.txt").write_text(f"[edgepipe.tests.widgets]\n{entry}\n")


def test_entry_points_are_found_when_installed_and_broken_ones_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry: Registry[Callable[[], str]] = Registry("edgepipe.tests.widgets", "widget")
    assert registry.names() == []
    site = tmp_path / "site"
    (site / "widget_pkg").mkdir(parents=True)
    (site / "widget_pkg" / "__init__.py").write_text("def make():\n    return 'made'\n")
    _dist(site, "widget-pkg", "good = widget_pkg:make")
    _dist(site, "broken-pkg", "bad = no_such_module_xyz:make")
    monkeypatch.syspath_prepend(str(site))
    assert registry.names() == ["bad", "good"]  # looked up when asked, not cached
    assert registry.get("good")() == "made"
    with pytest.raises(BackendError) as info:
        registry.get("bad")
    assert info.value.code == "widget_broken" and "broken-pkg" in str(info.value)
