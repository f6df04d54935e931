"""Where edgepipe keeps its files: one home for state, one cache for what can be rebuilt.

Every module that writes a file asks here; nothing else reads the environment for paths.
"""

from __future__ import annotations

import os
from pathlib import Path


def edgepipe_home() -> Path:
    """``$EDGEPIPE_HOME``, else ``$XDG_DATA_HOME/edgepipe``, else ``~/.local/share/edgepipe``."""
    if home := os.environ.get("EDGEPIPE_HOME"):
        return Path(home)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "edgepipe"


def cache_home() -> Path:
    """Derived files (built models, trained routers): ``$EDGEPIPE_CACHE``, else
    ``$EDGEPIPE_HOME/cache``. Safe to delete; rebuilt on demand."""
    if cache := os.environ.get("EDGEPIPE_CACHE"):
        return Path(cache)
    return edgepipe_home() / "cache"


def default_db_path() -> Path:
    """Where turns are recorded unless a pack or caller says otherwise."""
    return edgepipe_home() / "telemetry.db"
