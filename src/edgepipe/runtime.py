"""Building a pack's model tiers from its settings (kept out of the turn code).

Heavy things are shared per process: one llama.cpp model per GGUF path, one knowledge index per
pack content. Stateful things (circuit breaker, link state) belong to each assistant.
"""

from __future__ import annotations

import gc
import time
from pathlib import Path

from edgepipe.errors import EdgepipeError
from edgepipe.knowledge import KnowledgeBase
from edgepipe.pack.loader import Pack
from edgepipe.tiers.escalation import CloudTier
from edgepipe.tiers.local_model import LocalModelTier
from edgepipe.tiers.rules import Responder

_KNOWLEDGE: dict[str, KnowledgeBase] = {}


def settle_heap() -> float:
    """Collect once, then hide every object that exists now from the cyclic garbage collector
    (:func:`gc.freeze`). Returns the milliseconds it took.

    Call it once a long-running process has loaded what it keeps (the pack, the router, the
    recognisers and voices). Python's full collections visit every tracked object; with the
    voice pipeline loaded that is about 226,000 objects and 80-90 ms on this 2-core machine, a
    pause that lands in whichever turn happens to allocate at the wrong moment. Frozen objects
    are never visited, so later full collections only see what turns allocate (0.0 ms right
    after freezing). The price: a reference cycle among frozen objects that becomes garbage
    later is not collected (objects without cycles are still freed by reference counting), so
    call it after loading, not per turn. ``gc.unfreeze()`` undoes it.
    """
    started = time.perf_counter()
    gc.collect()
    gc.freeze()
    return (time.perf_counter() - started) * 1000


def knowledge_for(pack: Pack) -> KnowledgeBase | None:
    spec = pack.spec.local_model
    if spec.knowledge is None:
        return None
    key = f"{pack.root.resolve()}:{pack.content_hash}:{spec.qa_min_score}"
    if key not in _KNOWLEDGE:
        _KNOWLEDGE[key] = KnowledgeBase.from_file(
            pack.root / spec.knowledge, min_score=spec.qa_min_score
        )
    return _KNOWLEDGE[key]


def local_tier_for(pack: Pack) -> LocalModelTier:
    """The pack's local model tier (raises ``ModelUnavailable`` when it cannot load)."""
    from edgepipe.models.llama import shared_model

    spec = pack.spec.local_model
    path = None
    if spec.model is not None:
        path = Path(spec.model) if Path(spec.model).is_absolute() else pack.root / spec.model
        if not path.is_file():
            raise EdgepipeError(
                f"local model file not found: {path}", code="local_model_unavailable"
            )
    model = shared_model(path, n_ctx=spec.n_ctx, threads=spec.threads)
    return LocalModelTier(pack, model, knowledge_for(pack))


def cloud_tier_for(pack: Pack, responder: Responder) -> CloudTier | None:
    """The pack's cloud tier, or None when no endpoint is configured."""
    from edgepipe.connectivity import Connectivity
    from edgepipe.outbox import Outbox
    from edgepipe.privacy.audit import AuditLog
    from edgepipe.privacy.gate import PrivacyGate
    from edgepipe.telemetry.store import edgepipe_home
    from edgepipe.tiers.cloud import CloudClient, CloudConfig, CostLedger

    config = CloudConfig.resolve(pack.spec.cloud)
    if config is None:
        return None
    home = edgepipe_home()
    client = CloudClient(pack.spec.cloud, config, ledger=CostLedger(home / "ledger.db"))
    room = pack.spec.context.room
    gate = PrivacyGate(
        names=[n for n in [room.guest_name] if n],
        room_number=room.number,
        audit=AuditLog(home / "audit.db"),
    )
    connectivity = Connectivity(lambda: client.probe(timeout_s=pack.spec.cloud.connect_timeout_s))
    return CloudTier(pack, client, gate, connectivity, Outbox(home / "outbox.db"), responder)
