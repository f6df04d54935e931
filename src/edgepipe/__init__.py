"""edgepipe: a runtime for local-first AI assistants on small devices.

Rules first, a small local model where language flexibility earns it, the cloud only where it
pays, and an honest answer when nothing can help.
"""

from edgepipe.errors import EdgepipeError, InputError, PackError
from edgepipe.frames import IntentMatch, Reply, Route, RouteDecision, Trace, TurnResult
from edgepipe.pack import Pack, load_pack
from edgepipe.pipeline import Assistant, load_assistant_pack

__version__ = "0.1.0"

__all__ = [
    "Assistant",
    "EdgepipeError",
    "InputError",
    "IntentMatch",
    "Pack",
    "PackError",
    "Reply",
    "Route",
    "RouteDecision",
    "Trace",
    "TurnResult",
    "__version__",
    "load_assistant_pack",
    "load_pack",
]
