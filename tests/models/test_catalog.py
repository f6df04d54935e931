"""Models by name: the file inside a package, or parts from several packages joined once and
checked against the published file's SHA-256."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgepipe.models import catalog
from edgepipe.models.catalog import CatalogueModel, model_path, resolve_model
from edgepipe.models.llama import ModelUnavailable


def _parts(root: Path, prefix: str, chunks: list[bytes]) -> None:
    for i, chunk in enumerate(chunks, start=1):
        package = root / f"{prefix}{i}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "data" / f"part{i:02d}.bin").write_bytes(chunk)


@pytest.fixture
def split_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, bytes]]:
    """A catalogue entry whose three parts are installed as packages on ``sys.path``."""
    chunks = [b"GGUF" + bytes(range(200)), bytes(300), b"tail" * 50]
    whole = b"".join(chunks)
    _parts(tmp_path / "site", "edgepipe_test_part", chunks)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    entry = CatalogueModel(
        "test-split",
        "a split test file",
        "pip install the-test-parts",
        part_prefix="edgepipe_test_part",
        parts=3,
        size=len(whole),
        sha256=hashlib.sha256(whole).hexdigest(),
    )
    monkeypatch.setitem(catalog.MODELS, entry.name, entry)
    yield entry.name, whole
    for i in range(1, 4):
        sys.modules.pop(f"edgepipe_test_part{i}", None)


def test_parts_are_joined_once_into_the_cache(
    split_model: tuple[str, bytes], tmp_path: Path
) -> None:
    name, whole = split_model
    cache = tmp_path / "cache"
    path = model_path(name, cache=cache)
    assert path == cache / f"{name}.gguf" and path.read_bytes() == whole
    before = path.stat().st_mtime_ns
    assert model_path(name, cache=cache) == path and path.stat().st_mtime_ns == before
    assert [p.name for p in cache.iterdir()] == [path.name]


def test_parts_that_do_not_make_the_published_file_are_refused(
    split_model: tuple[str, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name, _ = split_model
    wrong = catalog.MODELS[name]
    monkeypatch.setitem(
        catalog.MODELS, name, CatalogueModel(**{**_fields(wrong), "sha256": "0" * 64})
    )
    cache = tmp_path / "cache"
    with pytest.raises(ModelUnavailable, match="do not make the published file"):
        model_path(name, cache=cache)
    assert list(cache.iterdir()) == []  # nothing half-written is left


def test_a_missing_part_names_what_to_install(
    split_model: tuple[str, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name, _ = split_model
    entry = catalog.MODELS[name]
    monkeypatch.setitem(catalog.MODELS, name, CatalogueModel(**{**_fields(entry), "parts": 4}))
    with pytest.raises(
        ModelUnavailable, match=r"1 of its 4 packages.*edgepipe_test_part4.*pip install"
    ):
        model_path(name, cache=tmp_path / "cache")


def test_names_paths_and_the_default(tmp_path: Path) -> None:
    default = resolve_model(None, tmp_path)
    assert default.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and default.is_file()
    assert resolve_model("smollm2-135m", tmp_path) == default
    (tmp_path / "mine.gguf").write_bytes(b"GGUF")
    assert resolve_model("mine.gguf", tmp_path) == tmp_path / "mine.gguf"
    with pytest.raises(ModelUnavailable, match="not found"):
        resolve_model("missing.gguf", tmp_path)
    with pytest.raises(ModelUnavailable, match="unknown model 'gpt-9'"):
        model_path("gpt-9")


def _fields(entry: CatalogueModel) -> dict[str, object]:
    return {f: getattr(entry, f) for f in CatalogueModel.__slots__}  # type: ignore[attr-defined]
