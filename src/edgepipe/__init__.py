"""edgepipe: a runtime for local-first AI assistants on small devices.

Rules first, a small local model where language flexibility earns it, the cloud only where it
pays, and an honest answer when nothing can help.
"""

from edgepipe.core.errors import EdgepipeError, InputError, PackError
from edgepipe.core.types import IntentMatch, Reply, Route, RouteDecision, Trace, TurnResult
from edgepipe.engine import Engine, Session, load_engine_pack
from edgepipe.pack import Pack, load_pack

__version__ = "0.1.0"

__all__ = [
    "EdgepipeError",
    "Engine",
    "InputError",
    "IntentMatch",
    "Pack",
    "PackError",
    "Reply",
    "Route",
    "RouteDecision",
    "Session",
    "Trace",
    "TurnResult",
    "__version__",
    "load_engine_pack",
    "load_pack",
]
