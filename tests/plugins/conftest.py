"""Install a plugin package from this folder for one test, as ``pip install`` would, without
touching the virtualenv: a ``<name>-<version>.dist-info`` folder (METADATA, entry_points.txt from
the plugin's pyproject.toml) in a folder put on ``sys.path``, and the plugin's source folder on
``sys.path`` too. ``importlib.metadata`` then finds its entry points exactly as after a pip
install, and edgepipe's registries find its backends by name."""

from __future__ import annotations

import re
import sys
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

InstallPlugin = Callable[[Path, Path, pytest.MonkeyPatch], None]


def install_plugin(plugin_dir: Path, site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the package in ``plugin_dir`` (a ``pyproject.toml`` with ``[project]`` and its code
    in ``src/`` or beside it) installed for the rest of the test: its distribution metadata is
    written to ``site``, and ``site`` and the source folder go on ``sys.path`` (``monkeypatch``
    takes both off again)."""
    project = tomllib.loads((plugin_dir / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    name, version = str(project["name"]), str(project.get("version", "0.0.0"))
    info = site / f"{re.sub(r'[-_.]+', '_', name).lower()}-{version}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8"
    )
    groups: dict[str, dict[str, str]] = dict(project.get("entry-points", {}))
    if "scripts" in project:
        groups["console_scripts"] = project["scripts"]
    if "gui-scripts" in project:
        groups["gui_scripts"] = project["gui-scripts"]
    lines: list[str] = []
    for group, points in groups.items():
        lines += [f"[{group}]", *(f"{key} = {value}" for key, value in points.items()), ""]
    (info / "entry_points.txt").write_text("\n".join(lines), encoding="utf-8")
    source = plugin_dir / "src" if (plugin_dir / "src").is_dir() else plugin_dir
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(source))


@pytest.fixture(name="install_plugin")
def install_plugin_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[InstallPlugin]:
    """:func:`install_plugin`, and after the test the plugin's modules are forgotten too
    (``sys.path`` is restored by ``monkeypatch``)."""
    sources: list[Path] = []

    def install(plugin_dir: Path, site: Path, patch: pytest.MonkeyPatch = monkeypatch) -> None:
        install_plugin(plugin_dir, site, patch)
        sources.append(
            (plugin_dir / "src" if (plugin_dir / "src").is_dir() else plugin_dir).resolve()
        )

    yield install
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if file and any(Path(file).resolve().is_relative_to(source) for source in sources):
            del sys.modules[name]
