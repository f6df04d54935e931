"""The ``edgepipe`` command line: one module per command group.

* :mod:`edgepipe.cli.text`: ``ask``, ``chat``, ``check``, ``trace``
* :mod:`edgepipe.cli.voice`: ``listen``
* :mod:`edgepipe.cli.demo`: ``demo``
* :mod:`edgepipe.cli.evaluate`: ``eval templates``, ``eval router``
"""

from __future__ import annotations

import sys

from edgepipe.cli import demo, evaluate, text, voice  # noqa: F401  (they register commands)
from edgepipe.cli.app import EXIT_FAILED, app, err, state
from edgepipe.core.errors import EdgepipeError

__all__ = ["app", "main"]


def main() -> None:
    """Console entry point: coded errors become messages, never tracebacks."""
    try:
        app()
    except EdgepipeError as exc:
        if state["debug"]:
            raise
        err.print(f"[bold red]error:[/] {exc}", markup=True)
        sys.exit(EXIT_FAILED)
    except KeyboardInterrupt:
        sys.exit(130)
