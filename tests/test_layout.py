"""The code's shape, checked: the testing doubles stay out of the runtime's import graph, and
no module or class grows past its limit without saying why."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "edgepipe"
MODULE_LINES = 400
CLASS_LINES = 250
REASON = "Long on purpose:"


def test_the_runtime_never_imports_the_testing_doubles() -> None:
    """Importing every runtime module (the command line included) loads nothing from
    ``edgepipe.testing``: the stand-in cloud, the fault proxy and the test audio are started
    by the demo and the tests, never by the runtime."""
    modules = sorted(
        ".".join(("edgepipe", *p.relative_to(SRC).with_suffix("").parts)).removesuffix(".__init__")
        for p in SRC.rglob("*.py")
        if "testing" not in p.relative_to(SRC).parts and p.name != "__main__.py"
    )
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m.startswith('edgepipe.testing')))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "[]"
    assert len(modules) > 50


def test_long_modules_and_classes_say_why() -> None:
    unexplained: list[str] = []
    for path in sorted(SRC.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source)
        module_doc = ast.get_docstring(tree) or ""
        where = path.relative_to(SRC.parent)
        lines = len(source.splitlines())
        if lines > MODULE_LINES and REASON not in module_doc:
            unexplained.append(f"{where}: {lines} lines")
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.end_lineno is not None:
                size = node.end_lineno - node.lineno + 1
                doc = ast.get_docstring(node) or ""
                if size > CLASS_LINES and REASON not in doc and REASON not in module_doc:
                    unexplained.append(f"{where}: class {node.name}: {size} lines")
    assert not unexplained, (
        f"over {MODULE_LINES} lines a module (over {CLASS_LINES} a class) says why in its "
        f"docstring ('{REASON} ...'), or is split: {unexplained}"
    )
