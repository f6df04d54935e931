"""The engine (a loaded pack) and its sessions (rooms)."""

from edgepipe.engine.engine import Engine, load_engine_pack
from edgepipe.engine.session import Session

__all__ = ["Engine", "Session", "load_engine_pack"]
